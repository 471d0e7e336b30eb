"""Command line: train a few steps, resume, evaluate, JSON; clear errors for bad input."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from experiments import train as cli

FAST = ["--steps", "2", "--batch-size", "2", "--crop", "128", "--no-jit", "--quiet",
        "--multiple-snr", "1,13"]


def _images(folder, n=3, size=(160, 140), seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        base = rng.integers(0, 255, (size[1] // 10, size[0] // 10, 3), dtype=np.uint8)
        Image.fromarray(base).resize(size, Image.BILINEAR).save(os.path.join(folder, f"im{i}.png"))
    return str(folder)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    test = _images(root / "test", 1, (128, 256))
    _images(root / "test" / "portrait", 1, (256, 128), seed=1)  # a second image size
    return {"train": _images(root / "train"), "test": test, "root": root}


def test_train_resume_evaluate_json(dirs):
    work = str(dirs["root"] / "run")
    base = ["--training", "--trainset", "DIV2K", "--testset", "kodak", "--channel-type", "awgn",
            "--C", "96", "--train-dir", dirs["train"], "--workdir", work, *FAST]
    records = cli.run(base + ["--test-dir", dirs["test"]])
    assert [r["snr_db"] for r in records] == [1.0, 13.0]
    out = json.load(open(os.path.join(work, "results.json")))
    rec = out["records"][0]
    assert set(rec) == {"model", "channel", "snr_db", "cbr", "psnr", "ms_ssim", "num_images"}
    assert rec["cbr"] == pytest.approx(1 / 16) and rec["num_images"] == 2
    assert rec["channel"] == "awgn" and rec["model"] == "lite"
    assert np.isfinite(rec["psnr"]) and 0 <= rec["ms_ssim"] <= 1
    assert "git_commit" in out["meta"] and out["meta"]["execution_mode"] == "graph"
    last = json.loads(open(os.path.join(work, "metrics.jsonl")).read().splitlines()[-1])
    assert last["step"] == 2 and last["execution_mode"] == "graph"  # --no-jit
    assert os.path.isfile(os.path.join(work, "train.log"))
    assert os.path.isfile(os.path.join(work, "export", "weights.npz"))
    # Refuses to overwrite a run, then resumes it.
    with pytest.raises(ValueError, match="--resume"):
        cli.run(base)
    cli.run([*base, "--resume", "--steps", "3"])
    log = open(os.path.join(work, "train.log")).read()
    assert "resumed from" in log and "at step 2" in log
    # A new run starts from the finished run's weights (run folder or its export).
    init = str(dirs["root"] / "init")
    cli.run([*base[:-len(FAST) - 2], "--workdir", init, "--init-from", work, *FAST])
    assert "initialised weights from" in open(os.path.join(init, "train.log")).read()
    # ... and its model.json keeps where it started from: the folder's own steps and seconds.
    meta0 = json.load(open(os.path.join(work, "export", "model.json")))["meta"]
    lineage = json.load(open(os.path.join(init, "export", "model.json")))["meta"]["init_from"]
    assert lineage["folder"] == work and lineage["steps"] == meta0["steps"] == 3
    assert lineage["train_seconds"] == meta0["train_seconds"]
    # A later sitting of that run (--continue-from) keeps the record.
    later = str(dirs["root"] / "init_later")
    cli.run([*base[:-len(FAST) - 2], "--workdir", later, "--continue-from", init, *FAST,
             "--steps", "4"])
    meta_later = json.load(open(os.path.join(later, "export", "model.json")))["meta"]
    assert meta_later["init_from"] == lineage and len(meta_later["sittings"]) == 2
    # Evaluation of the run folder on another channel, without --training.
    eval_json = str(dirs["root"] / "eval.json")
    records = cli.run(["--testset", "kodak", "--test-dir", dirs["test"], "--channel-type",
                       "rayleigh", "--checkpoint", os.path.join(work, "export"), "--workdir", work,
                       "--multiple-snr", "4", "--output", eval_json])
    assert len(records) == 1 and json.load(open(eval_json))["records"][0]["channel"] == "rayleigh"


def test_time_budget_stops_and_adds_up_over_sittings(dirs):
    """--time-budget stops a run early; the seconds spent are checkpointed, so a resumed run
    gets only what is left of the budget."""
    work = str(dirs["root"] / "budget")
    base = ["--training", "--trainset", "DIV2K", "--model", "deepjscc", "--C", "96",
            "--train-dir", dirs["train"], "--workdir", work, "--batch-size", "2", "--crop", "64",
            "--no-jit", "--quiet", "--multiple-snr", "1,13", "--steps", "100000"]
    cli.run([*base, "--time-budget", "1.5"])
    log = open(os.path.join(work, "train.log")).read()
    assert "time budget of 2 s reached" in log
    steps = json.load(open(os.path.join(work, "export", "model.json")))["meta"]["steps"]
    assert 0 < steps < 100000
    cli.run([*base, "--time-budget", "1.5", "--resume"])  # budget already spent: no new step
    assert json.load(open(os.path.join(work, "export", "model.json")))["meta"]["steps"] == steps


def test_continue_from_a_model_folder_adds_up(dirs):
    """--continue-from takes a model folder (no optimizer state) as a later sitting: the step
    count and the training seconds go on from its record, the data stream is a fresh one."""
    first = str(dirs["root"] / "sitting1")
    base = ["--training", "--trainset", "DIV2K", "--model", "deepjscc", "--C", "96",
            "--train-dir", dirs["train"], "--batch-size", "2", "--crop", "64", "--no-jit",
            "--quiet", "--multiple-snr", "1,13", "--lr-schedule", "cosine", "--lr", "1e-3"]
    cli.run([*base, "--workdir", first, "--steps", "3"])
    meta1 = json.load(open(os.path.join(first, "export", "model.json")))["meta"]
    assert meta1["steps"] == 3 and meta1["train_seconds"] > 0
    second = str(dirs["root"] / "sitting2")
    cli.run([*base, "--workdir", second, "--steps", "5", "--continue-from", first,
             "--rewarm-steps", "2"])
    log = open(os.path.join(second, "train.log")).read()
    assert "continuing" in log and "at step 3" in log
    meta2 = json.load(open(os.path.join(second, "export", "model.json")))["meta"]
    assert meta2["steps"] == 5 and meta2["train_seconds"] > meta1["train_seconds"]
    assert meta2["run_config"]["continue_from"] == first
    # model.json keeps the history: the first sitting's record, then this one
    first_sitting, this_sitting = meta2["sittings"]
    assert first_sitting["steps"] == 3 and first_sitting["command"] == meta1["command"]
    assert this_sitting["steps"] == 2 and "at step 3" in this_sitting["start"]
    assert this_sitting["train_seconds"] == pytest.approx(
        meta2["train_seconds"] - meta1["train_seconds"], abs=0.11)
    steps = [json.loads(line)["step"] for line in open(os.path.join(second, "metrics.jsonl"))]
    assert steps[-1] == 5
    # The new total must lie beyond the folder's steps.
    with pytest.raises(ValueError, match="not beyond the 5 steps"):
        cli.run([*base, "--workdir", str(dirs["root"] / "sitting3"), "--steps", "5",
                 "--continue-from", second])


def test_data_seed_is_fresh_for_each_later_sitting():
    assert cli.data_seed(1024, 0) == 1024
    seeds = {cli.data_seed(1024, s) for s in (0, 500, 1000, 10000)}
    assert len(seeds) == 4 and all(0 <= s < 2 ** 31 for s in seeds)
    assert cli.data_seed(1024, 500) == cli.data_seed(1024, 500)


def _fake_cifar(folder):
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in ("data_batch_1", "test_batch"):
        data = {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8),
                b"labels": [0, 1, 2, 3]}
        with open(batches / name, "wb") as f:
            pickle.dump(data, f)
    return str(batches)


def test_cifar_pickles_train_and_test(tmp_path):
    path = _fake_cifar(tmp_path)
    records = cli.run(["--training", "--trainset", "CIFAR10", "--testset", "CIFAR10",
                       "--C", "16", "--train-dir", path, "--test-dir", path,
                       "--workdir", str(tmp_path / "run"), "--epochs", "0.5", "--batch-size", "2",
                       "--no-jit", "--quiet", "--multiple-snr", "10"])
    assert records[0]["num_images"] == 4
    # 4 training images, batch 2: one epoch is 2 steps, half an epoch 1 step.
    assert "checkpoint saved at step 1 " in open(tmp_path / "run" / "train.log").read()
    out = json.load(open(tmp_path / "run" / "results.json"))
    assert out["records"][0]["cbr"] == pytest.approx(1 / 6)


@pytest.mark.parametrize("flags,message", [
    (["--multiple-snr", "1,,4"], "multiple-snr"),
    (["--multiple-snr", "abc"], "multiple-snr"),
    (["--channel-type", "ofdm-magic"], "invalid choice"),
    (["--batch-size", "0"], "batch-size"),
    (["--training"], "--train-dir"),
    (["--time-budget", "-1"], "time-budget"),
    (["--init-partial"], "--init-partial needs --init-from"),
    (["--continue-from", "x", "--init-from", "y"], "cannot be combined"),
    (["--rewarm-steps", "-1"], "rewarm-steps"),
])
def test_bad_flags_exit_with_a_message(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.run(["--trainset", "DIV2K", "--workdir", "/tmp/unused_fqliscs", *flags])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_data_errors_are_clear(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    common = ["--training", "--trainset", "DIV2K", "--workdir", str(tmp_path / "w"), *FAST]
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        cli.run([*common, "--train-dir", str(tmp_path / "missing_dir")])
    with pytest.raises(ValueError, match="empty"):
        cli.run([*common, "--train-dir", str(empty)])
    bad = tmp_path / "bad"
    _images(bad, 1)
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match="broken.png"):
        cli.run([*common, "--train-dir", str(bad), "--workdir", str(tmp_path / "w2")])


def test_grayscale_and_rgba_images_are_converted(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (140, 150), dtype=np.uint8), "L").save(folder / "g.png")
    Image.fromarray(rng.integers(0, 255, (140, 150, 4), dtype=np.uint8), "RGBA").save(
        folder / "a.png")
    cli.run(["--training", "--trainset", "DIV2K", "--train-dir", str(folder),
             "--workdir", str(tmp_path / "w"), *FAST])


def test_console_entry_exits_zero(tmp_path, dirs):
    exe = os.path.join(os.path.dirname(sys.executable), "fqliscs-train")
    if not os.path.exists(exe):
        pytest.skip("console script not installed (pip install -e .)")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--multiple-snr" in out.stdout


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, dirs):
    """Training inside MirroredStrategy with two logical CPU devices (one process)."""
    work = tmp_path / "mirrored"
    cmd = [sys.executable, "-m", "experiments.train", "--training", "--trainset", "DIV2K",
           "--train-dir", dirs["train"], "--workdir", str(work), "--cpu-devices", "2",
           "--distribute", "mirrored", "--channel-type", "rayleigh", *FAST]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr[-3000:]
    log = open(work / "train.log").read()
    assert "MirroredStrategy (2 replicas)" in log
    assert "checkpoint saved at step 2" in log


@pytest.mark.slow
def test_multi_worker_strategy_from_tf_config(tmp_path, dirs):
    """Two local worker processes named in TF_CONFIG train one model together."""
    import socket
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    work = tmp_path / "mw"
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        cmd = [sys.executable, "-m", "experiments.train", "--training", "--trainset", "DIV2K",
               "--train-dir", dirs["train"], "--workdir", str(work), *FAST]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True,
                                      cwd=os.path.dirname(os.path.dirname(__file__))))
    try:
        outs = [p.communicate(timeout=600)[0] for p in procs]
    finally:  # a worker whose peer died would wait for it forever
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    log = (work / "train.log").read_text()
    assert "CollectiveAllReduceStrategy (2 replicas)" in log
    assert (work / "export" / "weights.npz").is_file()       # written by the chief only
    assert (work / "worker1.log").is_file() and not (work / "worker1_ckpt" / "export").exists()


def test_channel_config_file_trains_through_ofdm(tmp_path, dirs):
    cfg = tmp_path / "tdl.json"
    cfg.write_text(json.dumps({"channel_type": "ofdm-tdl", "model": "C", "delay_spread": 300e-9,
                               "max_speed": 10.0, "estimator": "ls-lin"}))
    work = tmp_path / "ofdm"
    records = cli.run(["--training", "--trainset", "DIV2K", "--train-dir", dirs["train"],
                       "--test-dir", dirs["test"], "--channel-config", str(cfg),
                       "--workdir", str(work), *FAST[:-2], "--multiple-snr", "10",
                       "--steps", "1"])
    assert records and np.isfinite(records[0]["psnr"])
    saved = json.load(open(work / "run_config.json"))
    assert saved["channel_type"] == "ofdm-tdl" and saved["channel_kwargs"]["model"] == "C"
    assert json.load(open(work / "results.json"))["records"][0]["channel"] == "ofdm-tdl"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"channel_type": "ofdm-tdl", "max_speed": -3}))
    with pytest.raises(SystemExit):
        cli.run(["--channel-config", str(bad), "--workdir", str(work)])
