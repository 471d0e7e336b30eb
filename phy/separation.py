# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
r"""Separation baseline: image codec + 5G NR LDPC + QAM on the JSCC channels.

The digital chain, per code block (all Sionna blocks in single precision)::

    payload bits -> CRC24B -> LDPC5GEncoder(k, n_mother) -> cyclic repetition to n
    -> 38.212 row-column bit interleaver (Qm rows) -> scrambling -> Mapper("qam")
    -> phy.channels AWGNChannel / RayleighChannel (perfect CSI, MMSE)
       | phy.ofdm / phy.mimo link (resource grid, 3GPP channel, CSI, LMMSE/ZF)
    -> unbiasing -> Demapper("app") -> descrambling -> deinterleaving
    -> repetition combining -> LDPC5GDecoder -> CRC check -> payload bits

* **MCS**: 38.214 Table 5.1.3.1-1 (``table=1``, up to 64-QAM) and -2
  (``table=2``, up to 256-QAM): modulation order ``Qm`` and target code rate
  ``R = R_1024 / 1024``, see :func:`get_mcs`.
* **Code blocks** (:func:`default_block_size`): ``k = 6144`` LDPC information
  bits (24 CRC + 6120 payload) for ``R >= 1/3`` (base graph 1, the papers'
  6144-bit blocks), ``k = 3824`` (24 + 3800) for ``R < 1/3`` (base graph 2,
  whose 5G limit is 3840); codeword length ``n = Qm * round(k / (R Qm))``.
  Rates below 1/5 (MCS 0-2 of table 1, 0-1 of table 2) use the rate-1/5
  mother code plus cyclic repetition, as the 5G circular buffer does (Sionna's
  encoder stops at 1/5). Every block gets a CRC24B, which is how the receiver
  detects a failed block.
* **Equalization / LLR convention**: the channel layers return
  ``(z_hat, no_eff)``. AWGN: ``z_hat = y`` is unbiased, demap with
  ``no = no_eff``. Rayleigh: ``z_hat = h^* y / (|h|^2 + no)`` is biased by
  ``a = 1 - no_eff = |h|^2/(|h|^2 + no)``; the demapper gets the unbiased
  ``z_hat / a = y / h`` with noise variance ``no_eff / a = no / |h|^2``,
  which gives exact APP LLRs.
* **Budget**: an image with ``k`` complex channel uses at an MCS carries
  ``floor(k / (n / Qm))`` whole codewords; :func:`max_payload_bits` is that
  times the payload bits per codeword. Unused channel uses stay empty.
* **Failed decode** (any code block fails its CRC): the receiver discards
  the frame and shows :func:`fallback_image`, a mid-gray image (all 128).
  The codec decoder is never run on a corrupted bitstream (C decoders may
  crash or hang on corrupted input). This is the cliff of the fixed-MCS
  curves.
* **Ideal adaptive MCS** (:func:`transmit_image_adaptive`): per image and SNR,
  the MCS with the largest payload among those whose measured threshold
  (stored table, :func:`measure_mcs_thresholds`) is ``<= snr_db - margin_db``;
  the transmission is then simulated, so rare block errors still give the
  fallback. For ``"rayleigh-block"`` the transmitter is assumed to know the
  block gain ``|h|^2`` (ideal CSIT) and uses the AWGN table at the
  instantaneous SNR ``|h|^2 SNR``. Below every threshold nothing is sent and
  the fallback image is returned (``status="no_error_free_mcs"``).
* **OFDM and MIMO links** (:data:`GENIE_CHANNELS`: the "ofdm-*" links of
  :mod:`phy.ofdm`, "mimo" and "mimo-ofdm-cdl" of :mod:`phy.mimo`, with the
  same layer parameters as the JSCC codecs, ``channel_params``): the QAM
  symbol stream of an image is one example of the layer, exactly like a JSCC
  latent: on OFDM it fills the data resource elements (REs, times the
  streams) of ``ceil(k / symbols per slot)`` slots in the order of the layer
  (frequency-first within an OFDM symbol, as 5G maps a codeword; codewords
  run on across slots); pilots are overhead of the link, outside the budget
  ``k``. The stream is zero-padded to
  the ``k`` channel uses of the image (empty REs), so that the channel draws
  do not depend on the MCS: with the same seed every MCS sees the same
  channel and noise realization. The layers return the per-symbol
  ``(z_hat, no_eff)`` of their LMMSE (or ZF) equalizer, from perfect CSI or LS
  estimates; the demapper gets Sionna's unbiased estimate ``x + e`` and its
  per-symbol variance ``Var(e)`` (with LS, estimation error included), i.e.
  per-symbol LLRs. Layers with ``unbiased=False`` (default) return the LMMSE
  estimate ``z_hat = (x + e) / (1 + Var(e))`` with
  ``no_eff = Var(e) / (1 + Var(e))``, which the link unbiases as for Rayleigh
  (``a = 1 - no_eff``); ZF and ``unbiased=True`` outputs are used as they are.
* **Genie adaptive MCS** (:func:`transmit_image_genie`, used by
  :func:`transmit_image_adaptive` on :data:`GENIE_CHANNELS`, where no
  threshold table exists): per image, SNR and channel realization (seed),
  the MCSs are tried on the *same* realization, largest payload first, and
  the first transmission without a CRC failure is kept: the envelope of the
  fixed-MCS results over the MCSs tried, an upper bound on any real link
  adaptation (which does not know the realization). See
  :func:`transmit_image_genie` for the search and what it skips.
"""
import dataclasses
import functools
import json
import math
import os

import numpy as np
import sionna.phy
import tensorflow as tf
from sionna.phy import Block
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import BinarySource, Demapper, Mapper

from .bounds import snr_db_for_capacity
from .channels import get_channel
from .image_codecs import BudgetTooSmallError, best_fit, get_codec, rate_control

__all__ = [
    "GENIE_CHANNELS",
    "LINK_CHANNELS",
    "THRESHOLD_CHANNELS",
    "MCS",
    "MCS_TABLES",
    "LDPCQAMLink",
    "default_block_size",
    "error_free_mcs",
    "fallback_image",
    "get_link",
    "get_mcs",
    "load_mcs_thresholds",
    "max_payload_bits",
    "measure_bler",
    "measure_mcs_thresholds",
    "mcs_threshold_db",
    "select_mcs",
    "transmit_image",
    "transmit_image_adaptive",
    "transmit_image_genie",
]

_PRECISION = "single"
_CRC = "CRC24B"
_CRC_LENGTH = 24
_MIN_RATE = 1.0 / 5.0  # lowest rate of Sionna's LDPC5GEncoder (no repetition)

#: Channels with a stored MCS threshold table (ideal adaptive MCS from the table;
#: "rayleigh" = fast fading, as in phy.channels; "rayleigh-block" uses the AWGN table).
THRESHOLD_CHANNELS = ("awgn", "rayleigh", "rayleigh-fast", "rayleigh-block")
#: OFDM and MIMO links of phy.ofdm / phy.mimo (per-symbol no_eff; genie adaptive MCS).
GENIE_CHANNELS = ("ofdm-rayleigh", "ofdm-tdl", "ofdm-cdl", "ofdm-umi", "ofdm-uma", "mimo",
                  "mimo-ofdm-cdl")
#: Channel names accepted by the link.
LINK_CHANNELS = THRESHOLD_CHANNELS + GENIE_CHANNELS

# 38.214 Table 5.1.3.1-1 and 5.1.3.1-2 (PDSCH): (Qm, R x 1024); indices 29-31
# (28-31 for table 2) are reserved (retransmissions only).
MCS_TABLES = {
    1: ((2, 120), (2, 157), (2, 193), (2, 251), (2, 308), (2, 379), (2, 449), (2, 526),
        (2, 602), (2, 679), (4, 340), (4, 378), (4, 434), (4, 490), (4, 553), (4, 616),
        (4, 658), (6, 438), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666), (6, 719),
        (6, 772), (6, 822), (6, 873), (6, 910), (6, 948)),
    2: ((2, 120), (2, 193), (2, 308), (2, 449), (2, 602), (4, 378), (4, 434), (4, 490),
        (4, 553), (4, 616), (4, 658), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666),
        (6, 719), (6, 772), (6, 822), (6, 873), (8, 682.5), (8, 711), (8, 754), (8, 797),
        (8, 841), (8, 885), (8, 916.5), (8, 948)),
}

_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
_THRESHOLDS_PATH = os.path.join(_DATA_DIR, "mcs_thresholds.json")


# ---------------------------------------------------------------------------
# MCS
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MCS:
    """A 5G NR modulation and coding scheme (38.214 Sec. 5.1.3.1).

    Attributes
    ----------
    index : `int`
        MCS index :math:`I_{MCS}`
    table : `int`
        1 (Table 5.1.3.1-1, up to 64-QAM) | 2 (Table 5.1.3.1-2, up to 256-QAM)
    num_bits_per_symbol : `int`
        Modulation order :math:`Q_m`
    r_1024 : `float`
        Target code rate times 1024
    """
    index: int
    table: int
    num_bits_per_symbol: int
    r_1024: float

    @property
    def coderate(self):
        """`float` : Target code rate ``R = r_1024 / 1024``"""
        return self.r_1024 / 1024.0

    @property
    def spectral_efficiency(self):
        """`float` : ``Qm * R`` [bit per channel use]"""
        return self.num_bits_per_symbol * self.coderate

    @property
    def key(self):
        """`str` : ``"Qm/R_1024"``, the key of the threshold table"""
        return f"{self.num_bits_per_symbol}/{self.r_1024:g}"


def get_mcs(index, table=1):
    """Returns an MCS of 38.214 Table 5.1.3.1-``table``.

    Input
    -----
    index : `int` | :class:`MCS`
        MCS index (0 ... 28 for table 1, 0 ... 27 for table 2); an
        :class:`MCS` is returned unchanged

    table : 1 (default) | 2
        MCS table (2 = the 256-QAM table)

    Output
    ------
    mcs : :class:`MCS`
    """
    if isinstance(index, MCS):
        return index
    if table not in MCS_TABLES:
        raise ValueError(f"Unknown MCS table {table!r}; valid tables: 1, 2")
    entries = MCS_TABLES[table]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
            or not 0 <= index < len(entries):
        raise ValueError(
            f"Unknown MCS index {index!r} for table {table}; "
            f"valid indices: 0 ... {len(entries) - 1} "
            "(higher indices are reserved for retransmissions)")
    qm, r = entries[int(index)]
    return MCS(int(index), table, qm, r)


def _all_mcs(table):
    if table not in MCS_TABLES:
        raise ValueError(f"Unknown MCS table {table!r}; valid tables: 1, 2")
    return [get_mcs(i, table) for i in range(len(MCS_TABLES[table]))]


def default_block_size(num_bits_per_symbol, coderate):
    """Code block size used for an MCS: LDPC information bits ``k`` and codeword bits ``n``.

    ``k = 6144`` for ``coderate >= 1/3`` (base graph 1), ``k = 3824`` otherwise
    (base graph 2, 5G limit 3840; 3824 keeps Sionna's graph selection on BG2
    for rates in (1/4, 1/3)); ``n = Qm * round(k / (coderate * Qm))``. ``k``
    includes the 24 CRC bits.

    Input
    -----
    num_bits_per_symbol : `int`
        Modulation order ``Qm``

    coderate : `float`
        Target code rate

    Output
    ------
    k, n : `int`, `int`
    """
    _check_qm_rate(num_bits_per_symbol, coderate)
    k = 6144 if coderate >= 1.0 / 3.0 else 3824
    n = num_bits_per_symbol * int(round(k / (coderate * num_bits_per_symbol)))
    return k, n


def _check_qm_rate(num_bits_per_symbol, coderate):
    if isinstance(num_bits_per_symbol, bool) or num_bits_per_symbol not in (2, 4, 6, 8, 10):
        raise ValueError(
            f"num_bits_per_symbol must be one of 2, 4, 6, 8, 10 (QAM), got {num_bits_per_symbol!r}")
    if not 0.0 < coderate <= 0.95:
        raise ValueError(f"coderate must be in (0, 0.95], got {coderate!r}")


# ---------------------------------------------------------------------------
# The link
# ---------------------------------------------------------------------------

def _output_interleaver(n, num_bits_per_symbol):
    """38.212 Sec. 5.4.2.2 bit interleaver: ``g[i + j Qm] = f[i n/Qm + j]`` (same as Sionna's)."""
    m = num_bits_per_symbol
    j, i = np.meshgrid(np.arange(n // m), np.arange(m))
    perm = np.empty(n, np.int64)
    perm[(i + j * m).ravel()] = (i * (n // m) + j).ravel()
    return perm, np.argsort(perm)


def _freeze(value):
    """Hashable copy of channel parameters (lists -> tuples, dicts -> sorted pairs)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _check_channel_params(channel, channel_params):
    """Validated channel-layer parameters as a hashable tuple of ``(name, value)`` pairs."""
    if channel_params is None or (isinstance(channel_params, (dict, tuple)) and
                                  len(channel_params) == 0):
        return ()
    if isinstance(channel_params, tuple):  # already frozen
        channel_params = dict(channel_params)
    if not isinstance(channel_params, dict):
        raise ValueError(f"channel_params must be a dict or None, got {channel_params!r}")
    if channel not in GENIE_CHANNELS:
        raise ValueError(f"Channel {channel!r} takes no parameters, got {channel_params!r}; "
                         f"only the OFDM/MIMO links ({', '.join(GENIE_CHANNELS)}) do")
    from .config import validate_channel_config  # pylint: disable=import-outside-toplevel
    _, params = validate_channel_config(channel, channel_params)
    return _freeze(params)


@functools.lru_cache(maxsize=16)
def _channel_runner(channel, params):
    """An OFDM/MIMO channel layer and its traced call (shared by the links of every MCS).

    Output: ``(layer, fn)`` with ``fn(z [batch_size, num_symbols] complex64, snr_db scalar
    float32) -> (z_hat, no_eff)``, a `tf.function` traced once.
    """
    layer = get_channel(channel, **dict(params))
    spec = [tf.TensorSpec([None, None], tf.complex64), tf.TensorSpec([], tf.float32)]

    def run(z, snr_db):
        return layer(z, snr_db)
    return layer, tf.function(run, input_signature=spec)


def _returns_mmse_estimate(channel, layer):
    """Whether a channel layer returns the biased (LMMSE) estimate and its MSE.

    AWGN (``y``), ZF and ``unbiased=True`` OFDM/MIMO outputs are unbiased.
    """
    if channel == "awgn":
        return False
    if channel in THRESHOLD_CHANNELS:
        return True
    params = layer.params
    return params["equalizer"] == "lmmse" and not params["unbiased"]


def _unbiased(z_hat, no_eff, mmse_estimate):
    r"""Unbiased symbol estimates and their noise variance, the demapper's input.

    For an MMSE estimate ``z_hat = a x + e'`` with ``a = 1 - no_eff`` the
    unbiased estimate is ``z_hat / a`` with noise variance ``no_eff / a``
    (module docstring); unbiased inputs are returned unchanged.
    """
    if not mmse_estimate:
        return z_hat, no_eff
    a = tf.maximum(1.0 - no_eff, 1e-12)
    return z_hat / tf.complex(a, tf.zeros_like(a)), no_eff / a


class LDPCQAMLink(Block):
    r"""5G LDPC + QAM link over the JSCC channel layers, with CRC-based block-error detection.

    See the module docstring for the processing chain and LLR convention.

    Parameters
    ----------
    num_bits_per_symbol : `int`
        QAM order ``Qm`` (2, 4, 6, 8)

    coderate : `float`
        Target LDPC code rate in (0, 0.95]; rates below 1/5 use repetition

    channel : "awgn" (default) | `str`, one of :data:`LINK_CHANNELS`
        Channel layer of :mod:`phy.channels` ("rayleigh" = fast fading), or an
        OFDM / MIMO link of :data:`GENIE_CHANNELS` (:mod:`phy.ofdm`,
        :mod:`phy.mimo`)

    n : `None` (default) | `int`
        Codeword length [bits], a multiple of ``num_bits_per_symbol``. `None`
        uses :func:`default_block_size`. Otherwise the LDPC information
        length is ``round(coderate * n)`` (24 CRC bits included, 36 ... 8448).

    num_iter : `int`, (default 20)
        LDPC belief-propagation iterations

    channel_params : `None` (default) | `dict`
        Parameters of an OFDM / MIMO channel layer (as in a channel
        configuration file, :func:`phy.load_channel_config`), e.g.
        ``{"model": "C", "estimator": "ls-lin"}``; the other channels take none

    Input
    -----
    b : [batch_size, num_payload_bits], `tf.float32`
        Payload bits of ``batch_size`` code blocks (0/1)

    snr_db : Scalar, `tf.float32`
        (Average) SNR per channel use [dB]

    Output
    ------
    b_hat : [batch_size, num_payload_bits], `tf.float32`
        Decoded payload bits

    crc_ok : [batch_size], `tf.bool`
        `True` where the block passed its CRC check

    In :meth:`call` every code block is one channel example (its own
    fading realization for "rayleigh-block", its own slots for OFDM);
    :meth:`transmit` sends a whole bitstream as one example.
    """

    def __init__(self, num_bits_per_symbol, coderate, channel="awgn", n=None, num_iter=20,
                 channel_params=None):
        super().__init__(precision=_PRECISION)
        _check_qm_rate(num_bits_per_symbol, coderate)
        key = channel.lower() if isinstance(channel, str) else channel
        if key not in LINK_CHANNELS:
            raise ValueError(
                f"Unknown channel {channel!r} for LDPCQAMLink; valid channels: "
                f"{', '.join(LINK_CHANNELS)}")
        params = _check_channel_params(key, channel_params)
        if n is None:
            k, n = default_block_size(num_bits_per_symbol, coderate)
        else:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0 \
                    or n % num_bits_per_symbol:
                raise ValueError(
                    f"n must be a positive multiple of num_bits_per_symbol={num_bits_per_symbol}, "
                    f"got {n!r}")
            k = int(round(coderate * n))
        if not _CRC_LENGTH + 12 <= k <= 8448:
            raise ValueError(
                f"LDPC information length k = round(coderate * n) = {k} is outside the 5G range "
                f"[{_CRC_LENGTH + 12}, 8448] (n={n}, coderate={coderate})")
        self._num_bits_per_symbol = int(num_bits_per_symbol)
        self._target_coderate = float(coderate)
        self._channel_name = key
        self._channel_params = dict(params)
        self._k = int(k)
        self._n = int(n)
        self._num_iter = int(num_iter)
        # mother code: Sionna's encoder supports rates >= 1/5; lower rates repeat it
        self._n_mother = min(self._n, int(math.floor(self._k / _MIN_RATE)))
        self._crc_encoder = CRCEncoder(_CRC, precision=_PRECISION)
        self._crc_decoder = CRCDecoder(self._crc_encoder, precision=_PRECISION)
        self._encoder = LDPC5GEncoder(self._k, self._n_mother, precision=_PRECISION)
        self._decoder = LDPC5GDecoder(self._encoder, hard_out=True, return_infobits=True,
                                      num_iter=self._num_iter, precision=_PRECISION)
        self._mapper = Mapper("qam", self._num_bits_per_symbol, precision=_PRECISION)
        self._demapper = Demapper("app", "qam", self._num_bits_per_symbol, precision=_PRECISION)
        if key in GENIE_CHANNELS:
            # one traced channel graph per (channel, params), shared by every MCS
            self._channel, self._channel_fn = _channel_runner(key, params)
        else:
            self._channel = get_channel(key)
            self._channel_fn = self._channel
        self._mmse_estimate = _returns_mmse_estimate(key, self._channel)
        self._rep_ind = tf.constant(np.arange(self._n) % self._n_mother, tf.int32)
        perm, perm_inv = _output_interleaver(self._n, self._num_bits_per_symbol)
        self._perm = tf.constant(perm, tf.int32)
        self._perm_inv = tf.constant(perm_inv, tf.int32)
        # fixed scrambling sequence (known to the receiver): keeps the QAM symbols
        # unit-power and uniform even for zero padding and structured headers
        scr = np.random.default_rng(0x5EED).integers(0, 2, self._n)
        self._scrambler = tf.constant(scr, tf.float32)
        self._llr_sign = tf.constant(1.0 - 2.0 * scr, tf.float32)
        spec = [tf.TensorSpec([None, self.num_payload_bits], tf.float32),
                tf.TensorSpec([], tf.float32)]
        self._run_blocks = tf.function(functools.partial(self._forward, one_example=False),
                                       input_signature=spec)
        self._run_stream = tf.function(functools.partial(self._forward, one_example=True),
                                       input_signature=spec + [tf.TensorSpec([], tf.int32)])

    # -- properties ---------------------------------------------------------
    @property
    def num_bits_per_symbol(self):
        """`int` : QAM order ``Qm``"""
        return self._num_bits_per_symbol

    @property
    def coderate(self):
        """`float` : Actual LDPC code rate ``k / n`` (CRC bits count as information)"""
        return self._k / self._n

    @property
    def k(self):
        """`int` : LDPC information bits per codeword (payload + 24 CRC bits)"""
        return self._k

    @property
    def n(self):
        """`int` : Coded bits per codeword"""
        return self._n

    @property
    def num_payload_bits(self):
        """`int` : User (payload) bits per codeword, ``k - 24``"""
        return self._k - _CRC_LENGTH

    @property
    def num_symbols(self):
        """`int` : Complex channel uses per codeword, ``n / Qm``"""
        return self._n // self._num_bits_per_symbol

    @property
    def num_repetitions(self):
        """`float` : ``n / n_mother`` (> 1 if the rate is below 1/5)"""
        return self._n / self._n_mother

    @property
    def channel_name(self):
        """`str` : Channel type"""
        return self._channel_name

    @property
    def channel_params(self):
        """`dict` : Parameters of the channel layer (OFDM / MIMO links)"""
        return dict(self._channel_params)

    @property
    def channel(self):
        """`keras.layers.Layer` : The :mod:`phy.channels` layer"""
        return self._channel

    # -- processing ---------------------------------------------------------
    def _equalized(self, z_hat, no_eff):
        """Unbiased symbol estimates and their noise variance (see module docstring)."""
        return _unbiased(z_hat, no_eff, self._mmse_estimate)

    def _forward(self, b, snr_db, num_symbols=0, *, one_example):
        batch_size = tf.shape(b)[0]
        c = self._encoder(self._crc_encoder(b))                 # [B, n_mother]
        if self._n != self._n_mother:
            c = tf.gather(c, self._rep_ind, axis=1)             # [B, n]
        c = tf.gather(c, self._perm, axis=1)
        c = tf.abs(c - self._scrambler)                         # XOR
        x = self._mapper(c)                                     # [B, n/Qm]
        if one_example:  # one stream, zero-padded to num_symbols channel uses
            x = tf.reshape(x, [1, -1])
            used = tf.shape(x)[1]
            x = tf.pad(x, [[0, 0], [0, tf.maximum(num_symbols - used, 0)]])
            z_hat, no_eff = self._channel_fn(x, snr_db)
            z_hat, no_eff = z_hat[:, :used], no_eff[:, :used]
        else:
            z_hat, no_eff = self._channel_fn(x, snr_db)
        z_hat = tf.reshape(z_hat, [batch_size, self.num_symbols])
        no_eff = tf.reshape(no_eff, [batch_size, self.num_symbols])
        y, no = self._equalized(z_hat, no_eff)
        llr = self._demapper(y, no) * self._llr_sign            # [B, n]
        llr = tf.gather(llr, self._perm_inv, axis=1)
        if self._n != self._n_mother:                           # combine repetitions
            llr = tf.transpose(tf.math.unsorted_segment_sum(
                tf.transpose(llr), self._rep_ind, self._n_mother))
        c_hat = self._decoder(llr)                              # [B, k]
        b_hat, crc_ok = self._crc_decoder(c_hat)
        return b_hat, tf.reshape(crc_ok, [batch_size])

    def call(self, b, snr_db):  # pylint: disable=arguments-differ
        b = tf.convert_to_tensor(b, tf.float32)
        if b.shape.rank != 2 or b.shape[-1] != self.num_payload_bits:
            raise ValueError(
                f"b must have shape [batch_size, {self.num_payload_bits}], got {b.shape}")
        return self._run_blocks(b, tf.cast(snr_db, tf.float32))

    def transmit(self, bits, snr_db, num_symbols=None):
        """Sends a bitstream of any length as one channel example.

        The bits are split into ``ceil(L / num_payload_bits)`` code blocks, the
        last one zero-padded (the receiver knows ``L``). All blocks go through
        the channel as a single example: one fading realization for
        "rayleigh-block" (one image = one block-fading realization), one
        stream of consecutive slots for OFDM.

        Input
        -----
        bits : [L], array of 0/1 (any integer/bool/float dtype), ``L >= 1``
            Bitstream

        snr_db : `float`
            (Average) SNR [dB]

        num_symbols : `None` (default) | `int`
            If given, the symbol stream is padded with zero symbols (empty
            channel uses) to this length before the channel, e.g. to the
            ``k`` channel uses of an image, so that the channel realization
            does not depend on the number of code blocks. Must be at least
            ``num_blocks * num_symbols``.

        Output
        ------
        bits_hat : [L], `np.uint8`
            Decoded bits (hard decisions, also for failed blocks)

        crc_ok : [num_blocks], `np.bool_`
            CRC status of each code block

        block_errors : [num_blocks], `np.bool_`
            Genie block errors (decoded payload differs from the sent one)
        """
        bits = np.asarray(bits).reshape(-1).astype(np.float32)
        if bits.size == 0:
            raise ValueError("bits must contain at least one bit")
        if np.any((bits != 0) & (bits != 1)):
            raise ValueError("bits must contain only 0 and 1")
        num_blocks = -(-bits.size // self.num_payload_bits)
        padded = np.zeros(num_blocks * self.num_payload_bits, np.float32)
        padded[:bits.size] = bits
        blocks = padded.reshape(num_blocks, self.num_payload_bits)
        used = num_blocks * self.num_symbols
        if num_symbols is None:
            num_symbols = used
        elif isinstance(num_symbols, bool) or not isinstance(num_symbols, (int, np.integer)) \
                or num_symbols < used:
            raise ValueError(f"num_symbols must be an integer >= {used} (the {num_blocks} code "
                             f"blocks' channel uses), got {num_symbols!r}")
        b_hat, crc_ok = self._run_stream(tf.constant(blocks), tf.constant(snr_db, tf.float32),
                                         tf.constant(int(num_symbols), tf.int32))
        b_hat = b_hat.numpy()
        block_errors = np.any(b_hat != blocks, axis=1)
        return (b_hat.reshape(-1)[:bits.size].astype(np.uint8), crc_ok.numpy().astype(bool),
                block_errors)


@functools.lru_cache(maxsize=64)
def _cached_link(num_bits_per_symbol, r_1024, channel, params=()):
    return LDPCQAMLink(num_bits_per_symbol, r_1024 / 1024.0, channel=channel,
                       channel_params=dict(params))


def _check_link_channel(channel):
    key = channel.lower() if isinstance(channel, str) else channel
    if key not in LINK_CHANNELS:
        raise ValueError(
            f"Unknown channel {channel!r}; valid channels: {', '.join(LINK_CHANNELS)}")
    return "rayleigh" if key == "rayleigh-fast" else key


def get_link(mcs, channel="awgn", table=1, channel_params=None):
    """The (cached) :class:`LDPCQAMLink` of an MCS with the default block size.

    Input
    -----
    mcs : `int` | :class:`MCS`
        MCS index (of ``table``) or MCS

    channel : "awgn" (default) | `str`, one of :data:`LINK_CHANNELS`

    table : 1 (default) | 2

    channel_params : `None` (default) | `dict`
        OFDM / MIMO layer parameters (see :class:`LDPCQAMLink`)

    Output
    ------
    link : :class:`LDPCQAMLink`
    """
    mcs = get_mcs(mcs, table)
    channel = _check_link_channel(channel)
    return _cached_link(mcs.num_bits_per_symbol, mcs.r_1024, channel,
                        _check_channel_params(channel, channel_params))


def _check_k(k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k (complex channel uses) must be a non-negative integer, got {k!r}")
    return int(k)


def max_payload_bits(k, mcs, table=1):
    """Payload bits that ``k`` complex channel uses carry at an MCS.

    ``floor(k / (n / Qm))`` whole codewords of the default block size times
    the payload bits per codeword (``k_ldpc - 24``). The coded bits sent,
    ``num_codewords * n``, never exceed ``k * Qm``.

    Input
    -----
    k : `int`
        Complex channel uses available (``CBR * 3 * H * W`` for an image)

    mcs : `int` | :class:`MCS`
        MCS index (of ``table``) or MCS

    table : 1 (default) | 2

    Output
    ------
    bits : `int`
    """
    k = _check_k(k)
    mcs = get_mcs(mcs, table)
    k_ldpc, n = default_block_size(mcs.num_bits_per_symbol, mcs.coderate)
    return (k // (n // mcs.num_bits_per_symbol)) * (k_ldpc - _CRC_LENGTH)


def fallback_image(shape):
    """What the receiver shows when a code block fails: a mid-gray image.

    Input
    -----
    shape : `tuple`
        ``(H, W, 3)``

    Output
    ------
    image : [H, W, 3], `np.uint8`
        All pixels 128
    """
    return np.full(shape, 128, np.uint8)


def _psnr(x, x_hat):
    mse = np.mean((x.astype(np.float64) - x_hat.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def _result(image, image_hat, status, **info):
    out = {"image": image_hat, "psnr": _psnr(image, image_hat), "status": status,
           "success": status == "ok"}
    out.update(info)
    return out


def transmit_image(image, codec, k, snr_db, mcs, channel="awgn", seed=None, table=1,
                   channel_params=None):
    """Sends an image through codec + LDPC + QAM at a fixed MCS.

    Rate control picks the best codec quality whose bitstream fits
    :func:`max_payload_bits`; the bitstream goes through
    :meth:`LDPCQAMLink.transmit` (one channel example); if every code block
    passes its CRC, the codec decodes the received bitstream, otherwise the
    result is :func:`fallback_image`. On the OFDM / MIMO links
    (:data:`GENIE_CHANNELS`) the symbol stream is zero-padded to the ``k``
    channel uses, so the channel realization of a seed is the same for every
    MCS.

    Input
    -----
    image : [H, W, 3], `np.uint8`
        RGB image

    codec : `str` | :class:`~phy.image_codecs.ImageCodec`
        Codec name (see :func:`phy.image_codecs.available_codecs`)

    k : `int`
        Complex channel uses for the image (``CBR * 3 * H * W``)

    snr_db : `float`
        (Average) SNR [dB]

    mcs : `int` | :class:`MCS`
        MCS index of ``table`` or MCS

    channel : "awgn" (default) | `str`, one of :data:`LINK_CHANNELS`

    seed : `None` (default) | `int`
        If given, :func:`fqliscs_tf.utils.set_seed` is called first (global
        seeding of Python, NumPy, TF and Sionna)

    table : 1 (default) | 2
        MCS table for an integer ``mcs``

    channel_params : `None` (default) | `dict`
        OFDM / MIMO layer parameters (see :class:`LDPCQAMLink`)

    Output
    ------
    : `dict` with
        image : [H, W, 3], `np.uint8` -- reconstruction (fallback on failure);
        psnr : `float` [dB]; status : "ok" | "block_error"; success : `bool`;
        codec, quality, num_bytes, mcs (:class:`MCS`), snr_db, channel, k,
        max_payload_bits, payload_bits (``8 num_bytes``), num_blocks,
        coded_bits (``num_blocks n``), channel_uses (``num_blocks n / Qm``),
        crc_failures, block_errors (genie), codec_psnr (PSNR of the codec
        output before the channel).

    Raises
    ------
    phy.image_codecs.BudgetTooSmallError
        If no codec output fits the payload at this MCS
    ValueError
        Unknown codec, MCS, table or channel, malformed image or ``k``
    """
    mcs = get_mcs(mcs, table)
    codec = get_codec(codec)
    k = _check_k(k)
    channel = _check_link_channel(channel)
    params = _check_channel_params(channel, channel_params)
    snr_db = float(snr_db)
    if seed is not None:
        from fqliscs_tf.utils import set_seed
        set_seed(seed)
    budget = max_payload_bits(k, mcs)
    if budget < 8:
        raise BudgetTooSmallError(
            f"k={k} channel uses carry no whole codeword at MCS {mcs.index} (table {mcs.table}): "
            f"a codeword needs {get_link(mcs, channel, channel_params=params).num_symbols} "
            "channel uses")
    coded = rate_control(image, codec, budget // 8)
    return _send_image(image, codec, coded, k, snr_db, mcs, channel, params,
                       pad=channel in GENIE_CHANNELS)


def _send_image(image, codec, coded, k, snr_db, mcs, channel, params, pad):
    """Sends a rate-controlled bitstream (``coded``, a ``RateControlResult``); see
    :func:`transmit_image`. ``pad``: pad the symbol stream to ``k`` channel uses. The
    random state is used as it is (seed before)."""
    data, quality, decoded = coded
    budget = max_payload_bits(k, mcs)
    link = get_link(mcs, channel, channel_params=params)
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    pad_to = k if pad else None
    bits_hat, crc_ok, block_errors = link.transmit(bits, snr_db, num_symbols=pad_to)
    info = dict(codec=codec.name, quality=quality, num_bytes=len(data), mcs=mcs, snr_db=snr_db,
                channel=channel, k=k, max_payload_bits=budget, payload_bits=8 * len(data),
                num_blocks=len(crc_ok), coded_bits=len(crc_ok) * link.n,
                channel_uses=len(crc_ok) * link.num_symbols,
                crc_failures=int(np.sum(~crc_ok)), block_errors=int(np.sum(block_errors)),
                codec_psnr=_psnr(image, decoded))
    image = np.asarray(image)
    if not np.all(crc_ok):
        return _result(image, fallback_image(image.shape), "block_error", **info)
    received = np.packbits(bits_hat).tobytes()
    if received == data:
        return _result(image, decoded, "ok", **info)
    try:  # CRC passed but bits differ (undetected error, ~2^-24 per failed block)
        image_hat = codec.decode(received)
        if image_hat.shape != image.shape:
            raise ValueError("shape mismatch")
    except Exception:  # pylint: disable=broad-except
        return _result(image, fallback_image(image.shape), "block_error", **info)
    return _result(image, image_hat, "ok", **info)


# ---------------------------------------------------------------------------
# MCS thresholds and the ideal adaptive mode
# ---------------------------------------------------------------------------

def _threshold_channel(channel):
    """Threshold-table channel for a link channel ("rayleigh-block" uses "awgn" with CSIT)."""
    channel = _check_link_channel(channel)
    if channel in GENIE_CHANNELS:
        raise ValueError(
            f"Channel {channel!r} has no MCS threshold table (frequency-selective / MIMO link); "
            "its adaptive MCS is the genie search, see transmit_image_genie")
    return "awgn" if channel == "rayleigh-block" else channel


@functools.lru_cache(maxsize=4)
def _load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_mcs_thresholds(path=None):
    """Loads a threshold table written by :func:`measure_mcs_thresholds`.

    Input
    -----
    path : `None` (default) | `str`
        JSON file; `None` = ``phy/data/mcs_thresholds.json``

    Output
    ------
    table : `dict`
        ``{"meta": {...}, "thresholds": {channel: {"Qm/R_1024": entry}}}``;
        ``entry["threshold_db"]`` is the SNR [dB] (or `None` if not reached)
    """
    path = _THRESHOLDS_PATH if path is None else os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"MCS threshold table {path!r} not found; create it with "
            "phy.separation.measure_mcs_thresholds(path=...)")
    return _load_json(os.path.abspath(path))


def mcs_threshold_db(mcs, channel="awgn", thresholds=None, table=1):
    """Measured SNR threshold [dB] of an MCS (`None` if never error-free in the search range).

    Input
    -----
    mcs : `int` | :class:`MCS`
    channel : "awgn" (default) | "rayleigh" | "rayleigh-fast"
        ("rayleigh-block" reads the AWGN table: instantaneous SNR)
    thresholds : `None` (default) | `dict` | `str`
        Table (or its path); `None` = the stored table
    table : 1 (default) | 2

    Output
    ------
    snr_db : `float` | `None`
    """
    mcs = get_mcs(mcs, table)
    if not isinstance(thresholds, dict):
        thresholds = load_mcs_thresholds(thresholds)
    entries = thresholds["thresholds"].get(_threshold_channel(channel))
    if entries is None or mcs.key not in entries:
        raise ValueError(
            f"The threshold table has no entry for MCS {mcs.key} on channel {channel!r}")
    return entries[mcs.key]["threshold_db"]


def error_free_mcs(snr_db, channel="awgn", table=1, thresholds=None, margin_db=0.0):
    """MCSs whose measured threshold is ``<= snr_db - margin_db``.

    Output
    ------
    mcs_list : `list` of :class:`MCS` (possibly empty)
    """
    snr_db = float(snr_db)
    if not isinstance(thresholds, dict):
        thresholds = load_mcs_thresholds(thresholds)
    out = []
    for mcs in _all_mcs(table):
        th = mcs_threshold_db(mcs, channel, thresholds)
        if th is not None and th + margin_db <= snr_db:
            out.append(mcs)
    return out


def select_mcs(k, snr_db, channel="awgn", table=1, thresholds=None, margin_db=0.0):
    """The error-free MCS carrying the most payload bits in ``k`` channel uses.

    Ties go to the lower threshold. For "rayleigh-block" pass the
    instantaneous SNR (``snr_db + 10 log10 |h|^2``).

    Output
    ------
    mcs : :class:`MCS` | `None`
        `None` if no MCS is error-free at ``snr_db`` or none fits a codeword
    """
    k = _check_k(k)
    if not isinstance(thresholds, dict):
        thresholds = load_mcs_thresholds(thresholds)
    best, best_key = None, None
    for mcs in error_free_mcs(snr_db, channel, table, thresholds, margin_db):
        bits = max_payload_bits(k, mcs)
        if bits <= 0:
            continue
        key = (bits, -mcs_threshold_db(mcs, channel, thresholds))
        if best_key is None or key > best_key:
            best, best_key = mcs, key
    return best


def _peek_block_gain(channel_layer, snr_db):
    """|h|^2 that the next call of a block-fading channel layer will apply (ideal CSIT).

    Draws one realization from Sionna's global generator and restores its
    state, so the next channel call (whose first draw is ``h``) sees the same ``h``.
    """
    rng = sionna.phy.config.tf_rng
    state = tf.identity(rng.state)
    _, _, h = channel_layer(tf.ones([1, 1], tf.complex64), snr_db, return_channel=True)
    rng.reset(state)
    return float(np.abs(h.numpy()[0, 0]) ** 2)


def transmit_image_adaptive(image, codec, k, snr_db, channel="awgn", seed=None, table=1,
                            thresholds=None, margin_db=0.0, channel_params=None, window_db=3.0):
    """Sends an image with the ideal adaptive MCS (the best error-free MCS at this SNR).

    The MCS is :func:`select_mcs` at ``snr_db`` (for "rayleigh-block": at the
    instantaneous SNR ``snr_db + 10 log10 |h|^2``, ideal CSIT), then
    :func:`transmit_image` simulates the transmission at that MCS. The OFDM /
    MIMO links (:data:`GENIE_CHANNELS`) have no threshold table: there this is
    :func:`transmit_image_genie` (``margin_db`` must be 0).

    Input
    -----
    image, codec, k, snr_db, channel, seed, table, channel_params :
        As in :func:`transmit_image`
    thresholds : `None` (default) | `dict` | `str`
        Threshold table (or its path); `None` = the stored table
    margin_db : `float`, (default 0.)
        Extra SNR margin required above an MCS threshold [dB]
    window_db : `float`, (default 3.)
        Search window of :func:`transmit_image_genie` [dB] (OFDM / MIMO only)

    Output
    ------
    : `dict`
        As :func:`transmit_image`, plus ``snr_select_db`` (SNR used for the
        MCS choice). When nothing can be sent, ``image`` is the
        :func:`fallback_image`, ``mcs`` is `None`, ``success`` is `False` and
        ``status`` is "no_error_free_mcs" (SNR below every threshold, or no
        error-free MCS fits one codeword in ``k``) or "budget_too_small" (the
        best error-free MCS cannot carry the smallest codec output).
    """
    codec = get_codec(codec)
    k = _check_k(k)
    channel = _check_link_channel(channel)
    if channel in GENIE_CHANNELS:
        if margin_db:
            raise ValueError(f"margin_db applies to the threshold tables only; channel "
                             f"{channel!r} uses the genie search (margin_db must be 0)")
        return transmit_image_genie(image, codec, k, snr_db, channel, seed=seed, table=table,
                                    channel_params=channel_params, window_db=window_db,
                                    thresholds=thresholds)
    _check_channel_params(channel, channel_params)
    snr_db = float(snr_db)
    image = np.asarray(image)
    if seed is not None:
        from fqliscs_tf.utils import set_seed
        set_seed(seed)
    snr_select = snr_db
    if channel == "rayleigh-block":
        gain = _peek_block_gain(get_channel(channel), snr_db)
        snr_select = snr_db + 10.0 * np.log10(max(gain, 1e-30))
    mcs = select_mcs(k, snr_select, channel, table, thresholds, margin_db)
    empty = dict(codec=codec.name, quality=None, num_bytes=0, mcs=None, snr_db=snr_db,
                 channel=channel, k=k, max_payload_bits=0, payload_bits=0, num_blocks=0,
                 coded_bits=0, channel_uses=0, crc_failures=0, block_errors=0,
                 codec_psnr=None, snr_select_db=snr_select)
    if mcs is None:
        return _result(image, fallback_image(image.shape), "no_error_free_mcs", **empty)
    try:
        out = transmit_image(image, codec, k, snr_db, mcs, channel, seed=None)
    except BudgetTooSmallError:
        empty.update(mcs=mcs, max_payload_bits=max_payload_bits(k, mcs))
        return _result(image, fallback_image(image.shape), "budget_too_small", **empty)
    out["snr_select_db"] = snr_select
    return out


def _effective_noise(k, snr_db, channel, params):
    """Per-symbol noise variance of the unbiased equalized estimates [k] for the next channel
    call (a pass of ``k`` zero symbols through the shared channel graph; the random state
    is consumed, reseed before the transmission)."""
    layer, fn = _channel_runner(channel, params)
    z_hat, no_eff = fn(tf.zeros([1, k], tf.complex64), tf.constant(snr_db, tf.float32))
    _, sigma2 = _unbiased(z_hat, no_eff, _returns_mmse_estimate(channel, layer))
    return sigma2.numpy()[0].astype(np.float64)


def transmit_image_genie(image, codec, k, snr_db, channel, seed=None, table=1,
                         channel_params=None, window_db=3.0, thresholds=None):
    r"""Sends an image with the genie adaptive MCS: the best MCS that decodes on this realization.

    For the OFDM / MIMO links (:data:`GENIE_CHANNELS`), which have no MCS
    threshold table; it also runs on the other link channels (for comparison
    with the threshold-table mode). Every candidate MCS is sent
    by :func:`transmit_image` on the **same** channel and noise realization
    (seed ``seed`` before each try; the symbol stream is always padded to the
    ``k`` channel uses, so the draws do not depend on the MCS). The result is
    the first candidate whose code blocks all pass their CRC, trying the
    candidates by payload (:func:`max_payload_bits`, largest first). MCSs with
    the same payload carry the same codec bitstream (the same image), so
    within a payload the most robust MCS (lowest spectral efficiency) is tried
    first, and the next payload only after all of them failed. The result is
    thus the envelope of the fixed-MCS results (``mcs=I``, same seed) over the
    candidates: an **upper bound** on any real link adaptation, which does not
    know the realization.

    Candidates (to keep the cost down): MCSs that fit a whole codeword in
    ``k``, whose AWGN threshold (stored table) is at most
    ``snr_eff_db + window_db``. ``snr_eff_db`` is computed from the
    realization: the per-symbol SINR ``1 / Var(e)`` of the unbiased equalized
    estimates (:func:`_effective_noise`), averaged over each codeword of the
    MCS, minimum over its codewords, in dB. A codeword cannot beat an AWGN
    channel at its average SINR (the mutual information is concave in the
    SNR), so MCSs above the window are assumed to fail; ``window_db``
    (default 3 dB) covers the threshold measurement and finite-length
    effects. ``window_db=math.inf`` tries every MCS (the exact envelope).
    On the other channels ``snr_eff_db`` is ``snr_db`` ("awgn", "rayleigh":
    the average SNR) or the block SNR ``|h|^2 SNR`` ("rayleigh-block").

    Input
    -----
    image : [H, W, 3], `np.uint8`
        RGB image

    codec : `str` | :class:`~phy.image_codecs.ImageCodec` | `list` of them
        Codec, or several: for each payload the codec with the highest PSNR
        within it (a choice the transmitter can make)

    k, snr_db, channel, table, channel_params :
        As in :func:`transmit_image`

    seed : `None` (default) | `int`
        Seed of the realization (:func:`fqliscs_tf.utils.set_seed` before
        each try); `None` draws one from NumPy's global generator

    window_db : `float`, (default 3.)
        Search window above ``snr_eff_db`` [dB], ``>= 0`` (may be ``inf``)

    thresholds : `None` (default) | `dict` | `str`
        Threshold table (or its path) for the window; `None` = the stored table

    Output
    ------
    : `dict`
        As :func:`transmit_image` for the kept MCS, plus ``snr_eff_db`` (of
        that MCS), ``window_db`` and ``genie_tries`` (``[(mcs index,
        status), ...]`` in the order tried). If no candidate decodes,
        ``image`` is the :func:`fallback_image`, ``mcs`` is `None` and
        ``status`` is "no_error_free_mcs" (no candidate, or all failed) or
        "budget_too_small" (no codec output fits the largest payload still
        to try).
    """
    from fqliscs_tf.utils import set_seed
    codecs = [get_codec(c) for c in (codec if isinstance(codec, (list, tuple)) else [codec])]
    if not codecs:
        raise ValueError("codec must name at least one codec")
    k = _check_k(k)
    channel = _check_link_channel(channel)
    params = _check_channel_params(channel, channel_params)
    snr_db = float(snr_db)
    window_db = float(window_db)
    if not window_db >= 0.0:
        raise ValueError(f"window_db must be >= 0 (or inf), got {window_db!r}")
    image = np.asarray(image)
    if not isinstance(thresholds, dict):
        thresholds = load_mcs_thresholds(thresholds)
    if seed is None:
        seed = int(np.random.randint(0, 2 ** 31 - 1))
    empty = dict(codec=codecs[0].name if len(codecs) == 1 else None, quality=None, num_bytes=0,
                 mcs=None, snr_db=snr_db, channel=channel, k=k, max_payload_bits=0,
                 payload_bits=0, num_blocks=0, coded_bits=0, channel_uses=0, crc_failures=0,
                 block_errors=0, codec_psnr=None, snr_eff_db=None, window_db=window_db,
                 genie_tries=[])

    # candidates, grouped by payload
    sinr, groups = None, {}
    for mcs in _all_mcs(table):
        payload = max_payload_bits(k, mcs)
        threshold = mcs_threshold_db(mcs, "awgn", thresholds)
        if payload < 8 or threshold is None:
            continue
        if sinr is None:
            set_seed(seed)
            if channel in GENIE_CHANNELS:
                sinr = 1.0 / np.maximum(_effective_noise(k, snr_db, channel, params), 1e-30)
            elif channel == "rayleigh-block":  # the realization's |h|^2 SNR
                gain = _peek_block_gain(get_link(mcs, channel).channel, snr_db)
                sinr = np.full(k, gain * 10.0 ** (snr_db / 10.0))
            else:  # AWGN; fast Rayleigh: the average SNR
                sinr = np.full(k, 10.0 ** (snr_db / 10.0))
        ns = default_block_size(mcs.num_bits_per_symbol, mcs.coderate)[1] \
            // mcs.num_bits_per_symbol
        means = sinr[:(k // ns) * ns].reshape(k // ns, ns).mean(axis=1)
        snr_eff = float(10.0 * np.log10(np.min(means)))
        if threshold <= snr_eff + window_db:
            groups.setdefault(payload, []).append((mcs.spectral_efficiency, mcs, snr_eff))

    tries = []
    status = "no_error_free_mcs"
    for payload in sorted(groups, reverse=True):
        codec, coded = best_fit(image, codecs, lambda c: rate_control(image, c, payload // 8))
        if codec is None:  # smaller payloads do not fit either
            status = "budget_too_small"
            break
        for _, mcs, snr_eff in sorted(groups[payload], key=lambda g: (g[0], g[1].index)):
            set_seed(seed)
            out = _send_image(image, codec, coded, k, snr_db, mcs, channel, params, pad=True)
            tries.append((mcs.index, out["status"]))
            if out["success"]:
                out.update(snr_eff_db=snr_eff, window_db=window_db, genie_tries=tries)
                return out
    empty["genie_tries"] = tries
    return _result(image, fallback_image(image.shape), status, **empty)


# ---------------------------------------------------------------------------
# Measuring the thresholds
# ---------------------------------------------------------------------------

def measure_bler(link, snr_db, num_blocks=200, batch_size=50, max_block_errors=10):
    """Monte-Carlo block error rate of a link (random payload, one example per block).

    Stops after ``num_blocks`` blocks or once ``max_block_errors`` block errors
    (genie: decoded payload differs) were seen.

    Output
    ------
    num_errors, num_blocks_simulated : `int`, `int`
    """
    source = BinarySource(precision=_PRECISION)
    errors = sent = 0
    while sent < num_blocks and errors < max_block_errors:
        bs = min(batch_size, num_blocks - sent)
        b = source([bs, link.num_payload_bits])
        b_hat, _ = link(b, snr_db)
        errors += int(tf.reduce_sum(tf.cast(tf.reduce_any(b != b_hat, axis=1), tf.int32)))
        sent += bs
    return errors, sent


def measure_mcs_thresholds(path=None, tables=(1, 2), channels=("awgn", "rayleigh"),
                           num_blocks=200, batch_size=50, max_block_errors=10, step_db=0.25,
                           max_snr_db=40.0, seed=1, pairs=None, verbose=True):
    """Measures the SNR threshold of every MCS and writes the table used by the adaptive mode.

    For each distinct (Qm, R) of the requested tables and each channel, with
    the default block size: start at the Shannon limit (on ``step_db`` grid) of
    the spectral efficiency ``Qm k/n`` for that channel (AWGN capacity or
    Rayleigh ergodic capacity), go up in 1 dB steps until a point has no
    block error in ``num_blocks`` blocks, then test the points ``step_db``,
    ``2 step_db``, ... above the last failing one. The threshold is the first
    SNR with **zero block errors in** ``num_blocks`` **blocks** (BLER < 1.5 %
    with 95 % confidence for 200 blocks). Failing points stop after
    ``max_block_errors`` errors. Every code block is one channel example
    ("rayleigh": independent fading per symbol). The random state is reset
    with ``set_seed(seed)`` at the start of each channel.

    The stored ``phy/data/mcs_thresholds.json`` was made with the defaults
    (``measure_mcs_thresholds(path)``, run as one process per channel with
    one TF thread each, and the two outputs merged).

    Input
    -----
    path : `None` | `str`
        Output JSON; `None` = do not write
    tables : `tuple`, (default (1, 2))
    channels : `tuple`, (default ("awgn", "rayleigh"))
    num_blocks, batch_size, max_block_errors : `int`
    step_db, max_snr_db : `float` [dB]
    seed : `int`
    pairs : `None` (default) | iterable of ``(Qm, R_1024)``
        Measure only these (default: every MCS of ``tables``)
    verbose : `bool`

    Output
    ------
    table : `dict`
        As returned by :func:`load_mcs_thresholds`; each entry also holds
        the measured points ``[[snr_db, errors, blocks], ...]``.
    """
    from fqliscs_tf.utils import provenance, set_seed
    if pairs is None:
        pairs = {(m.num_bits_per_symbol, m.r_1024) for t in tables for m in _all_mcs(t)}
    pairs = sorted((int(qm), float(r)) for qm, r in pairs)
    out = {"meta": provenance(
        method=("threshold = lowest SNR on a step_db grid with zero block errors in num_blocks "
                "blocks; search from the Shannon limit in 1 dB steps, then refine"),
        num_blocks=num_blocks, batch_size=batch_size, max_block_errors=max_block_errors,
        step_db=step_db, seed=seed, crc=_CRC, decoder="LDPC5GDecoder boxplus-phi, 20 iter",
        demapper="app"), "thresholds": {}}
    for channel in channels:
        if _check_link_channel(channel) == "rayleigh-block":
            raise ValueError("'rayleigh-block' has no threshold table: the adaptive mode uses "
                             "the AWGN table at the instantaneous SNR (ideal CSIT)")
    for channel in channels:
        set_seed(seed)
        cap_channel = _threshold_channel(channel)
        entries = {}
        for qm, r in pairs:
            link = _cached_link(qm, r, cap_channel)
            start = snr_db_for_capacity(qm * link.coderate, cap_channel)
            start = math.floor(start / step_db) * step_db
            points = {}

            def run(s):
                s = round(s, 4)
                if s not in points:
                    points[s] = measure_bler(link, s, num_blocks, batch_size, max_block_errors)
                return points[s][0] == 0

            s, last_fail, threshold = start, None, None
            while s <= max_snr_db:
                if run(s):
                    threshold = s
                    break
                last_fail, s = s, s + 1.0
            if threshold is not None and last_fail is not None:
                s = last_fail + step_db
                while s < threshold - 1e-9:
                    if run(s):
                        threshold = s
                        break
                    s += step_db
            key = f"{qm}/{r:g}"
            entries[key] = {
                "num_bits_per_symbol": qm, "r_1024": r, "k": link.k, "n": link.n,
                "coderate": link.coderate, "shannon_limit_db": snr_db_for_capacity(
                    qm * link.coderate, cap_channel),
                "threshold_db": None if threshold is None else round(threshold, 4),
                "points": [[s_, e, b] for s_, (e, b) in sorted(points.items())]}
            if verbose:
                print(f"{channel:8s} Qm={qm} R={r:g}/1024 (k={link.k}, n={link.n}): "
                      f"threshold {entries[key]['threshold_db']} dB "
                      f"(Shannon {entries[key]['shannon_limit_db']:.2f} dB)", flush=True)
        out["thresholds"][cap_channel] = entries
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
        _load_json.cache_clear()
    return out
