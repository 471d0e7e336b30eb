"""Learned CNN baselines with the same contract as :class:`fqliscs_tf.codec.JSCC`.

* :class:`DeepJSCC`: Bourtsoulatze, Kurka, Gündüz, "Deep joint source-channel coding
  for wireless image transmission", IEEE TCCN 2019. No SNR input (the paper trains one
  model per SNR; here one model is trained over the SNR list and ignores the SNR).
* :class:`ADJSCC`: Xu, Ai, Chen, Yang, Sun, Rodrigues, "Wireless image transmission
  using deep source channel coding with attention modules", IEEE TCSVT 2022, on the
  Deep JSCC backbone (no GDN): an Attention-Feature (AF) module follows every hidden
  block of the encoder and of the decoder, as in the authors' code (4 + 4 modules).

Data flow (``filters = (16, 32, 32, 32)``, ``num_down = 2``, ``c`` latent channels)::

    image -> conv5x5/2 16 -> conv5x5/2 32 -> conv5x5/1 32 -> conv5x5/1 32 -> conv5x5/1 c
          (PReLU after every conv, also the last one as in the paper; ADJSCC: AF after
          the first four) -> JSCCLink (power normalisation, channel)
          -> tconv5x5/1 32 -> tconv5x5/1 32 -> tconv5x5/1 32 -> tconv5x5/2 16
          -> tconv5x5/2 3 -> sigmoid

The total downsampling is ``2**num_down``, so ``CBR = c / (4**num_down * 6)``.
High resolution at the CBR of the Swin codecs (C = 96 at 1/16 downsampling, CBR 1/16)
uses the paper's own 1/4 network with ``c = 6`` (the paper evaluates Kodak with it);
:func:`cnn_config` makes this conversion from a Swin preset and its ``C``.
"""
import dataclasses
import math
from typing import Tuple

import tensorflow as tf
import tf_keras as keras

from . import presets
from .codec import JSCCModel

__all__ = ["CNNConfig", "cnn_config", "AFModule", "build_cnn_encoder", "build_cnn_decoder",
           "DeepJSCC", "ADJSCC", "count_macs"]


@dataclasses.dataclass(frozen=True)
class CNNConfig(presets.ConfigMixin):
    """Architecture of a Deep JSCC / ADJSCC encoder-decoder pair.

    Parameters
    ----------
    name : str
        Reported as the model name in results (e.g. ``"deepjscc"``).
    C : int
        Latent channels ``c`` (the paper's filters of the last encoder layer).
    filters : tuple of int
        Filters of the hidden encoder blocks, high to low resolution (default
        ``(16, 32, 32, 32)``, the paper's); the decoder mirrors them.
    num_down : int
        How many of the first blocks have stride 2 (default 2: downsampling 4).
    kernel_size : int
        Square kernel side of every (transposed) convolution (default 5).
    af_hidden : int
        Hidden units of each ADJSCC AF module (default 16: ADJSCC's ``256 // 16``);
        unused by Deep JSCC.
    """
    name: str
    C: int
    filters: Tuple[int, ...] = (16, 32, 32, 32)
    num_down: int = 2
    kernel_size: int = 5
    af_hidden: int = 16

    def __post_init__(self):
        if not self.filters or any(f < 1 for f in self.filters):
            raise ValueError(f"filters must be non-empty positive counts, got {self.filters!r}")
        if self.C < 1:
            raise ValueError(f"C must be a positive number of latent channels, got {self.C}")
        if not 0 <= self.num_down <= len(self.filters) + 1:
            raise ValueError(f"num_down={self.num_down} must be in [0, {len(self.filters) + 1}] "
                             f"for {len(self.filters) + 1} encoder layers")
        if self.kernel_size < 1 or self.af_hidden < 1:
            raise ValueError(f"kernel_size={self.kernel_size} and af_hidden={self.af_hidden} "
                             "must be positive")

    @property
    def downsampling(self):
        """Total spatial downsampling factor of the encoder."""
        return 2 ** self.num_down

    @property
    def num_downsamplings(self):
        """``i`` in the CBR formula: the number of 2x downsamplings."""
        return self.num_down

    @property
    def size_multiple(self):
        """Image sides must be multiples of this (the transposed convs then restore the size)."""
        return self.downsampling

    @property
    def cbr(self):
        return presets.cbr(self.C, self.num_down)

    @property
    def channels(self):
        """Channel counts along the encoder: ``(3, *filters, C)``."""
        return (3, *self.filters, self.C)

    @property
    def strides(self):
        """Stride of each encoder layer (the decoder layer mirroring it upsamples as much)."""
        n = len(self.filters) + 1
        return tuple(2 if i < self.num_down else 1 for i in range(n))


def cnn_config(name, preset="cifar10", C=None, **overrides):
    """A CNN configuration at the CBR of the Swin preset ``preset`` with ``C`` channels.

    ``C`` has its Swin meaning (the command line's ``--C``, default: the preset's):
    the latent width at the preset's downsampling ``2**i``. The CNN gets
    ``c = C * 4**num_down / 4**i`` channels, so that both have the CBR
    ``C / (4**i * 6)``; e.g. ``("lite", 96)`` gives ``c = 6`` at 1/4 (CBR 1/16) and
    ``("cifar10", 16)`` gives ``c = 16`` (CBR 1/6). ``overrides`` set the other
    :class:`CNNConfig` fields (``filters``, ``num_down``, ...).

    Raises ValueError when the CBR cannot be met with a whole number of channels.
    """
    swin = presets.get_config(preset, **({} if C is None else {"C": C}))
    probe = CNNConfig(name, C=1, **overrides)
    num = swin.C * 4 ** probe.num_down
    den = 4 ** swin.num_downsamplings
    if num % den:
        raise ValueError(f"CBR {swin.cbr:.6g} (preset {preset!r}, C={swin.C}) needs "
                         f"{num / den:g} latent channels at downsampling {probe.downsampling}; "
                         f"choose C as a multiple of {den // math.gcd(num // swin.C, den)}")
    return probe.replace(C=num // den)


class AFModule(keras.layers.Layer):
    """ADJSCC Attention-Feature module: SNR-aware channel-wise scaling.

    ``s = sigmoid(W2 relu(W1 [GAP(x), snr_db] + b1) + b2)``; output ``x * s``.

    Input
    -----
    x : [batch_size, h, w, channels], `tf.float32`
    snr_db : [batch_size, 1], `tf.float32`
        SNR [dB]

    Output
    ------
    : [batch_size, h, w, channels], `tf.float32`
    """

    def __init__(self, channels, hidden, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.hidden = int(channels), int(hidden)
        self.fc1 = keras.layers.Dense(self.hidden, activation="relu", name="fc1")
        self.fc2 = keras.layers.Dense(self.channels, activation="sigmoid", name="fc2")

    def call(self, inputs):
        x, snr_db = inputs
        context = tf.concat([tf.reduce_mean(x, axis=[1, 2]), snr_db], axis=-1)
        scale = self.fc2(self.fc1(context))
        return x * scale[:, None, None, :]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "hidden": self.hidden}


def _prelu(name):
    # Per-channel slopes (shared over space, so any image size works), PyTorch's 0.25 start.
    return keras.layers.PReLU(keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name)


def build_cnn_encoder(cfg: CNNConfig, attention=False, name="encoder"):
    """Functional encoder ``image -> latent`` (with ``attention``: ``[image, snr_db] -> latent``).

    Inputs: image ``[B, H, W, 3]`` float32 in [0, 1], snr_db ``[B, 1]`` [dB].
    Output: latent ``[B, H/ds, W/ds, C]`` float32, ``ds = cfg.downsampling``.
    """
    image = keras.Input([None, None, 3], name="image")
    snr = keras.Input([1], name="snr_db") if attention else None
    x = image
    last = len(cfg.strides) - 1
    for i, (ch, s) in enumerate(zip(cfg.channels[1:], cfg.strides)):
        x = keras.layers.Conv2D(ch, cfg.kernel_size, s, padding="same", name=f"conv{i}")(x)
        x = _prelu(f"prelu{i}")(x)
        if attention and i < last:
            x = AFModule(ch, cfg.af_hidden, name=f"af{i}")([x, snr])
    return keras.Model([image, snr] if attention else image, x, name=name)


def build_cnn_decoder(cfg: CNNConfig, attention=False, name="decoder"):
    """Functional decoder mirroring :func:`build_cnn_encoder` with transposed convolutions.

    Inputs: latent ``[B, h, w, C]`` float32, snr_db ``[B, 1]`` [dB] (with ``attention``).
    Output: image ``[B, h*ds, w*ds, 3]`` float32 in (0, 1) (sigmoid).
    """
    latent = keras.Input([None, None, cfg.C], name="latent")
    snr = keras.Input([1], name="snr_db") if attention else None
    x = latent
    n = len(cfg.strides)
    for j, k in enumerate(reversed(range(n))):
        ch, s = cfg.channels[k], cfg.strides[k]
        x = keras.layers.Conv2DTranspose(ch, cfg.kernel_size, s, padding="same",
                                         name=f"tconv{j}")(x)
        if j == n - 1:
            x = keras.layers.Activation("sigmoid", name="sigmoid")(x)
        else:
            x = _prelu(f"prelu{j}")(x)
            if attention:
                x = AFModule(ch, cfg.af_hidden, name=f"af{j}")([x, snr])
    return keras.Model([latent, snr] if attention else latent, x, name=name)


class _CNNJSCC(JSCCModel):
    """Encoder -> :class:`phy.JSCCLink` -> decoder; the contract of :class:`fqliscs_tf.codec.JSCC`.

    Call with ``(image, snr_db)``: image ``[B, H, W, 3]`` float32 in [0, 1], snr_db
    ``[B]`` float32 [dB]. Returns a dict with ``x_hat`` ``[B, H, W, 3]``, ``latent``
    ``[B, h, w, C]``, ``symbols`` and ``symbols_hat`` (complex64 ``[B, k]``, unit
    average power) and ``no_eff`` ``[B, k]``.

    Parameters
    ----------
    config : CNNConfig
    channel_type : str
        A channel name understood by :func:`phy.get_channel` (``"awgn"``, ``"rayleigh"``, ...).
    channel_kwargs : dict
        Extra arguments for the channel.
    """
    family = None
    config_class = CNNConfig
    uses_snr = False

    def __init__(self, config: CNNConfig, channel_type="awgn", channel_kwargs=None, **kwargs):
        if not isinstance(config, CNNConfig):
            raise ValueError(f"{type(self).__name__} needs a CNNConfig, "
                             f"got {type(config).__name__}")
        super().__init__(config, build_cnn_encoder(config, attention=self.uses_snr),
                         build_cnn_decoder(config, attention=self.uses_snr), channel_type,
                         channel_kwargs, **kwargs)


class DeepJSCC(_CNNJSCC):
    __doc__ = "Deep JSCC (Bourtsoulatze et al. 2019); ignores the SNR.\n\n" + _CNNJSCC.__doc__
    family = "deepjscc"


class ADJSCC(_CNNJSCC):
    __doc__ = ("ADJSCC (Xu et al. 2022): Deep JSCC with SNR-driven AF modules.\n\n"
               + _CNNJSCC.__doc__)
    family = "adjscc"
    uses_snr = True


def count_macs(cfg: CNNConfig, height, width, attention=False):
    """MACs for one ``height x width`` image, split by part (as :func:`fqliscs_tf.cost.count_macs`).

    Counted: every convolution weight product (a transposed convolution costs
    ``k^2 C_in C_out`` per *input* pixel) and the AF Dense layers (with ``attention``,
    i.e. ADJSCC). Not counted: biases, PReLU, sigmoid, pooling and the AF channel
    scaling, which are O(pixels x channels).

    Returns a dict with ``encoder``, ``decoder``, ``af`` (included in the encoder and
    decoder totals) and ``total``.
    """
    k2 = cfg.kernel_size ** 2
    chans, strides = cfg.channels, cfg.strides
    last = len(strides) - 1
    h, w = height, width
    enc = dec = af = 0
    for i, s in enumerate(strides):
        h, w = -(-h // s), -(-w // s)  # "same" padding: ceil
        enc += h * w * k2 * chans[i] * chans[i + 1]
        dec += h * w * k2 * chans[i + 1] * chans[i]  # the mirrored tconv reads h x w pixels
        if attention and i < last:
            # One AF on chans[i + 1] channels in the encoder and one in the decoder.
            ch = chans[i + 1]
            af += 2 * ((ch + 1) * cfg.af_hidden + cfg.af_hidden * ch)
    return {"encoder": int(enc + af // 2), "decoder": int(dec + af // 2), "af": int(af),
            "total": int(enc + dec + af)}
