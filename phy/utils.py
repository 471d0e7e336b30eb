# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""SNR helpers for the JSCC links: dB to noise variance, and SNR-list parsing."""
import math
import numbers

import numpy as np
import tensorflow as tf

__all__ = ["snr_db_to_no", "parse_snr_list"]


def snr_db_to_no(snr_db):
    r"""Converts an SNR in dB to the linear noise variance ``no``.

    Assumes unit average symbol power :math:`E_s = 1`, so that

    .. math::
        N_0 = 10^{-\mathrm{SNR_{dB}}/10}.

    ``no`` is the noise variance per complex symbol (``no/2`` per real
    dimension), as expected by :class:`sionna.phy.channel.AWGN`.

    Input
    -----
    snr_db : Scalar or tensor of any shape, `tf.float` (or Python/NumPy numbers)
        Signal-to-noise ratio [dB]

    Output
    ------
    no : Same shape as ``snr_db``, `tf.float32`
        Linear noise variance per complex symbol
    """
    snr_db = tf.cast(tf.convert_to_tensor(snr_db), tf.float32)
    return tf.pow(tf.constant(10.0, tf.float32), -snr_db / 10.0)


def _to_float(value, position, original):
    """Converts one entry of an SNR list to a finite float or raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise ValueError(
            f"Malformed SNR list {original!r}: entry {position} ({value!r}) "
            "is not a real number")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(
                f"Malformed SNR list {original!r}: entry {position} is empty "
                "(expected comma-separated numbers, e.g. '1,4,7,10,13')")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"Malformed SNR list {original!r}: entry {position} ({text!r}) "
                "is not a number") from None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(
            f"Malformed SNR list {original!r}: entry {position} ({value!r}) "
            "is not finite")
    return value


def parse_snr_list(text):
    """Parses a list of SNRs [dB], e.g. from a command-line flag.

    Duplicates are kept, and so is the order.

    Input
    -----
    text : `str` | `list` | `tuple` | 1-D `np.ndarray` | number
        Comma-separated numbers such as ``"1,4,7,10,13"`` (whitespace around
        entries is ignored), or a list/tuple/array of real numbers (or of
        numeric strings), or a single real number.

    Output
    ------
    snr_dbs : `list` of `float`
        The SNRs [dB]

    Raises
    ------
    ValueError
        If the input is empty, an entry is empty or not a number
        (e.g. ``"1,,4"``, ``"1;4"``, ``"a"``), or an entry is not finite
        (``nan``, ``inf``).
    """
    original = text
    if isinstance(text, str):
        if not text.strip():
            raise ValueError(
                f"Empty SNR list {original!r}: expected comma-separated numbers, "
                "e.g. '1,4,7,10,13'")
        entries = text.split(",")
    elif isinstance(text, (list, tuple)):
        entries = list(text)
    elif isinstance(text, np.ndarray) and text.ndim <= 1:
        entries = np.atleast_1d(text).tolist()
    elif isinstance(text, numbers.Real) and not isinstance(text, bool):
        entries = [text]
    else:
        raise ValueError(
            f"Malformed SNR list {original!r}: expected a string such as "
            "'1,4,7,10,13' or a list/tuple of numbers")
    if not entries:
        raise ValueError(f"Empty SNR list {original!r}: expected at least one SNR")
    return [_to_float(v, i, original) for i, v in enumerate(entries)]
