# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""experiments/profile_engine.py: a tiny graph-mode run (output schema) and its XLA helpers."""
import json

import numpy as np
import pytest
import tensorflow as tf

from experiments import profile_engine as pe
from fqliscs_tf.checkpoints import export_model
from fqliscs_tf.engine import export_integer_codec, save_integer_codec


@pytest.fixture(scope="module")
def tiny_run(tiny_qat, tmp_path_factory):
    """The profiler on the tiny two-stage codec at 32x32, graph mode, one repeat."""
    model, qat = tiny_qat
    root = tmp_path_factory.mktemp("profile")
    engine_dir = save_integer_codec(export_integer_codec(qat), str(root / "engine"))
    float_dir = export_model(model, str(root / "float"))
    path = root / "out" / "profile.json"
    code = pe.main(["--engine", engine_dir, "--float-model", float_dir, "--size", "32x32",
                    "--repeats", "1", "--warmup", "0", "--modes", "graph",
                    "--matmul-shapes", "8x16x8", "--trace-runs", "1", "--output", str(path)])
    with open(path) as f:
        return code, json.load(f), qat


def test_tiny_run_writes_complete_results(tiny_run):
    code, out, qat = tiny_run
    assert code == 0 and out["name"] == "profile_engine"
    assert out["settings"]["size"] == "32x32" and out["settings"]["modes"] == ["graph"]
    assert {"start", "end"} <= set(out["settings"]["load_average"])
    for key in ("git_commit", "date", "command", "tensorflow"):
        assert key in out["meta"], key
    assert sorted((r["system"], r["mode"]) for r in out["end_to_end"]) == [
        ("engine", "graph"), ("float", "graph")]
    assert all(r["median_ms"] > 0 and r["runs"] == 2 for r in out["end_to_end"])

    # One record per exported layer plus the channel, each with engine and float steps.
    params = export_integer_codec(qat)
    layers = out["layers"]
    assert len(layers) == len(params.encoder) + len(params.decoder) + 1
    assert [r["kind"] for r in layers[:len(params.encoder)]] == [k for k, _, _ in
                                                                  params.encoder]
    for rec in layers:
        assert rec["engine"]["graph"]["median_ms"] > 0 and rec["float"]["graph"]["median_ms"] > 0
        systems = {st["system"] for st in rec["steps"]}
        assert systems == {"engine", "float"}, rec["name"]
        for st in rec["steps"]:
            assert st["group"] in pe.GROUPS and st["ops"] >= 1 and st["out_elements"] > 0
            assert 0 <= st["graph"]["net_ms"] <= st["graph"]["median_ms"]

    groups = {g["group"]: g for g in out["groups"]}
    assert set(groups) <= set(pe.GROUPS) and {"linear matmul", "softmax", "GELU", "LayerNorm",
                                              "requantize", "channel"} <= set(groups)
    assert sum(g["engine_share"]["graph"] for g in groups.values()) == pytest.approx(1.0)
    # The float codec has no requantization; the integer nonlinearities are many more ops.
    assert groups["requantize"]["float_steps"] == 0 and groups["requantize"]["engine_ops"] > 0
    for name in ("LayerNorm", "softmax", "GELU"):
        assert groups[name]["engine_ops"] > 3 * groups[name]["float_ops"], name

    assert {(r["dtype"], r["mode"]) for r in out["matmul"]} == {
        ("float32", "graph"), ("int32", "graph"), ("int8->int32", "graph")}
    assert all(r["shape"] == "8x16x8" and r["gmac_per_s"] > 0 for r in out["matmul"])
    trace = out["trace"]
    assert set(trace) == {"engine_graph", "float_graph"}
    assert trace["engine_graph"]["categories"]["matmul"] > 0
    assert trace["engine_graph"]["traced_ms"] > 0
    assert set(out["markdown"]) == {"end_to_end", "groups", "layers", "matmul", "trace"}
    assert out["markdown"]["groups"].startswith("| op group |")


def test_int8_linear_is_bit_exact_with_xla():
    from fqliscs_tf.engine.layers import linear
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(-127, 128, (2, 5, 16)).astype(np.int32))
    w = rng.integers(-127, 128, (16, 8)).astype(np.int8)
    b = rng.integers(-1000, 1000, 8).astype(np.int32)
    got = tf.function(lambda t: pe._linear(t, w, b, int8=True), jit_compile=True)(x)
    np.testing.assert_array_equal(got.numpy(), linear(x, w, b).numpy())


def test_hlo_classes_finds_the_dot():
    fn = tf.function(lambda a, b: tf.nn.relu(tf.matmul(a, b) + 1), jit_compile=True)
    a, b = tf.ones([8, 4], tf.int32), tf.ones([4, 8], tf.int32)
    classes = pe._hlo_classes(fn.experimental_get_compiler_ir(a, b)(stage="optimized_hlo"))
    kinds = {cls for cls, _ in classes.values()}
    assert ("matmul", "s32") in classes.values() and kinds <= {"matmul", "fusion", "copy",
                                                               "other"}


@pytest.mark.parametrize("flags", [["--size", "32"], ["--modes", "eager"],
                                   ["--matmul-shapes", "8x8"], ["--repeats", "0"]])
def test_bad_flags_exit(flags):
    with pytest.raises(SystemExit):
        pe.main(flags)
