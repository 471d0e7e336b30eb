"""Turn a finished training run into a shipped model folder under fqliscs_tf/weights/.

    python -m experiments.ship runs/lite_c96_awgn --name lite_c96_awgn
    python -m experiments.ship runs/lite_c96_awgn_qat --integer --name lite_c96_awgn_int

Float runs: writes float16 weights (half the size; loaded back into float32). QAT runs
(``--integer``): exports the integer engine's parameters (int8 kernels, int32 biases, dyadic
multipliers: ``engine.json`` + ``engine.npz``). Both record a reference PSNR on the bundled
image ``kodim05.png`` at 10 dB, noiseless and over AWGN with seed 1234, which
``tests/test_shipped_model.py`` checks.
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


def ship_integer(src, dst, note=""):
    """QAT export folder -> integer engine folder with its reference PSNR."""
    from fqliscs_tf.engine import IntegerCodec, export_integer_codec, save_integer_codec
    from fqliscs_tf.quant.qat import load_qat
    qat = load_qat(src)
    params = export_integer_codec(qat, **dict(getattr(qat, "meta", {}), source=str(src),
                                              note=note, channel_type=qat.channel_type))
    params.meta["reference_psnr"] = integer_reference_psnr(IntegerCodec(params))
    save_integer_codec(params, str(dst))
    return params


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.ship", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="training run folder (with export/) or an exported model folder")
    p.add_argument("--name", required=True, help="folder name under fqliscs_tf/weights/")
    p.add_argument("--note", default="", help="free text stored in model.json")
    p.add_argument("--integer", action="store_true",
                   help="the run is a QAT run (train.py --qat): ship the integer engine "
                        "parameters instead of float16 weights")
    args = p.parse_args(argv)
    from fqliscs_tf.checkpoints import export_model, load_model, model_folder, read_model_info
    src = model_folder(args.run)
    if args.integer:
        dst = PACKAGE_DIR / "weights" / args.name
        params = ship_integer(src, dst, args.note)
        print(f"shipped {dst}: {json.dumps(params.meta['reference_psnr'])}")
        return 0
    info = read_model_info(src)
    model = load_model(src)
    dst = PACKAGE_DIR / "weights" / args.name
    meta = dict(info.get("meta", {}), source=src, note=args.note)
    export_model(model, dst, weights_dtype="float16", **meta)
    shipped = load_model(dst)
    info = read_model_info(dst)
    info["meta"]["reference_psnr"] = reference_psnr(shipped)
    with open(dst / "model.json", "w") as f:
        json.dump(info, f, indent=2)
    print(f"shipped {dst}: {json.dumps(info['meta']['reference_psnr'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
