"""Demo: run a trained Swin JSCC codec over AWGN and Rayleigh channels on Kodak images.

By default it loads the shipped ``lite`` model (``fqliscs_tf/weights/lite_c96_awgn``) and
the bundled Kodak images, evaluates PSNR and MS-SSIM at every SNR on every channel, prints
a table and writes to ``--outdir``::

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
from pathlib import Path

import fqliscs_tf

__all__ = ["main", "run", "build_parser", "DEFAULT_MODEL", "DEFAULT_IMAGES"]

_PACKAGE_DIR = Path(fqliscs_tf.__file__).resolve().parent
#: The shipped trained model and the bundled demo images.
DEFAULT_MODEL = str(_PACKAGE_DIR / "weights" / "lite_c96_awgn")
DEFAULT_IMAGES = str(_PACKAGE_DIR / "assets" / "kodak")

_MAX_GRID_ROWS = 4
_CHANNEL_LABELS = {"none": "no channel", "awgn": "AWGN", "rayleigh": "Rayleigh",
                   "rayleigh-fast": "Rayleigh (fast)", "rayleigh-block": "Rayleigh (block)"}
# Channels for which a published WITT curve exists ("rayleigh" is fast fading, as in WITT).
_REFERENCE_KEYS = {"awgn": "awgn", "rayleigh": "rayleigh", "rayleigh-fast": "rayleigh"}


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
                   help="random seed for the channel noise (default: %(default)s)")
    return p


def _parse_channels(text):
    from phy import CHANNEL_TYPES
    names = [c.strip().lower() for c in text.split(",")]
    if not text.strip() or any(not c for c in names):
        raise ValueError(f"--channels {text!r}: expected comma-separated channel types, "
                         f"e.g. 'awgn,rayleigh'; valid: {', '.join(CHANNEL_TYPES)}")
    for c in names:
        if c not in CHANNEL_TYPES:
            raise ValueError(f"--channels: unknown channel type {c!r}; valid channel types: "
                             f"{', '.join(CHANNEL_TYPES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--channels {text!r} names a channel twice")
    return names


def _resolve(args):
    from phy import parse_snr_list
    try:
        args.snr_list = parse_snr_list(args.snrs)
    except ValueError as e:
        raise ValueError(f"--snrs: {e}") from None
    args.channel_list = _parse_channels(args.channels)
    if args.max_images < 0:
        raise ValueError(f"--max-images must be 0 (all) or positive, got {args.max_images}")
    return args


def _load(path):
    from fqliscs_tf.checkpoints import MODEL_FILE, load_model, read_model_info
    if not os.path.isfile(os.path.join(path, MODEL_FILE)):
        raise FileNotFoundError(
            f"no trained model at {path!r} (missing {MODEL_FILE}). Train and export one, e.g.\n"
            "  fqliscs-train --training --trainset DIV2K --model-size lite --C 96 "
            "--channel-type awgn --multiple-snr 1,4,7,10,13 --train-dir DIV2K_FOLDER "
            "--workdir runs/lite_c96_awgn\n"
            "which exports the weights to runs/lite_c96_awgn/export; then pass "
            f"--model runs/lite_c96_awgn/export (or copy that folder to {DEFAULT_MODEL}).")
    return load_model(path), read_model_info(path)


def _channel_label(name):
    return _CHANNEL_LABELS.get(name, name)


def _grid_reconstructions(model, image, snr_list):
    """Clipped reconstructions ``[k, H, W, 3]`` of one image at each SNR and their PSNRs."""
    import tensorflow as tf

    from fqliscs_tf.metrics import psnr
    snrs = tf.constant(snr_list, tf.float32)
    batch = tf.repeat(image, len(snr_list), axis=0)
    x_hat = tf.clip_by_value(model((batch, snrs), training=False)["x_hat"], 0.0, 1.0)
    return x_hat.numpy(), psnr(batch, x_hat).numpy()


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
            curves[metric].append({"label": f"{model_label}, {_channel_label(ch)}",
                                   "snr_db": [r["snr_db"] for r in recs],
                                   "values": [r[metric] for r in recs]})
    refs = []
    for ch in args.channel_list:
        key = _REFERENCE_KEYS.get(ch)
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
    from fqliscs_tf import data
    from fqliscs_tf.training import evaluate
    from fqliscs_tf.utils import provenance, set_seed

    set_seed(args.seed)
    model, info = _load(args.model)
    cfg = model.config
    files = [args.images] if os.path.isfile(args.images) else data.list_images(args.images)
    if args.max_images:
        files = files[:args.max_images]
    items = list(data.test_dataset(files, cfg.size_multiple, fit="crop"))
    names = [n.numpy().decode() for _, n in items]
    print(f"model {args.model} (preset {cfg.name!r}, trained on {info['channel_type']!r}, "
          f"CBR {model.cbr:.4g}); {len(items)} image(s) from {args.images}; "
          f"channels {args.channel_list}; SNRs {args.snr_list} dB")

    records, seconds = [], {}
    snr_low = min(args.snr_list)
    grid_items = items[:_MAX_GRID_ROWS]
    grid_rows = [[im[0].numpy()] for im, _ in grid_items]
    grid_titles = [[f"original\n{n}"] for n in names[:_MAX_GRID_ROWS]]
    for c, ch in enumerate(args.channel_list):
        model.set_channel(ch)
        recs, secs = evaluate(model, items, args.snr_list)
        seconds[ch] = secs
        records += [{"model": cfg.name, "channel": ch, "snr_db": r["snr_db"], "cbr": model.cbr,
                     "psnr": r["psnr"], "ms_ssim": r["ms_ssim"], "num_images": r["num_images"]}
                    for r in recs]
        # Grid: every SNR on the first channel, the lowest SNR on the others.
        grid_snrs = args.snr_list if c == 0 else [snr_low]
        for row, titles, (image, _) in zip(grid_rows, grid_titles, grid_items):
            x_hat, p = _grid_reconstructions(model, image, grid_snrs)
            for j, snr in enumerate(grid_snrs):
                row.append(x_hat[j])
                titles.append(f"{_channel_label(ch)} {_fmt_snr(snr)}\n{p[j]:.2f} dB")

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
    label = f"{cfg.name} ({_channel_label(info['channel_type'])}-trained)"
    figures = _write_figures(args, records, label, model.cbr, grid_rows, grid_titles, len(items))
    print(f"\noutputs in {os.path.abspath(args.outdir)}:")
    for path in [json_path, figures["psnr"], figures["ms_ssim"], figures["grid"]]:
        print(f"  {path}")
    return results


if __name__ == "__main__":
    sys.exit(main())
