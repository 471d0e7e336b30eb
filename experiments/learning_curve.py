"""Learning curves of a shipped model across its committed versions (issue 6).

Every training sitting that was shipped replaced a model folder under
``fqliscs_tf/weights/``, and git keeps each version. Two subcommands turn that history into
a learning curve:

* ``extract NAME [NAME ...] --out DIR`` writes every committed version of each shipped
  folder to ``DIR/NAME_vK`` (K = 1 for the oldest) and ``DIR/history.json`` with each
  version's commit, date, training steps, batch size and training seconds (from its
  ``model.json``). Versions whose recorded steps and seconds equal the previous version's
  (a re-stored file, not new training) are skipped. A version stored as differences from
  another shipped folder is written whole, so that each ``NAME_vK`` loads on its own.
* ``fit RESULTS.json [...] --history DIR/history.json`` reads ``fqliscs-evaluate`` result
  files of those folders and, per model, result set, channel and SNR, fits the mean PSNR
  [dB] against ``log2(steps)`` by least squares: the gain per doubling of training, the
  same slope over the first and the last half of the versions (a slope that falls says the
  curve is bending), and, with ``--target FILE:LABEL``, the steps at which the fitted line,
  and the line of the last half alone, would reach that system's PSNR. That is an
  extrapolation, valid only while the curve stays straight on a log axis; a curve that
  bends down needs more. ``--figure PNG`` draws the first set's curves at ``--figure-snrs``.

    python -m experiments.learning_curve extract lite_c96_awgn deepjscc_c96_awgn --out runs/history
    fqliscs-evaluate --systems float:runs/history/lite_c96_awgn_v1 ... --outdir outputs/lc_kodak
    python -m experiments.learning_curve fit outputs/lc_kodak/results.json \\
        --history runs/history/history.json --target experiments/results/kodak_baselines.json:LABEL

Result files are matched to versions by the basename of each system's model folder
(``NAME_vK``). Each result file belongs to a *set* (``--set-names``, default the file
names; files of one set, e.g. one per model, share its name), e.g. Kodak and training-pool
images: the fit then also reports, per version, the first set's PSNR minus each other set's
(the generalisation gap, if the other set is the training images).
"""
import argparse
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

__all__ = ["model_versions", "extract_versions", "fit_log_steps", "learning_curves", "main"]

WEIGHTS_DIR = "fqliscs_tf/weights"


def _git(args, repo):
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False)
    if out.returncode != 0:
        raise ValueError(f"git {' '.join(args)} failed in {repo}: "
                         f"{out.stderr.decode(errors='replace').strip()}")
    return out.stdout


def _version_info(meta):
    """Steps, batch size and training seconds from a ``model.json`` ``meta`` dict."""
    sittings = meta.get("sittings") or []
    seconds = meta.get("train_seconds")
    batch = None
    for s in sittings:
        batch = (s.get("run_config") or {}).get("batch_size", batch)
    return {"steps": meta.get("steps"), "batch_size": batch, "train_seconds": seconds,
            "sittings": len(sittings) or 1}


def model_versions(name, repo="."):
    """The committed versions of shipped model ``name``, oldest first: dicts with
    ``commit``, ``date`` and the :func:`_version_info` fields. A commit whose steps and
    seconds equal the previous version's replaces it (the same training, re-stored)."""
    folder = f"{WEIGHTS_DIR}/{name}"
    log = _git(["log", "--reverse", "--format=%H %cI", "--", folder],
               repo).decode().split()
    if not log:
        raise ValueError(f"no committed version of {folder} in {os.path.abspath(repo)}")
    versions = []
    for commit, date in zip(log[0::2], log[1::2]):
        try:
            config = json.loads(_git(["show", f"{commit}:{folder}/model.json"], repo))
        except ValueError:
            continue                       # the folder was removed in this commit
        info = {"commit": commit, "date": date, **_version_info(config.get("meta") or {})}
        if info["steps"] is None:
            continue
        if versions and (versions[-1]["steps"], versions[-1]["train_seconds"]) == (
                info["steps"], info["train_seconds"]):
            versions[-1] = info
        else:
            versions.append(info)
    return versions


def _write_version(commit, name, dest, repo):
    """Write shipped folder ``name`` as of ``commit`` to ``dest``. A folder stored as
    differences from a base folder (``model.json`` ``"base"``) is written whole, with the
    base of the same commit added back, so that it loads on its own."""
    from fqliscs_tf.arrays import load_folder_arrays, save_arrays
    from fqliscs_tf.checkpoints import MODEL_FILE, WEIGHTS_FILE
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = _git(["archive", commit, WEIGHTS_DIR], repo)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.10.12+
            tar.extractall(tmp, **safe)
        src = os.path.join(tmp, WEIGHTS_DIR, name)
        for file in os.listdir(src):
            shutil.copyfile(os.path.join(src, file), os.path.join(dest, file))
        with open(os.path.join(src, MODEL_FILE)) as f:
            config = json.load(f)
        if "base" in config:
            save_arrays(os.path.join(dest, WEIGHTS_FILE),
                        load_folder_arrays(src, MODEL_FILE, WEIGHTS_FILE))
            del config["base"]
            with open(os.path.join(dest, MODEL_FILE), "w") as f:
                json.dump(config, f, indent=2)


def extract_versions(names, out, repo="."):
    """Write every version of each shipped model to ``out/NAME_vK`` and the list of them
    to ``out/history.json``; returns that list."""
    history = []
    for name in names:
        for k, info in enumerate(model_versions(name, repo), start=1):
            dest = os.path.join(out, f"{name}_v{k}")
            _write_version(info["commit"], name, dest, repo)
            history.append({"model": name, "version": k, "folder": os.path.basename(dest),
                            **info})
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump(history, f, indent=1)
    return history


def fit_log_steps(steps, psnr, target=None):
    """Least-squares line ``psnr = a + b log2(steps)``.

    Returns ``slope_db_per_doubling`` (b), ``intercept``, ``residual_std`` [dB] and, with
    ``target`` [dB], ``steps_to_target`` (where the line reaches it; None if the slope is
    not positive) and ``factor_to_target`` (that over the largest steps). ValueError for fewer
    than two points, non-positive steps or mismatched lengths."""
    steps, psnr = np.asarray(steps, float), np.asarray(psnr, float)
    if steps.shape != psnr.shape or steps.ndim != 1:
        raise ValueError(f"steps and psnr must be 1-D of one length, got shapes "
                         f"{steps.shape} and {psnr.shape}")
    if steps.size < 2 or np.unique(steps).size < 2:
        raise ValueError(f"a fit needs at least two different step counts, got {steps.tolist()}")
    if np.any(steps <= 0):
        raise ValueError(f"steps must be positive, got {steps.tolist()}")
    x = np.log2(steps)
    b, a = np.polyfit(x, psnr, 1)
    resid = psnr - (a + b * x)
    dof = max(steps.size - 2, 1)
    out = {"slope_db_per_doubling": float(b), "intercept": float(a),
           "residual_std": float(math.sqrt(float(resid @ resid) / dof))}
    if target is not None:
        reach = float(2.0 ** ((target - a) / b)) if b > 0 else None
        out.update(target_psnr=float(target), steps_to_target=reach,
                   factor_to_target=None if reach is None else reach / float(steps.max()))
    return out


def _load(path):
    try:
        with open(path) as f:
            data = json.load(f)
        return data["systems"], data["records"]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: not a readable fqliscs-evaluate result file ({e})") from e


def _split_target(spec):
    """``FILE:LABEL`` -> (FILE, LABEL); the label may hold colons (e.g. a full spec)."""
    cuts = [i for i, ch in enumerate(spec) if ch == ":" and os.path.isfile(spec[:i])]
    if not cuts:
        raise ValueError(f"--target must be FILE:LABEL with an existing FILE, got {spec!r}")
    return spec[:cuts[0]], spec[cuts[0] + 1:]


def _target_psnr(spec):
    """``FILE:LABEL`` -> {(channel, snr_db): mean PSNR} of that system."""
    from experiments.compare import _select
    path, label = _split_target(spec)
    _, records = _load(path)
    return {(r["channel"], r["snr_db"]): r["psnr"] for r in _select(records, label)}


def learning_curves(result_paths, history, set_names=None, target=None):
    """Per model, set, channel and SNR: the points (steps, PSNR) and their fits.

    ``history`` is :func:`extract_versions`' list; ``target`` a dict from
    :func:`_target_psnr` or None. Returns a list of dicts (one per curve) and, with two or
    more sets, the per-version gaps (first set minus each other set)."""
    set_names = list(set_names or [os.path.basename(p) for p in result_paths])
    if len(set_names) != len(result_paths):
        raise ValueError(f"{len(set_names)} set names for {len(result_paths)} result files")
    by_folder = {h["folder"]: h for h in history}
    points = {}                               # (model, set, channel, snr) -> [(steps, psnr, v)]
    batch_of = {}
    for set_name, path in zip(set_names, result_paths):
        systems, records = _load(path)
        folder_of = {s["name"]: os.path.basename(os.path.normpath(s.get("model_dir") or ""))
                     for s in systems}
        for r in records:
            h = by_folder.get(folder_of.get(r["system"], ""))
            if h is None:
                continue
            key = (h["model"], set_name, r["channel"], r["snr_db"])
            points.setdefault(key, []).append((h["steps"], r["psnr"], h["version"]))
            batch_of[h["model"]] = h.get("batch_size")
    if not points:
        raise ValueError("no system of the result files is a version in the history "
                         f"(folders {sorted(by_folder)})")
    curves = []
    for (model, set_name, channel, snr), pts in sorted(points.items()):
        pts.sort()
        steps, psnr, versions = (list(c) for c in zip(*pts))
        t = None if target is None or set_name != set_names[0] else target.get((channel, snr))
        curve = {"model": model, "set": set_name, "channel": channel, "snr_db": snr,
                 "batch_size": batch_of.get(model), "versions": versions, "steps": steps,
                 "psnr": psnr}
        if len(pts) >= 2:
            curve["fit"] = fit_log_steps(steps, psnr, t)
            half = len(pts) // 2
            if half >= 2:
                curve["slope_first_half"] = fit_log_steps(
                    steps[:half + 1], psnr[:half + 1])["slope_db_per_doubling"]
                curve["fit_last_half"] = fit_log_steps(steps[half:], psnr[half:], t)
                curve["slope_last_half"] = curve["fit_last_half"]["slope_db_per_doubling"]
        curves.append(curve)
    gaps = []
    others = [n for n in dict.fromkeys(set_names) if n != set_names[0]]
    by_key = {(c["model"], c["set"], c["channel"], c["snr_db"]): c for c in curves}
    for c in curves:
        if c["set"] != set_names[0]:
            continue
        for other in others:
            o = by_key.get((c["model"], other, c["channel"], c["snr_db"]))
            if o is None:
                continue
            common = sorted(set(c["versions"]) & set(o["versions"]))
            pa = dict(zip(c["versions"], c["psnr"]))
            pb = dict(zip(o["versions"], o["psnr"]))
            gaps.append({"model": c["model"], "channel": c["channel"], "snr_db": c["snr_db"],
                         "minus": other, "versions": common,
                         "gap": [pa[v] - pb[v] for v in common]})
    return curves, gaps


def format_curves(curves, gaps):
    lines = [f"{'model':22s} {'set':10s} {'ch':6s} {'SNR':>4s}  {'PSNR first->last':>17s}  "
             f"{'dB/doubling':>11s} {'1st half':>8s} {'2nd half':>8s}  "
             f"{'x steps to target':>17s} {'(2nd half)':>10s}"]
    for c in curves:
        f = c.get("fit", {})
        reach = f.get("factor_to_target")
        reach_last = c.get("fit_last_half", {}).get("factor_to_target")
        lines.append(
            f"{c['model']:22s} {c['set'][:10]:10s} {c['channel']:6s} {c['snr_db']:4g}  "
            f"{c['psnr'][0]:7.2f} -> {c['psnr'][-1]:6.2f}  "
            f"{f.get('slope_db_per_doubling', float('nan')):11.3f} "
            f"{c.get('slope_first_half', float('nan')):8.3f} "
            f"{c.get('slope_last_half', float('nan')):8.3f}  "
            f"{'' if reach is None else f'{reach:17.1f}'} "
            f"{'' if reach_last is None else f'{reach_last:10.1f}'}")
    for g in gaps:
        lines.append(f"gap {g['model']} {g['channel']} {g['snr_db']:g} dB (minus {g['minus']}): "
                     + " ".join(f"v{v}:{d:+.2f}" for v, d in zip(g["versions"], g["gap"])))
    return "\n".join(lines)


def plot_curves(curves, path, snrs="1,4", max_extension=32, target_name="target"):
    """Draw the first set's curves at ``snrs`` (comma-separated dB) with their whole-range
    fits, extended towards the target, at most to ``max_extension`` times the last steps.
    Returns the path."""
    try:
        wanted = [float(x) for x in snrs.split(",") if x.strip()]
    except ValueError as e:
        raise ValueError(f"--figure-snrs must be comma-separated numbers, got {snrs!r}") from e
    first = curves[0]["set"] if curves else None
    drawn = []
    for c in curves:
        if c["set"] != first or c["snr_db"] not in wanted:
            continue
        fit = c.get("fit")
        reach = fit and fit.get("steps_to_target")
        batch = f" (batch {c['batch_size']})" if c.get("batch_size") else ""
        last = c["steps"][-1]
        drawn.append({"label": f"{c['model']}{batch}, {c['channel']} {c['snr_db']:g} dB",
                      "steps": c["steps"], "psnr": c["psnr"], "fit": fit,
                      "fit_to": min(max(reach, last), max_extension * last) if reach else None,
                      "target": fit and fit.get("target_psnr"),
                      "target_label": f"{target_name}, {c['channel']} {c['snr_db']:g} dB"})
    if not drawn:
        raise ValueError(f"no curve of set {first!r} at SNRs {wanted}")
    from fqliscs_tf.plotting import plot_learning_curves
    return plot_learning_curves(drawn, path, title=f"{first}: PSNR against training steps")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="write every committed version of shipped models")
    ex.add_argument("names", nargs="+", help="shipped model folders under fqliscs_tf/weights")
    ex.add_argument("--out", required=True, help="output folder")
    ex.add_argument("--repo", default=".", help="git work tree")
    fi = sub.add_parser("fit", help="fit PSNR against log2(steps)")
    fi.add_argument("results", nargs="+", help="fqliscs-evaluate result files (one per set)")
    fi.add_argument("--history", required=True, help="history.json written by extract")
    fi.add_argument("--set-names", help="comma-separated names of the result sets")
    fi.add_argument("--target", help="FILE:LABEL, a system whose PSNR the fit extrapolates to")
    fi.add_argument("--output", help="JSON file for the curves, fits and gaps")
    fi.add_argument("--figure", help="PNG of the first set's curves, fits and targets")
    fi.add_argument("--figure-snrs", default="1,4", help="comma-separated SNRs [dB] to draw")
    args = parser.parse_args(argv)
    if args.command == "extract":
        history = extract_versions(args.names, args.out, args.repo)
        for h in history:
            print(f"{h['folder']:28s} {h['commit'][:8]} {h['date'][:10]} steps {h['steps']:>7} "
                  f"seconds {h['train_seconds']}")
        print(f"wrote {len(history)} folders and history.json to {args.out}")
        return history
    with open(args.history) as f:
        history = json.load(f)
    names = args.set_names.split(",") if args.set_names else None
    target = _target_psnr(args.target) if args.target else None
    curves, gaps = learning_curves(args.results, history, names, target)
    print(format_curves(curves, gaps))
    if args.figure:
        name = _split_target(args.target)[1] if args.target else "target"
        print(f"wrote {plot_curves(curves, args.figure, args.figure_snrs, target_name=name)}")
    if args.output:
        from fqliscs_tf.utils import provenance
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump({"name": "learning_curve", "meta": provenance(
                command=" ".join(["python -m experiments.learning_curve",
                                  *(sys.argv[1:] if argv is None else argv)]),
                results=args.results, target=args.target),
                "history": history, "curves": curves, "gaps": gaps}, f, indent=1)
        print(f"wrote {args.output}")
    return curves, gaps


if __name__ == "__main__":
    main()
