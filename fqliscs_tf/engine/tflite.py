# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Integer-only TFLite export of a quantization-aware codec, its checker and runner.

:func:`export_tflite` writes ``encoder.tflite`` and ``decoder.tflite`` for one fixed image
size (batch 1; export once per size), int8 in and out:

* encoder: ``x`` ``[1, H, W, 3]`` int8 (``pixel - 128``: scale 1/255, zero point -128)
  and ``snr`` ``[1, 1]`` int8 (the SNR code, scale ``spec.snr_step_db``, zero point 0) ->
  ``[1, H/ds, W/ds, C]`` int8 latent (the encoder head's output grid, zero point 0);
* decoder: int8 received latent (the decoder head's input grid, zero point 0) and ``snr`` ->
  ``[1, H, W, 3]`` int8 image (``pixel - 128``).

Route: a TFLite-friendly *twin* of the QAT graph, traced as a ``tf.function`` with every
weight a constant: the same int8 kernels (TF-MOT's per-channel fake-quantized kernels, Dense
layers as 1x1 convolutions), with float ops the converter knows in place of the integer
training forms (``tf.nn.softmax``, ``tf.nn.gelu``, ``tf.sigmoid``, LayerNorm arithmetic).
Two modes (:class:`TwinOptions` ``activations``):

* ``"int16"`` (default; TFLite's 16x8 mode): int16 activations, int8 kernels, int64 biases.
  The twin clips every QAT quantization point to its range (the QAT model's saturation) and
  the converter calibrates the int16 scales. The converter offers only int16 or float I/O in
  this mode, so :func:`_int8_io` adds int8 -> int16 and int16 -> int8 QUANTIZE
  (requantization) ops at the model boundary: int8 I/O, integer kernels only.
* ``"int8"``: the QAT graph with its fake-quant nodes at the QAT ranges
  (``FakeQuantWithMinMaxArgs``), every activation int8 (``TFLITE_BUILTINS_INT8``). The
  16-bit residual stream becomes int8 (same absmax), and every intermediate of LayerNorm
  (``L2_NORMALIZATION`` output grid 1/128), attention and GELU is rounded to 8 bits: on the
  Kodak images it loses 0.2-0.8 dB against the engine (``docs/RESULTS.md`` section 7).

Other deviations from the integer engine (:mod:`fqliscs_tf.engine`): TFLite's softmax and
sigmoid kernels (LUTs / fixed point) instead of the engine's I-ViT shift forms, and GELU as
``x * sigmoid(a x)`` with ``a`` fitted to the engine's ShiftGELU (:class:`TwinOptions`); the
shifted-window mask saturates the int8 logits at ``min_logit - 8`` (a probe pass measures the
logit range) instead of adding -100.

XNNPACK (ai-edge-litert's default delegate) takes no int8 SOFTMAX, L2_NORMALIZATION, GELU,
RSQRT, EXP, DIV, ... (its int8 look-up-table ops are LOGISTIC, TANH and ELU), so the int8
model with the exact GELU (``gelu="erf"``) runs in 25 partitions (14 L2_NORMALIZATION,
5 SOFTMAX, 5 GELU in TFLite's own kernels between them); the default ``"engine"`` GELU is
LOGISTIC + MUL, which XNNPACK takes. Delegated forms (int8 only): ``layer_norm="mlp"``,
``gelu="engine"`` or ``"sigmoid"`` and ``softmax="mlp"`` or ``"elu"`` (all three: one
partition); with the ELU softmax (``exp(z) = elu(z) + 1``, one look-up table) and the
LayerNorm affine maps folded into the next Dense (``XNNPACK_FORMS["xnnpack_fold"]``, and
``"xnnpack_fit"`` with the fitted GELU slope) the int8 codec runs 2.2-3.2x faster than the
float codec in TF with XLA (``docs/RESULTS.md`` section 7), but like every all-int8 export it
is below the engine (8-bit intermediates); :meth:`TwinOptions.xnnpack`.

:func:`check_integer_only` proves a ``.tflite`` file integer-only (tensor dtypes, op list);
:class:`TFLiteCodec` runs encoder.tflite -> the engine's integer channel
(:mod:`phy.integer_channel`) -> decoder.tflite with ai-edge-litert.
"""
import dataclasses
import json
import math
import os

import numpy as np
import tensorflow as tf

from fqliscs_tf.engine.export import act_scale
from fqliscs_tf.heads import Head, OutputNorm
from fqliscs_tf.modnet import ChannelModNet
from fqliscs_tf.quant.fakequant import QuantSpec
from fqliscs_tf.quant.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from fqliscs_tf.swin import (PatchEmbed, PatchMerging, PatchReverseMerging, SwinBlock,
                             shifted_window_mask, window_partition, window_reverse)
from phy.integer_channel import get_int_channel, int_power_normalize

__all__ = ["TwinOptions", "kodak_crops", "export_tflite", "export_float_tflite",
           "check_integer_only", "xnnpack_partitions", "IntegerOnlyError", "TFLiteCodec",
           "MANIFEST_FILE", "FLOAT_RUNTIME_KERNELS", "FLOAT_PREPARE_KERNELS",
           "XNNPACK_FORMS", "fit_gelu_slope", "calibrated_twins"]

MANIFEST_FILE = "tflite.json"
_MASK_MARGIN = 8.0  # exp(-8) = 3.4e-4 < half an LSB of TFLite's int8 softmax (1/512)
_GELU_SIGMOID_SLOPE = 1.702  # ShiftGELU's published target x * sigmoid(1.702 x)

#: int8 kernels that compute in float at run time (``resolver`` where they are integer).
FLOAT_RUNTIME_KERNELS = {
    "SOFTMAX": ("optimized int8 kernel: float exp table and float 1/sum per row; the "
                "BUILTIN_REF resolver runs the gemmlowp fixed-point softmax", "ref"),
    "SQRT": ("int8 kernel dequantizes, std::sqrt in float, requantizes", None),
    "RANDOM_STANDARD_NORMAL": ("float random numbers", None),
    "RANDOM_UNIFORM": ("float random numbers", None),
    "MULTINOMIAL": ("float random numbers", None),
    "DEQUANTIZE": ("int8 -> float conversion", None),
}
#: int8 kernels whose look-up table is filled with float math once in Prepare (integer at run
#: time: one table read per element), like every kernel's multipliers.
FLOAT_PREPARE_KERNELS = {"GELU", "LOGISTIC", "TANH", "LOG", "EXP", "ELU", "HARD_SWISH",
                         "RSQRT"}


class IntegerOnlyError(ValueError):
    """A .tflite file is not integer-only (see :func:`check_integer_only`)."""


ACTIVATIONS = ("int8", "int16")
# Named all-int8 forms for the XNNPACK delegate (TwinOptions fields over activations="int8"):
# "xnnpack" is TwinOptions.xnnpack() (no L2_NORMALIZATION partitions), "xnnpack_all" makes
# every op delegated (one partition per model).
XNNPACK_FORMS = {
    "xnnpack": {"layer_norm": "mlp", "gelu": "erf"},  # as benchmarked (docs/RESULTS.md s. 7)
    "xnnpack_all": {"layer_norm": "mlp", "gelu": "sigmoid", "softmax": "mlp"},
    "xnnpack_elu": {"layer_norm": "mlp", "gelu": "sigmoid", "softmax": "elu"},
    "xnnpack_fold": {"layer_norm": "mlp", "gelu": "sigmoid", "softmax": "elu",
                     "fold_norm": True},
    # xnnpack_fold with the GELU slope fitted to the engine's (the same LOGISTIC + MUL ops)
    "xnnpack_fit": {"layer_norm": "mlp", "gelu": "engine", "softmax": "elu", "fold_norm": True},
}


@dataclasses.dataclass(frozen=True)
class TwinOptions:
    """How the TFLite twin graph is built.

    Attributes
    ----------
    activations : str
        ``"int16"`` (default): TFLite's 16x8 mode, int16 activations and the QAT's int8
        kernels (int16 scales calibrated, QAT ranges as clipping), int8 model I/O through
        QUANTIZE ops (:func:`_int8_io`). ``"int8"``: the QAT graph with its fake-quant
        nodes, every activation int8 (TFLITE_BUILTINS_INT8).
    gelu : str
        ``"engine"`` (default): the form closest to the engine's integer GELU: for the I-ViT
        ShiftGELU (``QuantSpec.gelu="shift"``) ``x * sigmoid(a x)`` (LOGISTIC + MUL) with
        ``a`` fitted per Swin block to the engine's GELU on the block's int8 input grid, each
        code weighted by how often the representative data hit it (:func:`fit_gelu_slope`;
        ``a`` is 1.55-1.65: the shift exponential flattens the published 1.702); for the
        I-BERT polynomial (``"poly"``) the exact GELU it approximates. The shipped codec is
        that sensitive to the slope (its QAT adapted to ShiftGELU) that ``"erf"`` costs up to
        0.1 dB and ``"sigmoid"`` 0.3 dB against the engine (``docs/RESULTS.md`` section 18).
        ``"erf"`` (TFLite GELU, exact), ``"tanh"`` (GELU, tanh approximation) or
        ``"sigmoid"`` (``x * sigmoid(1.702 x)``, ShiftGELU's published target; LOGISTIC +
        MUL, which XNNPACK takes in int8).
    layer_norm : str
        ``"auto"`` (``"l2"`` for int8, ``"mul"`` for int16), ``"l2"`` (MEAN, SUB,
        L2_NORMALIZATION, per-channel MUL/ADD), ``"moments"`` (MEAN, SQUARED_DIFFERENCE,
        RSQRT; int8 only), ``"mul"`` (MEAN, SUB, MUL, MEAN, RSQRT) or ``"mlp"`` (int8 only,
        XNNPACK-delegated ops: the sum of squares as a BATCH_MATMUL with int32 accumulation,
        its reciprocal square root as a small sigmoid network, CONV_2D 1 -> 8, LOGISTIC,
        CONV_2D 8 -> 1, fitted at export time to the measured range; :func:`_fit_sigmoid_mlp`).
    softmax : str
        ``"builtin"`` (TFLite SOFTMAX) or ``"mlp"`` (int8 only, XNNPACK-delegated ops:
        REDUCE_MAX, SUB, ``exp`` on ``[-8, 0]`` and ``1 / sum`` as sigmoid networks, SUM, MUL;
        the first normalisation is coarse, a second ``1 / sum`` per row, close to 1, is applied
        after ``attn @ v``) or ``"elu"`` (int8 only: as ``"mlp"``, with ``exp(z) = elu(z) + 1``
        for ``z <= 0``, one int8 ELU look-up table and an ADD instead of the exp network; the
        converter leaves ELU in float, :func:`_fuse_int8_elu` makes it the int8 kernel).
    mask : str
        ``"saturate"`` (int8: masked logits pinned at ``min_logit - 8``) or ``"add"``
        (-100 added, as the float model).
    clip_ranges : bool
        int16: clip every QAT quantization point to its range (the saturation of the QAT
        model and the engine, at 16-bit resolution); False leaves the int16 ranges to
        calibration alone (default True).
    fold_norm : bool
        ``layer_norm="mlp"`` only: fold each LayerNorm's affine map (``gamma``, ``beta``) into
        the Dense after it (kernel rows times ``gamma``, requantized per output channel;
        ``beta @ W`` into the bias), which removes a MUL and an ADD per LayerNorm; the
        final LayerNorm of the encoder keeps its own (default False).
    """
    activations: str = "int16"
    gelu: str = "engine"
    layer_norm: str = "auto"
    mask: str = "saturate"
    clip_ranges: bool = True
    softmax: str = "builtin"
    fold_norm: bool = False

    def __post_init__(self):
        for name, allowed in (("activations", ACTIVATIONS),
                              ("gelu", ("engine", "erf", "tanh", "sigmoid")),
                              ("layer_norm", ("auto", "l2", "moments", "mul", "mlp")),
                              ("mask", ("saturate", "add")),
                              ("softmax", ("builtin", "mlp", "elu"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.activations == "int16" and self.layer_norm in ("l2", "moments", "mlp"):
            raise ValueError(f"layer_norm {self.layer_norm!r} has no int16 TFLite kernels "
                             "(L2_NORMALIZATION, SQUARED_DIFFERENCE) or is int8-only; use "
                             "'mul' or 'auto'")
        if self.activations == "int16" and self.softmax != "builtin":
            raise ValueError(f"softmax {self.softmax!r} is int8-only; use 'builtin'")
        if self.fold_norm and self.layer_norm != "mlp":
            raise ValueError("fold_norm needs layer_norm='mlp' (int8 only)")

    @classmethod
    def xnnpack(cls, **overrides):
        """All-int8 twin for the XNNPACK delegate: ``layer_norm="mlp"`` (no L2_NORMALIZATION
        partitions), ``gelu="erf"`` (the form benchmarked). ``gelu="sigmoid", softmax="mlp"``
        as overrides make every op delegated (one partition)."""
        kwargs = dict(activations="int8", **XNNPACK_FORMS["xnnpack"])
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def norm_method(self):
        if self.layer_norm != "auto":
            return self.layer_norm
        return "l2" if self.activations == "int8" else "mul"


# =========================================================================== twin graph
def _kernels(wrapper):
    """``{path: (fake-quantized kernel, per-channel min, max)}`` of a TF-MOT wrapper."""
    out = {}
    for path, (weight, quantizer, qvars) in zip(wrapper.layer.kernels, wrapper._weight_vars):
        fq = quantizer(weight, False, weights=qvars).numpy()
        out[path] = (fq, qvars["min_var"].numpy(), qvars["max_var"].numpy())
    return out


def _sublayer(layer, path):
    obj = layer
    for part in filter(None, path.split(".")):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def _depth_to_space(x, factor):
    """``tf.nn.depth_to_space`` as RESHAPE + TRANSPOSE (ai-edge-litert 2.3 has no int8
    DEPTH_TO_SPACE kernel, op version 2)."""
    _, h, w, c = x.shape.as_list()
    c //= factor * factor
    x = tf.reshape(x, [-1, h, w, factor, factor, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, h * factor, w * factor, c])


def _space_to_depth(x, factor):
    """``tf.nn.space_to_depth`` as RESHAPE + TRANSPOSE (also quantizable to 16x8)."""
    _, h, w, c = x.shape.as_list()
    x = tf.reshape(x, [-1, h // factor, factor, w // factor, factor, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, h // factor, w // factor, factor * factor * c])


# Sigmoid networks (``layer_norm="mlp"``, ``softmax="mlp"``): XNNPACK's int8 ops have no
# reciprocal, rsqrt or exp, but LOGISTIC (a look-up table) and CONV_2D (int32 accumulation)
# make a small network y(u) = w . sigmoid(a u + b) + w0 on the 256 levels of an int8 input.
_MLP_ZMAX = 8.0         # grid of the hidden pre-activations a u + b: [-8, 8]
_SOFTMAX_ZMIN = -8.0    # exp input grid [-8, 0]: exp(-8) = 3.4e-4 < half an LSB of [0, 1]


def fit_gelu_slope(scale, method="shift", bits=8, counts=None):
    """Slope ``a`` of ``x * sigmoid(a x)`` closest to the engine's integer GELU.

    Least squares over the ``bits``-bit input grid ``q * scale``, ``|q| <= 2**(bits-1) - 1``,
    against :func:`~fqliscs_tf.quant.intops.int_gelu` (``method``, dequantized), each code
    weighted by ``counts`` (``[2**bits - 1]``, how often the data hit code ``q``, ``q`` from
    the lowest; None: uniform); ``a`` on a 0.001 grid in [1, 2.5]. For ShiftGELU it comes out
    at 1.55-1.65, below the 1.702 that the I-ViT paper approximates: the shift exponential's
    linear ``2**-f ~ 1 - f/2`` and ``log2 e ~ 1.4375`` make its gate flatter.

    Returns
    -------
    float
    """
    from fqliscs_tf.quant.intops import int_gelu
    qmax = 2 ** (bits - 1) - 1
    q = np.arange(-qmax, qmax + 1)
    with tf.init_scope():  # eagerly, also while a twin is traced
        y, y_scale = int_gelu(tf.constant(q, tf.int32), float(scale), method=method)
        target = y.numpy().astype(np.float64) * y_scale
    x = q * float(scale)
    weight = np.ones(q.size) if counts is None else np.asarray(counts, np.float64)
    if weight.shape != q.shape or not np.all(weight >= 0) or not weight.sum() > 0:
        raise ValueError(f"counts must be {q.size} non-negative numbers, not all 0")
    slopes = np.arange(1.0, 2.5005, 0.001)
    approx = x[None, :] / (1.0 + np.exp(-slopes[:, None] * x[None, :]))
    error = np.sum(weight[None, :] * (approx - target[None, :]) ** 2, axis=1)
    return round(float(slopes[np.argmin(error)]), 3)


def _fit_sigmoid_mlp(u, target, weight, centers, slope):
    """Least-squares fit of ``target(u) ~ w . sigmoid(a u + b) + w0`` on the int8 levels ``u``.

    One hidden unit per entry of ``centers`` (``a = slope / spacing``, ``b = -a * center``);
    the fit uses the hidden units as the int8 model computes them (pre-activations on the
    8-bit grid ``[-8, 8]``, LOGISTIC output on its 1/256 grid), so their rounding is part of
    the least-squares problem. Returns float64 ``(a, b, w, w0)``.
    """
    c = np.asarray(centers, np.float64)
    a = slope / np.abs(np.gradient(c))
    b = -a * c
    step = _MLP_ZMAX / 127.0
    z = np.clip(np.round(np.clip(u[:, None] * a + b, -_MLP_ZMAX, _MLP_ZMAX) / step), -127, 127)
    h = np.minimum(np.round(256.0 / (1.0 + np.exp(-z * step))), 255.0) / 256.0
    design = np.concatenate([h, np.ones((len(u), 1))], axis=1) * weight[:, None]
    coef = np.linalg.lstsq(design, target * weight, rcond=None)[0]
    return a, b, coef[:-1], float(coef[-1])


def _rsqrt_mlp(sumsq_max, floor):
    """``1 / sqrt(max(u, floor))`` on the grid ``[0, sumsq_max]`` (relative error), 8 units."""
    u = np.arange(256) * sumsq_max / 255.0
    target = 1.0 / np.sqrt(np.maximum(u, floor))
    weight = (u >= 0.5 * floor) / target
    centers = np.geomspace(max(floor, sumsq_max / 255.0), sumsq_max, 8)
    return _fit_sigmoid_mlp(u, target, weight, centers, -3.0), float(target.max())


def _exp_mlp():
    """``exp(u)`` on the grid ``[-8, 0]`` (absolute error, output grid [0, 1]), 5 units."""
    u = _SOFTMAX_ZMIN * (1.0 - np.arange(256) / 255.0)
    centers = _SOFTMAX_ZMIN * (1.0 - np.arange(5) / 4.0) ** 2
    return _fit_sigmoid_mlp(u, np.exp(u), np.ones_like(u), centers, 2.0)


def _reciprocal_mlp(grid_max, lo, hi):
    """``1 / clip(u, lo, hi)`` on the grid ``[0, grid_max]`` (absolute error), 6 units."""
    u = np.arange(256) * grid_max / 255.0
    weight = ((u >= 0.9 * lo) & (u <= 1.1 * hi)) + 1e-3
    return _fit_sigmoid_mlp(u, 1.0 / np.clip(u, lo, hi), weight, np.geomspace(lo, hi, 6),
                            -3.0)


class _Part:
    """Float twin of one QAT Functional model (encoder or decoder), layer by layer.

    ``quantize=True``: fake-quant nodes at every QAT quantization point (the int8 export).
    ``quantize=False``: none; with ``clip`` the points clip to their QAT ranges instead (the
    16x8 export), without it the graph is plain float (the float32 export). :meth:`measure`
    records the ranges the int8 export needs beyond the QAT's (:attr:`measured`).
    """

    def __init__(self, model, spec, options, quantize=True, clip=False, gelu_counts=None):
        self.spec, self.options, self.quantize, self.clip = spec, options, quantize, clip
        self.layers = []
        for wrapper in model.layers:
            layer = getattr(wrapper, "layer", None)
            if layer is None:
                continue
            if not isinstance(layer, (PatchEmbed, PatchMerging, PatchReverseMerging, SwinBlock,
                                      OutputNorm, ChannelModNet, Head)):
                raise ValueError(f"no TFLite twin for layer {layer.name!r} "
                                 f"({type(layer).__name__})")
            self.layers.append((layer, _kernels(wrapper)))
        # Every variable is read once, eagerly: the twin is traced with constants only.
        self._values = {v.ref(): v.numpy() for layer, _ in self.layers for v in layer.weights}
        self._rel_bias = {layer.name: layer.relative_position_bias().numpy()
                          for layer, _ in self.layers if isinstance(layer, SwinBlock)}
        # gelu "engine" with ShiftGELU: per Swin block, the int8 fc1 codes the probe pass saw
        # (weights of the slope fit) and the fitted slopes.
        self.gelu_counts = dict(gelu_counts or {})
        self.gelu_slopes = {}
        self.measured = {}  # name -> (min, max) from :meth:`measure`
        self.probe = None

    # ------------------------------------------------------------------ primitives
    def value(self, variable):
        return self._values[variable.ref()]

    def absmax(self, layer, name):
        """Activation range of a quantization point, as :class:`ActRange` uses it."""
        return max(float(self.value(layer.ranges[name].absmax)), 1e-8)

    def fq(self, x, absmax):
        """Symmetric 8-bit grid ``[-absmax, absmax]`` (narrow range), as ActRange; without
        ``quantize``, the clipping to ``[-absmax, absmax]`` alone (``clip``) or nothing."""
        if not self.quantize:
            return tf.clip_by_value(x, -absmax, absmax) if self.clip else x
        return tf.quantization.fake_quant_with_min_max_args(x, -absmax, absmax, num_bits=8,
                                                            narrow_range=True)

    def fq_range(self, x, lo, hi, narrow_range=False):
        if not self.quantize:
            return tf.clip_by_value(x, lo, hi) if self.clip else x
        return tf.quantization.fake_quant_with_min_max_args(x, lo, hi, num_bits=8,
                                                            narrow_range=narrow_range)

    def dense(self, x, layer, kernels, path, cols=slice(None), gain=1.0, pre=None):
        """Dense layer. With fake quantization (int8) a 1x1 convolution: the converter keeps
        per-channel int8 kernels of CONV_2D but fails on per-channel fake-quantized MatMul
        weights (it transposes them); otherwise a MatMul (FULLY_CONNECTED, per-channel int8
        kernels from the converter's own weight quantization, which reproduces the QAT grid).

        ``cols``/``gain``: only these output columns, times ``gain > 0`` (folded into the
        per-channel kernel scales: the int8 kernel is unchanged). ``pre``: None or the
        ``(scale, shift)`` of a LayerNorm's affine map to fold in (``fold_norm``): the kernel
        rows times ``scale``, requantized per output channel, ``shift @ W`` into the bias.
        """
        w, lo, hi = kernels[path]
        w, lo, hi = w[..., cols] * gain, lo[cols] * gain, hi[cols] * gain
        sub = _sublayer(layer, path)
        bias = (self.value(sub.bias)[cols] * gain if getattr(sub, "use_bias", False)
                else np.zeros(w.shape[-1], np.float32))
        if pre is not None:
            scale, shift = (np.asarray(v, np.float64) for v in pre)
            bias = bias + (shift @ w).astype(np.float32)
            w = (scale[:, None] * w).astype(np.float32)
            hi = np.maximum(np.abs(w).max(axis=0), 1e-12).astype(np.float32)
            lo = -hi
        shape = x.shape.as_list()
        if not self.quantize:  # 16x8 / float32: FULLY_CONNECTED (faster than 1x1 CONV_2D)
            y = tf.matmul(tf.reshape(x, [-1, shape[-1]]), tf.constant(w.astype(np.float32)))
            y = y + tf.constant(bias.astype(np.float32))
            return tf.reshape(y, shape[:-1] + [int(w.shape[-1])])
        # Per-channel fake quantization of the 4-D kernel (the converter cannot reshape a
        # per-axis quantized tensor).
        w = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            tf.constant(w.reshape((1, 1) + w.shape).astype(np.float32)),
            tf.constant(lo.astype(np.float32)), tf.constant(hi.astype(np.float32)),
            num_bits=8, narrow_range=True)
        y = tf.nn.conv2d(tf.reshape(x, [1, -1, 1, shape[-1]]), w, 1, "VALID")
        y = y + tf.constant(bias.astype(np.float32))
        return tf.reshape(y, shape[:-1] + [int(w.shape[-1])])

    def normalize(self, x, norm, name):
        """LayerNorm without its affine map: ``(n, scale, shift)`` with the real LayerNorm
        ``= n * scale + shift`` per channel.

        ``"l2"``: ``d = x - mean`` on a measured 8-bit grid (the fake-quant node also keeps the
        converter from fusing the square into SQUARED_DIFFERENCE, so it recognises
        ``tf.math.l2_normalize(d)`` as L2_NORMALIZATION, output grid 1/128), scale
        ``sqrt(C) gamma``. ``"moments"``: MEAN, SQUARED_DIFFERENCE, RSQRT; ``"mul"``: the same
        with ``d * d`` (no int16 SQUARED_DIFFERENCE kernel); scale ``gamma``.
        """
        gamma, beta = self.value(norm.gamma), self.value(norm.beta)
        c = int(x.shape[-1])
        method = self.options.norm_method
        if method == "mlp" and not self.quantize:
            method = "l2"  # float twin: the exact LayerNorm
        if method == "mlp":
            return self.normalize_mlp(x, name), gamma * math.sqrt(c), beta
        if method == "mul":  # d * rsqrt(mean(d * d)): no SQUARED_DIFFERENCE fusion (int16)
            d = x - tf.reduce_mean(x, axis=-1, keepdims=True)
            var = tf.reduce_mean(tf.multiply(d, d), axis=-1, keepdims=True)
            return d * tf.math.rsqrt(var + 1e-5), gamma, beta
        if method == "l2":
            n = tf.math.l2_normalize(self.centred(x, name), axis=-1)
            return n, gamma * math.sqrt(c), beta
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.math.squared_difference(x, mean), axis=-1, keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + 1e-5), gamma, beta

    def centred(self, x, name):
        """``x - mean(x)`` on its measured 8-bit grid."""
        return self.fq_observed(f"{name}/centred", x - tf.reduce_mean(x, axis=-1, keepdims=True))

    def fq_observed(self, name, x):
        """``x`` on the symmetric 8-bit grid of its measured range (probe pass: measured)."""
        self.observe(name, x)
        if self.probe is None and self.quantize:
            lo, hi = self.measured[name]
            x = self.fq(x, max(abs(lo), abs(hi), 1e-8))
        return x

    def normalize_mlp(self, x, name):
        """``l2_normalize(x - mean)`` from XNNPACK-delegated int8 ops.

        ``d = x - mean`` (MEAN, SUB) on a measured grid. Sums of squares: the centred rows in
        blocks of ``k`` tokens (``k`` = 8, 4, 2 or 1, whichever divides the token count) as a
        BATCH_MATMUL ``[T/k, k, C] x [T/k, C, k]`` (int32 accumulation, one 8-bit rounding on
        ``[0, max]``), whose diagonal MUL by the identity and SUM pick out (``T/k`` GEMMs
        instead of ``T`` one-by-one products; 1.2x faster codec at 256x256). ``rsqrt`` of the
        sums as a sigmoid network fitted to the measured range (0.1 % percentile to max), MUL.
        """
        d = self.centred(x, name)
        shape = d.shape.as_list()
        tokens = int(np.prod(shape[:-1]))
        k = next(b for b in (8, 4, 2, 1) if tokens % b == 0)
        rows = tf.reshape(d, [-1, k, shape[-1]])
        prod = tf.matmul(rows, rows, transpose_b=True)  # [T/k, k, k]
        if self.probe is not None:
            diagonal = tf.linalg.diag_part(prod)
            self.observe(f"{name}/sumsq", diagonal, low_percentile=0.1)
            sumsq = tf.reshape(diagonal, shape[:-1] + [1])
            return self.fq_observed(f"{name}/normalized", d * tf.math.rsqrt(sumsq))
        low, high = self.measured[f"{name}/sumsq"]
        prod = self.fq_range(prod, 0.0, high)
        if k > 1:
            prod = tf.reduce_sum(prod * tf.constant(np.eye(k, dtype=np.float32)), axis=-1)
        sumsq = tf.reshape(prod, shape[:-1] + [1])
        params, rmax = _rsqrt_mlp(high, max(low, high / 255.0, 1e-12))
        r = self.sigmoid_mlp(self.fq_range(sumsq, 0.0, high), params, 0.0, rmax)
        return self.fq_observed(f"{name}/normalized", d * r)

    def conv1x1(self, x, w, b):
        """``x [1, T, 1, Cin] @ w [Cin, Cout] + b`` as CONV_2D with a per-channel int8 kernel."""
        w = np.asarray(w, np.float64)
        hi = np.maximum(np.abs(w).max(axis=0), 1e-12)
        kernel = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            tf.constant(w.reshape((1, 1) + w.shape).astype(np.float32)),
            tf.constant((-hi).astype(np.float32)), tf.constant(hi.astype(np.float32)),
            num_bits=8, narrow_range=True)
        return tf.nn.conv2d(x, kernel, 1, "VALID") + tf.constant(np.asarray(b, np.float32))

    def sigmoid_mlp(self, x, params, lo, hi):
        """Elementwise ``w . sigmoid(a x + b) + w0`` (CONV_2D 1 -> K, LOGISTIC, CONV_2D K -> 1),
        output on the 8-bit grid ``[lo, hi]``."""
        a, b, w, w0 = params
        shape = x.shape.as_list()
        z = self.fq(self.conv1x1(tf.reshape(x, [1, -1, 1, 1]), a[None, :], b), _MLP_ZMAX)
        y = self.conv1x1(tf.sigmoid(z), w[:, None], [w0])
        return tf.reshape(self.fq_range(y, lo, hi), shape)

    def softmax(self, logits, name):
        """``(attn, row_scale)``: softmax over the last axis, ``row_scale`` None or a per-row
        factor for ``attn @ v``. ``softmax="mlp"`` (int8): ``z = logits - max`` on ``[-8, 0]``,
        ``e = exp(z)`` and ``r0 = 1 / sum(e)`` as sigmoid networks, ``attn = e * r0`` (coarse:
        ``sum(e)`` has 8 bits on ``[0, max sum]``), ``row_scale = 1 / sum(attn)`` on a narrow
        grid around 1 (also a sigmoid network). ``softmax="elu"``: the same with
        ``e = elu(z) + 1`` (ELU on the grid ``[-1, 0]``, then ADD onto ``[0, 1]``)."""
        if self.options.softmax == "builtin" or not self.quantize:
            return tf.nn.softmax(logits, axis=-1), None
        if self.probe is not None:
            attn = tf.nn.softmax(logits, axis=-1)
            z = tf.maximum(logits - tf.reduce_max(logits, axis=-1, keepdims=True), _SOFTMAX_ZMIN)
            self.observe(f"{name}/expsum", tf.reduce_sum(tf.exp(z), axis=-1, keepdims=True))
            return attn, None
        smax = max(self.measured[f"{name}/expsum"][1], 1.5)
        z = self.fq_range(logits - tf.reduce_max(logits, axis=-1, keepdims=True),
                          _SOFTMAX_ZMIN, 0.0)
        if self.options.softmax == "elu":
            e = self.fq_range(self.fq_range(tf.nn.elu(z), -1.0, 0.0) + 1.0, 0.0, 1.0)
        else:
            e = self.sigmoid_mlp(z, _exp_mlp(), 0.0, 1.0)
        total = self.fq_range(tf.reduce_sum(e, axis=-1, keepdims=True), 0.0, smax)
        attn = self.fq_range(e * self.sigmoid_mlp(total, _reciprocal_mlp(smax, 1.0, smax),
                                                  0.0, 1.0), 0.0, 1.25)
        total = self.fq_range(tf.reduce_sum(attn, axis=-1, keepdims=True), 0.0, 1.5)
        return attn, self.sigmoid_mlp(total, _reciprocal_mlp(1.5, 0.7, 1.4), 0.0, 1.0 / 0.7)

    def layer_norm(self, x, norm, out_absmax, name):
        """LayerNorm + affine on the 8-bit ``out_absmax`` grid (the QAT quantization point)."""
        n, scale, shift = self.normalize(x, norm, name)
        return self.fq(n * tf.constant(scale) + tf.constant(shift), out_absmax)

    def norm_for_dense(self, x, norm, out_absmax, name):
        """``(y, pre)``: a LayerNorm whose output feeds a Dense. With ``fold_norm`` the
        normalized rows and the affine map for :meth:`dense` (``pre``), else the LayerNorm
        output (:meth:`layer_norm`) and None."""
        if not (self.options.fold_norm and self.quantize):
            return self.layer_norm(x, norm, out_absmax, name), None
        n, scale, shift = self.normalize(x, norm, name)
        return n, (scale, shift)

    def gelu(self, x, scale, name):
        """GELU of ``x`` (block ``name``'s fc1 output, int8 grid ``scale``) in the form
        ``options.gelu`` names. ``"engine"`` with ShiftGELU fits the slope to the codes the
        probe pass (:meth:`measure`) counted, uniform weights without them."""
        form = self.options.gelu
        if form == "engine":
            form = "fitted" if self.spec.gelu == "shift" else "erf"
        if form == "fitted":
            if self.probe is not None:  # count the codes; slope from uniform weights
                codes = np.clip(np.round(np.asarray(x) / scale), -127, 127).astype(np.int64)
                counts = self.gelu_counts.setdefault(name, np.zeros(255))
                counts += np.bincount(codes.ravel() + 127, minlength=255)
                return x * tf.sigmoid(fit_gelu_slope(scale, self.spec.gelu) * x)
            if name not in self.gelu_slopes:
                self.gelu_slopes[name] = fit_gelu_slope(scale, self.spec.gelu,
                                                        counts=self.gelu_counts.get(name))
            return x * tf.sigmoid(self.gelu_slopes[name] * x)
        if form == "sigmoid":
            return x * tf.sigmoid(_GELU_SIGMOID_SLOPE * x)
        return tf.nn.gelu(x, approximate=form == "tanh")

    # ------------------------------------------------------------------ layers
    def patch_embed(self, x, layer, k):
        x = self.fq_range(x, 0.0, 1.0)  # the int8 image: pixel / 255
        w, lo, hi = k["proj"]
        w = tf.constant(w)
        if self.quantize:
            w = tf.quantization.fake_quant_with_min_max_vars_per_channel(
                w, tf.constant(lo), tf.constant(hi), num_bits=8, narrow_range=True)
        y = tf.nn.conv2d(x, w, layer.patch_size, "VALID")
        return y + tf.constant(self.value(layer.proj.bias))

    def attention(self, windows, layer, k, mask, name, pre=None):
        r = lambda n: self.absmax(layer, n)  # noqa: E731
        n, heads, hd = layer.window_size ** 2, layer.num_heads, layer.head_dim
        dim = layer.dim

        def project(i, name, gain=1.0):
            # q, k and v as three convolutions, each straight onto its own grid: one qkv
            # tensor would get a single scale (the converter propagates the q/k/v ranges back
            # through the slicing), clipping the widest of the three. q's 1/sqrt(hd) is folded
            # into its per-channel kernel scales, which keeps the int8 kernel unchanged.
            y = self.fq(self.dense(windows, layer, k, "qkv", slice(i * dim, (i + 1) * dim),
                                   gain, pre), r(name))
            return tf.transpose(tf.reshape(y, [-1, n, heads, hd]), [0, 2, 1, 3])

        q, kk, v = project(0, "q", layer.scale), project(1, "k"), project(2, "v")
        s_logit = act_scale(r("q"), 8) * act_scale(r("k"), 8)
        bias = np.round(self._rel_bias[layer.name] / s_logit) * s_logit
        logits = tf.matmul(q, kk, transpose_b=True) + tf.constant(bias.astype(np.float32))[None]
        if mask is not None:
            num_windows = int(mask.shape[0])
            logits = tf.reshape(logits, [-1, num_windows, heads, n, n])
            self.observe(f"{name}/logits", logits)
            if self.options.mask == "saturate" and self.quantize and self.probe is None:
                lo, hi = self.measured[f"{name}/logits"]
                logits = self.fq_range(logits + tf.constant(mask)[None, :, None],
                                       lo - _MASK_MARGIN, hi)
            else:
                logits = logits + tf.constant(mask)[None, :, None]
            logits = tf.reshape(logits, [-1, heads, n, n])
        attn, row_scale = self.softmax(logits, name)
        out = tf.matmul(attn, v)
        if row_scale is not None:  # attn's rows sum to 1 +- 15 %: their exact 1 / sum
            out = self.fq(out, 1.3 * r("attn")) * row_scale
        out = tf.transpose(out, [0, 2, 1, 3])
        out = self.fq(tf.reshape(out, [-1, n, layer.dim]), r("attn"))
        return self.branch_output(self.dense(out, layer, k, "proj"), f"{name}/proj")

    def swin_block(self, x, layer, k):
        r = lambda n: self.absmax(layer, n)  # noqa: E731
        _, h, w, _ = x.shape.as_list()
        ws, s = layer.window_size, layer.shift_size
        x = self.residual(x, layer, "input")
        y, pre = self.norm_for_dense(x, layer.norm1, r("norm1"), f"{layer.name}/norm1")
        mask = None
        if s > 0:
            y = tf.roll(y, shift=[-s, -s], axis=[1, 2])
            with tf.init_scope():  # a constant, computed eagerly
                mask = shifted_window_mask(h, w, ws, s).numpy()
        y = self.attention(window_partition(y, ws), layer, k, mask, layer.name, pre)
        y = window_reverse(y, ws, 1, h, w)
        if s > 0:
            y = tf.roll(y, shift=[s, s], axis=[1, 2])
        x = self.residual(x + y, layer, "mid")
        y, pre = self.norm_for_dense(x, layer.norm2, r("norm2"), f"{layer.name}/norm2")
        hidden = self.fq(self.dense(y, layer, k, "fc1", pre=pre), r("fc1"))
        g = self.fq(self.gelu(hidden, act_scale(r("fc1"), 8), layer.name), r("gelu"))
        return x + self.branch_output(self.dense(g, layer, k, "fc2"), f"{layer.name}/fc2")

    def branch_output(self, y, name):
        """The attention or MLP branch output before its residual add (int8): on the
        symmetric grid of the range the probe pass measured. The QAT model has no
        quantization point there (its residual sum is 16-bit); left to the converter's own
        calibration, these grids came out too narrow for other images (the shipped codec at
        256x256: -1.2 / -2.8 dB against the engine at 1 / 13 dB SNR, -0.2 / -0.6 dB with
        them, docs/RESULTS.md section 7)."""
        return self.fq_observed(name, y)

    def patch_merging(self, x, layer, k):
        x = _space_to_depth(self.residual(x, layer, "input"), 2)
        y, pre = self.norm_for_dense(x, layer.norm, self.absmax(layer, "norm"), layer.name)
        return self.dense(y, layer, k, "reduction", pre=pre)

    def patch_reverse_merging(self, x, layer, k):
        x = self.residual(x, layer, "input")
        y, pre = self.norm_for_dense(x, layer.norm, self.absmax(layer, "norm"), layer.name)
        y = _depth_to_space(self.dense(y, layer, k, "increment", pre=pre), layer.factor)
        if layer.image_output:
            y = self.fq_range(y, 0.0, 1.0)
        return y

    def output_norm(self, x, layer, k):
        x = self.residual(x, layer, "input")
        return self.layer_norm(x, layer, self.absmax(layer, "output"), layer.name)

    def head(self, x, layer, k):
        y = self.dense(self.fq(x, self.absmax(layer, "input")), layer, k, "")
        return self.fq(y, self.absmax(layer, "output"))

    def modnet(self, x, snr, layer, k):
        temp = x
        for i in range(layer.num_layers):
            bm = layer.layers_bm[i]
            h = self.fq(tf.nn.relu(self.dense(snr, layer, k, f"layers_bm.{i}.fc1")),
                        self.absmax(bm, "fc1"))
            h = self.fq(tf.nn.relu(self.dense(h, layer, k, f"layers_bm.{i}.fc2")),
                        self.absmax(bm, "fc2"))
            z = self.fq(self.dense(h, layer, k, f"layers_bm.{i}.fc3"), self.absmax(bm, "fc3"))
            gate = tf.sigmoid(z)
            temp = self.fq(self.dense(temp, layer, k, f"layers_sm.{i}"),
                           self.absmax(layer, f"sm{i}"))
            temp = self.fq(temp * gate[:, None, None, :], self.absmax(layer, f"mod{i}"))
        z = self.fq(self.dense(temp, layer, k, "out"), self.absmax(layer, "out"))
        return x * tf.sigmoid(z)

    # ------------------------------------------------------------------ forward
    def __call__(self, x, snr):
        for layer, k in self.layers:
            if isinstance(layer, ChannelModNet):
                x = self.modnet(x, snr, layer, k)
            elif isinstance(layer, SwinBlock):
                x = self.swin_block(x, layer, k)
            elif isinstance(layer, PatchEmbed):
                x = self.patch_embed(x, layer, k)
            elif isinstance(layer, PatchMerging):
                x = self.patch_merging(x, layer, k)
            elif isinstance(layer, PatchReverseMerging):
                x = self.patch_reverse_merging(x, layer, k)
            elif isinstance(layer, OutputNorm):
                x = self.output_norm(x, layer, k)
            else:
                x = self.head(x, layer, k)
        return x

    def snr_input(self, snr):
        """The SNR [dB] on its int8 grid (input scale ``snr_step_db``, zero point 0)."""
        a = 127 * self.spec.snr_step_db
        return self.fq_range(snr, -a, a, narrow_range=True)

    def first_absmax(self):
        """Input range of a decoder (its head's input grid)."""
        layer = self.layers[0][0]
        return self.absmax(layer, "input")

    def last_absmax(self):
        """Output range of an encoder (its head's output grid)."""
        return self.absmax(self.layers[-1][0], "output")

    def measure(self, calls):
        """Run the twin (float, eagerly) over ``calls`` (a list of ``(x, snr)`` tensors) and
        record the ranges the QAT model does not track: centred LayerNorm inputs and the
        logits of shifted-window blocks; with the ``"engine"`` GELU, count each Swin block's
        fc1 codes (:attr:`gelu_counts`). Returns the ``{name: (min, max)}`` dict."""
        self.probe, self.gelu_counts, self.gelu_slopes = {}, {}, {}
        try:
            for x, snr in calls:
                self(x, self.snr_input(snr))
            self.measured = self.probe
        finally:
            self.probe = None
        return self.measured

    def residual(self, x, layer, name):
        """A point of the QAT's 16-bit residual stream: an 8-bit grid with the same absmax
        (int8), its clipping (int16)."""
        return self.fq(x, self.absmax(layer, name))

    def observe(self, name, x, low_percentile=None):
        """Probe pass: widen the range of ``name`` to ``x``'s minimum (or its
        ``low_percentile`` %) and maximum."""
        if self.probe is not None:
            lo = (float(tf.reduce_min(x)) if low_percentile is None
                  else float(np.percentile(np.asarray(x), low_percentile)))
            hi = float(tf.reduce_max(x))
            old = self.probe.get(name, (lo, hi))
            self.probe[name] = (min(lo, old[0]), max(hi, old[1]))


# =========================================================================== export
def kodak_crops(height, width, count=4):
    """Centre crops ``height x width`` (float32 in [0, 1]) of the first ``count`` bundled
    Kodak images (``fqliscs_tf/assets/kodak``), the default calibration set."""
    from fqliscs_tf.data import centre_crops, list_images
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "assets", "kodak")
    return centre_crops(sorted(list_images(folder))[:count], height, width)


def _as_batches(images, height, width):
    out = []
    for img in images:
        img = np.asarray(img, np.float32)
        img = img.reshape((-1,) + img.shape[-3:])
        if img.shape[1:] != (height, width, 3):
            raise ValueError(f"calibration images must be {height}x{width}x3, got {img.shape[1:]}")
        out.extend(np.round(np.clip(im, 0.0, 1.0) * 255.0)[None] / 255.0 for im in img)
    if not out:
        raise ValueError("export_tflite needs at least one calibration image")
    return [x.astype(np.float32) for x in out]


class _Receiver:
    """The engine's channel between the two TFLite models: int8 latent -> unit-power int
    I/Q symbols -> integer AWGN / Rayleigh (or none) -> int8 decoder input
    (received symbols requantized onto the decoder head's input grid)."""

    def __init__(self, spec, dec_in_scale, channel_type="awgn", jit_compile=True):
        self.spec = spec
        self.rx_mult = quantize_multiplier(spec.symbol_scale / dec_in_scale)
        self.channel_type = channel_type
        self.channel = None if channel_type == "none" else get_int_channel(
            channel_type, spec.symbol_scale, spec.snr_step_db)
        # XLA or not as the engine (IntegerCodec(jit_compile=...)): the stateless random
        # integers of the channel differ between XLA and graph mode.
        self._link = tf.function(self._integer_link, jit_compile=jit_compile,
                                 reduce_retracing=True)

    def __call__(self, latent, snr_q, seed=(0, 0)):
        """latent ``[B, h, w, C]`` int, snr_q ``[B]`` int -> dict of int arrays
        (``received`` int8 ``[B, h, w, C]``, symbols and received symbols ``[B, k]``)."""
        out = self._link(tf.constant(np.asarray(latent, np.int32)),
                         tf.constant(np.asarray(snr_q, np.int32).reshape(-1)),
                         tf.constant(np.asarray(seed, np.int32).reshape(2)))
        out = {k: v.numpy() for k, v in out.items()}
        out["received"] = out["received"].astype(np.int8)
        return out

    def _integer_link(self, latent, snr_q, seed):
        re, im = int_power_normalize(latent, self.spec.symbol_scale, self.spec.symbol_bits)
        re_hat, im_hat = re, im
        if self.channel is not None:
            re_hat, im_hat = self.channel(re, im, snr_q, seed)
        y = tf.reshape(tf.stack([re_hat, im_hat], axis=-1), tf.shape(latent))
        y = multiply_by_quantized_multiplier(y, self.rx_mult[0], self.rx_mult[1])
        qmax = 2 ** (self.spec.act_bits - 1) - 1
        return {"received": tf.clip_by_value(y, -qmax, qmax), "symbols_re": re,
                "symbols_im": im, "symbols_hat_re": re_hat, "symbols_hat_im": im_hat}


def _quantize_opcode(model):
    from tensorflow.lite.python import schema_py_generated as schema
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.QUANTIZE:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _int8_io(content, input_params, output_params):
    """Give a 16x8 model int8 inputs and outputs (the converter only offers int16 or float
    I/O in 16x8 mode): a QUANTIZE (int8 -> int16 requantization) op after each input and
    an int16 -> int8 QUANTIZE before each output, both integer kernels.

    ``input_params``: ``{name: (scale, zero_point)}`` of the new int8 inputs, matched by
    name (``"snr"`` or ``"x"``); ``output_params``: ``(scale, zero_point)`` of the output.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    opcode = _quantize_opcode(model)

    def int8_tensor(like, params, name):
        t = schema.TensorT()
        t.shape, t.name, t.buffer = np.array(like.shape, np.int32), name, 0
        t.type = schema.TensorType.INT8
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale = np.array([params[0]], np.float32)
        t.quantization.zeroPoint = np.array([params[1]], np.int64)
        graph.tensors.append(t)
        return len(graph.tensors) - 1

    def quantize_op(source, target):
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = opcode, np.array([source], np.int32), \
            np.array([target], np.int32)
        op.builtinOptionsType = schema.BuiltinOptions.QuantizeOptions
        op.builtinOptions = schema.QuantizeOptionsT()
        return op

    remap = {}
    for pos, index in enumerate(graph.inputs):
        name = graph.tensors[index].name
        name = name.decode() if isinstance(name, bytes) else name
        params = input_params["snr" if "snr" in name else "x"]
        new = int8_tensor(graph.tensors[index], params, f"{name}_int8")
        graph.operators.insert(0, quantize_op(new, index))
        graph.inputs[pos] = remap[int(index)] = new
    for pos, index in enumerate(graph.outputs):
        new = int8_tensor(graph.tensors[index], output_params, "output_int8")
        graph.operators.append(quantize_op(index, new))
        graph.outputs[pos] = remap[int(index)] = new
    for signature in model.signatureDefs or []:
        for item in list(signature.inputs or []) + list(signature.outputs or []):
            item.tensorIndex = remap.get(item.tensorIndex, item.tensorIndex)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _fuse_int8_elu(content):
    """Make every ``DEQUANTIZE -> ELU -> QUANTIZE`` chain of an int8 model one int8 ELU.

    TFLite's ELU kernel and XNNPACK take int8 (a look-up table), but the converter's quantizer
    leaves ELU in float between a DEQUANTIZE and a QUANTIZE. The ELU is rewired from the
    int8 tensor before the DEQUANTIZE to the int8 tensor after the QUANTIZE, the two
    conversions and the float tensors between them are removed. Chains where a float tensor
    has other consumers are left as they are (:func:`check_integer_only` reports them).
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    op_kind = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    kinds = schema.BuiltinOperator
    changed = False
    for index, graph in enumerate(model.subgraphs):
        ops = graph.operators or []
        producer = {int(t): i for i, op in enumerate(ops) for t in op.outputs}
        consumers = {}
        for i, op in enumerate(ops):
            for t in op.inputs:
                consumers.setdefault(int(t), []).append(i)
        graph_io = {int(t) for t in list(graph.inputs) + list(graph.outputs)}
        drop = set()
        for op in ops:
            if op_kind[op.opcodeIndex] != kinds.ELU:
                continue
            src, dst = int(op.inputs[0]), int(op.outputs[0])
            dq, q = producer.get(src), consumers.get(dst, [])
            if (dq is None or op_kind[ops[dq].opcodeIndex] != kinds.DEQUANTIZE
                    or len(consumers[src]) != 1 or len(q) != 1
                    or op_kind[ops[q[0]].opcodeIndex] != kinds.QUANTIZE
                    or {src, dst} & graph_io):
                continue
            op.inputs = np.array([ops[dq].inputs[0]], np.int32)
            op.outputs = np.array([ops[q[0]].outputs[0]], np.int32)
            drop |= {dq, q[0]}
        if drop:
            graph.operators = [op for i, op in enumerate(ops) if i not in drop]
            _drop_unused_tensors(model, index)
            changed = True
    if not changed:
        return content
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _drop_unused_tensors(model, index):
    """Remove the tensors no operator or graph I/O of subgraph ``index`` refers to, and
    renumber the rest."""
    graph = model.subgraphs[index]
    used = {int(t) for op in graph.operators for t in list(op.inputs) + list(op.outputs)}
    used |= {int(t) for t in list(graph.inputs) + list(graph.outputs)}
    used.discard(-1)
    keep = sorted(used)
    remap = {old: new for new, old in enumerate(keep)}
    graph.tensors = [graph.tensors[i] for i in keep]

    def renumber(indices):
        return np.array([remap.get(int(t), -1) if int(t) >= 0 else -1 for t in indices],
                        np.int32)

    for op in graph.operators:
        op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
    graph.inputs, graph.outputs = renumber(graph.inputs), renumber(graph.outputs)
    for signature in model.signatureDefs or []:
        if signature.subgraphIndex == index:
            for item in list(signature.inputs or []) + list(signature.outputs or []):
                item.tensorIndex = remap[item.tensorIndex]


def _convert(part, first_shape, representative, mode, io=None):
    """Trace ``part`` at a fixed shape and convert it.

    ``mode``: ``"int8"`` (QAT fake-quant twin, TFLITE_BUILTINS_INT8, int8 I/O), ``"int16"``
    (float twin, 16x8: int16 activations and int8 kernels, int8 I/O through
    :func:`_int8_io` with ``io = (input_params, output_params)``) or ``"float32"``.
    """
    specs = (tf.TensorSpec(first_shape, tf.float32, name="x"),
             tf.TensorSpec([1, 1], tf.float32, name="snr"))

    @tf.function(input_signature=specs, autograph=False)
    def forward(x, snr):
        return part(x, part.snr_input(snr))

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [forward.get_concrete_function()], forward)
    if mode == "float32":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x, s] for x, s in representative)
    if mode == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        return _fuse_int8_elu(converter.convert())
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int16
    return _int8_io(converter.convert(), *io)


def _snr_grid(snr_db, spec):
    codes = np.round(np.asarray(snr_db, np.float64).reshape(-1) / spec.snr_step_db)
    if np.any(np.abs(codes) > 127):
        raise ValueError(f"SNR {snr_db!r} dB is outside the int8 SNR grid")
    return codes.astype(np.int32)


def _snr_grid_db(snr_db, spec):
    """``snr_db`` rounded to the int8 SNR grid, in dB (float32)."""
    return (_snr_grid(snr_db, spec) * spec.snr_step_db).astype(np.float32)


def _range_probes(calls, lo_x, hi_x, snr_limit):
    """Two extra representative calls (16x8 mode) that pin the int16 input ranges to the
    whole int8 input grids: the first input with one element at each end of ``[lo_x, hi_x]``,
    at the two ends of the SNR grid."""
    x = calls[0][0].copy()
    flat = x.reshape(-1)
    flat[0], flat[1] = lo_x, hi_x
    return [(x, np.full([1, 1], v, np.float32)) for v in (-snr_limit, snr_limit)]


def calibrated_twins(qat_model, options, images, snr_db=(1.0, 7.0, 13.0), channel_type="awgn",
                     seed=0, twin=None):
    """The int8 twins of a QAT codec's encoder and decoder, their ranges measured.

    The QAT twin (with its fake-quant nodes) makes the representative data of every export
    mode. Its probe pass (:meth:`_Part.measure`) runs the encoder on ``images`` (``[1, H, W,
    3]`` arrays), the engine's integer channel (seeds ``(seed, i)``) and the decoder on the
    received latents.

    Parameters
    ----------
    snr_db : sequence of float
        Representative SNRs [dB], rounded to the int8 SNR grid (ValueError outside it).
    twin : None or a :class:`_Part` subclass (default :class:`_Part`).

    Returns
    -------
    ``(encoder, decoder, enc_calls, dec_calls)``: the two twins and their representative
    ``(x, snr)`` inputs.
    """
    twin = twin or _Part
    spec = qat_model.spec
    snrs = [np.full([1, 1], s, np.float32) for s in _snr_grid_db(snr_db, spec)]
    qtwin = dataclasses.replace(options, activations="int8",
                                layer_norm="l2" if options.norm_method == "mul"
                                else options.layer_norm)
    encoder = twin(qat_model.encoder, spec, qtwin)
    decoder = twin(qat_model.decoder, spec, qtwin)
    enc_calls = [(img, snrs[i % len(snrs)]) for i, img in enumerate(images)]
    enc_calls += [(img, s) for img in images[:1] for s in snrs]
    encoder.measure([(tf.constant(x), tf.constant(s)) for x, s in enc_calls])
    s_latent = act_scale(encoder.last_absmax(), 8)
    s_dec_in = act_scale(decoder.first_absmax(), 8)
    receiver = _Receiver(spec, s_dec_in, channel_type)
    dec_calls = []
    for i, (x, s) in enumerate(enc_calls):
        latent = encoder(tf.constant(x), encoder.snr_input(tf.constant(s))).numpy()
        q = np.clip(np.round(latent / s_latent), -127, 127).astype(np.int32)
        code = int(round(float(s[0, 0]) / spec.snr_step_db))
        rx = receiver(q, [code], (seed, i))["received"]
        dec_calls.append((rx.astype(np.float32) * np.float32(s_dec_in), s))
    decoder.measure([(tf.constant(x), tf.constant(s)) for x, s in dec_calls])
    return encoder, decoder, enc_calls, dec_calls


def export_tflite(qat_model, directory, height, width, *, images=None, snr_db=(1.0, 7.0, 13.0),
                  channel_type="awgn", options=None, float32=False, seed=0):
    """Export the encoder and decoder of a QAT codec to integer-only TFLite (int8 I/O).

    The models have a fixed input size ``height x width`` (multiples of
    ``config.size_multiple``) and batch 1; export once per size.

    Parameters
    ----------
    qat_model : fqliscs_tf.quant.qat.QATJSCC
        Calibrated (or QAT-trained) codec.
    directory : str
        Output folder (created): ``encoder.tflite``, ``decoder.tflite``, ``tflite.json``.
    height, width : int
        Image size [pixels].
    images : None or iterable of ``[H, W, 3]`` / ``[B, H, W, 3]`` float in [0, 1]
        Representative images (default: the bundled Kodak images, centre crops).
    snr_db : sequence of float
        Representative SNRs [dB] (default 1, 7, 13).
    channel_type : str
        Channel that makes the decoder's representative inputs (``"awgn"``, ``"rayleigh"``,
        ``"none"``).
    options : TwinOptions or None
        Default :class:`TwinOptions` (16x8: int16 activations); ``activations="int8"`` for
        all-int8 tensors.
    float32 : bool
        Also write ``encoder_float32.tflite`` / ``decoder_float32.tflite``: the same twin
        without quantization, float32 I/O (for speed comparisons).
    seed : int
        Channel seed of the decoder's representative inputs.

    Returns
    -------
    dict: ``encoder``, ``decoder`` (paths) and, with ``float32``, ``encoder_float32``,
    ``decoder_float32``.
    """
    from fqliscs_tf.codec import check_image_size
    from fqliscs_tf.quant.fakequant import IMAGE_SCALE
    from fqliscs_tf.quant.qat import QATJSCC
    if not isinstance(qat_model, QATJSCC):
        raise ValueError(f"export_tflite needs a QATJSCC, got {type(qat_model).__name__}")
    config, spec = qat_model.config, qat_model.spec
    check_image_size(height, width, config)
    options = options or TwinOptions()
    if spec.act_bits != 8 or spec.weight_bits != 8:
        raise ValueError(f"TFLite export needs 8-bit weights and activations, got "
                         f"{spec.weight_bits}/{spec.act_bits}")
    images = _as_batches(kodak_crops(height, width) if images is None else images,
                         height, width)
    encoder, decoder, enc_calls, dec_calls = calibrated_twins(qat_model, options, images, snr_db,
                                                              channel_type, seed)
    s_latent = act_scale(encoder.last_absmax(), 8)
    s_dec_in = act_scale(decoder.first_absmax(), 8)

    snr_io = (float(spec.snr_step_db), 0)
    image_io = (float(np.float32(IMAGE_SCALE)), -128)
    latent_shape = [1, height // config.downsampling, width // config.downsampling, config.C]
    jobs = {"encoder": (encoder, [1, height, width, 3], enc_calls,
                        ({"x": image_io, "snr": snr_io}, (s_latent, 0)), (0.0, 1.0)),
            "decoder": (decoder, latent_shape, dec_calls,
                        ({"x": (s_dec_in, 0), "snr": snr_io}, image_io),
                        (-127 * s_dec_in, 127 * s_dec_in))}
    os.makedirs(directory, exist_ok=True)
    paths, gelu_slopes = {}, {}
    snr_limit = 127 * spec.snr_step_db
    for name, (part, shape, calls, io, x_range) in jobs.items():
        paths[name] = os.path.join(directory, f"{name}.tflite")
        if options.activations == "int8":
            content = _convert(part, shape, calls, "int8")
            gelu_slopes[name] = part.gelu_slopes
        else:
            twin = _Part(getattr(qat_model, name), spec, options, quantize=False,
                         clip=options.clip_ranges, gelu_counts=part.gelu_counts)
            content = _convert(twin, shape, calls + _range_probes(calls, *x_range, snr_limit),
                               "int16", io)
            gelu_slopes[name] = twin.gelu_slopes
        with open(paths[name], "wb") as f:
            f.write(content)
        if float32:
            twin = _Part(getattr(qat_model, name), spec, options, quantize=False,
                         gelu_counts=part.gelu_counts)
            paths[f"{name}_float32"] = os.path.join(directory, f"{name}_float32.tflite")
            with open(paths[f"{name}_float32"], "wb") as f:
                f.write(_convert(twin, shape, calls, "float32"))
    manifest = {"format": "fqliscs_tf-tflite/1", "height": height, "width": width,
                "latent_shape": latent_shape, "config": config.to_dict(),
                "quant": spec.to_dict(), "options": dataclasses.asdict(options),
                "latent_scale": s_latent, "decoder_input_scale": s_dec_in,
                "snr_db": [float(s) for s in _snr_grid_db(snr_db, spec)],
                "num_images": len(images), "channel_type": channel_type,
                "measured_ranges": {"encoder": encoder.measured, "decoder": decoder.measured},
                "gelu_slopes": gelu_slopes,
                "files": {k: os.path.basename(v) for k, v in paths.items()}}
    with open(os.path.join(directory, MANIFEST_FILE), "w") as f:
        json.dump(manifest, f, indent=1)
    return paths


def export_float_tflite(float_model, path, height, width, part="encoder"):
    """Plain float32 TFLite of a float codec's encoder or decoder at a fixed size (batch 1,
    float32 I/O; for speed comparisons). Returns ``path``."""
    cfg = float_model.config
    model = getattr(float_model, part)
    if part == "encoder":
        first = [1, height, width, 3]
    else:
        first = [1, height // cfg.downsampling, width // cfg.downsampling, cfg.C]
    specs = (tf.TensorSpec(first, tf.float32, name="x"),
             tf.TensorSpec([1, 1], tf.float32, name="snr"))

    @tf.function(input_signature=specs)
    def forward(x, snr):
        return model([x, snr], training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [forward.get_concrete_function()], forward)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(converter.convert())
    return path


# =========================================================================== checking
_RESOLVERS = ("default", "builtin", "ref")


def _resolver_type(resolver):
    from ai_edge_litert.interpreter import OpResolverType
    if resolver not in _RESOLVERS:
        raise ValueError(f"op_resolver must be one of {_RESOLVERS}, got {resolver!r}")
    return {"default": OpResolverType.AUTO,
            "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            "ref": OpResolverType.BUILTIN_REF}[resolver]


def _io(details):
    return [{"name": d["name"], "shape": [int(v) for v in d["shape"]],
             "dtype": np.dtype(d["dtype"]).name,
             "scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])}
            for d in details]


def xnnpack_partitions(path, num_threads=1):
    """Number of XNNPACK delegate partitions (``DELEGATE`` nodes) of a ``.tflite`` file
    loaded with ai-edge-litert's default resolver, as :class:`TFLiteCodec` loads it."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path, num_threads=num_threads)
    interpreter.allocate_tensors()
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def check_integer_only(path, *, resolver="ref", raise_error=False):
    """Prove a ``.tflite`` file integer-only: tensor dtypes, op list and I/O types.

    Violations: any float32 / float16 / float64 tensor (weights, activations or I/O), a
    non-int8 model input or output, DEQUANTIZE and RANDOM_* ops, and the int8 kernels that
    compute in float at run time (:data:`FLOAT_RUNTIME_KERNELS`; SOFTMAX is integer with the
    BUILTIN_REF resolver, so it is a violation only for ``resolver="default"`` or
    ``"builtin"``). Kernels whose look-up tables are filled in Prepare
    (:data:`FLOAT_PREPARE_KERNELS`) are listed under ``notes``.

    Parameters
    ----------
    path : str
        A ``.tflite`` file.
    resolver : "ref" | "default" | "builtin"
        Kernels the model will run with (default "ref": TFLite's reference kernels).
    raise_error : bool
        Raise :class:`IntegerOnlyError` instead of returning ``ok=False`` (default False).

    Returns
    -------
    dict: ``ok``, ``path``, ``resolver``, ``tensor_dtypes`` (dtype -> count), ``ops``
    (op name -> count), ``inputs``/``outputs`` (name, shape, dtype, scale, zero point),
    ``violations`` and ``notes`` (lists of str).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    if resolver not in _RESOLVERS:
        raise ValueError(f"resolver must be one of {_RESOLVERS}, got {resolver!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    # No delegate: the op list is the model's own, not XNNPACK's partition of it.
    interp = Interpreter(model_path=path, experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    tensors = interp.get_tensor_details()
    ops = interp._get_ops_details()
    dtypes, violations, notes = {}, [], []
    for t in tensors:
        name = np.dtype(t["dtype"]).name
        dtypes[name] = dtypes.get(name, 0) + 1
        if name in ("float16", "float32", "float64"):
            violations.append(f"{name} tensor {t['name']!r} {list(t['shape'])}")
    kinds = {t["index"]: np.dtype(t["dtype"]).name for t in tensors}
    op_counts, groups = {}, {}
    for op in ops:
        op_counts[op["op_name"]] = op_counts.get(op["op_name"], 0) + 1
        first = kinds.get(op["inputs"][0], "none") if len(op["inputs"]) else "none"
        key = (op["op_name"], first)
        groups[key] = groups.get(key, 0) + 1
    for (name, dtype), count in sorted(groups.items()):
        label = f"{name} ({dtype} input) x{count}"
        if name.startswith("RANDOM") or name in FLOAT_RUNTIME_KERNELS:
            why, integer_with = FLOAT_RUNTIME_KERNELS.get(name, ("random numbers", None))
            if name == "SOFTMAX" and dtype == "int16":
                notes.append(f"{label}: int16 kernel, exp and 1/(1+x) look-up tables filled "
                             "in Prepare, integer at run time")
            elif integer_with is not None and resolver == integer_with:
                notes.append(f"{label}: integer with the {resolver!r} resolver ({why})")
            else:
                violations.append(f"{label}: {why}")
        elif name in FLOAT_PREPARE_KERNELS:
            notes.append(f"{label}: look-up table filled with float math in Prepare, integer "
                         "table reads at run time")
    inputs, outputs = _io(interp.get_input_details()), _io(interp.get_output_details())
    for kind, items in (("input", inputs), ("output", outputs)):
        for d in items:
            if d["dtype"] != "int8":
                violations.append(f"model {kind} {d['name']!r} is {d['dtype']}, not int8")
    report = {"ok": not violations, "path": path, "resolver": resolver,
              "tensor_dtypes": dict(sorted(dtypes.items())), "ops": dict(sorted(op_counts.items())),
              "inputs": inputs, "outputs": outputs, "violations": violations, "notes": notes}
    if raise_error and violations:
        raise IntegerOnlyError(f"{path} is not integer-only ({len(violations)} violations): "
                               + "; ".join(violations[:5]))
    return report


# =========================================================================== running
class _Runner:
    """One .tflite model with ai-edge-litert: inputs ``x`` and ``snr``, one output."""

    def __init__(self, path, op_resolver="default", num_threads=2):
        from ai_edge_litert.interpreter import Interpreter
        self.path = path
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads,
                                       experimental_op_resolver_type=_resolver_type(op_resolver))
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        snr = [d for d in inputs if "snr" in d["name"]]
        other = [d for d in inputs if "snr" not in d["name"]]
        if len(snr) != 1 or len(other) != 1:
            raise ValueError(f"{path}: expected inputs x and snr, got "
                             f"{[d['name'] for d in inputs]}")
        self.x, self.snr = other[0], snr[0]
        self.out = self.interpreter.get_output_details()[0]

    def __call__(self, x, snr):
        self.interpreter.set_tensor(self.x["index"], np.asarray(x, self.x["dtype"]))
        self.interpreter.set_tensor(self.snr["index"], np.asarray(snr, self.snr["dtype"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.out["index"])


class TFLiteCodec:
    """encoder.tflite -> the engine's integer channel -> decoder.tflite, with ai-edge-litert.

    Parameters
    ----------
    directory : str
        A folder written by :func:`export_tflite`.
    channel_type : str
        ``"awgn"``, ``"rayleigh"`` (integer channels of :mod:`phy.integer_channel`, as
        :class:`~fqliscs_tf.engine.IntegerCodec`) or ``"none"``.
    op_resolver : "default" | "builtin" | "ref"
        ai-edge-litert kernels: default (XNNPACK delegate + optimized kernels), builtin
        (optimized kernels, no delegate) or ref (reference kernels, integer softmax).
    num_threads : int
        Interpreter threads (default 2).
    jit_compile : bool
        Run the integer channel with XLA, as :class:`~fqliscs_tf.engine.IntegerCodec` does by
        default (default True): the same seed then draws the same noise in both.
    """

    def __init__(self, directory, channel_type="awgn", op_resolver="default", num_threads=2,
                 jit_compile=True):
        with open(os.path.join(directory, MANIFEST_FILE)) as f:
            self.manifest = json.load(f)
        self.spec = QuantSpec.from_dict(self.manifest["quant"])
        self.height, self.width = self.manifest["height"], self.manifest["width"]
        files = self.manifest["files"]
        self.encoder = _Runner(os.path.join(directory, files["encoder"]), op_resolver,
                               num_threads)
        self.decoder = _Runner(os.path.join(directory, files["decoder"]), op_resolver,
                               num_threads)
        self.receiver = _Receiver(self.spec, self.manifest["decoder_input_scale"], channel_type,
                                  jit_compile)

    def encode(self, pixels, snr_q):
        """uint8 pixels ``[1, H, W, 3]`` (any int dtype, 0..255) and the SNR code -> int8
        latent ``[1, h, w, C]``."""
        x = (np.asarray(pixels, np.int16) - 128).astype(np.int8)
        return self.encoder(x, np.full([1, 1], int(snr_q), np.int8))

    def decode(self, received, snr_q):
        """int8 received latent ``[1, h, w, C]`` (decoder input grid) and the SNR code ->
        uint8 pixels ``[1, H, W, 3]``."""
        y = self.decoder(received, np.full([1, 1], int(snr_q), np.int8))
        return (y.astype(np.int16) + 128).astype(np.uint8)

    def __call__(self, images, snr_db, seed=(0, 0)):
        """Float in, float out, as :meth:`IntegerCodec.__call__ <fqliscs_tf.engine.IntegerCodec>`
        (same SNR grid, pixel rounding and channel seed, so the noise matches).

        Returns
        -------
        dict: ``x_hat`` ``[B, H, W, 3]`` float32 in [0, 1], ``latent`` int8, ``received``
        int8 (decoder input), ``symbols``/``symbols_hat`` complex64 ``[B, k]``.
        """
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != (self.height, self.width, 3):
            raise ValueError(f"images must be [B, {self.height}, {self.width}, 3], "
                             f"got {images.shape}")
        batch = images.shape[0]
        snr = np.asarray(snr_db, np.float64).reshape(-1)
        if snr.size not in (1, batch):
            raise ValueError(f"snr_db must be a scalar or have {batch} values, got {snr_db!r}")
        codes = np.broadcast_to(_snr_grid(snr, self.spec), [batch])
        pixels = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.int32)
        latent = np.concatenate([self.encode(pixels[i:i + 1], codes[i]) for i in range(batch)])
        # The engine clips its latent to [-127, 127]; TFLite's int8 may reach -128.
        rx = self.receiver(np.maximum(latent, -127), codes, seed)
        x_hat = np.concatenate([self.decode(rx["received"][i:i + 1], codes[i])
                                for i in range(batch)])
        s = self.spec.symbol_scale
        return {"x_hat": x_hat.astype(np.float32) / 255.0, "latent": latent,
                "received": rx["received"],
                "symbols": (rx["symbols_re"] + 1j * rx["symbols_im"]).astype(np.complex64) * s,
                "symbols_hat": (rx["symbols_hat_re"] + 1j * rx["symbols_hat_im"]
                                ).astype(np.complex64) * s}
