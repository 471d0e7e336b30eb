"""One PSNR (or MS-SSIM) vs SNR figure from several ``fqliscs-evaluate`` result files.

Systems evaluated in separate runs (e.g. the integer codec, the baselines, Deep JSCC) are
drawn together, one figure per channel; capacity bounds and, at CBR 1/16, WITT's published
curve are dashed. A (system, channel) pair found in several files is taken from the first.

    python -m experiments.plot_results experiments/results/kodak_int.json \\
        experiments/results/kodak_baselines.json --channel awgn --output docs/img/kodak_awgn.png
"""
import argparse

from experiments.evaluate import channel_label, merge_result_files, published_references


def merge_records(paths):
    """Averaged records of every result file, first file first; duplicates dropped."""
    return merge_result_files(paths, "records", lambda r: (r["system"], r["channel"], r["snr_db"]))


def plot(paths, channel, output, metric="psnr", title=None, exclude=(), labels=None,
         exclude_labels=()):
    """Draw ``metric`` against SNR for ``channel`` from the result files; returns the path.

    Systems whose spec contains a string of ``exclude``, or whose record label is one of
    ``exclude_labels``, are left out. ``labels`` maps system specs to legend labels
    (default: the records' labels)."""
    labels = labels or {}
    from fqliscs_tf import plotting
    records = [r for r in merge_records(paths) if r["channel"] == channel
               and not any(x in r["system"] for x in exclude)
               and r.get("label") not in exclude_labels]
    if not records:
        raise ValueError(f"no record for channel {channel!r} in {list(paths)}")
    lines, refs = [], []
    for system in dict.fromkeys(r["system"] for r in records):
        rows = sorted((r for r in records if r["system"] == system), key=lambda r: r["snr_db"])
        curve = {"label": labels.get(system, rows[0]["label"]), "snr_db": [r["snr_db"] for r in rows],
                 "values": [r[metric] for r in rows]}
        (refs if rows[0]["kind"] == "capacity" else lines).append(curve)
    refs += published_references([channel], [r["cbr"] for r in records], metric)
    return plotting.plot_metric_vs_snr(lines, output, metric,
                                       title or f"{channel_label(channel)}", refs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("results", nargs="+", help="results.json files of fqliscs-evaluate")
    p.add_argument("--channel", default="awgn", help="channel type to draw")
    p.add_argument("--metric", choices=["psnr", "ms_ssim"], default="psnr")
    p.add_argument("--exclude", default="",
                   help="comma-separated substrings: systems whose spec contains one are left out")
    p.add_argument("--exclude-label", action="append", default=[], metavar="TEXT",
                   help="leave out the systems whose record label is exactly TEXT (repeatable)")
    p.add_argument("--label", action="append", default=[], metavar="SYSTEM=TEXT",
                   help="legend label of a system spec (repeatable; split at the last '=', "
                        "so the spec may hold options such as label=...)")
    p.add_argument("--title", default=None, help="figure title (default: the channel)")
    p.add_argument("--output", required=True, help="PNG file to write")
    args = p.parse_args(argv)
    exclude = tuple(x for x in args.exclude.split(",") if x)
    bad = [x for x in args.label if "=" not in x]
    if bad:
        p.error(f"--label needs SYSTEM=TEXT, got {bad[0]!r}")
    labels = dict(x.rsplit("=", 1) for x in args.label)  # specs may hold "=", labels not
    try:
        print(plot(args.results, args.channel, args.output, args.metric, args.title, exclude,
                   labels, tuple(args.exclude_label)))
    except ValueError as e:
        p.error(str(e))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
