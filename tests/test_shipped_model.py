"""The shipped weights load and reproduce their recorded PSNR; the demo runs end to end."""
import json
from pathlib import Path

import pytest
import tensorflow as tf

import fqliscs_tf
from experiments import demo
from fqliscs_tf.checkpoints import load_model, read_model_info
from fqliscs_tf.data import load_image
from fqliscs_tf.metrics import psnr
from fqliscs_tf.utils import set_seed

PACKAGE = Path(fqliscs_tf.__file__).resolve().parent
SHIPPED = PACKAGE / "weights" / "lite_c96_awgn"
IMAGE = PACKAGE / "assets" / "kodak" / "kodim05.png"


def _psnr(model, snr_db=10.0):
    x = tf.constant(load_image(IMAGE)[None], tf.float32) / 255.0
    x_hat = tf.clip_by_value(model((x, tf.constant([snr_db])))["x_hat"], 0.0, 1.0)
    return float(psnr(x, x_hat)[0])


def test_shipped_model_reproduces_its_recorded_psnr():
    ref = read_model_info(SHIPPED)["meta"]["reference_psnr"]
    assert ref["image"] == IMAGE.name
    model = load_model(SHIPPED, channel_type="none")
    assert model.config.name == "lite" and model.cbr == pytest.approx(1 / 16)
    assert _psnr(model, ref["snr_db"]) == pytest.approx(ref["channel_none"], abs=0.05)
    model.set_channel("awgn")
    set_seed(1234)
    assert _psnr(model, ref["snr_db"]) == pytest.approx(ref["awgn_seed_1234"], abs=0.05)


def test_demo_reduced_mode_with_shipped_model(tmp_path):
    out = tmp_path / "out"
    assert demo.main(["--max-images", "1", "--snrs", "1,13", "--channels", "awgn,rayleigh",
                      "--outdir", str(out)]) == 0
    records = json.loads((out / "demo_results.json").read_text())["records"]
    assert len(records) == 4
    by_key = {(r["channel"], r["snr_db"]): r["psnr"] for r in records}
    # Graceful degradation: higher SNR never hurts by more than noise.
    assert by_key[("awgn", 13.0)] > by_key[("awgn", 1.0)]
    assert by_key[("awgn", 1.0)] > 20.0
    for name in ("psnr_vs_snr.png", "ms_ssim_vs_snr.png", "reconstruction_grid.png"):
        assert (out / name).stat().st_size > 1000
