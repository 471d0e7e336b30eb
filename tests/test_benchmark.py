# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""experiments/benchmark.py: a tiny end-to-end run (child processes), output schema, flags."""
import json

import pytest

from experiments.benchmark import format_table, main

# One Swin stage of width 8: the smallest codec the presets accept (about 1 k parameters).
TINY = json.dumps({"embed_dims": [8], "depths": [1], "num_heads": [2], "C": 4,
                   "modnet_layers": 1, "modulator_hidden": 4})
TINY_FLAGS = ["--presets", "cifar10", "--preset-overrides", TINY, "--repeats", "2",
              "--iters", "1", "--batch-size", "2", "--infer-batch", "2", "--threads", "1"]
RECORD_KEYS = {"preset", "task", "mode", "batch_size", "size", "status",
               "images_per_s_median", "images_per_s_min", "images_per_s_max",
               "latency_ms_median", "compile_s", "peak_rss_mib", "macs_per_image", "runs"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("benchmark") / "sub" / "benchmark.json"
    code = main([*TINY_FLAGS, "--modes", "graph", "--tasks", "train,infer",
                 "--precisions", "float32,mixed_bfloat16", "--output", str(path)])
    with open(path) as f:
        return code, json.load(f)


def test_tiny_run_writes_complete_results(tiny_run):
    code, out = tiny_run
    assert code == 0
    assert out["name"] == "benchmark"
    meta = out["meta"]
    for key in ("git_commit", "tensorflow", "date", "command", "size", "repeats", "iters"):
        assert key in meta, key
    assert meta["repeats"] == 2 and "--preset-overrides" in meta["command"]
    assert meta["precisions"] == ["float32", "mixed_bfloat16"]
    assert [(r["task"], r["mode"], r["precision"]) for r in out["results"]] == [
        ("train", "graph", "float32"), ("train", "graph", "mixed_bfloat16"),
        ("infer", "graph", "float32"), ("infer", "graph", "mixed_bfloat16")]
    for rec in out["results"]:
        assert RECORD_KEYS <= set(rec), RECORD_KEYS - set(rec)
        assert rec["status"] == "ok", rec.get("error")
        assert (rec["preset"], rec["size"], rec["batch_size"]) == ("cifar10", 32, 2)
        assert len(rec["runs"]) == 2
        assert all(r["images_per_s"] > 0 and r["images"] == 2 for r in rec["runs"])
        assert 0 < rec["images_per_s_min"] <= rec["images_per_s_median"] \
            <= rec["images_per_s_max"]
        assert rec["compile_s"] > 0 and len(rec["warmup_s"]) == 2
        assert rec["macs_per_image"] > 0 and rec["params"] > 0
        # Peak RSS of the child: at least what it held before the timed part.
        assert rec["peak_rss_mib"] >= rec["peak_rss_before_timed_mib"] > 0
        assert rec["rss_before_timed_mib"] > 0
        assert rec["intra_op_threads"] == 1
    train, _, infer, _ = out["results"]
    assert train["latency_ms_median"] is None
    latencies = [r["latency_ms"] for r in infer["runs"]]
    assert 0 < min(latencies) <= infer["latency_ms_median"] <= max(latencies)
    assert infer["forward_gmac_per_s"] > 0


def test_tables(tiny_run):
    results = tiny_run[1]["results"]
    md = format_table(results, markdown=True).splitlines()
    assert md[0].startswith("| preset | task | mode | precision |")
    assert len(md) == 2 + len(results) and "mixed_bfloat16" in md[3]
    assert all(line.count("|") == md[0].count("|") for line in md)
    plain = format_table(results).splitlines()
    assert plain[0].split()[:4] == ["preset", "task", "mode", "precision"]
    assert len(plain) == 1 + len(results)
    failed = dict(results[0], status="timeout", images_per_s_median=None)
    assert "timeout" in format_table([failed])


def test_timeout_is_recorded_not_raised(tmp_path):
    path = tmp_path / "b.json"
    code = main([*TINY_FLAGS, "--modes", "graph", "--tasks", "infer", "--timeout", "0.01",
                 "--output", str(path)])
    assert code == 1
    (rec,) = json.loads(path.read_text())["results"]
    assert rec["status"] == "timeout" and rec["images_per_s_median"] is None


@pytest.mark.parametrize("flags,message", [
    (["--presets", "lite,huge"], "'huge'"),
    (["--modes", "graph,turbo"], "'turbo'"),
    (["--tasks", "eval"], "'eval'"),
    (["--precisions", "float32,fp8"], "'fp8'"),
    (["--repeats", "0"], "'0'"),
    (["--presets", "lite", "--size", "200"], "128"),
    (["--warmup", "1"], "--warmup"),
    (["--channel", "optical"], "'optical'"),
    (["--preset-overrides", "{not json"], "JSON"),
    (["--presets", "cifar10", "--preset-overrides", '{"depth": [1]}'], "cifar10"),
])
def test_bad_flags_are_rejected(flags, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as err:
        main([*flags, "--output", str(tmp_path / "never.json")])
    assert err.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never.json").exists()
