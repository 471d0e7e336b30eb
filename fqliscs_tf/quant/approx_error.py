"""Error of each integer approximation against the float op (issue #3, "measure each
approximation's error").

Every function runs the exact integer forward of :mod:`.intops` on integer inputs, dequantizes
the result and compares it with the float64 reference on the same (quantized) inputs, so the
numbers include the approximation, the intermediate truncations and the output rounding, but
not the input quantization itself. Errors are in the output's real units.

Each result is a dict::

    {"op", "method", "rms", "max_abs", "bias" (mean signed error), "out_lsb" (output grid
     step, per element for GELU), "num_values", ...input description...}
"""
import numpy as np
import tensorflow as tf

from fqliscs_tf.quant import intops

__all__ = [
    "elementwise_error",
    "softmax_error",
    "layer_norm_error",
    "measure_approximation_errors",
]

_ELEMENTWISE = {
    "gelu": (intops.int_gelu, lambda x: tf.nn.gelu(x, approximate=False)),
    "sigmoid": (intops.int_sigmoid, tf.sigmoid),
}


def _summary(op, method, err, out_lsb, **extra):
    err = np.asarray(err, np.float64)
    return {"op": op, "method": method, "rms": float(np.sqrt(np.mean(err ** 2))),
            "max_abs": float(np.max(np.abs(err))), "bias": float(np.mean(err)),
            "out_lsb": float(out_lsb), "num_values": int(err.size), **extra}


def elementwise_error(op, method, *, low, high, scale, bits=8):
    """Error of ``int_gelu`` / ``int_sigmoid`` on every grid point of ``[low, high]``.

    Parameters
    ----------
    op : "gelu" | "sigmoid"
    method : str
        A method of the op (``"shift"`` or ``"poly"``).
    low, high : float
        Input range [real units], ``low < high``.
    scale : float
        Input grid step (> 0); all ``q`` with ``q * scale`` in the range are evaluated.
    bits : int
        Passed to the op (default 8).

    Returns
    -------
    dict (see module docstring) with ``domain``, ``scale``, ``bits`` and, for checking
    against a plot, ``x`` / ``error`` as float64 arrays.
    """
    if op not in _ELEMENTWISE:
        raise ValueError(f"Unknown op {op!r}; expected one of {tuple(_ELEMENTWISE)}")
    if not low < high:
        raise ValueError(f"need low < high, got low={low!r}, high={high!r}")
    int_fn, ref_fn = _ELEMENTWISE[op]
    q = np.arange(int(np.ceil(low / scale)), int(np.floor(high / scale)) + 1, dtype=np.int32)
    y, out_scale = int_fn(tf.constant(q), scale, method=method, bits=bits)
    x = q.astype(np.float64) * scale
    err = y.numpy().astype(np.float64) * out_scale - ref_fn(tf.constant(x)).numpy()
    return _summary(op, method, err, out_scale, domain=(float(low), float(high)),
                    scale=float(scale), bits=int(bits), x=x, error=err)


def softmax_error(method, *, num_rows=512, length=64, logit_std=2.0, scale=None, bits=8,
                  seed=0):
    """Error of ``int_softmax`` on Gaussian attention logits.

    Parameters
    ----------
    method : "shift" | "poly"
    num_rows, length : int
        Rows of ``length`` logits (default 512 rows of 64: one 8x8 Swin window).
    logit_std : float
        Standard deviation of the logits (default 2.0).
    scale : None or float
        Logit grid; None: 8-bit symmetric, ``max|x| / 127``.
    bits : int
        Output width (default 8).
    seed : int

    Returns
    -------
    dict (see module docstring) plus ``row_sum_max_dev`` (largest ``|sum(p) - 1|``).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, logit_std, (num_rows, length))
    if scale is None:
        scale = float(np.max(np.abs(x)) / 127.0)
    q = np.round(x / scale).astype(np.int32)
    y, out_scale = intops.int_softmax(tf.constant(q), scale, method=method, bits=bits)
    p = y.numpy().astype(np.float64) * out_scale
    ref = tf.nn.softmax(tf.constant(q.astype(np.float64) * scale), axis=-1).numpy()
    return _summary("softmax", method, p - ref, out_scale, scale=float(scale), bits=int(bits),
                    length=int(length), logit_std=float(logit_std),
                    row_sum_max_dev=float(np.max(np.abs(p.sum(-1) - 1.0))))


def layer_norm_error(method, *, num_rows=256, channels=128, in_bits=16, out_scale=None,
                     bits=8, seed=0):
    """Error of ``int_layer_norm`` on residual-stream-like rows.

    Rows are ``mu + sigma * N(0, 1)`` with per-row ``mu ~ N(0, 2)``, ``sigma`` log-uniform in
    ``[0.1, 10]`` and 2 outlier channels at 8 sigma, quantized to ``in_bits`` bits per tensor.
    The reference is float64 LayerNorm with epsilon 1e-5 (gamma 1, beta 0).

    Parameters
    ----------
    method : "newton" | "ivit"
    num_rows, channels : int
    in_bits : int
        Input width (default 16, the residual adds in FQ-LISCS).
    out_scale : None or float
        None: compare the normalised output ``y_n * sqrt(C) / 2**30``; else the
        ``bits``-bit output on that grid.
    bits : int
    seed : int

    Returns
    -------
    dict (see module docstring).
    """
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 2.0, (num_rows, 1))
    sigma = np.exp(rng.uniform(np.log(0.1), np.log(10.0), (num_rows, 1)))
    x = mu + sigma * rng.normal(0.0, 1.0, (num_rows, channels))
    x[:, :2] = mu + 8.0 * sigma
    scale = float(np.max(np.abs(x)) / (2 ** (in_bits - 1) - 1))
    q = np.round(x / scale).astype(np.int32)
    y, y_scale = intops.int_layer_norm(tf.constant(q), scale, out_scale=out_scale, bits=bits,
                                       method=method, in_bits=in_bits)
    xq = q.astype(np.float64) * scale
    ref = (xq - xq.mean(-1, keepdims=True)) / np.sqrt(xq.var(-1, keepdims=True) + 1e-5)
    return _summary("layer_norm", method, y.numpy() * y_scale - ref, y_scale,
                    scale=scale, in_bits=int(in_bits), channels=int(channels),
                    bits=int(bits) if out_scale is not None else None)


def measure_approximation_errors(*, bits=8, seed=0):
    """All ops and methods on their standard test inputs.

    * GELU on [-4, 4], sigmoid on [-8, 8]: at a fine grid (2**-10, int32-accumulator-like) and
      at the 8-bit grid ``range / 127``; output/gate width ``bits``.
    * softmax: 512 rows of 64 Gaussian logits (std 1 and 4), 8-bit logit grid, and std 2 on
      the 2**-10 grid.
    * LayerNorm: 256 rows of 128 channels, 16-bit input; normalised output and 8-bit output
      on the grid 8/127 (I-ViT-like ``ivit`` included to show its Newton start-value limits).

    Returns
    -------
    dict ``"<op>/<method>/<case>" -> dict`` (see module docstring), without the arrays.
    """
    results = {}
    for op, span in (("gelu", 4.0), ("sigmoid", 8.0)):
        for method in ("shift", "poly"):
            for case, scale in (("fine", 2.0 ** -10), ("int8", span / 127.0)):
                r = elementwise_error(op, method, low=-span, high=span, scale=scale, bits=bits)
                r.pop("x"), r.pop("error")
                results[f"{op}/{method}/{case}"] = r
    for method in intops.SOFTMAX_METHODS:
        for case, std, scale in (("std1_int8", 1.0, None), ("std4_int8", 4.0, None),
                                 ("std2_fine", 2.0, 2.0 ** -10)):
            results[f"softmax/{method}/{case}"] = softmax_error(
                method, logit_std=std, scale=scale, bits=bits, seed=seed)
    for method in intops.LAYER_NORM_METHODS:
        results[f"layer_norm/{method}/normalized"] = layer_norm_error(method, seed=seed)
        results[f"layer_norm/{method}/int8"] = layer_norm_error(
            method, out_scale=8.0 / 127.0, bits=bits, seed=seed)
    return results
