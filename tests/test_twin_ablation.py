"""experiments.twin_ablation: the int8 twin's simulation, group by group, on the tiny codec."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_images
from experiments import twin_ablation


@pytest.fixture(scope="module")
def tiny_int_model(tiny_qat, tmp_path_factory):
    """The tiny QAT codec's engine export as a folder, and 4 calibration PNGs."""
    from fqliscs_tf.engine.export import export_integer_codec, save_integer_codec
    _, qat = tiny_qat
    root = tmp_path_factory.mktemp("ablation")
    save_integer_codec(export_integer_codec(qat), str(root / "model"))
    (root / "calib").mkdir()
    for i, img in enumerate(smooth_images(4, 32, seed=21)):
        Image.fromarray(np.round(img * 255).astype(np.uint8)).save(root / "calib" / f"{i}.png")
    return root


def test_rows_follow_the_engine_and_the_groups_change_the_simulation(tiny_int_model, tmp_path):
    out = tmp_path / "ablation.json"
    result = twin_ablation.main([
        "--model", str(tiny_int_model / "model"), "--calibration", str(tiny_int_model / "calib"),
        "--size", "32x32", "--forms", "xnnpack_fit,default", "--snrs", "13",
        "--output", str(out)])
    assert json.loads(out.read_text())["forms"].keys() == {"xnnpack_fit", "default"}
    for form in ("xnnpack_fit", "default"):
        rows = result["forms"][form]["sim_minus_engine_db"]
        labels = ["none", *twin_ablation.GROUPS, "+".join(twin_ablation.GROUPS)]
        assert list(rows) == labels
        values = np.array([rows[label]["13"] for label in labels])
        # The untrained tiny codec's int8 exports are within 0.05 dB of the engine
        # (test_tflite); its simulation with or without the int8-only roundings as well.
        assert np.all(np.abs(values) < 0.1), rows
        assert values[0] != values[-1], "keeping the groups in float changed nothing"
    assert result["provenance"]["command"]


def test_simulation_matches_the_exported_int8_model(tiny_int_model, tiny_qat, tmp_path):
    """The simulation with every int8 rounding is the TFLite export up to the converter's own
    roundings between the explicit grids."""
    from fqliscs_tf.data import centre_crops, list_images
    from fqliscs_tf.engine.export import act_scale
    from fqliscs_tf.engine.tflite import (XNNPACK_FORMS, TFLiteCodec, TwinOptions, _Receiver,
                                          calibrated_twins, export_tflite)
    from fqliscs_tf.metrics import psnr
    _, qat = tiny_qat
    calib = [c[None] for c in centre_crops(list_images(str(tiny_int_model / "calib")), 32, 32)]
    options = TwinOptions(activations="int8", **XNNPACK_FORMS["xnnpack_fit"])
    encoder, decoder, _, _ = calibrated_twins(qat, options, calib,
                                              twin=twin_ablation.ablated_twin_class())
    receiver = _Receiver(qat.spec, act_scale(decoder.first_absmax(), 8), "awgn")
    export_tflite(qat, str(tmp_path), 32, 32, images=calib, snr_db=(1.0, 7.0, 13.0),
                  options=options)
    images = smooth_images(3, 32, seed=5)
    sim = twin_ablation.simulate(encoder, decoder, receiver, qat.spec, images, 13.0, (3, 4))
    tfl = TFLiteCodec(str(tmp_path), "awgn")(images, 13.0, seed=(3, 4))["x_hat"]
    delta = np.mean(psnr(images, sim).numpy() - psnr(images, tfl).numpy())
    assert abs(delta) < 0.05, delta


@pytest.mark.parametrize("argv,match", [
    (["--forms", "xnnpack_fast"], "unknown forms 'xnnpack_fast'"),
    (["--snrs", "1,high"], "--snrs"),
    (["--size", "256"], "--size must be HxW"),
])
def test_bad_arguments_are_named(argv, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        twin_ablation.main(["--calibration", str(tmp_path), *argv])


def test_too_few_calibration_images(tmp_path):
    for i in range(2):
        Image.fromarray(np.zeros([32, 32, 3], np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(ValueError, match="at least 4 images"):
        twin_ablation.main(["--calibration", str(tmp_path)])
