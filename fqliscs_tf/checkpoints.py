"""Export and load trained codecs as a folder: ``model.json`` + ``weights.npz``.

``model.json`` holds the model family (``"swin"``, ``"deepjscc"``, ``"adjscc"``; a
missing key means ``"swin"``), the codec configuration, the channel it was trained on and
free-form metadata (training command, steps, wall time, results). ``weights.npz``
holds the weights in the model's deterministic variable order, with their names
for diagnostics, packed by :mod:`fqliscs_tf.arrays` (optionally as differences from the
weights of a ``base`` folder, e.g. the codec a fine-tune started from; ``model.json`` then
names that folder and its digest).
"""
import json
import os

import numpy as np

from .arrays import load_folder_arrays, save_folder_arrays
from .codec import JSCC
from .registry import build_model, family_of

__all__ = ["export_model", "load_model", "read_model_info", "model_folder"]

MODEL_FILE, WEIGHTS_FILE = "model.json", "weights.npz"


def export_model(model: JSCC, directory, weights_dtype="float32", base=None, **meta):
    """Write ``model`` to ``directory`` (created if needed). Returns the directory.

    ``weights_dtype="float16"`` halves the file for shipping; loading casts back to
    float32, so the loaded model computes in float32 with fp16-rounded weights. The arrays
    are packed losslessly (:mod:`fqliscs_tf.arrays`; about 15 % smaller for float16 weights).
    ``base``: another exported folder of the same preset and dtype, kept beside this one;
    the weights are stored as differences from its weights (a fine-tune of it: about 30 %
    smaller again), and loading needs it.
    """
    if weights_dtype not in ("float32", "float16"):
        raise ValueError(f"weights_dtype must be 'float32' or 'float16', got {weights_dtype!r}")
    os.makedirs(directory, exist_ok=True)
    info = {"format": "fqliscs_tf/1", "family": family_of(model),
            "config": model.config.to_dict(),
            "channel_type": model.channel_type, "channel_kwargs": model.channel_kwargs,
            "cbr": model.cbr, "weights_dtype": weights_dtype, "meta": meta}
    weights = [w.astype(weights_dtype) for w in model.get_weights()]
    arrays = {f"w{i:04d}": w for i, w in enumerate(weights)}
    arrays["names"] = np.array([w.name for w in model.weights])
    entry = save_folder_arrays(directory, MODEL_FILE, WEIGHTS_FILE, arrays, base=base)
    if entry:
        info["base"] = entry
    with open(os.path.join(directory, MODEL_FILE), "w") as f:
        json.dump(info, f, indent=2)
    return directory


def model_folder(path):
    """``path`` if it is an exported model folder (it holds ``model.json``), else the
    ``export/`` folder of the training run ``path``."""
    path = os.fspath(path)
    return path if os.path.isfile(os.path.join(path, MODEL_FILE)) else os.path.join(path, "export")


def read_model_info(directory):
    """The parsed ``model.json`` of an exported model."""
    path = os.path.join(directory, MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no exported model at {directory!r} (missing {MODEL_FILE})")
    with open(path) as f:
        return json.load(f)


def load_model(directory, channel_type=None, **channel_kwargs):
    """Rebuild an exported model; optionally put it on another channel.

    Raises ValueError when the weights do not match the configuration.
    """
    info = read_model_info(directory)
    if channel_type is None:
        channel_type = info["channel_type"]
        channel_kwargs = channel_kwargs or info.get("channel_kwargs", {})
    model = build_model(info.get("family", "swin"), info["config"], channel_type=channel_type,
                        channel_kwargs=channel_kwargs).build_for()
    data = load_folder_arrays(directory, MODEL_FILE, WEIGHTS_FILE)
    n = len([k for k in data if k.startswith("w")])
    weights = [data[f"w{i:04d}"].astype(np.float32) for i in range(n)]
    set_weights_checked(model, weights, source=directory)
    return model


def set_weights_checked(model, weights, source="checkpoint"):
    """``model.set_weights`` with an error that names the first mismatch."""
    expected = model.weights
    if len(expected) != len(weights):
        raise ValueError(f"{source} has {len(weights)} weight arrays but preset "
                         f"{model.config.name!r} needs {len(expected)}: it does not match the preset")
    for var, arr in zip(expected, weights):
        if tuple(var.shape) != tuple(arr.shape):
            raise ValueError(f"{source} does not match preset {model.config.name!r}: weight "
                             f"{var.name} has shape {tuple(arr.shape)}, expected {tuple(var.shape)}")
    model.set_weights(weights)


def set_matching_weights(model, weights, source="checkpoint"):
    """Start ``model`` from ``weights`` of the same preset with another latent width ``C``.

    The two weight lists correspond position by position; only the arrays that touch the
    latent width differ in shape (the encoder head's output, the decoder head's input).
    Arrays of equal shape are copied; a larger array of the same rank is cut to its leading
    slice along the differing axes (the first ``C`` latent channels: a pruned head); others
    keep their fresh initialisation.

    Returns ``(sliced, skipped)``: variable names.
    Raises ValueError when the weight counts differ (another preset or model family).
    """
    expected = model.weights
    if len(expected) != len(weights):
        raise ValueError(f"{source} has {len(weights)} weight arrays but preset "
                         f"{model.config.name!r} needs {len(expected)}: not the same preset")
    sliced, skipped = [], []
    for var, arr in zip(expected, weights):
        shape, src = tuple(var.shape), tuple(arr.shape)
        if shape == src:
            var.assign(arr)
        elif len(shape) == len(src) and all(d <= s for d, s in zip(shape, src)):
            var.assign(arr[tuple(slice(0, d) for d in shape)])
            sliced.append(var.name)
        else:
            skipped.append(var.name)
    return sliced, skipped
