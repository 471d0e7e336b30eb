# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""TFLite 16x8 minus the integer engine, per GELU form of the TFLite twin.

    python -m experiments.twin_gelu --model fqliscs_tf/weights/lite_c96_awgn_int \
        --calibration ../shared/data/train/bsds500_train200 --forms engine,erf,sigmoid

For each ``TwinOptions(gelu=FORM)`` it exports the integer codec's QAT model to TFLite 16x8 at
``--size`` (calibrated on centre crops of the first 4 ``--calibration`` images), runs it and the
integer engine on centre crops of the 4 bundled Kodak images over AWGN with the same channel
seed, and writes the mean PSNR difference per SNR [dB] to ``--output`` (JSON with provenance).
"""
import argparse
import json
import os
import sys
import time


def add_model_arguments(p):
    """``--model`` and ``--calibration`` (also of :mod:`experiments.twin_ablation`)."""
    p.add_argument("--model", default="fqliscs_tf/weights/lite_c96_awgn_int",
                   help="integer codec folder (engine.json/engine.npz)")
    p.add_argument("--calibration", required=True,
                   help="folder of representative images (at least 4, not the test images)")


def engine_crops(model, calibration, height, width, snrs, seed=(0, 0)):
    """Centre crops of the 4 bundled Kodak images (float32 ``[4, H, W, 3]``), of the first 4
    ``calibration`` files (list of ``[H, W, 3]``), and the integer engine ``model``'s PSNR [dB]
    per image on the first over AWGN (``{snr: [4]}``, channel ``seed``)."""
    import numpy as np

    from fqliscs_tf.data import centre_crops
    from fqliscs_tf.engine import IntegerCodec
    from fqliscs_tf.engine.tflite import kodak_crops
    from fqliscs_tf.metrics import psnr
    images = np.stack(kodak_crops(height, width)).astype(np.float32)
    calib = centre_crops(calibration[:4], height, width)
    engine = IntegerCodec(model, "awgn")
    # Images and reconstructions are on the 8-bit pixel grid already (PNG crops, uint8 out).
    reference = {s: psnr(images, engine(images, s, seed=seed)["x_hat"]).numpy() for s in snrs}
    return images, calib, reference


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(p)
    p.add_argument("--forms", default="engine,erf,sigmoid",
                   help="comma-separated TwinOptions.gelu forms (default engine,erf,sigmoid)")
    p.add_argument("--size", type=int, default=256, help="square crop side [pixels]")
    p.add_argument("--snrs", default="1,13", help="comma-separated SNRs [dB]")
    p.add_argument("--workdir", default="outputs/twin_gelu", help="folder of the exports")
    p.add_argument("--output", default="outputs/twin_gelu/twin_gelu.json")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    try:
        snrs = [float(s) for s in args.snrs.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--snrs must be comma-separated numbers, got {args.snrs!r}")
    if not forms or not snrs:
        raise SystemExit("--forms and --snrs must name at least one value each")
    import numpy as np

    from fqliscs_tf.data import list_images
    from fqliscs_tf.engine.tflite import MANIFEST_FILE, TFLiteCodec, TwinOptions, export_tflite
    from fqliscs_tf.engine.to_qat import qat_from_engine
    from fqliscs_tf.metrics import psnr
    from fqliscs_tf.utils import provenance
    for form in forms:
        TwinOptions(gelu=form)  # ValueError naming a bad form before any work
    calibration = list_images(args.calibration)
    if len(calibration) < 4:
        raise SystemExit(f"--calibration needs at least 4 images, {args.calibration!r} has "
                         f"{len(calibration)}")
    images, calib, reference = engine_crops(args.model, calibration, args.size, args.size, snrs)
    qat = qat_from_engine(args.model)
    rows = {}
    for form in forms:
        start = time.time()
        folder = os.path.join(args.workdir, f"{args.size}_{form}")
        export_tflite(qat, folder, args.size, args.size, images=calib,
                      options=TwinOptions(gelu=form))
        codec = TFLiteCodec(folder, "awgn")
        rows[form] = {f"{s:g}": float(np.mean(psnr(images, codec(images, s, seed=(0, 0))
                                                   ["x_hat"]).numpy() - reference[s]))
                      for s in snrs}
        with open(os.path.join(folder, MANIFEST_FILE)) as f:
            rows[form + "_slopes"] = json.load(f).get("gelu_slopes")
        print(f"gelu={form}: TFLite - engine [dB] "
              + ", ".join(f"{k} dB {v:+.3f}" for k, v in rows[form].items())
              + f" ({time.time() - start:.0f} s)", flush=True)
    result = {"model": args.model, "size": args.size, "snr_db": snrs,
              "engine_psnr_db": {f"{s:g}": float(np.mean(v)) for s, v in reference.items()},
              "tflite_minus_engine_db": {f: rows[f] for f in forms},
              "gelu_slopes": {f: rows[f + "_slopes"] for f in forms},
              "provenance": provenance(command=" ".join(sys.argv))}
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
