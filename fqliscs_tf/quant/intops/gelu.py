"""Integer GELU (I-ViT ShiftGELU / I-BERT i-GELU): ``int_gelu`` and ``fake_gelu``."""
import math

import tensorflow as tf

from fqliscs_tf.quant import fixedpoint as fp
from ._common import (
    GELU_METHODS, _any_scale, _bitlen, _check_bits, _check_method, _check_rounding,
    _float_input, _floor_int, _half_ulp, _int_input, _python_scale, _quantize, _relu,
    _saturate_int32, _ste)
from .sigmoid import _sigmoid_core

# I-BERT i-GELU: erf(v) ~ sgn(v) [a (min(|v|, -b) + b)^2 + 1], a = -0.2888, b = -1.769.
_ERF_A = 0.2888  # |a|
_ERF_B = -1.769
# ShiftGELU: GELU(x) ~ x sigmoid(1.702 x).
_GELU_SIGMOID_SLOPE = 1.702
_DEFAULT_NORM_BITS = 31


def _gelu_core(x, scale, method, bits, rounding):
    if method == "shift":
        # The gate stays internal, so with rounding to nearest it may reach 2**(bits-1) (= 1)
        # and GELU(x) = x exactly for large x (I-ViT's floored gate stops at 1 - 2**(1-bits)).
        sig = _sigmoid_core(x, _GELU_SIGMOID_SLOPE * scale, "shift", bits, _DEFAULT_NORM_BITS,
                            rounding, cap=False)
        return x * sig, scale * 2.0 ** -(bits - 1)
    s2 = scale / math.sqrt(2.0)
    b = _floor_int(_ERF_B / s2)  # < 0
    c = _floor_int(1.0 / (_ERF_A * s2 * s2))
    k = _relu(_bitlen(c) - bits)
    half = _half_ulp(k) if rounding == "nearest" else 0
    clipped = tf.minimum(tf.abs(x), -b)
    mag = tf.maximum(c - tf.square(clipped + b), 0) + half
    erf = tf.sign(x) * fp.shift_left_or_right(mag, -k)
    # ``one`` is the code of the saturated erf (= 1); using 1 / one as the erf scale makes
    # GELU(x) exactly 0 / x in the tails (the polynomial's own scale 0.2888 s2**2 2**k differs
    # from it by < 1/2 code, i.e. < 2**-bits relative).
    if isinstance(c, int):
        one = (c + half) >> k
        return x * (erf + one), scale / (2.0 * one)
    one = fp.shift_left_or_right(c + half, -k)
    return x * (erf + one), scale / (2.0 * tf.cast(one, tf.float64))


def int_gelu(q, scale, *, method="shift", bits=8, rounding="nearest"):
    """Integer GELU.

    Parameters
    ----------
    q : tensor, integer dtype, any shape
        Input (real value ``q * scale``), e.g. an 8/16-bit activation or an int32
        accumulator. The product with the gate saturates to int32 if ``|q| * 2**(bits+1)``
        exceeds it.
    scale : float
        Input scale, >= 2**-24.
    method : "shift" | "poly"
        ``"shift"``: I-ViT ShiftGELU ``q * sigmoid_q(1.702 x)``; ``"poly"``: I-BERT i-GELU.
    bits : int
        Gate precision in [2, 16] (default 8): the sigmoid gate has ``bits - 1`` fractional
        bits; the i-GELU erf code of 1 (``one_q``) has ``bits`` bits.
    rounding : "nearest" | "floor"
        Rounding of the gate's last right shift (default "nearest", ties up; "floor" as
        published, biased by -1/2 LSB).

    Returns
    -------
    (q_out, out_scale) : (tensor tf.int32 of ``q``'s shape, float)
        ``GELU(q * scale) ~ q_out * out_scale``; see the package docstring for ``out_scale``.
    """
    _check_method(method, GELU_METHODS, "GELU")
    bits = _check_bits(bits)
    rounding = _check_rounding(rounding)
    scale = _python_scale(scale)
    y, out_scale = _gelu_core(_int_input(q), scale, method, bits, rounding)
    return _saturate_int32(y), float(out_scale)


def fake_gelu(x, scale, *, method="shift", bits=8, rounding="nearest"):
    """Training form of :func:`int_gelu`: float in/out, exact-GELU straight-through gradient.

    Parameters
    ----------
    x : tensor, float, any shape
        Values on (or rounded to) the grid ``scale``.
    scale : float or scalar float tensor
        Input scale.
    method, bits, rounding : as :func:`int_gelu`.

    Returns
    -------
    tensor, ``x.dtype``, shape of ``x``: ``int_gelu`` dequantized in the forward pass,
    gradient of ``x * Phi(x)`` (erf GELU) in the backward pass.
    """
    _check_method(method, GELU_METHODS, "GELU")
    bits = _check_bits(bits)
    rounding = _check_rounding(rounding)
    x = _float_input(x)
    scale = _any_scale(scale)
    y, out_scale = _gelu_core(_quantize(x, scale), scale, method, bits, rounding)
    y = tf.clip_by_value(y, fp.INT32_MIN, fp.INT32_MAX)
    approx = tf.cast(y, tf.float64) * out_scale
    return _ste(tf.nn.gelu(x, approximate=False), approx)
