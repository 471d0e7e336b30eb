# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Demo: the integer and float Swin JSCC codecs against separation and the capacity bound.

By default it sends the 4 bundled Kodak images (768x512) over AWGN, fast Rayleigh fading
and a 3GPP CDL-A OFDM link at SNR 1, 4, 7, 10 and 13 dB, one transmission per image, SNR
and channel, with these systems (``--systems``, the specs of :mod:`experiments.evaluate`;
shipped model names stand for their folders under ``fqliscs_tf/weights/``):

    int:lite_c96_awgn_int,only=awgn             the integer codecs, each trained through the
    int:lite_c96_rayleigh_int,only=rayleigh     channel it is shown on (QAT; integer channel on
    int:lite_c96_ofdm_cdl_int,only=ofdm-cdl     AWGN and Rayleigh; on OFDM its int8 symbols go
                                                through the float Sionna link)
    float:lite_c96_awgn,only=awgn+ofdm-cdl      the float codecs the integer ones come from
    float:lite_c96_rayleigh,only=rayleigh       (OFDM-CDL: its integer codec was fine-tuned
                                                from an earlier sitting of the AWGN one)
    separation:best                             best image codec + 5G LDPC/QAM, ideal adaptive MCS
                                                (on OFDM-CDL: genie MCS search per realisation)
    capacity:best                               best image codec within k C(SNR) bits (a bound)

``only=CH[+CH...]`` (a demo option) restricts a system to those channels. Systems that
cannot serve a channel (capacity is computed for AWGN and Rayleigh only) are skipped there,
and the table and the plot legend say so. The numbers
come from the evaluation command's functions (:func:`experiments.evaluate.run_cell`, ``summarize``, ``plot_vs_snr``),
with the same per-transmission seeds. Outputs in ``--outdir``::

    demo_results.json                the results in the fqliscs-evaluate schema (meta with
                                     provenance and config; systems, cells, results, records,
                                     per_image) plus "skipped" and "files"
    psnr_vs_snr_<channel>.png        one figure per channel: every system, the capacity bound
                                     and the published WITT curve (AWGN, Rayleigh) dashed
    ms_ssim_vs_snr_<channel>.png
    reconstruction_grid.png          original, the integer codec at the lowest and highest
                                     SNR, separation at the lowest SNR (first channel)

Usage::

    fqliscs-demo                          # or: make demo / python -m experiments.demo
    fqliscs-demo --max-images 1 --snrs 1,13 --channels awgn,ofdm-cdl
    fqliscs-demo --systems float:runs/my_run/export separation:heif --channels awgn
"""
import argparse
import json
import math
import os
import sys
import textwrap
import time

from experiments import evaluate as ev
from experiments.evaluate import DEFAULT_IMAGES

__all__ = ["main", "run", "build_parser", "DEFAULT_SYSTEMS", "DEFAULT_CHANNELS", "DEFAULT_IMAGES"]

#: Default systems (``only=`` restricts a system to some channels).
DEFAULT_SYSTEMS = ("int:lite_c96_awgn_int,only=awgn", "int:lite_c96_rayleigh_int,only=rayleigh",
                   "int:lite_c96_ofdm_cdl_int,only=ofdm-cdl", "float:lite_c96_awgn,only=awgn+ofdm-cdl",
                   "float:lite_c96_rayleigh,only=rayleigh", "separation:best", "capacity:best")
DEFAULT_CHANNELS = "awgn,rayleigh,ofdm-cdl"
_MAX_GRID_ROWS = 4
_JSCC_KINDS = ("int", "qat", "float")
#: CPU seconds per transmission of a 768x512 image on the demo's machine (XLA compile and
#: tracing included), to share the work between the two processes of ``--jobs 2``.
_COST = {"int": 3.3, "qat": 2.0, "float": 1.7, "separation": 2.6, "capacity": 0.7}
_SEPARATION_LINK_COST = 10.0  # separation over an OFDM / MIMO link
_TITLES = {"rayleigh": "Rayleigh, fast fading (per symbol), perfect CSI, MMSE"}


def build_parser():
    p = argparse.ArgumentParser(
        prog="fqliscs-demo", description=__doc__.split("\n\n")[0],
        epilog="System specs: int:FOLDER | float:FOLDER | qat:FOLDER | separation:CODEC|best | "
               "capacity:CODEC|best, with ,KEY=VALUE options as in fqliscs-evaluate, plus "
               "only=CH[+CH...] to run a system on some channels only. FOLDER may be the name "
               "of a shipped model (fqliscs_tf/weights/: lite_c96_awgn, lite_c96_rayleigh, "
               "lite_c96_awgn_int, lite_c96_rayleigh_int, lite_c96_ofdm_cdl_int, ...).")
    p.add_argument("--systems", nargs="+", default=list(DEFAULT_SYSTEMS), metavar="KIND:ARG",
                   help="systems to compare (default: %(default)s)")
    p.add_argument("--images", default=DEFAULT_IMAGES,
                   help="folder of test images, searched recursively; sides are centre-cropped "
                        "to a multiple of the models' stride (default: %(default)s)")
    p.add_argument("--max-images", type=int, default=0,
                   help="use only the first N images (0 = all) (default: %(default)s)")
    p.add_argument("--snrs", default="1,4,7,10,13",
                   help="comma-separated SNRs [dB] (default: %(default)s)")
    p.add_argument("--channels", default=DEFAULT_CHANNELS,
                   help="comma-separated channel types from phy.CHANNEL_TYPES, with their "
                        "default parameters (ofdm-cdl: CDL-A, 100 ns delay spread, 3.5 GHz, "
                        "static, perfect CSI, LMMSE); the first one fills the reconstruction "
                        "grid (default: %(default)s)")
    p.add_argument("--outdir", default="outputs",
                   help="folder for the JSON results and the figures (default: %(default)s)")
    p.add_argument("--jobs", type=int, choices=(1, 2), default=2,
                   help="processes: 2 shares the (system, channel) groups with a second "
                        "process, for two CPU cores; the results are the same, since every "
                        "transmission has its own seed (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1024,
                   help="base seed; each transmission's seed is derived from it, the channel, "
                        "the SNR and the image name (experiments.evaluate.cell_seed) "
                        "(default: %(default)s)")
    return p


def _parse_systems(specs):
    """``--systems`` -> ``[(spec for build_system, channel types or None)]``."""
    from phy import CHANNEL_TYPES
    out = []
    for text in specs:
        kind, arg, opts = ev.parse_system_spec(text)
        only = opts.pop("only", None)
        if only is not None:
            only = [c.strip().lower() for c in only.split("+")]
            bad = [c for c in only if c not in CHANNEL_TYPES]
            if bad:
                raise ValueError(f"system {text!r}: only={bad[0]!r} is not a channel type; "
                                 f"valid: {', '.join(CHANNEL_TYPES)}")
        spec = f"{kind}:" + ",".join([arg] + [f"{k}={v}" for k, v in opts.items()])
        out.append((spec, only))
    names = [s for s, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"--systems names a system twice: {names}")
    return out


def _resolve(args):
    args.snr_list = ev.parse_snrs(args.snrs)
    args.channel_list = ev.parse_channels(args.channels)
    if args.max_images < 0:
        raise ValueError(f"--max-images must be 0 (all) or positive, got {args.max_images}")
    if args.seed < 0:
        raise ValueError(f"--seed must be 0 or positive, got {args.seed}")
    args.system_specs = _parse_systems(args.systems)
    return args


def _build(spec):
    """:func:`experiments.evaluate.build_system`, with a helpful error for a missing model."""
    kind, arg, opts = ev.parse_system_spec(spec)
    if kind in _JSCC_KINDS and not os.path.isdir(ev.resolve_model_dir(arg)):
        raise FileNotFoundError(
            f"no trained model at {arg!r} (not a folder, nor a model shipped in "
            f"{ev.WEIGHTS_DIR}). Train and export one, e.g.\n"
            "  fqliscs-train --training --trainset DIV2K --model-size lite --C 96 "
            "--channel-type awgn --multiple-snr 1,4,7,10,13 --train-dir DIV2K_FOLDER "
            "--workdir runs/lite_c96_awgn\n"
            "which exports the weights to runs/lite_c96_awgn/export; then pass "
            "--systems float:runs/lite_c96_awgn/export (python -m experiments.ship ships it).")
    system = ev.build_system(spec)
    if "label" not in opts:  # clearer names next to each other
        if kind == "float" and system.family == "swin":  # not "lite swin (...)"
            trained = ev.channel_label(system.info["channel_type"])
            system.label = f"{system.model.config.name} float ({trained}-trained)"
        elif system.label.startswith("best + "):
            system.label = "best codec + " + system.label[len("best + "):]
    return system


def _channel_title(channel):
    """Readable channel name with the parameters that matter, e.g. for OFDM-CDL."""
    from phy.channels import lookup_channel
    from phy.ofdm import OFDMLinkChannel
    cls, fixed = lookup_channel(channel.type)
    if channel.type in _TITLES and not channel.kwargs:
        return _TITLES[channel.type]
    if cls is not OFDMLinkChannel:  # MIMO links have their own parameters
        return ev.channel_label(channel.type)
    p = cls.check_params(**{**channel.kwargs, **fixed})
    model = {"tdl": f"3GPP TDL-{p['model']}", "cdl": f"3GPP CDL-{p['model']}"}.get(
        p["channel_model"], p["channel_model"].upper())
    speed = "static" if not p["max_speed"] else f"up to {p['max_speed']:g} m/s"
    csi = "perfect CSI" if p["estimator"] == "perfect" else f"{p['estimator']} estimation"
    return (f"OFDM {model} ({p['delay_spread'] * 1e9:g} ns, {p['carrier_frequency'] / 1e9:g} "
            f"GHz, {speed}), {csi}, {p['equalizer'].upper()}")


def _fraction(x):
    """0.0625 -> "1/16"; other values with 4 significant digits."""
    inverse = 1 / x
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-6 else f"{x:.4g}"


def _float_channel_mode(system, channel):
    """True if an integer codec takes ``channel`` as a float Sionna link."""
    from phy.integer_channel import INT_CHANNEL_TYPES
    return system.kind == "int" and (channel.type not in INT_CHANNEL_TYPES or channel.kwargs)


def _plan(systems, only, channels, snr_list):
    """Cells to run, in channel-major order, and the skipped (system, channel) pairs."""
    plan, skipped = [], []
    for ch in channels:
        for s in systems:
            if only[s.name] is not None and ch.type not in only[s.name]:
                continue
            try:
                s.check(ch, [])
            except ValueError as e:  # e.g. separation on OFDM: say so, do not fail
                skipped.append({"system": s.name, "label": s.label, "channel": ch.type,
                                "reason": str(e)})
                continue
            s.check(ch, snr_list)  # an SNR it cannot serve is an error
            plan += [(s, ch, snr) for snr in snr_list]
    return plan, skipped


def _grid_spec(systems, plan, snr_list):
    """``(channel, [(system, snr)])`` of the reconstruction grid, or None."""
    served = {(s.name, ch.type) for s, ch, _ in plan}
    jscc = [s for s in systems if s.kind == "int"] or [s for s in systems if s.kind in _JSCC_KINDS]
    sep = [s for s in systems if s.kind == "separation"]
    lo, hi = min(snr_list), max(snr_list)
    channels = []
    for _, ch, _ in plan:
        if not any(ch is c for c in channels):
            channels.append(ch)
    for ch in channels:
        cols = []
        if jscc and (jscc[0].name, ch.type) in served:
            cols += [(jscc[0], lo)] + ([(jscc[0], hi)] if hi != lo else [])
        if sep and (sep[0].name, ch.type) in served:
            cols.append((sep[0], lo))
        if cols:
            return ch, cols
    return None


def _run_groups(groups, images, seed, cbr=None):
    """Run ``groups`` ``[(system or spec, channel, [(snr_db, keep)])]``, printing one line
    per group; specs are built here (worker process) with ``cbr``.

    Returns ``{(system name, channel type, snr_db): (records, seconds, kept images)}``
    (:func:`experiments.evaluate.run_cell`).
    """
    built, out = {}, {}
    for system, ch, cells in groups:
        if isinstance(system, str):
            if system not in built:
                built[system] = _build(system)
                built[system].configure(cbr, "crop")
            system = built[system]
        t0 = time.time()
        for snr, keep in cells:
            c0 = time.time()
            recs, kept = ev.run_cell(system, ch, snr, images, seed=seed, keep=keep)
            out[(system.name, ch.type, snr)] = (recs, time.time() - c0, kept)
        psnrs = [r["psnr"] for r in ev.summarize(
            [r for snr, _ in cells for r in out[(system.name, ch.type, snr)][0]])]
        print(f"{system.label[:46]:<46} | {ev.channel_label(ch.type):<10} | PSNR "
              + " ".join(f"{p:5.2f}" for p in psnrs) + f" dB ({time.time() - t0:.1f} s)",
              flush=True)
    return out


def _split(groups):
    """Share the groups between this process and a worker: longest first, each to the less
    loaded process (:data:`_COST`); each process keeps the channel-major order."""
    load, share = [0.0, 0.0], ([], [])
    order = sorted(range(len(groups)), key=lambda i: -_cost(groups[i]))
    for i in order:
        p = 0 if load[0] <= load[1] else 1
        load[p] += _cost(groups[i])
        share[p].append(i)
    return tuple([groups[i] for i in sorted(part)] for part in share)


def _cost(group):
    from phy.separation import GENIE_CHANNELS
    system, ch, cells = group
    if system.kind == "separation" and ch.type in GENIE_CHANNELS:
        return _SEPARATION_LINK_COST * len(cells)  # genie MCS search through the link
    return _COST.get(system.kind, 2.0) * len(cells)


def _worker(groups, images, seed, cbr):
    """:func:`_run_groups` in the second process of ``--jobs 2``."""
    from fqliscs_tf.utils import set_seed
    set_seed(seed)
    return _run_groups(groups, images, seed, cbr)


def _grid_title(system, record, channel):
    title = (f"{textwrap.shorten(system.label, 34, placeholder='...')}\n"
             f"{ev.channel_label(channel.type)} {record['snr_db']:g} dB: {record['psnr']:.2f} dB")
    if system.kind == "separation":
        if record["status"] != "ok":
            title += f"\n{record['status'].replace('_', ' ')}: gray fallback"
        elif record["codec"]:
            title += f"\n{record['codec']}, MCS {record['mcs']}, {record['bpp']:.3f} bpp"
    return title


def _cell(record, width):
    if record is None:
        return f"{'-':>{width}}"
    mark = "†" if record["success_rate"] < 1 else " "
    return f"{record['psnr']:>6.2f}/{record['ms_ssim']:.3f}{mark}".rjust(width)


def _print_table(records, systems, channels, snr_list, skipped, titles, num_images):
    by_key = {(r["system"], r["channel"], r["snr_db"]): r for r in records}
    width, label_width = 13, 48
    footnotes = set()
    print(f"\nPSNR [dB] / MS-SSIM, mean over {num_images} image(s)")
    for ch in channels:
        print(f"\n{titles[ch.type]}")
        print(f"{'system':<{label_width}}" + "".join(f"{f'{s:g} dB':>{width}}" for s in snr_list))
        for s in systems:
            rows = [by_key.get((s.name, ch.type, snr)) for snr in snr_list]
            label = textwrap.shorten(s.label, label_width - 3, placeholder="...")
            if any(rows):
                if _float_channel_mode(s, ch):
                    label += " *"
                    footnotes.add("* integer codec over the float Sionna link (int8 symbols in, "
                                  "received symbols rounded back to the int8 grid)")
                if any(r and r["success_rate"] < 1 for r in rows):
                    footnotes.add("† some images fell back to the gray image (failed decode, "
                                  "or nothing sent below the lowest MCS threshold)")
                print((f"{label:<{label_width}}" + "".join(_cell(r, width) for r in rows))
                      .rstrip())
            elif any(k["system"] == s.name and k["channel"] == ch.type for k in skipped):
                print(f"{label:<{label_width}}  n/a: {_short_reason(s)}")
    for note in sorted(footnotes):
        print(note)


def _served(system):
    """Channel labels a digital system serves, without variants: ["AWGN", "Rayleigh"]."""
    labels = [ev.channel_label(c) for c in getattr(system, "_channels", ())]
    return list(dict.fromkeys(label for label in labels if "(" not in label))


def _short_reason(system):
    """Why a system skipped a channel, in a few words (the full reason is in the JSON)."""
    served = _served(system)
    if not served:
        return "cannot serve this channel"
    return f"{system.kind} is simulated on {' and '.join(served)} only"


def main(argv=None):
    """Run the demo (see the module docstring). Returns 0, the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _resolve(build_parser().parse_args(argv))
    args.command = " ".join(["fqliscs-demo"] + argv)
    run(args)
    return 0


def run(args):
    """Evaluate, print and write the outputs for parsed ``args`` (see :func:`main`).

    Returns the dict written to ``demo_results.json``.
    """
    from fqliscs_tf import plotting
    from fqliscs_tf.training import MS_SSIM_LEVELS
    from fqliscs_tf.utils import provenance, set_seed

    start = time.time()
    load = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared: timing context
    set_seed(args.seed)
    systems, only = [], {}
    for spec, channels in args.system_specs:
        s = _build(spec)
        systems.append(s)
        only[s.name] = channels
    cbrs = sorted({s.cbr for s in systems if s.cbr is not None})
    cbr = cbrs[0] if len(cbrs) == 1 else 1 / 16
    for s in systems:
        s.configure(cbr, "crop")
    plan, skipped = _plan(systems, only, args.channel_list, args.snr_list)
    if not plan:
        raise ValueError("no system can serve any of --channels "
                         f"{[c.type for c in args.channel_list]}")
    images = ev.load_images(args.images, args.max_images,
                            math.lcm(*[s.size_multiple for s in systems]), fit="crop")
    titles = {ch.type: _channel_title(ch) for ch in args.channel_list}
    print(f"{len(images)} image(s) from {args.images}; SNRs {args.snr_list} dB; "
          f"CBR {_fraction(cbr)}")
    for s in systems:
        print(f"  {s.name}: {s.label}")
    for k in skipped:
        print(f"  {k['system']} skipped on {k['channel']}: "
              f"{_short_reason(next(s for s in systems if s.name == k['system']))}")

    grid = _grid_spec(systems, plan, args.snr_list)
    rows = images[:_MAX_GRID_ROWS]
    groups = []  # (system, channel, [(snr_db, images to keep)]) in channel-major order
    for ch in args.channel_list:
        for s in systems:
            cells = [(snr, len(rows) if grid and ch is grid[0] and (s, snr) in grid[1] else 0)
                     for t, c, snr in plan if t is s and c is ch]
            if cells:
                groups.append((s, ch, cells))
    main_groups, worker_groups = _split(groups) if args.jobs > 1 else (groups, [])
    if worker_groups:
        import concurrent.futures
        import multiprocessing
        with concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn")) as pool:
            future = pool.submit(_worker, [(s.name, ch, cells) for s, ch, cells in worker_groups],
                                 images, args.seed, cbr)
            done = _run_groups(main_groups, images, args.seed)
            done.update(future.result())
    else:
        done = _run_groups(main_groups, images, args.seed)
    kept = {key: value[2] for key, value in done.items()}
    done = {key: value[:2] for key, value in done.items()}
    eval_seconds = time.time() - start

    config = {"images": os.path.abspath(args.images), "image_names": [n for n, _ in images],
              "seed": args.seed, "repeats": 1, "cbr": cbr, "fit": "crop",
              "ms_ssim_levels": MS_SSIM_LEVELS, "snr_db": args.snr_list,
              "channels": [{"name": c.type, "type": c.type, "kwargs": c.kwargs,
                            "description": titles[c.type]} for c in args.channel_list]}
    meta = provenance(command=getattr(args, "command", "fqliscs-demo"), config=config,
                      ci_level=ev.CI_LEVEL, resumed_cells=0, complete=True,
                      eval_seconds=eval_seconds, load_average_at_start=load)
    results = ev.validate_results(ev.results_dict(
        plan, done, systems, meta, name="fqliscs-demo",
        description="Integer and float Swin JSCC codecs, separation (ideal adaptive MCS) and "
                    "the capacity bound on the bundled Kodak images"))
    results["skipped"] = skipped

    _print_table(results["records"], systems, args.channel_list, args.snr_list, skipped, titles,
                 len(images))
    os.makedirs(args.outdir, exist_ok=True)
    paths = []
    for ch in args.channel_list:
        if not any(c.type == ch.type for _, c, _ in plan):
            continue
        notes = [f"{s.label}: n/a" + (f" ({'/'.join(_served(s))} only)" if _served(s) else "")
                 for k in skipped for s in systems
                 if s.name == k["system"] and k["channel"] == ch.type]
        title = f"{titles[ch.type]}\n{len(images)} image(s), CBR {_fraction(cbr)}"
        for metric in ("psnr", "ms_ssim"):
            paths.append(ev.plot_vs_snr(
                results["records"], systems,
                os.path.join(args.outdir, f"{metric}_vs_snr_{ch.type}.png"), metric, title,
                ch.type, notes))
    if grid:
        ch, cols = grid
        by_key = {(r["system"], r["image"], r["snr_db"]): r for r in results["per_image"]
                  if r["channel"] == ch.type and r["repeat"] == 0}
        grid_rows = [[image] + [kept[(s.name, ch.type, snr)][name] for s, snr in cols]
                     for name, image in rows]
        grid_titles = [[f"original\n{name}"] + [_grid_title(s, by_key[(s.name, name, snr)], ch)
                                                for s, snr in cols] for name, _ in rows]
        paths.append(plotting.reconstruction_grid(
            grid_rows, os.path.join(args.outdir, "reconstruction_grid.png"), grid_titles))
    json_path = os.path.join(args.outdir, "demo_results.json")
    results["files"] = [os.path.basename(p) for p in [json_path] + paths]
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nfinished in {time.time() - start:.0f} s; outputs in {os.path.abspath(args.outdir)}:")
    for path in [json_path] + paths:
        print(f"  {path}")
    return results


if __name__ == "__main__":
    sys.exit(main())
