"""Dense heads and the final LayerNorm of the codec, with an optional quantized mode.

They behave exactly like ``keras.layers.Dense`` / ``LayerNormalization`` (same weights, same
order) unless ``quant`` is given; then they fake-quantize their input and output on the
engine's grids (see :mod:`fqliscs_tf.quant.fakequant`).
"""
import tf_keras as keras

from fqliscs_tf.quant.fakequant import as_quant_spec, fake_norm, make_ranges

__all__ = ["Head", "OutputNorm"]


def _quant_config(spec):
    return None if spec is None else spec.to_dict()


class Head(keras.layers.Dense):
    """Linear map on the last axis: ``[..., in] -> [..., units]`` float32.

    The encoder head makes the latent (``units = C``), the decoder head reads the received
    latent. Quantized mode: 8-bit input and output grids (quant points ``input``, ``output``).
    """
    quant_points = ("input", "output")
    kernels = ("",)

    def __init__(self, units, quant=None, **kwargs):
        # Keras' default (Glorot-uniform) kernel initializer, as WITT's heads: the Swin
        # blocks' TruncatedNormal(0.02) here leaves a model trained from scratch stuck
        # near the mean image (batch PSNR ~12 dB after 1,500 steps; docs/MODELS.md).
        super().__init__(units, **kwargs)
        self.quant = as_quant_spec(quant)

    def build(self, input_shape):
        super().build(input_shape)
        if self.quant is not None:
            self.ranges = make_ranges(self, self.quant, ["input", "output"])

    def call(self, x, training=None):
        if self.quant is None:
            return super().call(x)
        y = super().call(self.ranges["input"](x, training))
        return self.ranges["output"](y, training)

    def get_config(self):
        return {**super().get_config(), "quant": _quant_config(self.quant)}


class OutputNorm(keras.layers.LayerNormalization):
    """LayerNorm over channels (epsilon 1e-5): ``[B, H, W, C] -> [B, H, W, C]`` float32.

    Quantized mode: residual-width input grid, 8-bit output grid (``input``, ``output``).
    """
    quant_points = ("input", "output")
    kernels = ()

    def __init__(self, quant=None, **kwargs):
        kwargs.setdefault("epsilon", 1e-5)
        super().__init__(**kwargs)
        self.quant = as_quant_spec(quant)

    def build(self, input_shape):
        super().build(input_shape)
        if self.quant is not None:
            self.ranges = make_ranges(self, self.quant, ["output"], ["input"])

    def call(self, x, training=None):
        if self.quant is None:
            return super().call(x)
        r = self.ranges
        x = r["input"](x, training)
        return fake_norm(x, r["input"].scale(), self, self.quant, r["output"], training)

    def get_config(self):
        return {**super().get_config(), "quant": _quant_config(self.quant)}
