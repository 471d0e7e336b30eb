"""SNR-adaptive Channel ModNet (WITT / SwinJSCC "SA" module).

With ``quant`` (see :mod:`fqliscs_tf.quant.fakequant`) both layers fake-quantize every
Dense output to 8 bits and use the integer-form sigmoid (gates on the grid 2**-(bits-1)); the
SNR input must already be on its int8 grid (:func:`~fqliscs_tf.quant.fakequant.quantize_snr`)
and the latent input on an 8-bit grid (the previous layer's output quantizer).
"""
import tensorflow as tf
import tf_keras as keras

from fqliscs_tf.quant import intops
from fqliscs_tf.quant.fakequant import as_quant_spec, linear, make_ranges

__all__ = ["AdaptiveModulator", "ChannelModNet"]


def _dense(units, name, activation=None):
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))


class AdaptiveModulator(keras.layers.Layer):
    """Maps the SNR [dB] to per-channel gains in (0, 1).

    Input ``snr_db``: ``[B, 1]`` float32. Output: ``[B, units]`` float32.
    Dense(hidden, relu) -> Dense(hidden, relu) -> Dense(units, sigmoid).
    """

    quant_points = ("fc1", "fc2", "fc3")
    kernels = ("fc1", "fc2", "fc3")

    def __init__(self, units, hidden, quant=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.hidden = int(units), int(hidden)
        self.quant = as_quant_spec(quant)
        self.fc1 = _dense(self.hidden, "fc1", "relu")
        self.fc2 = _dense(self.hidden, "fc2", "relu")
        self.fc3 = _dense(self.units, "fc3", "sigmoid")

    def build(self, input_shape):
        self.fc1.build(input_shape)
        self.fc2.build(input_shape[:-1] + (self.hidden,))
        self.fc3.build(input_shape[:-1] + (self.hidden,))
        if self.quant is not None:
            self.ranges = make_ranges(self, self.quant, ["fc1", "fc2", "fc3"])
        super().build(input_shape)

    def call(self, snr_db, training=None):
        if self.quant is None:
            return self.fc3(self.fc2(self.fc1(snr_db)))
        r = self.ranges
        h = r["fc1"](tf.nn.relu(linear(snr_db, self.fc1)), training)
        h = r["fc2"](tf.nn.relu(linear(h, self.fc2)), training)
        z = r["fc3"](linear(h, self.fc3), training)
        return intops.fake_sigmoid(z, r["fc3"].scale(), method=self.quant.sigmoid,
                                   bits=self.quant.act_bits)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "hidden": self.hidden,
                "quant": None if self.quant is None else self.quant.to_dict()}


class ChannelModNet(keras.layers.Layer):
    """Scales each latent channel by an SNR-dependent mask.

    ``temp = x``; for each of ``num_layers`` layers ``temp = Dense_i(temp) * m_i(snr)``;
    then ``x * sigmoid(Dense_out(temp))``.

    Input: ``[x, snr_db]`` with x ``[B, H, W, dim]`` and snr_db ``[B, 1]`` [dB].
    Output: ``[B, H, W, dim]``.
    """

    def __init__(self, dim, hidden, num_layers=7, modulator_hidden=0, quant=None, **kwargs):
        super().__init__(**kwargs)
        self.quant = as_quant_spec(quant)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.dim, self.hidden, self.num_layers = int(dim), int(hidden), int(num_layers)
        self.modulator_hidden = int(modulator_hidden) or self.hidden
        self.layers_sm = [_dense(self.hidden, f"sm{i}") for i in range(self.num_layers)]
        self.layers_bm = [AdaptiveModulator(self.hidden, self.modulator_hidden, quant=quant,
                                            name=f"bm{i}")
                          for i in range(self.num_layers)]
        self.out = _dense(self.dim, "sm_out")
        n = self.num_layers
        self.quant_points = tuple(f"sm{i}" for i in range(n)) + tuple(
            f"mod{i}" for i in range(n)) + ("out",)
        self.kernels = tuple(f"layers_sm.{i}" for i in range(n)) + tuple(
            f"layers_bm.{i}.{fc}" for i in range(n) for fc in ("fc1", "fc2", "fc3")) + ("out",)

    def build(self, input_shape):
        x_shape, snr_shape = input_shape
        x_shape, snr_shape = tuple(x_shape), tuple(snr_shape)
        hidden_shape = x_shape[:-1] + (self.hidden,)
        for i, (sm, bm) in enumerate(zip(self.layers_sm, self.layers_bm)):
            sm.build(x_shape if i == 0 else hidden_shape)
            bm.build(snr_shape)
        self.out.build(hidden_shape)
        if self.quant is not None:
            self.ranges = make_ranges(self, self.quant, self.quant_points)
        super().build(input_shape)

    def _call_quant(self, x, snr_db, training):
        r, temp = self.ranges, x
        for i, (sm, bm) in enumerate(zip(self.layers_sm, self.layers_bm)):
            temp = r[f"sm{i}"](linear(temp, sm), training)
            temp = r[f"mod{i}"](temp * bm(snr_db, training=training)[:, None, None, :], training)
        z = r["out"](linear(temp, self.out), training)
        return x * intops.fake_sigmoid(z, r["out"].scale(), method=self.quant.sigmoid,
                                       bits=self.quant.act_bits)

    def call(self, inputs, training=None):
        x, snr_db = inputs
        if self.quant is not None:
            return self._call_quant(x, snr_db, training)
        temp = x
        for sm, bm in zip(self.layers_sm, self.layers_bm):
            temp = sm(temp) * bm(snr_db)[:, None, None, :]
        return x * keras.activations.sigmoid(self.out(temp))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "hidden": self.hidden,
                "num_layers": self.num_layers, "modulator_hidden": self.modulator_hidden,
                "quant": None if self.quant is None else self.quant.to_dict()}
