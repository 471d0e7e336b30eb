"""The shipped weights load and reproduce their recorded PSNR; the demo runs end to end."""
import json
from pathlib import Path

import pytest

import fqliscs_tf
from experiments import demo
from experiments.ship import reference_psnr
from fqliscs_tf.checkpoints import load_model, read_model_info

PACKAGE = Path(fqliscs_tf.__file__).resolve().parent
SHIPPED = PACKAGE / "weights" / "lite_c96_awgn"
IMAGE = PACKAGE / "assets" / "kodak" / "kodim05.png"


def test_shipped_model_reproduces_its_recorded_psnr():
    stored = read_model_info(SHIPPED)["meta"]["reference_psnr"]
    model = load_model(SHIPPED)
    assert model.config.name == "lite" and model.cbr == pytest.approx(1 / 16)
    measured = reference_psnr(model)
    assert measured["image"] == stored["image"] == IMAGE.name
    for key in ("channel_none", "awgn_seed_1234"):
        assert measured[key] == pytest.approx(stored[key], abs=0.05), key
    assert stored["channel_none"] > 20.0


def test_demo_reduced_mode_with_shipped_model(tmp_path):
    out = tmp_path / "out"
    assert demo.main(["--max-images", "1", "--snrs", "1,13", "--channels", "awgn,rayleigh",
                      "--outdir", str(out)]) == 0
    records = json.loads((out / "demo_results.json").read_text())["records"]
    assert len(records) == 4
    by_key = {(r["channel"], r["snr_db"]): r["psnr"] for r in records}
    # Graceful degradation: higher SNR never hurts by more than noise.
    assert by_key[("awgn", 13.0)] > by_key[("awgn", 1.0)]
    assert by_key[("awgn", 1.0)] > 18.0
    for name in ("psnr_vs_snr.png", "ms_ssim_vs_snr.png", "reconstruction_grid.png"):
        assert (out / name).stat().st_size > 1000
