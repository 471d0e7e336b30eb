"""Turn a finished training run into a shipped model folder under fqliscs_tf/weights/.

    python -m experiments.ship runs/lite_c96_awgn --name lite_c96_awgn
    python -m experiments.ship runs/lite_c96_awgn_qat --integer --name lite_c96_awgn_int

    python -m experiments.ship runs/lite_c96_awgn_r8_qat --integer --name lite_c96_awgn_r8_int \
        --base lite_c96_awgn_int
    python -m experiments.ship --repack lite_c96_rayleigh --base lite_c96_awgn

Float runs: writes float16 weights (half the size; loaded back into float32). QAT runs
(``--integer``): exports the integer engine's parameters (int8 kernels, int32 biases, dyadic
multipliers: ``engine.json`` + ``engine.npz``). Both record a reference PSNR on the bundled
image ``kodim05.png`` at 10 dB, noiseless and over AWGN with seed 1234, which
``tests/test_shipped_model.py`` checks. ``--base NAME`` stores the arrays as differences
from the shipped folder ``NAME`` (the codec the run was fine-tuned from), which must then
stay beside it. ``--repack NAME`` rewrites a shipped folder's arrays in the current packing
(:mod:`fqliscs_tf.arrays`), with or without a base, and checks that they load unchanged.
Shipping over a folder that others are stored against is refused until they are repacked.
"""
import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main", "reference_psnr", "integer_reference_psnr", "ship_integer"]

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "fqliscs_tf"
REFERENCE_IMAGE = PACKAGE_DIR / "assets" / "kodak" / "kodim05.png"
REFERENCE_SNR_DB, REFERENCE_SEED = 10.0, 1234


def reference_psnr(model):
    """PSNR [dB] of ``model`` on kodim05 at 10 dB: noiseless, then AWGN with a fixed seed."""
    import tensorflow as tf

    from fqliscs_tf.data import load_image
    from fqliscs_tf.metrics import psnr
    from fqliscs_tf.utils import set_seed
    x = tf.constant(load_image(REFERENCE_IMAGE)[None], tf.float32) / 255.0
    snr = tf.constant([REFERENCE_SNR_DB])
    out = {"image": REFERENCE_IMAGE.name, "snr_db": REFERENCE_SNR_DB}
    for channel, key in (("none", "channel_none"), ("awgn", f"awgn_seed_{REFERENCE_SEED}")):
        model.set_channel(channel)
        set_seed(REFERENCE_SEED)
        x_hat = tf.clip_by_value(model((x, snr))["x_hat"], 0.0, 1.0)
        out[key] = float(psnr(x, x_hat)[0])
    return out


def integer_reference_psnr(codec):
    """As :func:`reference_psnr` for an :class:`~fqliscs_tf.engine.IntegerCodec` (the integer
    AWGN channel with seed ``(1234, 0)``; bit-exact across runs)."""
    import tensorflow as tf

    from fqliscs_tf.data import load_image
    from fqliscs_tf.metrics import psnr
    x = tf.constant(load_image(REFERENCE_IMAGE)[None], tf.float32) / 255.0
    out = {"image": REFERENCE_IMAGE.name, "snr_db": REFERENCE_SNR_DB}
    for channel, key in (("none", "channel_none"), ("awgn", f"awgn_seed_{REFERENCE_SEED}")):
        codec.set_channel(channel)
        x_hat = codec(x, REFERENCE_SNR_DB, seed=(REFERENCE_SEED, 0))["x_hat"]
        out[key] = float(psnr(x, x_hat)[0])
    return out


def ship_integer(src, dst, note="", base=None):
    """QAT export folder -> integer engine folder with its reference PSNR (arrays stored as
    differences from the integer codec folder ``base``, if given)."""
    from fqliscs_tf.engine import IntegerCodec, export_integer_codec, save_integer_codec
    from fqliscs_tf.quant.qat import load_qat
    qat = load_qat(src)
    params = export_integer_codec(qat, **dict(getattr(qat, "meta", {}), source=str(src),
                                              note=note, channel_type=qat.channel_type))
    params.meta["reference_psnr"] = integer_reference_psnr(IntegerCodec(params))
    save_integer_codec(params, str(dst), base=base)
    return params


def dependents(folder):
    """Names of the folders beside ``folder`` that are stored as differences from it."""
    folder = Path(folder).resolve()
    users = []
    for info_file in sorted(folder.parent.glob("*/*.json")):
        with open(info_file) as f:
            base = json.load(f).get("base")
        if base and (info_file.parent / base["folder"]).resolve() == folder:
            users.append(info_file.parent.name)
    return users


def repack(folder, base=None):
    """Rewrite a model or integer codec folder's arrays in the current packing, as
    differences from the folder ``base`` if given. The arrays are checked to load back
    bit for bit. Returns ``(bytes before, bytes after)`` of the arrays file."""
    import numpy as np

    from fqliscs_tf.arrays import load_folder_arrays, save_folder_arrays
    from fqliscs_tf.checkpoints import MODEL_FILE, WEIGHTS_FILE
    from fqliscs_tf.engine.export import ENGINE_ARRAYS, ENGINE_FILE
    folder = Path(folder)
    integer = (folder / ENGINE_FILE).is_file()
    info_file, arrays_file = (ENGINE_FILE, ENGINE_ARRAYS) if integer else (MODEL_FILE, WEIGHTS_FILE)
    arrays = load_folder_arrays(folder, info_file, arrays_file)
    before = (folder / arrays_file).stat().st_size
    text = (folder / info_file).read_text()
    info = json.loads(text)
    info.pop("base", None)
    entry = save_folder_arrays(folder, info_file, arrays_file, arrays, base=base)
    if entry:
        info["base"] = entry
    with open(folder / info_file, "w") as f:  # the layout each writer uses
        json.dump(info, f, **({"separators": (",", ":")} if integer else {"indent": 2}))
        f.write("\n" if text.endswith("\n") else "")
    again = load_folder_arrays(folder, info_file, arrays_file)
    if set(again) != set(arrays) or not all(
            again[k].dtype == arrays[k].dtype and np.array_equal(again[k], arrays[k]) for k in arrays):
        raise RuntimeError(f"repacking {folder} changed its arrays")  # a bug, not bad input
    return before, (folder / arrays_file).stat().st_size


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.ship", description=__doc__.split("\n\n")[0])
    p.add_argument("run", nargs="?",
                   help="training run folder (with export/) or an exported model folder")
    p.add_argument("--name", help="folder name under fqliscs_tf/weights/")
    p.add_argument("--base", metavar="NAME",
                   help="store the arrays as differences from the shipped folder NAME "
                        "(fqliscs_tf/weights/NAME), e.g. the codec the run was fine-tuned from")
    p.add_argument("--repack", metavar="NAME",
                   help="instead of shipping a run, rewrite the shipped folder NAME's arrays "
                        "in the current packing (with --base: as differences from it)")
    p.add_argument("--note", default="", help="free text stored in model.json")
    p.add_argument("--integer", action="store_true",
                   help="the run is a QAT run (train.py --qat): ship the integer engine "
                        "parameters instead of float16 weights")
    args = p.parse_args(argv)
    weights = PACKAGE_DIR / "weights"
    base = None
    if args.base is not None:
        base = weights / args.base
        if not base.is_dir():
            p.error(f"--base {args.base!r}: no shipped folder {base}")
    if args.repack is not None:
        if args.run is not None or args.name is not None:
            p.error("--repack takes a shipped folder's name, not a run or --name")
        if not (weights / args.repack).is_dir():
            p.error(f"--repack {args.repack!r}: no shipped folder {weights / args.repack}")
        before, after = repack(weights / args.repack, base)
        print(f"repacked {weights / args.repack}: {before} -> {after} bytes")
        return 0
    if args.run is None or args.name is None:
        p.error("shipping a run needs the run folder and --name")
    users = dependents(weights / args.name)
    if users:
        p.error(f"{', '.join(users)} stored as differences from {args.name!r}: replacing it would "
                f"break them; store them whole first (python -m experiments.ship --repack NAME)")
    from fqliscs_tf.checkpoints import export_model, load_model, model_folder, read_model_info
    src = model_folder(args.run)
    if args.integer:
        dst = weights / args.name
        params = ship_integer(src, dst, args.note, base=base)
        print(f"shipped {dst}: {json.dumps(params.meta['reference_psnr'])}")
        return 0
    info = read_model_info(src)
    model = load_model(src)
    dst = weights / args.name
    meta = dict(info.get("meta", {}), source=src, note=args.note)
    export_model(model, dst, weights_dtype="float16", base=base, **meta)
    shipped = load_model(dst)
    info = read_model_info(dst)
    info["meta"]["reference_psnr"] = reference_psnr(shipped)
    with open(dst / "model.json", "w") as f:
        json.dump(info, f, indent=2)
    print(f"shipped {dst}: {json.dumps(info['meta']['reference_psnr'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
