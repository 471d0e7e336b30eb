"""Evaluation loop: padded test images are scored on their original pixels."""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fqliscs_tf import data
from fqliscs_tf.codec import JSCC
from fqliscs_tf.metrics import psnr
from fqliscs_tf.presets import CodecConfig
from fqliscs_tf.training import evaluate, learning_rate_schedule

TINY = CodecConfig("tiny", (16, 24), (1, 2), (2, 2), window_size=2, C=8, modnet_layers=2,
                   modnet_hidden_ratio=1.0, modulator_hidden=8)


def test_padded_images_are_scored_on_the_original_pixels(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 28, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    model = JSCC(TINY, "none").build_for()
    items = list(data.test_dataset(str(tmp_path), TINY.size_multiple, fit="pad",
                                   return_size=True))
    image, _, size = items[0]
    assert image.shape == (1, 24, 32, 3) and list(size.numpy()) == [20, 28]
    records, _ = evaluate(model, items, [5.0])
    x_hat = tf.clip_by_value(model((image, tf.constant([5.0])))["x_hat"], 0.0, 1.0)
    expected = psnr(data.crop_to_size(image, size), data.crop_to_size(x_hat, size))
    assert records[0]["psnr"] == pytest.approx(float(expected[0]), abs=1e-4)
    assert records[0]["num_images"] == 1


def test_learning_rate_schedules():
    sched = learning_rate_schedule(1e-3, "cosine", total_steps=100, warmup_steps=10)
    assert float(sched(0)) == pytest.approx(1e-4)
    assert float(sched(9)) == pytest.approx(1e-3)
    assert float(sched(100)) == pytest.approx(5e-5)
    assert float(sched(55)) < 1e-3
    assert learning_rate_schedule(1e-3) == 1e-3
    with pytest.raises(ValueError, match="schedule"):
        learning_rate_schedule(1e-3, "linear")
    with pytest.raises(ValueError, match="total_steps"):
        learning_rate_schedule(1e-3, "cosine")
