"""Shared pieces of the integer ops: method/rounding tuples, ``MIN_SCALE``, argument checks,
trace-time constant helpers (Python int or int64 tensor) and the straight-through helpers."""
import math

import numpy as np
import tensorflow as tf

from fqliscs_tf.quant import fixedpoint as fp

GELU_METHODS = ("shift", "poly")
SOFTMAX_METHODS = ("shift", "poly")
SIGMOID_METHODS = ("shift", "poly")
LAYER_NORM_METHODS = ("newton", "ivit")
ROUNDING_MODES = ("nearest", "floor")

MIN_SCALE = 2.0 ** -24
"""Smallest accepted input scale; finer grids could overflow the int64 intermediates."""


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


# --------------------------------------------------------------------------- STE helper
def _quantize(x, scale):
    """``round(x / scale)`` as int64 (ties to even), saturated to the int32 range."""
    q = tf.round(tf.cast(x, tf.float64) / scale)
    return tf.cast(tf.clip_by_value(q, float(fp.INT32_MIN), float(fp.INT32_MAX)), tf.int64)


def _ste(reference, approx):
    approx = tf.cast(approx, reference.dtype)
    return reference + tf.stop_gradient(approx - reference)
