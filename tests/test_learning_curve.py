"""experiments.learning_curve: committed model versions and PSNR-vs-log2(steps) fits."""
import json
import os
import subprocess

import pytest

from experiments.learning_curve import (extract_versions, fit_log_steps, learning_curves,
                                        main, model_versions)


def test_fit_recovers_slope_and_extrapolates_to_a_target():
    steps = [1000, 2000, 4000, 8000]
    psnr = [20.0 + 0.5 * k for k in range(4)]            # 0.5 dB per doubling
    fit = fit_log_steps(steps, psnr, target=22.5)
    assert fit["slope_db_per_doubling"] == pytest.approx(0.5)
    assert fit["residual_std"] == pytest.approx(0.0, abs=1e-9)
    assert fit["steps_to_target"] == pytest.approx(32000.0)   # two more doublings
    assert fit["factor_to_target"] == pytest.approx(4.0)
    flat = fit_log_steps(steps, [20.0, 19.9, 20.0, 19.9], target=25.0)
    assert flat["steps_to_target"] is None and flat["factor_to_target"] is None


@pytest.mark.parametrize("steps, psnr, match", [
    ([1000], [20.0], "at least two different step counts"),
    ([1000, 1000], [20.0, 21.0], "at least two different step counts"),
    ([0, 1000], [20.0, 21.0], "steps must be positive"),
    ([1000, 2000], [20.0], "one length"),
])
def test_fit_refuses_bad_points(steps, psnr, match):
    with pytest.raises(ValueError, match=match):
        fit_log_steps(steps, psnr)


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _commit_model(repo, steps, seconds, weights, message):
    folder = os.path.join(repo, "fqliscs_tf", "weights", "m")
    os.makedirs(folder, exist_ok=True)
    sittings = [{"run_config": {"batch_size": 8}}]
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump({"meta": {"steps": steps, "train_seconds": seconds, "sittings": sittings}}, f)
    with open(os.path.join(folder, "weights.npz"), "wb") as f:
        f.write(weights)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def test_versions_skip_restored_files_and_extract_writes_each(tmp_path):
    repo = str(tmp_path / "repo")
    os.makedirs(repo)
    _git(repo, "init", "-q")
    _commit_model(repo, 100, None, b"first", "v1")
    _commit_model(repo, 100, None, b"first, stored anew", "v1 re-stored")
    _commit_model(repo, 250, 60.0, b"second", "v2")
    versions = model_versions("m", repo)
    assert [v["steps"] for v in versions] == [100, 250]
    assert versions[0]["batch_size"] == 8 and versions[1]["train_seconds"] == 60.0
    out = str(tmp_path / "history")
    history = extract_versions(["m"], out, repo)
    assert [h["folder"] for h in history] == ["m_v1", "m_v2"]
    with open(os.path.join(out, "m_v1", "weights.npz"), "rb") as f:
        assert f.read() == b"first, stored anew"          # the newest copy of that training
    with open(os.path.join(out, "history.json")) as f:
        assert json.load(f) == history
    with pytest.raises(ValueError, match="no committed version of fqliscs_tf/weights/nope"):
        model_versions("nope", repo)


def test_extract_writes_a_version_stored_against_a_base_whole(tmp_path):
    import numpy as np

    from fqliscs_tf.arrays import load_arrays, save_folder_arrays
    repo = str(tmp_path / "repo")
    weights = os.path.join(repo, "fqliscs_tf", "weights")
    os.makedirs(os.path.join(weights, "b"))
    os.makedirs(os.path.join(weights, "m"))
    _git(repo, "init", "-q")
    base = {"w0000": np.arange(100, dtype=np.float16)}
    tuned = {"w0000": base["w0000"] + np.float16(1)}
    with open(os.path.join(weights, "b", "model.json"), "w") as f:
        json.dump({"meta": {"steps": 10}}, f)
    save_folder_arrays(os.path.join(weights, "b"), "model.json", "weights.npz", base)
    entry = save_folder_arrays(os.path.join(weights, "m"), "model.json", "weights.npz", tuned,
                               base=os.path.join(weights, "b"))
    with open(os.path.join(weights, "m", "model.json"), "w") as f:
        json.dump({"meta": {"steps": 20}, "base": entry}, f)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m against b")
    extract_versions(["m"], str(tmp_path / "out"), repo)
    with open(tmp_path / "out" / "m_v1" / "model.json") as f:
        assert "base" not in json.load(f)
    got = load_arrays(tmp_path / "out" / "m_v1" / "weights.npz")   # no base needed
    np.testing.assert_array_equal(got["w0000"], tuned["w0000"])


def _results(path, psnr_by_version, channel="awgn", snr=1.0, label_prefix="m"):
    systems, records = [], []
    for v, p in psnr_by_version.items():
        name = f"float:/x/m_v{v}"
        systems.append({"name": name, "model_dir": f"/x/m_v{v}/"})
        records.append({"system": name, "label": f"{label_prefix}_v{v}", "channel": channel,
                        "snr_db": snr, "psnr": p})
    path.write_text(json.dumps({"systems": systems, "records": records}))
    return str(path)


def test_curves_fit_each_set_extrapolate_and_report_the_gap(tmp_path, capsys):
    history = [{"model": "m", "version": v, "folder": f"m_v{v}", "steps": s}
               for v, s in [(1, 1000), (2, 2000), (3, 4000), (4, 8000)]]
    test = _results(tmp_path / "test.json", {1: 20.0, 2: 20.5, 3: 21.0, 4: 21.5})
    train = _results(tmp_path / "train.json", {1: 21.0, 2: 21.7, 3: 22.4, 4: 23.1})
    curves, gaps = learning_curves([test, train], history, ["kodak", "train"],
                                   target={("awgn", 1.0): 22.5})
    kodak = next(c for c in curves if c["set"] == "kodak")
    assert kodak["fit"]["slope_db_per_doubling"] == pytest.approx(0.5)
    assert kodak["fit"]["factor_to_target"] == pytest.approx(4.0)
    assert kodak["slope_first_half"] == pytest.approx(0.5)
    assert kodak["slope_last_half"] == pytest.approx(0.5)
    assert kodak["fit_last_half"]["factor_to_target"] == pytest.approx(4.0)
    trained = next(c for c in curves if c["set"] == "train")
    assert "target_psnr" not in trained["fit"]              # the target is for the first set
    (gap,) = gaps
    assert gap["versions"] == [1, 2, 3, 4]
    assert gap["gap"] == pytest.approx([-1.0, -1.2, -1.4, -1.6])

    hist = tmp_path / "history.json"
    hist.write_text(json.dumps(history))
    target = _results(tmp_path / "sep.json", {9: 22.5}, label_prefix="sep")
    out, png = tmp_path / "lc.json", tmp_path / "lc.png"
    main(["fit", test, train, "--history", str(hist), "--set-names", "kodak,train",
          "--target", f"{target}:sep_v9", "--output", str(out), "--figure", str(png),
          "--figure-snrs", "1"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "gap m awgn 1 dB (minus train): v1:-1.00" in printed
    saved = json.loads(out.read_text())
    assert saved["meta"]["target"] == f"{target}:sep_v9"
    assert saved["curves"][0]["fit"]["factor_to_target"] == pytest.approx(4.0)


def test_curves_refuse_unmatched_results_and_bad_targets(tmp_path):
    history = [{"model": "m", "version": 1, "folder": "other_v1", "steps": 10}]
    res = _results(tmp_path / "r.json", {1: 20.0})
    with pytest.raises(ValueError, match="no system of the result files is a version"):
        learning_curves([res], history)
    with pytest.raises(ValueError, match="2 set names for 1 result files"):
        learning_curves([res], history, ["a", "b"])
    hist = tmp_path / "h.json"
    hist.write_text(json.dumps(history))
    with pytest.raises(ValueError, match="no system labelled 'nope'"):
        main(["fit", res, "--history", str(hist), "--target", f"{res}:nope"])
    with pytest.raises(ValueError, match="--target must be FILE:LABEL"):
        main(["fit", res, "--history", str(hist), "--target", "missing.json:m_v1"])
    spec = f"{res}:float:/x/m_v1"                      # a full spec holds colons
    with pytest.raises(ValueError, match="no system of the result files is a version"):
        main(["fit", res, "--history", str(hist), "--target", spec])
    matching = tmp_path / "matching.json"
    matching.write_text(json.dumps([{"model": "m", "version": 1, "folder": "m_v1", "steps": 10}]))
    with pytest.raises(ValueError, match="no curve of set"):
        main(["fit", res, "--history", str(matching), "--figure", str(tmp_path / "x.png"),
              "--figure-snrs", "7"])
    with pytest.raises(ValueError, match="--figure-snrs must be comma-separated numbers"):
        main(["fit", res, "--history", str(matching), "--figure", str(tmp_path / "x.png"),
              "--figure-snrs", "one"])
    with pytest.raises(ValueError, match="not a readable fqliscs-evaluate result file"):
        learning_curves([str(tmp_path / "missing.json")], history)


def test_files_of_one_set_may_hold_different_models(tmp_path):
    history = [{"model": m, "version": v, "folder": f"{m}_v{v}", "steps": 1000 * v}
               for m in ("a", "b") for v in (1, 2)]

    def results(name, model, psnrs):
        path = tmp_path / name
        path.write_text(json.dumps({
            "systems": [{"name": f"s{model}{v}", "model_dir": f"/h/{model}_v{v}"} for v in (1, 2)],
            "records": [{"system": f"s{model}{v}", "channel": "awgn", "snr_db": 1.0, "psnr": p}
                        for v, p in zip((1, 2), psnrs)]}))
        return str(path)

    files = [results("ka.json", "a", [20.0, 21.0]), results("ta.json", "a", [19.0, 19.5]),
             results("kb.json", "b", [22.0, 22.1]), results("tb.json", "b", [23.0, 23.0])]
    curves, gaps = learning_curves(files, history, ["kodak", "train", "kodak", "train"])
    assert [(c["model"], c["set"]) for c in curves] == [("a", "kodak"), ("a", "train"),
                                                       ("b", "kodak"), ("b", "train")]
    assert [(g["model"], g["minus"]) for g in gaps] == [("a", "train"), ("b", "train")]
    assert gaps[0]["gap"] == pytest.approx([1.0, 1.5])
    assert gaps[1]["gap"] == pytest.approx([-1.0, -0.9])


def test_plot_refuses_curves_without_points(tmp_path):
    from fqliscs_tf.plotting import plot_learning_curves
    with pytest.raises(ValueError, match="got no curves"):
        plot_learning_curves([], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="2 step counts but 1 PSNR values"):
        plot_learning_curves([{"label": "m", "steps": [1, 2], "psnr": [20.0]}],
                             str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="has no 'psnr' entry"):
        plot_learning_curves([{"label": "m", "steps": [1, 2]}], str(tmp_path / "x.png"))
