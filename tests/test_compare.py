"""experiments.compare: paired differences between two systems of evaluation result files."""
import json

import pytest

from experiments.compare import format_table, load_per_image, main, paired_differences


def _result_file(path, label, psnrs, seeds=(11, 12, 13), snr_db=1.0):
    per_image = [{"system": f"float:m,label={label}", "label": label, "kind": "float",
                  "channel": "awgn", "snr_db": snr_db, "image": f"im{i}.png", "repeat": 0,
                  "seed": seed, "psnr": p, "ms_ssim": 0.9}
                 for i, (p, seed) in enumerate(zip(psnrs, seeds))]
    path.write_text(json.dumps({"per_image": per_image, "records": []}))
    return str(path)


def test_paired_mean_interval_and_count(tmp_path):
    a = _result_file(tmp_path / "a.json", "new", [21.0, 22.5, 20.0])
    b = _result_file(tmp_path / "b.json", "old", [20.0, 22.0, 20.5])
    (cell,) = paired_differences(load_per_image([a, b]), "new", "old")
    assert cell["n"] == 3 and cell["better"] == 2
    assert cell["mean"] == pytest.approx(1 / 3)
    # t(0.975, 2) = 4.303, std of (1, 0.5, -0.5) = 0.7638
    assert cell["ci95"] == pytest.approx(4.3027 * 0.76376 / 3 ** 0.5, rel=1e-3)
    assert (cell["a"], cell["b"]) == (pytest.approx(21.1667, abs=1e-3), pytest.approx(20.8333, abs=1e-3))
    assert "+0.33 ± 1.90 (2 of 3)" in format_table([cell], "new", "old")


def test_unpaired_seeds_unknown_labels_and_bad_files_are_refused(tmp_path, capsys):
    a = _result_file(tmp_path / "a.json", "new", [21.0, 22.0, 23.0])
    b = _result_file(tmp_path / "b.json", "old", [20.0, 21.0, 22.0], seeds=(1, 2, 3))
    rows = load_per_image([a, b])
    with pytest.raises(ValueError, match="different channel seeds"):
        paired_differences(rows, "new", "old")
    assert paired_differences(rows, "new", "old", unpaired=True)[0]["mean"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no system labelled 'nope'"):
        paired_differences(rows, "new", "nope")
    with pytest.raises(ValueError, match="metric must be one of"):
        paired_differences(rows, "new", "old", metric="bpp")
    c = _result_file(tmp_path / "c.json", "other", [1.0], snr_db=7.0)
    with pytest.raises(ValueError, match="share no"):
        paired_differences(load_per_image([a, c]), "new", "other")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a readable"):
        load_per_image([str(tmp_path / "bad.json")])
    with pytest.raises(SystemExit):
        main([a, b, "--a", "new", "--b", "old"])
    assert "not paired" in capsys.readouterr().err


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    a = _result_file(tmp_path / "a.json", "new", [21.0, 22.0, 23.0])
    b = _result_file(tmp_path / "b.json", "old", [20.0, 22.5, 22.0])
    assert main([a, b, "--a", "new", "--b", "old", "--json", str(tmp_path / "d.json")]) == 0
    assert "| awgn | 1 | 22.00 | 21.50 | +0.50" in capsys.readouterr().out
    assert json.loads((tmp_path / "d.json").read_text())["cells"][0]["better"] == 2
