"""Integer exponentials (I-ViT shift-exp, I-BERT i-exp) and the reciprocal normalisation
shared by softmax, sigmoid and ShiftGELU."""
import math

import tensorflow as tf

from fqliscs_tf.quant import fixedpoint as fp
from ._common import _bitlen, _exp2, _floor_int, _relu, _sra

# I-ViT shift exponent: inputs clamped to x*log2(e) >= -n (softmax n=15, sigmoid/GELU n=23).
_SHIFT_N = {"softmax": 15, "sigmoid": 23}
# I-BERT i-exp: a p^2 + b p + c on (-ln2, 0], written a((p + b/a) p + c/a); n = 30.
_POLY_N = 30
_POLY_A = 0.35815147
_POLY_B = 0.96963238 / _POLY_A
_POLY_C = 1.0 / _POLY_A


def _exp_bits(bits, norm_bits):
    return min(norm_bits - bits - 2, 30)


# --------------------------------------------------------------------------- exponentials
def _exp_shift(x, scale, n, exp_bits):
    """I-ViT shift exponential of ``x <= 0`` (int64, units of ``scale``).

    Returns ``(e, e_scale)`` with ``e * e_scale ~ exp(x * scale)``, ``0 <= e < 2**exp_bits``:
    ``t = x + (x>>1) - (x>>4)`` (~x log2 e), ``x0 = floor(-1/scale)``, ``t >= n x0``,
    ``q = floor(t / x0)``, ``r = t - q x0``, ``e = floor((r/2 - x0) 2**(n-q) / 2**s)``
    computed as one shift of ``r - 2 x0`` (no intermediate overflow).
    """
    x = x + _sra(x, 1) - _sra(x, 4)
    x0 = _floor_int(-1.0 / scale)
    s = _relu(_bitlen(-x0) + n - exp_bits)
    x = tf.maximum(x, n * x0)
    q = tf.math.floordiv(x, x0)
    r = x - x0 * q
    e = fp.shift_left_or_right(r - 2 * x0, n - 1 - s - q)
    return e, scale * _exp2(s - n)


def _exp_poly(x, scale, n, exp_bits):
    """I-BERT i-exp of ``x <= 0`` (int64, units of ``scale``); same contract as _exp_shift.

    ``x0 = floor(-ln2/scale)``, ``x >= n x0``, ``q = floor(x / x0)``, ``r = x - q x0``,
    ``z = r (r + floor(b'/scale)) + floor(c'/scale**2)`` (scale ``a scale**2``),
    ``e = floor(z 2**(n - q) / 2**s)``.
    """
    x0 = _floor_int(-math.log(2.0) / scale)
    b = _floor_int(_POLY_B / scale)
    c = _floor_int(_POLY_C / (scale * scale))
    s = _relu(_bitlen(c) + n - exp_bits)
    x = tf.maximum(x, n * x0)
    q = tf.math.floordiv(x, x0)
    r = x - x0 * q
    z = tf.maximum(r * (r + b) + c, 0)
    e = fp.shift_left_or_right(z, n - s - q)
    return e, _POLY_A * scale * scale * _exp2(s - n)


def _exp(x, scale, method, op, exp_bits):
    if method == "shift":
        return _exp_shift(x, scale, _SHIFT_N[op], exp_bits)
    return _exp_poly(x, scale, _POLY_N, exp_bits)


def _normalize(num, den, bits, norm_bits, rounding, cap=True):
    """``num * floor((2**norm_bits - 1) / den) / 2**(norm_bits - bits + 1)``, floored or
    rounded to nearest (ties up; then capped at ``2**(bits-1) - 1`` if ``cap``, else the
    result can reach ``2**(bits-1)``, i.e. exactly 1)."""
    factor = tf.math.floordiv(tf.constant(2 ** norm_bits - 1, tf.int64),
                              tf.maximum(den, tf.constant(1, tf.int64)))
    shift = norm_bits - bits + 1
    prod = num * factor
    if rounding == "floor":
        return _sra(prod, shift)  # <= 2**(bits-1) - 1 since num <= den
    rounded = _sra(prod + 2 ** (shift - 1), shift)
    return tf.minimum(rounded, 2 ** (bits - 1) - 1) if cap else rounded
