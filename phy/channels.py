# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Keras channel layers (wrapping Sionna blocks) and the JSCC link used by the codec.

All channel layers share one contract::

    z_hat, no_eff = channel(z, snr_db)

with ``z`` unit-power complex symbols ``[batch_size, k]`` and ``snr_db`` the
average received SNR [dB] (one per example, or a scalar).

``no_eff`` convention (all channels): the per-symbol mean squared error of the
returned estimate given the channel state, for unit-power symbols,
``no_eff = E[|z_hat - z|^2 | h, no]``:

* ``"none"``: 0;
* ``"awgn"``: ``z_hat = y``, ``no_eff = no``;
* ``"rayleigh*"``: MMSE ``z_hat = conj(h) y / (|h|^2 + no)``,
  ``no_eff = no / (|h|^2 + no)`` (in ``(0, 1]``).

The Rayleigh MMSE estimate is biased, ``E[z_hat | z, h] = a z`` with
``a = |h|^2 / (|h|^2 + no) = 1 - no_eff``. The noise variance of the equivalent
*unbiased* estimate ``z_hat / a`` (the convention of Sionna's
``LMMSEEqualizer``) is ``no_eff / (1 - no_eff) = no / |h|^2``; for AWGN both
conventions give ``no``.

The Sionna blocks always run in single precision (``precision="single"``),
independently of ``sionna.phy.config.precision``. Their random numbers come
from ``sionna.phy.config.tf_rng``: seed it eagerly (``fqliscs_tf.utils.set_seed``)
before building Keras models that contain these layers.
"""
import tensorflow as tf
import tf_keras as keras
from sionna.phy.channel import AWGN, GenerateFlatFadingChannel

from .symbols import complex_to_real, normalize_power, real_to_complex
from .utils import snr_db_to_no

__all__ = [
    "CHANNEL_TYPES",
    "IdentityChannel",
    "AWGNChannel",
    "RayleighChannel",
    "JSCCLink",
    "get_channel",
    "lookup_channel",
    "num_channel_uses",
    "register_channel",
]

_PRECISION = "single"
_RAYLEIGH_FADINGS = ("block", "fast")


def _as_symbols(z):
    """Checks and casts channel input symbols to complex64 [batch_size, k]."""
    z = tf.convert_to_tensor(z)
    if not z.dtype.is_complex:
        raise ValueError(f"Channel input must be complex symbols, got dtype {z.dtype.name}")
    if z.shape.rank is not None and z.shape.rank != 2:
        raise ValueError(f"Channel input must have shape [batch_size, k], got {z.shape}")
    return tf.cast(z, tf.complex64)


def _per_symbol_no(snr_db, z):
    """Noise variance ``no`` [batch_size, k] (float32) from a scalar/[batch]/[batch, 1|k] SNR."""
    no = snr_db_to_no(snr_db)
    rank = no.shape.rank
    if rank == 1:
        no = no[:, tf.newaxis]
    elif rank not in (0, 2):
        raise ValueError(
            f"snr_db must be a scalar or have shape [batch_size] (or [batch_size, 1|k]), "
            f"got shape {no.shape}")
    return tf.broadcast_to(no, tf.shape(z))


class IdentityChannel(keras.layers.Layer):
    r"""Noiseless pass-through channel (``channel_type="none"``), for tests and upper bounds.

    Input
    -----
    z : [batch_size, k], `tf.complex64`
        Channel input symbols

    snr_db : Scalar or [batch_size], `tf.float32`
        Ignored (accepted for interface compatibility) [dB]

    Output
    ------
    z_hat : [batch_size, k], `tf.complex64`
        Equal to ``z``

    no_eff : [batch_size, k], `tf.float32`
        Zeros
    """

    def call(self, z, snr_db=None):  # pylint: disable=arguments-differ,unused-argument
        z = _as_symbols(z)
        return tf.identity(z), tf.zeros(tf.shape(z), tf.float32)


class AWGNChannel(keras.layers.Layer):
    r"""Complex AWGN channel, :math:`y = z + n`, :math:`n \sim \mathcal{CN}(0, N_0)`.

    Wraps :class:`sionna.phy.channel.AWGN` with
    ``no = snr_db_to_no(snr_db)`` broadcast per example (unit symbol power
    assumed, so ``snr_db`` is the SNR per symbol).

    Input
    -----
    z : [batch_size, k], `tf.complex64`
        Channel input symbols with unit average power

    snr_db : Scalar or [batch_size], `tf.float32`
        SNR [dB], one per example or one for the whole batch

    Output
    ------
    z_hat : [batch_size, k], `tf.complex64`
        Received symbols ``y = z + n``

    no_eff : [batch_size, k], `tf.float32`
        Noise variance per symbol, ``no = 10^(-snr_db/10)`` (= MSE of ``z_hat``)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._awgn = AWGN(precision=_PRECISION)

    def call(self, z, snr_db):  # pylint: disable=arguments-differ
        z = _as_symbols(z)
        no = _per_symbol_no(snr_db, z)
        z_hat = self._awgn(z, no)
        return z_hat, no


class RayleighChannel(keras.layers.Layer):
    r"""Flat Rayleigh fading with perfect CSI and scalar MMSE equalization.

    .. math::
        y = h z + n,\quad h \sim \mathcal{CN}(0, 1),\quad n \sim \mathcal{CN}(0, N_0),
        \qquad \hat{z} = \frac{h^* y}{|h|^2 + N_0}

    ``h`` is drawn with :class:`sionna.phy.channel.GenerateFlatFadingChannel`
    (1x1) and ``n`` with :class:`sionna.phy.channel.AWGN`. Since
    :math:`E|h|^2 = 1`, ``snr_db`` is the average received SNR.

    Parameters
    ----------
    fading : "fast" (default) | "block"
        "fast": an independent ``h`` per symbol (the WITT convention);
        "block": one ``h`` per example, constant over its ``k`` symbols.

    Input
    -----
    z : [batch_size, k], `tf.complex64`
        Channel input symbols with unit average power

    snr_db : Scalar or [batch_size], `tf.float32`
        Average received SNR [dB]

    return_channel : `bool`, (default `False`)
        If `True`, also return the channel coefficients ``h``

    Output
    ------
    z_hat : [batch_size, k], `tf.complex64`
        MMSE estimates of ``z`` (biased, see module docstring)

    no_eff : [batch_size, k], `tf.float32`
        Per-symbol MSE of ``z_hat``: ``no / (|h|^2 + no)``

    h : [batch_size, k], `tf.complex64`
        Channel coefficient seen by each symbol. Only returned if
        ``return_channel`` is `True`.
    """

    def __init__(self, fading="fast", **kwargs):
        if fading not in _RAYLEIGH_FADINGS:
            raise ValueError(
                f"Unknown fading {fading!r} for RayleighChannel; "
                f"valid values: {', '.join(map(repr, _RAYLEIGH_FADINGS))}")
        super().__init__(**kwargs)
        self._fading = fading
        self._gen_h = GenerateFlatFadingChannel(1, 1, precision=_PRECISION)
        self._awgn = AWGN(precision=_PRECISION)

    @property
    def fading(self):
        """`str`, "fast" | "block" : Fading mode"""
        return self._fading

    def call(self, z, snr_db, return_channel=False):  # pylint: disable=arguments-differ
        z = _as_symbols(z)
        no = _per_symbol_no(snr_db, z)
        shape = tf.shape(z)
        if self._fading == "block":
            h = tf.reshape(self._gen_h(shape[0]), [shape[0], 1])
            h = tf.broadcast_to(h, shape)
        else:
            h = tf.reshape(self._gen_h(shape[0] * shape[1]), shape)
        y = self._awgn(h * z, no)
        gain = tf.math.real(h) ** 2 + tf.math.imag(h) ** 2
        denom = gain + no
        z_hat = tf.math.conj(h) * y / tf.complex(denom, tf.zeros_like(denom))
        no_eff = no / denom
        if return_channel:
            return z_hat, no_eff, h
        return z_hat, no_eff

    def get_config(self):
        config = super().get_config()
        config.update({"fading": self._fading})
        return config


# name -> (layer class, fixed constructor arguments)
_CHANNELS = {
    "none": (IdentityChannel, {}),
    "awgn": (AWGNChannel, {}),
    "rayleigh": (RayleighChannel, {"fading": "fast"}),
    "rayleigh-fast": (RayleighChannel, {"fading": "fast"}),
    "rayleigh-block": (RayleighChannel, {"fading": "block"}),
}

#: Valid ``channel_type`` names. "rayleigh" is an alias of "rayleigh-fast".
#: Updated by :func:`register_channel` (importing :mod:`phy` registers the
#: OFDM and MIMO links of :mod:`phy.ofdm` and :mod:`phy.mimo`).
CHANNEL_TYPES = tuple(_CHANNELS)


def register_channel(name, cls, fixed=None):
    """Adds a channel layer class to the registry used by :func:`get_channel`.

    Parameters
    ----------
    name : `str`
        Lower-case channel type name (e.g. ``"ofdm-tdl"``)

    cls : subclass of `keras.layers.Layer`
        Layer with the contract ``z_hat, no_eff = cls(**kwargs)(z, snr_db)``

    fixed : `None` (default) | `dict`
        Constructor arguments implied by ``name`` (e.g.
        ``{"channel_model": "tdl"}``); a conflicting user value is an error.
    """
    global CHANNEL_TYPES  # pylint: disable=global-statement
    if not isinstance(name, str) or not name or name != name.lower():
        raise ValueError(f"Channel type names must be non-empty lower-case strings, got {name!r}")
    if name in _CHANNELS and _CHANNELS[name] != (cls, dict(fixed or {})):
        raise ValueError(f"Channel type {name!r} is already registered")
    _CHANNELS[name] = (cls, dict(fixed or {}))
    CHANNEL_TYPES = tuple(_CHANNELS)


def lookup_channel(name):
    """Returns ``(layer class, fixed constructor arguments)`` of a channel type.

    Raises ``ValueError`` naming the valid types if ``name`` is unknown
    (case-insensitive).
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _CHANNELS:
        raise ValueError(
            f"Unknown channel type {name!r}; valid channel types: {', '.join(CHANNEL_TYPES)}")
    cls, fixed = _CHANNELS[key]
    return cls, dict(fixed)


def get_channel(name, **kwargs):
    """Creates a channel layer by name.

    Parameters
    ----------
    name : `str`, one of :data:`CHANNEL_TYPES`
        "none" | "awgn" | "rayleigh" | "rayleigh-fast" | "rayleigh-block",
        and (registered by :mod:`phy.ofdm` / :mod:`phy.mimo`) "ofdm-rayleigh"
        | "ofdm-tdl" | "ofdm-cdl" | "ofdm-umi" | "ofdm-uma" | "mimo" |
        "mimo-ofdm-cdl". "rayleigh" means fast fading (an independent gain
        per symbol, as in WITT). Case-insensitive.

    kwargs :
        Passed to the layer constructor (e.g. ``name``). Arguments implied by
        ``name`` (the fading mode of Rayleigh types, the ``channel_model`` of
        OFDM types) are fixed; a conflicting value is an error.

    Output
    ------
    channel : `keras.layers.Layer`
        :class:`IdentityChannel` | :class:`AWGNChannel` | :class:`RayleighChannel`
        | :class:`phy.ofdm.OFDMLinkChannel` | :class:`phy.mimo.MIMOLinkChannel`
        | :class:`phy.mimo.MIMOOFDMLinkChannel`
    """
    cls, fixed = lookup_channel(name)
    for arg, value in fixed.items():
        if arg in kwargs and kwargs[arg] != value:
            raise ValueError(
                f"Channel type {name!r} implies {arg}={value!r}, got {arg}={kwargs[arg]!r}")
    return cls(**{**kwargs, **fixed})


def num_channel_uses(latent_shape):
    """Number of complex channel uses ``k`` per example for a latent shape.

    Input
    -----
    latent_shape : `tuple` | `list` | `tf.TensorShape`
        Full latent shape ``[batch_size, h, w, c]``; the batch entry is
        ignored and may be `None`.

    Output
    ------
    k : `int`
        ``h * w * c / 2``

    Raises
    ------
    ValueError
        If the shape does not have 4 entries, h/w/c are unknown, or
        ``h * w * c`` is odd.
    """
    shape = tf.TensorShape(latent_shape)
    if shape.rank != 4:
        raise ValueError(
            f"latent_shape must be [batch_size, h, w, c] (4 entries), got {latent_shape!r}")
    n = shape[1:].num_elements()
    if n is None:
        raise ValueError(f"latent_shape {latent_shape!r} has unknown h, w or c")
    if n % 2:
        raise ValueError(
            f"latent_shape {latent_shape!r} has an odd number of values per example ({n}); "
            "complex symbols need pairs of real values")
    return n // 2


_LAYER_KWARGS = ("name", "trainable", "dtype", "dynamic")


class JSCCLink(keras.layers.Layer):
    r"""Sends a real JSCC latent over a channel: the link used by the codec.

    ``latent -> real_to_complex -> normalize_power -> channel -> complex_to_real``.
    Adjacent real values of each (row-major flattened) example form one
    complex symbol, ``z = x[2i] + j x[2i+1]``; each example is normalized to
    unit average symbol power, so ``snr_db`` is the SNR per channel use.

    Parameters
    ----------
    channel_type : `str`, one of :data:`CHANNEL_TYPES`
        See :func:`get_channel`. "rayleigh" = fast fading per symbol (WITT
        convention); "none" is noiseless.

    denormalize : `bool`, (default `False`)
        If `False`, ``latent_hat`` is in power-normalized units (the decoder
        must not know the transmit power). If `True`, ``latent_hat`` is
        rescaled by the per-example transmit amplitude ``sqrt(P)`` (WITT
        convention, assumes ``P`` is known at the receiver).

    channel_kwargs :
        Extra arguments of the channel layer (e.g. ``fading`` consistent with
        ``channel_type``). Keras layer arguments (``name``, ``trainable``,
        ``dtype``) are used by this layer.

    Input
    -----
    latent : [batch_size, h, w, c], `tf.float32`
        Real latent (batch, h, w may be dynamic; ``h w c`` must be even)

    snr_db : Scalar or [batch_size], `tf.float32`
        (Average received) SNR [dB]

    Output
    ------
    : `dict` with
        latent_hat : [batch_size, h, w, c], `tf.float32`
            Received latent
        symbols : [batch_size, k], `tf.complex64`
            Transmitted unit-power symbols, ``k = h w c / 2``
        symbols_hat : [batch_size, k], `tf.complex64`
            Channel output / equalized symbols (power-normalized units)
        no_eff : [batch_size, k], `tf.float32`
            Per-symbol MSE of ``symbols_hat`` (see module docstring):
            0 ("none"), ``no`` ("awgn"), ``no/(|h|^2+no)`` ("rayleigh*")
    """

    def __init__(self, channel_type, denormalize=False, **kwargs):
        layer_kwargs = {k: kwargs.pop(k) for k in _LAYER_KWARGS if k in kwargs}
        super().__init__(**layer_kwargs)
        self._channel_type = channel_type
        self._channel_kwargs = dict(kwargs)
        self._denormalize = bool(denormalize)
        self._channel = get_channel(channel_type, **kwargs)
        #: Optional callable applied to the unit-power symbols before the channel, e.g. the
        #: int8 I/Q rounding of a quantized codec (``[batch_size, k]`` complex64 -> same).
        self.symbol_quantizer = None

    @property
    def channel_type(self):
        """`str` : Channel type name"""
        return self._channel_type

    @property
    def channel(self):
        """`keras.layers.Layer` : The channel layer"""
        return self._channel

    @property
    def denormalize(self):
        """`bool` : Whether ``latent_hat`` is rescaled to the transmit power"""
        return self._denormalize

    @staticmethod
    def num_channel_uses(latent_shape):
        """Complex channel uses ``k`` per example; see :func:`num_channel_uses`."""
        return num_channel_uses(latent_shape)

    def call(self, latent, snr_db):  # pylint: disable=arguments-differ
        latent = tf.convert_to_tensor(latent)
        if latent.dtype.is_complex:
            raise ValueError(f"JSCCLink expects a real latent, got dtype {latent.dtype.name}")
        if latent.shape.rank is not None and latent.shape.rank != 4:
            raise ValueError(
                f"JSCCLink expects a latent [batch_size, h, w, c], got shape {latent.shape}")
        latent = tf.cast(latent, tf.float32)
        z, power = normalize_power(real_to_complex(latent), return_power=True)
        if self.symbol_quantizer is not None:
            z = self.symbol_quantizer(z)
        z_hat, no_eff = self._channel(z, snr_db)
        out = z_hat
        if self._denormalize:
            amp = tf.sqrt(power)
            out = z_hat * tf.complex(amp, tf.zeros_like(amp))
        dynamic = tf.shape(latent)
        if latent.shape.rank is None:
            shape = dynamic[1:]
        else:  # keep the static sizes that are known
            shape = [latent.shape[i] if latent.shape[i] is not None else dynamic[i]
                     for i in range(1, 4)]
        latent_hat = complex_to_real(out, shape)
        return {"latent_hat": latent_hat, "symbols": z, "symbols_hat": z_hat,
                "no_eff": no_eff}

    def get_config(self):
        config = super().get_config()
        config.update({"channel_type": self._channel_type,
                       "denormalize": self._denormalize,
                       **self._channel_kwargs})
        return config
