"""Demo: run a trained Swin JSCC codec over AWGN and Rayleigh channels on Kodak images.

By default it loads the shipped ``lite`` model (``fqliscs_tf/weights/lite_c96_awgn``) and
the bundled Kodak images, evaluates PSNR and MS-SSIM at every SNR on every channel, prints
a table and writes to ``--outdir``. The numbers come from the evaluation command's functions
(:mod:`experiments.evaluate`: ``load_images``, ``run_cell``, ``summarize``), one
transmission per image, SNR and channel::

    demo_results.json        records {model, channel, snr_db, cbr, psnr, ms_ssim, num_images} + meta
    psnr_vs_snr.png          one curve per channel, published WITT curves dashed
    ms_ssim_vs_snr.png
    reconstruction_grid.png  original + reconstructions of the first images

Usage::

    fqliscs-demo                                   # or: make demo / python -m experiments.demo
    fqliscs-demo --model runs/lite_c96_awgn/export --images ../shared/data/kodak --snrs 1,10
"""
import argparse
import json
import os
import sys
import time

from experiments import evaluate as ev
from experiments.evaluate import DEFAULT_IMAGES, DEFAULT_MODEL

__all__ = ["main", "run", "build_parser", "DEFAULT_MODEL", "DEFAULT_IMAGES"]

_MAX_GRID_ROWS = 4


def build_parser():
    p = argparse.ArgumentParser(
        prog="fqliscs-demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="exported model folder (model.json + weights.npz) (default: %(default)s)")
    p.add_argument("--images", default=DEFAULT_IMAGES,
                   help="folder of test images, searched recursively; sides are centre-cropped "
                        "to a multiple of the model's stride (default: %(default)s)")
    p.add_argument("--snrs", default="1,4,7,10,13",
                   help="comma-separated SNRs [dB] (default: %(default)s)")
    p.add_argument("--channels", default="awgn,rayleigh",
                   help="comma-separated channel types, from phy.CHANNEL_TYPES; the first one "
                        "fills the reconstruction grid (default: %(default)s)")
    p.add_argument("--outdir", default="outputs",
                   help="folder for the JSON results and the figures (default: %(default)s)")
    p.add_argument("--max-images", type=int, default=0,
                   help="use only the first N images (0 = all) (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1024,
                   help="base seed of the channel noise; each image's seed is derived from it "
                        "(experiments.evaluate.cell_seed) (default: %(default)s)")
    return p


def _resolve(args):
    args.snr_list = ev.parse_snrs(args.snrs)
    args.channel_list = [c.type for c in ev.parse_channels(args.channels)]
    if args.max_images < 0:
        raise ValueError(f"--max-images must be 0 (all) or positive, got {args.max_images}")
    if args.seed < 0:
        raise ValueError(f"--seed must be 0 or positive, got {args.seed}")
    return args


def _load(path):
    """The :class:`experiments.evaluate.FloatSystem` of an exported model, or a helpful error."""
    from fqliscs_tf.checkpoints import MODEL_FILE
    if not os.path.isfile(os.path.join(path, MODEL_FILE)):
        raise FileNotFoundError(
            f"no trained model at {path!r} (missing {MODEL_FILE}). Train and export one, e.g.\n"
            "  fqliscs-train --training --trainset DIV2K --model-size lite --C 96 "
            "--channel-type awgn --multiple-snr 1,4,7,10,13 --train-dir DIV2K_FOLDER "
            "--workdir runs/lite_c96_awgn\n"
            "which exports the weights to runs/lite_c96_awgn/export; then pass "
            f"--model runs/lite_c96_awgn/export (or copy that folder to {DEFAULT_MODEL}).")
    return ev.FloatSystem(path, {})


def _fmt_snr(snr):
    return f"{snr:g} dB"


def _print_table(rows):
    print(f"{'channel':<16} {'SNR [dB]':>8} {'PSNR [dB]':>10} {'MS-SSIM':>8} {'images':>7}")
    for r in rows:
        print(f"{r['channel']:<16} {r['snr_db']:>8.1f} {r['psnr']:>10.2f} {r['ms_ssim']:>8.4f} "
              f"{r['num_images']:>7d}")


def _write_figures(args, records, model_label, cbr, grid_rows, grid_titles, num_images):
    from fqliscs_tf import plotting
    out = {}
    curves = {"psnr": [], "ms_ssim": []}
    for ch in args.channel_list:
        recs = [r for r in records if r["channel"] == ch]
        for metric in curves:
            curves[metric].append({"label": f"{model_label}, {ev.channel_label(ch)}",
                                   "snr_db": [r["snr_db"] for r in recs],
                                   "values": [r[metric] for r in recs]})
    refs = []
    for ch in args.channel_list:
        key = ev.WITT_REFERENCE_KEYS.get(ch)
        if key and plotting.WITT_REFERENCES[key] not in refs:
            refs.append(plotting.WITT_REFERENCES[key])
    title = f"{num_images} image(s), CBR {cbr:.4g} (1/{1 / cbr:.3g})"
    out["psnr"] = plotting.plot_metric_vs_snr(
        curves["psnr"], os.path.join(args.outdir, "psnr_vs_snr.png"), "psnr", title, refs)
    out["ms_ssim"] = plotting.plot_metric_vs_snr(
        curves["ms_ssim"], os.path.join(args.outdir, "ms_ssim_vs_snr.png"), "ms_ssim", title)
    out["grid"] = plotting.reconstruction_grid(
        grid_rows, os.path.join(args.outdir, "reconstruction_grid.png"), grid_titles)
    return out


def main(argv=None):
    """Run the demo (see the module docstring). Returns 0, the exit status."""
    args = _resolve(build_parser().parse_args(argv))
    args.command = " ".join(["fqliscs-demo"] + list(sys.argv[1:] if argv is None else argv))
    run(args)
    return 0


def run(args):
    """Evaluate, print and write the outputs for parsed ``args`` (see :func:`main`).

    Returns the dict written to ``demo_results.json``.
    """
    from fqliscs_tf.utils import provenance, set_seed

    set_seed(args.seed)
    system = _load(args.model)
    model, info, cfg = system.model, system.info, system.model.config
    images = ev.load_images(args.images, args.max_images, cfg.size_multiple, fit="crop")
    names = [n for n, _ in images]
    print(f"model {args.model} (preset {cfg.name!r}, trained on {info['channel_type']!r}, "
          f"CBR {model.cbr:.4g}); {len(images)} image(s) from {args.images}; "
          f"channels {args.channel_list}; SNRs {args.snr_list} dB")

    per_image, seconds = [], {}
    snr_low = min(args.snr_list)
    grid_items = images[:_MAX_GRID_ROWS]
    grid_rows = [[image] for _, image in grid_items]
    grid_titles = [[f"original\n{n}"] for n, _ in grid_items]
    for c, ch in enumerate(args.channel_list):
        start = time.time()
        for snr in args.snr_list:
            # Grid: every SNR on the first channel, the lowest SNR on the others.
            in_grid = c == 0 or snr == snr_low
            recs, kept = ev.run_cell(system, ev.Channel(ch), snr, images, seed=args.seed,
                                     keep=len(grid_items) if in_grid else 0)
            per_image += recs
            if in_grid:
                scores = {r["image"]: r["psnr"] for r in recs}
                for row, titles, (name, _) in zip(grid_rows, grid_titles, grid_items):
                    row.append(kept[name])
                    titles.append(f"{ev.channel_label(ch)} {_fmt_snr(snr)}\n"
                                  f"{scores[name]:.2f} dB")
        seconds[ch] = time.time() - start
    records = [{"model": cfg.name, "channel": r["channel"], "snr_db": r["snr_db"],
                "cbr": model.cbr, "psnr": r["psnr"], "ms_ssim": r["ms_ssim"],
                "num_images": r["num_images"]} for r in ev.summarize(per_image)]

    _print_table(records)
    os.makedirs(args.outdir, exist_ok=True)
    meta = provenance(command=args.command, model_dir=os.path.abspath(args.model),
        preset=cfg.name, trained_channel=info["channel_type"], model_meta=info.get("meta", {}),
        images=os.path.abspath(args.images), image_names=names, fit="crop",
        snr_db=args.snr_list, channels=args.channel_list, seed=args.seed,
        eval_seconds=seconds)
    results = {"meta": meta, "records": records}
    json_path = os.path.join(args.outdir, "demo_results.json")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=2)
    label = f"{cfg.name} ({ev.channel_label(info['channel_type'])}-trained)"
    figures = _write_figures(args, records, label, model.cbr, grid_rows, grid_titles, len(images))
    print(f"\noutputs in {os.path.abspath(args.outdir)}:")
    for path in [json_path, figures["psnr"], figures["ms_ssim"], figures["grid"]]:
        print(f"  {path}")
    return results


if __name__ == "__main__":
    sys.exit(main())
