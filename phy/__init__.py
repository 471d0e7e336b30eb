# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Sionna links for JSCC codecs.

The separation baselines live in submodules that are imported on demand, so that
``import phy`` stays light: :mod:`phy.image_codecs` (classical codecs with rate control),
:mod:`phy.separation` (5G NR MCS, LDPC + QAM link, image transmission) and
:mod:`phy.bounds` (capacity bounds, codec at capacity).
"""
# phy.ofdm and phy.mimo register their channel types on import: import them
# before binding CHANNEL_TYPES.
from .ofdm import OFDMLinkChannel
from .mimo import MIMOLinkChannel, MIMOOFDMLinkChannel
from .channels import (CHANNEL_TYPES, AWGNChannel, IdentityChannel, JSCCLink,
                       RayleighChannel, get_channel, num_channel_uses, register_channel)
from .config import load_channel_config, save_channel_config, validate_channel_config
from .symbols import complex_to_real, normalize_power, real_to_complex
from .utils import parse_snr_list, snr_db_to_no

__all__ = [
    "AWGNChannel",
    "CHANNEL_TYPES",
    "IdentityChannel",
    "JSCCLink",
    "MIMOLinkChannel",
    "MIMOOFDMLinkChannel",
    "OFDMLinkChannel",
    "RayleighChannel",
    "complex_to_real",
    "get_channel",
    "load_channel_config",
    "normalize_power",
    "num_channel_uses",
    "parse_snr_list",
    "real_to_complex",
    "register_channel",
    "save_channel_config",
    "snr_db_to_no",
    "validate_channel_config",
]
