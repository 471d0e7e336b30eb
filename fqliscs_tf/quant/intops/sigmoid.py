"""Integer sigmoid (SNR ModNet gates, ShiftGELU gate): ``int_sigmoid`` and ``fake_sigmoid``."""
import tensorflow as tf

from ._common import (
    SIGMOID_METHODS, _any_scale, _check_bits, _check_method, _check_norm_bits,
    _check_rounding, _float_input, _int_input, _python_scale, _quantize, _ste)
from ._exp import _exp, _exp_bits, _normalize


def _sigmoid_core(x, scale, method, bits, norm_bits, rounding, cap=True):
    m = tf.maximum(x, 0)
    exp_bits = _exp_bits(bits, norm_bits)
    num, _ = _exp(x - m, scale, method, "sigmoid", exp_bits)
    other, _ = _exp(-m, scale, method, "sigmoid", exp_bits)
    return _normalize(num, num + other, bits, norm_bits, rounding, cap)


def int_sigmoid(q, scale, *, method="shift", bits=8, norm_bits=31, rounding="nearest"):
    """Integer sigmoid ``e**(z-m) / (e**(z-m) + e**-m)``, ``m = max(z, 0)`` (SNR ModNet gates).

    Parameters
    ----------
    q : tensor, integer dtype, any shape
        Input (real value ``q * scale``).
    scale : float
        Input scale, >= 2**-24.
    method : "shift" | "poly"
        Exponential: I-ViT shift-exp (n = 23) or I-BERT i-exp polynomial.
    bits : int
        Output width in [2, 16] (default 8).
    norm_bits : int
        Reciprocal numerator bits in [bits + 12, 62] (default 31).
    rounding : "nearest" | "floor"
        Last right shift (default "nearest", ties up; "floor" as published).

    Returns
    -------
    (q_out, out_scale) : (tf.int32 tensor of ``q``'s shape in ``[0, 2**(bits-1) - 1]``,
        ``2**-(bits-1)``).
    """
    _check_method(method, SIGMOID_METHODS, "sigmoid")
    bits = _check_bits(bits)
    norm_bits = _check_norm_bits(norm_bits, bits)
    rounding = _check_rounding(rounding)
    scale = _python_scale(scale)
    y = _sigmoid_core(_int_input(q), scale, method, bits, norm_bits, rounding)
    return tf.cast(y, tf.int32), 2.0 ** -(bits - 1)


def fake_sigmoid(x, scale, *, method="shift", bits=8, norm_bits=31, rounding="nearest"):
    """Training form of :func:`int_sigmoid` (straight-through ``tf.sigmoid`` gradient).

    Parameters
    ----------
    x : tensor, float, any shape
    scale : float or scalar float tensor
    method, bits, norm_bits, rounding : as :func:`int_sigmoid`.

    Returns
    -------
    tensor, ``x.dtype``, shape of ``x``, values on the grid ``2**-(bits-1)``.
    """
    _check_method(method, SIGMOID_METHODS, "sigmoid")
    bits = _check_bits(bits)
    norm_bits = _check_norm_bits(norm_bits, bits)
    rounding = _check_rounding(rounding)
    x = _float_input(x)
    scale = _any_scale(scale)
    y = _sigmoid_core(_quantize(x, scale), scale, method, bits, norm_bits, rounding)
    approx = tf.cast(y, tf.float64) * 2.0 ** -(bits - 1)
    return _ste(tf.sigmoid(x), approx)
