"""Turn a finished training run into a shipped model folder under fqliscs_tf/weights/.

    python -m experiments.ship runs/lite_c96_awgn --name lite_c96_awgn

Writes float16 weights (half the size; loaded back into float32) and records a reference
PSNR on the bundled image ``kodim05.png`` at 10 dB, noiseless and over AWGN with seed 1234,
which ``tests/test_shipped_model.py`` checks.
"""
import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main", "reference_psnr"]

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


def main(argv=None):
    from fqliscs_tf.checkpoints import export_model, load_model, read_model_info
    p = argparse.ArgumentParser(prog="python -m experiments.ship", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="training run folder (with export/) or an exported model folder")
    p.add_argument("--name", required=True, help="folder name under fqliscs_tf/weights/")
    p.add_argument("--note", default="", help="free text stored in model.json")
    args = p.parse_args(argv)
    src = os.path.join(args.run, "export") if os.path.isdir(os.path.join(args.run, "export")) \
        else args.run
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
