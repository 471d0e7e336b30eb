"""The demo CLI (experiments/demo.py) and the plotting helpers it uses."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments import demo
from fqliscs_tf import plotting
from fqliscs_tf.checkpoints import export_model
from fqliscs_tf.codec import JSCC
from fqliscs_tf.presets import CodecConfig
from fqliscs_tf.utils import set_seed

TINY = CodecConfig("tiny", (16, 24), (1, 2), (2, 2), window_size=2, C=8, modnet_layers=2,
                   modnet_hidden_ratio=1.0, modulator_hidden=8)
FIELDS = {"model", "channel", "snr_db", "cbr", "psnr", "ms_ssim", "num_images"}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    set_seed(3)
    path = tmp_path_factory.mktemp("tiny_model")
    export_model(JSCC(TINY, "awgn").build_for(), str(path), note="untrained test model")
    return str(path)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(2):
        ramp = np.linspace(0, 255, 48)[None, :, None] * np.ones((32, 1, 3))
        image = np.clip(ramp + rng.normal(0, 20, (32, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(path / f"img{i}.png")
    return str(path)


def _open_png(path):
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG"
        return img.size


def test_demo_end_to_end(tiny_model_dir, image_dir, tmp_path):
    outdir = tmp_path / "out"
    assert demo.main(["--model", tiny_model_dir, "--images", image_dir, "--snrs", "1,13",
                      "--channels", "awgn,rayleigh", "--outdir", str(outdir)]) == 0
    with open(outdir / "demo_results.json") as f:
        saved = json.load(f)
    records = saved["records"]
    assert [(r["channel"], r["snr_db"]) for r in records] == [
        ("awgn", 1.0), ("awgn", 13.0), ("rayleigh", 1.0), ("rayleigh", 13.0)]
    for r in records:
        assert set(r) == FIELDS
        assert r["model"] == "tiny" and r["num_images"] == 2
        assert r["cbr"] == pytest.approx(TINY.cbr)
        assert math.isfinite(r["psnr"]) and 0 < r["psnr"] < 100
        assert math.isfinite(r["ms_ssim"]) and -1 <= r["ms_ssim"] <= 1
    meta = saved["meta"]
    assert meta["seed"] == 1024 and meta["channels"] == ["awgn", "rayleigh"]
    assert meta["image_names"] == ["img0.png", "img1.png"] and "git_commit" in meta
    for name in ("psnr_vs_snr.png", "ms_ssim_vs_snr.png", "reconstruction_grid.png"):
        width, height = _open_png(outdir / name)
        assert width > 100 and height > 50
    # 2 rows; columns: original + 2 AWGN SNRs + Rayleigh at 1 dB.
    width, height = _open_png(outdir / "reconstruction_grid.png")
    assert width > height


def test_demo_max_images(tiny_model_dir, image_dir, tmp_path):
    demo.main(["--model", tiny_model_dir, "--images", image_dir, "--snrs", "4",
               "--channels", "none", "--max-images", "1", "--outdir", str(tmp_path)])
    with open(tmp_path / "demo_results.json") as f:
        results = json.load(f)
    assert [r["num_images"] for r in results["records"]] == [1]


@pytest.mark.parametrize("channels,match", [("awgn,fading", "'fading'"),
                                            ("awgn,,rayleigh", "comma"), ("awgn,awgn", "twice")])
def test_demo_bad_channels(tiny_model_dir, tmp_path, channels, match):
    with pytest.raises(ValueError, match=match):
        demo.main(["--model", tiny_model_dir, "--channels", channels, "--outdir", str(tmp_path)])


def test_demo_bad_snrs_and_max_images(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="--snrs"):
        demo.main(["--model", tiny_model_dir, "--snrs", "1,x", "--outdir", str(tmp_path)])
    with pytest.raises(ValueError, match="--max-images"):
        demo.main(["--model", tiny_model_dir, "--max-images", "-1", "--outdir", str(tmp_path)])


def test_demo_missing_model(tmp_path):
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(FileNotFoundError) as err:
        demo.main(["--model", missing, "--outdir", str(tmp_path / "out")])
    message = str(err.value)
    assert missing in message and "fqliscs-train" in message and "export" in message
    assert not (tmp_path / "out").exists()


def test_demo_defaults_point_into_package():
    args = demo.build_parser().parse_args([])
    assert args.model.endswith("weights/lite_c96_awgn") and args.outdir == "outputs"
    assert sorted(p.name for p in Path(args.images).iterdir()) == [
        "kodim05.png", "kodim15.png", "kodim20.png", "kodim23.png"]
    assert (args.snrs, args.channels, args.max_images, args.seed) == (
        "1,4,7,10,13", "awgn,rayleigh", 0, 1024)


def test_plot_metric_vs_snr(tmp_path):
    curves = [{"label": "ours, AWGN", "snr_db": [1, 7, 13], "values": [25.0, 27.5, 29.0]}]
    path = plotting.plot_metric_vs_snr(curves, str(tmp_path / "sub" / "psnr.png"), "psnr",
                                       title="t", references=list(
                                           plotting.WITT_REFERENCES.values()))
    _open_png(path)
    plotting.plot_metric_vs_snr([{"label": "x", "snr_db": [1], "values": [0.9]}],
                                str(tmp_path / "msssim.png"), metric="ms_ssim")
    _open_png(tmp_path / "msssim.png")
    with pytest.raises(ValueError, match="'bits'"):
        plotting.plot_metric_vs_snr(curves, str(tmp_path / "x.png"), metric="bits")
    with pytest.raises(ValueError, match="2 SNRs but 1 values"):
        plotting.plot_metric_vs_snr([{"label": "bad", "snr_db": [1, 2], "values": [3]}],
                                    str(tmp_path / "x.png"))


def test_witt_references_match_anchors():
    awgn, rayleigh = plotting.WITT_REFERENCES["awgn"], plotting.WITT_REFERENCES["rayleigh"]
    assert awgn["snr_db"] == rayleigh["snr_db"] == [1, 4, 7, 10, 13]
    assert awgn["values"] == [29.67, 31.31, 32.63, 33.60, 34.29]
    assert rayleigh["values"] == [28.31, 29.44, 30.26, 30.81, 31.18]
    assert all("published" in r["label"] for r in (awgn, rayleigh))


def test_reconstruction_grid(tmp_path):
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (512, 768, 3), dtype=np.uint8)
    rows = [[big, rng.random((512, 768, 3)).astype(np.float32) * 1.2 - 0.1],  # float, clipped
            [big[:256, :384]]]                                                # shorter row
    titles = [["original", "AWGN 1 dB\n27.3 dB"], ["original"]]
    path = plotting.reconstruction_grid(rows, str(tmp_path / "grid.png"), titles)
    width, height = _open_png(path)
    assert width <= 2 * 256 + 10  # downscaled to ~256 pixels per cell
    plotting.reconstruction_grid([[big, big]], str(tmp_path / "g2.png"), ["a", "b"])
    with pytest.raises(ValueError, match="titles"):
        plotting.reconstruction_grid(rows, str(tmp_path / "g3.png"), [["a"], ["b"]])
    with pytest.raises(ValueError, match="shape"):
        plotting.reconstruction_grid([[np.zeros((4, 4))]], str(tmp_path / "g4.png"))
