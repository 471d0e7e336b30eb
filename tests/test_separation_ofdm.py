# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""The separation baseline (codec + 5G LDPC + QAM) over the OFDM and MIMO links.

Tiny images (64x64, k = 6144 channel uses = 8 OFDM slots), JPEG only, few links: every
new (MCS, channel) link costs a trace of a few seconds, the OFDM channel graph one per
channel type.
"""
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fqliscs_tf.utils import set_seed
from phy.image_codecs import rate_control
from phy.ofdm import equalized_to_estimate
from phy.separation import (GENIE_CHANNELS, LDPCQAMLink, _channel_runner, _unbiased,
                            fallback_image, get_link, get_mcs, max_payload_bits, select_mcs,
                            transmit_image, transmit_image_adaptive, transmit_image_genie)

SIZE = 64
K = 3 * SIZE * SIZE // 2  # CBR 1/2: 6144 channel uses = 8 slots of 768 data REs


@pytest.fixture(autouse=True)
def seed():
    set_seed(42)


@pytest.fixture(scope="module")
def image():
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    img = np.stack([128 + 100 * np.sin(2 * np.pi * x), 128 + 100 * np.cos(3 * np.pi * y),
                    128 + 80 * np.sin(2 * np.pi * (x + y))], axis=-1)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _check_budget(out, k):
    """Bits sent never exceed what k channel uses carry at the chosen MCS."""
    mcs = out["mcs"]
    assert out["payload_bits"] <= max_payload_bits(k, mcs)
    assert out["channel_uses"] == out["num_blocks"] * get_link(mcs).num_symbols <= k
    assert out["coded_bits"] <= k * mcs.num_bits_per_symbol


@pytest.mark.parametrize("channel", ["ofdm-tdl", "ofdm-cdl"])
def test_low_mcs_error_free_at_high_snr(image, channel):
    """Perfect CSI, 30 dB, QPSK MCS 9: no block error, the image is the codec's own decode."""
    out = transmit_image(image, "jpeg", K, 30.0, 9, channel, seed=1)
    assert out["status"] == "ok" and out["crc_failures"] == 0 and out["block_errors"] == 0
    coded = rate_control(image, "jpeg", max_payload_bits(K, 9) // 8)
    np.testing.assert_array_equal(out["image"], coded.image)
    assert out["num_bytes"] == len(coded.data)
    _check_budget(out, K)


def test_high_mcs_fails_at_low_snr(image):
    out = transmit_image(image, "jpeg", K, -5.0, 20, "ofdm-cdl", seed=1)
    assert out["status"] == "block_error" and not out["success"]
    assert out["crc_failures"] > 0
    np.testing.assert_array_equal(out["image"], fallback_image(image.shape))
    _check_budget(out, K)


def test_every_mcs_sees_the_same_realization():
    """The draws of a padded stream do not depend on the symbols (hence not on the MCS)."""
    _, run = _channel_runner("ofdm-cdl", ())
    rng = np.random.default_rng(0)
    outs = []
    for used in (1000, 5000):  # e.g. one and five codewords, then empty REs up to K
        z = np.zeros([1, K], np.complex64)
        z[0, :used] = np.exp(2j * np.pi * rng.random(used))
        set_seed(3)
        outs.append(run(tf.constant(z), tf.constant(10.0))[1].numpy())
    np.testing.assert_array_equal(outs[0], outs[1])


def test_genie_envelope_and_fallback(image):
    out = transmit_image_genie(image, "jpeg", K, 30.0, "ofdm-cdl", seed=7)
    assert out["status"] == "ok" and out["genie_tries"] == [(out["mcs"].index, "ok")]
    # the largest payload of all MCSs, from its most robust MCS
    top = max(max_payload_bits(K, i) for i in range(29))
    assert out["max_payload_bits"] == top
    assert all(max_payload_bits(K, i) < top or get_mcs(i).spectral_efficiency
               >= out["mcs"].spectral_efficiency for i in range(29))
    _check_budget(out, K)
    # the genie's result is the fixed-MCS transmission on the same realization
    fixed = transmit_image(image, "jpeg", K, 30.0, out["mcs"], "ofdm-cdl", seed=7)
    np.testing.assert_array_equal(fixed["image"], out["image"])
    # far below every MCS: nothing is sent, the fallback image is shown
    low = transmit_image_adaptive(image, "jpeg", K, -5.0, "ofdm-cdl", seed=7)
    assert low["status"] == "no_error_free_mcs" and low["mcs"] is None
    np.testing.assert_array_equal(low["image"], fallback_image(image.shape))


def test_mimo_link_decodes(image):
    out = transmit_image(image, "jpeg", K, 30.0, 9, "mimo", seed=1)
    assert out["status"] == "ok"
    _check_budget(out, K)


def test_llrs_use_the_unbiased_estimate():
    """The LMMSE (biased) output of the OFDM/MIMO layers is mapped back to x + e, Var(e)."""
    x_u = tf.constant([[1 + 1j, -0.5 + 2j, 3 - 1j]], tf.complex64)
    sigma2 = tf.constant([[0.01, 1.0, 50.0]], tf.float32)
    z_hat, no_eff = equalized_to_estimate(x_u, sigma2, mmse=True)
    y, no = _unbiased(z_hat, no_eff, True)
    np.testing.assert_allclose(y.numpy(), x_u.numpy(), rtol=1e-4)
    np.testing.assert_allclose(no.numpy(), sigma2.numpy(), rtol=1e-4)
    for params, biased in (({}, True), ({"unbiased": True}, False), ({"equalizer": "zf"}, False)):
        layer, _ = _channel_runner("ofdm-tdl", tuple(params.items()))
        link = LDPCQAMLink(2, 0.5, "ofdm-tdl", channel_params=params)
        assert link._mmse_estimate is biased  # pylint: disable=protected-access
        assert link.channel is layer


def test_argument_errors(image):
    assert "ofdm-cdl" in GENIE_CHANNELS and "mimo" in GENIE_CHANNELS
    with pytest.raises(ValueError, match="delay_spread"):
        get_link(9, "ofdm-tdl", channel_params={"delay_spread": -1.0})
    with pytest.raises(ValueError, match="takes no parameters"):
        get_link(9, "awgn", channel_params={"model": "C"})
    with pytest.raises(ValueError, match="no MCS threshold table"):
        select_mcs(K, 10.0, "ofdm-cdl")
    with pytest.raises(ValueError, match="margin_db"):
        transmit_image_adaptive(image, "jpeg", K, 10.0, "ofdm-cdl", margin_db=1.0)
    with pytest.raises(ValueError, match="window_db"):
        transmit_image_genie(image, "jpeg", K, 10.0, "ofdm-cdl", window_db=-1.0)
    link = get_link(9, "ofdm-cdl")
    with pytest.raises(ValueError, match="num_symbols must be an integer >= "):
        link.transmit(np.ones(100), 10.0, num_symbols=10)


def test_evaluate_cli_over_ofdm(image, tmp_path):
    from experiments import evaluate as ev
    (tmp_path / "images").mkdir()
    Image.fromarray(image).save(tmp_path / "images" / "tiny.png")
    outdir = tmp_path / "out"
    assert ev.main(["--systems", "separation:jpeg", "--images", str(tmp_path / "images"),
                    "--channels", "ofdm-cdl", "--snrs=-5,30", "--cbr", "1/2",
                    "--outdir", str(outdir), "--no-figures", "--grid-images", "0"]) == 0
    res = json.loads((outdir / "results.json").read_text())
    rows = {r["snr_db"]: r for r in res["per_image"]}
    assert set(rows) == {-5.0, 30.0} and all(r["channel"] == "ofdm-cdl" for r in rows.values())
    assert rows[-5.0]["status"] == "no_error_free_mcs" and rows[-5.0]["mcs"] is None
    assert rows[30.0]["status"] == "ok" and rows[30.0]["psnr"] > 30
    assert 8 * rows[30.0]["num_bytes"] <= max_payload_bits(K, rows[30.0]["mcs"])
    assert len(res["records"]) == 2
