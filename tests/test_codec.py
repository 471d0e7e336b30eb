"""Swin JSCC codec: shapes, presets, CBR, cost, gradients, learning, save/load."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from fqliscs_tf.arrays import load_arrays
from fqliscs_tf.checkpoints import export_model, load_model, model_folder
from fqliscs_tf.codec import JSCC, build_decoder, build_encoder, check_image_size
from fqliscs_tf.cost import count_macs
from fqliscs_tf.presets import PRESETS, CodecConfig, cbr, get_config
from fqliscs_tf.swin import (relative_position_index, shifted_window_mask, window_partition,
                             window_reverse)
from fqliscs_tf.utils import set_seed
from modes import MODES, run

TINY = CodecConfig("tiny", (16, 24), (1, 2), (2, 2), window_size=2, C=8, modnet_layers=2,
                   modnet_hidden_ratio=1.0, modulator_hidden=8)


@pytest.fixture(autouse=True)
def _seed():
    set_seed(7)


@pytest.mark.parametrize("name,size", [("lite", (128, 256)), ("lite", (256, 128)),
                                       ("cifar10", (32, 64)), ("div2k", (128, 128))])
def test_output_shapes(name, size):
    cfg = get_config(name)
    enc, dec = build_encoder(cfg), build_decoder(cfg)
    x = tf.random.uniform([2, *size, 3])
    snr = tf.constant([[1.0], [13.0]])
    z = enc([x, snr])
    ds = cfg.downsampling
    assert z.shape == (2, size[0] // ds, size[1] // ds, cfg.C)
    assert dec([z, snr]).shape == (2, *size, 3)


def test_cbr_formula():
    assert cbr(96, 4) == pytest.approx(1 / 16)
    assert cbr(16, 2) == pytest.approx(1 / 6)
    assert cbr(32, 4) == pytest.approx(1 / 48)
    assert get_config("lite").cbr == pytest.approx(1 / 16)
    assert get_config("cifar10", C=16).cbr == pytest.approx(1 / 6)
    assert get_config("div2k").num_downsamplings == 4
    assert get_config("cifar10").num_downsamplings == 2


def test_model_reports_cbr_and_channel_uses():
    set_seed(1)
    model = JSCC(TINY, "awgn")
    out = model((tf.random.uniform([1, 16, 32, 3]), tf.constant([5.0])))
    k = out["symbols"].shape[-1]
    assert k == pytest.approx(model.cbr * 16 * 32 * 3)


def test_div2k_matches_reference_size_and_cost():
    cfg = get_config("div2k")
    enc, dec = build_encoder(cfg), build_decoder(cfg)
    params = enc.count_params() + dec.count_params()
    assert params == pytest.approx(28.20e6, rel=0.005)  # WITT / FQ-LISCS reference
    assert count_macs(cfg, 256, 256)["total"] == pytest.approx(35.3e9, rel=0.01)
    assert count_macs(cfg, 512, 768)["total"] == pytest.approx(211.7e9, rel=0.01)


def test_lite_is_at_most_a_tenth_of_div2k():
    lite = count_macs(get_config("lite"), 256, 256)["total"]
    div2k = count_macs(get_config("div2k"), 256, 256)["total"]
    assert lite <= div2k / 10


def test_bad_config_and_sizes_are_rejected():
    with pytest.raises(ValueError, match="divisible"):
        CodecConfig("x", (30,), (1,), (4,), window_size=2, C=8)
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("huge")
    with pytest.raises(ValueError, match="multiple of 128"):
        check_image_size(500, 768, get_config("lite"))
    check_image_size(512, 768, get_config("lite"))


def test_window_partition_round_trip_and_mask():
    x = tf.reshape(tf.range(2 * 8 * 12 * 3, dtype=tf.float32), [2, 8, 12, 3])
    w = window_partition(x, 4)
    assert w.shape == (2 * 2 * 3, 16, 3)
    np.testing.assert_array_equal(window_reverse(w, 4, 2, 8, 12), x)
    mask = shifted_window_mask(8, 12, 4, 2).numpy()
    assert mask.shape == (6, 16, 16)
    assert np.all(mask[0] == 0)                      # interior window: one region
    assert np.all(np.diag(mask[-1]) == 0) and mask[-1].min() == -100  # corner window: 4 regions
    np.testing.assert_array_equal(mask, np.transpose(mask, [0, 2, 1]))
    idx = relative_position_index(3)
    assert idx.shape == (9, 9) and idx.min() == 0 and idx.max() == 24 and idx[4, 4] == 12


@pytest.mark.parametrize("channel", ["awgn", "rayleigh", "rayleigh-block"])
@pytest.mark.parametrize("mode", MODES)
def test_gradients_reach_every_weight(channel, mode):
    model = JSCC(TINY, channel)
    x = tf.random.uniform([2, 16, 16, 3])
    snr = tf.constant([2.0, 12.0])

    def grads():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model((x, snr), training=True)["x_hat"] - x))
        return tape.gradient(loss, model.trainable_variables)

    model((x, snr))
    gs = [tf.convert_to_tensor(g) if g is not None else None for g in run(grads, mode)]
    assert len(gs) == len(model.trainable_variables) > 0
    for var, g in zip(model.trainable_variables, gs):
        assert g is not None, var.name
        assert np.all(np.isfinite(g.numpy())), var.name
    assert sum(float(tf.reduce_sum(tf.abs(g))) > 0 for g in gs) == len(gs)


def test_loss_falls_on_generated_images():
    model = JSCC(TINY, "awgn")
    opt = keras.optimizers.Adam(2e-3)
    rng = np.random.default_rng(0)
    # Smooth random images: low-resolution noise upsampled.
    base = rng.uniform(size=(8, 4, 4, 3)).astype("float32")
    x = tf.image.resize(base, [16, 16])
    snr = tf.fill([8], 10.0)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square((model((x, snr), training=True)["x_hat"] - x) * 255))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                model.trainable_variables))
        return loss

    losses = [float(step()) for _ in range(50)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_export_then_load_reproduces_outputs(tmp_path):
    model = JSCC(TINY, "none").build_for()
    x = tf.random.uniform([1, 16, 24, 3])
    snr = tf.constant([7.0])
    before = model((x, snr))["x_hat"].numpy()
    export_model(model, tmp_path / "m", note="test")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is JSCC and loaded.config == TINY
    np.testing.assert_array_equal(loaded((x, snr))["x_hat"].numpy(), before)


def test_model_folder_is_the_folder_or_the_runs_export(tmp_path):
    export_model(JSCC(TINY, "none").build_for(), tmp_path / "run" / "export")
    assert model_folder(tmp_path / "run") == str(tmp_path / "run" / "export")
    assert model_folder(tmp_path / "run" / "export") == str(tmp_path / "run" / "export")


def test_float16_export_is_half_the_size_and_close(tmp_path):
    model = JSCC(TINY, "none").build_for()
    x = tf.random.uniform([1, 16, 16, 3])
    snr = tf.constant([7.0])
    export_model(model, tmp_path / "f32")
    export_model(model, tmp_path / "f16", weights_dtype="float16")
    size = lambda d: (tmp_path / d / "weights.npz").stat().st_size
    assert size("f16") < 0.7 * size("f32")  # the variable names are a fixed overhead
    assert load_arrays(tmp_path / "f16" / "weights.npz")["w0000"].dtype == np.float16
    a = load_model(tmp_path / "f16")((x, snr))["x_hat"].numpy()
    b = model((x, snr))["x_hat"].numpy()
    np.testing.assert_allclose(a, b, atol=2e-2)
    with pytest.raises(ValueError, match="weights_dtype"):
        export_model(model, tmp_path / "bad", weights_dtype="int4")


def test_loading_into_another_preset_fails_clearly(tmp_path):
    export_model(JSCC(TINY, "none").build_for(), tmp_path / "m")
    import json
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    info["config"]["embed_dims"] = [16, 32]
    (tmp_path / "m" / "model.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="does not match"):
        load_model(tmp_path / "m")


def test_presets_are_registered():
    assert {"lite", "div2k", "base", "cifar10"} <= set(PRESETS)
    assert get_config("lite", C=32).C == 32


def test_a_model_with_another_C_starts_from_a_trained_one():
    """set_matching_weights: equal shapes copied, latent heads cut to the first C channels."""
    from conftest import tiny_codec_config
    from fqliscs_tf.checkpoints import set_matching_weights
    wide = JSCC(tiny_codec_config(), channel_type="none").build_for()
    narrow = JSCC(tiny_codec_config().replace(C=4), channel_type="none").build_for()
    sliced, skipped = set_matching_weights(narrow, wide.get_weights(), source="wide")
    assert not skipped and len(sliced) == 3  # encoder head kernel + bias, decoder head kernel
    for var, src in zip(narrow.weights, wide.get_weights()):
        np.testing.assert_array_equal(var.numpy(), src[tuple(slice(0, d) for d in var.shape)])
    other = JSCC(tiny_codec_config().replace(depths=(2, 2)), channel_type="none").build_for()
    with pytest.raises(ValueError, match="not the same preset"):
        set_matching_weights(other, wide.get_weights(), source="wide")


@pytest.mark.parametrize("mode", ["graph", "xla"])
def test_trains_under_the_mixed_bfloat16_policy(mode):
    """Under keras' mixed_bfloat16 policy (bfloat16 compute, float32 variables), including the
    shifted windows' attention mask, one training step runs and the loss and weights stay
    finite (the benchmark's --precisions option measures its speed)."""
    from fqliscs_tf.training import Trainer
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = JSCC(TINY, "awgn").build_for(16, 16)
        trainer = Trainer(model, [1.0, 13.0], lr=1e-3, global_batch_size=2,
                          jit_compile=mode == "xla")
        loss, batch_psnr = trainer.train_step(tf.random.uniform([2, 16, 16, 3], seed=3))
        out = model((tf.random.uniform([1, 16, 16, 3]), tf.constant([5.0])))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(float(loss)) and np.isfinite(float(batch_psnr))
    assert out["x_hat"].dtype == tf.float32 and out["symbols"].dtype == tf.complex64
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    assert all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)
