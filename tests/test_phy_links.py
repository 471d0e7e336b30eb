# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Tests of the Sionna JSCC links in phy/: symbols, channels against theory, gradients."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from scipy.special import exp1

import phy
from modes import MODES, run
from phy import (CHANNEL_TYPES, AWGNChannel, IdentityChannel, JSCCLink, RayleighChannel,
                 complex_to_real, get_channel, normalize_power, num_channel_uses,
                 parse_snr_list, real_to_complex, snr_db_to_no)

# The flat links of this file; OFDM and MIMO links are tested in test_phy_ofdm_mimo.py.
FLAT_TYPES = ("none", "awgn", "rayleigh", "rayleigh-fast", "rayleigh-block")



def unit_power_symbols(batch_size, k):
    """Random complex symbols [batch_size, k] with unit power per example."""
    z = tf.complex(tf.random.normal([batch_size, k]), tf.random.normal([batch_size, k]))
    return normalize_power(z)


def mean_sq(a):
    a = np.asarray(a)
    return np.mean(np.abs(a) ** 2, axis=-1)


# ---------------------------------------------------------------------------- utils

def test_snr_db_to_no():
    no = snr_db_to_no(tf.constant([[0.0, 10.0], [-3.0, 20.0]]))
    assert no.dtype == tf.float32 and no.shape == (2, 2)
    np.testing.assert_allclose(no.numpy(), [[1.0, 0.1], [10 ** 0.3, 0.01]], rtol=1e-6)
    assert float(snr_db_to_no(13)) == pytest.approx(10 ** -1.3, rel=1e-6)
    assert snr_db_to_no(np.float64(3.0)).dtype == tf.float32


@pytest.mark.parametrize("text, expected", [
    ("1,4,7,10,13", [1.0, 4.0, 7.0, 10.0, 13.0]),
    (" -2.5 , 0,1e1 ", [-2.5, 0.0, 10.0]),
    ("5,5", [5.0, 5.0]),
    ([1, 2.5], [1.0, 2.5]),
    ((3,), [3.0]),
    (np.array([0.0, 10.0]), [0.0, 10.0]),
    (7, [7.0]),
])
def test_parse_snr_list(text, expected):
    out = parse_snr_list(text)
    assert out == expected and all(isinstance(v, float) for v in out)


@pytest.mark.parametrize("text", ["", "  ", "1,,4", "1,4,", "1;4", "a,2", "1,nan", "inf",
                                  [], (), [1, None], [True], [1, float("inf")], None, {"a": 1}])
def test_parse_snr_list_malformed(text):
    with pytest.raises(ValueError, match="SNR list"):
        parse_snr_list(text)


# -------------------------------------------------------------------------- symbols

def test_normalize_power_unit_per_example():
    scales = tf.constant([[1e-3], [0.5], [1.0], [37.0]])
    z = tf.complex(tf.random.normal([4, 999]), tf.random.normal([4, 999])) * tf.complex(scales, 0.0)
    z_norm, power = normalize_power(z, return_power=True)
    assert z_norm.shape == z.shape and z_norm.dtype == tf.complex64 and power.shape == (4, 1)
    np.testing.assert_allclose(mean_sq(z_norm), 1.0, rtol=1e-5)
    np.testing.assert_allclose(power.numpy()[:, 0], mean_sq(z), rtol=1e-5)
    # Direction is unchanged, an all-zero example stays zero (no NaN).
    np.testing.assert_allclose(z_norm.numpy() * np.sqrt(power.numpy()), z.numpy(),
                               rtol=1e-4, atol=1e-9)
    zero = normalize_power(tf.zeros([1, 8], tf.complex64))
    assert np.all(zero.numpy() == 0)


def test_real_to_complex_pairing():
    x = tf.reshape(tf.range(8, dtype=tf.float32), [2, 1, 2, 2])
    z = real_to_complex(x)
    assert z.dtype == tf.complex64 and z.shape == (2, 2)
    np.testing.assert_array_equal(z.numpy(), [[0 + 1j, 2 + 3j], [4 + 5j, 6 + 7j]])


@pytest.mark.parametrize("shape", [(3, 5, 7, 2), (2, 4, 6, 8), (1, 1, 1, 2), (2, 6)])
def test_real_complex_round_trip(shape):
    x = tf.random.normal(shape)
    z = real_to_complex(x)
    assert z.shape == (shape[0], int(np.prod(shape[1:])) // 2)
    x_back = complex_to_real(z, shape[1:])
    assert x_back.shape == shape and x_back.dtype == tf.float32
    np.testing.assert_array_equal(x_back.numpy(), x.numpy())


def test_real_complex_round_trip_dynamic_shapes():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 4], tf.float32)])
    def round_trip(x):
        return complex_to_real(real_to_complex(x), tf.shape(x)[1:])

    for shape in [(2, 3, 5, 4), (1, 7, 2, 4)]:
        x = tf.random.normal(shape)
        np.testing.assert_array_equal(round_trip(x).numpy(), x.numpy())


# ------------------------------------------------------------------------- channels

def test_awgn_noise_power_matches_no():
    snr_db = tf.constant([0.0, 5.0, 10.0, 20.0])
    z = unit_power_symbols(4, 200_000)
    z_hat, no_eff = AWGNChannel()(z, snr_db)
    no = 10 ** (-snr_db.numpy() / 10)
    assert z_hat.shape == z.shape and z_hat.dtype == tf.complex64
    assert no_eff.shape == z.shape and no_eff.dtype == tf.float32
    np.testing.assert_allclose(no_eff.numpy(), np.broadcast_to(no[:, None], z.shape), rtol=1e-6)
    np.testing.assert_allclose(mean_sq(z_hat - z), no, rtol=0.02)


def test_awgn_scalar_snr():
    z = unit_power_symbols(2, 100_000)
    z_hat, no_eff = AWGNChannel()(z, 3.0)
    assert no_eff.shape == z.shape
    np.testing.assert_allclose(mean_sq(z_hat - z), 10 ** -0.3, rtol=0.02)


@pytest.mark.parametrize("fading, batch_size, k, tol", [
    ("fast", 2, 100_000, 0.02),     # 2e5 draws: std of the mean 0.2 %
    ("block", 20_000, 4, 0.05),     # 2e4 draws: std of the mean 0.7 %
])
def test_rayleigh_gain_and_fading_structure(fading, batch_size, k, tol):
    z = unit_power_symbols(batch_size, k)
    _, _, h = RayleighChannel(fading=fading)(z, 10.0, return_channel=True)
    h = h.numpy()
    assert h.shape == (batch_size, k) and h.dtype == np.complex64
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, rel=tol)
    assert abs(np.mean(h)) < tol
    if fading == "block":
        np.testing.assert_array_equal(h, np.repeat(h[:, :1], k, axis=1))
    else:
        # Independent draws: E|h_i - h_j|^2 = 2 for i != j.
        assert np.mean(np.abs(h[:, 1:] - h[:, :-1]) ** 2) == pytest.approx(2.0, rel=tol)


@pytest.mark.parametrize("channel_type", ["none", "awgn", "rayleigh-fast", "rayleigh-block"])
def test_high_snr_is_transparent(channel_type):
    z = unit_power_symbols(8, 1000)
    z_hat, no_eff = get_channel(channel_type)(z, 100.0)
    err = np.abs(z_hat.numpy() - z.numpy())
    assert np.mean(err ** 2) < 1e-6 and np.median(err) < 1e-4
    assert np.mean(no_eff.numpy()) < 1e-6  # max can be larger in a deep fade


def test_link_high_snr_reconstructs_latent():
    latent = tf.random.normal([3, 4, 6, 8]) * tf.constant([0.1, 1.0, 5.0])[:, None, None, None]
    power = np.mean(latent.numpy().reshape(3, -1) ** 2, axis=1) * 2  # per complex symbol
    scaled = latent.numpy() / np.sqrt(power)[:, None, None, None]
    out = JSCCLink("awgn")(latent, 100.0)
    np.testing.assert_allclose(out["latent_hat"].numpy(), scaled, atol=1e-3)
    out = JSCCLink("awgn", denormalize=True)(latent, 100.0)
    np.testing.assert_allclose(out["latent_hat"].numpy(), latent.numpy(), atol=1e-3)
    out = JSCCLink("none", denormalize=True)(latent, 0.0)
    np.testing.assert_allclose(out["latent_hat"].numpy(), latent.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_mse_matches_theory(snr_db):
    no = 10 ** (-snr_db / 10)
    # AWGN: E|z_hat - z|^2 = no.
    z = unit_power_symbols(2, 100_000)
    z_hat, _ = AWGNChannel()(z, snr_db)
    assert np.mean(np.abs(z_hat - z) ** 2) == pytest.approx(no, rel=0.02)
    # Rayleigh (fast) + MMSE: E|z_hat - z|^2 = E[no / (|h|^2 + no)] = no e^no E1(no).
    z_hat, no_eff, h = RayleighChannel("fast")(z, snr_db, return_channel=True)
    mse = np.mean(np.abs(z_hat.numpy() - z.numpy()) ** 2)
    expected_drawn = np.mean(no / (np.abs(h.numpy()) ** 2 + no))
    np.testing.assert_allclose(no_eff.numpy(), no / (np.abs(h.numpy()) ** 2 + no), rtol=1e-5)
    assert mse == pytest.approx(expected_drawn, rel=0.02)
    assert expected_drawn == pytest.approx(no * np.exp(no) * exp1(no), rel=0.02)
    # Rayleigh (block): same expectation over examples.
    z_blk = unit_power_symbols(20_000, 16)
    z_hat, no_eff = RayleighChannel("block")(z_blk, snr_db)
    assert np.mean(np.abs(z_hat - z_blk) ** 2) == pytest.approx(np.mean(no_eff), rel=0.05)
    assert np.mean(no_eff) == pytest.approx(no * np.exp(no) * exp1(no), rel=0.05)


# ------------------------------------------------------------------------ JSCC link

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channel_type", FLAT_TYPES)
def test_link_gradients(channel_type, mode):
    link = JSCCLink(channel_type)
    v = tf.Variable(tf.random.normal([2, 3, 5, 4]), trainable=True)
    target = tf.random.normal([2, 3, 5, 4])
    snr_db = tf.constant([5.0, 15.0])

    def step():
        with tf.GradientTape() as tape:
            latent = 2.0 * v
            out = link(latent, snr_db)
            loss = tf.reduce_mean((out["latent_hat"] - target) ** 2)
        return out, tape.gradient(loss, v)

    out, grad = run(step, mode)
    assert out["latent_hat"].shape == (2, 3, 5, 4) and out["latent_hat"].dtype == tf.float32
    for key in ("symbols", "symbols_hat"):
        assert out[key].shape == (2, 30) and out[key].dtype == tf.complex64
    assert out["no_eff"].shape == (2, 30) and out["no_eff"].dtype == tf.float32
    np.testing.assert_allclose(mean_sq(out["symbols"]), 1.0, rtol=1e-5)
    grad = grad.numpy()
    assert np.all(np.isfinite(grad)) and np.linalg.norm(grad) > 1e-4


def test_link_in_functional_model_with_dynamic_shapes():
    latent_in = keras.Input([None, None, 8])
    snr_in = keras.Input([])
    out = JSCCLink("rayleigh")(latent_in, snr_in)
    model = keras.Model([latent_in, snr_in], [out["latent_hat"], out["no_eff"]])
    for shape in [(2, 3, 5, 8), (1, 4, 2, 8)]:
        latent_hat, no_eff = model([tf.random.normal(shape), tf.fill([shape[0]], 10.0)])
        assert latent_hat.shape == shape
        assert no_eff.shape == (shape[0], num_channel_uses(shape))


def test_num_channel_uses():
    assert num_channel_uses((None, 4, 6, 8)) == 96
    assert JSCCLink.num_channel_uses(tf.TensorShape([2, 3, 5, 4])) == 30
    out = JSCCLink("none")(tf.zeros([2, 3, 5, 4]), 0.0)
    assert out["symbols"].shape[1] == num_channel_uses([2, 3, 5, 4])


@pytest.mark.parametrize("name, cls, fading", [
    ("none", IdentityChannel, None), ("awgn", AWGNChannel, None),
    ("rayleigh", RayleighChannel, "fast"), ("rayleigh-fast", RayleighChannel, "fast"),
    ("rayleigh-block", RayleighChannel, "block"), ("AWGN", AWGNChannel, None),
])
def test_registry_and_config(name, cls, fading):
    channel = get_channel(name)
    assert type(channel) is cls  # pylint: disable=unidiomatic-typecheck
    if fading is not None:
        assert channel.fading == fading
        assert type(cls.from_config(channel.get_config())) is cls
    link = JSCCLink(name, name="link")
    clone = JSCCLink.from_config(link.get_config())
    assert clone.name == "link" and clone.channel_type == name
    assert type(clone.channel) is cls
    assert set(FLAT_TYPES) <= set(CHANNEL_TYPES)
    assert phy.__all__ and all(hasattr(phy, n) for n in phy.__all__)


# ---------------------------------------------------------------------- bad inputs

def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="'bogus'.*awgn.*rayleigh-block"):
        JSCCLink("bogus")
    with pytest.raises(ValueError, match="'rician'"):
        get_channel("rician")
    with pytest.raises(ValueError, match="'slow'"):
        RayleighChannel(fading="slow")
    with pytest.raises(ValueError, match="fading"):
        get_channel("rayleigh-block", fading="fast")
    with pytest.raises(ValueError, match="odd|even"):
        real_to_complex(tf.zeros([2, 3, 3, 1]))
    with pytest.raises(ValueError, match="odd|even"):
        JSCCLink("awgn")(tf.zeros([2, 3, 3, 1]), 10.0)
    with pytest.raises(ValueError, match="odd"):
        num_channel_uses((None, 3, 3, 1))
    with pytest.raises(ValueError, match="4 entries"):
        num_channel_uses((3, 3, 2))
    with pytest.raises(ValueError, match="shape"):
        JSCCLink("awgn")(tf.zeros([2, 4, 4]), 10.0)
    with pytest.raises(ValueError, match="snr_db"):
        AWGNChannel()(unit_power_symbols(2, 4), tf.zeros([2, 4, 1]))
    with pytest.raises(ValueError, match="complex"):
        AWGNChannel()(tf.zeros([2, 4]), 10.0)
    with pytest.raises(ValueError, match="SNR list"):
        parse_snr_list("1,4,x")
