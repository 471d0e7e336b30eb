"""The shipped models reproduce their recorded PSNR; the demo runs end to end with them."""
import json
import math
from pathlib import Path

import pytest

import fqliscs_tf
from experiments import demo
from experiments.ship import integer_reference_psnr, reference_psnr
from fqliscs_tf.checkpoints import load_model, read_model_info
from fqliscs_tf.engine import IntegerCodec

WEIGHTS = Path(fqliscs_tf.__file__).resolve().parent / "weights"
IMAGE = "kodim05.png"
KEYS = ("channel_none", "awgn_seed_1234")


@pytest.mark.parametrize("name,channel,family,cbr", [
    ("lite_c96_awgn", "awgn", "lite", 1 / 16), ("lite_c96_rayleigh", "rayleigh", "lite", 1 / 16),
    ("deepjscc_c96_awgn", "awgn", "deepjscc", 1 / 16), ("lite_c32_awgn", "awgn", "lite", 1 / 48)])
def test_shipped_float_model_reproduces_its_recorded_psnr(name, channel, family, cbr):
    info = read_model_info(WEIGHTS / name)
    stored = info["meta"]["reference_psnr"]
    model = load_model(WEIGHTS / name)
    assert info["channel_type"] == channel
    assert model.config.name == family and model.cbr == pytest.approx(cbr)
    measured = reference_psnr(model)
    assert measured["image"] == stored["image"] == IMAGE
    for key in KEYS:
        assert measured[key] == pytest.approx(stored[key], abs=0.05), key
    assert stored["channel_none"] > 20.0


@pytest.mark.parametrize("name,channel", [
    ("lite_c96_awgn_int", "awgn"), ("lite_c96_rayleigh_int", "rayleigh"),
    ("lite_c96_ofdm_cdl_int", "ofdm-cdl"), ("lite_c96_awgn_r8_int", "awgn"),
    ("lite_c96_rayleigh_r8_int", "rayleigh")])
def test_shipped_integer_codec_reproduces_its_recorded_psnr(name, channel):
    """Each integer codec, whatever link it was trained through, is checked on the integer
    AWGN channel (the reference the ship script records)."""
    codec = IntegerCodec(str(WEIGHTS / name))
    stored = codec.params.meta["reference_psnr"]
    assert codec.params.meta["channel_type"] == channel
    assert codec.config.name == "lite" and codec.cbr == pytest.approx(1 / 16)
    measured = integer_reference_psnr(codec)
    assert measured["image"] == stored["image"] == IMAGE
    for key in KEYS:
        assert measured[key] == pytest.approx(stored[key], abs=0.05), key
    assert stored["channel_none"] > 20.0


def _one_crop(folder, side=256):
    """kodim05's centre ``side`` x ``side`` crop, alone in ``folder`` (the demo's reduced mode)."""
    from PIL import Image
    img = Image.open(Path(fqliscs_tf.__file__).resolve().parent / "assets" / "kodak" / IMAGE)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    folder.mkdir()
    img.crop((left, top, left + side, top + side)).save(folder / IMAGE)
    return folder


def test_demo_reduced_mode_with_shipped_models(tmp_path):
    """The default systems (an integer and a float codec per channel, separation, capacity)
    on one image (a 256x256 crop) at two SNRs over AWGN, Rayleigh and OFDM-CDL: the integer
    codecs use the integer channel on AWGN/Rayleigh, and the OFDM-CDL-trained one sends its
    int8 symbols through the float Sionna OFDM link."""
    out = tmp_path / "out"
    images = _one_crop(tmp_path / "images")
    assert demo.main(["--images", str(images), "--snrs", "1,13", "--jobs", "1",
                      "--channels", "awgn,rayleigh,ofdm-cdl", "--outdir", str(out)]) == 0
    saved = json.loads((out / "demo_results.json").read_text())
    psnr = {(r["kind"], r["channel"], r["snr_db"]): r["psnr"] for r in saved["records"]}
    for ch in ("awgn", "rayleigh", "ofdm-cdl"):
        for kind in ("int", "float"):  # graceful: better at 13 dB, and usable at 1 dB
            assert psnr[(kind, ch, 13.0)] > psnr[(kind, ch, 1.0)] > 17.0, (kind, ch)
    assert abs(psnr[("int", "awgn", 13.0)] - psnr[("float", "awgn", 13.0)]) < 1.0
    for ch in ("awgn", "rayleigh"):  # the capacity bound is above the simulated separation link
        for snr in (1.0, 13.0):
            assert psnr[("capacity", ch, snr)] >= psnr[("separation", ch, snr)] - 0.05
    assert all(math.isfinite(p) for p in psnr.values())
    for name in saved["files"]:
        assert (out / name).stat().st_size > 1000
    assert "reconstruction_grid.png" in saved["files"]


def test_ship_turns_a_run_folder_into_a_float16_model_folder(tmp_path, monkeypatch):
    from experiments import ship
    from fqliscs_tf.checkpoints import export_model
    from fqliscs_tf.codec import JSCC
    from fqliscs_tf.presets import CodecConfig
    model = JSCC(CodecConfig("tiny", (16, 24), (1, 2), (2, 2), window_size=2, C=8,
                             modnet_layers=2, modulator_hidden=8), "awgn").build_for()
    export_model(model, tmp_path / "run" / "export", steps=3)
    monkeypatch.setattr(ship, "PACKAGE_DIR", tmp_path / "pkg")
    assert ship.main([str(tmp_path / "run"), "--name", "m", "--note", "test"]) == 0
    info = read_model_info(tmp_path / "pkg" / "weights" / "m")
    assert info["weights_dtype"] == "float16"
    assert info["meta"]["steps"] == 3 and info["meta"]["note"] == "test"
    assert set(KEYS) <= set(info["meta"]["reference_psnr"])


def test_shipped_weights_fit_the_budget_and_each_base_is_shipped():
    """20 MB in all (issue 6); a folder stored as differences names a shipped folder."""
    total = sum(f.stat().st_size for f in WEIGHTS.rglob("*") if f.is_file())
    assert total < 20_000_000, total
    for info_file in WEIGHTS.glob("*/*.json"):
        with open(info_file) as f:
            base = json.load(f).get("base")
        if base:
            assert (info_file.parent / base["folder"] / info_file.name).is_file(), info_file


def test_ship_base_and_repack_options(tmp_path, monkeypatch, capsys):
    from experiments import ship
    from fqliscs_tf.checkpoints import export_model
    from fqliscs_tf.codec import JSCC
    from fqliscs_tf.presets import CodecConfig
    model = JSCC(CodecConfig("tiny", (16, 24), (1, 2), (2, 2), window_size=2, C=8,
                             modnet_layers=2, modulator_hidden=8), "awgn").build_for()
    export_model(model, tmp_path / "run" / "export", steps=3)
    monkeypatch.setattr(ship, "PACKAGE_DIR", tmp_path / "pkg")
    assert ship.main([str(tmp_path / "run"), "--name", "parent"]) == 0
    assert ship.main([str(tmp_path / "run"), "--name", "child", "--base", "parent"]) == 0
    assert read_model_info(tmp_path / "pkg" / "weights" / "child")["base"]["folder"] == "../parent"
    load_model(tmp_path / "pkg" / "weights" / "child")
    with pytest.raises(SystemExit):                          # child depends on parent
        ship.main([str(tmp_path / "run"), "--name", "parent"])
    assert "child stored as differences from 'parent'" in capsys.readouterr().err
    assert ship.main(["--repack", "child"]) == 0            # stored whole again
    assert ship.main([str(tmp_path / "run"), "--name", "parent"]) == 0
    assert "base" not in read_model_info(tmp_path / "pkg" / "weights" / "child")
    for argv, match in ((["--repack", "nope"], "no shipped folder"),
                        ([str(tmp_path / "run"), "--name", "x", "--base", "nope"], "--base 'nope'"),
                        (["--repack", "child", "--name", "x"], "not a run or --name"),
                        ([str(tmp_path / "run")], "needs the run folder and --name")):
        with pytest.raises(SystemExit):
            ship.main(argv)
        assert match in capsys.readouterr().err
