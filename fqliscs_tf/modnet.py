"""SNR-adaptive Channel ModNet (WITT / SwinJSCC "SA" module)."""
import tf_keras as keras

__all__ = ["AdaptiveModulator", "ChannelModNet"]


def _dense(units, name, activation=None):
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))


class AdaptiveModulator(keras.layers.Layer):
    """Maps the SNR [dB] to per-channel gains in (0, 1).

    Input ``snr_db``: ``[B, 1]`` float32. Output: ``[B, units]`` float32.
    Dense(hidden, relu) -> Dense(hidden, relu) -> Dense(units, sigmoid).
    """

    def __init__(self, units, hidden, **kwargs):
        super().__init__(**kwargs)
        self.units, self.hidden = int(units), int(hidden)
        self.fc1 = _dense(self.hidden, "fc1", "relu")
        self.fc2 = _dense(self.hidden, "fc2", "relu")
        self.fc3 = _dense(self.units, "fc3", "sigmoid")

    def build(self, input_shape):
        self.fc1.build(input_shape)
        self.fc2.build(input_shape[:-1] + (self.hidden,))
        self.fc3.build(input_shape[:-1] + (self.hidden,))
        super().build(input_shape)

    def call(self, snr_db):
        return self.fc3(self.fc2(self.fc1(snr_db)))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "hidden": self.hidden}


class ChannelModNet(keras.layers.Layer):
    """Scales each latent channel by an SNR-dependent mask.

    ``temp = x``; for each of ``num_layers`` layers ``temp = Dense_i(temp) * m_i(snr)``;
    then ``x * sigmoid(Dense_out(temp))``.

    Input: ``[x, snr_db]`` with x ``[B, H, W, dim]`` and snr_db ``[B, 1]`` [dB].
    Output: ``[B, H, W, dim]``.
    """

    def __init__(self, dim, hidden, num_layers=7, modulator_hidden=0, **kwargs):
        super().__init__(**kwargs)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.dim, self.hidden, self.num_layers = int(dim), int(hidden), int(num_layers)
        self.modulator_hidden = int(modulator_hidden) or self.hidden
        self.layers_sm = [_dense(self.hidden, f"sm{i}") for i in range(self.num_layers)]
        self.layers_bm = [AdaptiveModulator(self.hidden, self.modulator_hidden, name=f"bm{i}")
                          for i in range(self.num_layers)]
        self.out = _dense(self.dim, "sm_out")

    def build(self, input_shape):
        x_shape, snr_shape = input_shape
        x_shape, snr_shape = tuple(x_shape), tuple(snr_shape)
        hidden_shape = x_shape[:-1] + (self.hidden,)
        for i, (sm, bm) in enumerate(zip(self.layers_sm, self.layers_bm)):
            sm.build(x_shape if i == 0 else hidden_shape)
            bm.build(snr_shape)
        self.out.build(hidden_shape)
        super().build(input_shape)

    def call(self, inputs):
        x, snr_db = inputs
        temp = x
        for sm, bm in zip(self.layers_sm, self.layers_bm):
            temp = sm(temp) * bm(snr_db)[:, None, None, :]
        return x * keras.activations.sigmoid(self.out(temp))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "hidden": self.hidden,
                "num_layers": self.num_layers, "modulator_hidden": self.modulator_hidden}
