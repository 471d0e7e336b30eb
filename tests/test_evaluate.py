# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""The evaluation command (experiments/evaluate.py): schema, seeds, resume, errors, registry."""
import configparser
import copy
import csv
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments import evaluate as ev

MODEL = ev.DEFAULT_MODEL  # the shipped lite model: sides must be multiples of 128
SIZE = 128
BASE = ["--snrs", "4,13", "--repeats", "2", "--seed", "5"]
FIRST_SYSTEMS = [f"float:{MODEL}", "separation:jpeg", "separation:best", "capacity:jpeg"]
CELL_KEYS = ("system", "channel", "snr_db")


def _smooth(phase, rng):
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    img = np.stack([128 + 100 * np.sin(2 * np.pi * x + phase), 128 + 100 * np.cos(3 * np.pi * y),
                    128 + 80 * np.sin(2 * np.pi * (x + y))], axis=-1)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(_smooth(i, rng)).save(path / f"img{i}.png")
    return str(path)


@pytest.fixture(scope="module")
def first_run(image_dir, tmp_path_factory):
    """Four systems x 2 channels x 2 SNRs x 2 images x 2 repeats, with every output file."""
    outdir = tmp_path_factory.mktemp("first")
    assert ev.main(["--systems", *FIRST_SYSTEMS, "--images", image_dir, "--channels",
                    "awgn,rayleigh", "--outdir", str(outdir), *BASE]) == 0
    with open(outdir / "results.json") as f:
        return outdir, json.load(f)


def _cells(per_image, systems=None, channels=None):
    return [r for r in per_image if (systems is None or r["system"] in systems)
            and (channels is None or r["channel"] in channels)]


def test_results_follow_the_schema(first_run):
    outdir, res = first_run
    ev.validate_results(res)
    assert res["schema"] == ev.SCHEMA and res["name"] == "fqliscs-evaluate"
    meta = res["meta"]
    assert meta["complete"] is True and meta["resumed_cells"] == 0
    assert meta["command"].startswith("fqliscs-evaluate --systems")
    for key in ("git_commit", "date", "machine", "tensorflow", "sionna", "fqliscs_tf"):
        assert meta[key]
    cfg = meta["config"]
    assert cfg["image_names"] == ["img0.png", "img1.png"] and cfg["seed"] == 5
    assert cfg["repeats"] == 2 and cfg["cbr"] == pytest.approx(1 / 16) and cfg["fit"] == "crop"
    assert [s["name"] for s in res["systems"]] == FIRST_SYSTEMS
    assert [s["kind"] for s in res["systems"]] == ["float", "separation", "separation",
                                                   "capacity"]
    assert len(res["cells"]) == len(res["records"]) == 4 * 2 * 2
    assert len(res["results"]) == 4 * 2 and all(c["snr_db"] == [4.0, 13.0]
                                                 for c in res["results"])
    for rec in res["records"]:
        assert set(rec) == set(ev.RECORD_FIELDS)
        deterministic = rec["kind"] == "capacity"
        assert rec["num_images"] == 2 and rec["repeats"] == (1 if deterministic else 2)
        assert rec["num_samples"] == rec["num_images"] * rec["repeats"]
        samples = [r for r in res["per_image"]
                   if tuple(r[k] for k in CELL_KEYS) == tuple(rec[k] for k in CELL_KEYS)]
        assert len(samples) == rec["num_samples"]
        assert rec["psnr"] == pytest.approx(np.mean([r["psnr"] for r in samples]))
        assert rec["psnr_std"] == pytest.approx(np.std([r["psnr"] for r in samples], ddof=1))
        assert rec["psnr_ci95"] >= 0 and rec["ms_ssim_ci95"] >= 0
        assert 0 <= rec["success_rate"] <= 1
    for r in res["per_image"]:
        assert set(r) == set(ev.PER_IMAGE_FIELDS)
        assert (r["height"], r["width"]) == (SIZE, SIZE) and math.isfinite(r["psnr"])
        assert 0 <= r["ms_ssim"] <= 1
        if r["kind"] == "float":
            assert r["codec"] is None and r["bpp"] is None and r["status"] == "ok"
        else:
            assert r["status"] in ("ok", "block_error", "no_error_free_mcs", "budget_too_small")
            assert r["bpp"] == pytest.approx(8 * r["num_bytes"] / SIZE ** 2)
    # CSV files: the averaged records and the per-image ones.
    with open(outdir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(res["records"]) and list(rows[0]) == list(ev.RECORD_FIELDS)
    assert float(rows[0]["psnr"]) == pytest.approx(res["records"][0]["psnr"])
    with open(outdir / "per_image.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(res["per_image"])
    for name in ("psnr_vs_snr.png", "ms_ssim_vs_snr.png", "reconstruction_grid.png"):
        with Image.open(outdir / name) as img:
            assert img.format == "PNG" and img.size[0] > 100


def test_validate_results_rejects_broken_files(first_run):
    _, res = first_run
    broken = copy.deepcopy(res)
    del broken["per_image"][0]["psnr"]
    with pytest.raises(ValueError, match=r"per_image\[0\]"):
        ev.validate_results(broken)
    broken = copy.deepcopy(res)
    broken["schema"] = "other/1"
    with pytest.raises(ValueError, match="schema"):
        ev.validate_results(broken)
    broken = copy.deepcopy(res)
    broken["results"][0]["psnr"].pop()
    with pytest.raises(ValueError, match="aligned"):
        ev.validate_results(broken)


def test_baselines_behave(first_run):
    _, res = first_run
    by_cell = {(r["system"], r["channel"], r["snr_db"], r["image"], r["repeat"]): r
               for r in res["per_image"]}
    for (system, channel, snr, image, rep), r in by_cell.items():
        if system != "separation:jpeg" or r["status"] != "ok":
            continue
        # The transmitter's best codec is never worse than JPEG at the same MCS, and the
        # capacity bound (deterministic: repeat 0) is never below the real link.
        best = by_cell[("separation:best", channel, snr, image, rep)]
        assert best["mcs"] == r["mcs"] and best["psnr"] >= r["psnr"] - 1e-6
        assert by_cell[("capacity:jpeg", channel, snr, image, 0)]["psnr"] >= r["psnr"] - 1e-6
    ok = [r for r in res["per_image"] if r["system"] == "separation:best" and r["snr_db"] == 13]
    assert ok and all(r["status"] == "ok" and r["codec"] for r in ok)
    # 128x128 at CBR 1/16 is 3072 channel uses: at 4 dB on Rayleigh no error-free 5G
    # codeword fits, nothing is sent and the receiver shows the gray fallback image.
    low = [r for r in res["per_image"] if r["kind"] == "separation" and r["snr_db"] == 4
           and r["channel"] == "rayleigh"]
    assert {(r["status"], r["num_bytes"], r["mcs"], r["codec"]) for r in low} == {
        ("no_error_free_mcs", 0, None, None)}
    jscc = [r for r in res["per_image"] if r["kind"] == "float" and r["snr_db"] == 13]
    assert len({r["psnr"] for r in jscc}) == len(jscc)  # every repeat is a new realisation


def test_fixed_seed_gives_identical_results(first_run, image_dir, tmp_path):
    """A second run (fewer systems and channels) reproduces the first run's transmissions."""
    _, res = first_run
    systems = [f"float:{MODEL}", "separation:jpeg"]
    ev.main(["--systems", *systems, "--images", image_dir, "--channels", "awgn",
             "--outdir", str(tmp_path / "again"), "--no-figures", *BASE])
    with open(tmp_path / "again" / "results.json") as f:
        again = json.load(f)
    assert again["per_image"] == _cells(res["per_image"], systems, ["awgn"])
    assert again["records"] == [r for r in res["records"]
                                if r["system"] in systems and r["channel"] == "awgn"]
    # Another seed gives other channel realisations.
    ev.main(["--systems", systems[0], "--images", image_dir, "--channels", "awgn", "--snrs", "4",
             "--seed", "6", "--outdir", str(tmp_path / "other"), "--no-figures"])
    with open(tmp_path / "other" / "results.json") as f:
        other = json.load(f)["per_image"]
    first = [r for r in res["per_image"] if r["kind"] == "float" and r["channel"] == "awgn"
             and r["snr_db"] == 4 and r["repeat"] == 0]
    assert [r["psnr"] for r in other] != [r["psnr"] for r in first]


def test_interrupted_run_resumes_without_recomputing(first_run, image_dir, tmp_path,
                                                     monkeypatch):
    _, res = first_run
    systems = [f"float:{MODEL}", "separation:jpeg"]
    argv = ["--systems", *systems, "--images", image_dir, "--channels", "awgn",
            "--outdir", str(tmp_path), "--no-figures", *BASE]
    original = ev.SeparationSystem.transmit

    def failing(self, image, snr_db, seed):
        if snr_db == 13:
            raise RuntimeError("simulated crash")
        return original(self, image, snr_db, seed)

    monkeypatch.setattr(ev.SeparationSystem, "transmit", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ev.main(argv)
    with open(tmp_path / "results.json") as f:
        partial = json.load(f)
    ev.validate_results(partial)
    assert partial["meta"]["complete"] is False
    finished = [(c["system"], c["snr_db"]) for c in partial["cells"]]
    assert finished == [(systems[0], 4.0), (systems[0], 13.0), ("separation:jpeg", 4.0)]

    monkeypatch.setattr(ev.SeparationSystem, "transmit", original)
    computed = []
    run_cell = ev.run_cell

    def counting(system, channel, snr_db, images, **kw):
        computed.append((system.name, snr_db))
        return run_cell(system, channel, snr_db, images, **kw)

    monkeypatch.setattr(ev, "run_cell", counting)
    ev.main(argv + ["--resume"])
    assert computed == [("separation:jpeg", 13.0)]
    with open(tmp_path / "results.json") as f:
        done = json.load(f)
    assert done["meta"]["complete"] is True and done["meta"]["resumed_cells"] == 3
    assert done["per_image"] == _cells(res["per_image"], systems, ["awgn"])

    # Resuming with another seed, or without a finished cell, is refused.
    with pytest.raises(ValueError, match="seed=5, this run has 9"):
        ev.main(argv + ["--seed", "9", "--resume"])
    with pytest.raises(ValueError, match="does not plan"):
        ev.main(argv + ["--systems", systems[1], "--resume"])


def test_registered_system_kind(image_dir, tmp_path, monkeypatch):
    """The hook for the integer engine and TFLite kinds: a registered kind runs like any other."""

    class Identity(ev.System):
        kind = "identity"
        randomized = False

        def __init__(self, arg, options):
            super().__init__(arg, options)
            self.label = self.label or "lossless"
            self.cbr = 1.0

        def transmit(self, image, snr_db, seed):
            return {"x_hat": image}

    monkeypatch.setitem(ev.SYSTEMS, "identity", Identity)
    records = ev.run(ev._resolve(ev.build_parser().parse_args([
        "--systems", "identity:x,label=perfect", "--images", image_dir, "--channels", "none",
        "--snrs", "1", "--outdir", str(tmp_path), "--grid-images", "1", "--repeats", "3"])))
    assert [(r["label"], r["psnr"], r["ms_ssim"], r["num_samples"]) for r in records] == [
        ("perfect", 100.0, pytest.approx(1.0, abs=1e-5), 2)]
    assert (tmp_path / "reconstruction_grid.png").is_file()
    monkeypatch.delitem(ev.SYSTEMS, "identity")
    ev.register_system("identity", Identity)
    ev.register_system("identity", Identity)  # same factory again: fine
    with pytest.raises(ValueError, match="already registered"):
        ev.register_system("identity", ev.FloatSystem)
    ev.register_system("identity", ev.FloatSystem, replace=True)
    assert ev.SYSTEMS["identity"] is ev.FloatSystem
    monkeypatch.delitem(ev.SYSTEMS, "identity")
    for bad in ("Int", "int:x", ""):
        with pytest.raises(ValueError, match="lower-case"):
            ev.register_system(bad, Identity)


@pytest.mark.parametrize("extra,error,match", [
    (["--systems", "magic:x"], ValueError, "unknown system kind 'magic'"),
    (["--systems", "float"], ValueError, "expected KIND:ARG"),
    (["--systems", "separation:bpg"], ValueError, "Unknown image codec 'bpg'"),
    (["--systems", "capacity:jpeg2001"], ValueError, "Unknown image codec 'jpeg2001'"),
    (["--systems", "separation:jpeg,speed=3"], ValueError, "unknown option 'speed'"),
    (["--systems", "separation:jpeg,mcs=40"], ValueError, "Unknown MCS index 40"),
    (["--systems", "separation:jpeg,table=3"], ValueError, "unknown MCS table 3"),
    (["--systems", "separation:jpeg", "separation:jpeg"], ValueError, "twice"),
    (["--systems", "separation:jpeg", "--snrs", "1,50"], ValueError,
     "cannot serve SNR 50 dB.*40 dB"),
    (["--systems", "separation:jpeg", "--channels", "none"], ValueError,
     "cannot serve channel 'none'"),
    (["--systems", "capacity:jpeg", "--channels", "ofdm-tdl"], ValueError,
     "cannot serve channel 'ofdm-tdl'.*capacity of the OFDM/MIMO links.*not computed"),
    (["--systems", "separation:jpeg,margin=1", "--channels", "ofdm-cdl"], ValueError,
     "margin applies to the MCS threshold tables"),
    (["--systems", "separation:jpeg,window=-1"], ValueError, "window=-1 must be >= 0"),
    (["--systems", "capacity:heif", "--channels", "awgn,rayleigh-block"], ValueError,
     "cannot serve channel 'rayleigh-block'"),
    (["--systems", "separation:jpeg", "--snrs", "1,x"], ValueError, "--snrs"),
    (["--systems", "separation:jpeg", "--snrs", "4,4"], ValueError, "4 dB twice"),
    (["--systems", "separation:jpeg", "--channels", "awgn,fading"], ValueError, "'fading'"),
    (["--systems", "separation:jpeg", "--repeats", "0"], ValueError, "--repeats"),
    (["--systems", "separation:jpeg", "--grid-snr", "8"], ValueError, "--grid-snr 8"),
    (["--systems", "separation:jpeg", "--cbr", "1/0"], ValueError, "--cbr '1/0'"),
    (["--systems", "float:/no/such/model"], FileNotFoundError, "/no/such/model"),
])
def test_clear_errors(image_dir, tmp_path, extra, error, match):
    outdir = tmp_path / "out"
    with pytest.raises(error, match=match):
        ev.main(["--images", image_dir, "--outdir", str(outdir), *extra])
    assert not outdir.exists()


def test_empty_test_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="--images.*no image files"):
        ev.main(["--systems", "separation:jpeg", "--images", str(tmp_path / "empty"),
                 "--outdir", str(tmp_path / "out")])


def test_small_image_and_channel_config(tmp_path):
    """Too small images fail naming the file; a channel file configures or adds a channel."""
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(ValueError, match="tiny.png"):
        ev.load_images(str(tmp_path), multiple=128)
    assert ev.load_images(str(tmp_path), multiple=128, fit="pad")[0][1].shape == (64, 64, 3)
    config = tmp_path / "tdl.json"
    config.write_text(json.dumps({"channel_type": "ofdm-tdl", "delay_spread": 3e-7}))
    tdl = ev.Channel("ofdm-tdl", {"delay_spread": 3e-7})
    assert ev.parse_channels("awgn", str(config)) == [ev.Channel("awgn", {}), tdl]
    assert ev.parse_channels("ofdm-tdl,awgn", str(config)) == [tdl, ev.Channel("awgn", {})]
    ev.build_system("separation:jpeg").check(tdl, [1.0])  # the OFDM link with its parameters
    with pytest.raises(ValueError, match="cannot serve channel 'ofdm-tdl' with parameters"):
        ev.build_system("capacity:jpeg").check(tdl, [1.0])
    with pytest.raises(ValueError, match="cannot serve channel 'awgn' with parameters"):
        ev.build_system("separation:jpeg").check(ev.Channel("awgn", {"fading": "x"}), [1.0])
    config.write_text(json.dumps({"channel_type": "ofdm-tdl", "delay_spread": -1}))
    with pytest.raises(ValueError, match="--channel-config.*delay_spread"):
        ev.parse_channels("awgn", str(config))


def test_seeds_and_statistics():
    seeds = {ev.cell_seed(1, ch, snr, img, r) for ch in ("awgn", "rayleigh") for snr in (1, 4)
             for img in ("a.png", "b.png") for r in range(3)}
    assert len(seeds) == 24 and ev.cell_seed(1, "awgn", 1, "a.png", 0) == ev.cell_seed(
        1, "awgn", 1.0, "a.png", 0)
    rec = {"system": "s", "label": "l", "kind": "k", "channel": "awgn", "snr_db": 1.0,
           "cbr": 0.0625, "status": "ok", "bpp": None, "ms_ssim": 0.5}
    rows = [dict(rec, image=f"{i}.png", repeat=0, psnr=p) for i, p in enumerate([20.0, 22.0])]
    (avg,) = ev.summarize(rows)
    # t(0.975, 1) = 12.706: half-width 12.706 * std / sqrt(2) with std = sqrt(2).
    assert avg["psnr"] == 21.0 and avg["psnr_ci95"] == pytest.approx(12.7062, rel=1e-4)
    assert avg["num_samples"] == 2 and avg["bpp"] is None and avg["success_rate"] == 1.0
    (single,) = ev.summarize(rows[:1])
    assert single["psnr_std"] is None and single["psnr_ci95"] is None


def test_every_flag_is_documented_and_console_script_registered():
    parser = ev.build_parser()
    for action in parser._actions:  # pylint: disable=protected-access
        assert action.help and len(action.help) > 10, action.dest
    args = parser.parse_args([])
    assert args.systems == list(ev.DEFAULT_SYSTEMS) and args.images == ev.DEFAULT_IMAGES
    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    assert "fqliscs-evaluate = experiments.evaluate:main" in cfg["options.entry_points"][
        "console_scripts"]


# ----------------------------------------------------------------------------- tflite kind
TINY = 32  # the tiny QAT codec of conftest.py (size multiple 16)
# Measured (tiny codec, 2 images, 16x8): |mean PSNR(tflite) - PSNR(int)| <= 0.002 dB on AWGN,
# 0.016 dB on Rayleigh at 1 and 13 dB.
TFLITE_TOLERANCE_DB = 0.1


@pytest.fixture(scope="module")
def tflite_setup(tiny_qat, tmp_path_factory):
    """The tiny QAT codec as a QAT folder and as an engine folder, two 32x32 test images,
    three other calibration images; returns (root, tflite spec)."""
    from conftest import smooth_images
    from fqliscs_tf.engine import export_integer_codec, save_integer_codec
    from fqliscs_tf.quant.qat import save_qat
    _, qat = tiny_qat
    root = tmp_path_factory.mktemp("tflite")
    save_qat(qat, str(root / "qat"))
    save_integer_codec(export_integer_codec(qat), str(root / "int"))
    for sub, seeds in (("images", (20, 21)), ("cal", (30, 31, 32))):
        (root / sub).mkdir()
        for s in seeds:
            pixels = np.round(smooth_images(1, TINY, seed=s)[0] * 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / sub / f"s{s}.png")
    return root, f"tflite:{root / 'qat'},calibration={root / 'cal'},cache={root / 'cache'}"


def _tflite_argv(root, spec):
    return ["--systems", spec, f"int:{root / 'int'}", "--images", str(root / "images"),
            "--channels", "awgn", "--snrs", "1,13", "--outdir", str(root / "out"), "--no-figures"]


@pytest.fixture(scope="module")
def tflite_run(tflite_setup):
    """The CLI on the tflite system and the int system of the same QAT codec (AWGN)."""
    assert ev.main(_tflite_argv(*tflite_setup)) == 0
    with open(tflite_setup[0] / "out" / "results.json") as f:
        return json.load(f)


def test_tflite_system_matches_the_integer_engine(tflite_run):
    ev.validate_results(tflite_run)
    tfl, eng = tflite_run["systems"]
    assert (tfl["kind"], tfl["activations"], tfl["kernels"]) == ("tflite", "int16", "default")
    assert tfl["cbr"] == eng["cbr"] and "TFLite 16x8" in tfl["label"]
    exports = tfl["runtime"]["exports"]
    assert list(exports) == ["32x32"]  # one image shape: one export
    export = exports["32x32"]
    assert export["reused"] is False and export["export_seconds"] > 0
    assert export["integer_only"] and all(c["ok"] and not c["violations"]
                                          for c in export["checks"].values())
    seeds = {}
    for r in tflite_run["per_image"]:
        seeds.setdefault((r["snr_db"], r["image"]), set()).add(r["seed"])
    assert len(seeds) == 4 and all(len(v) == 1 for v in seeds.values())  # the same noise
    psnr = {(r["kind"], r["snr_db"]): r["psnr"] for r in tflite_run["records"]}
    for snr in (1.0, 13.0):
        assert psnr[("tflite", snr)] == pytest.approx(psnr[("int", snr)],
                                                      abs=TFLITE_TOLERANCE_DB)


def test_tflite_system_reuses_its_exports(tflite_setup, tflite_run, monkeypatch):
    import fqliscs_tf.quant.qat
    from fqliscs_tf.engine import tflite as tfl
    root, spec = tflite_setup
    first = tflite_run["systems"][0]["runtime"]["exports"]["32x32"]

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(tfl, "export_tflite", no_export)
    monkeypatch.setattr(fqliscs_tf.quant.qat, "load_qat", lambda path: None)
    system = ev.build_system(spec + ",kernels=ref")  # kernels do not change the export
    system.configure(system.cbr, "crop")
    images = ev.load_images(str(root / "images"), max_images=1)
    (record,), _ = ev.run_cell(system, ev.Channel("rayleigh"), 13.0, images, seed=3)
    assert record["kind"] == "tflite" and math.isfinite(record["psnr"])
    again = system.describe()["runtime"]["exports"]["32x32"]
    assert again["reused"] is True and again["folder"] == first["folder"]
    assert again["export_seconds"] == first["export_seconds"] and again["integer_only"]
    assert again["kernels"] == "ref"
    with pytest.raises(AssertionError, match="exported again"):  # other activations
        ev.run_cell(ev.build_system(spec + ",activations=int8"), ev.Channel("awgn"), 13.0,
                    images, seed=3)


def test_tflite_system_resumes(tflite_setup, tflite_run, monkeypatch):
    """--resume ignores the run-time block (export records) of the system description."""
    computed = []
    monkeypatch.setattr(ev, "run_cell", lambda *a, **kw: computed.append(a) or ([], {}))
    ev.main(_tflite_argv(*tflite_setup) + ["--resume"])
    with open(tflite_setup[0] / "out" / "results.json") as f:
        again = json.load(f)
    assert computed == [] and again["meta"]["resumed_cells"] == 4
    assert again["per_image"] == tflite_run["per_image"]


@pytest.mark.parametrize("options,error,match", [
    (",activations=int4", ValueError, "activations='int4' is not one of int16, int8"),
    (",kernels=gpu", ValueError, "kernels='gpu' is not one of default, builtin, ref"),
    (",threads=2", ValueError, "unknown option 'threads'"),
    (",calibration=/no/such/images", ValueError, "calibration path '/no/such/images' does not"),
    (",calibration=;", ValueError, "option calibration is empty"),
    (",activations=int8,forms=fast", ValueError, "forms='fast' is not one of default, xnnpack"),
    (",forms=xnnpack_fold", ValueError, "forms='xnnpack_fold' needs activations=int8"),
])
def test_tflite_system_rejects_bad_options(tflite_setup, options, error, match):
    root, _ = tflite_setup
    with pytest.raises(error, match=match):
        ev.build_system(f"tflite:{root / 'qat'}{options}")


def test_tflite_system_fast_int8_forms(tflite_setup, tflite_run):
    """forms=xnnpack_fold: the all-int8 export with every op delegated (its own cache folder),
    integer-only, one XNNPACK partition per model, close to the int system on the same noise."""
    from fqliscs_tf.engine.tflite import xnnpack_partitions
    root, spec = tflite_setup
    system = ev.build_system(spec + ",activations=int8,forms=xnnpack_fold")
    system.configure(system.cbr, "crop")
    images = ev.load_images(str(root / "images"))
    records, _ = ev.run_cell(system, ev.Channel("awgn"), 13.0, images, seed=0)
    engine = ev.build_system(f"int:{root / 'int'}")
    engine.configure(engine.cbr, "crop")
    reference, _ = ev.run_cell(engine, ev.Channel("awgn"), 13.0, images, seed=0)
    info = system.describe()
    assert info["forms"] == "xnnpack_fold" and "int8 xnnpack_fold" in info["label"]
    export = info["runtime"]["exports"]["32x32"]
    assert export["integer_only"] and export["reused"] is False
    first = tflite_run["systems"][0]["runtime"]["exports"]["32x32"]["folder"]
    assert export["folder"] != first
    for part in ("encoder", "decoder"):
        assert xnnpack_partitions(os.path.join(export["folder"], f"{part}.tflite")) == 1
    assert len(records) == len(reference) == 2
    assert np.mean([r["psnr"] for r in records]) == pytest.approx(
        np.mean([r["psnr"] for r in reference]), abs=TFLITE_TOLERANCE_DB)


def test_tflite_system_needs_a_qat_or_engine_folder(tmp_path):
    with pytest.raises(ValueError, match="'swin' model, not a QAT codec folder"):
        ev.build_system(f"tflite:{MODEL}")
    with pytest.raises(FileNotFoundError, match="no exported model"):
        ev.build_system(f"tflite:{tmp_path}")


def test_tflite_system_takes_an_engine_folder(tflite_setup, tflite_run):
    """An engine folder: its QAT model comes from qat_from_engine; same PSNR as the int
    system of the same engine, on the same noise."""
    root, _ = tflite_setup
    system = ev.build_system(f"tflite:{root / 'int'},calibration={root / 'cal'},"
                             f"cache={root / 'cache'}")
    assert system.engine and system.describe()["engine_dir"] == str(root / "int")
    system.configure(system.cbr, "crop")
    seed = ev.build_parser().parse_args([]).seed
    records, _ = ev.run_cell(system, ev.Channel("awgn"), 13.0,
                             ev.load_images(str(root / "images")), seed=seed)
    engine = {r["image"]: r for r in tflite_run["per_image"]
              if r["kind"] == "int" and r["snr_db"] == 13.0}
    assert len(records) == len(engine) == 2
    for r in records:
        assert r["seed"] == engine[r["image"]]["seed"]
        assert r["psnr"] == pytest.approx(engine[r["image"]]["psnr"], abs=TFLITE_TOLERANCE_DB)
    export = system.describe()["runtime"]["exports"]["32x32"]
    assert not export["reused"] and export["integer_only"]


@pytest.mark.parametrize("extra,match", [
    (["--channels", "awgn,rayleigh-block"], "cannot serve channel 'rayleigh-block'"),
    (["--channels", "ofdm-tdl"], "cannot serve channel 'ofdm-tdl'"),
    (["--snrs", "1,40"], "SNR 40 dB is outside the int8 SNR grid"),
])
def test_tflite_system_rejects_unsupported_channels(tflite_setup, tmp_path, extra, match):
    root, spec = tflite_setup
    with pytest.raises(ValueError, match=match):
        ev.main(["--systems", spec, "--images", str(root / "images"), "--outdir",
                 str(tmp_path / "out"), *extra])
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="with parameters"):
        ev.build_system(spec).check(ev.Channel("awgn", {"precoding": True}), [1.0])


def test_tflite_system_refuses_to_calibrate_on_the_test_images(tflite_setup, tmp_path):
    """Default calibration: the bundled Kodak images, so evaluating on them needs another set."""
    from fqliscs_tf.data import crop_to_size, load_image
    root, spec = tflite_setup
    kodak = tmp_path / "kodak"
    kodak.mkdir()
    shutil.copy(Path(ev.DEFAULT_IMAGES) / "kodim05.png", kodak)
    with pytest.raises(ValueError, match=r"'kodim05.png' is the calibration image .*kodim05"):
        ev.main(["--systems", f"tflite:{root / 'qat'},cache={tmp_path / 'cache'}", "--images",
                 str(kodak), "--channels", "awgn", "--outdir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
    system = ev.build_system(f"tflite:{root / 'qat'}")
    assert [Path(p).name for p in system.describe()["calibration"]] == sorted(
        p.name for p in Path(ev.DEFAULT_IMAGES).iterdir())
    crop = crop_to_size(load_image(str(kodak / "kodim05.png")), (256, 384))  # a centre crop
    with pytest.raises(ValueError, match="calibrating on the test images is unfair"):
        system.prepare([("crop.png", crop)])
    system.prepare(ev.load_images(str(root / "images")))  # other images are fine
    mixed = ev.build_system(f"tflite:{root / 'qat'},calibration={root / 'cal'};"
                            f"{root / 'images' / 's21.png'}")
    assert len(mixed.describe()["calibration"]) == 4
    with pytest.raises(ValueError, match="'s21.png' is the calibration image"):
        mixed.prepare(ev.load_images(str(root / "images")))


def test_plot_results_merges_result_files(tmp_path):
    """experiments.plot_results draws systems from several result files in one figure."""
    from experiments import plot_results

    def result(system, kind, values):
        return {"records": [{"system": system, "label": system, "kind": kind, "channel": "awgn",
                             "snr_db": snr, "cbr": 1 / 16, "psnr": v, "ms_ssim": 0.9}
                            for snr, v in zip((1.0, 13.0), values)]}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(result("int:x", "int", (25.0, 27.0))))
    b.write_text(json.dumps({"records": result("int:x", "int", (0.0, 0.0))["records"]
                             + result("capacity:best", "capacity", (29.0, 35.0))["records"]}))
    merged = plot_results.merge_records([str(a), str(b)])
    assert [(r["system"], r["psnr"]) for r in merged] == [
        ("int:x", 25.0), ("int:x", 27.0), ("capacity:best", 29.0), ("capacity:best", 35.0)]
    out = tmp_path / "fig.png"
    assert plot_results.main([str(a), str(b), "--output", str(out)]) == 0
    assert out.stat().st_size > 1000
    with pytest.raises(SystemExit):
        plot_results.main([str(a), "--channel", "rayleigh", "--output", str(out)])
    # A --label key may be a spec with options ("=" inside): split at the last "=".
    c = tmp_path / "c.json"
    c.write_text(json.dumps(result("int:x,label=v2", "int", (25.0, 27.0))))
    assert plot_results.main([str(c), "--label", "int:x,label=v2=integer codec",
                              "--output", str(out)]) == 0
    # --exclude-label drops a system by its exact label; nothing left is an error.
    assert plot_results.main([str(b), "--exclude-label", "int:x", "--output", str(out)]) == 0
    with pytest.raises(SystemExit):
        plot_results.main([str(a), "--exclude-label", "int:x", "--output", str(out)])


def test_published_references_only_for_kodak_psnr_at_cbr_1_16():
    """The published WITT curves are drawn for PSNR at CBR 1/16, once per reference channel."""
    from experiments.evaluate import published_references
    awgn = published_references(["awgn"], [1 / 16, 1 / 48])
    assert [r["values"][0] for r in awgn] == [29.67, 29.9]  # WITT, BPG + capacity
    both = published_references(["rayleigh", "rayleigh-fast", "awgn", "ofdm-cdl"], [1 / 16])
    assert [r["label"] for r in both].count("WITT Rayleigh (published, div2k-size model)") == 1
    assert len(both) == 3
    assert published_references(["awgn"], [1 / 48]) == []
    assert published_references(["awgn"], [1 / 16], metric="ms_ssim") == []
