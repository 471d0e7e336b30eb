# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Evaluate JSCC codecs and separation baselines against SNR: the one evaluation command.

Every *system* is evaluated on every image of a test folder, on every channel, at every
SNR, with ``--repeats`` channel realisations per image; the results are written to
``--outdir``::

    fqliscs-evaluate --systems float:fqliscs_tf/weights/lite_c96_awgn separation:best \\
        capacity:heif --images ../shared/data/kodak --channels awgn,rayleigh \\
        --snrs 1,4,7,10,13 --repeats 2 --outdir outputs/eval_kodak

Systems (``KIND:ARG[,KEY=VALUE...]``; the registry :data:`SYSTEMS`)
    ``float:FOLDER``            an exported JSCC model (``model.json`` + ``weights.npz``; Swin,
                                Deep JSCC or ADJSCC), run on each channel of ``--channels``.
    ``separation:CODEC``        image codec + 5G NR LDPC + QAM with the ideal adaptive MCS
                                (``phy.separation.transmit_image_adaptive``); ``CODEC`` is a
                                codec name (jpeg, jpeg2000, webp, avif, jpegxl, heif) or
                                ``best``: per image, the codec with the highest PSNR within the
                                payload of the chosen MCS (a choice the transmitter can make).
                                AWGN/Rayleigh: the MCS from the stored threshold table. OFDM
                                and MIMO links: the QAM symbols go through the same link as the
                                JSCC symbols (``--channel-config`` parameters included) and the
                                MCS is the genie search (``transmit_image_genie``): the best MCS
                                that decodes on the image's channel realization, an upper bound
                                on real link adaptation.
                                Options ``mcs=I`` (fixed MCS index, ``transmit_image``),
                                ``table=1|2`` (38.214 MCS table), ``margin=DB`` (threshold-table
                                margin, AWGN/Rayleigh), ``window=DB`` (genie search window above
                                the realization's effective SNR, default 3).
    ``capacity:CODEC``          the codec within ``k C(SNR)`` bits ("BPG + capacity" for
                                ``heif``), ``phy.bounds``; an upper bound, drawn dashed.
    ``qat:FOLDER``              a QAT codec folder (``fqliscs-train --qat`` export), the
                                fake-quantized simulation in float32.
    ``int:FOLDER``              an integer engine folder (``engine.json`` + ``engine.npz``);
                                option ``jit=0|1``.
    ``tflite:FOLDER``           a QAT codec folder or an integer engine folder (its QAT
                                model rebuilt by ``qat_from_engine``) run as integer-only
                                TFLite (16x8 or int8), exported lazily per image shape and
                                cached on disk; options
                                ``activations=int16|int8``, ``kernels=default|builtin|ref``,
                                ``calibration=PATH[;PATH...]``, ``cache=DIR``; AWGN, Rayleigh
                                and "none" only (:mod:`experiments.tflite_system`).
    Every kind takes ``label=TEXT``. Other modules add kinds with :func:`register_system`.

Separation and capacity systems use ``k = round(CBR * 3 * H * W)`` complex channel uses
per image (on OFDM links: data resource elements, as for the JSCC latent; pilots are
overhead of the link), with ``--cbr`` (default: the CBR of the JSCC models, else 1/16).
They serve the channels "awgn", "rayleigh" (= "rayleigh-fast"; capacity: ergodic) and,
for separation, "rayleigh-block", without channel parameters, at SNRs up to 40 dB (the
top of the stored MCS threshold search); separation also serves the OFDM and MIMO links
("ofdm-rayleigh", "ofdm-tdl", "ofdm-cdl", "ofdm-umi", "ofdm-uma", "mimo",
"mimo-ofdm-cdl", with their parameters); anything else (capacity on OFDM/MIMO, "none")
is a ``ValueError``.

Seeds: image ``i`` at repeat ``r`` of cell (channel, SNR) uses the seed
:func:`cell_seed` ``(--seed, channel, SNR, image name, r)`` for every system (common
random numbers), so a result does not depend on the order of the work, on the other
images or on resuming. Deterministic systems (capacity, the noiseless "none" channel)
run once per image.

Statistics: PSNR (0-255 scale, per image) and MS-SSIM (4 scales, as WITT) of each
image and repeat; averaged records give the mean, the standard deviation and the
half-width of the 95 % Student-t confidence interval of the mean over the
``num_images * repeats`` values (taken as independent samples).

Outputs in ``--outdir``
    ``results.json``            see the schema below; rewritten after every finished
                                (system, channel, SNR) cell, so ``--resume`` skips finished
                                cells after an interruption.
    ``results.csv``             the averaged ``records``; ``per_image.csv`` the per-image ones.
    ``psnr_vs_snr.png``, ``ms_ssim_vs_snr.png``  one line per (system, channel); capacity
                                systems and the published WITT curve (PSNR, CBR 1/16) dashed.
    ``reconstruction_grid.png`` the first ``--grid-images`` images and every system's
                                reconstruction at ``--grid-snr`` on the first channel.

JSON schema (``schema = "fqliscs_tf/evaluate/1"``; checked by :func:`validate_results`)::

    {"name": "fqliscs-evaluate", "description": str, "schema": "fqliscs_tf/evaluate/1",
     "meta": {provenance (fqliscs_tf, git_commit, tensorflow, sionna, python, machine,
              num_cpus, date), "command": str, "complete": bool, "eval_seconds": float,
              "resumed_cells": int, "ci_level": 0.95,
              "config": {"images": str, "image_names": [str], "seed": int, "repeats": int,
                         "cbr": float, "fit": "crop"|"pad", "ms_ssim_levels": 4,
                         "snr_db": [float], "channels": [{"name", "type", "kwargs"}]}},
     "systems": [{"name", "kind", "arg", "options", "label", "cbr", ...}],
     "cells": [{"system", "channel", "snr_db", "seconds"}],          # finished cells
     "results": [{"system", "label", "kind", "channel", "cbr", "snr_db": [...],
                  "psnr": [...], "psnr_ci95": [...], "ms_ssim": [...],
                  "ms_ssim_ci95": [...], "num_samples": [...]}],      # CompressAI-style
     "records": [{RECORD_FIELDS}],       # one per cell, averaged
     "per_image": [{PER_IMAGE_FIELDS}]}  # one per image and repeat

Fields that do not apply are ``null`` (e.g. ``codec`` for a JSCC model, ``psnr_ci95``
for a single sample).
"""
import argparse
import collections
import csv
import hashlib
import inspect
import json
import math
import os
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np

import fqliscs_tf

__all__ = [
    "SYSTEMS", "register_system", "System", "FloatSystem", "SeparationSystem",
    "CapacitySystem", "Channel", "parse_system_spec", "build_system", "parse_channels",
    "parse_snrs", "load_images", "cell_seed", "run_cell", "summarize", "curves",
    "merge_result_files",
    "validate_results", "results_dict", "plot_vs_snr", "resolve_model_dir", "WEIGHTS_DIR",
    "channel_label", "channel_uses", "PER_IMAGE_FIELDS", "RECORD_FIELDS",
    "SCHEMA", "DEFAULT_MODEL", "DEFAULT_IMAGES", "CHANNEL_LABELS", "WITT_REFERENCE_KEYS",
    "published_references",
    "main", "run", "build_parser",
]

_PACKAGE_DIR = Path(fqliscs_tf.__file__).resolve().parent
#: The shipped trained model and the bundled Kodak images.
WEIGHTS_DIR = _PACKAGE_DIR / "weights"
DEFAULT_MODEL = str(WEIGHTS_DIR / "lite_c96_awgn")
DEFAULT_IMAGES = str(_PACKAGE_DIR / "assets" / "kodak")
DEFAULT_SYSTEMS = (f"float:{DEFAULT_MODEL}", "separation:best", "capacity:best")

SCHEMA = "fqliscs_tf/evaluate/1"
CI_LEVEL = 0.95
PER_IMAGE_FIELDS = ("system", "label", "kind", "channel", "snr_db", "image", "height", "width",
                    "repeat", "seed", "cbr", "psnr", "ms_ssim", "status", "codec", "quality",
                    "num_bytes", "bpp", "mcs")
RECORD_FIELDS = ("system", "label", "kind", "channel", "snr_db", "cbr", "num_images", "repeats",
                 "num_samples", "psnr", "psnr_std", "psnr_ci95", "ms_ssim", "ms_ssim_std",
                 "ms_ssim_ci95", "success_rate", "bpp")
CHANNEL_LABELS = {"none": "no channel", "awgn": "AWGN", "rayleigh": "Rayleigh",
                  "rayleigh-fast": "Rayleigh (fast)", "rayleigh-block": "Rayleigh (block)",
                  "ofdm-rayleigh": "OFDM-Rayleigh", "ofdm-tdl": "OFDM-TDL",
                  "ofdm-cdl": "OFDM-CDL", "ofdm-umi": "OFDM-UMi", "ofdm-uma": "OFDM-UMa",
                  "mimo": "MIMO", "mimo-ofdm-cdl": "MIMO-OFDM-CDL"}
#: Channels with a published WITT curve ("rayleigh" is fast fading, as in WITT).
WITT_REFERENCE_KEYS = {"awgn": "awgn", "rayleigh": "rayleigh", "rayleigh-fast": "rayleigh"}


def published_references(channels, cbrs, metric="psnr"):
    """The published curves (:data:`fqliscs_tf.plotting.PUBLISHED_REFERENCES`) to draw beside
    results on ``channels`` at the ``cbrs``: Kodak PSNR at CBR 1/16 only, once per curve."""
    from fqliscs_tf import plotting
    if metric != "psnr" or not any(abs(c - 1 / 16) < 1e-9 for c in cbrs):
        return []
    keys = dict.fromkeys(WITT_REFERENCE_KEYS.get(c) for c in channels)
    return [ref for key in keys if key for ref in plotting.PUBLISHED_REFERENCES[key]]

#: A channel of the evaluation: registry type and layer parameters (``--channel-config``).
Channel = collections.namedtuple("Channel", ["type", "kwargs"], defaults=[{}])


def channel_label(name):
    return CHANNEL_LABELS.get(name, name)


# ----------------------------------------------------------------------------- systems

class System:
    """Base of the system runners; a registered kind builds one from ``(arg, options)``.

    The contract used by :func:`run_cell` (and by kinds added with :func:`register_system`):

    * attributes ``kind``, ``name`` (the spec, set by :func:`build_system`), ``label``,
      ``cbr`` (`None` until :meth:`configure` if the system takes ``--cbr``),
      ``size_multiple`` (image sides it needs, 1 = any), ``randomized`` (`False`: one
      repeat suffices);
    * ``configure(cbr, fit)`` once before the run;
    * ``check(channel, snr_list)`` raises ``ValueError`` if it cannot serve them;
    * optionally ``prepare(images)`` once with the test images (``[(name, uint8 [H, W, 3])]``)
      before the first cell, e.g. to refuse them (``ValueError``);
    * ``set_channel(channel)`` before the cells of a channel;
    * ``transmit(image, snr_db, seed)`` -> dict with ``x_hat`` (``[H, W, 3]``, uint8 or
      float in [0, 1]) and optionally ``x`` (the scored reference if not ``image``),
      ``status``, ``codec``, ``quality``, ``num_bytes``, ``mcs``;
    * ``describe()`` -> JSON-able dict for the ``systems`` list of the results; its
      ``runtime`` entry, if any (e.g. export times), may change during a run and is not
      compared by ``--resume``.
    """
    kind = None
    options = ("label",)
    randomized = True
    size_multiple = 1

    def __init__(self, arg, options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r} for system kind {self.kind!r}; "
                             f"valid options: {', '.join(self.options)}")
        self.arg, self.opts = arg, dict(options)
        self.name = f"{self.kind}:{arg}"
        self.label = self.opts.get("label")
        self.cbr = None
        self.fit = "crop"
        self.channel = None

    def configure(self, cbr, fit):
        if self.cbr is None:
            self.cbr = float(cbr)
        self.fit = fit

    def check(self, channel, snr_list):
        """Raise ValueError if ``channel`` or an SNR of ``snr_list`` cannot be served."""

    def prepare(self, images):
        """Called once with the test images ``[(name, uint8 [H, W, 3])]`` before the cells."""

    def set_channel(self, channel):
        self.channel = channel

    def transmit(self, image, snr_db, seed):
        raise NotImplementedError

    def describe(self):
        return {"name": self.name, "kind": self.kind, "arg": self.arg, "options": self.opts,
                "label": self.label, "cbr": self.cbr}


class FloatSystem(System):
    """An exported JSCC model (any family of :mod:`fqliscs_tf.registry`), float32."""
    kind = "float"

    def __init__(self, arg, options):
        super().__init__(arg, options)
        self.info, self.model = self._load(arg)
        cfg = self.model.config
        self.cbr = float(self.model.cbr)
        self.size_multiple = int(cfg.size_multiple)
        self.family = self.info.get("family", "swin")
        if self.label is None:
            name = cfg.name if cfg.name == self.family else f"{cfg.name} {self.family}"
            self.label = f"{name} ({channel_label(self.info['channel_type'])}-trained)"
        self._forward = None

    @staticmethod
    def _load(arg):
        from fqliscs_tf.checkpoints import load_model, read_model_info
        return read_model_info(arg), load_model(arg)

    def check(self, channel, snr_list):
        from phy import validate_channel_config
        validate_channel_config(channel.type, channel.kwargs)

    def set_channel(self, channel):
        import tensorflow as tf
        if channel == self.channel and self._forward is not None:
            return
        super().set_channel(channel)
        self.model.set_channel(channel.type, **channel.kwargs)
        self.randomized = channel.type != "none"
        model = self.model

        @tf.function  # one trace per image size
        def forward(x, snr_db):
            return tf.clip_by_value(model((x, snr_db), training=False)["x_hat"], 0.0, 1.0)
        self._forward = forward

    def transmit(self, image, snr_db, seed):
        import tensorflow as tf

        from fqliscs_tf.data import crop_to_size, fit_to_multiple
        from fqliscs_tf.utils import set_seed
        x = tf.constant(image[None], tf.float32) / 255.0
        if self.fit == "pad":
            x = fit_to_multiple(x, self.size_multiple, "pad")
        set_seed(seed)
        x_hat = self._forward(x, tf.constant([snr_db], tf.float32))
        if self.fit == "pad":
            x_hat = crop_to_size(x_hat, image.shape[:2])
        return {"x_hat": x_hat[0].numpy()}

    def describe(self):
        return {**super().describe(), "model_dir": os.path.abspath(self.arg),
                "family": self.family, "preset": self.model.config.name,
                "trained_channel": self.info["channel_type"]}


class QATSystem(FloatSystem):
    """A quantization-aware codec folder (``train.py --qat`` export): the fake-quantized
    simulation in float32, with int8 symbols into the float channel."""
    kind = "qat"

    @staticmethod
    def _load(arg):
        from fqliscs_tf.checkpoints import read_model_info
        from fqliscs_tf.quant.qat import load_qat
        return read_model_info(arg), load_qat(arg)


class IntegerSystem(System):
    """An integer engine folder (``engine.json`` + ``engine.npz``): integers from the uint8
    pixels to the uint8 reconstruction; AWGN and Rayleigh run as integer channels, other
    channel types take the int8 symbols through the float Sionna channel."""
    kind = "int"
    options = ("label", "jit")

    def __init__(self, arg, options):
        from fqliscs_tf.engine import IntegerCodec
        super().__init__(arg, options)
        jit = _int_option(self, "jit", 1)
        if jit not in (0, 1):
            raise ValueError(f"option jit of {self.kind!r} must be 0 or 1, got {jit}")
        self.codec = IntegerCodec(arg, "none", jit_compile=bool(jit))
        cfg = self.codec.config
        self.cbr = float(cfg.cbr)
        self.size_multiple = int(cfg.size_multiple)
        if self.label is None:
            trained = self.codec.params.meta.get("channel_type", "?")
            self.label = f"{cfg.name} integer ({channel_label(trained)}-trained)"

    def check(self, channel, snr_list):
        from phy import validate_channel_config
        validate_channel_config(channel.type, channel.kwargs)
        limit = 127 * self.codec.spec.snr_step_db
        bad = [s for s in snr_list if abs(s) > limit]
        if bad:
            raise ValueError(f"SNR {bad[0]} dB is outside the integer codec's SNR grid "
                             f"(+-{limit} dB)")

    def set_channel(self, channel):
        import tensorflow as tf
        if channel == self.channel:
            return  # keep the compiled graphs (XLA compiles once per channel and image size)
        super().set_channel(channel)
        self.codec.set_channel(channel.type, **channel.kwargs)
        codec = self.codec
        if codec._float_channel is not None:  # pylint: disable=protected-access
            # The engine runs the float-channel link eagerly: trace (and compile) it once per
            # channel, from the class's method (a new channel needs a new trace).
            link = type(codec)._float_link.__get__(codec)  # pylint: disable=protected-access
            codec._float_link = tf.function(  # pylint: disable=protected-access
                link, reduce_retracing=True, jit_compile=getattr(codec, "jit_compile", True))
        self.randomized = channel.type != "none"

    def transmit(self, image, snr_db, seed):
        import tensorflow as tf

        from fqliscs_tf.data import crop_to_size, fit_to_multiple
        from fqliscs_tf.utils import set_seed
        x = tf.constant(image[None], tf.float32) / 255.0
        if self.fit == "pad":
            x = fit_to_multiple(x, self.size_multiple, "pad")
        set_seed(seed)  # float Sionna channels
        x_hat = self.codec(x, snr_db, seed=(seed % (2 ** 31), 0))["x_hat"]
        if self.fit == "pad":
            x_hat = crop_to_size(x_hat, image.shape[:2])
        return {"x_hat": x_hat[0].numpy()}

    def describe(self):
        integer = self.channel is None or self.codec._float_channel is None
        return {**super().describe(), "engine_dir": os.path.abspath(self.arg),
                "preset": self.codec.config.name, "integer_channel": integer,
                "quant": self.codec.spec.to_dict()}


class _CachedCodec:
    """Shares codec encodes between systems, SNRs and repeats (rate control re-encodes a lot).

    A least-recently-used cache of bitstreams keyed by (codec, image digest, quality),
    bounded by ``max_bytes`` in total.
    """
    _cache = collections.OrderedDict()
    _size = 0
    max_bytes = 768 * 2 ** 20

    @classmethod
    def wrap(cls, codec):
        from phy.image_codecs import ImageCodec

        def encode(image, quality):
            key = (codec.name, image.shape, hashlib.sha1(image.tobytes()).hexdigest(), quality)
            if key in cls._cache:
                cls._cache.move_to_end(key)
                return cls._cache[key]
            data = codec.encode(image, quality)
            cls._cache[key] = data
            cls._size += len(data)
            while cls._size > cls.max_bytes:
                cls._size -= len(cls._cache.popitem(last=False)[1])
            return data
        return ImageCodec(codec.name, encode, codec.decode, codec.qualities,
                          codec.higher_is_better, codec.description)


def _codecs(arg):
    """``"best"`` -> every available codec, else ``[codec]``; ValueError for an unknown one."""
    from phy.image_codecs import available_codecs, get_codec
    names = available_codecs() if arg.lower() == "best" else [arg]
    return [_CachedCodec.wrap(get_codec(n)) for n in names]


def _best_fit(image, codecs, encode):
    """:func:`phy.image_codecs.best_fit` (imported on use: phy loads TensorFlow and Sionna)."""
    from phy.image_codecs import best_fit
    return best_fit(image, codecs, encode)


def _within(image, max_bytes):
    from phy.image_codecs import rate_control
    return lambda codec: rate_control(image, codec, max_bytes)


def channel_uses(shape, cbr):
    """Complex channel uses ``k = round(cbr * 3 * H * W)`` for an image of ``shape``."""
    return int(round(cbr * 3 * shape[0] * shape[1]))


def _max_link_snr_db():
    from phy.separation import measure_mcs_thresholds
    return float(inspect.signature(measure_mcs_thresholds).parameters["max_snr_db"].default)


class _DigitalSystem(System):
    """Common parts of the separation and capacity systems."""
    _channels = ()

    def __init__(self, arg, options):
        super().__init__(arg, options)
        self.codecs = _codecs(arg)
        self.codec_name = "best" if arg.lower() == "best" else self.codecs[0].name

    def check(self, channel, snr_list):
        if channel.type not in self._channels or channel.kwargs:
            raise ValueError(
                f"system {self.name!r} cannot serve channel {channel.type!r}"
                f"{' with parameters ' + repr(channel.kwargs) if channel.kwargs else ''}; "
                f"{self._supported()}")

    def _supported(self):
        return f"it supports {', '.join(self._channels)} (no channel parameters)"

    def _fallback(self, image, status, **info):
        from phy.separation import fallback_image
        return {"x_hat": fallback_image(image.shape), "status": status, **info}

    def describe(self):
        return {**super().describe(), "codecs": [c.name for c in self.codecs]}


class SeparationSystem(_DigitalSystem):
    """Codec + 5G NR LDPC + QAM (ideal adaptive MCS, or a fixed MCS with ``mcs=I``).

    AWGN and Rayleigh: the adaptive MCS comes from the stored threshold table. OFDM and
    MIMO links (``phy.separation.GENIE_CHANNELS``, with the ``--channel-config``
    parameters of the JSCC models): the genie search on the image's channel realization
    (``phy.separation.transmit_image_genie``), an upper bound on real link adaptation.
    """
    kind = "separation"
    options = ("label", "mcs", "table", "margin", "window")

    def __init__(self, arg, options):
        from phy.separation import LINK_CHANNELS, MCS_TABLES, get_mcs
        super().__init__(arg, options)
        self._channels = LINK_CHANNELS
        self.table = _int_option(self, "table", 1)
        if self.table not in MCS_TABLES:
            raise ValueError(f"system {self.name!r}: unknown MCS table {self.table}; valid "
                             f"tables: {', '.join(map(str, MCS_TABLES))}")
        self.margin_db = _float_option(self, "margin", 0.0)
        self.window_db = _float_option(self, "window", 3.0)
        if self.window_db < 0:
            raise ValueError(f"system {self.name!r}: option window={self.window_db:g} must be "
                             ">= 0 dB")
        self.mcs = None
        if "mcs" in self.opts:
            self.mcs = get_mcs(_int_option(self, "mcs", None), self.table)
        if self.label is None:
            mode = "ideal adaptive MCS" if self.mcs is None else f"MCS {self.mcs.index}"
            self.label = f"{self.codec_name} + 5G LDPC/QAM, {mode}"

    def check(self, channel, snr_list):
        from phy import validate_channel_config
        from phy.separation import GENIE_CHANNELS
        if channel.type not in GENIE_CHANNELS:
            super().check(channel, snr_list)
            top = _max_link_snr_db()
            bad = [s for s in snr_list if s > top]
            if bad:
                raise ValueError(
                    f"system {self.name!r} cannot serve SNR {bad[0]:g} dB: the LDPC/QAM link "
                    f"and its stored MCS threshold table cover SNRs up to {top:g} dB")
            return
        try:
            validate_channel_config(channel.type, channel.kwargs)
        except ValueError as e:
            raise ValueError(f"system {self.name!r} cannot serve channel {channel.type!r}: "
                             f"{e}") from None
        if self.margin_db and self.mcs is None:
            raise ValueError(
                f"system {self.name!r}: option margin applies to the MCS threshold tables "
                f"(AWGN, Rayleigh); on {channel.type!r} the adaptive MCS is the genie search "
                "(option window)")

    def _supported(self):
        from phy.separation import GENIE_CHANNELS, THRESHOLD_CHANNELS
        return (f"it supports {', '.join(THRESHOLD_CHANNELS)} (no channel parameters) and the "
                f"OFDM/MIMO links {', '.join(GENIE_CHANNELS)} (with their parameters)")

    def _result(self, out):
        mcs = out.get("mcs")
        sent = out.get("num_bytes", 0) > 0  # nothing is sent below every MCS threshold
        return {"x_hat": out["image"], "status": out["status"],
                "codec": out["codec"] if sent else None,
                "quality": out.get("quality"), "num_bytes": out.get("num_bytes"),
                "mcs": None if mcs is None else int(mcs.index)}

    def transmit(self, image, snr_db, seed):
        from phy import separation
        k = channel_uses(image.shape, self.cbr)
        ch, params = self.channel.type, self.channel.kwargs
        if self.mcs is not None:
            budget = separation.max_payload_bits(k, self.mcs) // 8
            codec, _ = _best_fit(image, self.codecs, _within(image, budget))
            if codec is None:
                return self._fallback(image, "budget_too_small", mcs=self.mcs.index,
                                      codec=None, quality=None, num_bytes=0)
            return self._result(separation.transmit_image(
                image, codec, k, snr_db, self.mcs, ch, seed=seed, table=self.table,
                channel_params=params))
        if ch in separation.GENIE_CHANNELS:
            return self._result(separation.transmit_image_genie(
                image, self.codecs, k, snr_db, ch, seed=seed, table=self.table,
                channel_params=params, window_db=self.window_db))
        codec = self.codecs[0]
        if len(self.codecs) > 1 and ch == "rayleigh-block":
            # The MCS depends on the block gain: run every codec on the same realisation and
            # keep the one with the best codec output (known at the transmitter).
            outs = [separation.transmit_image_adaptive(
                image, c, k, snr_db, ch, seed=seed, table=self.table, margin_db=self.margin_db)
                for c in self.codecs]
            return self._result(max(outs, key=lambda o: -math.inf if o["codec_psnr"] is None
                                    else o["codec_psnr"]))
        if len(self.codecs) > 1:
            mcs = separation.select_mcs(k, snr_db, ch, self.table, margin_db=self.margin_db)
            if mcs is not None:
                best, _ = _best_fit(image, self.codecs,
                                    _within(image, separation.max_payload_bits(k, mcs) // 8))
                codec = best or codec
        return self._result(separation.transmit_image_adaptive(
            image, codec, k, snr_db, ch, seed=seed, table=self.table, margin_db=self.margin_db))

    def describe(self):
        return {**super().describe(), "mcs": None if self.mcs is None else self.mcs.index,
                "table": self.table, "margin_db": self.margin_db}


class CapacitySystem(_DigitalSystem):
    """The codec's best output within ``k C(SNR)`` bits (``phy.bounds``); deterministic."""
    kind = "capacity"
    randomized = False

    def __init__(self, arg, options):
        from phy.bounds import BOUND_CHANNELS
        super().__init__(arg, options)
        self._channels = BOUND_CHANNELS
        if self.label is None:
            self.label = f"{self.codec_name} + capacity"

    def _supported(self):
        return (f"it supports {', '.join(self._channels)} (no channel parameters); the capacity "
                "of the OFDM/MIMO links (with their channel estimation and equalization) is not "
                "computed")

    def transmit(self, image, snr_db, seed):
        from phy.bounds import capacity_bits, codec_at_capacity
        bits = capacity_bits(channel_uses(image.shape, self.cbr), snr_db, self.channel.type)
        codec, res = _best_fit(image, self.codecs, lambda c: codec_at_capacity(image, c, bits))
        if codec is None:
            return self._fallback(image, "budget_too_small", codec=None, quality=None,
                                  num_bytes=0, mcs=None)
        return {"x_hat": res.image, "status": "ok", "codec": codec.name,
                "quality": res.quality, "num_bytes": len(res.data), "mcs": None}


def _int_option(system, key, default):
    if key not in system.opts:
        return default
    try:
        return int(system.opts[key])
    except ValueError:
        raise ValueError(f"system {system.name!r}: option {key}={system.opts[key]!r} is not an "
                         "integer") from None


def _float_option(system, key, default):
    if key not in system.opts:
        return default
    try:
        value = float(system.opts[key])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"system {system.name!r}: option {key}={system.opts[key]!r} is not a "
                         "finite number")
    return value


def _tflite_system(arg, options):
    """``tflite:FOLDER`` (:class:`experiments.tflite_system.TFLiteSystem`, imported on use)."""
    from experiments.tflite_system import TFLiteSystem
    return TFLiteSystem(arg, options)


#: The system registry: kind -> factory ``(arg, options) -> System``.
SYSTEMS = {"float": FloatSystem, "qat": QATSystem, "int": IntegerSystem,
           "tflite": _tflite_system, "separation": SeparationSystem, "capacity": CapacitySystem}


#: Kinds whose ``ARG`` is a model folder (or a shipped model name).
_MODEL_KINDS = ("float", "qat", "int", "tflite")


def register_system(kind, factory, replace=False):
    """Add a system kind, e.g. ``register_system("int", IntegerEngineSystem)``.

    ``factory(arg, options)`` returns an object with the :class:`System` contract
    (subclassing :class:`System` or :class:`FloatSystem` is the easy way). Kinds are
    lower-case names without ``:`` or ``,``; re-registering a kind needs ``replace=True``.
    """
    if not isinstance(kind, str) or not kind or kind != kind.lower() or set(kind) & set(":,"):
        raise ValueError(f"system kinds must be non-empty lower-case names without ':' or ',', "
                         f"got {kind!r}")
    if not callable(factory):
        raise ValueError(f"system factory for {kind!r} must be callable, got {factory!r}")
    if kind in SYSTEMS and SYSTEMS[kind] is not factory and not replace:
        raise ValueError(f"system kind {kind!r} is already registered (pass replace=True)")
    SYSTEMS[kind] = factory


def parse_system_spec(text):
    """``"KIND:ARG[,KEY=VALUE...]"`` -> ``(kind, arg, options)``; ValueError if malformed."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"system {text!r}: expected KIND:ARG, e.g. 'float:FOLDER', "
                         f"'separation:best' or 'capacity:heif'; kinds: {', '.join(SYSTEMS)}")
    kind, rest = text.split(":", 1)
    kind = kind.strip().lower()
    if kind not in SYSTEMS:
        raise ValueError(f"unknown system kind {kind!r} in {text!r}; known kinds: "
                         f"{', '.join(SYSTEMS)}")
    arg, *parts = rest.split(",")
    if not arg.strip():
        raise ValueError(f"system {text!r}: nothing after {kind + ':'!r}")
    options = {}
    for part in parts:
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise ValueError(f"system {text!r}: option {part!r} is not KEY=VALUE")
        if key in options:
            raise ValueError(f"system {text!r}: option {key!r} given twice")
        options[key] = value.strip()
    return kind, arg.strip(), options


def resolve_model_dir(arg):
    """A model folder argument: ``arg`` itself if it exists, else the shipped model of that
    name (:data:`WEIGHTS_DIR`, e.g. ``"lite_c96_awgn_int"``) if there is one, else ``arg``."""
    shipped = WEIGHTS_DIR / arg
    if not os.path.exists(arg) and os.sep not in arg and shipped.is_dir():
        return str(shipped)
    return arg


def build_system(text):
    """The runner of a system spec (see :func:`parse_system_spec`), named after the spec.

    Model kinds (float, qat, int, tflite) also take the name of a shipped model as ``ARG``
    (:func:`resolve_model_dir`).
    """
    kind, arg, options = parse_system_spec(text)
    if kind in _MODEL_KINDS:
        arg = resolve_model_dir(arg)
    system = SYSTEMS[kind](arg, options)
    system.name = text.strip()
    return system


# ----------------------------------------------------------------------------- inputs

def parse_channels(text, config_path=None):
    """``"awgn,rayleigh"`` (+ a ``--channel-config`` file) -> list of :class:`Channel`."""
    from phy import CHANNEL_TYPES
    names = [c.strip().lower() for c in text.split(",")]
    if not text.strip() or any(not c for c in names):
        raise ValueError(f"--channels {text!r}: expected comma-separated channel types, "
                         f"e.g. 'awgn,rayleigh'; valid: {', '.join(CHANNEL_TYPES)}")
    for c in names:
        if c not in CHANNEL_TYPES:
            raise ValueError(f"--channels: unknown channel type {c!r}; valid channel types: "
                             f"{', '.join(CHANNEL_TYPES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--channels {text!r} names a channel twice")
    channels = [Channel(c, {}) for c in names]
    if config_path:
        from phy import load_channel_config
        try:
            ctype, kwargs = load_channel_config(config_path)
        except (OSError, ValueError) as e:
            raise ValueError(f"--channel-config: {e}") from None
        if ctype in names:  # the file configures a listed channel
            channels[names.index(ctype)] = Channel(ctype, kwargs)
        else:
            channels.append(Channel(ctype, kwargs))
    return channels


def parse_snrs(text):
    """``--snrs`` text -> list of SNRs [dB] (``phy.parse_snr_list``, no duplicates)."""
    from phy import parse_snr_list
    try:
        snrs = parse_snr_list(text)
    except ValueError as e:
        raise ValueError(f"--snrs: {e}") from None
    seen = set()
    for s in snrs:
        if s in seen:
            raise ValueError(f"--snrs {text!r} lists {s:g} dB twice")
        seen.add(s)
    return snrs


def _parse_cbr(text):
    try:
        num, sep, den = str(text).partition("/")
        value = float(num) / float(den) if sep else float(num)
    except (ValueError, ZeroDivisionError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"--cbr {text!r}: expected a positive number such as 0.0625 or 1/16")
    return value


def load_images(path, max_images=0, multiple=1, fit="crop"):
    """Test images as ``[(name, uint8 [H, W, 3])]``, names relative to the folder.

    With ``fit="crop"`` the sides are centre-cropped to a multiple of ``multiple`` (every
    system then sees the same pixels); with ``"pad"`` the images stay as they are (JSCC
    models pad and crop back). Raises ValueError for an empty folder or a too small image.
    """
    from fqliscs_tf import data
    if os.path.isfile(path):
        root, files = os.path.dirname(path), [path]
    else:
        try:
            root, files = path, data.list_images(path)
        except ValueError as e:
            raise ValueError(f"--images: {e}") from None
    if max_images:
        files = files[:max_images]
    images = []
    for f in files:
        image = data.load_image(f)
        name = os.path.relpath(f, root)
        try:
            fitted = data.fit_to_multiple(image, multiple, fit)
        except ValueError as e:
            raise ValueError(f"image {f!r}: {e}") from None
        images.append((name, fitted if fit == "crop" else image))
    return images


# ----------------------------------------------------------------------------- evaluation

def cell_seed(seed, channel, snr_db, image, repeat):
    """Seed of one transmission: a hash of the base seed, channel, SNR, image name and repeat."""
    words = [int(seed), zlib.crc32(str(channel).encode()),
             zlib.crc32(f"{float(snr_db):.6g}".encode()), zlib.crc32(str(image).encode()),
             int(repeat)]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint32)[0])


class _Scorer:
    """PSNR and MS-SSIM (4 scales, as WITT) of one image pair; one trace per image size."""

    def __init__(self):
        import tensorflow as tf

        from fqliscs_tf.metrics import ms_ssim, psnr
        from fqliscs_tf.training import MS_SSIM_LEVELS
        self.levels = MS_SSIM_LEVELS

        @tf.function
        def score(x, x_hat):
            return psnr(x, x_hat), ms_ssim(x, x_hat, levels=MS_SSIM_LEVELS)
        self._score = score

    def __call__(self, x, x_hat):
        def prep(a):
            a = np.asarray(a)
            a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
            return a[None]
        p, s = self._score(prep(x), prep(x_hat))
        return float(p.numpy()[0]), float(s.numpy()[0])


_SCORER = None


def _scorer():
    global _SCORER  # pylint: disable=global-statement
    if _SCORER is None:
        _SCORER = _Scorer()
    return _SCORER


def run_cell(system, channel, snr_db, images, *, seed, repeats=1, keep=0):
    """Evaluate one (system, channel, SNR) cell.

    Input
    -----
    system : :class:`System`
    channel : :class:`Channel`
    snr_db : `float` [dB]
    images : `list` of ``(name, uint8 [H, W, 3])`` (:func:`load_images`)
    seed : `int`, base seed (see :func:`cell_seed`)
    repeats : `int`, channel realisations per image (1 for a deterministic system)
    keep : `int`, keep the reconstructions of the first ``keep`` images (repeat 0)

    Output
    ------
    records : `list` of `dict` with :data:`PER_IMAGE_FIELDS`
    kept : `dict` image name -> reconstruction ``[H, W, 3]``
    """
    system.set_channel(channel)
    reps = repeats if system.randomized else 1
    records, kept = [], {}
    for i, (name, image) in enumerate(images):
        for r in range(reps):
            s = cell_seed(seed, channel.type, snr_db, name, r)
            out = system.transmit(image, float(snr_db), s)
            x = out.get("x", image)
            p, m = _scorer()(x, out["x_hat"])
            num_bytes = out.get("num_bytes")
            records.append({
                "system": system.name, "label": system.label, "kind": system.kind,
                "channel": channel.type, "snr_db": float(snr_db), "image": name,
                "height": int(x.shape[0]), "width": int(x.shape[1]), "repeat": r, "seed": s,
                "cbr": system.cbr, "psnr": p, "ms_ssim": m, "status": out.get("status", "ok"),
                "codec": out.get("codec"), "quality": _jsonable(out.get("quality")),
                "num_bytes": num_bytes,
                "bpp": None if num_bytes is None else 8.0 * num_bytes / (x.shape[0] * x.shape[1]),
                "mcs": out.get("mcs")})
            if i < keep and r == 0:
                kept[name] = out["x_hat"]
    return records, kept


def _jsonable(v):
    if v is None or isinstance(v, (str, bool)):
        return v
    f = float(v)
    return int(f) if f.is_integer() else f


def _stats(values):
    from scipy import stats
    a = np.asarray(values, np.float64)
    if len(a) < 2:
        return float(a.mean()), None, None
    std = float(a.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CI_LEVEL / 2, len(a) - 1) * std / math.sqrt(len(a)))
    return float(a.mean()), std, half


def merge_result_files(paths, field, key):
    """The ``field`` rows (``"records"`` or ``"per_image"``) of several result files, first
    file first; a row whose ``key(row)`` was already seen is dropped. ValueError names a file
    that is not a readable result file."""
    seen, merged = set(), []
    for path in paths:
        try:
            with open(path) as f:
                rows = json.load(f)[field]
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{path}: not a readable fqliscs-evaluate result file with "
                             f"{field!r} rows ({e})") from e
        for r in rows:
            k = key(r)
            if k not in seen:
                seen.add(k)
                merged.append(r)
    return merged


def summarize(per_image):
    """Average per-image records over images and repeats: one record per cell (in order)."""
    groups = collections.OrderedDict()
    for r in per_image:
        groups.setdefault((r["system"], r["channel"], r["snr_db"]), []).append(r)
    out = []
    for (system, channel, snr), recs in groups.items():
        p, p_std, p_ci = _stats([r["psnr"] for r in recs])
        m, m_std, m_ci = _stats([r["ms_ssim"] for r in recs])
        bpps = [r["bpp"] for r in recs if r["bpp"] is not None]
        out.append({"system": system, "label": recs[0]["label"], "kind": recs[0]["kind"],
                    "channel": channel, "snr_db": snr, "cbr": recs[0]["cbr"],
                    "num_images": len({r["image"] for r in recs}),
                    "repeats": len({r["repeat"] for r in recs}), "num_samples": len(recs),
                    "psnr": p, "psnr_std": p_std, "psnr_ci95": p_ci, "ms_ssim": m,
                    "ms_ssim_std": m_std, "ms_ssim_ci95": m_ci,
                    "success_rate": float(np.mean([r["status"] == "ok" for r in recs])),
                    "bpp": float(np.mean(bpps)) if bpps else None})
    return out


def curves(records):
    """CompressAI-style curves: one per (system, channel), lists aligned over SNRs."""
    out = collections.OrderedDict()
    for r in records:
        c = out.setdefault((r["system"], r["channel"]), {
            "system": r["system"], "label": r["label"], "kind": r["kind"],
            "channel": r["channel"], "cbr": r["cbr"], "snr_db": [], "psnr": [],
            "psnr_ci95": [], "ms_ssim": [], "ms_ssim_ci95": [], "num_samples": []})
        for key in ("snr_db", "psnr", "psnr_ci95", "ms_ssim", "ms_ssim_ci95", "num_samples"):
            c[key].append(r[key])
    return list(out.values())


# ----------------------------------------------------------------------------- schema

_TOP_KEYS = {"name": str, "description": str, "schema": str, "meta": dict, "systems": list,
             "cells": list, "results": list, "records": list, "per_image": list}
_META_KEYS = ("git_commit", "date", "tensorflow", "sionna", "machine", "command", "complete",
              "config", "ci_level", "eval_seconds", "resumed_cells")
_CONFIG_KEYS = ("images", "image_names", "seed", "repeats", "cbr", "fit", "ms_ssim_levels",
                "snr_db", "channels")
_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
_FIELD_TYPES = {
    "system": str, "label": str, "kind": str, "channel": str, "snr_db": _NUMBER, "image": str,
    "height": int, "width": int, "repeat": int, "seed": int, "cbr": _NUMBER, "psnr": _NUMBER,
    "ms_ssim": _NUMBER, "status": str, "codec": (str, type(None)),
    "quality": (int, float, type(None)), "num_bytes": (int, type(None)),
    "bpp": _OPTIONAL_NUMBER, "mcs": (int, type(None)), "num_images": int, "repeats": int,
    "num_samples": int, "psnr_std": _OPTIONAL_NUMBER, "psnr_ci95": _OPTIONAL_NUMBER,
    "ms_ssim_std": _OPTIONAL_NUMBER, "ms_ssim_ci95": _OPTIONAL_NUMBER,
    "success_rate": _NUMBER}


def _check_row(row, fields, where):
    if not isinstance(row, dict) or set(row) != set(fields):
        got = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise ValueError(f"{where}: expected the fields {list(fields)}, got {got}")
    for key in fields:
        if not isinstance(row[key], _FIELD_TYPES[key]) or isinstance(row[key], bool):
            raise ValueError(f"{where}: field {key!r} = {row[key]!r} has the wrong type")


def validate_results(results):
    """Check a ``results.json`` dict against the schema (module docstring); ValueError if not."""
    if not isinstance(results, dict):
        raise ValueError(f"results must be a JSON object, got {type(results).__name__}")
    for key, typ in _TOP_KEYS.items():
        if not isinstance(results.get(key), typ):
            raise ValueError(f"results: {key!r} missing or not a {typ.__name__}")
    if results["schema"] != SCHEMA:
        raise ValueError(f"results: schema {results['schema']!r}, expected {SCHEMA!r}")
    meta = results["meta"]
    for key in _META_KEYS:
        if key not in meta:
            raise ValueError(f"results: meta has no {key!r}")
    for key in _CONFIG_KEYS:
        if key not in meta["config"]:
            raise ValueError(f"results: meta.config has no {key!r}")
    names = set()
    for i, s in enumerate(results["systems"]):
        for key in ("name", "kind", "arg", "options", "label", "cbr"):
            if key not in s:
                raise ValueError(f"results: systems[{i}] has no {key!r}")
        names.add(s["name"])
    cells = set()
    for i, c in enumerate(results["cells"]):
        if set(c) != {"system", "channel", "snr_db", "seconds"}:
            raise ValueError(f"results: cells[{i}] must have system, channel, snr_db, seconds")
        cells.add((c["system"], c["channel"], c["snr_db"]))
    for i, r in enumerate(results["per_image"]):
        _check_row(r, PER_IMAGE_FIELDS, f"results: per_image[{i}]")
        if (r["system"], r["channel"], r["snr_db"]) not in cells or r["system"] not in names:
            raise ValueError(f"results: per_image[{i}] belongs to no finished cell")
    for i, r in enumerate(results["records"]):
        _check_row(r, RECORD_FIELDS, f"results: records[{i}]")
    for i, c in enumerate(results["results"]):
        n = len(c.get("snr_db", []))
        for key in ("psnr", "psnr_ci95", "ms_ssim", "ms_ssim_ci95", "num_samples"):
            if len(c.get(key, ())) != n:
                raise ValueError(f"results: results[{i}][{key!r}] is not aligned with snr_db")
    return results


# ----------------------------------------------------------------------------- output files

def _write_json(path, obj):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if r[k] is None else r[k] for k in fields})


def plot_vs_snr(records, systems, path, metric="psnr", title=None, channel=None, notes=()):
    """Save one figure of ``metric`` ("psnr" or "ms_ssim") against SNR; returns the path.

    A line per (system, channel) of ``records`` (averaged records, :func:`summarize`);
    capacity systems and, for PSNR when a system has CBR 1/16, the published WITT curve
    of each drawn channel are dashed. With ``channel`` only that channel is drawn and the
    labels omit it. ``notes`` are legend-only entries, e.g. systems that cannot serve the
    channel.
    """
    from fqliscs_tf import plotting
    by_name = {s.name: s for s in systems}
    drawn = [c for c in curves(records) if channel is None or c["channel"] == channel]
    lines, refs = [], []
    for c in drawn:
        label = c["label"] if channel else f"{c['label']}, {channel_label(c['channel'])}"
        curve = {"label": label, "snr_db": c["snr_db"], "values": c[metric]}
        (refs if by_name[c["system"]].kind == "capacity" else lines).append(curve)
    refs += published_references([c["channel"] for c in drawn], [s.cbr for s in systems], metric)
    lines += [{"label": note, "snr_db": [], "values": []} for note in notes]
    return plotting.plot_metric_vs_snr(lines, path, metric, title, refs)


def _figures(outdir, records, systems, images_label, cbr_text, grid):
    from fqliscs_tf import plotting
    paths = [plot_vs_snr(records, systems, os.path.join(outdir, f"{metric}_vs_snr.png"), metric,
                         f"{images_label}, {cbr_text}") for metric in ("psnr", "ms_ssim")]
    if grid:
        rows, titles = grid
        paths.append(plotting.reconstruction_grid(
            rows, os.path.join(outdir, "reconstruction_grid.png"), titles))
    return paths


def _print_table(records):
    print(f"{'system':<40} {'channel':<15} {'SNR':>5} {'PSNR [dB]':>15} {'MS-SSIM':>16} "
          f"{'n':>4}")
    for r in records:
        ci = "" if r["psnr_ci95"] is None else f"±{r['psnr_ci95']:.2f}"
        mci = "" if r["ms_ssim_ci95"] is None else f"±{r['ms_ssim_ci95']:.4f}"
        print(f"{r['system'][-40:]:<40} {r['channel']:<15} {r['snr_db']:>5g} "
              f"{r['psnr']:>8.2f}{ci:<7} {r['ms_ssim']:>8.4f}{mci:<8} {r['num_samples']:>4d}")


# ----------------------------------------------------------------------------- command line

def build_parser():
    p = argparse.ArgumentParser(
        prog="fqliscs-evaluate", description=__doc__.split("\n\n")[0],
        epilog="System specs: float:FOLDER | qat:FOLDER | int:FOLDER[,jit=0|1] | "
               "tflite:QAT_OR_ENGINE_FOLDER[,activations=int16|int8][,kernels=default|builtin|ref]"
               "[,calibration=PATH;PATH...][,cache=DIR] | separation:CODEC|best[,mcs=I]"
               "[,table=1|2][,margin=DB][,window=DB] | capacity:CODEC|best; each may add "
               ",label=TEXT. separation on OFDM/MIMO channels: genie MCS search (window=DB "
               "above the realization's effective SNR, default 3). "
               "Codecs: jpeg, jpeg2000, webp, avif, jpegxl, heif. See the module docstring "
               "for the outputs and the JSON schema.")
    p.add_argument("--systems", nargs="+", default=list(DEFAULT_SYSTEMS), metavar="KIND:ARG",
                   help="systems to evaluate, KIND:ARG[,KEY=VALUE...] with KIND one of "
                        f"{', '.join(SYSTEMS)} (default: %(default)s)")
    p.add_argument("--images", default=DEFAULT_IMAGES,
                   help="test image folder (searched recursively) or one image file "
                        "(default: %(default)s)")
    p.add_argument("--max-images", type=int, default=0,
                   help="use only the first N images in sorted order (0 = all) "
                        "(default: %(default)s)")
    p.add_argument("--channels", default="awgn,rayleigh",
                   help="comma-separated channel types from phy.CHANNEL_TYPES; the first one "
                        "fills the reconstruction grid (default: %(default)s)")
    p.add_argument("--channel-config", default=None,
                   help="JSON (or YAML) channel file ('channel_type' + parameters) for the JSCC "
                        "models and the separation systems (OFDM/MIMO links); it configures that "
                        "channel type in --channels, or adds it (default: %(default)s)")
    p.add_argument("--snrs", default="1,4,7,10,13",
                   help="comma-separated SNRs [dB] (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=1,
                   help="channel realisations per image and SNR (Monte Carlo); deterministic "
                        "systems run once (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1024,
                   help="base seed; every transmission's seed is derived from it, the channel, "
                        "the SNR, the image name and the repeat (default: %(default)s)")
    p.add_argument("--cbr", default=None,
                   help="channel bandwidth ratio of the separation and capacity systems, e.g. "
                        "1/16 (default: the CBR of the JSCC models, else 1/16)")
    p.add_argument("--fit", choices=["crop", "pad"], default="crop",
                   help="make image sides a multiple of the JSCC models' stride by centre "
                        "cropping every image (all systems see the crop) or by reflect padding "
                        "inside the JSCC models (scored on the original pixels) "
                        "(default: %(default)s)")
    p.add_argument("--outdir", default="outputs/evaluate",
                   help="folder for results.json, the CSV files and the figures "
                        "(default: %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="reuse the finished cells of --outdir/results.json (same images, seed, "
                        "repeats, CBR and fit) and compute only the missing ones")
    p.add_argument("--grid-images", type=int, default=2,
                   help="rows of the reconstruction grid (0 = no grid) (default: %(default)s)")
    p.add_argument("--grid-snr", type=float, default=None,
                   help="SNR [dB] of the reconstruction grid, one of --snrs "
                        "(default: the lowest)")
    p.add_argument("--no-figures", action="store_true",
                   help="write only the JSON and CSV files")
    return p


def _resolve(args):
    args.snr_list = parse_snrs(args.snrs)
    args.channel_list = parse_channels(args.channels, args.channel_config)
    for name in ("max_images", "grid_images", "seed"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be 0 or positive, got "
                             f"{getattr(args, name)}")
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {args.repeats}")
    if args.grid_snr is None:
        args.grid_snr = min(args.snr_list)
    elif args.grid_snr not in args.snr_list:
        raise ValueError(f"--grid-snr {args.grid_snr:g} is not one of --snrs {args.snrs!r}")
    if args.cbr is not None:
        args.cbr = _parse_cbr(args.cbr)
    specs = [s.strip() for s in args.systems]
    for s in specs:
        parse_system_spec(s)  # fail fast, before any model is loaded
    if len(set(specs)) != len(specs):
        raise ValueError(f"--systems names a system twice: {specs}")
    args.systems = specs
    return args


def main(argv=None):
    """Run the evaluation (see the module docstring). Returns 0, the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _resolve(build_parser().parse_args(argv))
    args.command = " ".join(["fqliscs-evaluate"] + argv)
    run(args)
    return 0


def _previous(path, config, systems):
    """Finished cells of an earlier run: ``{cell: (records, seconds)}``.

    Raises ValueError if that run used other images, seeds, repeats, CBR, fit or systems.
    """
    with open(path) as f:
        try:
            prev = validate_results(json.load(f))
        except (json.JSONDecodeError, ValueError) as e:
            raise ValueError(f"--resume: {path} is not a results file of this tool: {e}") from None
    old = prev["meta"]["config"]
    for key in ("images", "image_names", "seed", "repeats", "cbr", "fit", "ms_ssim_levels"):
        if old.get(key) != config[key]:
            raise ValueError(f"--resume: {path} was made with {key}={old.get(key)!r}, this run "
                             f"has {config[key]!r}; use another --outdir or drop --resume")
    old_channels = {c["type"]: c["kwargs"] for c in old["channels"]}
    for c in config["channels"]:
        if old_channels.get(c["type"], c["kwargs"]) != c["kwargs"]:
            raise ValueError(f"--resume: channel {c['type']!r} had the parameters "
                             f"{old_channels[c['type']]!r} in {path}, now {c['kwargs']!r}")
    def static(desc):  # without the run-time entry (e.g. export times)
        return {k: v for k, v in desc.items() if k != "runtime"}
    now = {s.name: static(_jsonable_tree(s.describe())) for s in systems}
    for s in map(static, prev["systems"]):
        if s["name"] in now and s != now[s["name"]]:
            raise ValueError(f"--resume: system {s['name']!r} differs from the one in {path} "
                             f"({s} vs {now[s['name']]}); use another --outdir")
    out = {}
    for c in prev["cells"]:
        key = (c["system"], c["channel"], c["snr_db"])
        out[key] = ([r for r in prev["per_image"]
                     if (r["system"], r["channel"], r["snr_db"]) == key], c["seconds"])
    return out


def _jsonable_tree(obj):
    return json.loads(json.dumps(obj))


def results_dict(plan, done, systems, meta, name="fqliscs-evaluate",
                 description="PSNR and MS-SSIM of JSCC codecs and separation baselines against "
                             "SNR"):
    """The results dict (schema in the module docstring) of the finished cells of ``plan``.

    ``plan``: ``[(system, channel, snr_db)]``; ``done``: ``{(system name, channel type,
    snr_db): (per-image records, seconds)}``; ``meta``: the provenance block.
    """
    per_image, cells = [], []
    for s, ch, snr in plan:
        key = (s.name, ch.type, snr)
        if key in done:
            per_image += done[key][0]
            cells.append({"system": s.name, "channel": ch.type, "snr_db": snr,
                          "seconds": done[key][1]})
    records = summarize(per_image)
    return {"name": name, "description": description, "schema": SCHEMA, "meta": meta,
            "systems": [_jsonable_tree(s.describe()) for s in systems], "cells": cells,
            "results": curves(records), "records": records, "per_image": per_image}


def _grid(images, systems, kept, per_image, channel, snr_db):
    """Rows and titles of the reconstruction grid (original + every system)."""
    names = [n for n in kept[systems[0].name]]
    psnrs = {(r["system"], r["image"]): r["psnr"] for r in per_image
             if r["channel"] == channel.type and r["snr_db"] == snr_db and r["repeat"] == 0}
    where = f"{channel_label(channel.type)} {snr_db:g} dB"
    rows, titles = [], []
    for name, image in images[:len(names)]:
        rows.append([image] + [kept[s.name][name] for s in systems])
        titles.append([f"original\n{name}"] + [
            f"{textwrap.shorten(s.label, 34, placeholder='...')}\n"
            f"{where}: {psnrs[(s.name, name)]:.2f} dB" for s in systems])
    return rows, titles


def run(args):
    """Evaluate as ``args`` say (from :func:`build_parser`, checked by :func:`main`).

    Writes the outputs listed in the module docstring; returns the averaged records.
    """
    from fqliscs_tf.utils import provenance, set_seed

    set_seed(args.seed)
    start = time.time()
    systems = [build_system(s) for s in args.systems]
    jscc_cbrs = sorted({s.cbr for s in systems if s.cbr is not None})
    cbr = args.cbr or (jscc_cbrs[0] if len(jscc_cbrs) == 1 else 1 / 16)
    for s in systems:
        s.configure(cbr, args.fit)
        for ch in args.channel_list:
            s.check(ch, args.snr_list)
    images = load_images(args.images, args.max_images,
                         math.lcm(*[s.size_multiple for s in systems]), args.fit)
    for s in systems:
        if hasattr(s, "prepare"):
            s.prepare(images)
    config = _jsonable_tree({
        "images": os.path.abspath(args.images), "image_names": [n for n, _ in images],
        "seed": args.seed, "repeats": args.repeats, "cbr": cbr, "fit": args.fit,
        "ms_ssim_levels": _scorer().levels, "snr_db": args.snr_list,
        "channels": [{"name": c.type, "type": c.type, "kwargs": c.kwargs}
                     for c in args.channel_list]})
    plan = [(s, ch, snr) for s in systems for ch in args.channel_list for snr in args.snr_list]
    os.makedirs(args.outdir, exist_ok=True)
    json_path = os.path.join(args.outdir, "results.json")
    done = {}
    if args.resume and os.path.isfile(json_path):
        done = _previous(json_path, config, systems)
        extra = sorted(set(done) - {(s.name, ch.type, snr) for s, ch, snr in plan})
        if extra:
            raise ValueError(f"--resume: {json_path} holds finished cells that this run does not "
                             f"plan, e.g. {extra[0]}; evaluate a superset of the earlier "
                             "--systems/--channels/--snrs or use another --outdir")
    resumed = len(done)
    print(f"{len(systems)} system(s), {len(images)} image(s) from {args.images}, channels "
          f"{[c.type for c in args.channel_list]}, SNRs {args.snr_list} dB, {args.repeats} "
          f"repeat(s), CBR {cbr:.4g}; {len(plan)} cells ({resumed} finished before)")

    # Provenance (commit, date, versions) of the code that starts the run.
    base = provenance(command=getattr(args, "command", "fqliscs-evaluate"), config=config,
                      ci_level=CI_LEVEL, resumed_cells=resumed)

    def meta(complete):
        return {**base, "complete": complete, "eval_seconds": time.time() - start}

    num_grid = 0 if args.no_figures else min(args.grid_images, len(images))
    grid_channel, kept = args.channel_list[0], {}
    for i, (s, ch, snr) in enumerate(plan):
        key = (s.name, ch.type, snr)
        in_grid = num_grid > 0 and ch == grid_channel and snr == args.grid_snr
        if key in done:
            if in_grid:  # the same seeds give the same reconstructions
                _, kept[s.name] = run_cell(s, ch, snr, images[:num_grid], seed=args.seed,
                                           keep=num_grid)
            continue
        t0 = time.time()
        recs, kept_here = run_cell(s, ch, snr, images, seed=args.seed, repeats=args.repeats,
                                   keep=num_grid if in_grid else 0)
        if in_grid:
            kept[s.name] = kept_here
        done[key] = (recs, time.time() - t0)
        (summary,) = summarize(recs)
        print(f"[{i + 1}/{len(plan)}] {s.name} | {ch.type} | {snr:g} dB: PSNR "
              f"{summary['psnr']:.2f} dB, MS-SSIM {summary['ms_ssim']:.4f} "
              f"({done[key][1]:.1f} s)", flush=True)
        _write_json(json_path, results_dict(plan, done, systems, meta(complete=False)))

    out = validate_results(results_dict(plan, done, systems, meta(complete=True)))
    _write_json(json_path, out)
    _write_csv(os.path.join(args.outdir, "results.csv"), out["records"], RECORD_FIELDS)
    _write_csv(os.path.join(args.outdir, "per_image.csv"), out["per_image"], PER_IMAGE_FIELDS)
    _print_table(out["records"])
    paths = [json_path]
    if not args.no_figures:
        grid = _grid(images, systems, kept, out["per_image"], grid_channel,
                     args.grid_snr) if num_grid else None
        paths += _figures(args.outdir, out["records"], systems, f"{len(images)} image(s)",
                          f"CBR {cbr:.4g}", grid)
    print(f"\noutputs in {os.path.abspath(args.outdir)}: "
          f"{', '.join(os.path.basename(p) for p in paths)}, results.csv, per_image.csv")
    return out["records"]


if __name__ == "__main__":
    sys.exit(main())
