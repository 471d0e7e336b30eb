# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
r"""Separation baseline: image codec + 5G NR LDPC + QAM on the JSCC channels.

The digital chain, per code block (all Sionna blocks in single precision)::

    payload bits -> CRC24B -> LDPC5GEncoder(k, n_mother) -> cyclic repetition to n
    -> 38.212 row-column bit interleaver (Qm rows) -> scrambling -> Mapper("qam")
    -> phy.channels AWGNChannel / RayleighChannel (perfect CSI, MMSE)
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
from .image_codecs import BudgetTooSmallError, get_codec, rate_control

__all__ = [
    "LINK_CHANNELS",
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
]

_PRECISION = "single"
_CRC = "CRC24B"
_CRC_LENGTH = 24
_MIN_RATE = 1.0 / 5.0  # lowest rate of Sionna's LDPC5GEncoder (no repetition)

#: Channel names accepted by the link ("rayleigh" = fast fading, as in phy.channels).
LINK_CHANNELS = ("awgn", "rayleigh", "rayleigh-fast", "rayleigh-block")

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


class LDPCQAMLink(Block):
    r"""5G LDPC + QAM link over the JSCC channel layers, with CRC-based block-error detection.

    See the module docstring for the processing chain and LLR convention.

    Parameters
    ----------
    num_bits_per_symbol : `int`
        QAM order ``Qm`` (2, 4, 6, 8)

    coderate : `float`
        Target LDPC code rate in (0, 0.95]; rates below 1/5 use repetition

    channel : "awgn" (default) | "rayleigh" | "rayleigh-fast" | "rayleigh-block"
        Channel layer of :mod:`phy.channels` ("rayleigh" = fast fading)

    n : `None` (default) | `int`
        Codeword length [bits], a multiple of ``num_bits_per_symbol``. `None`
        uses :func:`default_block_size`. Otherwise the LDPC information
        length is ``round(coderate * n)`` (24 CRC bits included, 36 ... 8448).

    num_iter : `int`, (default 20)
        LDPC belief-propagation iterations

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
    fading realization for "rayleigh-block"); :meth:`transmit` sends a whole
    bitstream as one example.
    """

    def __init__(self, num_bits_per_symbol, coderate, channel="awgn", n=None, num_iter=20):
        super().__init__(precision=_PRECISION)
        _check_qm_rate(num_bits_per_symbol, coderate)
        key = channel.lower() if isinstance(channel, str) else channel
        if key not in LINK_CHANNELS:
            raise ValueError(
                f"Unknown channel {channel!r} for LDPCQAMLink; valid channels: "
                f"{', '.join(LINK_CHANNELS)}")
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
        self._channel = get_channel(key)
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
                                       input_signature=spec)

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
    def channel(self):
        """`keras.layers.Layer` : The :mod:`phy.channels` layer"""
        return self._channel

    # -- processing ---------------------------------------------------------
    def _equalized(self, z_hat, no_eff):
        """Unbiased symbol estimates and their noise variance (see module docstring)."""
        if self._channel_name == "awgn":
            return z_hat, no_eff
        a = tf.maximum(1.0 - no_eff, 1e-12)
        return z_hat / tf.complex(a, tf.zeros_like(a)), no_eff / a

    def _forward(self, b, snr_db, one_example):
        batch_size = tf.shape(b)[0]
        c = self._encoder(self._crc_encoder(b))                 # [B, n_mother]
        if self._n != self._n_mother:
            c = tf.gather(c, self._rep_ind, axis=1)             # [B, n]
        c = tf.gather(c, self._perm, axis=1)
        c = tf.abs(c - self._scrambler)                         # XOR
        x = self._mapper(c)                                     # [B, n/Qm]
        if one_example:
            x = tf.reshape(x, [1, -1])
        z_hat, no_eff = self._channel(x, snr_db)
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

    def transmit(self, bits, snr_db):
        """Sends a bitstream of any length as one channel example.

        The bits are split into ``ceil(L / num_payload_bits)`` code blocks, the
        last one zero-padded (the receiver knows ``L``). All blocks go through
        the channel as a single example: one fading realization for
        "rayleigh-block" (one image = one block-fading realization).

        Input
        -----
        bits : [L], array of 0/1 (any integer/bool/float dtype), ``L >= 1``
            Bitstream

        snr_db : `float`
            (Average) SNR [dB]

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
        b_hat, crc_ok = self._run_stream(tf.constant(blocks), tf.constant(snr_db, tf.float32))
        b_hat = b_hat.numpy()
        block_errors = np.any(b_hat != blocks, axis=1)
        return (b_hat.reshape(-1)[:bits.size].astype(np.uint8), crc_ok.numpy().astype(bool),
                block_errors)


@functools.lru_cache(maxsize=64)
def _cached_link(num_bits_per_symbol, r_1024, channel):
    return LDPCQAMLink(num_bits_per_symbol, r_1024 / 1024.0, channel=channel)


def _check_link_channel(channel):
    key = channel.lower() if isinstance(channel, str) else channel
    if key not in LINK_CHANNELS:
        raise ValueError(
            f"Unknown channel {channel!r}; valid channels: {', '.join(LINK_CHANNELS)}")
    return "rayleigh" if key == "rayleigh-fast" else key


def get_link(mcs, channel="awgn", table=1):
    """The (cached) :class:`LDPCQAMLink` of an MCS with the default block size.

    Input
    -----
    mcs : `int` | :class:`MCS`
        MCS index (of ``table``) or MCS

    channel : "awgn" (default) | "rayleigh" | "rayleigh-fast" | "rayleigh-block"

    table : 1 (default) | 2

    Output
    ------
    link : :class:`LDPCQAMLink`
    """
    mcs = get_mcs(mcs, table)
    return _cached_link(mcs.num_bits_per_symbol, mcs.r_1024, _check_link_channel(channel))


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


def transmit_image(image, codec, k, snr_db, mcs, channel="awgn", seed=None, table=1):
    """Sends an image through codec + LDPC + QAM at a fixed MCS.

    Rate control picks the best codec quality whose bitstream fits
    :func:`max_payload_bits`; the bitstream goes through
    :meth:`LDPCQAMLink.transmit` (one channel example); if every code block
    passes its CRC, the codec decodes the received bitstream, otherwise the
    result is :func:`fallback_image`.

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

    channel : "awgn" (default) | "rayleigh" | "rayleigh-fast" | "rayleigh-block"

    seed : `None` (default) | `int`
        If given, :func:`fqliscs_tf.utils.set_seed` is called first (global
        seeding of Python, NumPy, TF and Sionna)

    table : 1 (default) | 2
        MCS table for an integer ``mcs``

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
    snr_db = float(snr_db)
    if seed is not None:
        from fqliscs_tf.utils import set_seed
        set_seed(seed)
    budget = max_payload_bits(k, mcs)
    if budget < 8:
        raise BudgetTooSmallError(
            f"k={k} channel uses carry no whole codeword at MCS {mcs.index} (table {mcs.table}): "
            f"a codeword needs {get_link(mcs, channel).num_symbols} channel uses")
    data, quality, decoded = rate_control(image, codec, budget // 8)
    link = get_link(mcs, channel)
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    bits_hat, crc_ok, block_errors = link.transmit(bits, snr_db)
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
                            thresholds=None, margin_db=0.0):
    """Sends an image with the ideal adaptive MCS (the best error-free MCS at this SNR).

    The MCS is :func:`select_mcs` at ``snr_db`` (for "rayleigh-block": at the
    instantaneous SNR ``snr_db + 10 log10 |h|^2``, ideal CSIT), then
    :func:`transmit_image` simulates the transmission at that MCS.

    Input
    -----
    image, codec, k, snr_db, channel, seed, table :
        As in :func:`transmit_image`
    thresholds : `None` (default) | `dict` | `str`
        Threshold table (or its path); `None` = the stored table
    margin_db : `float`, (default 0.)
        Extra SNR margin required above an MCS threshold [dB]

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
