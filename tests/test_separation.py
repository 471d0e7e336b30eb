# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Tests of the separation baselines: image codecs, 5G LDPC + QAM link, budgets, bounds."""
import math

import numpy as np
import pytest
import tensorflow as tf
from sionna.phy.mapping import Demapper, Mapper
from sionna.phy.nr.utils import decode_mcs_index

from fqliscs_tf.utils import set_seed
from phy.bounds import (awgn_capacity, capacity_bits, capacity_bpp, codec_at_capacity,
                        rayleigh_ergodic_capacity, snr_db_for_capacity)
from phy.channels import get_channel
from phy.image_codecs import (CODEC_NAMES, BudgetTooSmallError, available_codecs, get_codec,
                              rate_control)
from phy.separation import (MCS_TABLES, LDPCQAMLink, _peek_block_gain, default_block_size,
                            fallback_image, get_link, get_mcs, load_mcs_thresholds,
                            max_payload_bits, measure_bler, measure_mcs_thresholds,
                            mcs_threshold_db, select_mcs,
                            transmit_image, transmit_image_adaptive)

SEED = 42


@pytest.fixture(autouse=True)
def seed():
    """Seeds Python, NumPy, TF and Sionna (eagerly) before every test."""
    set_seed(SEED)


def smooth_image(size=64, phase=0.0):
    """A smooth synthetic RGB image [size, size, 3], uint8."""
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([128 + 100 * np.sin(2 * np.pi * x + phase),
                    128 + 100 * np.cos(3 * np.pi * y),
                    128 + 80 * np.sin(2 * np.pi * (x + y))], axis=-1)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def psnr(x, x_hat):
    mse = np.mean((x.astype(np.float64) - x_hat.astype(np.float64)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def random_blocks(link, num_blocks):
    return tf.cast(tf.random.uniform([num_blocks, link.num_payload_bits], 0, 2, tf.int32),
                   tf.float32)


def num_block_errors(b, b_hat):
    return int(tf.reduce_sum(tf.cast(tf.reduce_any(b != b_hat, axis=1), tf.int32)))


# ---------------------------------------------------------------------------
# LDPC + QAM link
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
def test_link_error_free_at_high_snr(channel):
    link = LDPCQAMLink(4, 0.5, channel=channel, n=2048)  # 16-QAM, r = 0.5
    assert (link.k, link.n, link.num_symbols) == (1024, 2048, 512)
    b = random_blocks(link, 20)
    b_hat, crc_ok = link(b, 20.0)
    assert b_hat.shape == b.shape
    assert num_block_errors(b, b_hat) == 0
    assert bool(tf.reduce_all(crc_ok))


@pytest.mark.parametrize("channel", ["awgn", "rayleigh", "rayleigh-block"])
def test_link_fails_at_low_snr(channel):
    link = LDPCQAMLink(4, 0.5, channel=channel, n=2048)
    b = random_blocks(link, 20)
    b_hat, crc_ok = link(b, -5.0)
    assert num_block_errors(b, b_hat) == 20
    assert not bool(tf.reduce_any(crc_ok))  # the CRC detects every failed block


@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
def test_default_block_5g_mcs(channel):
    """Default 6144-bit blocks at MCS 13 (16-QAM, R = 490/1024) decode at 15 dB."""
    link = get_link(13, channel)
    assert (link.k, link.num_payload_bits) == (6144, 6120)
    assert link.n % 4 == 0 and abs(link.coderate - 490 / 1024) < 1e-3
    bits = np.random.default_rng(0).integers(0, 2, 2 * link.num_payload_bits + 100)
    bits_hat, crc_ok, block_errors = link.transmit(bits, 15.0)
    assert len(crc_ok) == 3 and np.all(crc_ok) and not np.any(block_errors)
    np.testing.assert_array_equal(bits_hat, bits)


def test_low_rate_mcs_uses_repetition():
    """MCS 0 (R = 120/1024 < 1/5) repeats the rate-1/5 mother code and still decodes."""
    link = get_link(0, "awgn")
    assert link.num_repetitions > 1.5 and link.k == 3824
    bits = np.random.default_rng(1).integers(0, 2, 1000)
    bits_hat, crc_ok, _ = link.transmit(bits, 0.0)  # ~6 dB above its threshold
    assert np.all(crc_ok)
    np.testing.assert_array_equal(bits_hat, bits)


def test_transmit_any_length():
    link = LDPCQAMLink(2, 0.5, channel="awgn", n=512)
    for length in (1, link.num_payload_bits, link.num_payload_bits + 1, 3000):
        bits = np.random.default_rng(length).integers(0, 2, length)
        bits_hat, crc_ok, block_errors = link.transmit(bits, 15.0)
        assert bits_hat.shape == (length,) and bits_hat.dtype == np.uint8
        assert len(crc_ok) == math.ceil(length / link.num_payload_bits) == len(block_errors)
        np.testing.assert_array_equal(bits_hat, bits)
    with pytest.raises(ValueError, match="only 0 and 1"):
        link.transmit(np.array([0, 2, 1]), 10.0)


def test_rayleigh_llrs_are_consistent():
    """After unbiasing the MMSE output, LLRs satisfy E[exp(-L) | b=1] = 1 (exact APP LLRs)."""
    link = LDPCQAMLink(4, 0.5, channel="rayleigh", n=2048)
    b = tf.cast(tf.random.uniform([50, 4000], 0, 2, tf.int32), tf.float32)
    x = Mapper("qam", 4)(b)
    z_hat, no_eff = link.channel(x, 0.0)
    demapper = Demapper("app", "qam", 4)
    llr = demapper(*link._equalized(z_hat, no_eff)).numpy()  # pylint: disable=protected-access
    ones = b.numpy() == 1
    np.testing.assert_allclose(np.mean(np.exp(-llr[ones])), 1.0, atol=0.05)
    np.testing.assert_allclose(np.mean(np.exp(llr[~ones])), 1.0, atol=0.05)
    biased = demapper(z_hat, no_eff).numpy()  # demapping the biased MMSE output is wrong
    assert np.mean(np.exp(-biased[ones])) > 1.2


def test_link_argument_errors():
    with pytest.raises(ValueError, match="multiple of num_bits_per_symbol"):
        LDPCQAMLink(6, 0.5, n=1000)
    with pytest.raises(ValueError, match="Unknown channel 'ofdm'"):
        LDPCQAMLink(4, 0.5, channel="ofdm")
    with pytest.raises(ValueError, match="num_bits_per_symbol"):
        LDPCQAMLink(3, 0.5)
    with pytest.raises(ValueError, match="coderate"):
        LDPCQAMLink(4, 0.97)


def test_measure_bler_stops_early():
    link = LDPCQAMLink(4, 0.5, channel="awgn", n=1024)
    assert measure_bler(link, 20.0, num_blocks=40, batch_size=20) == (0, 40)
    errors, blocks = measure_bler(link, -5.0, num_blocks=200, batch_size=20, max_block_errors=5)
    assert errors >= 5 and blocks == 20


# ---------------------------------------------------------------------------
# MCS tables and budget accounting
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("table", [1, 2])
def test_mcs_tables_match_38214(table):
    for index in range(len(MCS_TABLES[table])):
        mcs = get_mcs(index, table)
        qm, rate = decode_mcs_index(index, table_index=table, is_pusch=False)
        assert mcs.num_bits_per_symbol == int(qm)
        assert abs(mcs.coderate - float(rate)) < 1e-6


def test_unknown_mcs():
    with pytest.raises(ValueError, match="Unknown MCS index 29"):
        get_mcs(29)
    with pytest.raises(ValueError, match="Unknown MCS index 28 for table 2"):
        get_mcs(28, table=2)
    for bad in (-1, 1.0, "3", True):
        with pytest.raises(ValueError, match="Unknown MCS index"):
            get_mcs(bad)
    with pytest.raises(ValueError, match="Unknown MCS table 3"):
        get_mcs(0, table=3)
    with pytest.raises(ValueError, match="Unknown MCS index"):
        max_payload_bits(10000, 40)


@pytest.mark.parametrize("table", [1, 2])
def test_budget_accounting_is_exact(table):
    for mcs in (get_mcs(i, table) for i in range(len(MCS_TABLES[table]))):
        k_ldpc, n = default_block_size(mcs.num_bits_per_symbol, mcs.coderate)
        assert n % mcs.num_bits_per_symbol == 0
        assert abs(k_ldpc / n - mcs.coderate) < 2e-3
        assert k_ldpc <= (8448 if mcs.coderate >= 1 / 3 else 3840)
        symbols_per_block = n // mcs.num_bits_per_symbol
        for k in (0, symbols_per_block - 1, symbols_per_block, 12288, 73728, 100003):
            bits = max_payload_bits(k, mcs, table)
            blocks = bits // (k_ldpc - 24)
            assert bits == blocks * (k_ldpc - 24)
            assert blocks * n <= k * mcs.num_bits_per_symbol            # never more than k carry
            assert (blocks + 1) * n > k * mcs.num_bits_per_symbol       # and every whole block
            assert blocks * symbols_per_block <= k


def test_transmit_image_respects_budget():
    image = smooth_image()
    mcs = get_mcs(13)
    link = get_link(mcs)
    k = 2 * link.num_symbols + 500  # room for 2 whole codewords
    out = transmit_image(image, "jpeg2000", k, 20.0, mcs, "awgn")
    assert out["status"] == "ok" and out["success"]
    assert out["max_payload_bits"] == 2 * link.num_payload_bits
    assert out["payload_bits"] == 8 * out["num_bytes"] <= out["max_payload_bits"]
    assert out["coded_bits"] == out["num_blocks"] * link.n <= k * mcs.num_bits_per_symbol
    assert out["channel_uses"] <= k
    assert out["psnr"] == out["codec_psnr"] > 30


# ---------------------------------------------------------------------------
# Image codecs
# ---------------------------------------------------------------------------

def test_codecs_available():
    names = available_codecs()
    assert set(names) <= set(CODEC_NAMES)
    assert {"jpeg", "jpeg2000", "webp", "heif"} <= set(names)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_rate_control_fits_and_improves(name):
    if name not in available_codecs():
        pytest.skip(f"{name} not available in this installation")
    codec = get_codec(name)
    image = smooth_image()
    previous = None
    for max_bytes in (1200, 2500, 6000):
        data, quality, decoded = rate_control(image, codec, max_bytes)
        assert len(data) <= max_bytes
        assert decoded.dtype == np.uint8 and decoded.shape == image.shape
        np.testing.assert_array_equal(decoded, codec.decode(data))
        current = (codec.qualities.index(quality), psnr(image, decoded))
        if previous is not None:
            assert current[0] >= previous[0] and current[1] >= previous[1] - 0.05
        previous = current
    assert previous[1] > 30  # 6000 bytes = 11.7 bpp for 64x64: near transparent


def test_codec_quality_direction():
    jxl = get_codec("jpegxl")
    assert not jxl.higher_is_better and jxl.qualities[0] > jxl.qualities[-1]
    assert get_codec("jpeg").higher_is_better
    with pytest.raises(ValueError, match="outside"):
        get_codec("jpeg").encode(smooth_image(), 0)


def test_unknown_codec():
    with pytest.raises(ValueError, match="Unknown image codec 'bpg'.*available codecs: jpeg"):
        get_codec("bpg")
    with pytest.raises(ValueError, match="Unknown image codec"):
        transmit_image(smooth_image(), "png", 10000, 10.0, 13)


def test_budget_too_small():
    image = smooth_image()
    for name in available_codecs():
        with pytest.raises(BudgetTooSmallError, match="needs at least"):
            rate_control(image, name, 50)
    assert issubclass(BudgetTooSmallError, ValueError)
    with pytest.raises(BudgetTooSmallError, match="no whole codeword"):
        transmit_image(image, "jpeg", 100, 10.0, 13)  # 100 channel uses < one codeword
    with pytest.raises(ValueError, match="uint8"):
        rate_control(image.astype(np.float32), "jpeg", 1000)


# ---------------------------------------------------------------------------
# Bounds
# ---------------------------------------------------------------------------

def test_awgn_bound_known_values():
    assert round(float(capacity_bpp(1 / 16, 10.0)), 3) == 0.649
    np.testing.assert_allclose(capacity_bpp(1 / 16, 10.0), 0.1875 * np.log2(11), rtol=1e-12)
    np.testing.assert_allclose(capacity_bpp(1 / 16, [1, 4, 7, 10, 13]),
                               [0.220, 0.340, 0.485, 0.649, 0.823], atol=6e-4)
    np.testing.assert_allclose(capacity_bpp(1 / 48, [1, 4, 7, 10, 13]),
                               [0.0735, 0.113, 0.162, 0.216, 0.274], atol=6e-4)
    k = 768 * 512 * 3 // 16  # Kodak, CBR 1/16
    np.testing.assert_allclose(capacity_bits(k, 10.0) / (768 * 512), 0.1875 * np.log2(11))
    np.testing.assert_allclose(awgn_capacity(snr_db_for_capacity(2.5)), 2.5)


def test_rayleigh_ergodic_capacity_matches_monte_carlo():
    rng = np.random.default_rng(0)
    gain = rng.exponential(size=2_000_000)  # |h|^2, h ~ CN(0, 1)
    for snr_db in (-20.0, -5.0, 1.0, 10.0, 25.0):
        mc = np.mean(np.log2(1 + gain * 10 ** (snr_db / 10)))
        np.testing.assert_allclose(rayleigh_ergodic_capacity(snr_db), mc, rtol=3e-3)
    # anchors.md Sec. 7.4: CBR 1/16 bpp 0.188 / 0.284 / 0.404 / 0.545 / 0.701
    np.testing.assert_allclose(capacity_bpp(1 / 16, [1, 4, 7, 10, 13], "rayleigh"),
                               [0.188, 0.284, 0.404, 0.545, 0.701], atol=6e-4)
    # the large-1/SNR asymptotic branch joins the exact one continuously (1/snr = 50)
    edge = -10 * np.log10(50.0)
    np.testing.assert_allclose(rayleigh_ergodic_capacity(edge - 1e-9),
                               rayleigh_ergodic_capacity(edge + 1e-9), rtol=1e-9)
    assert np.all(rayleigh_ergodic_capacity([1, 10]) < awgn_capacity([1, 10]))  # Jensen
    np.testing.assert_allclose(rayleigh_ergodic_capacity(snr_db_for_capacity(2.0, "rayleigh")),
                               2.0, rtol=1e-9)
    with pytest.raises(ValueError, match="No capacity bound for channel 'rayleigh-block'"):
        capacity_bits(100, 10.0, "rayleigh-block")


def test_codec_at_capacity():
    image = smooth_image()
    bits = capacity_bits(3 * 64 * 64 // 2, 10.0)  # CBR 1/2
    data, _, decoded = codec_at_capacity(image, "jpeg2000", bits)
    assert 8 * len(data) <= bits
    assert psnr(image, decoded) > 30


# ---------------------------------------------------------------------------
# Image transmission: fallback, seeding, adaptive MCS
# ---------------------------------------------------------------------------

def test_failed_decode_returns_fallback():
    image = smooth_image()
    link = get_link(13)
    out = transmit_image(image, "jpeg", link.num_symbols, -5.0, 13, "awgn")
    assert out["status"] == "block_error" and not out["success"]
    assert out["crc_failures"] == out["num_blocks"] == 1
    np.testing.assert_array_equal(out["image"], fallback_image(image.shape))
    assert np.all(out["image"] == 128) and out["image"].dtype == np.uint8
    assert out["psnr"] == pytest.approx(psnr(image, np.full_like(image, 128)))


def test_fixed_seed_is_reproducible():
    image = smooth_image()
    link = LDPCQAMLink(4, 0.5, channel="rayleigh", n=1024)
    bits = np.random.default_rng(3).integers(0, 2, 5000)
    runs = []
    for _ in range(2):
        set_seed(7)
        runs.append(link.transmit(bits, 8.0))  # in the waterfall: some blocks fail
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert 0 < np.sum(runs[0][2]) < len(runs[0][2])
    outs = [transmit_image(image, "webp", get_link(13).num_symbols, 8.0, 13, "rayleigh", seed=5)
            for _ in range(2)]
    np.testing.assert_array_equal(outs[0]["image"], outs[1]["image"])
    assert outs[0]["crc_failures"] == outs[1]["crc_failures"]


def test_block_gain_peek_matches_channel():
    """The ideal-CSIT peek sees the |h|^2 that the next block-fading call applies."""
    channel = get_channel("rayleigh-block")
    for run in (lambda f: f(), lambda f: tf.function(f)()):
        gain = _peek_block_gain(channel, 10.0)
        z = tf.ones([1, 300], tf.complex64)
        _, _, h = run(lambda: channel(z, 10.0, return_channel=True))
        np.testing.assert_allclose(np.abs(h.numpy()) ** 2, gain, rtol=1e-6)


def _fake_thresholds(thresholds_db):
    """A threshold table: {MCS index of table 1: threshold} (others never error-free)."""
    entries = {}
    for index in range(len(MCS_TABLES[1])):
        mcs = get_mcs(index)
        entries[mcs.key] = {"threshold_db": thresholds_db.get(index)}
    return {"meta": {}, "thresholds": {"awgn": entries, "rayleigh": entries}}


def test_select_mcs_maximizes_payload():
    table = _fake_thresholds({i: i - 5.0 for i in range(29)})  # MCS i error-free from i-5 dB
    k = 73728
    for snr_db in (-3.0, 4.0, 12.5, 30.0):
        mcs = select_mcs(k, snr_db, thresholds=table)
        feasible = [i for i in range(29) if i - 5.0 <= snr_db]
        assert max_payload_bits(k, mcs) == max(max_payload_bits(k, i) for i in feasible)
    assert select_mcs(k, -10.0, thresholds=table) is None
    # a tiny k fits no codeword of the long low-rate blocks: no MCS
    assert select_mcs(100, 30.0, thresholds=table) is None


def test_adaptive_below_every_threshold_returns_fallback():
    image = smooth_image()
    out = transmit_image_adaptive(image, "jpeg", 20000, -20.0, "awgn")
    assert out["status"] == "no_error_free_mcs" and not out["success"]
    assert out["mcs"] is None and out["num_blocks"] == 0
    np.testing.assert_array_equal(out["image"], fallback_image(image.shape))


def test_adaptive_budget_too_small_returns_fallback():
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    table = _fake_thresholds({0: 0.0})  # only MCS 0: 3800 payload bits = 475 bytes per block
    k = get_link(0).num_symbols
    out = transmit_image_adaptive(noise, "heif", k, 5.0, "awgn", thresholds=table)
    assert out["status"] == "budget_too_small" and out["mcs"] == get_mcs(0)
    np.testing.assert_array_equal(out["image"], fallback_image(noise.shape))


def test_adaptive_mcs_at_high_snr():
    image = smooth_image()
    k = 3 * 64 * 64  # CBR 1: 12288 channel uses
    out = transmit_image_adaptive(image, "jpeg2000", k, 25.0, "awgn", seed=1)
    assert out["success"] and out["mcs"] is not None
    assert mcs_threshold_db(out["mcs"], "awgn") <= 25.0
    assert out["payload_bits"] <= max_payload_bits(k, out["mcs"])
    block = transmit_image_adaptive(image, "jpeg2000", k, 25.0, "rayleigh-block", seed=1)
    assert block["snr_select_db"] != 25.0  # ideal CSIT: instantaneous SNR
    assert block["status"] in ("ok", "no_error_free_mcs")


def test_stored_thresholds_are_sane():
    table = load_mcs_thresholds()
    for channel in ("awgn", "rayleigh"):
        previous = {}
        for mcs in sorted({get_mcs(i, t) for t in (1, 2) for i in range(len(MCS_TABLES[t]))},
                          key=lambda m: (m.num_bits_per_symbol, m.r_1024)):
            entry = table["thresholds"][channel][mcs.key]
            th = entry["threshold_db"]
            assert th is not None and th > entry["shannon_limit_db"]
            # for one modulation order the threshold grows with the code rate
            assert th >= previous.get(mcs.num_bits_per_symbol, -np.inf)
            previous[mcs.num_bits_per_symbol] = th
    for index in range(len(MCS_TABLES[1])):
        assert mcs_threshold_db(index, "rayleigh") >= mcs_threshold_db(index, "awgn")


def test_stored_threshold_is_error_free():
    """A cheap spot check of the stored table: 64-QAM MCS 20 at threshold + 0.5 dB."""
    link = get_link(20)
    th = mcs_threshold_db(20, "awgn")
    errors, blocks = measure_bler(link, th + 0.5, num_blocks=20, batch_size=20)
    assert (errors, blocks) == (0, 20)


def test_measure_mcs_thresholds_small(tmp_path):
    """The table builder on one cheap MCS (64-QAM, R = 948/1024) with few blocks."""
    path = tmp_path / "thresholds.json"
    out = measure_mcs_thresholds(str(path), channels=("awgn",), pairs=[(6, 948)], num_blocks=10,
                                 batch_size=10, max_block_errors=1, verbose=False)
    entry = out["thresholds"]["awgn"]["6/948"]
    th = entry["threshold_db"]
    assert entry["shannon_limit_db"] < th < entry["shannon_limit_db"] + 6
    points = {s: (e, b) for s, e, b in entry["points"]}
    assert points[th] == (0, 10)                       # zero errors at the threshold ...
    assert all(e > 0 for s, (e, _) in points.items() if s < th)  # ... and errors below it
    assert load_mcs_thresholds(str(path)) == out
    assert mcs_threshold_db(28, "awgn", thresholds=str(path)) == th
    with pytest.raises(ValueError, match="no entry for MCS 2/120"):
        mcs_threshold_db(0, "awgn", thresholds=out)
    with pytest.raises(ValueError, match="'rayleigh-block' has no threshold table"):
        measure_mcs_thresholds(channels=("rayleigh-block",))
