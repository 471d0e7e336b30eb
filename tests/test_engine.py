"""The integer inference engine: export, integer-only graph, agreement with the QAT codec,
the integer channel (power normalization, AWGN, Rayleigh with fixed-point MMSE)."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import smooth_images

from fqliscs_tf.engine import (IntegerCodec, export_integer_codec, load_integer_codec,
                               quantize_snr_db, save_integer_codec)
from fqliscs_tf.engine.layers import layer_forward
from fqliscs_tf.metrics import psnr
from phy.integer_channel import (IntAWGN, IntRayleigh, get_int_channel, int_gaussian,
                                 int_power_normalize)


@pytest.fixture(scope="module")
def engine_pair(tiny_qat):
    _, qat = tiny_qat
    params = export_integer_codec(qat, note="test")
    return qat, params


def _float_ops(graph):
    bad = []
    for op in graph.get_operations():
        for t in list(op.outputs) + list(op.inputs):
            if t.dtype.is_floating or t.dtype.is_complex:
                bad.append(f"{op.type} {op.name} {t.dtype.name}")
    return bad


@pytest.mark.parametrize("channel", ["none", "awgn", "rayleigh"])
def test_engine_graph_has_no_float_op_or_tensor(engine_pair, channel):
    _, params = engine_pair
    graph = IntegerCodec(params, channel).integer_graph(32, 32, batch_size=2)
    assert not _float_ops(graph), _float_ops(graph)[:10]
    types = {op.type for op in graph.get_operations()}
    assert "MatMul" in types or "BatchMatMulV2" in types


def test_exported_parameters_are_integers(engine_pair):
    _, params = engine_pair
    kinds = [k for k, _, _ in params.encoder] + [k for k, _, _ in params.decoder]
    assert kinds[0] == "patch_embed" and "swin_block" in kinds and "modnet" in kinds
    for array in params.arrays():
        assert np.asarray(array).dtype.kind == "i"
    kernels = [a for _, arrays, _ in params.encoder for k, a in arrays.items()
               if not isinstance(a, tuple) and a.dtype == np.int8]
    assert kernels and all(np.abs(k).max() <= 127 for k in kernels)


def test_engine_matches_the_qat_codec(engine_pair):
    """Same PSNR to within 0.05 dB; pixels within a few LSB (1-LSB ties propagate)."""
    qat, params = engine_pair
    engine = IntegerCodec(params, "none", jit_compile=False)
    x = tf.constant(smooth_images(2, seed=31))
    for snr in (1.0, 13.0):
        a = qat((x, tf.constant([snr, snr])))["x_hat"]
        b = engine(x, snr)["x_hat"]
        assert abs(float(tf.reduce_mean(psnr(x, a) - psnr(x, b)))) < 0.05
        diff = np.abs(np.round(a.numpy() * 255) - np.round(b.numpy() * 255))
        assert diff.mean() < 0.5


def test_each_layer_is_within_one_lsb_of_qat(engine_pair):
    """Feed each engine layer the QAT layer's quantized input: 8-bit outputs agree to 1 LSB.

    They can differ by 1 LSB where the QAT graph (float32 rescale, round half up) and the
    engine (Q31 dyadic multiplier, TFLite double rounding) break a rounding tie differently.
    """
    import tf_keras as keras
    qat, params = engine_pair
    enc = qat.encoder
    sub = keras.Model(enc.inputs, [l.output for l in enc.layers if hasattr(l, "layer")])
    x = tf.constant(smooth_images(2, seed=8))
    snr_db = 7.0
    outputs = [v.numpy() for v in sub([x, tf.fill([2, 1], snr_db)], training=False)]
    snr_q = tf.reshape(quantize_snr_db([snr_db] * 2, qat.spec.snr_step_db), [-1, 1])
    previous = np.round(x.numpy() * 255).astype(np.int32)
    layers = params.encoder
    for i, (kind, arrays, scales) in enumerate(layers):
        if kind in ("output_norm", "head"):
            scale, bits = scales["out"], qat.spec.act_bits
        elif kind == "modnet":
            scale, bits = layers[i + 1][2]["in"], scales["next_bits"]
        else:
            scale, bits = layers[i + 1][2]["in"], qat.spec.residual_bits
        qmax = 2 ** (bits - 1) - 1
        reference = np.clip(np.floor(outputs[i] / scale + 0.5), -qmax, qmax)
        got = layer_forward(kind, tf.constant(previous, tf.int32), arrays, scales, qat.spec,
                            snr_q).numpy()
        diff = np.abs(got - reference)
        if bits == qat.spec.act_bits:
            assert diff.max() <= 1, (kind, diff.max())
        else:  # 16-bit outputs: 1-LSB flips of internal 8-bit points scale up; stay small
            assert np.mean(diff) / qmax < 2e-3, (kind, np.mean(diff))
        previous = reference.astype(np.int32)


def test_save_load_is_bit_exact(engine_pair, tmp_path):
    _, params = engine_pair
    save_integer_codec(params, str(tmp_path / "int"))
    loaded = load_integer_codec(str(tmp_path / "int"))
    assert loaded.meta["note"] == "test" and loaded.config == params.config
    x = tf.constant(smooth_images(1, seed=4))
    a = IntegerCodec(params, "awgn", jit_compile=False)(x, 4.0, seed=(1, 2))["x_hat"].numpy()
    b = IntegerCodec(str(tmp_path / "int"), "awgn", jit_compile=False)(
        x, 4.0, seed=(1, 2))["x_hat"].numpy()
    np.testing.assert_array_equal(a, b)
    assert params.kernel_bytes() < params.num_bytes()


def test_float_channel_mode_runs_sionna_links(engine_pair):
    _, params = engine_pair
    engine = IntegerCodec(params, "rayleigh-block")
    out = engine(tf.constant(smooth_images(1, seed=6)), 10.0)
    assert out["x_hat"].shape == (1, 32, 32, 3)
    assert np.all((out["x_hat"].numpy() >= 0) & (out["x_hat"].numpy() <= 1))


def test_engine_clear_errors(engine_pair, tmp_path):
    _, params = engine_pair
    with pytest.raises(ValueError, match="int8 SNR grid"):
        quantize_snr_db([40.0], 0.25)
    with pytest.raises(ValueError, match="not an integer codec"):
        load_integer_codec(str(tmp_path))
    with pytest.raises(ValueError, match="no integer model"):
        get_int_channel("ofdm-cdl", 0.03, 0.25)
    with pytest.raises(ValueError, match="QATJSCC"):
        export_integer_codec(object())
    with pytest.raises(ValueError, match="snr_db"):
        IntegerCodec(params, "none")(tf.zeros([2, 32, 32, 3]), [1.0, 2.0, 3.0])


# --------------------------------------------------------------------------- channel
def test_int_gaussian_is_standard_normal_in_q12():
    g = int_gaussian([200000], tf.constant([3, 4])).numpy() / 4096.0
    assert g.dtype == np.float64 and abs(g.mean()) < 0.01 and abs(g.var() - 1) < 0.02


def test_int_power_normalization_gives_unit_power():
    rng = np.random.default_rng(0)
    latent = tf.constant(rng.integers(-100, 100, (3, 4, 4, 8)), tf.int32)
    scale = 4.0 / 127
    re, im = int_power_normalize(latent, scale)
    power = np.mean((re.numpy() * scale) ** 2 + (im.numpy() * scale) ** 2, axis=1)
    np.testing.assert_allclose(power, 1.0, atol=0.01)
    # adjacent latent values form one symbol, order kept
    x = latent.numpy().reshape(3, -1)
    ratio = re.numpy() / np.where(x[:, 0::2] == 0, 1, x[:, 0::2])
    assert np.all(ratio >= 0) and np.median(ratio[x[:, 0::2] != 0]) > 0.1


def test_int_awgn_noise_variance_matches_the_snr():
    scale, snr_db = 4.0 / 127, 4.0
    channel = IntAWGN(scale, 0.25)
    zeros = tf.zeros([1, 100000], tf.int32)
    re, im = channel(zeros, zeros, quantize_snr_db([snr_db], 0.25), tf.constant([1, 2]))
    no = 10 ** (-snr_db / 10)
    var = (np.var(re.numpy() * scale) + np.var(im.numpy() * scale))
    assert abs(var / no - 1) < 0.03


def test_int_rayleigh_mmse_matches_theory():
    """Post-MMSE error E|s_hat - s|^2 for unit-power QPSK-like symbols vs
    E[no / (|h|^2 + no)] (Monte Carlo) and near-perfect recovery at high SNR."""
    scale = 4.0 / 127
    rng = np.random.default_rng(1)
    k = 100000
    amp = int(round(np.sqrt(0.5) / scale))
    s_re = tf.constant(rng.choice([-amp, amp], (1, k)), tf.int32)
    s_im = tf.constant(rng.choice([-amp, amp], (1, k)), tf.int32)
    channel = IntRayleigh(scale, 0.25)
    for snr_db in (4.0, 30.0):
        re, im = channel(s_re, s_im, quantize_snr_db([snr_db], 0.25), tf.constant([5, 6]))
        err = np.mean(((re - s_re).numpy() * scale) ** 2 + ((im - s_im).numpy() * scale) ** 2)
        no = 10 ** (-snr_db / 10)
        h2 = rng.exponential(1.0, 400000)
        theory = np.mean(no / (h2 + no))
        assert abs(err / theory - 1) < 0.1, (snr_db, err, theory)


def test_evaluate_runs_integer_and_qat_systems(engine_pair, tiny_qat, tmp_path):
    import json

    from PIL import Image

    from experiments import evaluate
    from fqliscs_tf.quant.qat import save_qat
    qat, params = engine_pair
    images = tmp_path / "images"
    images.mkdir()
    for i, img in enumerate(smooth_images(2, seed=40)):
        Image.fromarray((img * 255).astype(np.uint8)).save(images / f"im{i}.png")
    save_integer_codec(params, str(tmp_path / "int"))
    save_qat(qat, str(tmp_path / "qat"))
    out = tmp_path / "eval"
    assert evaluate.main(["--systems", f"int:{tmp_path / 'int'},jit=0", f"qat:{tmp_path / 'qat'}",
                          "--images", str(images), "--channels", "awgn,rayleigh",
                          "--snrs", "4,13", "--outdir", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["records"]
    assert len(rows) == 2 * 2 * 2
    by = {(r["system"].split(":")[0], r["channel"], r["snr_db"]): r["psnr"]["mean"]
          if isinstance(r["psnr"], dict) else r["psnr"] for r in rows}
    for channel in ("awgn", "rayleigh"):
        for snr in (4.0, 13.0):
            assert abs(by[("int", channel, snr)] - by[("qat", channel, snr)]) < 1.5
    with pytest.raises(ValueError, match="SNR grid"):
        evaluate.main(["--systems", f"int:{tmp_path / 'int'}", "--images", str(images),
                       "--snrs", "40", "--outdir", str(tmp_path / "bad")])
