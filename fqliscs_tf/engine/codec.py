"""The integer inference engine: encoder -> channel -> decoder on integer tensors only.

:class:`IntegerCodec` runs the exported parameters (:mod:`.export`) with TensorFlow integer
ops. Between input quantization (uint8 pixels, the int8 SNR code) and output dequantization
(uint8 pixels) every tensor is an integer; ``tests/test_engine.py`` traces the graph and fails
on any floating-point op or tensor.

Channels: ``"awgn"`` and ``"rayleigh"`` (fast fading, perfect-CSI MMSE) are modelled in
integers (:mod:`phy.integer_channel`); every other channel type of :mod:`phy` (OFDM, MIMO, ...)
gets the int8 I/Q symbols dequantized into the float Sionna channel, and the received symbols
quantized back on the symbol grid ("float channel" mode), since those links are float by
nature.
"""
import numpy as np
import tensorflow as tf

from fqliscs_tf.engine.export import load_integer_codec
from fqliscs_tf.engine.layers import layer_forward, requantize
from fqliscs_tf.quant.fixedpoint import quantize_multiplier
from phy.integer_channel import INT_CHANNEL_TYPES, get_int_channel, int_power_normalize

__all__ = ["IntegerCodec", "quantize_image", "quantize_snr_db"]


def quantize_image(images):
    """Float images in [0, 1] ``[B, H, W, 3]`` -> int32 pixels ``round(255 x)`` in [0, 255]."""
    x = tf.clip_by_value(tf.convert_to_tensor(images, tf.float32), 0.0, 1.0)
    return tf.cast(tf.round(x * 255.0), tf.int32)


def quantize_snr_db(snr_db, step_db):
    """SNR [dB] ``[B]`` -> int8 SNR codes ``round(snr / step)`` (int32, clipped to +-127)."""
    snr = np.asarray(snr_db, np.float64).reshape(-1)
    if not np.all(np.isfinite(snr)):
        raise ValueError(f"SNR values must be finite, got {snr_db!r}")
    codes = np.round(snr / step_db)
    if np.any(np.abs(codes) > 127):
        raise ValueError(f"SNR {snr_db!r} dB is outside the int8 SNR grid "
                         f"(+-{127 * step_db} dB in steps of {step_db} dB)")
    return tf.constant(codes.astype(np.int32))


class IntegerCodec:
    """Integer-only Swin JSCC codec with its channel.

    Parameters
    ----------
    params : IntegerParams or str
        Exported parameters, or a folder written by
        :func:`~fqliscs_tf.engine.export.save_integer_codec`.
    channel_type : str
        ``"awgn"``/``"rayleigh"`` (integer channel), ``"none"`` (noiseless) or any other
        :data:`phy.CHANNEL_TYPES` name (float channel mode).
    channel_kwargs : dict
        Extra arguments of the float channel.
    jit_compile : bool
        Run the integer graph with XLA (default True: about 4x faster on CPU after a
        compile of tens of seconds per image size; False suits small or one-off inputs).
    """

    def __init__(self, params, channel_type="awgn", channel_kwargs=None, jit_compile=True):
        self.jit_compile = bool(jit_compile)
        if isinstance(params, str):
            params = load_integer_codec(params)
        self.params = params
        self.config, self.spec = params.config, params.spec
        self.set_channel(channel_type, **(channel_kwargs or {}))
        dec_head = params.decoder[0]
        if dec_head[0] != "head":
            raise ValueError("the decoder's first exported layer must be its head")
        self._rx_mult = quantize_multiplier(self.spec.symbol_scale / dec_head[2]["in"])

    @property
    def cbr(self):
        return self.config.cbr

    def set_channel(self, channel_type, **channel_kwargs):
        """Replace the channel (``"none"`` = noiseless)."""
        self.channel_type = channel_type
        self.channel_kwargs = dict(channel_kwargs)
        self._int_channel = None
        self._float_channel = None
        if channel_type in INT_CHANNEL_TYPES and not channel_kwargs:
            self._int_channel = get_int_channel(channel_type, self.spec.symbol_scale,
                                                self.spec.snr_step_db)
        elif channel_type != "none":
            from phy import get_channel
            self._float_channel = get_channel(channel_type, **channel_kwargs)
        # XLA: about 4x faster than graph mode on CPU; integer results are identical, but
        # the channel's stateless random integers differ between XLA and graph mode.
        self._integer_fn = tf.function(self._integer_link, jit_compile=self.jit_compile,
                                       reduce_retracing=True)

    # ------------------------------------------------------------------ integer parts
    def encode(self, pixels, snr_q):
        """int32 pixels ``[B, H, W, 3]`` in [0, 255], snr_q ``[B]`` -> int8-valued latent
        ``[B, H/ds, W/ds, C]`` (tf.int32)."""
        x = tf.cast(pixels, tf.int32)
        snr_col = tf.cast(tf.reshape(snr_q, [-1, 1]), tf.int32)
        for kind, arrays, scales in self.params.encoder:
            x = layer_forward(kind, x, arrays, scales, self.spec, snr_col,
                              self.config.patch_size)
        return x

    def symbols(self, latent):
        """Latent -> unit-power int I/Q symbols ``(re, im)`` ``[B, k]`` (symbol LSBs)."""
        return int_power_normalize(latent, self.spec.symbol_scale, self.spec.symbol_bits)

    def decode_symbols(self, re, im, latent_shape, snr_q):
        """Received symbols (symbol LSBs, tf.int32 ``[B, k]``) -> uint8-valued pixels
        ``[B, H, W, 3]`` tf.int32."""
        y = tf.reshape(tf.stack([re, im], axis=-1), latent_shape)
        y = requantize(y, self._rx_mult, self.spec.act_bits)
        snr_col = tf.cast(tf.reshape(snr_q, [-1, 1]), tf.int32)
        for kind, arrays, scales in self.params.decoder:
            y = layer_forward(kind, y, arrays, scales, self.spec, snr_col,
                              self.config.patch_size)
        return y

    def _integer_link(self, pixels, snr_q, seed):
        """The whole integer graph: pixels, SNR codes, seed -> pixels and symbols."""
        latent = self.encode(pixels, snr_q)
        re, im = self.symbols(latent)
        if self._int_channel is not None:
            re_hat, im_hat = self._int_channel(re, im, snr_q, seed)
        else:
            re_hat, im_hat = re, im
        x_hat = self.decode_symbols(re_hat, im_hat, tf.shape(latent), snr_q)
        return {"x_hat": x_hat, "latent": latent, "symbols_re": re, "symbols_im": im,
                "symbols_hat_re": re_hat, "symbols_hat_im": im_hat}

    def integer_graph(self, height, width, batch_size=1):
        """The traced integer-only ``tf.Graph`` of :meth:`_integer_link` (for checks)."""
        spec = (tf.TensorSpec([batch_size, height, width, 3], tf.int32),
                tf.TensorSpec([batch_size], tf.int32), tf.TensorSpec([2], tf.int32))
        return tf.function(self._integer_link).get_concrete_function(*spec).graph

    # ------------------------------------------------------------------ float boundary
    def __call__(self, images, snr_db, seed=(0, 0)):
        """Float in, float out, integers inside.

        Parameters
        ----------
        images : ``[B, H, W, 3]`` float in [0, 1] (quantized to uint8 pixels)
        snr_db : float or ``[B]`` [dB] (quantized to the int8 SNR grid)
        seed : pair of int, channel randomness (integer channels)

        Returns
        -------
        dict: ``x_hat`` ``[B, H, W, 3]`` float32 in [0, 1] (pixels / 255), ``latent`` int32,
        ``symbols``/``symbols_hat`` complex64 ``[B, k]`` (dequantized, unit power).
        """
        images = tf.convert_to_tensor(images, tf.float32)
        batch = int(images.shape[0])
        snr = np.broadcast_to(np.asarray(snr_db, np.float64).reshape(-1), [batch]) \
            if np.size(snr_db) in (1, batch) else None
        if snr is None:
            raise ValueError(f"snr_db must be a scalar or have {batch} values, got {snr_db!r}")
        snr_q = quantize_snr_db(snr, self.spec.snr_step_db)
        pixels = quantize_image(images)
        seed = tf.constant(np.asarray(seed, np.int32).reshape(2))
        if self._float_channel is None:
            out = self._integer_fn(pixels, snr_q, seed)
        else:
            out = self._float_link(pixels, snr_q)
        s = self.spec.symbol_scale
        return {"x_hat": tf.cast(out["x_hat"], tf.float32) / 255.0, "latent": out["latent"],
                "symbols": tf.complex(tf.cast(out["symbols_re"], tf.float32) * s,
                                      tf.cast(out["symbols_im"], tf.float32) * s),
                "symbols_hat": tf.complex(tf.cast(out["symbols_hat_re"], tf.float32) * s,
                                          tf.cast(out["symbols_hat_im"], tf.float32) * s)}

    def _float_link(self, pixels, snr_q):
        """Integer encoder -> dequantized symbols -> float Sionna channel -> symbols
        quantized on the symbol grid -> integer decoder."""
        latent = self.encode(pixels, snr_q)
        re, im = self.symbols(latent)
        s = self.spec.symbol_scale
        z = tf.complex(tf.cast(re, tf.float32) * s, tf.cast(im, tf.float32) * s)
        snr_db = tf.cast(snr_q, tf.float32) * self.spec.snr_step_db
        z_hat, _ = self._float_channel(z, snr_db)
        lim = float(2 ** 30)
        re_hat = tf.cast(tf.clip_by_value(tf.round(tf.math.real(z_hat) / s), -lim, lim), tf.int32)
        im_hat = tf.cast(tf.clip_by_value(tf.round(tf.math.imag(z_hat) / s), -lim, lim), tf.int32)
        x_hat = self.decode_symbols(re_hat, im_hat, tf.shape(latent), snr_q)
        return {"x_hat": x_hat, "latent": latent, "symbols_re": re, "symbols_im": im,
                "symbols_hat_re": re_hat, "symbols_hat_im": im_hat}
