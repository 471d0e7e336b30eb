"""Engine export -> QAT model (fqliscs_tf.engine.to_qat): the round trip QAT -> engine -> QAT
-> engine keeps every integer parameter bit for bit, and the two QAT models agree."""
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import fqliscs_tf
from conftest import smooth_images
from fqliscs_tf.engine import export_integer_codec, load_integer_codec, qat_from_engine
from fqliscs_tf.metrics import psnr
from fqliscs_tf.quant.qat import QATJSCC, wrapped_layer

SHIPPED = Path(fqliscs_tf.__file__).resolve().parent / "weights" / "lite_c96_awgn_int"
SNRS = (1.0, 13.0)


def differences(a, b):
    """``(part, layer, key)`` of every integer array or scale that differs between two
    :class:`~fqliscs_tf.engine.IntegerParams` (dtype, shape or value)."""
    out = []
    if a.config != b.config or a.spec != b.spec:
        out.append(("config/spec",))
    for part in ("encoder", "decoder"):
        la, lb = getattr(a, part), getattr(b, part)
        if [k for k, _, _ in la] != [k for k, _, _ in lb]:
            out.append((part, "layer kinds"))
            continue
        for (_, xa, sa), (_, xb, sb) in zip(la, lb):
            if list(xa) != list(xb):
                out.append((part, sa["name"], "array keys"))
            for key in xa:
                va, vb = xa[key], xb.get(key)
                va, vb = (va if isinstance(va, tuple) else (va,)), (
                    vb if isinstance(vb, tuple) else (vb,))
                if any(p is None or q is None or p.dtype != q.dtype or not np.array_equal(p, q)
                       for p, q in zip(va, vb)):
                    out.append((part, sa["name"], key))
            out += [(part, sa["name"], f"scale {k}") for k in sa if sa[k] != sb.get(k)]
    return out


def _outputs(model, x):
    return {snr: model((x, tf.constant([snr] * len(x))))["x_hat"].numpy() for snr in SNRS}


@pytest.fixture(scope="module")
def round_trip(tiny_qat):
    _, qat = tiny_qat
    params = export_integer_codec(qat, note="test")
    rebuilt = qat_from_engine(params, channel_type="none")
    return qat, params, rebuilt


def test_round_trip_keeps_every_integer_parameter(round_trip):
    qat, params, rebuilt = round_trip
    assert isinstance(rebuilt, QATJSCC) and rebuilt.config == qat.config
    assert rebuilt.spec == qat.spec and rebuilt.channel_type == "none"
    assert differences(params, export_integer_codec(rebuilt)) == []
    info = rebuilt.meta["from_engine"]
    assert rebuilt.meta["note"] == "test" and info["source"] is None
    assert info["unmatched_channels"] == 0 and info["zero_multiplier_channels"] == 0
    assert info["bias_mismatches"] == 0 and not info["unmatched_layers"]
    assert info["scale_searches"] == 12 and not info["ambiguous_searches"]  # 2 x (2 x 2 + 2)


def test_rebuilt_model_equals_the_original(round_trip):
    """The tiny codec's biases are 0, on the int32 grid: same outputs, and the same ranges
    (absmax to 1 ulp, where two float32 absmax give one scale) except for the ModNet's hidden
    points, which match up to a power of two (the gauge)."""
    qat, _, rebuilt = round_trip
    x = tf.constant(smooth_images(2, seed=31))
    a, b = _outputs(qat, x), _outputs(rebuilt, x)
    for snr in SNRS:
        np.testing.assert_allclose(a[snr], b[snr], rtol=0, atol=1e-6)
    for part in ("encoder", "decoder"):
        for w in getattr(rebuilt, part).layers:
            if not hasattr(w, "layer") or w.layer.name == "modnet":
                continue
            original = wrapped_layer(getattr(qat, part), w.layer.name)
            ra, rb = getattr(original, "ranges", {}), getattr(w.layer, "ranges", {})
            assert set(ra) == set(rb)
            for k in ra:
                assert float(ra[k].scale()) == float(rb[k].scale())
                assert abs(float(ra[k].absmax) - float(rb[k].absmax)) <= np.spacing(
                    np.float32(ra[k].absmax.numpy()))
        ma, mb = wrapped_layer(getattr(qat, part), "modnet"), wrapped_layer(
            getattr(rebuilt, part), "modnet")
        pairs = [(ma.ranges[k], mb.ranges[k]) for k in ma.ranges] + [
            (ba.ranges[k], bb.ranges[k]) for ba, bb in zip(ma.layers_bm, mb.layers_bm)
            for k in ba.ranges]
        for ra, rb in pairs:
            ratio = math.log2(float(rb.scale()) / float(ra.scale()))
            assert ratio == round(ratio)


def test_off_grid_biases_round_trip(round_trip):
    """A QAT model with float biases, norms and position biases off the engine's grids (as
    after training): the same integer parameters again, outputs within a tight tolerance."""
    _, _, original = round_trip  # perturbed here, restored at the end
    saved = original.get_weights()
    x = tf.constant(smooth_images(2, seed=32))
    rng = np.random.default_rng(3)
    try:
        for var in original.trainable_weights:
            name = var.name.split("/")[-1]
            if name.startswith(("bias", "beta", "relative_position_bias_table")):
                var.assign_add(rng.normal(0.0, 0.02, var.shape).astype(np.float32))
            elif name.startswith("gamma"):
                var.assign(rng.uniform(0.5, 1.5, var.shape).astype(np.float32))
        exported = export_integer_codec(original)
        a = _outputs(original, x)
    finally:
        original.set_weights(saved)
    assert any(np.any(arr["bqkv"]) for k, arr, _ in exported.encoder if k == "swin_block")
    again = qat_from_engine(exported, channel_type="none")
    assert differences(exported, export_integer_codec(again)) == []
    b = _outputs(again, x)
    # Biases moved by < 0.5 accumulator LSB flip a few requantization roundings. Measured
    # (3 image pairs x 3 SNRs): 4-9 % of the pixels differ by 1 LSB, none by more, mean
    # |diff| <= 0.1 LSB, |PSNR gap| <= 0.0003 dB.
    for snr in SNRS:
        diff = np.abs(a[snr] - b[snr])
        assert diff.max() <= 1.0001 / 255 and diff.mean() < 0.25 / 255
        gap = tf.reduce_mean(psnr(x, a[snr]) - psnr(x, b[snr]))
        assert abs(float(gap)) < 0.005


@pytest.mark.slow  # ~45 s: builds the lite QAT codec
def test_shipped_integer_codec_round_trips():
    """``qat_from_engine`` of the shipped folder re-exports to the same integer parameters."""
    params = load_integer_codec(str(SHIPPED))
    rebuilt = qat_from_engine(str(SHIPPED))
    assert rebuilt.channel_type == params.meta["channel_type"] == "awgn"
    info = rebuilt.meta["from_engine"]
    assert info["unmatched_channels"] == info["bias_mismatches"] == 0
    assert info["scale_searches"] == 24 and not info["ambiguous_searches"]
    assert differences(params, export_integer_codec(rebuilt)) == []
