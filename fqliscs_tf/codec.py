"""The Swin JSCC codec: encoder, decoder and the end-to-end model with a channel inside.

Images are float32 in [0, 1], channels last. The SNR is given in dB per image.
"""
import tensorflow as tf
import tf_keras as keras

from .heads import Head, OutputNorm
from .modnet import ChannelModNet
from .presets import CodecConfig
from .swin import PatchEmbed, PatchMerging, PatchReverseMerging, SwinBlock

__all__ = ["build_encoder", "build_decoder", "JSCCModel", "JSCC", "check_image_size"]


def _stage(x, dim, depth, heads, cfg, prefix, quant):
    for j in range(depth):
        shift = 0 if j % 2 == 0 else cfg.window_size // 2
        x = SwinBlock(dim, heads, cfg.window_size, shift, cfg.mlp_ratio, quant=quant,
                      name=f"{prefix}_block{j}")(x)
    return x


def _modnet(cfg, dim, quant):
    return ChannelModNet(dim, int(dim * cfg.modnet_hidden_ratio), cfg.modnet_layers,
                         cfg.modulator_hidden, quant=quant, name="modnet")


def build_encoder(cfg: CodecConfig, name="encoder", quant=None):
    """Functional encoder ``[image, snr_db] -> latent``.

    Inputs: image ``[B, H, W, 3]`` float32 in [0, 1], snr_db ``[B, 1]`` [dB].
    Output: latent ``[B, H/ds, W/ds, C]`` float32, ``ds = cfg.downsampling``.
    ``quant``: None (float) or a QuantSpec (quantized mode; the SNR must then be on its
    grid, see :func:`fqliscs_tf.quant.fakequant.quantize_snr`).
    """
    image = keras.Input([None, None, 3], name="image")
    snr = keras.Input([1], name="snr_db")
    x = PatchEmbed(cfg.embed_dims[0], cfg.patch_size, quant=quant, name="patch_embed")(image)
    for i, (dim, depth, heads) in enumerate(zip(cfg.embed_dims, cfg.depths, cfg.num_heads)):
        if i > 0:
            x = PatchMerging(dim, quant=quant, name=f"stage{i}_merge")(x)
        x = _stage(x, dim, depth, heads, cfg, f"stage{i}", quant)
    x = OutputNorm(quant=quant, name="norm")(x)
    x = _modnet(cfg, cfg.embed_dims[-1], quant)([x, snr])
    latent = Head(cfg.C, quant=quant, name="head")(x)
    return keras.Model([image, snr], latent, name=name)


def build_decoder(cfg: CodecConfig, name="decoder", quant=None):
    """Functional decoder ``[latent, snr_db] -> image``.

    Inputs: latent ``[B, h, w, C]`` float32, snr_db ``[B, 1]`` [dB].
    Output: image ``[B, h*ds, w*ds, 3]`` float32 (not clipped; clip to [0, 1] for display;
    in quantized mode it is on the 8-bit grid of [0, 1]).
    """
    latent = keras.Input([None, None, cfg.C], name="latent")
    snr = keras.Input([1], name="snr_db")
    dims = cfg.embed_dims[::-1]
    depths, heads = cfg.depths[::-1], cfg.num_heads[::-1]
    x = Head(dims[0], quant=quant, name="head")(latent)
    x = _modnet(cfg, dims[0], quant)([x, snr])
    for i, (dim, depth, h) in enumerate(zip(dims, depths, heads)):
        x = _stage(x, dim, depth, h, cfg, f"stage{i}", quant)
        last = i == len(dims) - 1
        x = PatchReverseMerging(3 if last else dims[i + 1], cfg.patch_size if last else 2,
                                image_output=last, quant=quant,
                                name=f"stage{i}_upsample")(x)
    return keras.Model([latent, snr], x, name=name)


def check_image_size(height, width, cfg: CodecConfig):
    """Raise ValueError unless both sides are multiples of ``cfg.size_multiple``."""
    m = cfg.size_multiple
    if height % m or width % m:
        raise ValueError(f"image size {height}x{width} is not a multiple of {m} "
                         f"(downsampling {cfg.downsampling} x window {cfg.window_size}) "
                         f"for preset {cfg.name!r}; crop or pad it first")


class JSCCModel(keras.Model):
    """Encoder -> channel -> decoder, trainable end to end through the channel.

    The shared contract of every codec family. Call with ``(image, snr_db)``:
    image ``[B, H, W, 3]`` float32 in [0, 1], snr_db ``[B]`` float32 [dB]. Returns a
    dict with ``x_hat`` ``[B, H, W, 3]`` (unclipped), ``latent`` ``[B, h, w, C]``,
    ``symbols`` and ``symbols_hat`` (complex64 ``[B, k]``, unit average power) and
    ``no_eff`` ``[B, k]``. Subclasses pass their encoder and decoder; with
    ``uses_snr`` they take ``[x, snr_db[B, 1]]``, otherwise ``x`` alone.
    """
    uses_snr = True

    def __init__(self, config, encoder, decoder, channel_type="awgn", channel_kwargs=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.set_channel(channel_type, **(channel_kwargs or {}))

    def set_channel(self, channel_type, **channel_kwargs):
        """Replace the channel (the codec weights are unchanged)."""
        from phy import JSCCLink
        self.channel_type = channel_type
        self.channel_kwargs = dict(channel_kwargs)
        self.link = JSCCLink(channel_type, **channel_kwargs)

    @property
    def cbr(self):
        """Channel bandwidth ratio k/n: complex channel uses per real source value."""
        return self.config.cbr

    def call(self, inputs, training=False):
        image, snr_db = inputs
        snr_db = tf.reshape(tf.cast(snr_db, tf.float32), [-1])
        snr_col = snr_db[:, None]
        latent = self.encoder([image, snr_col] if self.uses_snr else image, training=training)
        # float32 at the link and at the output also under a mixed-precision policy.
        latent = tf.cast(latent, tf.float32)
        out = self.link(latent, snr_db)
        y = out["latent_hat"]
        x_hat = self.decoder([y, snr_col] if self.uses_snr else y, training=training)
        x_hat = tf.cast(x_hat, tf.float32)
        return {"x_hat": x_hat, "latent": latent, "symbols": out["symbols"],
                "symbols_hat": out["symbols_hat"], "no_eff": out["no_eff"]}

    def build_for(self, height=None, width=None):
        """Create all weights by running a dummy image through the model."""
        m = self.config.size_multiple
        image = tf.zeros([1, height or m, width or m, 3])
        self((image, tf.constant([10.0])))
        return self


class JSCC(JSCCModel):
    """The Swin JSCC codec (WITT / SwinJSCC family) with a channel inside.

    Parameters
    ----------
    config : CodecConfig
    channel_type : str
        A channel name understood by :func:`phy.get_channel` (``"awgn"``, ``"rayleigh"``, ...).
    channel_kwargs : dict
        Extra arguments for the channel.
    """

    def __init__(self, config: CodecConfig, channel_type="awgn", channel_kwargs=None, **kwargs):
        super().__init__(config, build_encoder(config), build_decoder(config), channel_type,
                         channel_kwargs, **kwargs)
