# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
r"""Capacity bounds for the separation baselines ("codec + capacity").

An image sent with ``k`` complex channel uses (``k = CBR * 3 * H * W``) can
carry at most ``k * C(SNR)`` bits with an ideal channel code, where

* AWGN: :math:`C = \log_2(1 + \mathrm{SNR})` [bit per channel use];
* Rayleigh fading with receiver CSI, ergodic (fast fading, ``h ~ CN(0, 1)``):

  .. math::
      C = E\left[\log_2(1 + |h|^2 \mathrm{SNR})\right]
        = \log_2(e)\, e^{1/\mathrm{SNR}}\, E_1(1/\mathrm{SNR}).

So the bound in bits per pixel is ``3 * CBR * C``; e.g. CBR 1/16 at 10 dB on
AWGN gives ``0.1875 * log2(11) = 0.649`` bpp. "Codec + capacity"
(:func:`codec_at_capacity`) is the best codec reconstruction within that many
bits (WITT's "BPG + Capacity").

Block fading (one ``h`` per image) has no ergodic capacity per image; the
ergodic value is the *average* number of bits an ideally rate-adapted
(transmitter CSI) system delivers, which is why ``"rayleigh-block"`` is
rejected here rather than silently mapped.
"""
import math

import numpy as np
from scipy.special import exp1

from .image_codecs import rate_control

__all__ = [
    "BOUND_CHANNELS",
    "awgn_capacity",
    "capacity_bits",
    "capacity_bpp",
    "codec_at_capacity",
    "rayleigh_ergodic_capacity",
    "snr_db_for_capacity",
]

#: Channels with a capacity formula here ("rayleigh" = "rayleigh-fast", ergodic).
BOUND_CHANNELS = ("awgn", "rayleigh", "rayleigh-fast")


def _snr_lin(snr_db):
    snr_db = np.asarray(snr_db, np.float64)
    if not np.all(np.isfinite(snr_db)):
        raise ValueError(f"snr_db must be finite, got {snr_db!r}")
    return 10.0 ** (snr_db / 10.0)


def awgn_capacity(snr_db):
    r"""AWGN capacity :math:`\log_2(1 + \mathrm{SNR})`.

    Input
    -----
    snr_db : Scalar or array, `float`
        SNR per complex channel use [dB]

    Output
    ------
    c : Same shape as ``snr_db``, `np.float64`
        Capacity [bit per complex channel use]
    """
    return np.log2(1.0 + _snr_lin(snr_db))


def _exp_e1(x):
    r""":math:`e^x E_1(x)` for x > 0, without overflow for large x (asymptotic series)."""
    x = np.asarray(x, np.float64)
    small = x < 50.0
    xs = np.where(small, x, 1.0)
    exact = np.exp(xs) * exp1(xs)
    xl = np.where(small, 50.0, x)
    # e^x E1(x) ~ sum_n (-1)^n n! / x^(n+1); truncation error < 10!/50^11 relative
    series = sum((-1) ** n * math.factorial(n) / xl ** (n + 1) for n in range(10))
    return np.where(small, exact, series)


def rayleigh_ergodic_capacity(snr_db):
    r"""Ergodic capacity of flat Rayleigh fading with receiver CSI.

    .. math::
        E_{h \sim \mathcal{CN}(0,1)}\left[\log_2(1 + |h|^2 \mathrm{SNR})\right]
        = \log_2(e)\, e^{1/\mathrm{SNR}}\, E_1(1/\mathrm{SNR})

    Input
    -----
    snr_db : Scalar or array, `float`
        Average received SNR per complex channel use [dB]

    Output
    ------
    c : Same shape as ``snr_db``, `np.float64`
        Capacity [bit per complex channel use]
    """
    return np.log2(np.e) * _exp_e1(1.0 / _snr_lin(snr_db))


def _capacity_fn(channel):
    key = channel.lower() if isinstance(channel, str) else channel
    if key == "awgn":
        return awgn_capacity
    if key in ("rayleigh", "rayleigh-fast"):
        return rayleigh_ergodic_capacity
    raise ValueError(
        f"No capacity bound for channel {channel!r}; valid channels: {', '.join(BOUND_CHANNELS)} "
        "(block fading has no per-image ergodic capacity)")


def capacity_bits(k, snr_db, channel="awgn"):
    """Bits that ``k`` complex channel uses carry at capacity.

    Input
    -----
    k : `int` | array
        Number of complex channel uses (``CBR * 3 * H * W`` for an image)

    snr_db : Scalar or array, `float`
        (Average) SNR [dB]

    channel : "awgn" (default) | "rayleigh" | "rayleigh-fast"
        "rayleigh": ergodic capacity of fast fading with receiver CSI

    Output
    ------
    bits : `np.float64` (array if an input is one)
        ``k * C(snr)`` (not rounded)
    """
    k = np.asarray(k, np.float64)
    if np.any(k < 0) or not np.all(np.isfinite(k)):
        raise ValueError(f"k must be a non-negative number of channel uses, got {k!r}")
    return k * _capacity_fn(channel)(snr_db)


def capacity_bpp(cbr, snr_db, channel="awgn"):
    """Capacity bound in bits per pixel: ``3 * cbr * C(snr)``.

    Input
    -----
    cbr : `float`
        Channel bandwidth ratio (complex channel uses per real source value,
        i.e. ``k / (3 H W)``)

    snr_db : Scalar or array, `float`
        (Average) SNR [dB]

    channel : "awgn" (default) | "rayleigh" | "rayleigh-fast"

    Output
    ------
    bpp : `np.float64` (array if ``snr_db`` is one)
        Bits per pixel
    """
    if not cbr > 0:
        raise ValueError(f"cbr must be positive, got {cbr!r}")
    return 3.0 * cbr * _capacity_fn(channel)(snr_db)


def snr_db_for_capacity(rate, channel="awgn"):
    """Smallest SNR [dB] whose capacity equals ``rate`` bit per channel use (Shannon limit).

    Input
    -----
    rate : `float`
        Spectral efficiency [bit per complex channel use], > 0

    channel : "awgn" (default) | "rayleigh" | "rayleigh-fast"

    Output
    ------
    snr_db : `float`
        SNR [dB]
    """
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate!r}")
    fn = _capacity_fn(channel)
    if fn is awgn_capacity:
        return float(10.0 * np.log10(2.0 ** rate - 1.0))
    lo, hi = -40.0, 10.0 * np.log10(2.0 ** rate - 1.0) + 40.0
    for _ in range(100):  # bisection; capacity is increasing in SNR
        mid = 0.5 * (lo + hi)
        if fn(mid) < rate:
            lo = mid
        else:
            hi = mid
    return float(hi)


def codec_at_capacity(image, codec, bits):
    """Best codec reconstruction within ``bits`` bits ("codec + capacity").

    Input
    -----
    image : [H, W, 3], `np.uint8`
        RGB image

    codec : `str` | :class:`~phy.image_codecs.ImageCodec`
        Codec name (see :func:`phy.image_codecs.available_codecs`)

    bits : `float`
        Bit budget, e.g. :func:`capacity_bits`; the byte budget is
        ``floor(bits / 8)``

    Output
    ------
    : :class:`~phy.image_codecs.RateControlResult`
        ``(data, quality, image)`` with ``8 * len(data) <= bits``

    Raises
    ------
    phy.image_codecs.BudgetTooSmallError
        (a `ValueError`) If the codec cannot fit the image in ``bits``
    """
    bits = float(bits)
    if not math.isfinite(bits) or bits < 0:
        raise ValueError(f"bits must be a non-negative finite number, got {bits!r}")
    return rate_control(image, codec, int(bits // 8))
