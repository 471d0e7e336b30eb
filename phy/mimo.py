# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
r"""MIMO links: flat-fading spatial multiplexing and MIMO-OFDM, with optional precoding.

Both layers have the contract of :mod:`phy.channels`,
``z_hat, no_eff = layer(z, snr_db)``.

Streams and power
    The symbol stream is split over ``num_streams`` spatial streams: symbol
    ``i`` goes to channel use ``i // num_streams`` and stream
    ``i % num_streams`` (flat MIMO; MIMO-OFDM: see :mod:`phy.ofdm`). A
    precoding matrix :math:`\mathbf{F}\in\mathbb{C}^{N_t\times S}` maps the
    streams to the antennas, :math:`\mathbf{x} = \mathbf{F}\mathbf{s}`, always
    normalized to :math:`\|\mathbf{F}\|_F^2 = 1`, i.e. **unit total transmit
    power per channel use** (per RE) whatever ``num_tx_ant``/``num_streams``.
    With :math:`E|h_{ij}|^2 = 1`, ``snr_db`` is the average received SNR per
    receive antenna, :math:`\mathrm{SNR} = 1/N_0`, ``no = 10^(-snr_db/10)``.

    * ``"none"``: :math:`\mathbf{F} = \mathbf{I}/\sqrt{N_t}`, ``num_streams = num_tx_ant``
      (one stream per antenna), requires ``num_tx_ant <= num_rx_ant``;
    * ``"svd"`` (eigen-beamforming, transmitter CSI; the right singular
      vectors are computed as eigenvectors of :math:`\mathbf{H}^{\mathsf{H}}\mathbf{H}`
      because ``tf.linalg.svd`` has no XLA kernel for complex matrices):
      :math:`\mathbf{H} = \mathbf{U}\boldsymbol{\Sigma}\mathbf{V}^{\mathsf{H}}`,
      :math:`\mathbf{F} = \mathbf{V}_{:, :S}/\sqrt{S}` (equal power on the
      ``S <= min(N_t, N_r)`` strongest eigenmodes, no water-filling); the
      receiver's LMMSE filter on :math:`\mathbf{H}\mathbf{F} = \mathbf{U}_{:, :S}\boldsymbol{\Sigma}_S/\sqrt{S}`
      is receive combining with :math:`\mathbf{U}_{:, :S}^{\mathsf{H}}` followed by
      a scalar MMSE gain per eigenmode;
    * ``"rzf"`` (regularized zero-forcing, transmitter CSI, ``S = N_r <= N_t``):
      :math:`\mathbf{F} \propto \mathbf{H}^{\mathsf{H}}(\mathbf{H}\mathbf{H}^{\mathsf{H}} + \alpha\mathbf{I})^{-1}`
      with unit-norm columns scaled by :math:`1/\sqrt{S}` (the
      :func:`sionna.phy.mimo.rzf_precoding_matrix` normalization, divided by
      :math:`\sqrt{S}`); :math:`\alpha` = ``rzf_alpha`` or, if `None`,
      :math:`N_r N_0` (the MMSE-optimal regularization for unit total power);
      ``rzf_alpha=0`` is ZF precoding.

    The receiver knows the effective channel :math:`\mathbf{H}\mathbf{F}`
    (perfect CSI) and applies LMMSE (:func:`sionna.phy.mimo.lmmse_equalizer`)
    or ZF detection; ``z_hat``/``no_eff`` follow the MMSE convention of
    :mod:`phy.ofdm` (``z_hat`` = LMMSE estimate, ``no_eff`` its per-symbol
    MSE, :math:`((\mathbf{I} + \mathbf{F}^{\mathsf{H}}\mathbf{H}^{\mathsf{H}}\mathbf{H}\mathbf{F}/N_0)^{-1})_{ii}`
    for LMMSE with perfect CSI).

Spatial correlation (flat MIMO)
    Kronecker model :math:`\mathbf{H} = \mathbf{R}_{rx}^{1/2}\mathbf{H}_w\mathbf{R}_{tx}^{\mathsf{H}/2}`
    with exponential correlation matrices :math:`[\mathbf{R}]_{ij} = a^{|i-j|}`
    (:func:`sionna.phy.channel.exp_corr_mat`), ``a`` = ``tx_corr`` /
    ``rx_corr``; ``0`` is i.i.d. Rayleigh. :math:`E|h_{ij}|^2 = 1` in all cases.

Execution modes: eager, ``tf.function`` and XLA with gradients w.r.t. ``z``
for all precoders (the precoder depends on the channel only; gradients flow
through :math:`\mathbf{F}\mathbf{s}`).
"""
import tensorflow as tf
import tf_keras as keras
from sionna.phy.channel import AWGN, GenerateFlatFadingChannel, KroneckerModel, exp_corr_mat
from sionna.phy.mimo import lmmse_equalizer, zf_equalizer

from .channels import _as_symbols, register_channel
from .config import check_choice, check_int, check_number, check_unknown_kwargs
from .ofdm import EQUALIZERS, OFDMLinkChannel, _check_bool, equalized_to_estimate, per_example_no

__all__ = [
    "MIMOLinkChannel",
    "MIMOOFDMLinkChannel",
    "PRECODINGS",
    "precoding_matrix",
    "resolve_num_streams",
]

_PRECISION = "single"
#: Precoders
PRECODINGS = ("none", "svd", "rzf")
_FADINGS = ("fast", "block")


def resolve_num_streams(precoding, num_streams, num_tx_ant, num_rx_ant):
    """Checks ``num_streams`` against the precoder and antennas; `None` -> its default.

    Defaults: ``num_tx_ant`` ("none"), ``min(num_tx_ant, num_rx_ant)`` ("svd"),
    ``num_rx_ant`` ("rzf"). Raises ``ValueError`` naming the parameter.
    """
    precoding = check_choice("precoding", precoding, PRECODINGS)
    default = {"none": num_tx_ant, "svd": min(num_tx_ant, num_rx_ant), "rzf": num_rx_ant}
    s = default[precoding] if num_streams is None else check_int("num_streams", num_streams,
                                                                 minimum=1)
    if precoding == "none" and s != num_tx_ant:
        raise ValueError(f"num_streams ({s}) must equal num_tx_ant ({num_tx_ant}) without "
                         "precoding (one stream per antenna); use precoding='svd' for fewer")
    if precoding == "rzf" and (s != num_rx_ant or num_rx_ant > num_tx_ant):
        raise ValueError(f"precoding='rzf' sends one stream per receive antenna: needs "
                         f"num_streams == num_rx_ant <= num_tx_ant, got num_streams={s}, "
                         f"num_rx_ant={num_rx_ant}, num_tx_ant={num_tx_ant}")
    if s > min(num_tx_ant, num_rx_ant):
        raise ValueError(f"num_streams ({s}) must not exceed min(num_tx_ant, num_rx_ant) "
                         f"= min({num_tx_ant}, {num_rx_ant})")
    return s


def precoding_matrix(h, precoding, num_streams, alpha=0.0):
    r"""Precoding matrices with unit Frobenius norm (unit total transmit power).

    Input
    -----
    h : [..., num_rx_ant, num_tx_ant], `tf.complex64`
        Channel matrices (transmitter CSI)

    precoding : "none" | "svd" | "rzf"
        See the module docstring

    num_streams : `int`
        Streams ``S`` (checked by :func:`resolve_num_streams`)

    alpha : `float` or tensor broadcastable to [...], `tf.float32`
        RZF regularization (rzf only)

    Output
    ------
    f : [..., num_tx_ant, num_streams], `tf.complex64`
        Precoding matrices, :math:`\|\mathbf{F}\|_F = 1`
    """
    nt = h.shape[-1]
    scale = tf.complex(tf.constant(num_streams ** -0.5, tf.float32), 0.0)
    if precoding == "none":
        eye = tf.eye(nt, num_streams, dtype=h.dtype)
        return tf.broadcast_to(eye, tf.concat([tf.shape(h)[:-2], [nt, num_streams]], 0)) * scale
    if precoding == "svd":
        # Right singular vectors of h = eigenvectors of h^H h (eigh: ascending eigenvalues).
        # tf.linalg.svd has no XLA kernel for complex inputs; eigh has.
        _, v = tf.linalg.eigh(tf.matmul(h, h, adjoint_a=True))
        return tf.reverse(v[..., nt - num_streams:], axis=[-1]) * scale
    if precoding == "rzf":
        nr = h.shape[-2]
        alpha = tf.cast(alpha, tf.float32)
        alpha = tf.complex(alpha, tf.zeros_like(alpha))[..., tf.newaxis, tf.newaxis]
        hhs = tf.matmul(h, h, adjoint_b=True) + alpha * tf.eye(nr, dtype=h.dtype)
        # H^H (H H^H + a I)^-1, via Cholesky (hhs is Hermitian; MatrixSolve has no XLA kernel)
        v = tf.linalg.adjoint(tf.linalg.cholesky_solve(tf.linalg.cholesky(hhs), h))
        norm = tf.sqrt(tf.reduce_sum(tf.abs(v) ** 2, axis=-2, keepdims=True))
        return v / tf.complex(norm, 0.0) * scale
    raise ValueError(f"Invalid precoding {precoding!r}; valid values: {PRECODINGS}")


class MIMOLinkChannel(keras.layers.Layer):
    r"""Flat-fading :math:`N_t \times N_r` MIMO link with spatial multiplexing and LMMSE detection.

    .. math::
        \mathbf{y} = \mathbf{H}\mathbf{F}\mathbf{s} + \mathbf{n},\quad
        \mathbf{n}\sim\mathcal{CN}(\mathbf{0}, N_0\mathbf{I}),\quad
        \hat{\mathbf{s}} = \text{LMMSE}(\mathbf{y}, \mathbf{H}\mathbf{F}, N_0\mathbf{I})

    ``H`` from :class:`sionna.phy.channel.GenerateFlatFadingChannel` (i.i.d.
    :math:`\mathcal{CN}(0,1)` or Kronecker-correlated), noise from
    :class:`sionna.phy.channel.AWGN`; perfect CSI at the receiver (and at the
    transmitter for precoding). See the module docstring for power and
    precoding conventions. ``z`` is zero-padded to a multiple of
    ``num_streams``; the padding is removed at the receiver.

    Parameters
    ----------
    num_tx_ant : `int`, (default 2)
        Transmit antennas

    num_rx_ant : `int`, (default 2)
        Receive antennas

    num_streams : `None` (default) | `int`
        Spatial streams; `None` = default of the precoder (see
        :func:`resolve_num_streams`)

    fading : "fast" (default) | "block"
        "fast": new ``H`` for every channel use; "block": one ``H`` per example

    tx_corr : `float`, (default 0.)
        Exponential correlation coefficient at the transmitter, in (-1, 1)

    rx_corr : `float`, (default 0.)
        Exponential correlation coefficient at the receiver, in (-1, 1)

    precoding : "none" (default) | "svd" | "rzf"
        Precoder (transmitter CSI for "svd"/"rzf")

    rzf_alpha : `None` (default) | `float`
        RZF regularization; `None` = ``num_rx_ant * no`` (per example)

    equalizer : "lmmse" (default) | "zf"
        Detector

    unbiased : `bool`, (default `False`)
        Return the unbiased LMMSE estimate and its noise variance instead of
        the MMSE estimate and its MSE

    Input
    -----
    z : [batch_size, k], `tf.complex64`
        Channel input symbols with unit average power

    snr_db : Scalar or [batch_size], `tf.float32`
        Average received SNR per receive antenna [dB]

    return_channel : `bool`, (default `False`)
        Also return ``h`` and ``f``

    Output
    ------
    z_hat : [batch_size, k], `tf.complex64`
        Symbol estimates

    no_eff : [batch_size, k], `tf.float32`
        Per-symbol MSE of ``z_hat``

    h : [batch_size, n, num_rx_ant, num_tx_ant], `tf.complex64`
        Channel of every channel use, ``n = ceil(k / num_streams)`` (only if
        ``return_channel``)

    f : [batch_size, n, num_tx_ant, num_streams], `tf.complex64`
        Precoding matrices (only if ``return_channel``)
    """

    _DEFAULTS = dict(num_tx_ant=2, num_rx_ant=2, num_streams=None, fading="fast", tx_corr=0.0,
                     rx_corr=0.0, precoding="none", rzf_alpha=None, equalizer="lmmse",
                     unbiased=False)

    def __init__(self, num_tx_ant=2, num_rx_ant=2, num_streams=None, fading="fast",
                 tx_corr=0.0, rx_corr=0.0, precoding="none", rzf_alpha=None, equalizer="lmmse",
                 unbiased=False, **kwargs):
        params = dict(num_tx_ant=num_tx_ant, num_rx_ant=num_rx_ant, num_streams=num_streams,
                      fading=fading, tx_corr=tx_corr, rx_corr=rx_corr, precoding=precoding,
                      rzf_alpha=rzf_alpha, equalizer=equalizer, unbiased=unbiased)
        check_unknown_kwargs(type(self).__name__, kwargs, list(params))
        super().__init__(**kwargs)
        self._params = self.check_params(**params)
        p = self._params
        spatial_corr = None
        if p["tx_corr"] or p["rx_corr"]:
            spatial_corr = KroneckerModel(
                r_tx=exp_corr_mat(p["tx_corr"], p["num_tx_ant"], precision=_PRECISION),
                r_rx=exp_corr_mat(p["rx_corr"], p["num_rx_ant"], precision=_PRECISION))
        self._gen_h = GenerateFlatFadingChannel(p["num_tx_ant"], p["num_rx_ant"],
                                                spatial_corr=spatial_corr, precision=_PRECISION)
        self._awgn = AWGN(precision=_PRECISION)

    @classmethod
    def check_params(cls, **params):
        """Validates parameters (defaults filled in); ``ValueError`` names the bad one."""
        check_unknown_kwargs(cls.__name__, params, list(cls._DEFAULTS))
        p = {**cls._DEFAULTS, **params}
        p["num_tx_ant"] = check_int("num_tx_ant", p["num_tx_ant"], minimum=1)
        p["num_rx_ant"] = check_int("num_rx_ant", p["num_rx_ant"], minimum=1)
        p["precoding"] = check_choice("precoding", p["precoding"], PRECODINGS)
        p["num_streams"] = resolve_num_streams(p["precoding"], p["num_streams"],
                                               p["num_tx_ant"], p["num_rx_ant"])
        p["fading"] = check_choice("fading", p["fading"], _FADINGS)
        for name in ("tx_corr", "rx_corr"):
            p[name] = check_number(name, p[name])
            if not -1.0 < p[name] < 1.0:
                raise ValueError(f"{name} must be in (-1, 1), got {p[name]!r}")
        p["rzf_alpha"] = check_number("rzf_alpha", p["rzf_alpha"], minimum=0.0, allow_none=True)
        p["equalizer"] = check_choice("equalizer", p["equalizer"], EQUALIZERS)
        p["unbiased"] = _check_bool("unbiased", p["unbiased"])
        return p

    @property
    def params(self):
        """`dict` : Validated parameters"""
        return dict(self._params)

    @property
    def num_streams(self):
        """`int` : Spatial streams"""
        return self._params["num_streams"]

    def call(self, z, snr_db, return_channel=False):  # pylint: disable=arguments-differ
        p = self._params
        z = _as_symbols(z)
        batch = tf.shape(z)[0]
        s = p["num_streams"]
        k = z.shape[1] if z.shape[1] is not None else tf.shape(z)[1]
        n = (k + s - 1) // s
        no = per_example_no(snr_db, batch)[:, tf.newaxis]          # [B, 1]

        x = tf.reshape(tf.pad(z, [[0, 0], [0, n * s - k]]), [batch, n, s])
        if p["fading"] == "fast":
            h = tf.reshape(self._gen_h(batch * n),
                           [batch, n, p["num_rx_ant"], p["num_tx_ant"]])
        else:
            h = tf.broadcast_to(self._gen_h(batch)[:, tf.newaxis],
                                [batch, n, p["num_rx_ant"], p["num_tx_ant"]])
        h = tf.stop_gradient(h)
        alpha = p["rzf_alpha"] if p["rzf_alpha"] is not None else p["num_rx_ant"] * no
        f = tf.stop_gradient(precoding_matrix(h, p["precoding"], s, alpha))
        h_eff = tf.matmul(h, f)                                      # [B, n, Nr, S]
        y = self._awgn(tf.linalg.matvec(h_eff, x), no[:, :, tf.newaxis])   # [B, n, Nr]

        no_c = tf.complex(no, 0.0)[:, :, tf.newaxis, tf.newaxis]
        s_cov = no_c * tf.eye(p["num_rx_ant"], dtype=tf.complex64)
        s_cov = tf.broadcast_to(s_cov, tf.concat([tf.shape(h_eff)[:-2],
                                                  [p["num_rx_ant"], p["num_rx_ant"]]], 0))
        if p["equalizer"] == "lmmse":
            x_hat, sigma2 = lmmse_equalizer(y, h_eff, s_cov, precision=_PRECISION)
        else:
            x_hat, sigma2 = zf_equalizer(y, h_eff, s_cov, precision=_PRECISION)
        mmse = p["equalizer"] == "lmmse" and not p["unbiased"]
        z_hat, no_eff = equalized_to_estimate(x_hat, sigma2, mmse=mmse)
        z_hat = tf.reshape(z_hat, [batch, n * s])[:, :k]
        no_eff = tf.reshape(no_eff, [batch, n * s])[:, :k]
        if return_channel:
            return z_hat, no_eff, h, f
        return z_hat, no_eff

    def get_config(self):
        config = super().get_config()
        config.update(self._params)
        return config


class MIMOOFDMLinkChannel(OFDMLinkChannel):
    r"""MIMO-OFDM link (default: 2x2 CDL-A, two streams) with optional per-RE precoding.

    :class:`phy.ofdm.OFDMLinkChannel` with ``num_streams`` streams per slot
    (Kronecker pilots per stream, LMMSE/ZF detection per RE) plus the
    precoders of :func:`precoding_matrix`, computed per RE from the true
    channel (transmitter CSI) and applied to the whole grid, pilots included
    (so LS estimates the effective channel). Unit total transmit power per
    RE; ``snr_db`` is the SNR per RE and receive antenna (see
    :mod:`phy.ofdm`). Accepts every parameter of
    :class:`phy.ofdm.OFDMLinkChannel` (``channel_model`` "cdl" by default;
    "mimo-ofdm-cdl" fixes it) plus the following.

    Parameters
    ----------
    num_streams : `None` (default) | `int`
        Streams per RE; `None` = default of the precoder (``num_tx_ant`` for
        "none"). The number of effective subcarriers must be a multiple of it.

    precoding : "none" (default) | "svd" | "rzf"
        "svd" requires ``estimator="perfect"``: singular vectors have an
        arbitrary phase per RE, so the effective channel is not smooth across
        subcarriers and LS interpolation would fail.

    rzf_alpha : `None` (default) | `float`
        RZF regularization; `None` = ``num_rx_ant * no``
    """

    _DEFAULTS = {**OFDMLinkChannel._DEFAULTS, "channel_model": "cdl", "num_tx_ant": 2,
                 "num_rx_ant": 2, "num_streams": None, "precoding": "none", "rzf_alpha": None}

    def __init__(self, channel_model="cdl", num_tx_ant=2, num_rx_ant=2, num_streams=None,
                 precoding="none", rzf_alpha=None, **kwargs):
        super().__init__(channel_model=channel_model, num_tx_ant=num_tx_ant,
                         num_rx_ant=num_rx_ant, num_streams=num_streams, precoding=precoding,
                         rzf_alpha=rzf_alpha, **kwargs)

    @classmethod
    def _extra_param_names(cls):
        return ("num_streams", "precoding", "rzf_alpha")

    @classmethod
    def _num_streams(cls, p):
        return resolve_num_streams(p["precoding"], p["num_streams"], p["num_tx_ant"],
                                   p["num_rx_ant"])

    @classmethod
    def check_params(cls, **params):
        p = super().check_params(**params)
        p["precoding"] = check_choice("precoding", p["precoding"], PRECODINGS)
        p["num_streams"] = cls._num_streams(p)
        p["rzf_alpha"] = check_number("rzf_alpha", p["rzf_alpha"], minimum=0.0, allow_none=True)
        if p["precoding"] == "svd" and p["estimator"] != "perfect":
            raise ValueError(f"precoding='svd' needs estimator='perfect', got estimator="
                             f"{p['estimator']!r} (SVD precoders have an arbitrary phase per "
                             "RE, so the effective channel cannot be interpolated)")
        return p

    def _precode(self, x_rg, h_freq, no):
        p = self._params
        if p["precoding"] == "none":
            return super()._precode(x_rg, h_freq, no)
        s = self.num_streams
        h = tf.transpose(h_freq[:, 0, :, 0], [0, 3, 4, 1, 2])       # [N, T, F, Nr, Nt]
        if p["rzf_alpha"] is not None:
            alpha = p["rzf_alpha"]
        else:
            alpha = p["num_rx_ant"] * tf.reshape(no, [-1, 1, 1])   # [N, 1, 1]
        f = tf.stop_gradient(precoding_matrix(h, p["precoding"], s, alpha))  # [N, T, F, Nt, S]
        streams = tf.transpose(x_rg[:, 0], [0, 2, 3, 1])            # [N, T, F, S]
        x = tf.linalg.matvec(f, streams)                             # [N, T, F, Nt]
        x_tx = tf.transpose(x, [0, 3, 1, 2])[:, tf.newaxis]          # [N, 1, Nt, T, F]
        h_eff = tf.transpose(tf.matmul(h, f), [0, 3, 4, 1, 2])       # [N, Nr, S, T, F]
        return x_tx, h_eff[:, tf.newaxis, :, tf.newaxis]


register_channel("mimo", MIMOLinkChannel)
register_channel("mimo-ofdm-cdl", MIMOOFDMLinkChannel, {"channel_model": "cdl"})
