"""Paired differences between two systems of ``fqliscs-evaluate`` result files.

The evaluation draws each image's channel realisation from ``(--seed, channel, SNR, image,
repeat)``, so two systems scored with the same seed on the same images see the same noise
and their per-image differences are paired. For every channel and SNR that both systems
have, this prints the mean of ``A - B`` over the images, its 95 % t half-width, and on how
many images ``A`` is better.

    python -m experiments.compare experiments/results/kodak_lite_v3.json \\
        experiments/results/kodak_lite_v2.json --a lite_v3 --b lite_v2

``--a`` / ``--b`` name a system by its label or by its full spec. Pairs whose channel seeds
differ are refused (they are not paired) unless ``--unpaired`` is given.
"""
import argparse
import json

from experiments.evaluate import _stats, merge_result_files

__all__ = ["main", "load_per_image", "paired_differences", "format_table"]

METRICS = ("psnr", "ms_ssim")


def load_per_image(paths):
    """Per-image records of every result file, first file first; a (system, channel, SNR,
    image, repeat) found in several files is taken from the first."""
    return merge_result_files(paths, "per_image", lambda r: (
        r["system"], r["channel"], r["snr_db"], r["image"], r.get("repeat", 0)))


def _select(rows, name):
    """The rows of the one system whose label or spec is ``name``."""
    systems = {r["system"] for r in rows if name in (r["system"], r.get("label"))}
    if not systems:
        known = sorted({r.get("label") or r["system"] for r in rows})
        raise ValueError(f"no system labelled {name!r} in the result files; labels: {known}")
    if len(systems) > 1:
        raise ValueError(f"{name!r} names several systems {sorted(systems)}; give the full spec")
    return [r for r in rows if r["system"] in systems]


def paired_differences(rows, a, b, metric="psnr", unpaired=False):
    """One dict per (channel, SNR) that both systems have: ``mean`` of ``a - b`` over the
    images, ``ci95`` (t half-width, None for one image), ``better`` (images where ``a`` is
    higher), ``n`` and the two means. Raises ValueError for unknown systems or metrics,
    no common cell, or different channel seeds (unless ``unpaired``)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    rows_a, rows_b = _select(rows, a), _select(rows, b)
    index_b = {(r["channel"], r["snr_db"], r["image"], r.get("repeat", 0)): r for r in rows_b}
    cells = {}
    for r in rows_a:
        other = index_b.get((r["channel"], r["snr_db"], r["image"], r.get("repeat", 0)))
        if other is None or r.get(metric) is None or other.get(metric) is None:
            continue
        if not unpaired and r.get("seed") != other.get("seed"):
            raise ValueError(f"{a!r} and {b!r} used different channel seeds on {r['image']} "
                             f"({r['channel']}, {r['snr_db']:g} dB): not paired; evaluate "
                             "both with the same --seed, or pass --unpaired")
        cells.setdefault((r["channel"], r["snr_db"]), []).append((r[metric], other[metric]))
    if not cells:
        raise ValueError(f"{a!r} and {b!r} share no (channel, SNR, image)")
    out = []
    for (channel, snr_db), pairs in cells.items():
        diff = [x - y for x, y in pairs]
        mean, _, half = _stats(diff)
        out.append({"channel": channel, "snr_db": snr_db, "metric": metric, "n": len(pairs),
                    "mean": mean, "ci95": half, "better": sum(d > 0 for d in diff),
                    "a": _stats([x for x, _ in pairs])[0], "b": _stats([y for _, y in pairs])[0]})
    return sorted(out, key=lambda c: (c["channel"], c["snr_db"]))


def format_table(cells, a, b):
    """A markdown table of :func:`paired_differences`."""
    unit = " [dB]" if cells[0]["metric"] == "psnr" else ""
    lines = [f"| channel | SNR [dB] | {a}{unit} | {b}{unit} | {a} − {b}, mean ± 95 % "
             f"(images better) |", "|---|---:|---:|---:|---|"]
    digits = 2 if cells[0]["metric"] == "psnr" else 4
    for c in cells:
        ci = "" if c["ci95"] is None else f" ± {c['ci95']:.{digits}f}"
        lines.append(f"| {c['channel']} | {c['snr_db']:g} | {c['a']:.{digits}f} | "
                     f"{c['b']:.{digits}f} | {c['mean']:+.{digits}f}{ci} "
                     f"({c['better']} of {c['n']}) |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.compare",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="fqliscs-evaluate results.json files")
    p.add_argument("--a", required=True, help="system A: its label or full spec")
    p.add_argument("--b", required=True, help="system B: its label or full spec")
    p.add_argument("--metric", default="psnr", choices=METRICS)
    p.add_argument("--unpaired", action="store_true",
                   help="allow different channel seeds (the differences are then not paired)")
    p.add_argument("--json", default=None, help="also write the cells to this JSON file")
    args = p.parse_args(argv)
    try:
        cells = paired_differences(load_per_image(args.results), args.a, args.b, args.metric,
                                   args.unpaired)
    except ValueError as e:
        p.error(str(e))
    print(format_table(cells, args.a, args.b))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": args.a, "b": args.b, "results": args.results, "cells": cells}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
