"""Integer-only nonlinear ops of the Swin JSCC codec: GELU, softmax, sigmoid, LayerNorm.

Each op comes as a pair:

* ``int_<op>(q, scale, ...) -> (q_out, out_scale)``: the **exact integer forward**. ``q`` is
  an integer tensor (real value ``q * scale``); the result is a ``tf.int32`` tensor whose real
  value is ``q_out * out_scale``. Only integer TF ops run (int64 intermediates, shifts,
  ``floordiv``); ``scale`` must be a Python float and is folded into integer constants at trace
  time, so a traced graph has no float tensor at all.
* ``fake_<op>(x, scale, ...) -> y``: the **training form** for QAT. ``x`` is float; it is
  rounded to the grid ``scale`` (``round(x / scale)``, ties to even), run through the very same
  integer algorithm (so it equals the integer forward, dequantized) and returned as float with
  a straight-through gradient: ``y = f(x) + stop_gradient(approx - f(x))``, i.e. the exact
  float op's gradient (GELU with erf, softmax, sigmoid, LayerNorm incl. gamma/beta).
  ``scale`` may also be a scalar float tensor/variable (e.g. a learned or EMA range); the
  integer constants are then computed in-graph in float64 (no gradient flows to ``scale``).

Methods (``method=``)
---------------------
``"shift"`` (I-ViT, Li & Gu 2023): ``exp`` by shifts: ``x*log2(e) ~ x + (x>>1) - (x>>4)``,
    ``2**r ~ 1 + r/2`` on ``r in (-1, 0]``, then ``<< (n - q)`` (Shiftmax, ShiftGELU).
``"poly"`` (I-BERT, Kim et al. 2021): ``exp(p) ~ 0.35815147 p**2 + 0.96963238 p + 1`` on
    ``p in (-ln2, 0]`` (i-exp), ``erf`` by the clipped second-order polynomial (i-GELU).
LayerNorm: ``"newton"`` (exact centring ``C*x - sum(x)``, exact :func:`~.fixedpoint.isqrt`
    with per-row normalisation to 31 significant bits) or ``"ivit"`` (I-ViT as published:
    rounded mean (ties up; torch.round ties to even), 10 Newton steps from ``2**16``,
    ``floor((2**31 - 1) / std)``, ``floor(y factor / 2)``).

Output scales
-------------
* softmax, sigmoid: ``q_out in [0, 2**(bits-1) - 1]``, ``out_scale = 2**-(bits-1)``.
* GELU ``shift``: ``q * sigma_q``, ``out_scale = scale * 2**-(bits-1)`` (``bits`` = gate width).
* GELU ``poly``: ``q * (erf_q + one_q)``, ``out_scale = scale / (2 one_q)``, where
  ``one_q ~ 1 / (0.2888 (scale/sqrt2)**2 2**k)`` is the code of ``erf = 1`` and ``k`` is
  chosen so ``one_q`` has ``bits`` bits.
  GELU outputs are wide int32 products (saturated), meant for a following
  :func:`~.fixedpoint.dyadic_requantize`.
* LayerNorm without affine: ``|q_out| <= 2**30``, ``out_scale = sqrt(C) / 2**30``; with
  ``out_scale`` given: gamma/beta applied with per-channel dyadic multipliers (TFLite
  :func:`~.fixedpoint.multiply_by_quantized_multiplier`) to
  ``frac`` extra fractional bits, ``M_c = |gamma_c| sqrt(C) 2**(frac-30) / out_scale``, plus
  ``round(beta_c 2**frac / out_scale)``, then one rounding shift by ``frac`` and a clamp to
  ``bits`` bits: ``q_out ~ round((gamma (x - mean) / std + beta) / out_scale)``. (I-ViT's
  folding ``floor(beta / (gamma S))`` into the normalised integers is not used: it overflows
  when ``gamma -> 0``.)

Deviations from the published code (all documented where they occur): the sigmoid (and so
ShiftGELU) uses the per-element identity ``sigma(z) = e**(z-m) / (e**(z-m) + e**-m)`` with
``m = max(z, 0)`` instead of I-ViT's row maximum; the exponential is capped to
``exp_bits = min(norm_bits - bits - 2, 30)`` bits by a trace-time right shift (I-BERT's 16-bit
requantization of ``exp``, I-ViT unchanged for 8-bit logits at scales >= 2**-6), so that
``sum(exp) < 2**norm_bits`` and the ``floor((2**norm_bits - 1) / sum)`` reciprocal adds less
than 1/8 LSB; the last right shift of softmax/sigmoid/GELU gates rounds to nearest by
default (``rounding="floor"`` gives the published truncation, which biases every output by
-1/2 LSB); I-GELU rounds ``|erf|`` sign-symmetrically and has a positive scale.
"""
import math

import numpy as np
import tensorflow as tf

from fqliscs_tf.quant import fixedpoint as fp

__all__ = [
    "GELU_METHODS",
    "SOFTMAX_METHODS",
    "SIGMOID_METHODS",
    "LAYER_NORM_METHODS",
    "ROUNDING_MODES",
    "MIN_SCALE",
    "int_gelu",
    "fake_gelu",
    "int_softmax",
    "fake_softmax",
    "int_sigmoid",
    "fake_sigmoid",
    "int_layer_norm",
    "fake_layer_norm",
]

GELU_METHODS = ("shift", "poly")
SOFTMAX_METHODS = ("shift", "poly")
SIGMOID_METHODS = ("shift", "poly")
LAYER_NORM_METHODS = ("newton", "ivit")
ROUNDING_MODES = ("nearest", "floor")

MIN_SCALE = 2.0 ** -24
"""Smallest accepted input scale; finer grids could overflow the int64 intermediates."""

# I-ViT shift exponent: inputs clamped to x*log2(e) >= -n (softmax n=15, sigmoid/GELU n=23).
_SHIFT_N = {"softmax": 15, "sigmoid": 23}
# I-BERT i-exp: a p^2 + b p + c on (-ln2, 0], written a((p + b/a) p + c/a); n = 30.
_POLY_N = 30
_POLY_A = 0.35815147
_POLY_B = 0.96963238 / _POLY_A
_POLY_C = 1.0 / _POLY_A
# I-BERT i-GELU: erf(v) ~ sgn(v) [a (min(|v|, -b) + b)^2 + 1], a = -0.2888, b = -1.769.
_ERF_A = 0.2888  # |a|
_ERF_B = -1.769
# ShiftGELU: GELU(x) ~ x sigmoid(1.702 x).
_GELU_SIGMOID_SLOPE = 1.702
_DEFAULT_NORM_BITS = 31
_LN_STD_ITERATIONS_IVIT = 10


# --------------------------------------------------------------------------- validation
def _check_method(method, allowed, op):
    if method not in allowed:
        raise ValueError(f"Unknown {op} method {method!r}; expected one of {allowed}")
    return method


def _check_int(value, low, high, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return int(value)


def _check_rounding(rounding):
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"Unknown rounding {rounding!r}; expected one of {ROUNDING_MODES}")
    return rounding


def _check_bits(bits):
    return _check_int(bits, 2, 16, "bits")


def _check_norm_bits(norm_bits, bits):
    return _check_int(norm_bits, bits + 12, 62, "norm_bits")


def _is_tensor(value):
    return tf.is_tensor(value) or isinstance(value, tf.Variable)


def _python_scale(scale, name="scale"):
    if _is_tensor(scale) or isinstance(scale, bool) or not isinstance(
            scale, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a Python float for the integer forward, got {scale!r}")
    value = float(scale)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {scale!r}")
    if value < MIN_SCALE:
        raise ValueError(f"{name} must be >= 2**-24 (int64 headroom), got {scale!r}")
    return value


def _any_scale(scale, name="scale"):
    """Python float (validated) or scalar float tensor (cast to float64; its value cannot be
    validated at trace time, keep it >= 2**-24)."""
    if _is_tensor(scale):
        if not scale.dtype.is_floating:
            raise ValueError(f"{name} tensor must be floating point, got {scale.dtype!r}")
        if scale.shape.rank not in (None, 0):
            raise ValueError(f"{name} must be a scalar, got shape {scale.shape}")
        return tf.cast(scale, tf.float64)
    return _python_scale(scale, name)


def _int_input(q):
    q = tf.convert_to_tensor(q)
    if not q.dtype.is_integer:
        raise ValueError(f"q must be an integer tensor, got {q.dtype!r}")
    return tf.cast(q, tf.int64)


def _float_input(x):
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype!r}")
    return x


# ---------------------------------------- constants: Python ints, or int64 tensors in-graph
def _floor_int(value):
    if isinstance(value, float):
        return int(math.floor(value))
    return tf.cast(tf.floor(value), tf.int64)


def _bitlen(value):
    if isinstance(value, int):
        return value.bit_length()
    return fp.bit_length(value)


def _relu(value):
    if isinstance(value, int):
        return max(value, 0)
    return tf.maximum(value, tf.constant(0, tf.int64))


def _exp2(k):
    if isinstance(k, int):
        return 2.0 ** k
    return tf.pow(tf.constant(2.0, tf.float64), tf.cast(k, tf.float64))


def _half_ulp(k):
    """``2**k // 2``: the rounding offset of a right shift by ``k >= 0``."""
    if isinstance(k, int):
        return (1 << k) >> 1
    one = tf.constant(1, tf.int64)
    return tf.bitwise.right_shift(tf.bitwise.left_shift(one, k), one)


def _sra(x, k):
    """Arithmetic right shift by a constant ``k`` (floor division by ``2**k``)."""
    return tf.bitwise.right_shift(x, tf.constant(k, tf.int64))


def _saturate_int32(x):
    return tf.cast(tf.clip_by_value(x, fp.INT32_MIN, fp.INT32_MAX), tf.int32)


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


# --------------------------------------------------------------------------- cores (int64)
def _softmax_core(x, scale, axis, method, bits, norm_bits, rounding):
    x = x - tf.reduce_max(x, axis=axis, keepdims=True)
    e, _ = _exp(x, scale, method, "softmax", _exp_bits(bits, norm_bits))
    total = tf.reduce_sum(e, axis=axis, keepdims=True)
    return _normalize(e, total, bits, norm_bits, rounding)


def _sigmoid_core(x, scale, method, bits, norm_bits, rounding, cap=True):
    m = tf.maximum(x, 0)
    exp_bits = _exp_bits(bits, norm_bits)
    num, _ = _exp(x - m, scale, method, "sigmoid", exp_bits)
    other, _ = _exp(-m, scale, method, "sigmoid", exp_bits)
    return _normalize(num, num + other, bits, norm_bits, rounding, cap)


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


def _ln_preshift(channels, y_bound):
    """Smallest p with channels * ceil(y_bound / 2**p)**2 < 2**62 (sum of squares fits)."""
    p = 0
    while channels * (-(-y_bound // 2 ** p)) ** 2 >= 2 ** 62:
        p += 1
    return p


def _layer_norm_core(x, channels, method, in_bits):
    """Normalised ``(x - mean) / sqrt(sum((x - mean)**2)) * 2**30`` as int64, last axis."""
    total = tf.reduce_sum(x, axis=-1, keepdims=True)
    if method == "newton":
        y = channels * x - total  # = C (x - mean), exact
        p = _ln_preshift(channels, channels * 2 ** in_bits)
        yp = _sra(y, p) if p else y
        var = tf.reduce_sum(yp * yp, axis=-1, keepdims=True)  # < 2**62
        frac = _sra(62 - fp.bit_length(var), 1)  # var << 2 frac in [2**60, 2**62)
        d = fp.isqrt(tf.bitwise.left_shift(var, 2 * frac))  # ~ sqrt(var) 2**frac, >= 2**30
        factor = tf.math.floordiv(tf.constant(2 ** 61 - 1, tf.int64),
                                  tf.maximum(d, tf.constant(1, tf.int64)))
        return tf.bitwise.right_shift(yp * factor, 31 - frac)
    # I-ViT: rounded mean, 10 Newton steps from 2**16, floor((2**31 - 1) / std), / 2.
    mean = tf.math.floordiv(2 * total + channels, 2 * channels)
    y = x - mean
    p = _ln_preshift(channels, 2 ** in_bits)
    yp = _sra(y, p) if p else y
    var = tf.reduce_sum(yp * yp, axis=-1, keepdims=True)
    k = tf.fill(tf.shape(var), tf.constant(2 ** 16, tf.int64))
    for _ in range(_LN_STD_ITERATIONS_IVIT):
        k = _sra(k + tf.math.floordiv(var, k), 1)
    std = tf.bitwise.left_shift(k, tf.constant(p, tf.int64))
    factor = tf.math.floordiv(tf.constant(2 ** 31 - 1, tf.int64), std)
    return _sra(y * factor, 1)


# --------------------------------------------------------------------------- STE helper
def _quantize(x, scale):
    """``round(x / scale)`` as int64 (ties to even), saturated to the int32 range."""
    q = tf.round(tf.cast(x, tf.float64) / scale)
    return tf.cast(tf.clip_by_value(q, float(fp.INT32_MIN), float(fp.INT32_MAX)), tf.int64)


def _ste(reference, approx):
    approx = tf.cast(approx, reference.dtype)
    return reference + tf.stop_gradient(approx - reference)


# --------------------------------------------------------------------------- GELU
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
        ``GELU(q * scale) ~ q_out * out_scale``; see the module docstring for ``out_scale``.
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


# --------------------------------------------------------------------------- softmax
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


# --------------------------------------------------------------------------- sigmoid
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


# --------------------------------------------------------------------------- LayerNorm
def _affine_frac_bits(max_gain):
    """Fractional bits kept between the per-channel gain and the beta add: as many as fit
    ``|y_n| max_gain 2**frac <= 2**30`` (``|y_n| <= 2**30``), in [0, 30]."""
    if max_gain <= 0.0:
        return 30
    return int(min(max(math.floor(30.0 - math.log2(max_gain * 2.0 ** 30)), 0), 30))


def _static_channels(shape):
    if shape.rank is None or shape.rank < 1 or shape[-1] is None:
        raise ValueError(f"LayerNorm needs a static last (channel) dimension, got {shape}")
    channels = int(shape[-1])
    if channels < 1:
        raise ValueError(f"LayerNorm needs >= 1 channel, got {channels}")
    return channels


def _affine_params(value, channels, default, name):
    if value is None:
        return np.full(channels, default, np.float64)
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (channels,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite with shape ({channels},), got {value!r}")
    return array


def _check_ln_args(method, bits, in_bits, gamma, beta, out_scale):
    _check_method(method, LAYER_NORM_METHODS, "LayerNorm")
    bits = _check_bits(bits)
    in_bits = _check_int(in_bits, 2, 32, "in_bits")
    if out_scale is None and (gamma is not None or beta is not None):
        raise ValueError("out_scale is required when gamma or beta is given")
    if out_scale is not None:
        out_scale = _python_scale(out_scale, "out_scale")
    return bits, in_bits, out_scale


def int_layer_norm(q, scale, gamma=None, beta=None, *, out_scale=None, bits=8,
                   method="newton", in_bits=16):
    """Integer LayerNorm over the last axis (no epsilon: the integer variance is exact).

    Normalised ``y_n = floor((x - mean) / sqrt(sum((x - mean)**2)) * 2**30)``, scale
    ``sqrt(C) / 2**30`` (so ``y_n * sqrt(C) / 2**30 = (x - mean) / std``); see the module
    docstring for the two methods. Overflow guard: inputs are assumed to satisfy
    ``|q| < 2**(in_bits - 1)``; a trace-time right pre-shift ``p`` of the centred values keeps
    ``sum(y**2) < 2**62`` (int64 and the :func:`~.fixedpoint.isqrt` domain); ``p = 0`` for
    ``in_bits = 16`` and C < 2**10 (``newton``) / C < 2**30 (``ivit``). ``ivit``'s 10 Newton
    steps from ``2**16`` are accurate (< 0.1 %) only for ``sum(y**2)`` in ``[2**16, 2**48)``,
    i.e. inputs must use most of a ~16-bit grid; ``newton`` is exact for any input.

    Parameters
    ----------
    q : tensor, integer dtype, ``[..., C]`` with static C
        Input (real value ``q * scale``).
    scale : float
        Input scale (> 0). The normalised output does not depend on it.
    gamma, beta : None or array-like ``[C]`` of float
        Affine parameters (defaults 1 and 0); require ``out_scale``.
    out_scale : None or float
        If given, the result is ``round((gamma_c y_n sqrt(C) 2**-30 + beta_c) / out_scale)``
        clamped to ``bits`` bits, computed with per-channel dyadic multipliers (module
        docstring); within 1/2 LSB + 2**-frac of the exact rounding.
    bits : int
        Output width in [2, 16] when ``out_scale`` is given (default 8).
    method : "newton" | "ivit"
    in_bits : int
        Input width in [2, 32] for the overflow guard (default 16).

    Returns
    -------
    (q_out, out_scale) : (tf.int32 tensor ``[..., C]``, float)
        ``out_scale`` is ``sqrt(C) / 2**30`` without affine, else the given ``out_scale``.
    """
    bits, in_bits, out_scale = _check_ln_args(method, bits, in_bits, gamma, beta, out_scale)
    _python_scale(scale)
    x = _int_input(q)
    channels = _static_channels(x.shape)
    y = _saturate_int32(_layer_norm_core(x, channels, method, in_bits))  # |y| ~<= 2**30
    norm_scale = math.sqrt(channels) / 2.0 ** 30
    if out_scale is None:
        return y, norm_scale
    g = _affine_params(gamma, channels, 1.0, "gamma")
    b = _affine_params(beta, channels, 0.0, "beta")
    gain = np.abs(g) * norm_scale / out_scale  # real M_c per channel
    frac = _affine_frac_bits(float(np.max(gain)))
    mult, shift = fp.quantize_multiplier(gain * 2.0 ** frac)
    sign = np.where(g < 0, -1, 1).astype(np.int32)
    beta_fx = np.floor(b / out_scale * 2.0 ** frac + 0.5).astype(np.int64)
    t = tf.cast(fp.multiply_by_quantized_multiplier(y * sign, mult, shift), tf.int64) + beta_fx
    z = _sra(t + (1 << frac >> 1), frac)  # one rounding of (gamma y + beta) / out_scale
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return tf.cast(tf.clip_by_value(z, lo, hi), tf.int32), out_scale


def fake_layer_norm(x, scale, gamma=None, beta=None, *, out_scale=None, bits=8,
                    method="newton", in_bits=16, epsilon=1e-5):
    """Training form of :func:`int_layer_norm`, straight-through float LayerNorm gradient.

    The forward value is the integer normalisation followed, when ``out_scale`` is given, by
    the affine map rounded as the integer path does (to ``frac`` fractional bits, ties away
    from zero, add beta, one final rounding) but with the exact real multiplier in float64;
    it differs from :func:`int_layer_norm` only where TFLite's Q31 multiplier / double
    rounding flips a tie (at most 1 LSB). Gradients (to ``x``, ``gamma``, ``beta``) are those of
    ``(x - mean) / sqrt(var + epsilon) * gamma + beta``.

    Parameters
    ----------
    x : tensor, float, ``[..., C]`` with static C
    scale : float or scalar float tensor
        Input grid.
    gamma, beta : None or float tensor/variable/array ``[C]``
        Affine parameters; require ``out_scale``.
    out_scale : None or float
        Output grid (``bits`` bits); see :func:`int_layer_norm`.
    bits, method, in_bits : as :func:`int_layer_norm`.
    epsilon : float
        Epsilon of the float reference used for the gradient (default 1e-5, as swin.py).

    Returns
    -------
    tensor, ``x.dtype``, shape of ``x``.
    """
    bits, in_bits, out_scale = _check_ln_args(method, bits, in_bits, gamma, beta, out_scale)
    x = _float_input(x)
    channels = _static_channels(x.shape)
    scale = _any_scale(scale)
    y = _layer_norm_core(_quantize(x, scale), channels, method, in_bits)
    norm_scale = math.sqrt(channels) / 2.0 ** 30
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    reference = (x - mean) * tf.math.rsqrt(var + epsilon)
    if out_scale is None:
        return _ste(reference, tf.cast(y, tf.float64) * norm_scale)
    g64 = tf.ones([channels], tf.float64) if gamma is None else tf.cast(gamma, tf.float64)
    b64 = tf.zeros([channels], tf.float64) if beta is None else tf.cast(beta, tf.float64)
    g, b = tf.cast(g64, x.dtype), tf.cast(b64, x.dtype)
    sign = 1.0 - 2.0 * tf.cast(g64 < 0, tf.float64)
    gain = tf.abs(g64) * (norm_scale / out_scale)
    frac = tf.clip_by_value(tf.floor(30.0 - tf.math.log(tf.reduce_max(gain) * 2.0 ** 30)
                                     / math.log(2.0)), 0.0, 30.0)
    t = tf.cast(y, tf.float64) * sign * gain * tf.pow(tf.constant(2.0, tf.float64), frac)
    t = tf.sign(t) * tf.floor(tf.abs(t) + 0.5)
    t = t + tf.floor(b64 / out_scale * tf.pow(tf.constant(2.0, tf.float64), frac) + 0.5)
    t = tf.floor(t / tf.pow(tf.constant(2.0, tf.float64), frac) + 0.5)
    lo, hi = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    approx = tf.clip_by_value(t, lo, hi) * out_scale
    return _ste(reference * g + b, approx)
