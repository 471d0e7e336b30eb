"""Cost report: MACs, BOPs and nonlinear-op counts."""
import json

import pytest

from experiments import cost as cost_cli
from fqliscs_tf.cost import bops, count_macs, count_nonlinear
from fqliscs_tf.presets import get_config


def test_bops_are_sixteen_times_fewer_at_w8a8():
    m = count_macs(get_config("div2k"), 256, 256)
    assert bops(m["total"], 32, 32, m["attention"]) / bops(m["total"], 8, 8, m["attention"]) == 16
    assert bops(m["total"], 8, 8, m["attention"]) == pytest.approx(2.26e12, rel=0.01)


def test_nonlinear_counts_scale_with_tokens():
    cfg = get_config("lite")
    small, big = count_nonlinear(cfg, 256, 256), count_nonlinear(cfg, 512, 512)
    for key in ("gelu", "softmax", "layernorm", "sigmoid"):
        assert small[key] > 0 and big[key] == 4 * small[key]
    # GELU: encoder + decoder, every block, tokens x 4 dim.
    expected = 2 * sum(d * (256 // 2 // 2 ** i) ** 2 * 4 * dim
                       for i, (d, dim) in enumerate(zip(cfg.depths, cfg.embed_dims)))
    assert small["gelu"] == expected


def test_cost_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "cost.json"
    assert cost_cli.main(["--presets", "lite", "--size", "256x256", "--output", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert rows[0]["preset"] == "lite" and rows[0]["weight_bytes_float32"] == 4 * rows[0]["params"]
    assert "| lite | 256x256 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cost_cli.main(["--presets", "nope"])
    with pytest.raises(SystemExit):
        cost_cli.main(["--size", "256by"])
