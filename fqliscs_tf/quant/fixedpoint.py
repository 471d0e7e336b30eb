"""Integer fixed-point helpers: dyadic requantization, integer square roots, reciprocals.

Everything that runs on tensors here uses TensorFlow integer ops only (``tf.int32`` /
``tf.int64`` arithmetic, shifts, bitwise ops, ``floordiv``/``truncatediv``), so it traces to
an integer-only graph and compiles with XLA (``tf.function(jit_compile=True)``). Real-valued
scales enter only through :func:`quantize_multiplier`, which runs in Python at trace time.

Conventions
-----------
* A *dyadic multiplier* is a pair ``(multiplier, shift)`` standing for the real number
  ``multiplier * 2**(shift - 31)``, ``multiplier`` an int32 in ``[2**30, 2**31)`` (0 for a
  zero multiplier), exactly as TFLite's ``QuantizeMultiplier``.
* :func:`multiply_by_quantized_multiplier` is TFLite's default (double-rounding)
  ``MultiplyByQuantizedMultiplier``: ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
  x * 2**max(shift, 0), multiplier), max(-shift, 0))``; both roundings are to nearest, the
  high-mul's ties go up (nudge ``2**30`` or ``1 - 2**30``, then truncation), the shift's ties
  away from zero. It is bit-exact with the C++ reference (tests compare with a NumPy copy).
* Right shifts of signed integers are arithmetic (``x >> k == floor(x / 2**k)``).
"""
import math

import numpy as np
import tensorflow as tf

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "ISQRT_ITERATIONS",
    "quantize_multiplier",
    "multiply_by_quantized_multiplier",
    "dyadic_requantize",
    "bit_length",
    "isqrt",
    "int_reciprocal",
    "int_rsqrt",
    "shift_left_or_right",
]

INT32_MIN = -(2 ** 31)
INT32_MAX = 2 ** 31 - 1

ISQRT_ITERATIONS = 6
"""Newton steps of :func:`isqrt`. From ``x0 = 2**ceil(bits/2)`` (at most 2x the root) the real
Newton relative error after 5 steps is below 1.1e-15, i.e. below 1 for any root < 2**31; the
integer iterate is then ``isqrt(n)`` or ``isqrt(n) + 1`` and a 6th step makes it exact."""


def _is_python_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _quantize_multiplier_scalar(real_multiplier):
    m = float(real_multiplier)
    if not math.isfinite(m) or m < 0.0:
        raise ValueError(f"real_multiplier must be finite and >= 0, got {real_multiplier!r}")
    if m >= 2.0 ** 31:
        raise ValueError(f"real_multiplier must be < 2**31, got {real_multiplier!r}")
    if m == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(m)  # m = mantissa * 2**shift, mantissa in [0.5, 1)
    q_fixed = int(math.floor(mantissa * 2.0 ** 31 + 0.5))  # std::round (positive value)
    if q_fixed == 2 ** 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:  # every bit would be shifted out
        return 0, 0
    return q_fixed, shift


def quantize_multiplier(real_multiplier):
    """TFLite ``QuantizeMultiplier``: a real multiplier as ``(int32 multiplier, shift)``.

    ``real ~= multiplier * 2**(shift - 31)`` with ``multiplier`` in ``[2**30, 2**31)``:
    ``frexp``, mantissa rounded to Q31 (ties away from zero), a mantissa that rounds up to
    ``2**31`` is halved with ``shift + 1``; 0 and multipliers below ``2**-32`` (shift < -31)
    give ``(0, 0)``. The relative error of the pair is at most ``2**-31``.

    Parameters
    ----------
    real_multiplier : float or array-like of float
        Non-negative, finite, < 2**31 (e.g. ``in_scale / out_scale``; one per channel).

    Returns
    -------
    (multiplier, shift) : (int, int) for a scalar input, else two ``np.int32`` arrays of the
        input's shape.
    """
    if _is_python_number(real_multiplier):
        return _quantize_multiplier_scalar(real_multiplier)
    values = np.asarray(real_multiplier, dtype=np.float64)
    pairs = [_quantize_multiplier_scalar(v) for v in values.reshape(-1)]
    mult = np.array([p[0] for p in pairs], dtype=np.int64).reshape(values.shape)
    shift = np.array([p[1] for p in pairs], dtype=np.int64).reshape(values.shape)
    return mult.astype(np.int32), shift.astype(np.int32)


def _int_operand(value, name):
    """Python/NumPy ints -> int64 constant; integer tensors -> int64 tensor."""
    if tf.is_tensor(value) or isinstance(value, tf.Variable):
        if not value.dtype.is_integer:
            raise ValueError(f"{name} must have an integer dtype, got {value.dtype!r}")
        return tf.cast(value, tf.int64)
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer-valued, got dtype {array.dtype!r}")
    return tf.constant(array.astype(np.int64))


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite ``MultiplyByQuantizedMultiplier`` (default double-rounding path), bit-exact.

    Computes ``round(x * multiplier * 2**(shift - 31))`` as TFLite does: ``x`` is shifted left
    by ``max(shift, 0)`` (int32 wrap-around, as the C++ code; keep ``x * 2**shift`` inside
    int32), then ``SaturatingRoundingDoublingHighMul`` (int64 product, nudge ``2**30`` or
    ``1 - 2**30``, truncating division by ``2**31``, saturating the single overflow case)
    (ties toward +inf) and ``RoundingDivideByPOT`` by ``max(-shift, 0)`` (ties away from
    zero).

    Parameters
    ----------
    x : tensor, tf.int32
        Accumulators, any shape.
    multiplier, shift : int, integer array or integer tensor
        From :func:`quantize_multiplier`; broadcast against ``x`` (scalars per tensor,
        ``[channels]`` arrays per channel along the last axis). ``shift`` in ``[-31, 30]``.

    Returns
    -------
    tensor, tf.int32, broadcast shape of the inputs.
    """
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.int32:
        raise ValueError(f"x must be tf.int32, got {x.dtype!r}")
    if not (tf.is_tensor(shift) or isinstance(shift, tf.Variable)):
        shift_np = np.asarray(shift)
        if shift_np.dtype.kind in "iu" and (shift_np.max(initial=0) > 30
                                           or shift_np.min(initial=0) < -31):
            raise ValueError(f"shift must be in [-31, 30], got {shift!r}")
    mult = _int_operand(multiplier, "multiplier")
    shift = _int_operand(shift, "shift")
    left = tf.maximum(shift, 0)
    right = tf.maximum(-shift, 0)
    # x * (1 << left) in int32 with two's-complement wrap-around (as the C++ int32 product).
    a = tf.cast(tf.bitwise.left_shift(tf.cast(x, tf.int64), left), tf.int32)
    a = tf.cast(a, tf.int64)
    # SaturatingRoundingDoublingHighMul(a, mult).
    ab = a * mult
    nudge = tf.where(ab >= 0, tf.constant(2 ** 30, tf.int64), tf.constant(1 - 2 ** 30, tf.int64))
    high = tf.truncatediv(ab + nudge, tf.constant(2 ** 31, tf.int64))
    overflow = tf.logical_and(tf.equal(a, mult), tf.equal(a, INT32_MIN))
    high = tf.where(overflow, tf.constant(INT32_MAX, tf.int64), high)
    # RoundingDivideByPOT(high, right): ties away from zero.
    one = tf.constant(1, tf.int64)
    mask = tf.bitwise.left_shift(one, right) - 1
    remainder = tf.bitwise.bitwise_and(high, mask)
    threshold = tf.bitwise.right_shift(mask, one) + tf.cast(high < 0, tf.int64)
    out = tf.bitwise.right_shift(high, right) + tf.cast(remainder > threshold, tf.int64)
    return tf.cast(out, tf.int32)


def _check_bits(bits, low=2, high=32, name="bits"):
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not low <= bits <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {bits!r}")
    return int(bits)


def _check_positive_scale(scale, name):
    values = np.asarray(scale, dtype=np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0.0):
        raise ValueError(f"{name} must be finite and > 0, got {scale!r}")
    return values


def dyadic_requantize(acc, in_scale, out_scale, bits=8, zero_point=0):
    """Rescale integer accumulators to a ``bits``-wide signed grid, TFLite style.

    ``out = clamp(multiply_by_quantized_multiplier(acc, M) + zero_point, -2**(bits-1),
    2**(bits-1) - 1)`` with ``M = in_scale / out_scale`` quantized by
    :func:`quantize_multiplier`; i.e. ``round(acc * in_scale / out_scale)`` to within 1 LSB.

    Parameters
    ----------
    acc : tensor, tf.int32
        Accumulators (real value ``acc * in_scale``), any shape ``[..., channels]``.
    in_scale : float or array-like ``[channels]``
        Accumulator scale (per tensor or per last-axis channel), > 0.
    out_scale : float or array-like ``[channels]``
        Output scale, > 0.
    bits : int
        Output width in ``[2, 32]`` (default 8).
    zero_point : int
        Added after rescaling (default 0, symmetric).

    Returns
    -------
    tensor, tf.int32, same shape as ``acc``, values in ``[-2**(bits-1), 2**(bits-1) - 1]``.
    """
    bits = _check_bits(bits)
    in_s = _check_positive_scale(in_scale, "in_scale")
    out_s = _check_positive_scale(out_scale, "out_scale")
    real = in_s / out_s
    if real.ndim == 0:
        mult, shift = quantize_multiplier(float(real))
    else:
        mult, shift = quantize_multiplier(real)
    y = multiply_by_quantized_multiplier(acc, mult, shift)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    y = tf.cast(y, tf.int64) + int(zero_point)
    return tf.cast(tf.clip_by_value(y, lo, hi), tf.int32)


def bit_length(x):
    """Number of bits of non-negative integers (``int.bit_length``), branch-free.

    Parameters
    ----------
    x : tensor, tf.int32 or tf.int64, values >= 0.

    Returns
    -------
    tensor, tf.int64, same shape; 0 for 0, ``floor(log2(x)) + 1`` otherwise.
    """
    v = tf.cast(x, tf.int64)
    bits = tf.zeros_like(v)
    for step in (32, 16, 8, 4, 2, 1):
        high = tf.bitwise.right_shift(v, tf.constant(step, tf.int64))
        has_high = high > 0
        v = tf.where(has_high, high, v)
        bits = bits + tf.where(has_high, tf.constant(step, tf.int64), tf.constant(0, tf.int64))
    return bits + tf.cast(v > 0, tf.int64)


def isqrt(n):
    """Exact integer square root ``floor(sqrt(n))`` by Newton's iteration, integer ops only.

    Start ``x0 = 2**ceil(bit_length(n) / 2) >= sqrt(n)``, then :data:`ISQRT_ITERATIONS` (6)
    unrolled steps ``x <- min(x, floor((x + floor(n / x)) / 2))``: no data-dependent loop, so it
    runs in graph mode and under XLA. Equal to ``math.isqrt`` for every ``n`` in ``[0, 2**62)``.

    Parameters
    ----------
    n : tensor, tf.int32 or tf.int64
        Values in ``[0, 2**62)``; negative values return 0.

    Returns
    -------
    tensor, same dtype and shape as ``n``.
    """
    n = tf.convert_to_tensor(n)
    if n.dtype not in (tf.int32, tf.int64):
        raise ValueError(f"n must be tf.int32 or tf.int64, got {n.dtype!r}")
    n64 = tf.maximum(tf.cast(n, tf.int64), 0)
    safe = tf.maximum(n64, 1)
    one = tf.constant(1, tf.int64)
    x = tf.bitwise.left_shift(one, tf.bitwise.right_shift(bit_length(safe) + 1, one))
    for _ in range(ISQRT_ITERATIONS):
        x = tf.minimum(x, tf.bitwise.right_shift(x + tf.math.floordiv(safe, x), one))
    x = tf.where(n64 > 0, x, tf.zeros_like(x))
    return tf.cast(x, n.dtype)


def int_reciprocal(x, numerator=2 ** 31 - 1):
    """Integer reciprocal ``floor(numerator / x)`` (I-ViT's ``floor((2**31 - 1) / x)``).

    Parameters
    ----------
    x : tensor, integer dtype
        Divisors, > 0 (values below 1 are treated as 1, so the result never traps).
    numerator : int
        In ``[1, 2**62]`` (default ``2**31 - 1``).

    Returns
    -------
    tensor, tf.int64, same shape as ``x``.
    """
    if isinstance(numerator, bool) or not isinstance(numerator, (int, np.integer)) \
            or not 1 <= numerator <= 2 ** 62:
        raise ValueError(f"numerator must be an int in [1, 2**62], got {numerator!r}")
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_integer:
        raise ValueError(f"x must have an integer dtype, got {x.dtype!r}")
    return tf.math.floordiv(tf.constant(int(numerator), tf.int64),
                            tf.maximum(tf.cast(x, tf.int64), 1))


def int_rsqrt(n, frac_bits=30):
    """Exact integer reciprocal square root ``floor(2**frac_bits / sqrt(n))``.

    Uses ``floor(sqrt(floor(y))) == floor(sqrt(y))``: the result is
    ``isqrt(floor(2**(2 * frac_bits) / n))``, exact for every ``n >= 1``. Relative precision
    is about ``sqrt(n) / 2**frac_bits``. Used for power normalization
    (``z * sqrt(k / sum(z**2))``) and LayerNorm-style scaling.

    Parameters
    ----------
    n : tensor, integer dtype
        Values >= 1 (values below 1 are treated as 1).
    frac_bits : int
        Fractional bits of the result, in ``[0, 30]`` (default 30).

    Returns
    -------
    tensor, tf.int64, same shape as ``n``.
    """
    frac_bits = _check_bits(frac_bits, 0, 30, "frac_bits")
    n = tf.convert_to_tensor(n)
    if not n.dtype.is_integer:
        raise ValueError(f"n must have an integer dtype, got {n.dtype!r}")
    num = tf.constant(2 ** (2 * frac_bits), tf.int64)
    return isqrt(tf.math.floordiv(num, tf.maximum(tf.cast(n, tf.int64), 1)))


def shift_left_or_right(x, shift):
    """``x * 2**shift`` for ``shift >= 0``, ``floor(x / 2**-shift)`` for ``shift < 0``.

    Parameters
    ----------
    x : tensor, tf.int64
    shift : int or tf.int64 tensor broadcastable to ``x``; amounts are clipped to
        ``[-63, 62]`` (a right shift by 63 gives 0 or -1; the caller keeps left shifts
        inside int64).

    Returns
    -------
    tensor, tf.int64.
    """
    if not (tf.is_tensor(shift) or isinstance(shift, tf.Variable)):
        shift = int(shift)
        if shift >= 0:
            return tf.bitwise.left_shift(x, tf.constant(min(shift, 62), tf.int64))
        return tf.bitwise.right_shift(x, tf.constant(min(-shift, 63), tf.int64))
    shift = tf.cast(shift, tf.int64)
    left = tf.bitwise.left_shift(x, tf.clip_by_value(shift, 0, 62))
    right = tf.bitwise.right_shift(x, tf.clip_by_value(-shift, 0, 63))
    return tf.where(shift >= 0, left, right)
