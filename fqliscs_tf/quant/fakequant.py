"""Fake quantization for quantization-aware training (QAT) of the codec layers.

The codec layers (:mod:`fqliscs_tf.swin`, :mod:`fqliscs_tf.modnet`, :mod:`fqliscs_tf.layers`)
take a ``quant`` argument (a :class:`QuantSpec` or its dict). With it, each layer inserts
fake-quantization points exactly where the integer engine (:mod:`fqliscs_tf.engine`)
requantizes, and uses the training forms of the integer nonlinear ops
(:func:`~.intops.fake_gelu`, :func:`~.intops.fake_softmax`, :func:`~.intops.fake_sigmoid`,
:func:`~.intops.fake_layer_norm`). Kernels are fake-quantized per output channel by TF-MOT
(:mod:`.qat`), not here.

Activation grids are symmetric with zero point 0: ``q in [-(2**(b-1) - 1), 2**(b-1) - 1]``,
``scale = absmax / (2**(b-1) - 1)``, where ``absmax`` is an exponential moving average of the
batch maximum of ``|x|`` (the first training batch sets it). This is TF's
``fake_quant_with_min_max_vars(x, -absmax, absmax, narrow_range=True)`` (round half up).
"""
import dataclasses

import tensorflow as tf

from fqliscs_tf.presets import ConfigMixin
from fqliscs_tf.quant import intops

__all__ = ["QuantSpec", "ActRange", "as_quant_spec", "ste_round", "fixed_grid",
           "quantize_snr", "linear", "IMAGE_SCALE"]

#: Grid of the 8-bit image input and output: pixel / 255.
IMAGE_SCALE = 1.0 / 255.0


@dataclasses.dataclass(frozen=True)
class QuantSpec(ConfigMixin):
    """Bit widths and integer-op choices of a quantized codec.

    Attributes
    ----------
    weight_bits : int
        Kernel bits, per output channel, symmetric narrow range (default 8).
    act_bits : int
        Activation bits (default 8).
    residual_bits : int
        Bits of the residual stream between Swin blocks (default 16).
    gelu, softmax, sigmoid : str
        ``"shift"`` (I-ViT) or ``"poly"`` (I-BERT), see :mod:`.intops`.
    layer_norm : str
        ``"newton"`` or ``"ivit"``, see :func:`~.intops.int_layer_norm`.
    snr_step_db : float
        Grid of the int8 SNR input [dB] (default 0.25 dB: -31.75 ... 31.75 dB).
    symbol_bits : int
        Bits per I and Q component of the transmitted symbols (default 8).
    symbol_clip : float
        Clipping amplitude of each I/Q component of the unit-power symbols (default 4.0).
    ema_decay : float
        Decay of the activation-range moving averages (default 0.99).
    """
    weight_bits: int = 8
    act_bits: int = 8
    residual_bits: int = 16
    gelu: str = "shift"
    softmax: str = "shift"
    sigmoid: str = "shift"
    layer_norm: str = "newton"
    snr_step_db: float = 0.25
    symbol_bits: int = 8
    symbol_clip: float = 4.0
    ema_decay: float = 0.99

    def __post_init__(self):
        for name in ("weight_bits", "act_bits"):
            if not 2 <= getattr(self, name) <= 8:
                raise ValueError(f"{name} must be in [2, 8], got {getattr(self, name)}")
        if not self.act_bits <= self.residual_bits <= 16:
            raise ValueError(f"residual_bits must be in [act_bits, 16], got {self.residual_bits}")
        if not 2 <= self.symbol_bits <= 16:
            raise ValueError(f"symbol_bits must be in [2, 16], got {self.symbol_bits}")
        checks = [("gelu", intops.GELU_METHODS), ("softmax", intops.SOFTMAX_METHODS),
                  ("sigmoid", intops.SIGMOID_METHODS), ("layer_norm", intops.LAYER_NORM_METHODS)]
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} method must be one of {allowed}, "
                                 f"got {getattr(self, name)!r}")
        if not self.snr_step_db > 0 or not self.symbol_clip > 0:
            raise ValueError(f"snr_step_db and symbol_clip must be > 0, got "
                             f"{self.snr_step_db}, {self.symbol_clip}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def symbol_scale(self):
        """Real value of one LSB of a symbol component."""
        return self.symbol_clip / (2 ** (self.symbol_bits - 1) - 1)


def as_quant_spec(quant):
    """``None``, a :class:`QuantSpec` or its dict -> ``None`` or :class:`QuantSpec`."""
    if quant is None or isinstance(quant, QuantSpec):
        return quant
    if isinstance(quant, dict):
        return QuantSpec.from_dict(quant)
    raise ValueError(f"quant must be None, a QuantSpec or a dict, got {type(quant).__name__}")


def ste_round(x):
    """``round(x)`` (half to even) with an identity gradient."""
    return x + tf.stop_gradient(tf.round(x) - x)


def fixed_grid(x, scale, low, high):
    """Fake-quantize to the fixed grid ``q * scale``, ``q in [low, high]`` (STE gradient)."""
    q = tf.clip_by_value(ste_round(x / scale), float(low), float(high))
    return q * scale


def quantize_snr(snr_db, spec):
    """SNR [dB] on its int8 grid (``spec.snr_step_db``), identity gradient."""
    return fixed_grid(snr_db, spec.snr_step_db, -127, 127)


def linear(x, dense):
    """``x @ kernel + bias`` of a Dense sublayer, without its activation.

    Used in quantized mode so that the pre-activation can be fake-quantized; reads
    ``dense.kernel``, which TF-MOT's wrapper replaces by the fake-quantized kernel.
    """
    y = tf.tensordot(x, dense.kernel, axes=[[x.shape.rank - 1], [0]])
    if dense.use_bias:
        y = y + dense.bias
    return y


class ActRange:
    """A tracked symmetric activation range: one non-trainable ``<name>_absmax`` weight.

    Create it in a layer's ``build`` (``ActRange(self, "q", bits, decay)``); call it on a
    float tensor to fake-quantize it, updating the moving average when training.

    Parameters
    ----------
    layer : keras layer that owns the variable
    name : str
    bits : int, 2..16
    decay : float, EMA decay
    """

    def __init__(self, layer, name, bits, decay):
        self.name, self.bits, self.decay = name, int(bits), float(decay)
        self.qmax = 2 ** (self.bits - 1) - 1
        self.absmax = layer.add_weight(name=f"{name}_absmax", shape=(), trainable=False,
                                       initializer="zeros")

    def scale(self):
        """Grid step (float32 scalar tensor)."""
        return tf.maximum(self.absmax, 1e-8) / self.qmax

    def _update(self, x):
        batch = tf.stop_gradient(tf.reduce_max(tf.abs(x)))
        old = self.absmax
        new = tf.where(old > 0.0, self.decay * old + (1.0 - self.decay) * batch, batch)
        return self.absmax.assign(new)

    def __call__(self, x, training):
        if isinstance(training, tf.Tensor):
            absmax = tf.cond(tf.cast(training, tf.bool), lambda: self._update(x),
                             lambda: tf.identity(self.absmax))
        elif training:
            absmax = self._update(x)
        else:
            absmax = self.absmax
        a = tf.maximum(tf.stop_gradient(absmax), 1e-8)
        return tf.quantization.fake_quant_with_min_max_vars(x, -a, a, num_bits=self.bits,
                                                            narrow_range=True)


def make_ranges(layer, spec, names8=(), names_residual=()):
    """Create :class:`ActRange` objects (a dict by name) for a layer in quantized mode."""
    ranges = {n: ActRange(layer, n, spec.act_bits, spec.ema_decay) for n in names8}
    ranges.update({n: ActRange(layer, n, spec.residual_bits, spec.ema_decay)
                   for n in names_residual})
    return ranges


def fake_norm(x, x_scale, norm, spec, out_range, training):
    """Integer-form LayerNorm + affine, fake-quantized to ``out_range``.

    ``x`` must lie on the grid ``x_scale``; the normalisation runs the integer algorithm
    (:func:`~.intops.fake_layer_norm`), the affine map is float, the result is quantized
    by ``out_range`` (the engine applies the affine map with per-channel dyadic
    multipliers, which may differ by 1 LSB at rounding ties).
    """
    y = intops.fake_layer_norm(x, x_scale, method=spec.layer_norm, in_bits=spec.residual_bits)
    return out_range(y * norm.gamma + norm.beta, training)
