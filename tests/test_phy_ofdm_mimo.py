# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Tests of the OFDM and MIMO links (phy/ofdm.py, phy/mimo.py) and channel config files.

Physics against closed forms (uncoded QPSK BER, LMMSE MSE, MRC, eigenmodes),
transparency at very high SNR, channel power normalization, gradients in
eager/graph/XLA, and parameter validation. Grids are small to keep the file fast.
"""
import importlib.util
import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from scipy.special import comb, erfc, exp1

import phy
from modes import MODES, run
from phy import (CHANNEL_TYPES, JSCCLink, MIMOLinkChannel, MIMOOFDMLinkChannel, OFDMLinkChannel,
                 get_channel, load_channel_config, normalize_power, save_channel_config,
                 validate_channel_config)
from phy.mimo import precoding_matrix
from phy.ofdm import equalized_to_estimate

NEW_TYPES = ("ofdm-rayleigh", "ofdm-tdl", "ofdm-cdl", "ofdm-umi", "ofdm-uma", "mimo",
             "mimo-ofdm-cdl")

#: 4 OFDM symbols x 10 effective subcarriers, pilots on symbol 1: NDS = 30 per stream
SMALL_GRID = dict(num_ofdm_symbols=4, fft_size=12, num_guard_carriers=(1, 0), dc_null=True,
                  pilot_ofdm_symbol_indices=(1,))
#: One OFDM symbol, 16 subcarriers, no pilots (perfect CSI): NDS = 16
FLAT_GRID = dict(num_ofdm_symbols=1, fft_size=16, num_guard_carriers=(0, 0), dc_null=False,
                 pilot_ofdm_symbol_indices=())


def unit_power_symbols(batch_size, k):
    z = tf.complex(tf.random.normal([batch_size, k]), tf.random.normal([batch_size, k]))
    return normalize_power(z)


def qpsk(batch_size, k, rng):
    """Random QPSK symbols (unit power) and their bits (+-1 per real/imag part)."""
    bits = rng.choice([-1.0, 1.0], size=(2, batch_size, k)).astype(np.float32)
    z = tf.complex(bits[0], bits[1]) / np.sqrt(2).astype(np.float32)
    return z, bits


def bit_errors(z_hat, bits):
    """Per-example fraction of wrong hard decisions (sign of real/imag)."""
    z_hat = np.asarray(z_hat)
    wrong = (np.sign(z_hat.real) != bits[0]).astype(float) + (np.sign(z_hat.imag) != bits[1])
    return wrong.mean(axis=1) / 2


def rayleigh_mrc_ber(snr_db, num_branches=1):
    """Closed-form QPSK BER with L-branch MRC over i.i.d. Rayleigh (Proakis 14.4-15).

    ``snr_db`` is the average SNR per symbol and branch (Es/N0), so Eb/N0 = SNR/2.
    """
    gamma_b = 10 ** (snr_db / 10) / 2
    mu = np.sqrt(gamma_b / (1 + gamma_b))
    return ((1 - mu) / 2) ** num_branches * sum(
        comb(num_branches - 1 + l, l) * ((1 + mu) / 2) ** l for l in range(num_branches))


def assert_ber(ber_per_example, expected, name):
    """Mean BER within 5 standard errors (estimated from the examples) + 1 % of ``expected``."""
    ber = np.mean(ber_per_example)
    se = np.std(ber_per_example) / np.sqrt(len(ber_per_example))
    assert abs(ber - expected) < 5 * se + 0.01 * expected, (
        f"{name}: BER {ber:.5f} vs closed form {expected:.5f} (standard error {se:.1e})")


# ----------------------------------------------------------------- BER vs theory

@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_qpsk_ber_existing_links(snr_db):
    """AWGN: Q(sqrt(SNR)); fast flat Rayleigh: 0.5 (1 - sqrt(g / (1 + g))), g = SNR/2."""
    rng = np.random.default_rng(0)
    z, bits = qpsk(8, 50_000, rng)
    z_hat, _ = get_channel("awgn")(z, snr_db)
    expected = 0.5 * erfc(np.sqrt(10 ** (snr_db / 10) / 2))  # Q(sqrt(SNR))
    assert_ber(bit_errors(z_hat, bits), expected, "awgn")
    z_hat, _ = get_channel("rayleigh-fast")(z, snr_db)
    assert_ber(bit_errors(z_hat, bits), rayleigh_mrc_ber(snr_db), "rayleigh-fast")


@pytest.mark.parametrize("num_rx_ant", [1, 2])
def test_ofdm_rayleigh_qpsk_ber_matches_closed_form(num_rx_ant):
    """Uncoded QPSK, perfect CSI, one block-fading gain per antenna and slot (flat).

    One example = one slot, so the examples are independent fading draws.
    With two receive antennas, LMMSE is MRC: the 2-branch diversity formula.
    """
    rng = np.random.default_rng(1)
    snr_db = 10.0
    channel = get_channel("ofdm-rayleigh", num_rx_ant=num_rx_ant, **FLAT_GRID)
    assert channel.num_data_symbols == 16
    z, bits = qpsk(20_000, 16, rng)
    z_hat, no_eff, h, _ = channel(z, snr_db, return_channel=True)
    assert h.shape == (20_000, 1, num_rx_ant, 1, 1, 1, 16)
    assert_ber(bit_errors(z_hat, bits), rayleigh_mrc_ber(snr_db, num_rx_ant),
               f"ofdm-rayleigh 1x{num_rx_ant}")
    # Post-equalization MSE: no / (||h||^2 + no) per slot, mean no e^no E1(no) for 1x1.
    no = 10 ** (-snr_db / 10)
    gain = np.sum(np.abs(h.numpy()[:, 0, :, 0, 0, 0, 0]) ** 2, axis=1)
    np.testing.assert_allclose(no_eff.numpy(), np.repeat((no / (gain + no))[:, None], 16, 1),
                               rtol=1e-3)
    mse = np.mean(np.abs(z_hat.numpy() - z.numpy()) ** 2, axis=1)
    assert np.mean(mse) == pytest.approx(np.mean(no_eff), rel=0.03)
    if num_rx_ant == 1:
        assert np.mean(no_eff) == pytest.approx(no * np.exp(no) * exp1(no), rel=0.05)


# ------------------------------------------------------------ LMMSE MSE vs theory

def lmmse_mse_theory(h_eff, no):
    """Per-stream LMMSE MSE diag((I + H^H H / no)^-1) for matrices [..., Nr, S]."""
    s = h_eff.shape[-1]
    gram = np.conj(np.swapaxes(h_eff, -1, -2)) @ h_eff / no
    return np.real(np.diagonal(np.linalg.inv(np.eye(s) + gram), axis1=-2, axis2=-1))


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_mimo_2x2_iid_lmmse_mse_matches_theory(snr_db):
    """2x2 i.i.d., no precoding (H_eff = H / sqrt(2)): MSE_i = E[((I + H^H H/(2 no))^-1)_ii]."""
    no = 10 ** (-snr_db / 10)
    channel = MIMOLinkChannel(num_tx_ant=2, num_rx_ant=2)
    z = unit_power_symbols(4, 50_000)
    z_hat, no_eff, h, f = channel(z, snr_db, return_channel=True)
    h, f = h.numpy(), f.numpy()
    np.testing.assert_allclose(f, np.broadcast_to(np.eye(2) / np.sqrt(2), f.shape), atol=1e-7)
    # no_eff is the exact conditional MSE of each draw ...
    per_draw = lmmse_mse_theory(h / np.sqrt(2), no).reshape(4, -1)
    np.testing.assert_allclose(no_eff.numpy(), per_draw, rtol=2e-3, atol=1e-6)
    # ... the empirical MSE matches it, and its mean the expectation over H.
    err = np.abs(z_hat.numpy() - z.numpy()) ** 2
    assert np.mean(err) == pytest.approx(np.mean(per_draw), rel=0.02)
    rng = np.random.default_rng(2)
    h_ref = (rng.standard_normal((400_000, 2, 2)) + 1j * rng.standard_normal((400_000, 2, 2)))
    expected = np.mean(lmmse_mse_theory(h_ref / 2, no))   # h_ref / sqrt(2) is CN(0,1)
    assert np.mean(err) == pytest.approx(expected, rel=0.02)
    # Per stream (even / odd symbols) the same by symmetry.
    for stream in (0, 1):
        assert np.mean(err[:, stream::2]) == pytest.approx(expected, rel=0.03)


def test_mimo_svd_eigenmodes_and_rzf_diagonalization():
    """SVD: MSE_i = 1 / (1 + sigma_i^2 / (S no)); ZF (rzf_alpha=0): H F is diagonal."""
    snr_db, no = 5.0, 10 ** -0.5
    channel = MIMOLinkChannel(num_tx_ant=4, num_rx_ant=2, precoding="svd", rx_corr=0.3)
    assert channel.num_streams == 2
    z = unit_power_symbols(2, 20_000)
    z_hat, no_eff, h, f = channel(z, snr_db, return_channel=True)
    h, f = h.numpy(), f.numpy()
    np.testing.assert_allclose(np.sum(np.abs(f) ** 2, axis=(-2, -1)), 1.0, rtol=1e-5)
    sv = np.linalg.svd(h, compute_uv=False)                     # [B, n, 2], descending
    expected = (1 / (1 + sv ** 2 / (2 * no))).reshape(2, -1)
    np.testing.assert_allclose(no_eff.numpy(), expected, rtol=2e-3)
    err = np.abs(z_hat.numpy() - z.numpy()) ** 2
    assert np.mean(err) == pytest.approx(np.mean(expected), rel=0.03)

    channel = MIMOLinkChannel(num_tx_ant=4, num_rx_ant=2, precoding="rzf", rzf_alpha=0.0)
    _, _, h, f = channel(unit_power_symbols(2, 200), 10.0, return_channel=True)
    h_eff = h.numpy() @ f.numpy()
    np.testing.assert_allclose(np.sum(np.abs(f.numpy()) ** 2, axis=(-2, -1)), 1.0, rtol=1e-5)
    off_diag = np.abs(h_eff[..., 0, 1]) + np.abs(h_eff[..., 1, 0])
    assert np.max(off_diag) < 1e-3 * np.max(np.abs(h_eff))
    np.testing.assert_allclose(np.linalg.norm(f.numpy(), axis=-2), np.sqrt(0.5), rtol=1e-5)


def test_no_eff_conventions_mmse_unbiased_zf():
    """MMSE output is shrunk by 1 - no_eff, the unbiased/ZF outputs are not; no_eff = MSE."""
    snr_db, no = 3.0, 10 ** -0.3
    z = unit_power_symbols(4, 30_000)
    for kwargs in ({}, {"unbiased": True}, {"equalizer": "zf"}):
        z_hat, no_eff = MIMOLinkChannel(num_tx_ant=2, num_rx_ant=3, **kwargs)(z, snr_db)
        z_hat, no_eff, zn = z_hat.numpy(), no_eff.numpy(), z.numpy()
        assert np.mean(np.abs(z_hat - zn) ** 2) == pytest.approx(np.mean(no_eff), rel=0.03)
        # E[z_hat | z] = a z: least-squares slope over all symbols.
        slope = np.real(np.sum(z_hat * np.conj(zn)) / np.sum(np.abs(zn) ** 2))
        expected = 1.0 if kwargs else 1.0 - np.mean(no_eff)
        assert slope == pytest.approx(expected, abs=0.01), kwargs
    # ZF over a flat 1x1 OFDM channel: z_hat = y / h, no_eff = no / |h|^2.
    channel = OFDMLinkChannel("rayleigh", equalizer="zf", **FLAT_GRID)
    _, no_eff, h, _ = channel(unit_power_symbols(100, 16), snr_db, return_channel=True)
    gain = np.abs(h.numpy()[:, 0, 0, 0, 0, 0, :1]) ** 2
    np.testing.assert_allclose(no_eff.numpy(), np.broadcast_to(no / gain, (100, 16)), rtol=1e-3)


def test_equalized_to_estimate_is_finite():
    x_hat = tf.constant([1 + 1j, np.inf, np.nan, 2.0], tf.complex64)
    sigma2 = tf.constant([1.0, 0.5, 0.1, np.inf], tf.float32)
    for mmse in (True, False):
        z_hat, no_eff = equalized_to_estimate(x_hat, sigma2, mmse=mmse)
        assert np.all(np.isfinite(z_hat.numpy())) and np.all(np.isfinite(no_eff.numpy()))
    z_hat, no_eff = equalized_to_estimate(x_hat, sigma2)
    np.testing.assert_allclose(z_hat.numpy()[0], 0.5 + 0.5j)
    np.testing.assert_allclose(no_eff.numpy(), [0.5, 1.0, 1.0, 1.0], rtol=1e-5)


def test_ls_estimation_mse_falls_with_snr():
    """LS + interpolation: channel estimation MSE decreases with SNR (and stays finite)."""
    z = unit_power_symbols(64, 200)
    for kwargs in ({"channel_model": "rayleigh", "estimator": "ls-nn"},
                   {"channel_model": "tdl", "estimator": "ls-lin", "max_speed": 10.0}):
        channel = OFDMLinkChannel(**SMALL_GRID, **kwargs)
        eff = np.asarray(channel.resource_grid.effective_subcarrier_ind)
        mses = []
        for snr_db in (0.0, 10.0, 20.0):
            z_hat, no_eff, h_freq, h_hat = channel(z, snr_db, return_channel=True)
            h_true = h_freq.numpy()[..., eff]
            mses.append(np.mean(np.abs(h_hat.numpy() - h_true) ** 2))
            assert np.all(np.isfinite(z_hat.numpy())) and np.all(np.isfinite(no_eff.numpy()))
        assert mses[0] > 3 * mses[1] > 9 * mses[2], (kwargs, mses)


# ---------------------------------------------------------- transparency at high SNR

TRANSPARENT = [
    ("ofdm-rayleigh", {}),
    ("ofdm-tdl", {"model": "C", "delay_spread": 300e-9, "max_speed": 3.0}),
    ("ofdm-cdl", {"num_rx_ant": 2}),
    ("ofdm-umi", {}),
    ("ofdm-uma", {"equalizer": "zf"}),
    ("mimo", {}),
    ("mimo", {"num_tx_ant": 2, "num_rx_ant": 4, "tx_corr": 0.5, "fading": "block"}),
    ("mimo", {"precoding": "svd", "num_tx_ant": 3, "num_rx_ant": 2}),
    ("mimo", {"precoding": "rzf", "num_tx_ant": 4, "num_rx_ant": 2}),
    ("mimo-ofdm-cdl", {}),
    ("mimo-ofdm-cdl", {"precoding": "svd"}),
    ("mimo-ofdm-cdl", {"precoding": "rzf", "num_tx_ant": 4}),
]


@pytest.mark.parametrize("name, kwargs", TRANSPARENT)
def test_high_snr_perfect_csi_returns_input_in_order(name, kwargs):
    """At 100 dB (no = 1e-10) the output equals the input symbol by symbol.

    k = 1000 does not fill a whole number of slots (768 data REs per stream
    and slot with the default grid), so the padding path is exercised.
    """
    channel = get_channel(name, **kwargs)
    z = unit_power_symbols(3, 1000)
    z_hat, no_eff = channel(z, 100.0)
    assert z_hat.shape == (3, 1000) and z_hat.dtype == tf.complex64
    assert no_eff.shape == (3, 1000) and no_eff.dtype == tf.float32
    err = np.abs(z_hat.numpy() - z.numpy())
    assert np.median(err) < 1e-4 and np.max(err) < 1e-2, (np.median(err), np.max(err))
    assert np.all(np.isfinite(no_eff.numpy())) and np.mean(no_eff.numpy()) < 1e-6


def test_ofdm_slots_and_padding():
    channel = get_channel("ofdm-cdl")
    assert channel.num_data_symbols == 64 * 12 and channel.symbols_per_slot() == 768
    assert [channel.num_slots(k) for k in (1, 768, 769, 1536)] == [1, 1, 2, 2]
    mimo_ofdm = get_channel("mimo-ofdm-cdl")
    assert mimo_ofdm.num_streams == 2 and mimo_ofdm.symbols_per_slot() == 1536
    z = unit_power_symbols(2, 769)
    _, _, h_freq, h_hat = channel(z, 30.0, return_channel=True)
    assert h_freq.shape == (4, 1, 1, 1, 1, 14, 76)   # batch 2 x 2 slots
    assert h_hat.shape == (4, 1, 1, 1, 1, 14, 64)


# ----------------------------------------------------------- power normalization

def test_ofdm_channel_power_normalization():
    z = unit_power_symbols(200, 30)
    # Rayleigh block fading (not normalized): E|h|^2 = 1 over slots, constant within a slot.
    _, _, h, _ = OFDMLinkChannel("rayleigh", num_rx_ant=2, **SMALL_GRID)(
        z, 10.0, return_channel=True)
    h = h.numpy()
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=5 * np.sqrt(1 / 400))
    np.testing.assert_allclose(h, np.broadcast_to(h[..., :1, :1], h.shape))
    # normalize_channel=True would leave a unit-modulus phase only (why it is off for rayleigh).
    _, _, h, _ = OFDMLinkChannel("rayleigh", normalize_channel=True, **SMALL_GRID)(
        z, 10.0, return_channel=True)
    np.testing.assert_allclose(np.abs(h.numpy()), 1.0, rtol=1e-5)
    # TDL without normalization: E|h|^2 = 1 only in expectation (2000 slots, 5 sigma).
    channel = OFDMLinkChannel("tdl", normalize_channel=False, **SMALL_GRID)
    _, _, h, _ = channel(unit_power_symbols(2000, 30), 10.0, return_channel=True)
    energy = np.mean(np.abs(h.numpy()) ** 2, axis=(1, 2, 3, 4, 5, 6))
    assert np.mean(energy) == pytest.approx(1.0, abs=5 * np.std(energy) / np.sqrt(2000))
    assert np.std(energy) > 0.3   # slots fade as a whole
    # 3GPP models (normalized): unit average energy per RE and antenna pair in every slot.
    for kwargs in ({"channel_model": "tdl", "model": "B", "num_rx_ant": 2},
                   {"channel_model": "cdl", "model": "D", "num_tx_ant": 2, "num_rx_ant": 2},
                   {"channel_model": "umi"}, {"channel_model": "uma", "num_rx_ant": 2}):
        channel = OFDMLinkChannel(**SMALL_GRID, **kwargs)
        assert channel.normalize_channel
        _, _, h, _ = channel(z[:20], 10.0, return_channel=True)
        energy = np.mean(np.abs(h.numpy()) ** 2, axis=(1, 2, 3, 4, 5, 6))
        np.testing.assert_allclose(energy, 1.0, rtol=1e-4, err_msg=str(kwargs))


def test_mimo_channel_power_and_correlation():
    """E|h_ij|^2 = 1 per antenna pair; Kronecker exponential correlation E[h_1j h_2j^*] = a."""
    z = unit_power_symbols(10, 40_000)
    for tx_corr, rx_corr in ((0.0, 0.0), (0.5, 0.8)):
        channel = MIMOLinkChannel(num_tx_ant=2, num_rx_ant=3, precoding="svd",
                                  tx_corr=tx_corr, rx_corr=rx_corr)
        _, _, h, f = channel(z, 10.0, return_channel=True)
        h = h.numpy().reshape(-1, 3, 2)
        np.testing.assert_allclose(np.mean(np.abs(h) ** 2, axis=0), 1.0, atol=0.02)
        rx = np.mean(h[:, 0, :] * np.conj(h[:, 1, :]))
        rx2 = np.mean(h[:, 0, :] * np.conj(h[:, 2, :]))
        tx = np.mean(h[:, :, 0] * np.conj(h[:, :, 1]))
        np.testing.assert_allclose([rx, rx2, tx], [rx_corr, rx_corr ** 2, tx_corr], atol=0.02)
        np.testing.assert_allclose(np.sum(np.abs(f.numpy()) ** 2, axis=(-2, -1)), 1.0,
                                   rtol=1e-5)


def test_precoding_matrix_svd_matches_numpy():
    rng = np.random.default_rng(3)
    h = (rng.standard_normal((50, 2, 4)) + 1j * rng.standard_normal((50, 2, 4))).astype(
        np.complex64)
    f = precoding_matrix(tf.constant(h), "svd", 2).numpy()
    _, _, vh = np.linalg.svd(h)
    v = np.conj(np.swapaxes(vh, -1, -2))[..., :2] / np.sqrt(2)
    # Same columns up to a phase per column.
    overlap = np.abs(np.sum(np.conj(v) * f, axis=-2))
    np.testing.assert_allclose(overlap, 0.5, rtol=1e-3)


# ----------------------------------------------------------------------- gradients

GRADIENT_CASES = [  # (channel type, kwargs, slow): UMi/UMa take ~10-20 s to trace/compile
    ("ofdm-rayleigh", {"num_rx_ant": 2}, False),
    ("ofdm-tdl", {"estimator": "ls-lin", "max_speed": 30.0}, False),
    ("ofdm-cdl", {"estimator": "ls-nn", "equalizer": "zf"}, False),
    ("ofdm-umi", {}, True),
    ("ofdm-uma", {"estimator": "ls-lin"}, True),
    ("mimo", {"tx_corr": 0.3, "rx_corr": 0.6}, False),
    ("mimo-ofdm-cdl", {"estimator": "ls-lin"}, False),
]
PRECODED_CASES = [  # precoding code paths; the OFDM one on a cheap channel model
    ("mimo", {"precoding": "svd", "num_tx_ant": 3}),
    ("mimo", {"precoding": "rzf", "num_tx_ant": 3}),
    (MIMOOFDMLinkChannel, {"channel_model": "rayleigh", "precoding": "svd"}),
    (MIMOOFDMLinkChannel, {"channel_model": "rayleigh", "precoding": "rzf", "num_tx_ant": 4,
                           "estimator": "ls-lin"}),
]


def _gradient_check(name, kwargs, mode):
    if isinstance(name, type):
        channel = name(**SMALL_GRID, **kwargs)
    elif name.startswith(("ofdm", "mimo-ofdm")):
        channel = get_channel(name, **SMALL_GRID, **kwargs)
    else:
        channel = get_channel(name, **kwargs)
    v = tf.Variable(tf.random.normal([2, 74]), trainable=True)   # k = 37: padded
    target = unit_power_symbols(2, 37)

    def step():
        with tf.GradientTape() as tape:
            z = normalize_power(tf.complex(v[:, :37], v[:, 37:]))
            z_hat, no_eff = channel(z, tf.constant([5.0, 15.0]))
            loss = tf.reduce_mean(tf.abs(z_hat - target) ** 2)
        return z_hat, no_eff, tape.gradient(loss, v)

    z_hat, no_eff, grad = run(step, mode)
    assert z_hat.shape == (2, 37) and no_eff.shape == (2, 37)
    assert np.all(np.isfinite(no_eff.numpy()))
    grad = grad.numpy()
    assert np.all(np.isfinite(grad)) and np.linalg.norm(grad) > 1e-4


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, kwargs", [
    pytest.param(name, kwargs, id=name, marks=[pytest.mark.slow] if slow else [])
    for name, kwargs, slow in GRADIENT_CASES])
def test_gradients_reach_variable(name, kwargs, mode):
    _gradient_check(name, kwargs, mode)


@pytest.mark.parametrize("mode", ["eager", "xla"])
@pytest.mark.parametrize("name, kwargs", PRECODED_CASES,
                         ids=["mimo-svd", "mimo-rzf", "mimo-ofdm-svd", "mimo-ofdm-rzf"])
def test_gradients_with_precoding(name, kwargs, mode):
    _gradient_check(name, kwargs, mode)


def test_jscc_link_with_ofdm_in_functional_model_dynamic_shapes():
    """JSCCLink + OFDM link with unknown h, w (k dynamic) inside a Keras functional model."""
    latent_in = keras.Input([None, None, 8])
    snr_in = keras.Input([])
    out = JSCCLink("ofdm-tdl", estimator="ls-lin", **SMALL_GRID)(latent_in, snr_in)
    model = keras.Model([latent_in, snr_in], [out["latent_hat"], out["no_eff"]])
    for shape in [(2, 3, 5, 8), (1, 4, 2, 8)]:
        latent = tf.random.normal(shape)
        latent_hat, no_eff = model([latent, tf.fill([shape[0]], 90.0)])
        assert latent_hat.shape == shape and no_eff.shape == (shape[0], np.prod(shape[1:]) // 2)
        power = np.mean(latent.numpy().reshape(shape[0], -1) ** 2, axis=1) * 2
        scaled = latent.numpy() / np.sqrt(power)[:, None, None, None]
        np.testing.assert_allclose(latent_hat.numpy(), scaled, atol=5e-3)


# ------------------------------------------------------------ registry and configs

def test_registry():
    assert set(NEW_TYPES) <= set(CHANNEL_TYPES) and set(CHANNEL_TYPES) == set(phy.CHANNEL_TYPES)
    for name in NEW_TYPES:
        channel = get_channel(name)
        expected = {"mimo": MIMOLinkChannel, "mimo-ofdm-cdl": MIMOOFDMLinkChannel}.get(
            name, OFDMLinkChannel)
        assert type(channel) is expected  # pylint: disable=unidiomatic-typecheck
        if name.startswith("ofdm-"):
            assert channel.channel_model == name[5:]
        clone = type(channel).from_config(channel.get_config())
        assert clone.params == channel.params
    link = JSCCLink("ofdm-cdl", model="C", name="link")
    clone = JSCCLink.from_config(link.get_config())
    assert clone.channel_type == "ofdm-cdl" and clone.channel.params["model"] == "C"
    assert phy.__all__ and all(hasattr(phy, n) for n in phy.__all__)


def test_config_file_round_trip(tmp_path):
    kwargs = {"model": "c", "delay_spread": 300e-9, "max_speed": 30.0, "estimator": "ls-lin",
              "num_guard_carriers": [5, 6], "pilot_ofdm_symbol_indices": [2, 11]}
    path = tmp_path / "channel.json"
    save_channel_config(path, "OFDM-TDL", **kwargs)
    data = json.loads(path.read_text())
    assert data["channel_type"] == "ofdm-tdl"
    channel_type, loaded = load_channel_config(path)
    assert channel_type == "ofdm-tdl" and loaded == kwargs
    link = JSCCLink(channel_type, **loaded)
    assert link.channel.params["model"] == "C" and link.channel.params["max_speed"] == 30.0
    # Nested "params" form.
    path2 = tmp_path / "mimo.json"
    path2.write_text(json.dumps({"channel_type": "mimo",
                                 "params": {"num_tx_ant": 4, "precoding": "rzf"}}))
    assert load_channel_config(path2) == ("mimo", {"num_tx_ant": 4, "precoding": "rzf"})
    # Bad files.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"channel_type": "ofdm-cdl", "modle": "C"}))
    with pytest.raises(ValueError, match="'modle'"):
        load_channel_config(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="Malformed JSON"):
        load_channel_config(bad)
    bad.write_text(json.dumps({"model": "C"}))
    with pytest.raises(ValueError, match="channel_type"):
        load_channel_config(bad)


def test_yaml_config(tmp_path):
    path = tmp_path / "channel.yaml"
    if importlib.util.find_spec("yaml") is None:
        path.write_text("channel_type: mimo\n")
        with pytest.raises(ValueError, match="PyYAML"):
            load_channel_config(path)
        return
    save_channel_config(path, "mimo", num_tx_ant=4, precoding="svd", num_streams=2)
    assert load_channel_config(path) == (
        "mimo", {"num_tx_ant": 4, "precoding": "svd", "num_streams": 2})


BAD_CONFIGS = [
    ("ofdm-tdl", {"speed": 3.0}, "'speed'"),
    ("ofdm-tdl", {"min_speed": -1.0}, "min_speed"),
    ("ofdm-cdl", {"min_speed": 10.0, "max_speed": 5.0}, "max_speed"),
    ("ofdm-tdl", {"model": "F"}, "TDL model 'F'"),
    ("ofdm-cdl", {"model": "A30"}, "CDL model 'A30'"),
    ("ofdm-rayleigh", {"fft_size": 10}, "fft_size"),
    ("ofdm-rayleigh", {"fft_size": 12, "num_guard_carriers": (6, 6)}, "fft_size"),
    ("ofdm-rayleigh", {"num_guard_carriers": (5,)}, "num_guard_carriers"),
    ("ofdm-rayleigh", {"cyclic_prefix_length": 100}, "cyclic_prefix_length"),
    ("ofdm-rayleigh", {"pilot_ofdm_symbol_indices": (2, 14)}, "pilot_ofdm_symbol_indices"),
    ("ofdm-rayleigh", {"pilot_ofdm_symbol_indices": (), "estimator": "ls-lin"}, "pilots"),
    ("ofdm-rayleigh", {"estimator": "lmmse"}, "estimator 'lmmse'"),
    ("ofdm-rayleigh", {"equalizer": "ml"}, "equalizer 'ml'"),
    ("ofdm-cdl", {"channel_model": "tdl"}, "channel_model"),
    ("ofdm-umi", {"carrier_frequency": 1e8}, "carrier_frequency"),
    ("ofdm-cdl", {"delay_spread": 0.0}, "delay_spread"),
    ("ofdm-rayleigh", {"num_tx_ant": 2}, "num_streams"),
    ("ofdm-rayleigh", {"normalize_channel": "yes"}, "normalize_channel"),
    ("mimo", {"num_streams": 3}, "num_streams"),
    ("mimo", {"num_tx_ant": 4, "num_rx_ant": 2, "precoding": "svd", "num_streams": 3},
     "num_streams"),
    ("mimo", {"num_tx_ant": 2, "num_rx_ant": 3, "precoding": "rzf"}, "rzf"),
    ("mimo", {"tx_corr": 1.0}, "tx_corr"),
    ("mimo", {"precoding": "mrt"}, "precoding 'mrt'"),
    ("mimo", {"fading": "slow"}, "fading 'slow'"),
    ("mimo", {"num_rx_ant": 0}, "num_rx_ant"),
    ("mimo", {"rzf_alpha": -1.0}, "rzf_alpha"),
    ("mimo-ofdm-cdl", {"num_tx_ant": 3, "num_rx_ant": 3}, "multiple of num_streams"),
    ("mimo-ofdm-cdl", {"precoding": "svd", "estimator": "ls-lin"}, "estimator='perfect'"),
    ("mimo-ofdm-cdl", {"num_streams": 4}, "num_streams"),
    ("ofdm-tdl", {"precoding": "svd"}, "'precoding'"),
    ("bogus", {}, "Unknown channel type 'bogus'"),
]


@pytest.mark.parametrize("name, kwargs, match", BAD_CONFIGS)
def test_bad_configurations_raise_value_error(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        validate_channel_config(name, kwargs)
    with pytest.raises(ValueError, match=match):
        get_channel(name, **kwargs)


def test_bad_snr_shape_raises():
    with pytest.raises(ValueError, match="snr_db"):
        get_channel("mimo")(unit_power_symbols(2, 8), tf.zeros([2, 8]))
