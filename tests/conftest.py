"""Shared test set-up: every test starts from the same seeds (Python, NumPy, TF, Sionna)."""
import pytest

from fqliscs_tf.utils import set_seed

SEED = 42


@pytest.fixture(autouse=True)
def seed():
    """Seeds Python, NumPy, TF and Sionna (eagerly) before every test."""
    set_seed(SEED)


def tiny_codec_config():
    """A two-stage Swin codec small enough for quantization tests (32x32 images, C = 8).

    Window 4 with a shifted block in stage 0, 2 heads, a 2-layer ModNet.
    """
    from fqliscs_tf.presets import CodecConfig
    return CodecConfig("tiny", (16, 32), (2, 1), (2, 2), window_size=4, C=8,
                       modnet_layers=2, modnet_hidden_ratio=1.0, modulator_hidden=8)


def smooth_images(batch, size=32, seed=0):
    """Smooth random float32 images ``[batch, size, size, 3]`` in [0, 1] on the 8-bit grid."""
    import numpy as np
    rng = np.random.default_rng(seed)
    x = np.cumsum(np.cumsum(rng.normal(0, 1, (batch, size, size, 3)), 1), 2)
    x = (x - x.min()) / (x.max() - x.min())
    return (np.round(x * 255) / 255).astype("float32")


@pytest.fixture(scope="session")
def tiny_qat():
    """(float JSCC, calibrated QATJSCC) pair of :func:`tiny_codec_config`, built once."""
    import tensorflow as tf

    from fqliscs_tf.codec import JSCC
    from fqliscs_tf.quant.qat import calibrate, quantize_codec
    set_seed(7)
    model = JSCC(tiny_codec_config(), channel_type="none").build_for()
    qat = quantize_codec(model)
    images = [tf.constant(smooth_images(2, seed=i)) for i in range(4)]
    calibrate(qat, images, [1.0, 7.0, 13.0])
    return model, qat
