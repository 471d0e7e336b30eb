"""experiments.tflite_gemm: one-op int8 and float32 products, timed in one run."""
import json

import pytest

from experiments import tflite_gemm


def test_parse_shapes():
    assert tflite_gemm.parse_shapes("64x16x32, 8X4X2", 3) == [(64, 16, 32), (8, 4, 2)]
    assert tflite_gemm.parse_shapes("", 4) == []
    for bad in ("64x16", "64x16x0", "64xax2"):
        with pytest.raises(ValueError, match=bad):
            tflite_gemm.parse_shapes(bad, 3)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(SystemExit, match="4 positive integers"):
        tflite_gemm.main(["--bmm", "4x8x16", "--output", str(tmp_path / "o.json")])
    with pytest.raises(SystemExit, match="nothing to measure"):
        tflite_gemm.main(["--dense", "", "--bmm", ""])
    with pytest.raises(SystemExit, match="--threads"):
        tflite_gemm.main(["--dense", "8x8x8", "--bmm", "", "--threads", "0"])


def test_tiny_products_run_and_the_int8_models_are_integer_only(tmp_path):
    out = tmp_path / "gemm.json"
    assert tflite_gemm.main(["--dense", "64x16x32", "--bmm", "4x8x16x8", "--repeats", "2",
                             "--warmup", "1", "--workdir", str(tmp_path / "models"),
                             "--output", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert [r["kind"] for r in saved["results"]] == ["dense", "bmm"]
    for r in saved["results"]:
        assert r["integer_only"], r["int8_ops"]
        assert set(r["timing"]) == {"tf_float32_xla", "tflite_float32", "tflite_int8"}
        assert all(t["runs"] == 2 and t["median_ms"] > 0 for t in r["timing"].values())
        assert r["int8_vs_tflite_float32"] == pytest.approx(
            r["timing"]["tflite_float32"]["median_ms"] / r["timing"]["tflite_int8"]["median_ms"])
        assert r["xnnpack_partitions"]["float32"] == 1  # the float op is delegated
    assert saved["results"][0]["int8_ops"] == {"FULLY_CONNECTED": 1}
    assert saved["results"][1]["int8_ops"] == {"BATCH_MATMUL": 1}
    assert saved["results"][0]["macs"] == 64 * 16 * 32
    assert "git_commit" in saved["meta"] and "| dense | 64x16x32 |" in saved["markdown"]
