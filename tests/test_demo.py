"""The demo CLI (experiments/demo.py) and the plotting helpers it uses.

A tiny untrained float codec and 32x48 images keep these fast; the shipped models run in
tests/test_shipped_model.py.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments import demo
from experiments import evaluate as ev
from fqliscs_tf import plotting
from fqliscs_tf.checkpoints import export_model
from fqliscs_tf.codec import JSCC
from fqliscs_tf.presets import CodecConfig
from fqliscs_tf.utils import set_seed

TINY = CodecConfig("tiny", (16, 24), (1, 2), (2, 2), window_size=2, C=8, modnet_layers=2,
                   modnet_hidden_ratio=1.0, modulator_hidden=8)


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


@pytest.fixture(scope="module")
def demo_run(tiny_model_dir, image_dir, tmp_path_factory):
    """Float codec + separation (AWGN only) + capacity over AWGN and OFDM-CDL at 1 and 13 dB."""
    outdir = tmp_path_factory.mktemp("demo_out")
    assert demo.main(["--systems", f"float:{tiny_model_dir}", "separation:jpeg,only=awgn",
                      "capacity:jpeg", "--images", image_dir, "--snrs", "1,13",
                      "--channels", "awgn,ofdm-cdl", "--outdir", str(outdir)]) == 0
    with open(outdir / "demo_results.json") as f:
        return outdir, json.load(f)


def test_demo_results_json(demo_run, tiny_model_dir):
    _, saved = demo_run
    ev.validate_results(saved)
    assert saved["name"] == "fqliscs-demo"
    jscc = f"float:{tiny_model_dir}"
    cells = [(r["system"], r["channel"], r["snr_db"]) for r in saved["records"]]
    assert cells == [(jscc, "awgn", 1.0), (jscc, "awgn", 13.0),
                     ("separation:jpeg", "awgn", 1.0), ("separation:jpeg", "awgn", 13.0),
                     ("capacity:jpeg", "awgn", 1.0), ("capacity:jpeg", "awgn", 13.0),
                     (jscc, "ofdm-cdl", 1.0), (jscc, "ofdm-cdl", 13.0)]
    for r in saved["records"]:
        assert r["num_images"] == 2 and r["cbr"] == pytest.approx(TINY.cbr)
        assert math.isfinite(r["psnr"]) and 0 < r["psnr"] < 100
        assert math.isfinite(r["ms_ssim"]) and -1 <= r["ms_ssim"] <= 1
    # Capacity cannot serve OFDM: skipped with the reason, not an error (separation: only=).
    assert [(k["system"], k["channel"]) for k in saved["skipped"]] == [
        ("capacity:jpeg", "ofdm-cdl")]
    assert all("cannot serve channel 'ofdm-cdl'" in k["reason"] for k in saved["skipped"])
    meta = saved["meta"]
    assert meta["complete"] is True and "git_commit" in meta and "load_average_at_start" in meta
    config = meta["config"]
    assert config["seed"] == 1024 and config["image_names"] == ["img0.png", "img1.png"]
    assert [c["type"] for c in config["channels"]] == ["awgn", "ofdm-cdl"]
    assert "CDL-A" in config["channels"][1]["description"]


def test_demo_figures(demo_run):
    outdir, saved = demo_run
    names = ["psnr_vs_snr_awgn.png", "ms_ssim_vs_snr_awgn.png", "psnr_vs_snr_ofdm-cdl.png",
             "ms_ssim_vs_snr_ofdm-cdl.png", "reconstruction_grid.png"]
    assert saved["files"] == ["demo_results.json"] + names
    for name in names:
        width, height = _open_png(outdir / name)
        assert width > 100 and height > 50
    # 2 rows; columns: original, float codec at 1 and 13 dB, separation at 1 dB.
    width, height = _open_png(outdir / "reconstruction_grid.png")
    assert width > height


def test_demo_table_only_option_and_paths(tiny_model_dir, image_dir, tmp_path, capsys):
    demo.main(["--systems", f"float:{tiny_model_dir},only=rayleigh", "capacity:jpeg",
               "--images", image_dir, "--snrs", "4", "--channels", "awgn,rayleigh,ofdm-cdl",
               "--max-images", "1", "--outdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "PSNR [dB] / MS-SSIM, mean over 1 image(s)" in out
    assert "OFDM 3GPP CDL-A" in out and "n/a: capacity is simulated on AWGN" in out
    assert str(tmp_path / "demo_results.json") in out
    records = json.loads((tmp_path / "demo_results.json").read_text())["records"]
    # only=rayleigh keeps the float codec off AWGN and OFDM-CDL; nothing runs on OFDM-CDL.
    assert [(r["kind"], r["channel"], r["num_images"]) for r in records] == [
        ("capacity", "awgn", 1), ("float", "rayleigh", 1), ("capacity", "rayleigh", 1)]
    assert not (tmp_path / "psnr_vs_snr_ofdm-cdl.png").exists()


@pytest.mark.parametrize("argv,match", [
    (["--channels", "awgn,fading"], "'fading'"), (["--channels", "awgn,,rayleigh"], "comma"),
    (["--channels", "awgn,awgn"], "twice"), (["--snrs", "1,x"], "--snrs"),
    (["--max-images", "-1"], "--max-images"), (["--seed", "-2"], "--seed")])
def test_demo_bad_arguments(tiny_model_dir, tmp_path, argv, match):
    with pytest.raises(ValueError, match=match):
        demo.main(["--systems", f"float:{tiny_model_dir}", *argv, "--outdir", str(tmp_path)])
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("systems,match", [
    (["float:{m},only=fading"], "only='fading'"), (["float:{m}", "float:{m},only=awgn"], "twice"),
    (["heatmap:{m}"], "unknown system kind"), (["separation:jpeg,mcs=x"], "not an integer")])
def test_demo_bad_systems(tiny_model_dir, tmp_path, systems, match):
    with pytest.raises(ValueError, match=match):
        demo.main(["--systems", *[s.format(m=tiny_model_dir) for s in systems],
                   "--outdir", str(tmp_path)])


def test_demo_no_system_serves_the_channels(tmp_path):
    with pytest.raises(ValueError, match="no system can serve"):
        demo.main(["--systems", "capacity:jpeg", "--channels", "ofdm-cdl",
                   "--outdir", str(tmp_path)])


def test_demo_missing_model(tmp_path):
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(FileNotFoundError) as err:
        demo.main(["--systems", f"int:{missing}", "--outdir", str(tmp_path / "out")])
    message = str(err.value)
    assert missing in message and "fqliscs-train" in message and "export" in message
    assert not (tmp_path / "out").exists()


def test_demo_defaults_point_into_package():
    args = demo.build_parser().parse_args([])
    assert args.systems == list(demo.DEFAULT_SYSTEMS) == [
        "int:lite_c96_awgn_int,only=awgn", "int:lite_c96_rayleigh_int,only=rayleigh",
        "int:lite_c96_ofdm_cdl_int,only=ofdm-cdl", "float:lite_c96_awgn,only=awgn+ofdm-cdl",
        "float:lite_c96_rayleigh,only=rayleigh", "separation:best", "capacity:best"]
    for spec in args.systems[:5]:  # shipped model names resolve to their folders
        folder = Path(ev.resolve_model_dir(spec.split(":", 1)[1].split(",")[0]))
        assert folder.parent == ev.WEIGHTS_DIR and folder.is_dir()
    assert args.outdir == "outputs"
    assert sorted(p.name for p in Path(args.images).iterdir()) == [
        "kodim05.png", "kodim15.png", "kodim20.png", "kodim23.png"]
    assert (args.snrs, args.channels, args.max_images, args.seed) == (
        "1,4,7,10,13", "awgn,rayleigh,ofdm-cdl", 0, 1024)


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
    bpg = plotting.PUBLISHED_REFERENCES["awgn"][1]  # anchors.md §2.3, "BPG + capacity"
    assert "BPG + capacity" in bpg["label"] and bpg["values"] == [29.9, 31.54, 33.18, 34.69, 36.0]
    assert plotting.PUBLISHED_REFERENCES["rayleigh"] == [rayleigh]


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
