"""Write scikit-image's sample photographs to a folder: a test set outside Kodak and the
training pool, for checking that results generalise (issue 6).

    python -m experiments.photos outputs/skimage_photos
    fqliscs-evaluate --images outputs/skimage_photos ...

Needs ``scikit-image`` (``pip install -e .[eval]``). The four natural colour photographs are
``astronaut`` (512x512), ``coffee`` (600x400), ``chelsea`` (451x300) and ``rocket`` (640x427),
saved losslessly as 8-bit RGB PNG.
"""
import argparse
import os

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def write_photos(outdir, names=PHOTOS):
    """Save the named ``skimage.data`` photographs as ``outdir/NAME.png``; returns the paths."""
    try:
        from skimage import data
    except ImportError as e:
        raise ImportError("scikit-image is needed for the sample photographs: "
                          "pip install scikit-image (or the package's [eval] extra)") from e
    from PIL import Image
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
        raise ValueError(f"unknown photograph(s) {unknown}; choose from {PHOTOS}")
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for name in names:
        path = os.path.join(outdir, f"{name}.png")
        Image.fromarray(getattr(data, name)()).convert("RGB").save(path)
        paths.append(path)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("outdir", nargs="?", default="outputs/skimage_photos",
                   help="folder to write the PNG files to")
    args = p.parse_args(argv)
    for path in write_photos(args.outdir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
