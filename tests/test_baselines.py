"""CNN baselines (Deep JSCC, ADJSCC): shapes, CBR, gradients, export/load, registry, CLI."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from PIL import Image

from fqliscs_tf.baselines import ADJSCC, CNNConfig, DeepJSCC, cnn_config, count_macs
from fqliscs_tf.checkpoints import MODEL_FILE, export_model, load_model
from fqliscs_tf.codec import JSCC
from fqliscs_tf.presets import CodecConfig
from fqliscs_tf.registry import MODELS, build_model, family_of, model_config
from modes import MODES, run

FAMILIES = ["deepjscc", "adjscc"]
TINY_SWIN = CodecConfig("tiny", (16, 24), (1, 2), (2, 2), window_size=2, C=8, modnet_layers=2,
                        modnet_hidden_ratio=1.0, modulator_hidden=8)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("preset,C,size,c,ratio", [
    ("cifar10", 16, (32, 32), 16, 1 / 6),    # CIFAR-10 at CBR 1/6, as the Swin cifar10 preset
    ("lite", 96, (64, 128), 6, 1 / 16),      # high resolution at the CBR of lite (C=96, 1/16)
])
def test_output_shapes_and_cbr(family, preset, C, size, c, ratio):
    model = build_model(family, preset, C=C, channel_type="awgn")
    assert model.config.C == c and model.cbr == pytest.approx(ratio)
    out = model((tf.random.uniform([2, *size, 3]), tf.constant([1.0, 13.0])))
    assert out["x_hat"].shape == (2, *size, 3)
    assert out["latent"].shape == (2, size[0] // 4, size[1] // 4, c)
    k = out["symbols"].shape[-1]
    assert k == pytest.approx(ratio * size[0] * size[1] * 3)
    assert out["symbols_hat"].shape == (2, k) and out["no_eff"].shape == (2, k)
    assert out["symbols"].dtype == tf.complex64
    x_hat = out["x_hat"].numpy()
    assert 0 <= x_hat.min() and x_hat.max() <= 1  # sigmoid output


def test_16x_downsampling_variant():
    cfg = cnn_config("deepjscc", "lite", C=96, num_down=4, filters=(16, 32, 32, 32))
    assert cfg.C == 96 and cfg.size_multiple == 16 and cfg.cbr == pytest.approx(1 / 16)
    out = DeepJSCC(cfg, "none")((tf.random.uniform([1, 32, 48, 3]), tf.constant([5.0])))
    assert out["latent"].shape == (1, 2, 3, 96) and out["x_hat"].shape == (1, 32, 48, 3)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="multiple of 16"):
        cnn_config("deepjscc", "lite", C=8)  # CBR 1/192 needs 0.5 channels at 1/4
    with pytest.raises(ValueError, match="filters"):
        CNNConfig("x", C=4, filters=())
    with pytest.raises(ValueError, match="num_down"):
        CNNConfig("x", C=4, num_down=9)
    with pytest.raises(ValueError, match="CNNConfig"):
        DeepJSCC(TINY_SWIN)
    with pytest.raises(ValueError, match="unknown CNNConfig keys"):
        CNNConfig.from_dict({"name": "x", "C": 4, "window_size": 8})


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
@pytest.mark.parametrize("mode", MODES)
def test_gradients_reach_every_weight(family, channel, mode):
    model = build_model(family, "cifar10", C=16, channel_type=channel).build_for(32, 32)
    images = tf.random.uniform([2, 32, 32, 3])
    snr_db = tf.constant([1.0, 13.0])

    def step():
        with tf.GradientTape() as tape:
            out = model((images, snr_db), training=True)
            loss = tf.reduce_mean(tf.square(out["x_hat"] - images))
        return tape.gradient(loss, model.trainable_variables)

    grads = run(step, mode)
    assert len(grads) == len(model.trainable_variables) > 0
    for var, g in zip(model.trainable_variables, grads):
        assert g is not None, var.name
        assert np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0), var.name


@pytest.mark.parametrize("family", FAMILIES)
def test_export_load_reproduces_outputs(family, tmp_path):
    model = build_model(family, "lite", C=96, channel_type="none").build_for()
    images, snr_db = tf.random.uniform([2, 32, 48, 3]), tf.constant([2.0, 12.0])
    ref = model((images, snr_db))["x_hat"].numpy()
    export_model(model, str(tmp_path), note="test")
    info = json.load(open(tmp_path / MODEL_FILE))
    assert info["family"] == family and info["config"]["C"] == 6
    loaded = load_model(str(tmp_path))
    assert type(loaded) is type(model) and loaded.config == model.config
    np.testing.assert_array_equal(loaded((images, snr_db))["x_hat"].numpy(), ref)
    assert load_model(str(tmp_path), "awgn").channel_type == "awgn"


def test_model_json_without_family_is_swin(tmp_path):
    export_model(JSCC(TINY_SWIN, "none").build_for(), str(tmp_path))
    info = json.load(open(tmp_path / MODEL_FILE))
    assert info.pop("family") == "swin"
    json.dump(info, open(tmp_path / MODEL_FILE, "w"))
    assert type(load_model(str(tmp_path))) is JSCC


def test_registry_types_and_errors():
    assert set(MODELS) == {"swin", "deepjscc", "adjscc"}
    assert type(build_model("swin", "lite")) is JSCC
    assert type(build_model("deepjscc", "lite")) is DeepJSCC
    assert type(build_model("adjscc", "cifar10", C=16)) is ADJSCC
    assert type(build_model("swin", TINY_SWIN, channel_type="rayleigh")) is JSCC
    swin = build_model("swin", "cifar10", C=8)
    assert swin.config.C == 8 and family_of(swin) == "swin"
    cfg = model_config("adjscc", {"name": "adjscc", "C": 6, "filters": [16, 32, 32, 32]})
    assert cfg == cnn_config("adjscc", "lite") and cfg.filters == (16, 32, 32, 32)
    with pytest.raises(ValueError, match=r"unknown model family 'witt'.*adjscc.*deepjscc.*swin"):
        build_model("witt", "lite")
    with pytest.raises(ValueError, match="CNNConfig"):
        model_config("deepjscc", TINY_SWIN)
    with pytest.raises(ValueError, match="not a registered"):
        family_of(keras.Model())


def test_only_adjscc_depends_on_snr():
    images = tf.random.uniform([1, 32, 32, 3])
    for family, depends in [("deepjscc", False), ("adjscc", True)]:
        model = build_model(family, "cifar10", C=16, channel_type="none")
        low = model((images, tf.constant([0.0])))["x_hat"].numpy()
        high = model((images, tf.constant([20.0])))["x_hat"].numpy()
        assert (np.abs(low - high).max() > 1e-6) == depends, family


@pytest.mark.parametrize("family", FAMILIES)
def test_macs_match_the_layers(family):
    """The analytical count equals a count read from the built layers' kernels."""
    model = build_model(family, "lite", C=96).build_for(32, 48)
    h, w = 32, 48
    expected = 0
    for net, size in ((model.encoder, (h, w)), (model.decoder, (h // 4, w // 4))):
        y, x = size
        for layer in net.layers:
            if isinstance(layer, keras.layers.Conv2DTranspose):
                expected += y * x * int(np.prod(layer.kernel.shape))
                y, x = y * layer.strides[0], x * layer.strides[1]
            elif isinstance(layer, keras.layers.Conv2D):
                y, x = y // layer.strides[0], x // layer.strides[1]
                expected += y * x * int(np.prod(layer.kernel.shape))
            elif hasattr(layer, "fc1"):
                expected += sum(int(np.prod(d.kernel.shape)) for d in (layer.fc1, layer.fc2))
    macs = count_macs(model.config, h, w, attention=family == "adjscc")
    assert macs["total"] == expected == macs["encoder"] + macs["decoder"]
    assert (macs["af"] > 0) == (family == "adjscc")


def test_deepjscc_cost_at_kodak_size():
    """Documented numbers: 768x512 at CBR 1/16 (c = 6 at 1/4 downsampling)."""
    cfg = cnn_config("deepjscc", "lite", C=96)
    assert count_macs(cfg, 512, 768)["total"] == 3_617_587_200
    assert DeepJSCC(cfg).build_for().count_params() == 140_463


def _images(folder, n, size):
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        base = rng.integers(0, 255, (size[1] // 4, size[0] // 4, 3), dtype=np.uint8)
        Image.fromarray(base).resize(size, Image.BILINEAR).save(os.path.join(folder, f"im{i}.png"))
    return str(folder)


def test_cli_trains_and_evaluates_a_baseline(tmp_path):
    from experiments import train as cli
    work = tmp_path / "run"
    train_dir, test_dir = _images(tmp_path / "train", 2, (40, 36)), _images(tmp_path / "test", 1,
                                                                          (48, 32))
    cli.run(["--training", "--model", "deepjscc", "--trainset", "DIV2K", "--testset", "kodak",
             "--channel-type", "rayleigh", "--C", "96", "--train-dir", train_dir,
             "--test-dir", test_dir, "--workdir", str(work), "--steps", "1", "--batch-size", "2",
             "--crop", "32", "--no-jit", "--quiet", "--multiple-snr", "1,13"])
    rec = json.load(open(work / "results.json"))["records"]
    assert [r["model"] for r in rec] == ["deepjscc", "deepjscc"]
    assert rec[0]["cbr"] == pytest.approx(1 / 16) and np.isfinite(rec[0]["psnr"])
    assert json.load(open(work / "run_config.json"))["model"] == "deepjscc"
    assert json.load(open(work / "export" / MODEL_FILE))["family"] == "deepjscc"
    with pytest.raises(ValueError, match="model='deepjscc', not 'adjscc'"):
        cli.run(["--training", "--model", "adjscc", "--trainset", "DIV2K", "--train-dir",
                 train_dir, "--workdir", str(work), "--resume", "--crop", "32", "--quiet"])
    # Evaluation from the run folder's checkpoint: the family comes from run_config.json.
    out = str(tmp_path / "eval.json")
    records = cli.run(["--testset", "kodak", "--test-dir", test_dir, "--checkpoint", str(work),
                       "--workdir", str(work), "--channel-type", "awgn", "--multiple-snr", "4",
                       "--output", out])
    assert len(records) == 1
    assert json.load(open(out))["records"][0]["model"] == "deepjscc"
