"""Tests for fqliscs_tf.metrics: PSNR, MS-SSIM and the distortion losses."""
import numpy as np
import pytest
import tensorflow as tf

from fqliscs_tf import metrics


def _smooth_images(shape, seed=0):
    """Natural-ish images: uniform noise blurred by a 5x5 box."""
    noise = np.random.default_rng(seed).random(shape).astype(np.float32)
    return tf.nn.avg_pool2d(noise, 5, 1, "SAME").numpy()


def _noisy(x, sigma, seed=1):
    noise = np.random.default_rng(seed).normal(0.0, sigma, x.shape).astype(np.float32)
    return np.clip(x + noise, 0.0, 1.0)


# --------------------------------------------------------------------------- PSNR
def test_psnr_hand_computed():
    x = np.zeros((2, 4, 4, 3), np.float32)
    x_hat = np.zeros_like(x)
    x_hat[0] = 0.1  # error 25.5 on the 0-255 scale: MSE 650.25 -> 10 log10(65025 / 650.25) = 20 dB
    x_hat[1, 0, 0, 0] = 1.0  # one pixel off by 255 out of 48: MSE 65025 / 48 -> 10 log10(48)
    values = metrics.psnr(x, x_hat)
    assert values.shape == (2,) and values.dtype == tf.float32
    np.testing.assert_allclose(values.numpy(), [20.0, 10 * np.log10(48.0)], rtol=1e-5)
    # Same images on the 0-255 scale.
    np.testing.assert_allclose(metrics.psnr(x * 255, x_hat * 255, max_val=255.0).numpy(),
                               values.numpy(), rtol=1e-5)


def test_psnr_clips_x_hat_and_caps_identical():
    x = np.full((1, 8, 8, 3), 1.0, np.float32)
    assert metrics.psnr(x, x + 0.5).numpy()[0] == metrics.PSNR_CAP_DB  # clipped to 1: identical
    x = _smooth_images((3, 16, 16, 3))
    np.testing.assert_array_equal(metrics.psnr(x, x).numpy(), [100.0] * 3)
    below = np.full((1, 4, 4, 3), 0.1, np.float32)
    np.testing.assert_allclose(metrics.psnr(below, below - 0.5).numpy(), [20.0], rtol=1e-5)


def test_psnr_rejects_bad_input():
    with pytest.raises(ValueError, match="batch, H, W, C"):
        metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="differ"):
        metrics.psnr(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 5, 3)))
    with pytest.raises(ValueError, match="max_val"):
        metrics.psnr(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 3)), max_val=0)


# --------------------------------------------------------------------------- MS-SSIM
@pytest.mark.parametrize("side, expected", [
    (512, (11, 5)), (256, (11, 5)), (161, (11, 5)), (160, (11, 4)), (128, (11, 4)),
    (81, (11, 4)), (64, (3, 5)), (33, (3, 5)), (32, (3, 4)), (17, (3, 4)), (16, (3, 3)),
])
def test_ms_ssim_config_rule(side, expected):
    assert metrics.ms_ssim_config(side, side + 100) == expected


def test_ms_ssim_config_overrides():
    assert metrics.ms_ssim_config(512, 768, levels=4) == (11, 4)  # WITT's Kodak setting
    assert metrics.ms_ssim_config(32, 32, levels=4) == (3, 4)  # WITT's CIFAR-10 setting
    assert metrics.ms_ssim_config(32, 32, filter_size=5) == (5, 3)
    with pytest.raises(ValueError, match="too small"):
        metrics.ms_ssim_config(32, 32, filter_size=11, levels=5)
    with pytest.raises(ValueError, match="filter_size"):
        metrics.ms_ssim_config(64, 64, filter_size=4)
    with pytest.raises(ValueError, match="levels"):
        metrics.ms_ssim_config(64, 64, levels=6)
    with pytest.raises(ValueError, match="too small"):
        metrics.ms_ssim_config(2, 2)


@pytest.mark.parametrize("side", [32, 256])
def test_ms_ssim_identical_and_noise(side):
    x = _smooth_images((2, side, side, 3))
    same = metrics.ms_ssim(x, x)
    assert same.shape == (2,) and same.dtype == tf.float32
    np.testing.assert_allclose(same.numpy(), 1.0, atol=1e-6)
    mild = metrics.ms_ssim(x, _noisy(x, 0.02)).numpy()
    strong = metrics.ms_ssim(x, _noisy(x, 0.2)).numpy()
    assert np.all(mild < 1.0) and np.all(strong < mild) and np.all(strong >= 0.0)


def test_ms_ssim_matches_tf_image_on_grayscale():
    # With one channel and positive contrast-structure terms the two definitions coincide.
    x = _smooth_images((2, 256, 256, 1))
    y = _noisy(x, 0.05)
    ours = metrics.ms_ssim(x, y).numpy()
    reference = tf.image.ssim_multiscale(x, y, 1.0).numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_ms_ssim_gradients_finite_even_when_anticorrelated():
    x = _smooth_images((2, 32, 32, 3))
    grads = []
    for start in (_noisy(x, 0.1), 1.0 - x):  # 1 - x makes the contrast-structure term negative
        x_hat = tf.Variable(start)
        with tf.GradientTape() as tape:
            loss = metrics.distortion_loss(x, x_hat, "MS-SSIM")
        grad = tape.gradient(loss, x_hat).numpy()
        assert np.isfinite(loss.numpy()) and np.all(np.isfinite(grad))
        grads.append(grad)
    assert np.abs(grads[0]).max() > 0  # a useful training signal for the noisy image


def test_ms_ssim_graph_mode_and_dynamic_size():
    x = _smooth_images((1, 64, 48, 3))
    y = _noisy(x, 0.05)
    eager = metrics.ms_ssim(x, y).numpy()
    graph = tf.function(metrics.ms_ssim)(tf.constant(x), tf.constant(y)).numpy()
    np.testing.assert_allclose(graph, eager, rtol=1e-6)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    dynamic = tf.function(lambda a, b: metrics.ms_ssim(a, b, filter_size=3, levels=5),
                          input_signature=[spec, spec])
    np.testing.assert_allclose(dynamic(x, y).numpy(), eager, rtol=1e-6)
    with pytest.raises(ValueError, match="static image size"):
        tf.function(metrics.ms_ssim, input_signature=[spec, spec]).get_concrete_function()


# --------------------------------------------------------------------------- losses
def test_distortion_loss_options():
    x = np.zeros((2, 4, 4, 3), np.float32)
    x_hat = np.full_like(x, 0.1)
    mse = metrics.distortion_loss(x, x_hat, "MSE")
    assert mse.shape == () and mse.dtype == tf.float32
    np.testing.assert_allclose(mse.numpy(), 25.5 ** 2, rtol=1e-5)
    np.testing.assert_allclose(metrics.distortion_loss(x, x_hat - 0.5, "mse").numpy(), 0.0)
    np.testing.assert_allclose(metrics.distortion_loss(x, x_hat - 0.5, "MSE", clip=False).numpy(),
                               (0.4 * 255) ** 2, rtol=1e-5)
    images = _smooth_images((2, 32, 32, 3))
    noisy = _noisy(images, 0.1)
    expected = 1.0 - np.mean(metrics.ms_ssim(images, noisy).numpy())
    np.testing.assert_allclose(metrics.distortion_loss(images, noisy, "MS-SSIM").numpy(),
                               expected, rtol=1e-6)
    np.testing.assert_allclose(metrics.distortion_loss(images, images, "ms-ssim").numpy(), 0.0,
                               atol=1e-6)


def test_per_image_distortion():
    x = np.zeros((2, 4, 4, 3), np.float32)
    x_hat = x.copy()
    x_hat[1] = 0.1
    np.testing.assert_allclose(metrics.per_image_distortion(x, x_hat).numpy(), [0.0, 650.25],
                               rtol=1e-5)
    images = _smooth_images((3, 32, 32, 3))
    noisy = _noisy(images, 0.1)
    np.testing.assert_allclose(metrics.per_image_distortion(images, noisy, "MS-SSIM").numpy(),
                               1.0 - metrics.ms_ssim(images, noisy).numpy(), rtol=1e-6)


def test_distortion_loss_unknown_metric():
    x = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="'SSIM'"):
        metrics.distortion_loss(x, x, "SSIM")
    with pytest.raises(ValueError, match="'PSNR'"):
        metrics.per_image_distortion(x, x, "PSNR")


def test_losses_under_xla():
    x = _smooth_images((2, 32, 32, 3))
    x_hat = tf.Variable(_noisy(x, 0.1))

    @tf.function(jit_compile=True)
    def step(a):
        with tf.GradientTape() as tape:
            loss = metrics.distortion_loss(a, x_hat, "MS-SSIM")
        return loss, tape.gradient(loss, x_hat), metrics.psnr(a, x_hat)

    loss, grad, values = step(tf.constant(x))
    np.testing.assert_allclose(loss.numpy(), metrics.distortion_loss(x, x_hat, "MS-SSIM").numpy(),
                               rtol=1e-5)
    assert np.all(np.isfinite(grad.numpy())) and values.shape == (2,)
