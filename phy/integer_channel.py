r"""Integer channel modelling: power normalization, AWGN and Rayleigh fading on integers.

The integer codec transmits int8 I/Q symbols with a fixed scale ``symbol_scale`` (one LSB
of a unit-power symbol component, e.g. 4/127). Everything here runs on integer tensors:

* :func:`int_power_normalize`: ``s = round(x sqrt(k / sum(x**2)) / symbol_scale)`` per
  example, with an exact integer square root (:func:`~fqliscs_tf.quant.fixedpoint.isqrt`)
  of ``floor(k 2**40 / sum(x**2))``, clipped to the symbol range.
* :func:`int_gaussian`: standard normal samples in Q12 (``round(4096 g)``) from a 2**16-entry
  inverse-CDF table indexed by stateless uniform integers (tails cut at 4.4 sigma).
* :class:`IntAWGN`: ``y = s + round(sigma_n / symbol_scale * g)``, ``sigma_n = sqrt(no / 2)``
  per real dimension, ``no = 10**(-snr_db/10)``; the per-SNR noise multipliers form a table
  indexed by the int8 SNR code, so the SNR never becomes a float inside the graph.
* :class:`IntRayleigh`: fast fading ``h ~ CN(0, 1)`` per symbol in Q12, perfect-CSI MMSE
  equalization in fixed point: ``s_hat = round(conj(h) y / (|h|**2 + no))`` with integer
  division, ``no`` in Q24 from the same SNR table.

Conventions follow :class:`~phy.channels.JSCCLink`: symbols have unit average power and
``snr_db`` is the SNR per complex channel use. Inputs and outputs are ``[batch_size, k]``
pairs of ``tf.int32`` tensors (real and imaginary parts).
"""
import math

import numpy as np
import tensorflow as tf

from fqliscs_tf.quant.fixedpoint import isqrt

__all__ = ["int_power_normalize", "int_gaussian", "IntAWGN", "IntRayleigh",
           "INT_CHANNEL_TYPES", "get_int_channel", "GAUSS_FRAC_BITS"]

GAUSS_FRAC_BITS = 12
_TABLE_BITS = 16
_POWER_FRAC_BITS = 20
_GAIN_SHIFT = 40
_NOISE_SHIFT = 24


def _gauss_table():
    from scipy.special import ndtri
    u = (np.arange(2 ** _TABLE_BITS) + 0.5) / 2 ** _TABLE_BITS
    return np.round(ndtri(u) * 2 ** GAUSS_FRAC_BITS).astype(np.int32)


_GAUSS_TABLE = None


def int_gaussian(shape, seed):
    """Standard normal samples as Q12 integers (``round(4096 g)``), ``tf.int32``.

    Parameters
    ----------
    shape : 1-D int32 tensor or list
    seed : ``[2]`` int32/int64 tensor (stateless seed)
    """
    global _GAUSS_TABLE
    if _GAUSS_TABLE is None:
        _GAUSS_TABLE = _gauss_table()
    idx = tf.random.stateless_uniform(shape, seed, minval=0, maxval=2 ** _TABLE_BITS,
                                      dtype=tf.int32)
    return tf.gather(tf.constant(_GAUSS_TABLE), idx)


def _round_shift(x, shift):
    """``round(x / 2**shift)`` (ties up) for int64 ``x``."""
    return tf.bitwise.right_shift(x + (1 << (shift - 1)), tf.constant(shift, tf.int64))


def int_power_normalize(latent, symbol_scale, symbol_bits=8):
    """Integer latent -> unit-power int I/Q symbols.

    Parameters
    ----------
    latent : ``[batch_size, h, w, c]`` tf.int32 (e.g. int8 values); ``h w c`` even.
    symbol_scale : float, LSB of a symbol component (> 0).
    symbol_bits : int, symbol component width (default 8).

    Returns
    -------
    (re, im) : two ``[batch_size, k]`` tf.int32, ``k = h w c / 2``, adjacent latent values
        forming one complex symbol (as :func:`phy.symbols.real_to_complex`).
    """
    x = tf.cast(tf.reshape(latent, [tf.shape(latent)[0], -1]), tf.int64)
    n = tf.shape(x, out_type=tf.int64)[1]
    k = n // 2
    power = tf.maximum(tf.reduce_sum(x * x, axis=1, keepdims=True), 1)
    gain = isqrt(tf.math.floordiv(tf.bitwise.left_shift(k, 2 * _POWER_FRAC_BITS), power))
    mult = int(round(2 ** _GAIN_SHIFT / (symbol_scale * 2 ** _POWER_FRAC_BITS)))
    s = _round_shift(x * gain * mult, _GAIN_SHIFT)
    qmax = 2 ** (symbol_bits - 1) - 1
    s = tf.cast(tf.clip_by_value(s, -qmax, qmax), tf.int32)
    s = tf.reshape(s, [tf.shape(s)[0], -1, 2])
    return s[..., 0], s[..., 1]


def _snr_tables(snr_step_db, symbol_scale):
    """Per int8 SNR code (index ``code + 127``): noise multiplier (Q24, per real dimension,
    applied to Q12 Gaussians, result in symbol LSBs) and ``no`` in Q24."""
    codes = np.arange(-127, 128)
    no = 10.0 ** (-codes * snr_step_db / 10.0)
    sigma = np.sqrt(no / 2.0) / symbol_scale
    noise_mult = np.round(sigma * 2.0 ** (_NOISE_SHIFT - GAUSS_FRAC_BITS)).astype(np.int64)
    no_q24 = np.round(no * 2.0 ** 24).astype(np.int64)
    return noise_mult, no_q24


class IntAWGN:
    """Integer AWGN: ``y = s + n``, all in symbol LSBs.

    Parameters
    ----------
    symbol_scale : float, LSB of a symbol component
    snr_step_db : float, grid of the int8 SNR code

    Call ``(re, im, snr_q, seed)``: re, im ``[B, k]`` tf.int32; snr_q ``[B]`` int32 SNR codes;
    seed ``[2]`` int. Returns ``(re_hat, im_hat)`` ``[B, k]`` tf.int32 (symbol LSBs).
    """

    def __init__(self, symbol_scale, snr_step_db):
        self.symbol_scale, self.snr_step_db = float(symbol_scale), float(snr_step_db)
        mult, no = _snr_tables(self.snr_step_db, self.symbol_scale)
        self._noise_mult, self._no = tf.constant(mult), tf.constant(no)

    def noise(self, snr_q, shape, seed, scale_shift=0):
        """Noise ``[B, k]`` per real dimension in symbol LSBs times ``2**scale_shift``."""
        g = tf.cast(int_gaussian(shape, seed), tf.int64)
        mult = tf.gather(self._noise_mult, tf.cast(snr_q, tf.int32) + 127)[:, None]
        return _round_shift(g * mult, _NOISE_SHIFT - scale_shift)

    def __call__(self, re, im, snr_q, seed):
        shape = tf.shape(re)
        seeds = tf.random.experimental.stateless_split(seed, 2)
        n_re = self.noise(snr_q, shape, seeds[0])
        n_im = self.noise(snr_q, shape, seeds[1])
        return (tf.cast(tf.cast(re, tf.int64) + n_re, tf.int32),
                tf.cast(tf.cast(im, tf.int64) + n_im, tf.int32))


class IntRayleigh(IntAWGN):
    """Integer fast Rayleigh fading with perfect-CSI MMSE equalization.

    ``h = (g1 + j g2) / sqrt(2)`` per symbol (Q12), ``y = h s + n`` (scale
    ``2**-12 symbol_scale``), ``s_hat = round(conj(h) y / (|h|**2 + no))`` (symbol LSBs),
    the integer counterpart of :class:`phy.channels.RayleighChannel` (fading "fast").
    """

    def __call__(self, re, im, snr_q, seed):
        shape = tf.shape(re)
        seeds = tf.random.experimental.stateless_split(seed, 4)
        inv_sqrt2 = int(round(2 ** GAUSS_FRAC_BITS / math.sqrt(2.0)))
        h_re = _round_shift(tf.cast(int_gaussian(shape, seeds[0]), tf.int64) * inv_sqrt2,
                            GAUSS_FRAC_BITS)
        h_im = _round_shift(tf.cast(int_gaussian(shape, seeds[1]), tf.int64) * inv_sqrt2,
                            GAUSS_FRAC_BITS)
        s_re, s_im = tf.cast(re, tf.int64), tf.cast(im, tf.int64)
        y_re = h_re * s_re - h_im * s_im + self.noise(snr_q, shape, seeds[2], GAUSS_FRAC_BITS)
        y_im = h_re * s_im + h_im * s_re + self.noise(snr_q, shape, seeds[3], GAUSS_FRAC_BITS)
        no = tf.gather(self._no, tf.cast(snr_q, tf.int32) + 127)[:, None]
        den = h_re * h_re + h_im * h_im + no  # Q24
        num_re = h_re * y_re + h_im * y_im    # Q24 * symbol LSB
        num_im = h_re * y_im - h_im * y_re
        return (tf.cast(_round_div(num_re, den), tf.int32),
                tf.cast(_round_div(num_im, den), tf.int32))


def _round_div(num, den):
    """``round(num / den)`` (ties up) for int64 tensors, ``den > 0``."""
    return tf.math.floordiv(2 * num + den, 2 * den)


INT_CHANNEL_TYPES = {"awgn": IntAWGN, "rayleigh": IntRayleigh}


def get_int_channel(channel_type, symbol_scale, snr_step_db):
    """Integer channel by name (``"awgn"`` or ``"rayleigh"``, fast fading)."""
    if channel_type not in INT_CHANNEL_TYPES:
        raise ValueError(f"no integer model of channel {channel_type!r}; integer channels: "
                         f"{sorted(INT_CHANNEL_TYPES)} (other links take the integer codec's "
                         "symbols through the float Sionna channel)")
    return INT_CHANNEL_TYPES[channel_type](symbol_scale, snr_step_db)
