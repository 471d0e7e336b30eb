"""Quantization-aware training with TF-MOT: one call, per-channel int8 kernels everywhere,
activation grids, gradients in every mode, save/load, the train.py --qat mode."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import smooth_images, tiny_codec_config
from modes import MODES, run

import fqliscs_tf
from fqliscs_tf.codec import JSCC
from fqliscs_tf.quant.fakequant import QuantSpec
from fqliscs_tf.quant.qat import (QATJSCC, calibrate, load_qat, quantize_codec, requantize_codec,
                                  save_qat)

SHIPPED = str(Path(fqliscs_tf.__file__).resolve().parent / "weights" / "lite_c96_awgn")


def _float_kernels(model):
    return [v for v in model.trainable_weights if "kernel" in v.name]


def test_every_kernel_is_quantized_per_channel(tiny_qat):
    model, qat = tiny_qat
    wrappers = [l for part in (qat.encoder, qat.decoder) for l in part.layers
                if hasattr(l, "_weight_vars")]
    quantized = [(w, q, v) for l in wrappers for (w, q, v) in l._weight_vars]
    # Every Dense and Conv kernel of the float codec, nested ones included, has a quantizer.
    assert len(quantized) == len(_float_kernels(model))
    for part in (qat.encoder, qat.decoder):  # unique within each model
        names = [v["min_var"].name for l in part.layers for (_, _, v) in
                 getattr(l, "_weight_vars", [])]
        assert len(set(names)) == len(names), "quantizer variables must have unique names"
    for weight, quantizer, qvars in quantized:
        fq = quantizer(weight, False, weights=qvars).numpy().reshape(-1, weight.shape[-1])
        for c in range(fq.shape[1]):
            assert len(np.unique(fq[:, c])) <= 255  # int8 narrow range per output channel
        assert qvars["max_var"].shape == (weight.shape[-1],)


def test_activation_ranges_are_calibrated(tiny_qat):
    _, qat = tiny_qat
    ranges = [v for v in qat.weights if "absmax" in v.name]
    assert len(ranges) > 20
    assert all(float(v.numpy()) > 0 for v in ranges)


def test_qat_output_is_on_the_pixel_grid_and_close_to_float(tiny_qat):
    model, qat = tiny_qat
    x = tf.constant(smooth_images(2, seed=11))
    snr = tf.constant([7.0, 7.0])
    y_q = qat((x, snr))["x_hat"].numpy()
    y_f = np.clip(model((x, snr))["x_hat"].numpy(), 0, 1)
    np.testing.assert_allclose(y_q * 255, np.round(y_q * 255), atol=1e-3)
    assert np.sqrt(np.mean((y_q - y_f) ** 2)) < 0.02  # untrained codec: close, not exact


def test_symbols_are_quantized_before_the_channel(tiny_qat):
    _, qat = tiny_qat
    out = qat((tf.constant(smooth_images(1, seed=3)), tf.constant([10.0])))
    step = qat.spec.symbol_scale
    z = out["symbols"].numpy()
    for part in (z.real, z.imag):
        np.testing.assert_allclose(part / step, np.round(part / step), atol=1e-3)
        assert np.abs(part).max() <= qat.spec.symbol_clip + 1e-6


@pytest.mark.parametrize("channel,mode", [("awgn", m) for m in MODES] + [
    ("rayleigh", "eager"), ("ofdm-tdl", "eager"), ("mimo", "eager")])
def test_gradients_reach_the_encoder(tiny_qat, channel, mode):
    """QAT trains end to end through the float Sionna links too (int8 symbols in)."""
    _, qat = tiny_qat
    qat.set_channel(channel)
    x = tf.constant(smooth_images(2, seed=5))
    variables = qat.encoder.trainable_weights

    def step():
        with tf.GradientTape() as tape:
            out = qat((x, tf.constant([4.0, 10.0])), training=False)
            loss = tf.reduce_mean(tf.square(out["x_hat"] - x))
        return tape.gradient(loss, variables)

    grads = run(step, mode)
    qat.set_channel("none")
    norms = [float(tf.norm(g)) for g in grads if g is not None]
    assert len(norms) == len(variables)
    assert sum(n > 0 for n in norms) > 0.8 * len(norms)


def test_save_and_load_round_trip(tiny_qat, tmp_path):
    _, qat = tiny_qat
    save_qat(qat, str(tmp_path / "qat"), note="test")
    info = json.loads((tmp_path / "qat" / "model.json").read_text())
    assert info["family"] == "swin-qat" and info["meta"]["note"] == "test"
    loaded = load_qat(str(tmp_path / "qat"))
    assert isinstance(loaded, QATJSCC)
    x, snr = tf.constant(smooth_images(1, seed=2)), tf.constant([4.0])
    np.testing.assert_array_equal(qat((x, snr))["x_hat"].numpy(),
                                  loaded((x, snr))["x_hat"].numpy())


def test_clear_errors(tmp_path):
    from fqliscs_tf.baselines import DeepJSCC, cnn_config
    with pytest.raises(ValueError, match="Swin JSCC"):
        quantize_codec(DeepJSCC(cnn_config("cifar10")).build_for())
    with pytest.raises(ValueError, match="gelu"):
        QuantSpec(gelu="tanh")
    with pytest.raises(ValueError, match="residual_bits"):
        QuantSpec(residual_bits=4)
    with pytest.raises(ValueError, match="not a QAT model"):
        load_qat(str(tmp_path))


def test_requantize_codec_keeps_the_weights_under_another_spec(tiny_qat):
    model, qat = tiny_qat
    other = requantize_codec(qat, {"residual_bits": 8})
    assert isinstance(other, QATJSCC) and other.config == qat.config
    assert (qat.spec.residual_bits, other.spec.residual_bits) == (16, 8)
    assert other.channel_type == qat.channel_type
    assert len(other.trainable_weights) == len(qat.trainable_weights)
    for a, b in zip(qat.trainable_weights, other.trainable_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    calibrate(other, [tf.constant(smooth_images(2, seed=i)) for i in range(4)], [1.0, 7.0, 13.0])
    x, snr = tf.constant(smooth_images(1, seed=9)), tf.constant([7.0])
    y16, y8 = qat((x, snr))["x_hat"].numpy(), other((x, snr))["x_hat"].numpy()
    assert np.all(np.isfinite(y8)) and not np.array_equal(y16, y8)  # the 8-bit stream rounds
    assert float(np.mean((y16 - y8) ** 2)) < 1e-2  # ... but the weights are the same
    with pytest.raises(ValueError, match="needs a QATJSCC"):
        requantize_codec(model, {"residual_bits": 8})


def test_train_qat_starts_from_an_integer_codec_folder(tiny_qat, tmp_path, monkeypatch):
    """``--qat --init-from`` an engine folder: its QAT weights go on under --quant-spec."""
    from types import SimpleNamespace

    from experiments import train
    from fqliscs_tf.engine import export_integer_codec, qat_from_engine, save_integer_codec
    _, qat = tiny_qat
    folder = str(tmp_path / "tiny_int")
    save_integer_codec(export_integer_codec(qat, note="test"), folder)
    batches = [tf.constant(smooth_images(2, seed=i)) for i in range(2)]
    monkeypatch.setattr(train, "_calibration_batches", lambda args, cfg: batches)
    args = SimpleNamespace(init_from=folder, channel_type="none", channel_kwargs={},
                           quant_spec="residual_bits=8",
                           quant_spec_dict=train._parse_quant_spec("residual_bits=8"),
                           snr_list=[1.0, 13.0], calibration_batches=2)
    model = train._qat_model(args, qat.config, resuming=False)
    assert isinstance(model, QATJSCC) and model.spec.residual_bits == 8
    source = qat_from_engine(folder, channel_type="none")  # the engine's weights, re-derived
    assert len(model.trainable_weights) == len(source.trainable_weights)
    for a, b in zip(model.trainable_weights, source.trainable_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # a key of the engine's spec that --quant-spec does not name is not reset silently
    other = SimpleNamespace(**dict(vars(args), quant_spec_dict=train._parse_quant_spec(
        "residual_bits=8,gelu=poly")))
    with pytest.raises(ValueError, match="gelu=shift"):
        train._qat_model(other, qat.config, resuming=False)
    with pytest.raises(ValueError, match="holds preset"):
        train._qat_model(args, dataclasses.replace(qat.config, C=qat.config.C + 2),
                         resuming=False)


def test_poly_methods_build_and_run():
    model = JSCC(tiny_codec_config(), channel_type="none").build_for()
    qat = quantize_codec(model, {"gelu": "poly", "softmax": "poly", "sigmoid": "poly",
                                 "layer_norm": "ivit"})
    out = qat((tf.constant(smooth_images(1)), tf.constant([7.0])), training=True)
    assert np.all(np.isfinite(out["x_hat"].numpy()))


def test_train_cli_qat_fine_tunes_and_exports(tmp_path):
    from PIL import Image

    from experiments import train
    images = tmp_path / "images"
    images.mkdir()
    for i, img in enumerate(smooth_images(2, size=128, seed=20)):
        Image.fromarray((img * 255).astype(np.uint8)).save(images / f"im{i}.png")
    work = tmp_path / "run"
    records = train.run(["--training", "--trainset", "DIV2K", "--model-size", "lite",
                         "--C", "96", "--train-dir", str(images), "--test-dir", str(images),
                         "--max-test-images", "1", "--crop", "128", "--batch-size", "1",
                         "--steps", "2", "--qat", "--init-from", SHIPPED,
                         "--calibration-batches", "1", "--lr", "1e-5", "--no-jit", "--quiet",
                         "--multiple-snr", "4", "--quant-spec", "gelu=poly",
                         "--workdir", str(work)])
    info = json.loads((work / "export" / "model.json").read_text())
    assert info["family"] == "swin-qat" and info["quant"]["gelu"] == "poly"
    assert info["meta"]["steps"] == 2
    assert len(records) == 1 and np.isfinite(records[0]["psnr"])
    with pytest.raises(SystemExit):
        train.run(["--training", "--trainset", "DIV2K", "--train-dir", str(images), "--qat",
                   "--workdir", str(tmp_path / "bad")])
