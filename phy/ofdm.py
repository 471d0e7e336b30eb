# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
r"""OFDM link for the JSCC symbol stream: resource grid, 3GPP channels, estimation, equalization.

:class:`OFDMLinkChannel` has the contract of the other channel layers
(:mod:`phy.channels`)::

    z_hat, no_eff = OFDMLinkChannel(...)(z, snr_db)

Slots
    One slot is one :class:`sionna.phy.ofdm.ResourceGrid` (default 14 OFDM
    symbols x 76 subcarriers at 30 kHz, 5+6 guard carriers, DC null, Kronecker
    pilots on OFDM symbols 2 and 11: 64 x 12 = 768 data resource elements
    (REs) per stream). The ``k`` symbols of an example fill the data REs of
    ``S = ceil(k / (num_streams * NDS))`` slots: ``z`` is zero-padded to
    ``S * num_streams * NDS`` symbols and reshaped to
    ``[batch_size * S, 1, num_streams, NDS]``; symbol ``i`` goes to slot
    ``i // (num_streams*NDS)``, then stream, then data RE in the order of
    :class:`sionna.phy.ofdm.ResourceGridMapper` (OFDM symbol-major). Every slot
    is an independent channel realization (a batch entry of the Sionna
    channel; for UMi/UMa also an independent UT drop). The padding is removed
    at the receiver.

SNR
    ``no = 10^(-snr_db/10)`` per RE and receive antenna, unit-power symbols.
    The transmit power per RE is 1 in total: with ``num_tx_ant`` antennas
    (spatial multiplexing, one stream per antenna) every stream is scaled by
    ``1/sqrt(num_streams)`` (the pilots too, so that LS estimation estimates
    the effective channel). With ``normalize_channel=True`` Sionna scales
    every slot's channel to unit average energy per RE and antenna pair
    (average over the grid and the antennas), so ``snr_db`` is exactly the
    average received SNR per RE and receive antenna of every slot; fading
    remains only as selectivity inside the slot (frequency, time, space).
    Consequence: for a narrow band (76 x 30 kHz ~ 2.3 MHz) most of the
    slot-to-slot (large-scale and narrowband Rayleigh) fading is normalized
    away. With ``normalize_channel=False`` ``snr_db`` is the SNR averaged
    over channel realizations and slots fade as a whole; ``E|h|^2 = 1`` then
    holds in expectation for Rayleigh block fading, TDL and CDL (measured
    ~1.0), but not for UMi/UMa (~0.55 with omni antennas and no path loss),
    which should stay normalized. Default: `True`, except for
    ``"rayleigh"``: a 1x1 block-fading channel is constant over the slot, so
    normalizing it would replace the Rayleigh gain by a unit-modulus phase
    (no fading left).

Frequency-domain model
    :class:`sionna.phy.channel.ApplyOFDMChannel` (no inter-symbol or
    inter-carrier interference, i.e. the cyclic prefix is assumed to cover the
    delay spread); ``cyclic_prefix_length`` only describes the grid. Doppler
    (``min_speed``/``max_speed``) makes the channel vary over the OFDM symbols
    of a slot.

``no_eff``
    Sionna's equalizers return the *unbiased* estimate ``x_u = x + e`` with
    ``sigma2 = Var(e)`` (LMMSE: ``x_u = diag(GH)^-1 G y``,
    ``sigma2 = 1/diag(GH) - 1``; ZF: ``sigma2 = diag(G S G^H)``; ``S``
    includes ``no`` and, with LS, the channel estimation error variance).
    The other channels of :mod:`phy.channels` return the biased MMSE estimate
    and its MSE. With ``equalizer="lmmse"`` and ``unbiased=False`` (default)
    the link does the same: ``z_hat = x_u / (1 + sigma2)`` (= ``G y``) and
    ``no_eff = sigma2 / (1 + sigma2)`` (``= E|z_hat - z|^2`` given the
    channel, in ``[0, 1)``; for a 1x1 channel with perfect CSI exactly
    ``no / (|h|^2 + no)`` as in :class:`phy.channels.RayleighChannel`). With
    ``unbiased=True``, or ``equalizer="zf"`` (whose output is unbiased and
    whose MSE is ``sigma2``), ``z_hat = x_u`` and ``no_eff = sigma2``.
    Non-finite values (e.g. ZF in a deep fade) are replaced: ``sigma2`` is
    clipped to ``[0, 1e6]`` and non-finite estimates are set to 0.

Execution modes
    Eager, ``tf.function`` and XLA (``jit_compile=True``) for every channel
    model and receiver, with gradients w.r.t. ``z`` (LS uses nn/linear
    interpolation, no LMMSE interpolator).
"""
import numpy as np
import tensorflow as tf
import tf_keras as keras
from sionna.phy.channel import (ApplyOFDMChannel, GenerateOFDMChannel, RayleighBlockFading,
                                gen_single_sector_topology)
from sionna.phy.channel.tr38901 import CDL, TDL, UMa, UMi, AntennaArray
from sionna.phy.mimo import StreamManagement
from sionna.phy.ofdm import (LMMSEEqualizer, LSChannelEstimator, RemoveNulledSubcarriers,
                             ResourceGrid, ResourceGridMapper, ZFEqualizer)
from sionna.phy.utils import expand_to_rank

from .channels import _as_symbols, register_channel
from .config import check_choice, check_int, check_number, check_unknown_kwargs
from .utils import snr_db_to_no

__all__ = [
    "OFDMLinkChannel",
    "CHANNEL_MODELS",
    "TDL_MODELS",
    "CDL_MODELS",
    "ESTIMATORS",
    "EQUALIZERS",
    "equalized_to_estimate",
    "per_example_no",
]

_PRECISION = "single"
_MAX_NO_EFF = 1e6

#: Channel models of :class:`OFDMLinkChannel`
CHANNEL_MODELS = ("rayleigh", "tdl", "cdl", "umi", "uma")
#: 3GPP TR 38.901 TDL models supported by Sionna
TDL_MODELS = ("A", "B", "C", "D", "E", "A30", "B100", "C300")
#: 3GPP TR 38.901 CDL models
CDL_MODELS = ("A", "B", "C", "D", "E")
#: Receivers: perfect CSI, or LS estimation with nearest-neighbour / linear interpolation
ESTIMATORS = ("perfect", "ls-nn", "ls-lin")
#: MIMO equalizers
EQUALIZERS = ("lmmse", "zf")
_O2I_MODELS = ("low", "high")


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def per_example_no(snr_db, batch_size):
    """Noise variance ``no`` [batch_size], `tf.float32`, from a scalar or [batch_size] SNR [dB]."""
    no = snr_db_to_no(snr_db)
    if no.shape.rank == 0:
        return tf.fill([batch_size], no)
    if no.shape.rank == 2 and no.shape[1] == 1:
        no = no[:, 0]
    if no.shape.rank != 1:
        raise ValueError(
            "snr_db must be a scalar or have shape [batch_size] (or [batch_size, 1]) for "
            f"OFDM/MIMO links, got shape {no.shape}")
    return tf.broadcast_to(no, [batch_size])


def equalized_to_estimate(x_hat, sigma2, mmse=True):
    r"""Maps Sionna's unbiased equalizer output to the link's ``(z_hat, no_eff)``.

    Input
    -----
    x_hat : [...], `tf.complex64`
        Unbiased estimates ``x + e`` (Sionna equalizer output)

    sigma2 : [...], `tf.float32`
        Variance of ``e`` (Sionna's ``no_eff``)

    mmse : `bool`, (default `True`)
        If `True`, return the (biased) LMMSE estimate ``x_hat / (1 + sigma2)``
        and its MSE ``sigma2 / (1 + sigma2)``; else ``x_hat`` and ``sigma2``.

    Output
    ------
    z_hat : [...], `tf.complex64`
        Symbol estimates (0 where the input was not finite)

    no_eff : [...], `tf.float32`
        Their per-symbol MSE; ``sigma2`` is clipped to ``[0, 1e6]``
    """
    sigma2 = tf.cast(sigma2, tf.float32)
    bad = tf.logical_not(tf.math.is_finite(sigma2)
                         & tf.math.is_finite(tf.math.real(x_hat))
                         & tf.math.is_finite(tf.math.imag(x_hat)))
    sigma2 = tf.where(bad, _MAX_NO_EFF, tf.clip_by_value(sigma2, 0.0, _MAX_NO_EFF))
    x_hat = tf.where(bad, tf.zeros_like(x_hat), x_hat)
    if not mmse:
        return x_hat, sigma2
    gain = 1.0 / (1.0 + sigma2)
    return x_hat * tf.complex(gain, tf.zeros_like(gain)), sigma2 * gain


class OFDMLinkChannel(keras.layers.Layer):
    r"""OFDM link: resource-grid mapping, 3GPP/Rayleigh channel, estimation, MIMO equalization.

    ``z -> slots -> ResourceGridMapper -> (x 1/sqrt(num_streams)) -> channel
    (ApplyOFDMChannel, AWGN) -> perfect CSI | LS -> LMMSE | ZF -> z_hat``.
    See the module docstring for slots, SNR, normalization and ``no_eff``.
    Single precision. The ``num_tx_ant`` transmit antennas carry one stream
    each (spatial multiplexing without precoding; see
    :class:`phy.mimo.MIMOOFDMLinkChannel` for precoding). Uplink: a UT with
    ``num_tx_ant`` antennas sends to a BS with ``num_rx_ant`` antennas.

    Parameters
    ----------
    channel_model : "rayleigh" (default) | "tdl" | "cdl" | "umi" | "uma"
        "rayleigh": :class:`sionna.phy.channel.RayleighBlockFading` (flat, one
        i.i.d. :math:`\mathcal{CN}(0,1)` gain per antenna pair and slot);
        "tdl"/"cdl": 3GPP TR 38.901 tapped/clustered delay line;
        "umi"/"uma": 3GPP urban micro/macro system-level models with a new
        single-sector topology (:func:`sionna.phy.channel.gen_single_sector_topology`,
        one UT) drawn for every slot.

    model : `str`, (default "A")
        TDL model "A"-"E" | "A30" | "B100" | "C300", or CDL model "A"-"E"
        (tdl/cdl only)

    delay_spread : `float`, (default 100e-9)
        RMS delay spread [s] (tdl/cdl only; UMi/UMa draw it from the scenario)

    carrier_frequency : `float`, (default 3.5e9)
        Carrier frequency [Hz] (tdl/cdl/umi/uma)

    min_speed : `float`, (default 0.)
        Minimum UT speed [m/s] (tdl/cdl/umi/uma)

    max_speed : `None` (default) | `float`
        Maximum UT speed [m/s]; speeds are uniform in ``[min_speed, max_speed]``.
        `None` means ``min_speed``.

    num_ofdm_symbols : `int`, (default 14)
        OFDM symbols per slot

    fft_size : `int`, (default 76)
        Subcarriers (including guards and DC)

    subcarrier_spacing : `float`, (default 30e3)
        Subcarrier spacing [Hz]

    cyclic_prefix_length : `int`, (default 6)
        Cyclic prefix [samples], in ``[0, fft_size]``

    num_guard_carriers : (`int`, `int`), (default (5, 6))
        Guard carriers on the left and right of the band

    dc_null : `bool`, (default `True`)
        Null the DC subcarrier

    pilot_ofdm_symbol_indices : `list` of `int`, (default (2, 11))
        OFDM symbols carrying Kronecker pilots; empty means no pilots (only
        with ``estimator="perfect"``)

    num_tx_ant : `int`, (default 1)
        UT (transmit) antennas = spatial streams, at most ``num_rx_ant``

    num_rx_ant : `int`, (default 1)
        BS (receive) antennas

    estimator : "perfect" (default) | "ls-nn" | "ls-lin"
        Perfect CSI, or LS estimation at the pilots with nearest-neighbour or
        linear interpolation (:class:`sionna.phy.ofdm.LSChannelEstimator`)

    equalizer : "lmmse" (default) | "zf"
        :class:`sionna.phy.ofdm.LMMSEEqualizer` | :class:`sionna.phy.ofdm.ZFEqualizer`

    unbiased : `bool`, (default `False`)
        Return Sionna's unbiased LMMSE estimate and its noise variance instead
        of the MMSE estimate and its MSE (see module docstring)

    normalize_channel : `None` (default) | `bool`
        Normalize every slot's channel to unit average energy per RE and
        antenna pair. `None`: `False` for "rayleigh", else `True`.

    enable_pathloss : `bool`, (default `False`)
        UMi/UMa path loss. Off because the JSCC link fixes the average SNR
        through ``snr_db``; with path loss on (and ``normalize_channel=False``)
        the received SNR would be ``snr_db`` minus a random path loss of
        ~60-140 dB. With ``normalize_channel=True`` it has no effect.

    enable_shadow_fading : `bool`, (default `False`)
        UMi/UMa shadow fading (same reasoning as ``enable_pathloss``)

    o2i_model : "low" (default) | "high"
        UMi/UMa outdoor-to-indoor loss model (only matters with path loss)

    kwargs :
        Keras layer arguments (``name``, ``trainable``, ``dtype``); anything
        else is a ``ValueError``

    Input
    -----
    z : [batch_size, k], `tf.complex64`
        Channel input symbols with unit average power

    snr_db : Scalar or [batch_size], `tf.float32`
        SNR per RE and receive antenna [dB]

    return_channel : `bool`, (default `False`)
        Also return the channel and the receiver's estimate

    Output
    ------
    z_hat : [batch_size, k], `tf.complex64`
        Equalized symbol estimates (padding removed)

    no_eff : [batch_size, k], `tf.float32`
        Per-symbol MSE of ``z_hat`` (see module docstring)

    h_freq : [batch_size * S, 1, num_rx_ant, 1, num_tx_ant, num_ofdm_symbols, fft_size], `tf.complex64`
        Physical channel frequency response of every slot (only if
        ``return_channel``)

    h_hat : [batch_size * S, 1, num_rx_ant, 1, num_streams, num_ofdm_symbols, num_effective_subcarriers], `tf.complex64`
        Effective channel (after the stream scaling/precoding) as used by the
        equalizer: the true one for perfect CSI, the LS estimate otherwise
        (only if ``return_channel``)
    """

    _DEFAULTS = dict(
        channel_model="rayleigh", model="A", delay_spread=100e-9, carrier_frequency=3.5e9,
        min_speed=0.0, max_speed=None, num_ofdm_symbols=14, fft_size=76,
        subcarrier_spacing=30e3, cyclic_prefix_length=6, num_guard_carriers=(5, 6),
        dc_null=True, pilot_ofdm_symbol_indices=(2, 11), num_tx_ant=1, num_rx_ant=1,
        estimator="perfect", equalizer="lmmse", unbiased=False, normalize_channel=None,
        enable_pathloss=False, enable_shadow_fading=False, o2i_model="low")

    def __init__(self, channel_model="rayleigh", model="A", delay_spread=100e-9,
                 carrier_frequency=3.5e9, min_speed=0.0, max_speed=None, num_ofdm_symbols=14,
                 fft_size=76, subcarrier_spacing=30e3, cyclic_prefix_length=6,
                 num_guard_carriers=(5, 6), dc_null=True, pilot_ofdm_symbol_indices=(2, 11),
                 num_tx_ant=1, num_rx_ant=1, estimator="perfect", equalizer="lmmse",
                 unbiased=False, normalize_channel=None, enable_pathloss=False,
                 enable_shadow_fading=False, o2i_model="low", **kwargs):
        params = dict(
            channel_model=channel_model, model=model, delay_spread=delay_spread,
            carrier_frequency=carrier_frequency, min_speed=min_speed, max_speed=max_speed,
            num_ofdm_symbols=num_ofdm_symbols, fft_size=fft_size,
            subcarrier_spacing=subcarrier_spacing, cyclic_prefix_length=cyclic_prefix_length,
            num_guard_carriers=num_guard_carriers, dc_null=dc_null,
            pilot_ofdm_symbol_indices=pilot_ofdm_symbol_indices, num_tx_ant=num_tx_ant,
            num_rx_ant=num_rx_ant, estimator=estimator, equalizer=equalizer, unbiased=unbiased,
            normalize_channel=normalize_channel, enable_pathloss=enable_pathloss,
            enable_shadow_fading=enable_shadow_fading, o2i_model=o2i_model)
        extra = {k: kwargs.pop(k) for k in list(kwargs) if k in self._extra_param_names()}
        check_unknown_kwargs(type(self).__name__, kwargs,
                             list(params) + list(self._extra_param_names()))
        super().__init__(**kwargs)
        self._params = self.check_params(**params, **extra)
        self._build_phy()

    # ------------------------------------------------------------ parameters

    @classmethod
    def _extra_param_names(cls):
        """Names of parameters added by subclasses (passed through ``**kwargs``)."""
        return ()

    @classmethod
    def check_params(cls, **params):
        """Validates parameters (defaults filled in) and returns them normalized.

        Raises ``ValueError`` naming the offending parameter.
        """
        check_unknown_kwargs(cls.__name__, params,
                             list(cls._DEFAULTS) + list(cls._extra_param_names()))
        p = {**cls._DEFAULTS, **params}
        p["channel_model"] = check_choice("channel_model", p["channel_model"], CHANNEL_MODELS)
        cm = p["channel_model"]
        if cm == "tdl":
            p["model"] = check_choice("TDL model", p["model"], TDL_MODELS, upper=True)
        elif cm == "cdl":
            p["model"] = check_choice("CDL model", p["model"], CDL_MODELS, upper=True)
        p["delay_spread"] = check_number("delay_spread", p["delay_spread"], minimum=0.0,
                                         strict_min=True)
        p["carrier_frequency"] = check_number("carrier_frequency", p["carrier_frequency"],
                                              minimum=0.0, strict_min=True)
        if cm in ("umi", "uma") and not 0.5e9 <= p["carrier_frequency"] <= 100e9:
            raise ValueError("carrier_frequency must be within [0.5, 100] GHz for UMi/UMa "
                             f"(TR 38.901), got {p['carrier_frequency']!r}")
        p["min_speed"] = check_number("min_speed", p["min_speed"], minimum=0.0)
        p["max_speed"] = check_number("max_speed", p["max_speed"], minimum=0.0, allow_none=True)
        if p["max_speed"] is not None and p["max_speed"] < p["min_speed"]:
            raise ValueError(f"max_speed ({p['max_speed']!r}) must be >= min_speed "
                             f"({p['min_speed']!r})")
        p["num_ofdm_symbols"] = check_int("num_ofdm_symbols", p["num_ofdm_symbols"], minimum=1)
        p["fft_size"] = check_int("fft_size", p["fft_size"], minimum=1)
        p["subcarrier_spacing"] = check_number("subcarrier_spacing", p["subcarrier_spacing"],
                                               minimum=0.0, strict_min=True)
        p["cyclic_prefix_length"] = check_int("cyclic_prefix_length", p["cyclic_prefix_length"],
                                              minimum=0, maximum=p["fft_size"])
        guards = p["num_guard_carriers"]
        if not isinstance(guards, (list, tuple)) or len(guards) != 2:
            raise ValueError(f"num_guard_carriers must be a pair (left, right), got {guards!r}")
        p["num_guard_carriers"] = tuple(check_int("num_guard_carriers", g, minimum=0)
                                        for g in guards)
        p["dc_null"] = _check_bool("dc_null", p["dc_null"])
        pilots = p["pilot_ofdm_symbol_indices"]
        if not isinstance(pilots, (list, tuple)):
            raise ValueError("pilot_ofdm_symbol_indices must be a list of OFDM symbol indices, "
                             f"got {pilots!r}")
        pilots = tuple(check_int("pilot_ofdm_symbol_indices", i, minimum=0,
                                 maximum=p["num_ofdm_symbols"] - 1) for i in pilots)
        if len(set(pilots)) != len(pilots):
            raise ValueError(f"pilot_ofdm_symbol_indices has duplicates: {pilots!r}")
        if len(pilots) >= p["num_ofdm_symbols"]:
            raise ValueError(f"pilot_ofdm_symbol_indices {pilots!r} leave no data OFDM symbol "
                             f"(num_ofdm_symbols={p['num_ofdm_symbols']})")
        p["pilot_ofdm_symbol_indices"] = pilots
        p["num_tx_ant"] = check_int("num_tx_ant", p["num_tx_ant"], minimum=1)
        p["num_rx_ant"] = check_int("num_rx_ant", p["num_rx_ant"], minimum=1)
        p["estimator"] = check_choice("estimator", p["estimator"], ESTIMATORS)
        p["equalizer"] = check_choice("equalizer", p["equalizer"], EQUALIZERS)
        p["unbiased"] = _check_bool("unbiased", p["unbiased"])
        if p["normalize_channel"] is not None:
            p["normalize_channel"] = _check_bool("normalize_channel", p["normalize_channel"])
        p["enable_pathloss"] = _check_bool("enable_pathloss", p["enable_pathloss"])
        p["enable_shadow_fading"] = _check_bool("enable_shadow_fading", p["enable_shadow_fading"])
        p["o2i_model"] = check_choice("o2i_model", p["o2i_model"], _O2I_MODELS)
        if p["estimator"] != "perfect" and not pilots:
            raise ValueError(f"estimator {p['estimator']!r} needs pilots; "
                             "pilot_ofdm_symbol_indices is empty")
        num_streams = cls._num_streams(p)
        if num_streams > p["num_rx_ant"]:
            raise ValueError(f"num_streams ({num_streams}) must not exceed num_rx_ant "
                             f"({p['num_rx_ant']}): the receiver cannot separate more streams "
                             "than it has antennas")
        num_eff = p["fft_size"] - sum(p["num_guard_carriers"]) - int(p["dc_null"])
        if num_eff < max(num_streams, 1):
            raise ValueError(
                f"fft_size ({p['fft_size']}) is too small for num_guard_carriers "
                f"{p['num_guard_carriers']} and dc_null={p['dc_null']}: "
                f"{num_eff} effective subcarriers, at least {max(num_streams, 1)} needed")
        if pilots and num_eff % num_streams:
            raise ValueError(
                f"Kronecker pilots need the number of effective subcarriers ({num_eff} = fft_size "
                f"- guards - DC) to be a multiple of num_streams ({num_streams}); change fft_size "
                "or num_guard_carriers")
        return p

    @classmethod
    def _num_streams(cls, p):
        return p["num_tx_ant"]

    @property
    def params(self):
        """`dict` : Validated parameters"""
        return dict(self._params)

    @property
    def channel_model(self):
        """`str` : Channel model"""
        return self._params["channel_model"]

    @property
    def num_streams(self):
        """`int` : Spatial streams per slot"""
        return self._num_streams(self._params)

    @property
    def normalize_channel(self):
        """`bool` : Whether every slot's channel is normalized to unit energy per RE"""
        nc = self._params["normalize_channel"]
        return self.channel_model != "rayleigh" if nc is None else nc

    @property
    def resource_grid(self):
        """:class:`sionna.phy.ofdm.ResourceGrid` : Grid of one slot"""
        return self._rg

    @property
    def num_data_symbols(self):
        """`int` : Data REs per stream and slot (NDS)"""
        return self._nds

    def symbols_per_slot(self):
        """`int` : Symbols carried by one slot, ``num_streams * NDS``"""
        return self.num_streams * self._nds

    def num_slots(self, k):
        """`int` : Slots needed for ``k`` symbols per example"""
        return -(-int(k) // self.symbols_per_slot())

    # ----------------------------------------------------------------- build

    def _antenna_array(self, num_ant):
        return AntennaArray(num_rows=1, num_cols=num_ant, polarization="single",
                            polarization_type="V", antenna_pattern="omni",
                            carrier_frequency=self._params["carrier_frequency"],
                            precision=_PRECISION)

    def _build_channel_model(self):
        p = self._params
        cm = p["channel_model"]
        if cm == "rayleigh":
            return RayleighBlockFading(num_rx=1, num_rx_ant=p["num_rx_ant"], num_tx=1,
                                       num_tx_ant=p["num_tx_ant"], precision=_PRECISION)
        if cm == "tdl":
            return TDL(p["model"], p["delay_spread"], p["carrier_frequency"],
                       min_speed=p["min_speed"], max_speed=p["max_speed"],
                       num_rx_ant=p["num_rx_ant"], num_tx_ant=p["num_tx_ant"],
                       precision=_PRECISION)
        ut_array = self._antenna_array(p["num_tx_ant"])
        bs_array = self._antenna_array(p["num_rx_ant"])
        if cm == "cdl":
            return CDL(p["model"], p["delay_spread"], p["carrier_frequency"], ut_array, bs_array,
                       "uplink", min_speed=p["min_speed"], max_speed=p["max_speed"],
                       precision=_PRECISION)
        cls = UMi if cm == "umi" else UMa
        return cls(p["carrier_frequency"], p["o2i_model"], ut_array, bs_array, "uplink",
                   enable_pathloss=p["enable_pathloss"],
                   enable_shadow_fading=p["enable_shadow_fading"], precision=_PRECISION)

    def _build_phy(self):
        p = self._params
        pilots = list(p["pilot_ofdm_symbol_indices"])
        self._rg = ResourceGrid(
            num_ofdm_symbols=p["num_ofdm_symbols"], fft_size=p["fft_size"],
            subcarrier_spacing=p["subcarrier_spacing"], num_tx=1,
            num_streams_per_tx=self.num_streams,
            cyclic_prefix_length=p["cyclic_prefix_length"],
            num_guard_carriers=list(p["num_guard_carriers"]), dc_null=p["dc_null"],
            pilot_pattern="kronecker" if pilots else "empty",
            pilot_ofdm_symbol_indices=pilots if pilots else None, precision=_PRECISION)
        self._nds = int(self._rg.num_data_symbols)
        sm = StreamManagement(np.ones([1, 1], int), self.num_streams)
        self._mapper = ResourceGridMapper(self._rg, precision=_PRECISION)
        self._channel_model = self._build_channel_model()
        self._gen_channel = GenerateOFDMChannel(self._channel_model, self._rg,
                                                normalize_channel=self.normalize_channel,
                                                precision=_PRECISION)
        self._apply_channel = ApplyOFDMChannel(precision=_PRECISION)
        self._remove_nulled = RemoveNulledSubcarriers(self._rg, precision=_PRECISION)
        self._ls = None
        if p["estimator"] != "perfect":
            self._ls = LSChannelEstimator(self._rg, interpolation_type=p["estimator"][3:],
                                          precision=_PRECISION)
        eq_cls = LMMSEEqualizer if p["equalizer"] == "lmmse" else ZFEqualizer
        self._equalizer = eq_cls(self._rg, sm, precision=_PRECISION)

    # ------------------------------------------------------------------ call

    def _generate_channel(self, num):
        """Channel frequency responses [num, 1, num_rx_ant, 1, num_tx_ant, T, fft_size]."""
        cm = self._params["channel_model"]
        if cm in ("umi", "uma"):
            p = self._params
            max_speed = p["max_speed"] if p["max_speed"] is not None else p["min_speed"]
            topology = gen_single_sector_topology(
                num, 1, cm, min_ut_velocity=p["min_speed"], max_ut_velocity=max_speed,
                precision=_PRECISION)
            self._channel_model.set_topology(*topology)
        return self._gen_channel(num)

    def _precode(self, x_rg, h_freq, no):  # pylint: disable=unused-argument
        r"""Maps streams to antennas with unit total power per RE.

        Input: ``x_rg`` [N, 1, num_streams, T, F], ``h_freq`` [N, 1, Nr, 1, Nt, T, F],
        ``no`` [N]. Output: transmitted grid [N, 1, Nt, T, F] and effective
        channel [N, 1, Nr, 1, num_streams, T, F]. Here: one stream per antenna,
        each scaled by :math:`1/\sqrt{N_t}`.
        """
        nt = self._params["num_tx_ant"]
        if nt == 1:
            return x_rg, h_freq
        scale = tf.complex(tf.constant(nt ** -0.5, tf.float32), 0.0)
        return x_rg * scale, h_freq * scale

    def call(self, z, snr_db, return_channel=False):  # pylint: disable=arguments-differ
        z = _as_symbols(z)
        batch = tf.shape(z)[0]
        per_slot = self.symbols_per_slot()
        k_static = z.shape[1]
        if k_static is not None:
            k = k_static
            num_slots = max(self.num_slots(k), 1)
        else:
            k = tf.shape(z)[1]
            num_slots = tf.maximum((k + per_slot - 1) // per_slot, 1)
        no = per_example_no(snr_db, batch)

        z_pad = tf.pad(z, [[0, 0], [0, num_slots * per_slot - k]])
        x = tf.reshape(z_pad, [batch * num_slots, 1, self.num_streams, self._nds])
        no_slot = tf.repeat(no, num_slots)                       # [N]
        num = tf.shape(x)[0]

        x_rg = self._mapper(x)                                   # [N, 1, S, T, F]
        h_freq = tf.stop_gradient(self._generate_channel(num))   # [N, 1, Nr, 1, Nt, T, F]
        x_tx, h_eff = self._precode(x_rg, h_freq, no_slot)
        y = self._apply_channel(x_tx, h_freq, expand_to_rank(no_slot, 5, axis=-1))

        if self._ls is None:
            h_hat = self._remove_nulled(h_eff)
            err_var = tf.zeros([], tf.float32)
        else:
            h_hat, err_var = self._ls(y, no_slot)
        x_hat, sigma2 = self._equalizer(y, h_hat, err_var, no_slot)   # [N, 1, S, NDS]
        mmse = self._params["equalizer"] == "lmmse" and not self._params["unbiased"]
        z_hat, no_eff = equalized_to_estimate(x_hat, sigma2, mmse=mmse)

        z_hat = tf.reshape(z_hat, [batch, num_slots * per_slot])[:, :k]
        no_eff = tf.reshape(no_eff, [batch, num_slots * per_slot])[:, :k]
        if return_channel:
            return z_hat, no_eff, h_freq, h_hat
        return z_hat, no_eff

    def get_config(self):
        config = super().get_config()
        params = dict(self._params)
        params["num_guard_carriers"] = list(params["num_guard_carriers"])
        params["pilot_ofdm_symbol_indices"] = list(params["pilot_ofdm_symbol_indices"])
        config.update(params)
        return config


for _name in ("rayleigh", "tdl", "cdl", "umi", "uma"):
    register_channel(f"ofdm-{_name}", OFDMLinkChannel, {"channel_model": _name})
