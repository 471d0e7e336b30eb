"""Figures for results: metric-vs-SNR curves and reconstruction grids (PNG files).

Uses matplotlib's object API with the Agg canvas: no pyplot global state, no display
needed, and every figure is released after it is saved.
"""
import os

import numpy as np

__all__ = ["WITT_REFERENCES", "PUBLISHED_REFERENCES", "plot_metric_vs_snr",
           "plot_learning_curves", "reconstruction_grid"]

_WITT_SNRS = [1.0, 4.0, 7.0, 10.0, 13.0]

#: Published WITT results on Kodak, CBR 1/16, PSNR [dB] of the random-SNR
#: (div2k-size, 28 M parameter) model; read from the WITT repository's result
#: figures (see shared/notes/anchors.md, sections 2.3 and 2.5). Keyed by channel.
WITT_REFERENCES = {
    "awgn": {"label": "WITT AWGN (published, div2k-size model)", "snr_db": list(_WITT_SNRS),
             "values": [29.67, 31.31, 32.63, 33.60, 34.29], "metric": "psnr", "cbr": 1 / 16},
    "rayleigh": {"label": "WITT Rayleigh (published, div2k-size model)",
                 "snr_db": list(_WITT_SNRS), "values": [28.31, 29.44, 30.26, 30.81, 31.18],
                 "metric": "psnr", "cbr": 1 / 16},
}

#: Every published reference curve drawn for a channel (Kodak, CBR 1/16, PSNR [dB]):
#: WITT, and on AWGN also the paper's "BPG + capacity" (WITT Fig. 3, anchors.md §2.3).
PUBLISHED_REFERENCES = {
    "awgn": [WITT_REFERENCES["awgn"],
             {"label": "BPG + capacity (published, WITT Fig. 3)", "snr_db": list(_WITT_SNRS),
              "values": [29.9, 31.54, 33.18, 34.69, 36.0], "metric": "psnr", "cbr": 1 / 16}],
    "rayleigh": [WITT_REFERENCES["rayleigh"]],
}

_YLABELS = {"psnr": "PSNR [dB]", "ms_ssim": "MS-SSIM"}


def _new_figure(width, height, dpi=100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _check_curve(curve, what, x="snr_db", y="values"):
    """ValueError unless ``curve`` has a label and x and y lists of one length."""
    for key in ("label", x, y):
        if key not in curve:
            raise ValueError(f"{what} {curve!r} has no {key!r} entry")
    if len(curve[x]) != len(curve[y]):
        names = {"snr_db": "SNRs", "steps": "step counts", "psnr": "PSNR values"}
        raise ValueError(f"{what} {curve['label']!r}: {len(curve[x])} {names.get(x, x)} but "
                         f"{len(curve[y])} {names.get(y, y)}")


def _save(fig, path, dpi):
    """Render ``fig`` and write it as an RGB PNG (no alpha channel: smaller files)."""
    from PIL import Image
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.set_dpi(dpi)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    fig.clear()
    Image.fromarray(rgb).save(path, format="PNG", optimize=True)
    return path


def plot_metric_vs_snr(curves, path, metric="psnr", title=None, references=None):
    """Plot one line per curve against SNR [dB] and save it as a PNG.

    Parameters
    ----------
    curves : `list` of `dict`
        Each ``{"label": str, "snr_db": [...], "values": [...]}``; solid lines with markers.
    path : `str`
        Output PNG file (its folder is created if needed).
    metric : ``"psnr"`` (default) | ``"ms_ssim"``
        Sets the y label: ``"PSNR [dB]"`` or ``"MS-SSIM"``.
    title : `str` | `None`
    references : `list` of `dict` | `None`
        Same format as ``curves``, drawn dashed (published numbers).

    Returns the path.
    """
    if metric not in _YLABELS:
        raise ValueError(f"'metric' must be one of {sorted(_YLABELS)}, got {metric!r}")
    curves, references = list(curves), list(references or [])
    if not curves and not references:
        raise ValueError("plot_metric_vs_snr got no curves")
    for c in curves:
        _check_curve(c, "curve")
    for c in references:
        _check_curve(c, "reference")
    fig = _new_figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    colors = [f"C{i}" for i in range(10)]
    for i, c in enumerate(curves):
        ax.plot(c["snr_db"], c["values"], marker="o", color=colors[i % 10], label=c["label"])
    for i, c in enumerate(references):
        ax.plot(c["snr_db"], c["values"], linestyle="--", marker="x",
                color=colors[(len(curves) + i) % 10], label=c["label"])
    ax.set_xlabel("SNR [dB]")
    ax.set_ylabel(_YLABELS[metric])
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path, dpi=120)


def plot_learning_curves(curves, path, title=None):
    """PSNR against training steps (log2 axis), one line per curve, and save it as a PNG.

    ``curves``: dicts with ``label``, ``steps`` and ``psnr`` (lists of one length), and
    optionally ``fit`` (``{"slope_db_per_doubling", "intercept"}``: drawn dashed from the
    first point to ``fit_to`` steps, default the last point), ``target`` (a PSNR [dB],
    drawn once per value as a grey dotted line) and ``target_label``. Returns the path.
    """
    curves = list(curves)
    if not curves:
        raise ValueError("plot_learning_curves got no curves")
    fig = _new_figure(6.4, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    for i, c in enumerate(curves):
        _check_curve(c, "learning curve", x="steps", y="psnr")
        color = f"C{i % 10}"
        ax.plot(c["steps"], c["psnr"], marker="o", color=color, label=c["label"])
        fit = c.get("fit")
        if fit:
            xs = np.geomspace(c["steps"][0], c.get("fit_to") or c["steps"][-1], 50)
            ax.plot(xs, fit["intercept"] + fit["slope_db_per_doubling"] * np.log2(xs),
                    linestyle="--", color=color, linewidth=1)
    targets = {c["target"]: c.get("target_label") for c in curves if c.get("target") is not None}
    for value, label in targets.items():
        ax.axhline(value, linestyle=":", color="0.4", linewidth=1)
        if label:
            ax.annotate(label, (0.01, value), xycoords=("axes fraction", "data"),
                        textcoords="offset points", xytext=(0, 2), fontsize="x-small",
                        color="0.3")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training steps")
    ax.set_ylabel("PSNR [dB]")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path, dpi=120)


def _to_uint8(image):
    a = np.asarray(image)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise ValueError(f"expected an image [H, W, 3] (or [1, H, W, 3]), got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a


def _downscale(image, width):
    from PIL import Image
    h, w = image.shape[:2]
    if w <= width:
        return image
    height = max(1, round(h * width / w))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def reconstruction_grid(rows, path, col_titles=None, cell_width=256):
    """Save a grid of images: one row per source image, original first, then reconstructions.

    Parameters
    ----------
    rows : `list` of `list` of images
        Each image ``[H, W, 3]`` uint8, or float in [0, 1] (clipped). Rows may differ in length.
    path : `str`
        Output PNG file (its folder is created if needed).
    col_titles : `None` | `list` of `str` | `list` of `list` of `str`
        One title per column (shared by all rows) or one per cell (e.g. ``"AWGN 1 dB\\n27.3 dB"``).
    cell_width : `int`, (default 256)
        Images wider than this are downscaled to it [pixels], to keep the file small.

    Returns the path.
    """
    rows = [list(r) for r in rows]
    if not rows or not all(rows):
        raise ValueError("reconstruction_grid needs at least one non-empty row")
    if cell_width < 1:
        raise ValueError(f"'cell_width' must be positive, got {cell_width!r}")
    ncols = max(len(r) for r in rows)
    titles = None
    if col_titles is not None:
        col_titles = list(col_titles)
        if col_titles and all(isinstance(t, (list, tuple)) for t in col_titles):
            if len(col_titles) != len(rows):
                raise ValueError(f"{len(col_titles)} rows of titles for {len(rows)} image rows")
            titles = [list(t) for t in col_titles]
        else:
            titles = [col_titles] * len(rows)
        for r, (row, t) in enumerate(zip(rows, titles)):
            if len(t) != len(row):
                raise ValueError(f"row {r}: {len(t)} titles for {len(row)} images")
    cells = [[_downscale(_to_uint8(im), cell_width) for im in row] for row in rows]
    aspect = max(c.shape[0] / c.shape[1] for row in cells for c in row)
    cell_in = cell_width / 100.0
    title_in = 0.45 if titles else 0.05
    cell_h = cell_in * aspect
    fig_h = len(rows) * (cell_h + title_in)
    fig = _new_figure(ncols * cell_in, fig_h)
    for r, row in enumerate(cells):
        for c in range(ncols):
            ax = fig.add_subplot(len(rows), ncols, r * ncols + c + 1)
            ax.set_axis_off()
            if c < len(row):
                ax.imshow(row[c], interpolation="nearest")
                if titles:
                    ax.set_title(titles[r][c], fontsize=8)
    # Leave ``title_in`` inches above every row for its titles.
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.0,
                        top=1.0 - title_in / fig_h, wspace=0.02, hspace=title_in / cell_h)
    return _save(fig, path, dpi=100)
