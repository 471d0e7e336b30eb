# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""The ``tflite`` system kind of ``fqliscs-evaluate``: a QAT codec run as integer-only TFLite.

Spec: ``tflite:FOLDER[,activations=int16|int8][,forms=FORMS][,kernels=default|builtin|ref]
[,calibration=PATH[;PATH...]][,cache=DIR][,label=TEXT]``, where ``FOLDER`` is a
:func:`fqliscs_tf.quant.qat.save_qat` folder (the ``export`` folder of ``fqliscs-train --qat``)
or an integer engine folder (``engine.json`` + ``engine.npz``, e.g. the shipped
``lite_c96_awgn_int``, also by name), whose QAT model is rebuilt with
:func:`fqliscs_tf.engine.qat_from_engine` (same integer parameters).
Each image runs encoder.tflite -> the engine's integer channel -> decoder.tflite
(:class:`fqliscs_tf.engine.tflite.TFLiteCodec`: the SNR grid, pixel rounding and channel seeds
of the ``int`` system, so both see the same noise).

Options
    ``activations``  ``int16`` (default: TFLite 16x8 mode, close to the engine) or ``int8``
                     (all-int8: 8-bit residual stream, 0.1-0.9 dB below a 16-bit-stream
                     engine on Kodak, depending on ``forms``).
    ``forms``        ``default`` or, with ``activations=int8``, a name of
                     :data:`fqliscs_tf.engine.tflite.XNNPACK_FORMS` (e.g. ``xnnpack_fit``:
                     every op delegated to XNNPACK, the fast export of docs/RESULTS.md s. 7).
    ``kernels``      interpreter op resolver: ``default`` (XNNPACK + optimized kernels),
                     ``builtin`` (optimized, no delegate) or ``ref`` (reference kernels, integer
                     int8 softmax, slow). The integer-only check uses the same kernels.
    ``calibration``  representative images of the converter: files and folders (searched
                     recursively) separated by ``;``; at most :data:`CALIBRATION_MAX`, evenly
                     spaced in sorted order. Each is turned to the export's orientation,
                     centre-cropped and mirror-padded to the export size. Default: the bundled
                     images (``fqliscs_tf/assets/kodak``). An evaluated image equal to a
                     calibration image (or to its centre crop) is a ``ValueError``: calibrating
                     on the test images is unfair, so evaluating on Kodak needs another set,
                     e.g. ``calibration=../shared/data/train/bsds500_train200``.
    ``cache``        folder of the exports (default :data:`DEFAULT_CACHE`, relative to the
                     working directory).

A TFLite model has one input size (batch 1): the system exports lazily, once per image shape
it meets (Kodak: 768x512 and 512x768; minutes each at that size), into
``CACHE/PRESET-WxH-ACTIVATIONS-KEY``. ``KEY`` hashes the model folder's files, the shape, the
activations, the calibration files' bytes, the decoder calibration channel and the exporter
source (``fqliscs_tf/engine/tflite.py``; for an engine folder also
``fqliscs_tf/engine/to_qat.py``), so later runs reuse a folder only when nothing changed.
Every export is checked with :func:`~fqliscs_tf.engine.tflite.check_integer_only`;
``describe()["runtime"]["exports"]`` records per shape (``"WxH"``) the folder, whether it was
reused, the export time [s] and the checks (``--resume`` ignores ``runtime``); ``describe()``
names the model folder ``qat_dir`` or ``engine_dir``.

Channels: ``awgn`` and ``rayleigh`` (the engine's integer channels) and ``none``, without
channel parameters; others are a ``ValueError``. SNRs must lie on the int8 SNR grid
(``|SNR| <= 127 * snr_step_db``).
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from experiments.evaluate import DEFAULT_IMAGES, System, channel_label

__all__ = ["TFLiteSystem", "CALIBRATION_MAX", "DEFAULT_CACHE"]

CALIBRATION_MAX = 8
DEFAULT_CACHE = os.path.join("outputs", "tflite_cache")
_RECORD = "export.json"  # written last: its presence marks a finished export
_CHOICES = {"activations": ("int16", "int8"), "kernels": ("default", "builtin", "ref")}
_CHANNELS = ("awgn", "rayleigh", "none")


def _digest(paths):
    h = hashlib.sha1()
    for path in paths:
        h.update(os.path.basename(path).encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def _fit(image, height, width):
    """uint8 ``[h, w, 3]`` -> float32 ``[height, width, 3]`` in [0, 1]: transposed to the
    orientation of ``height x width``, centre-cropped, mirror-padded (symmetric)."""
    from fqliscs_tf.data import crop_to_size
    if (image.shape[0] - image.shape[1]) * (height - width) < 0:
        image = np.transpose(image, (1, 0, 2))
    image = crop_to_size(image, (min(height, image.shape[0]), min(width, image.shape[1])))
    ph, pw = height - image.shape[0], width - image.shape[1]
    image = np.pad(image, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)),
                   mode="symmetric")
    return image.astype(np.float32) / 255.0


def _read_info(arg):
    """``model.json`` of a QAT folder, or the equivalent fields of an engine folder's
    ``engine.json`` (family ``swin-int``)."""
    from fqliscs_tf.checkpoints import read_model_info
    from fqliscs_tf.engine.export import ENGINE_FILE
    from fqliscs_tf.presets import CodecConfig
    path = os.path.join(arg, ENGINE_FILE)
    if not os.path.isfile(path):
        return read_model_info(arg)  # FileNotFoundError naming a missing folder
    with open(path) as f:
        info = json.load(f)
    return {"family": info.get("family"), "config": info["config"], "quant": info["quant"],
            "channel_type": info.get("meta", {}).get("channel_type", "awgn"),
            "cbr": CodecConfig.from_dict(info["config"]).cbr}


class TFLiteSystem(System):
    """A QAT codec (or engine) folder exported to integer-only TFLite per image shape
    (module docstring)."""
    kind = "tflite"
    options = ("label", "activations", "forms", "kernels", "calibration", "cache")

    def __init__(self, arg, options):
        from fqliscs_tf.data import load_image
        from fqliscs_tf.presets import CodecConfig
        from fqliscs_tf.quant.fakequant import QuantSpec
        from fqliscs_tf.engine.tflite import XNNPACK_FORMS
        super().__init__(arg, options)
        for key, allowed in {**_CHOICES, "forms": ("default",) + tuple(XNNPACK_FORMS)}.items():
            value = self.opts.setdefault(key, allowed[0])
            if value not in allowed:
                raise ValueError(f"system {self.name!r}: option {key}={value!r} is not one of "
                                 f"{', '.join(allowed)}")
        self.activations, self.kernels = self.opts["activations"], self.opts["kernels"]
        self.forms = self.opts["forms"]
        if self.forms != "default" and self.activations != "int8":
            raise ValueError(f"system {self.name!r}: forms={self.forms!r} needs "
                             "activations=int8")
        self.info = _read_info(arg)
        self.engine = self.info.get("family") == "swin-int"
        if self.info.get("family") not in ("swin-qat", "swin-int"):
            raise ValueError(f"system {self.name!r}: {arg!r} holds a "
                             f"{self.info.get('family', 'swin')!r} model, not a QAT codec "
                             "folder (save_qat / fqliscs-train --qat export) or an integer "
                             "engine folder")
        self.config = CodecConfig.from_dict(self.info["config"])
        self.spec = QuantSpec.from_dict(self.info["quant"])
        self.cbr, self.size_multiple = float(self.info["cbr"]), int(self.config.size_multiple)
        trained = self.info.get("channel_type", "awgn")
        self.export_channel = trained if trained in _CHANNELS else "awgn"
        if self.label is None:
            mode = "16x8" if self.activations == "int16" else "int8"
            mode += "" if self.forms == "default" else f" {self.forms}"
            self.label = f"{self.config.name} TFLite {mode} ({channel_label(trained)}-trained)"
        self.cache = self.opts.get("cache") or DEFAULT_CACHE
        self.calibration = self._calibration_files(self.opts.get("calibration"))
        self._calib = [load_image(p) for p in self.calibration]
        self._model_digest = _digest(sorted(
            os.path.join(arg, n) for n in os.listdir(arg) if os.path.isfile(os.path.join(arg, n))))
        self._qat, self._folders, self._codecs, self._fair = None, {}, {}, set()
        self.exports = {}

    @property
    def _dir_key(self):
        return "engine_dir" if self.engine else "qat_dir"

    def _calibration_files(self, text):
        from fqliscs_tf.data import list_images
        if text is not None and not text.strip(" ;"):
            raise ValueError(f"system {self.name!r}: option calibration is empty; give image "
                             "files or folders separated by ';'")
        files = []
        for path in (DEFAULT_IMAGES if text is None else text).split(";"):
            path = path.strip()
            if os.path.isdir(path):
                try:
                    files += list_images(path)
                except ValueError as e:
                    raise ValueError(f"system {self.name!r}: calibration: {e}") from None
            elif os.path.isfile(path):
                files.append(path)
            elif path:
                raise ValueError(f"system {self.name!r}: calibration path {path!r} does not "
                                 "exist")
        if len(files) > CALIBRATION_MAX:
            files = [files[i] for i in np.linspace(0, len(files) - 1, CALIBRATION_MAX).round()
                     .astype(int)]
        return [os.path.abspath(f) for f in files]

    def check(self, channel, snr_list):
        if channel.type not in _CHANNELS or channel.kwargs:
            raise ValueError(
                f"system {self.name!r} cannot serve channel {channel.type!r}"
                f"{' with parameters ' + repr(channel.kwargs) if channel.kwargs else ''}; "
                f"TFLite runs the engine's integer channels: {', '.join(_CHANNELS)} "
                "(no channel parameters)")
        limit = 127 * self.spec.snr_step_db
        bad = [s for s in snr_list if abs(s) > limit]
        if bad:
            raise ValueError(f"system {self.name!r}: SNR {bad[0]:g} dB is outside the int8 SNR "
                             f"grid (+-{limit:g} dB)")

    def prepare(self, images):
        """Refuse test images (``[(name, uint8 [H, W, 3])]``) that are calibration images."""
        for name, image in images:
            self._check_fair(image, name)

    def _check_fair(self, image, name="an evaluated image"):
        from fqliscs_tf.data import crop_to_size
        key = (image.shape, hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest())
        if key in self._fair:
            return
        h, w = image.shape[:2]
        for path, cal in zip(self.calibration, self._calib):
            if cal.shape[0] >= h and cal.shape[1] >= w and np.array_equal(
                    crop_to_size(cal, (h, w)), image):
                raise ValueError(
                    f"system {self.name!r}: evaluated image {name!r} is the calibration image "
                    f"{path!r}; calibrating on the test images is unfair: pass "
                    "calibration=FILES_OR_FOLDERS with other images (e.g. a training set)")
        self._fair.add(key)

    def set_channel(self, channel):
        if channel != self.channel:
            self._codecs = {}
            super().set_channel(channel)
            self.randomized = channel.type != "none"

    def _export(self, height, width):
        """The export folder for ``height x width`` [pixels]: from the cache, else exported."""
        from fqliscs_tf.engine import tflite as tfl
        key = {"model": self._model_digest, "shape": [height, width],
               "activations": self.activations, "calibration": _digest(self.calibration),
               "channel": self.export_channel, "exporter": _digest([tfl.__file__])}
        if self.forms != "default":  # keys of default-form exports stay as they were
            key["forms"] = self.forms
        if self.engine:
            from fqliscs_tf.engine import to_qat
            key["converter"] = _digest([to_qat.__file__])
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        folder = os.path.join(self.cache, f"{self.config.name}-{width}x{height}-"
                                          f"{self.activations}-{digest}")
        record = os.path.join(folder, _RECORD)
        reused = os.path.isfile(record)
        if not reused:
            print(f"{self.name}: exporting TFLite models for {width}x{height} to {folder}",
                  file=sys.stderr, flush=True)
            if self._qat is None and self.engine:
                from fqliscs_tf.engine.to_qat import qat_from_engine
                self._qat = qat_from_engine(self.arg)
            elif self._qat is None:
                from fqliscs_tf.quant.qat import load_qat
                self._qat = load_qat(self.arg)
            os.makedirs(self.cache, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=".export-", dir=self.cache)
            os.chmod(tmp, 0o755)  # mkdtemp makes it private
            try:
                start = time.perf_counter()
                tfl.export_tflite(self._qat, tmp, height, width,
                                  images=[_fit(c, height, width) for c in self._calib],
                                  channel_type=self.export_channel,
                                  options=self._twin_options())
                with open(os.path.join(tmp, _RECORD), "w") as f:
                    json.dump({"key": key, "export_seconds": time.perf_counter() - start,
                               self._dir_key: os.path.abspath(self.arg),
                               "calibration": self.calibration}, f, indent=1)
                shutil.rmtree(folder, ignore_errors=True)  # an unfinished export
                os.rename(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        with open(record) as f:
            seconds = json.load(f)["export_seconds"]
        checks = {}
        for part in ("encoder", "decoder"):
            report = tfl.check_integer_only(os.path.join(folder, f"{part}.tflite"),
                                            resolver=self.kernels)
            checks[part] = {k: report[k] for k in ("ok", "violations", "tensor_dtypes")}
            if not report["ok"]:
                print(f"{self.name}: warning: {part}.tflite is not integer-only with the "
                      f"{self.kernels!r} kernels: {report['violations'][:3]}", file=sys.stderr)
        self.exports[f"{width}x{height}"] = {
            "folder": os.path.abspath(folder), "reused": reused, "export_seconds": seconds,
            "integer_only": all(c["ok"] for c in checks.values()), "kernels": self.kernels,
            "checks": checks}
        return folder

    def _twin_options(self):
        from fqliscs_tf.engine import tflite as tfl
        forms = {} if self.forms == "default" else tfl.XNNPACK_FORMS[self.forms]
        return tfl.TwinOptions(activations=self.activations, **forms)

    def _codec(self, height, width):
        from fqliscs_tf.engine.tflite import TFLiteCodec
        if (height, width) not in self._folders:
            self._folders[height, width] = self._export(height, width)
        if (height, width) not in self._codecs:
            self._codecs[height, width] = TFLiteCodec(
                self._folders[height, width], self.channel.type, op_resolver=self.kernels)
        return self._codecs[height, width]

    def transmit(self, image, snr_db, seed):
        """uint8 ``[H, W, 3]``, SNR [dB], seed -> ``{"x_hat": float32 [H, W, 3] in [0, 1]}``."""
        from fqliscs_tf.data import crop_to_size, fit_to_multiple
        self._check_fair(image)
        x = image[None].astype(np.float32) / 255.0
        if self.fit == "pad":
            x = fit_to_multiple(x, self.size_multiple, "pad")
        x_hat = self._codec(*x.shape[1:3])(x, snr_db, seed=(seed % (2 ** 31), 0))["x_hat"]
        if self.fit == "pad":
            x_hat = crop_to_size(x_hat, image.shape[:2])
        return {"x_hat": x_hat[0]}

    def describe(self):
        return {**super().describe(), self._dir_key: os.path.abspath(self.arg),
                "preset": self.config.name, "trained_channel": self.info.get("channel_type"),
                "activations": self.activations, "forms": self.forms, "kernels": self.kernels,
                "calibration": self.calibration, "export_channel": self.export_channel,
                "cache": os.path.abspath(self.cache), "runtime": {"exports": self.exports}}
