"""Integer LayerNorm (exact Newton isqrt or I-ViT): ``int_layer_norm`` and ``fake_layer_norm``."""
import math

import numpy as np
import tensorflow as tf

from fqliscs_tf.quant import fixedpoint as fp
from ._common import (
    LAYER_NORM_METHODS, _any_scale, _check_bits, _check_int, _check_method, _float_input,
    _int_input, _python_scale, _quantize, _saturate_int32, _sra, _ste)

_LN_STD_ITERATIONS_IVIT = 10


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
    ``sqrt(C) / 2**30`` (so ``y_n * sqrt(C) / 2**30 = (x - mean) / std``); see the package
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
        clamped to ``bits`` bits, computed with per-channel dyadic multipliers (package
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
