"""Export a quantization-aware codec to integer parameters for the integer engine.

:func:`export_integer_codec` reads a :class:`~fqliscs_tf.quant.qat.QATJSCC` and returns an
:class:`IntegerParams`: for every layer, in order, the int8 kernels (``[in, out]``, the
TF-MOT per-channel fake-quantized kernels divided by their scales), int32 biases (at the
accumulator scale), the activation scales of its quantization points, and the dyadic
multipliers (``(int32 multiplier, shift)``, TFLite convention) of every requantization,
resolved against the next layer's input grid. The nonlinear integer ops take their input
scale (stored as a float in ``meta``) and fold their integer constants from it when the
engine is traced.

Scales are computed exactly as the QAT graph computes them: in float32,
``absmax / (2**(bits-1) - 1)`` for activations and ``(max - min) / 254`` per channel for
kernels (TF's ``fake_quant_with_min_max_vars`` with ``narrow_range=True``).
"""
import json
import os

import numpy as np

from fqliscs_tf.arrays import load_folder_arrays, save_folder_arrays
from fqliscs_tf.heads import Head, OutputNorm
from fqliscs_tf.modnet import ChannelModNet
from fqliscs_tf.presets import CodecConfig
from fqliscs_tf.quant.fakequant import IMAGE_SCALE, QuantSpec
from fqliscs_tf.quant.fixedpoint import quantize_multiplier
from fqliscs_tf.swin import PatchEmbed, PatchMerging, PatchReverseMerging, SwinBlock

__all__ = ["IntegerParams", "export_integer_codec", "save_integer_codec", "load_integer_codec",
           "act_scale", "ENGINE_FILE", "ENGINE_ARRAYS"]

ENGINE_FILE = "engine.json"
ENGINE_ARRAYS = "engine.npz"


def act_scale(absmax, bits):
    """Activation grid step, float32 as in the QAT graph, returned as a Python float."""
    qmax = np.float32(2 ** (bits - 1) - 1)
    return float(np.maximum(np.float32(absmax), np.float32(1e-8)) / qmax)


def _f32(x):
    return float(np.float32(x))


class IntegerParams:
    """Integer parameters of an encoder or decoder: a list of ``(kind, arrays, scales)``.

    ``arrays``: dict of NumPy integer arrays (int8 kernels, int32 biases, int32 multipliers
    and shifts); ``scales``: dict of floats (activation scales, for the nonlinear ops and for
    documentation).
    """

    def __init__(self, config, spec, encoder, decoder, meta=None):
        self.config, self.spec = config, spec
        self.encoder, self.decoder = encoder, decoder
        self.meta = dict(meta or {})

    def arrays(self):
        """Every integer array (dyadic pairs split), encoder then decoder."""
        for part in (self.encoder, self.decoder):
            for _, arrays, _ in part:
                for value in arrays.values():
                    yield from (value if isinstance(value, tuple) else (value,))

    def num_bytes(self):
        """Bytes of all integer arrays (kernels, biases, multipliers, tables)."""
        return int(sum(np.asarray(a).nbytes for a in self.arrays()))

    def kernel_bytes(self):
        """Bytes of the int8 kernels alone."""
        return int(sum(a.nbytes for a in self.arrays() if np.asarray(a).dtype == np.int8))


# --------------------------------------------------------------------------- reading QAT
def _wrapper_kernels(wrapper):
    """``{path: (int8 kernel [in, out], float32 scales [out])}`` of a TF-MOT wrapper."""
    layer = wrapper.layer
    out = {}
    for path, (weight, quantizer, qvars) in zip(layer.kernels, wrapper._weight_vars):
        fq = quantizer(weight, False, weights=qvars).numpy()
        lo, hi = qvars["min_var"].numpy(), qvars["max_var"].numpy()
        scale = ((hi - lo) / np.float32(254.0)).astype(np.float32)
        safe = np.where(scale > 0, scale, np.float32(1.0))
        q = np.clip(np.round(fq / safe), -127, 127)
        q = np.where(scale > 0, q, 0).astype(np.int8)
        out[path] = (q.reshape(-1, q.shape[-1]), scale)
    return out


def _ranges(layer):
    return {name: float(r.absmax.numpy()) for name, r in layer.ranges.items()}


def _bias(dense, acc_scale):
    if not getattr(dense, "use_bias", False) or dense.bias is None:
        return np.zeros(len(acc_scale), np.int32)
    b = dense.bias.numpy().astype(np.float64)
    return np.clip(np.round(b / np.asarray(acc_scale, np.float64)), -2 ** 31, 2 ** 31 - 1
                   ).astype(np.int32)


def _sublayer(layer, path):
    obj = layer
    for part in filter(None, path.split(".")):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def _linear(layer, kernels, path, in_scale):
    """int8 kernel, int32 bias and per-channel accumulator scale of one Dense/Conv."""
    w, sw = kernels[path]
    acc = np.float64(in_scale) * sw.astype(np.float64)
    return w, _bias(_sublayer(layer, path), acc), acc


def _mult(real):
    m, s = quantize_multiplier(np.atleast_1d(np.asarray(real, np.float64)))
    return m.astype(np.int32), s.astype(np.int32)


# --------------------------------------------------------------------------- per layer
def _patch_embed(layer, k, spec, res_bits):
    w, b, acc = _linear(layer, k, "proj", _f32(IMAGE_SCALE))
    return {"w": w, "b": b}, {"acc": acc, "in": None}


def _norm_arrays(norm):
    return norm.gamma.numpy().astype(np.float64), norm.beta.numpy().astype(np.float64)


def _swin_block(layer, k, spec, res_bits):
    a, r8 = _ranges(layer), spec.act_bits
    s = {"in": act_scale(a["input"], res_bits), "mid": act_scale(a["mid"], res_bits)}
    for n in ("norm1", "q", "k", "v", "attn", "norm2", "fc1", "gelu"):
        s[n] = act_scale(a[n], r8)
    s["logit"] = float(np.float32(s["q"]) * np.float32(s["k"]))
    dim = layer.dim
    wqkv, bqkv, acc_qkv = _linear(layer, k, "qkv", s["norm1"])
    out_qkv = np.concatenate([np.full(dim, s["q"] / layer.scale), np.full(dim, s["k"]),
                              np.full(dim, s["v"])])
    wproj, bproj, acc_proj = _linear(layer, k, "proj", s["attn"])
    w1, b1, acc1 = _linear(layer, k, "fc1", s["norm2"])
    w2, b2, acc2 = _linear(layer, k, "fc2", s["gelu"])
    # The compact ((2 ws - 1)**2, heads) table, rounded to the logit grid (as QAT rounds the
    # gathered bias; gathering commutes with rounding).
    table = layer.relative_position_bias_table.numpy().astype(np.float64)
    arrays = {
        "wqkv": wqkv, "bqkv": bqkv, "m_qkv": _mult(acc_qkv / out_qkv),
        "rel_table": np.round(table / s["logit"]).astype(np.int32),
        "mask": np.array(round(-100.0 / s["logit"]), np.int64).clip(-2 ** 30, 0).astype(np.int32),
        "wproj": wproj, "bproj": bproj, "w1": w1, "b1": b1, "m_fc1": _mult(acc1 / s["fc1"]),
        "w2": w2, "b2": b2,
    }
    arrays["m_proj"] = _mult(acc_proj / s["mid"])
    arrays["m_res1"] = _mult(s["in"] / s["mid"])
    g1, be1 = _norm_arrays(layer.norm1)
    g2, be2 = _norm_arrays(layer.norm2)
    scales = {**s, "acc_fc2": acc2, "norm1_gamma": g1, "norm1_beta": be1, "norm2_gamma": g2,
              "norm2_beta": be2, "heads": layer.num_heads, "window": layer.window_size,
              "shift": layer.shift_size}
    return arrays, scales


def _merging(layer, k, spec, res_bits, path):
    a = _ranges(layer)
    s = {"in": act_scale(a["input"], res_bits), "norm": act_scale(a["norm"], spec.act_bits)}
    w, b, acc = _linear(layer, k, path, s["norm"])
    g, be = _norm_arrays(layer.norm)
    return {"w": w, "b": b}, {**s, "acc": acc, "norm_gamma": g, "norm_beta": be}


def _output_norm(layer, k, spec, res_bits):
    a = _ranges(layer)
    g, be = _norm_arrays(layer)
    return {}, {"in": act_scale(a["input"], res_bits), "out": act_scale(a["output"], spec.act_bits),
                "norm_gamma": g, "norm_beta": be}


def _head(layer, k, spec, res_bits):
    a = _ranges(layer)
    s = {"in": act_scale(a["input"], spec.act_bits), "out": act_scale(a["output"], spec.act_bits)}
    w, b, acc = _linear(layer, k, "", s["in"])
    return {"w": w, "b": b, "m_out": _mult(acc / s["out"])}, s


def _modnet(layer, k, spec, res_bits, x_scale):
    a, r8 = _ranges(layer), spec.act_bits
    snr_scale = _f32(spec.snr_step_db)
    arrays, scales = {}, {"in": None, "x": x_scale, "snr": snr_scale}
    prev = x_scale
    for i in range(layer.num_layers):
        bm = layer.layers_bm[i]
        ab = _ranges(bm)
        s1, s2, s3 = (act_scale(ab[n], r8) for n in ("fc1", "fc2", "fc3"))
        for name, (path, s_in, s_out) in {"fc1": ("fc1", snr_scale, s1), "fc2": ("fc2", s1, s2),
                                          "fc3": ("fc3", s2, s3)}.items():
            w, b, acc = _linear(layer, k, f"layers_bm.{i}.{path}", s_in)
            arrays[f"bm{i}_{name}_w"], arrays[f"bm{i}_{name}_b"] = w, b
            arrays[f"bm{i}_{name}_m"] = _mult(acc / s_out)
        scales[f"bm{i}_fc3"] = s3
        s_sm, s_mod = act_scale(a[f"sm{i}"], r8), act_scale(a[f"mod{i}"], r8)
        w, b, acc = _linear(layer, k, f"layers_sm.{i}", prev)
        arrays[f"sm{i}_w"], arrays[f"sm{i}_b"], arrays[f"sm{i}_m"] = w, b, _mult(acc / s_sm)
        arrays[f"mod{i}_m"] = _mult(s_sm * 2.0 ** -(r8 - 1) / s_mod)
        prev = s_mod
    s_out = act_scale(a["out"], r8)
    w, b, acc = _linear(layer, k, "out", prev)
    arrays["out_w"], arrays["out_b"], arrays["out_m"] = w, b, _mult(acc / s_out)
    scales.update(out=s_out, num_layers=layer.num_layers)
    return arrays, scales


_KINDS = [(SwinBlock, "swin_block", _swin_block), (PatchEmbed, "patch_embed", _patch_embed),
          (PatchMerging, "patch_merging", lambda *a: _merging(*a, "reduction")),
          (PatchReverseMerging, "patch_reverse_merging", lambda *a: _merging(*a, "increment")),
          (OutputNorm, "output_norm", _output_norm), (Head, "head", _head)]


def _export_part(model, spec):
    """Layers of one QAT Functional model, with output multipliers linked to the next
    layer's input grid."""
    res_bits = spec.residual_bits
    layers, prev_out = [], None
    for wrapper in model.layers:
        layer = getattr(wrapper, "layer", None)
        if layer is None:
            continue  # input layers
        kernels = _wrapper_kernels(wrapper)
        if isinstance(layer, ChannelModNet):
            kind, (arrays, scales) = "modnet", _modnet(layer, kernels, spec, res_bits, prev_out)
        else:
            for cls, kind, fn in _KINDS:
                if isinstance(layer, cls):
                    arrays, scales = fn(layer, kernels, spec, res_bits)
                    break
            else:
                raise ValueError(f"the integer engine has no kernel for layer {layer.name!r} "
                                 f"({type(layer).__name__})")
        if kind == "patch_reverse_merging":
            scales["factor"], scales["image_output"] = layer.factor, layer.image_output
        scales["name"] = layer.name
        layers.append([kind, arrays, scales])
        prev_out = scales.get("out")
    # Link: a layer whose output is float in QAT requantizes to the next layer's input grid.
    for i, (kind, arrays, scales) in enumerate(layers):
        nxt = layers[i + 1][2]["in"] if i + 1 < len(layers) else None
        if kind == "modnet":
            arrays["m_next"] = _mult(scales["x"] * 2.0 ** -(spec.act_bits - 1) / nxt)
            next_kind = layers[i + 1][0]
            scales["next_bits"] = spec.act_bits if next_kind == "head" else res_bits
        elif kind == "swin_block":
            arrays["m_fc2"] = _mult(scales.pop("acc_fc2") / nxt)
            arrays["m_res2"] = _mult(scales["mid"] / nxt)
        elif kind in ("patch_embed", "patch_merging", "patch_reverse_merging"):
            target = _f32(IMAGE_SCALE) if scales.get("image_output") else nxt
            arrays["m_out"] = _mult(scales.pop("acc") / target)
        elif kind == "output_norm":
            pass
        if kind in ("swin_block", "patch_embed", "patch_merging", "patch_reverse_merging",
                    "modnet") and nxt is None and not scales.get("image_output"):
            raise ValueError(f"layer {scales['name']!r} has no following layer to requantize to")
    for kind, arrays, scales in layers:  # JSON-friendly scales
        for key, value in list(scales.items()):
            if isinstance(value, np.ndarray):
                scales[key] = value.tolist()
    return [tuple(item) for item in layers]


def export_integer_codec(model, **meta):
    """Integer parameters of a :class:`~fqliscs_tf.quant.qat.QATJSCC` (built, calibrated).

    Returns
    -------
    IntegerParams
    """
    from fqliscs_tf.quant.qat import QATJSCC
    if not isinstance(model, QATJSCC):
        raise ValueError(f"export_integer_codec needs a QATJSCC, got {type(model).__name__}")
    if not model.built:
        model.build_for()
    encoder = _export_part(model.encoder, model.spec)
    decoder = _export_part(model.decoder, model.spec)
    return IntegerParams(model.config, model.spec, encoder, decoder, meta)


# --------------------------------------------------------------------------- files
def save_integer_codec(params, directory, base=None):
    """Write ``engine.json`` (config, spec, layer list with scales, meta) and ``engine.npz``
    (all integer arrays, packed by :mod:`fqliscs_tf.arrays`) to ``directory``.

    ``base``: another integer codec folder of the same preset, kept beside this one (e.g.
    the codec this one was fine-tuned from); the arrays are stored as differences from its
    arrays (mostly zeros after a short fine-tune), and loading needs it.
    """
    os.makedirs(directory, exist_ok=True)
    arrays, layout = {}, {}
    for part in ("encoder", "decoder"):
        layout[part] = []
        for i, (kind, arr, scales) in enumerate(getattr(params, part)):
            keys = []
            for key, value in arr.items():
                if isinstance(value, tuple):  # (multiplier, shift)
                    arrays[f"{part}/{i}/{key}/mult"], arrays[f"{part}/{i}/{key}/shift"] = value
                    keys.append([key, "dyadic"])
                else:
                    arrays[f"{part}/{i}/{key}"] = value
                    keys.append([key, "array"])
            layout[part].append({"kind": kind, "arrays": keys, "scales": scales})
    entry = save_folder_arrays(directory, ENGINE_FILE, ENGINE_ARRAYS, arrays, base=base)
    info = {"family": "swin-int", "config": params.config.to_dict(),
            "quant": params.spec.to_dict(), "layers": layout, "meta": params.meta}
    if entry:
        info["base"] = entry
    with open(os.path.join(directory, ENGINE_FILE), "w") as f:  # compact: ~30 % smaller
        json.dump(info, f, separators=(",", ":"))
    return directory


def load_integer_codec(directory):
    """Inverse of :func:`save_integer_codec` -> :class:`IntegerParams`."""
    path = os.path.join(directory, ENGINE_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"{directory!r} is not an integer codec folder (no {ENGINE_FILE})")
    with open(path) as f:
        info = json.load(f)
    data = load_folder_arrays(directory, ENGINE_FILE, ENGINE_ARRAYS)
    parts = {}
    for part in ("encoder", "decoder"):
        layers = []
        for i, entry in enumerate(info["layers"][part]):
            arr = {}
            for key, how in entry["arrays"]:
                if how == "dyadic":
                    arr[key] = (data[f"{part}/{i}/{key}/mult"], data[f"{part}/{i}/{key}/shift"])
                else:
                    arr[key] = data[f"{part}/{i}/{key}"]
            layers.append((entry["kind"], arr, entry["scales"]))
        parts[part] = layers
    return IntegerParams(CodecConfig.from_dict(info["config"]), QuantSpec.from_dict(info["quant"]),
                         parts["encoder"], parts["decoder"], info.get("meta"))
