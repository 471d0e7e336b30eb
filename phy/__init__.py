# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Sionna links for JSCC codecs."""
from .channels import (CHANNEL_TYPES, AWGNChannel, IdentityChannel, JSCCLink,
                       RayleighChannel, get_channel, num_channel_uses)
from .symbols import complex_to_real, normalize_power, real_to_complex
from .utils import parse_snr_list, snr_db_to_no

__all__ = [
    "AWGNChannel",
    "CHANNEL_TYPES",
    "IdentityChannel",
    "JSCCLink",
    "RayleighChannel",
    "complex_to_real",
    "get_channel",
    "normalize_power",
    "num_channel_uses",
    "parse_snr_list",
    "real_to_complex",
    "snr_db_to_no",
]
