"""Integer softmax (I-ViT Shiftmax / I-BERT i-softmax): ``int_softmax`` and ``fake_softmax``."""
import numpy as np
import tensorflow as tf

from ._common import (
    SOFTMAX_METHODS, _any_scale, _check_bits, _check_method, _check_norm_bits,
    _check_rounding, _float_input, _int_input, _python_scale, _quantize, _ste)
from ._exp import _exp, _exp_bits, _normalize


def _softmax_core(x, scale, axis, method, bits, norm_bits, rounding):
    x = x - tf.reduce_max(x, axis=axis, keepdims=True)
    e, _ = _exp(x, scale, method, "softmax", _exp_bits(bits, norm_bits))
    total = tf.reduce_sum(e, axis=axis, keepdims=True)
    return _normalize(e, total, bits, norm_bits, rounding)


def _check_softmax_length(shape, axis, bits, norm_bits):
    rank = shape.rank
    if rank is None:
        return
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
            or not -rank <= axis < rank:
        raise ValueError(f"axis must be an int in [{-rank}, {rank - 1}], got {axis!r}")
    length = shape[axis]
    limit = 2 ** (norm_bits - _exp_bits(bits, norm_bits))
    if length is not None and length > limit:
        raise ValueError(f"softmax length {length} > {limit} would overflow the "
                         f"2**{norm_bits} normaliser; raise norm_bits")


def int_softmax(q, scale, *, axis=-1, method="shift", bits=8, norm_bits=31,
                rounding="nearest"):
    """Integer softmax (I-ViT Shiftmax or I-BERT i-softmax).

    ``x - max`` -> integer ``exp`` (capped to ``exp_bits = min(norm_bits - bits - 2, 30)``
    bits) -> ``sum`` -> ``factor = floor((2**norm_bits - 1) / sum)`` ->
    ``exp * factor / 2**(norm_bits - bits + 1)`` rounded. With the default ``norm_bits=31``
    every product fits int32 as in I-ViT; up to 62 uses the int64 range.

    Parameters
    ----------
    q : tensor, integer dtype, any shape
        Logits (real value ``q * scale``), e.g. int32 ``Q K^T`` accumulators + mask.
    scale : float
        Logit scale, >= 2**-24.
    axis : int
        Softmax axis (default -1). Its length must be <= ``2**(norm_bits - exp_bits)``
        (1024 for 8 bits, norm_bits 31); checked when static.
    method : "shift" | "poly"
    bits : int
        Output width in [2, 16] (default 8).
    norm_bits : int
        Reciprocal numerator bits in [bits + 12, 62] (default 31).
    rounding : "nearest" | "floor"
        Last right shift (default "nearest", ties up; "floor" as published: each
        probability then loses 1/2 LSB on average, e.g. 64 x 1/256 = 0.25 of the row sum).

    Returns
    -------
    (q_out, out_scale) : (tf.int32 tensor of ``q``'s shape in ``[0, 2**(bits-1) - 1]``,
        ``2**-(bits-1)``).
    """
    _check_method(method, SOFTMAX_METHODS, "softmax")
    bits = _check_bits(bits)
    norm_bits = _check_norm_bits(norm_bits, bits)
    rounding = _check_rounding(rounding)
    scale = _python_scale(scale)
    x = _int_input(q)
    _check_softmax_length(x.shape, axis, bits, norm_bits)
    y = _softmax_core(x, scale, axis, method, bits, norm_bits, rounding)
    return tf.cast(y, tf.int32), 2.0 ** -(bits - 1)


def fake_softmax(x, scale, *, axis=-1, method="shift", bits=8, norm_bits=31,
                 rounding="nearest"):
    """Training form of :func:`int_softmax` (straight-through ``tf.nn.softmax`` gradient).

    Parameters
    ----------
    x : tensor, float, any shape
        Logits.
    scale : float or scalar float tensor
        Logit grid.
    axis, method, bits, norm_bits, rounding : as :func:`int_softmax`.

    Returns
    -------
    tensor, ``x.dtype``, shape of ``x``, values on the grid ``2**-(bits-1)``.
    """
    _check_method(method, SOFTMAX_METHODS, "softmax")
    bits = _check_bits(bits)
    norm_bits = _check_norm_bits(norm_bits, bits)
    rounding = _check_rounding(rounding)
    x = _float_input(x)
    _check_softmax_length(x.shape, axis, bits, norm_bits)
    scale = _any_scale(scale)
    y = _softmax_core(_quantize(x, scale), scale, axis, method, bits, norm_bits, rounding)
    approx = tf.cast(y, tf.float64) * 2.0 ** -(bits - 1)
    return _ste(tf.nn.softmax(x, axis=axis), approx)
