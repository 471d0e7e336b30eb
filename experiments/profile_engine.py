# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Where the integer engine's time goes: op-group latency of the engine vs the float codec.

One process, one image (a centre crop of a bundled Kodak image), batch 1::

    python -m experiments.profile_engine --size 256x256 --repeats 7

Four measurements, all on this CPU with ``--threads`` intra-op threads:

1. **End to end**: :class:`~fqliscs_tf.engine.IntegerCodec` (encoder -> integer AWGN ->
   decoder) and the float codec (Sionna AWGN), each as one ``tf.function`` with XLA
   (``jit_compile=True``) and without (graph mode); timed first and again last (the load
   drifts), medians over both rounds.
2. **Op groups in isolation**: every layer of the engine is cut into the steps of its integer
   forward (:mod:`fqliscs_tf.engine.layers`: LayerNorm, window partition, int32 matmul, dyadic
   requantization, QK^T, integer softmax, A.V, GELU, residual add, ...) and the float layer
   into the same steps; each step is its own ``tf.function`` timed on the real intermediate
   tensor of that image. Chaining the steps reproduces ``layer_forward`` bit for bit (and
   the float layer to float precision); this is checked. Whole layers are timed too, so the
   sum of the steps can be compared with the layer (XLA fuses across steps) and the sum of the
   layers with the end-to-end run. The per-call ``tf.function`` overhead (a trivial function)
   is measured and subtracted from every step (``net_ms``; the raw sums are reported too).
   With XLA, every engine matmul step whose operands fit int8 is also timed with int8 operands
   (``tf.linalg.matmul(..., output_type=tf.int32)``; results checked bit-exact), i.e. what the
   engine's matmuls would cost with an int8 GEMM.
3. **Matmul micro-benchmark**: ``[M, K] x [K, N]`` (or batched ``B x M x K x N``) in float32,
   int32 (how the engine writes its int8 x int8 -> int32 products) and int8 operands with an
   int32 output, with and without XLA.
4. **Op-level trace** (``tf.profiler.experimental``) of the end-to-end runs: graph mode by TF
   op type, XLA by HLO instruction (thunk) classified from the optimized HLO (dot/convolution,
   fusions, copies). The trace events of XLA's int32 dots cover only part of their time;
   ``xla_matmul_check`` (an isolated matmul, int32 vs float32: wall time vs traced time)
   shows how much.

Results (with the machine load and provenance) go to ``--output`` as JSON; markdown tables are
printed.
"""
import argparse
import collections
import glob
import json
import os
import re
import statistics
import sys
import tempfile
import time

import numpy as np

from experiments.benchmark_int import parse_size

__all__ = ["main", "build_parser", "run", "GROUPS", "format_groups", "format_layers",
           "format_end_to_end", "format_matmul", "format_trace"]

DEFAULT_ENGINE = "fqliscs_tf/weights/lite_c96_awgn_int"
DEFAULT_FLOAT = "fqliscs_tf/weights/lite_c96_awgn"
MODES = ("xla", "graph")
GROUPS = ("linear matmul", "attention matmul", "softmax", "GELU", "LayerNorm", "requantize",
          "residual add", "data movement", "ModNet", "channel")
"""Op groups of the step table, in display order."""
_NON_COMPUTE_OPS = {"Const", "Placeholder", "Identity", "NoOp", "ReadVariableOp", "_Arg",
                    "_Retval"}


def _modes(text):
    items = [m.strip() for m in text.split(",") if m.strip()]
    if not items or any(m not in MODES for m in items):
        raise argparse.ArgumentTypeError(f"modes must be a subset of {','.join(MODES)}, "
                                         f"got {text!r}")
    return items


def _matmul_shapes(text):
    shapes = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        try:
            dims = tuple(int(v) for v in item.lower().split("x"))
        except ValueError:
            dims = ()
        if len(dims) not in (3, 4) or min(dims) < 1:
            raise argparse.ArgumentTypeError(f"matmul shape must be MxKxN or BxMxKxN, got "
                                             f"{item!r}")
        shapes.append(dims)
    return shapes


def build_parser():
    p = argparse.ArgumentParser(prog="profile_engine", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", default=DEFAULT_ENGINE,
                   help="integer codec folder (engine.json + engine.npz; default %(default)s)")
    p.add_argument("--float-model", default=DEFAULT_FLOAT,
                   help="float codec folder to compare with (default %(default)s)")
    p.add_argument("--size", type=parse_size, default=parse_size("256x256"),
                   help="image size WIDTHxHEIGHT (default 256x256)")
    p.add_argument("--repeats", type=int, default=7,
                   help="timed calls of every function; medians are reported "
                        "(default %(default)s)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed calls before timing (at least 1, which compiles; "
                        "default %(default)s)")
    p.add_argument("--threads", type=int, default=2,
                   help="TF intra-op threads (inter-op: 1; default %(default)s)")
    p.add_argument("--modes", type=_modes, default=list(MODES),
                   help="comma-separated subset of xla,graph (default xla,graph)")
    p.add_argument("--snr-db", type=float, default=10.0, help="AWGN SNR [dB] (default 10)")
    p.add_argument("--matmul-shapes", type=_matmul_shapes,
                   default=_matmul_shapes("16384x32x128,4096x256x768,512x64x16x64"),
                   help="matmul micro-benchmark shapes MxKxN or BxMxKxN, '' to skip (default: "
                        "the stage-0 fc1 at 256x256, the 4096x256x768 anchor, the stage-0 "
                        "QK^T batch)")
    p.add_argument("--no-trace", dest="trace", action="store_false",
                   help="skip the tf.profiler op-level trace of the end-to-end runs")
    p.add_argument("--trace-runs", type=int, default=3,
                   help="end-to-end calls recorded per trace (default %(default)s)")
    p.add_argument("--output", default="experiments/results/profile_engine.json",
                   help="JSON results (default %(default)s)")
    return p


# ----------------------------------------------------------------------------- timing
def _summary(times, keep=False):
    out = {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
           "max_ms": 1e3 * max(times), "runs": len(times)}
    if keep:
        out["times_ms"] = [1e3 * t for t in times]
    return out


def _time_round_robin(calls, repeats, warmup, keep=False):
    """Time every zero-argument callable in ``calls`` (dict key -> fn): ``warmup`` untimed
    calls each (at least one: it traces and compiles), then ``repeats`` rounds in which each
    is called once, so that load drifts hit all of them alike. Returns key -> summary (with
    the single times if ``keep``)."""
    for fn in calls.values():
        for _ in range(max(1, warmup)):
            fn()
    times = {key: [] for key in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {key: _summary(values, keep) for key, values in times.items()}


def _tf_function(fn, mode, autograph=False):
    """``tf.function`` of ``fn``, with XLA for ``mode == "xla"``. The engine's layer code has
    no tensor-dependent Python control flow, so the steps trace without AutoGraph (faster);
    the end-to-end functions keep it, as the benchmark does."""
    import tensorflow as tf
    return tf.function(fn, jit_compile=(mode == "xla"), autograph=autograph)


def _op_count(fn, args):
    """Compute ops in the traced graph of ``fn`` (a ``tf.function`` or a Python function):
    no constants, placeholders, identities or variable reads."""
    import tensorflow as tf
    if not hasattr(fn, "get_concrete_function"):
        fn = tf.function(fn, autograph=False)
    graph = fn.get_concrete_function(*args).graph
    return sum(op.type not in _NON_COMPUTE_OPS for op in graph.get_operations())


def _output_size(fn, args):
    """Elements of the (first) output of the ``tf.function`` ``fn``, from its trace."""
    out = fn.get_concrete_function(*args).structured_outputs
    return int(np.prod(_as_tuple(out)[0].shape))


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


# ----------------------------------------------------------------------------- steps
class Step:
    """One timed piece of a layer: ``outputs = fn(*inputs)`` on a dict of tensors."""

    def __init__(self, group, label, fn, inputs, outputs, int8_fn=None):
        if group not in GROUPS:
            raise ValueError(f"unknown group {group!r}")
        self.group, self.label, self.fn = group, label, fn
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self.int8_fn = int8_fn  # the same step with int8 matmul operands (engine only)


def _int8_matmul(a, b, transpose_b=False):
    """``a @ b`` (int32 tensors holding int8 values) as an int8 x int8 -> int32 product."""
    import tensorflow as tf
    return tf.linalg.matmul(tf.cast(a, tf.int8), tf.cast(b, tf.int8), transpose_b=transpose_b,
                            output_type=tf.int32)


def _linear(x, w, b=None, int8=False):
    """:func:`fqliscs_tf.engine.layers.linear`, optionally with int8 operands."""
    import tensorflow as tf
    from fqliscs_tf.engine.layers import linear
    if not int8:
        return linear(x, w, b)
    shape = tf.shape(x)
    acc = tf.linalg.matmul(tf.cast(tf.reshape(x, [-1, w.shape[0]]), tf.int8),
                           tf.constant(w.astype(np.int8)), output_type=tf.int32)
    if b is not None:
        acc = acc + tf.constant(b.astype(np.int32))
    return tf.reshape(acc, tf.concat([shape[:-1], [w.shape[1]]], 0))


def _engine_steps(kind, a, s, spec, patch_size, shape):
    """The steps of :func:`fqliscs_tf.engine.layers.layer_forward` for one layer, in order.

    Inputs ``x`` (and ``snr`` for the ModNet), output ``out``; ``shape`` is the static input
    shape ``(B, H, W, C)``.
    """
    import tensorflow as tf
    from fqliscs_tf.engine import layers as L
    from fqliscs_tf.quant import intops
    from fqliscs_tf.quant.fixedpoint import multiply_by_quantized_multiplier
    from fqliscs_tf.swin import (relative_position_index, shifted_window_separation,
                                 window_partition, window_reverse)
    ab, rb = spec.act_bits, spec.residual_bits

    def ln(key_in, key_out, prefix, out_scale):
        return Step("LayerNorm", prefix, lambda t: L._layer_norm(
            t, s["in" if key_in == "x" else "mid"], s[f"{prefix}_gamma"], s[f"{prefix}_beta"],
            s[out_scale], spec), (key_in,), (key_out,))

    def lin(label, key_in, w, b=None):
        return Step("linear matmul", label, lambda t: _linear(t, a[w], None if b is None
                                                              else a[b]),
                    (key_in,), ("acc",),
                    int8_fn=lambda t: _linear(t, a[w], None if b is None else a[b], int8=True))

    def rq(label, key_in, key_out, mult, bits):
        return Step("requantize", label, lambda t: L.requantize(t, mult, bits), (key_in,),
                    (key_out,))

    if kind == "swin_block":
        b, h, w = shape[:3]
        ws, sh, heads = s["window"], s["shift"], s["heads"]
        n = ws * ws
        dim = a["wqkv"].shape[1] // 3
        hd = dim // heads

        def partition(y):
            if sh > 0:
                y = tf.roll(y, shift=[-sh, -sh], axis=[1, 2])
            return window_partition(y, ws)

        def logits(qkv, matmul=tf.matmul):
            qkv = tf.transpose(tf.reshape(qkv, [-1, n, 3, heads, hd]), [2, 0, 3, 1, 4])
            index = relative_position_index(ws).reshape(-1)
            bias = tf.gather(tf.constant(a["rel_table"]), index)
            bias = tf.transpose(tf.reshape(bias, [n, n, heads]), [2, 0, 1])
            out = matmul(qkv[0], qkv[1], transpose_b=True) + bias[None]
            if sh > 0:
                separation = shifted_window_separation(h, w, ws, sh)
                num_windows = tf.shape(separation)[0]
                out = tf.reshape(out, [-1, num_windows, heads, n, n])
                mask = tf.where(separation, tf.constant(int(a["mask"]), tf.int32), 0)
                out = tf.reshape(out + mask[None, :, None], [-1, heads, n, n])
            return out, qkv[2]

        def av(attn, v, matmul=tf.matmul):
            return tf.reshape(tf.transpose(matmul(attn, v), [0, 2, 1, 3]), [-1, n, dim])

        def reverse(y):
            y = window_reverse(y, ws, b, h, w)
            return tf.roll(y, shift=[sh, sh], axis=[1, 2]) if sh > 0 else y

        _, g_scale = intops.int_gelu(tf.zeros([1], tf.int32), s["fc1"], method=spec.gelu)
        m_av = L._scalar_mult(2.0 ** -(ab - 1) * s["v"] / s["attn"])
        m_gelu = L._scalar_mult(g_scale / s["gelu"])
        return [
            ln("x", "y", "norm1", "norm1"),
            Step("data movement", "shift + window partition", partition, ("y",), ("win",)),
            lin("qkv", "win", "wqkv", "bqkv"),
            rq("qkv", "acc", "qkv", a["m_qkv"], ab),
            Step("attention matmul", "QK^T + bias + mask", logits, ("qkv",), ("logits", "v"),
                 int8_fn=lambda t: logits(t, _int8_matmul)),
            Step("softmax", "softmax", lambda t: intops.int_softmax(
                t, s["logit"], method=spec.softmax, bits=ab)[0], ("logits",), ("attn",)),
            Step("attention matmul", "A.V", av, ("attn", "v"), ("acc",),
                 int8_fn=lambda t, v: av(t, v, _int8_matmul)),
            rq("A.V", "acc", "o", m_av, ab),
            lin("proj", "o", "wproj", "bproj"),
            rq("proj", "acc", "o", a["m_proj"], rb),
            Step("data movement", "window reverse + unshift", reverse, ("o",), ("y",)),
            rq("residual 1 rescale", "x", "r", a["m_res1"], 32),
            Step("residual add", "residual 1", lambda r, y: L.clip_bits(r + y, rb), ("r", "y"),
                 ("x",)),
            ln("x", "y", "norm2", "norm2"),
            lin("fc1", "y", "w1", "b1"),
            rq("fc1", "acc", "hidden", a["m_fc1"], ab),
            Step("GELU", "GELU", lambda t: intops.int_gelu(t, s["fc1"], method=spec.gelu)[0],
                 ("hidden",), ("g",)),
            rq("GELU out", "g", "g", m_gelu, ab),
            lin("fc2", "g", "w2", "b2"),
            rq("fc2", "acc", "y", a["m_fc2"], 32),
            rq("residual 2 rescale", "x", "r", a["m_res2"], 32),
            Step("residual add", "residual 2", lambda r, y: L.clip_bits(r + y, rb), ("r", "y"),
                 ("out",)),
        ]
    if kind == "patch_embed":
        return [Step("data movement", "space to depth",
                     lambda t: tf.nn.space_to_depth(t, patch_size), ("x",), ("p",)),
                lin("proj", "p", "w", "b"),
                rq("out", "acc", "out", a["m_out"], rb)]
    if kind == "patch_merging":
        return [Step("data movement", "space to depth", lambda t: tf.nn.space_to_depth(t, 2),
                     ("x",), ("x2",)),
                Step("LayerNorm", "norm", lambda t: L._layer_norm(
                    t, s["in"], s["norm_gamma"], s["norm_beta"], s["norm"], spec),
                    ("x2",), ("y",)),
                lin("reduction", "y", "w"),
                rq("out", "acc", "out", a["m_out"], rb)]
    if kind == "patch_reverse_merging":
        steps = [Step("LayerNorm", "norm", lambda t: L._layer_norm(
                    t, s["in"], s["norm_gamma"], s["norm_beta"], s["norm"], spec),
                    ("x",), ("y",)),
                 lin("increment", "y", "w")]
        if s["image_output"]:
            steps.append(Step("requantize", "to pixels", lambda t: tf.clip_by_value(
                multiply_by_quantized_multiplier(t, a["m_out"][0], a["m_out"][1]), 0, 255),
                ("acc",), ("y",)))
        else:
            steps.append(rq("out", "acc", "y", a["m_out"], rb))
        steps.append(Step("data movement", "depth to space",
                          lambda t: tf.nn.depth_to_space(t, s["factor"]), ("y",), ("out",)))
        return steps
    if kind == "output_norm":
        return [Step("LayerNorm", "norm", lambda t: L._layer_norm(
            t, s["in"], s["norm_gamma"], s["norm_beta"], s["out"], spec), ("x",), ("out",))]
    if kind == "head":
        return [lin("head", "x", "w", "b"), rq("out", "acc", "out", a["m_out"], ab)]
    if kind == "modnet":
        return [Step("ModNet", "ModNet", lambda t, snr: L.modnet(t, snr, a, s, spec),
                     ("x", "snr"), ("out",))]
    raise ValueError(f"unknown integer layer kind {kind!r}")


def _float_steps(kind, layer, shape):
    """The float layer ``layer`` (Keras) cut into the same steps as :func:`_engine_steps`."""
    import tensorflow as tf
    from fqliscs_tf.swin import shifted_window_mask, window_partition, window_reverse

    def keras_step(group, label, sub, key_in, key_out):
        return Step(group, label, lambda t: sub(t), (key_in,), (key_out,))

    if kind == "swin_block":
        blk = layer
        b, h, w = shape[:3]
        ws, sh, heads = blk.window_size, blk.shift_size, blk.num_heads
        n = ws * ws

        def partition(y):
            if sh > 0:
                y = tf.roll(y, shift=[-sh, -sh], axis=[1, 2])
            return window_partition(y, ws)

        def logits(qkv):
            qkv = tf.transpose(tf.reshape(qkv, [-1, n, 3, heads, blk.head_dim]), [2, 0, 3, 1, 4])
            out = tf.matmul(qkv[0] * blk.scale, qkv[1], transpose_b=True) \
                + blk.relative_position_bias()[None]
            if sh > 0:
                mask = shifted_window_mask(h, w, ws, sh)
                num_windows = tf.shape(mask)[0]
                out = tf.reshape(out, [-1, num_windows, heads, n, n])
                out = tf.reshape(out + mask[None, :, None], [-1, heads, n, n])
            return out, qkv[2]

        def av(attn, v):
            return tf.reshape(tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3]), [-1, n, blk.dim])

        def reverse(y):
            y = window_reverse(y, ws, b, h, w)
            return tf.roll(y, shift=[sh, sh], axis=[1, 2]) if sh > 0 else y

        return [
            keras_step("LayerNorm", "norm1", blk.norm1, "x", "y"),
            Step("data movement", "shift + window partition", partition, ("y",), ("win",)),
            keras_step("linear matmul", "qkv", blk.qkv, "win", "qkv"),
            Step("attention matmul", "QK^T + bias + mask", logits, ("qkv",), ("logits", "v")),
            Step("softmax", "softmax", lambda t: tf.nn.softmax(t, axis=-1), ("logits",),
                 ("attn",)),
            Step("attention matmul", "A.V", av, ("attn", "v"), ("o",)),
            keras_step("linear matmul", "proj", blk.proj, "o", "o"),
            Step("data movement", "window reverse + unshift", reverse, ("o",), ("y",)),
            Step("residual add", "residual 1", lambda x, y: x + y, ("x", "y"), ("x",)),
            keras_step("LayerNorm", "norm2", blk.norm2, "x", "y"),
            keras_step("linear matmul", "fc1", blk.fc1, "y", "hidden"),
            Step("GELU", "GELU", lambda t: tf.nn.gelu(t, approximate=False), ("hidden",),
                 ("g",)),
            keras_step("linear matmul", "fc2", blk.fc2, "g", "y"),
            Step("residual add", "residual 2", lambda x, y: x + y, ("x", "y"), ("out",)),
        ]
    if kind == "patch_embed":
        return [keras_step("linear matmul", "proj (2x2 stride-2 conv)", layer.proj, "x",
                           "out")]
    if kind == "patch_merging":
        return [Step("data movement", "space to depth", lambda t: tf.nn.space_to_depth(t, 2),
                     ("x",), ("x2",)),
                keras_step("LayerNorm", "norm", layer.norm, "x2", "y"),
                keras_step("linear matmul", "reduction", layer.reduction, "y", "out")]
    if kind == "patch_reverse_merging":
        return [keras_step("LayerNorm", "norm", layer.norm, "x", "y"),
                keras_step("linear matmul", "increment", layer.increment, "y", "y"),
                Step("data movement", "depth to space",
                     lambda t: tf.nn.depth_to_space(t, layer.factor), ("y",), ("out",))]
    if kind == "output_norm":
        return [keras_step("LayerNorm", "norm", layer, "x", "out")]
    if kind == "head":
        return [keras_step("linear matmul", "head", layer, "x", "out")]
    if kind == "modnet":
        return [Step("ModNet", "ModNet", lambda t, snr: layer([t, snr]), ("x", "snr"),
                     ("out",))]
    raise ValueError(f"unknown layer kind {kind!r}")


def _run_steps(steps, env):
    """Run ``steps`` eagerly on ``env`` (a dict, updated); returns each step's input tensors."""
    inputs = []
    for step in steps:
        args = tuple(env[k] for k in step.inputs)
        inputs.append(args)
        env.update(zip(step.outputs, _as_tuple(step.fn(*args))))
    return inputs


def _fits_int8(args):
    return all(float(np.max(np.abs(t.numpy()))) <= 127 for t in args)


# ----------------------------------------------------------------------------- parts
def _float_layer(part_model, name, kind, index):
    """The Keras layer of the float encoder/decoder that an exported engine layer came from."""
    try:
        return part_model.get_layer(name)
    except ValueError:
        raise SystemExit(f"float model has no layer {name!r} ({kind} #{index}); engine and "
                         f"float model must have the same configuration") from None


def _engine_layer_fn(kind, a, s, spec, patch_size):
    """``(x, snr) -> layer_forward(...)``: a closure (no default arguments, which
    ``tf.function`` would turn into tensors)."""
    from fqliscs_tf.engine.layers import layer_forward

    def fn(x, snr):
        return layer_forward(kind, x, a, s, spec, snr, patch_size)
    return fn


def _float_layer_fn(kind, layer):
    if kind == "modnet":
        return lambda x, snr: layer([x, snr])
    return lambda x: layer(x)


def _layer_jobs(part, engine_layers, float_model, x_int, x_float, snr_q, snr_f, spec,
                patch_size):
    """Yield one job per layer: ``(record, engine steps+inputs, float steps+inputs, whole
    engine layer, whole float layer, (engine output, float output))``; the engine and float
    activations advance layer by layer."""
    from fqliscs_tf.engine.layers import layer_forward
    for index, (kind, a, s) in enumerate(engine_layers):
        name = s.get("name") or kind
        layer = _float_layer(float_model, name, kind, index)
        shape = tuple(int(d) for d in x_int.shape)
        e_steps = _engine_steps(kind, a, s, spec, patch_size, shape)
        f_steps = _float_steps(kind, layer, tuple(int(d) for d in x_float.shape))
        e_env, f_env = {"x": x_int, "snr": snr_q}, {"x": x_float, "snr": snr_f}
        e_in = _run_steps(e_steps, e_env)
        f_in = _run_steps(f_steps, f_env)
        e_ref = layer_forward(kind, x_int, a, s, spec, snr_q, patch_size)
        if not np.array_equal(e_env["out"].numpy(), e_ref.numpy()):
            raise RuntimeError(f"engine steps of {part} layer {index} ({kind}) differ from "
                               f"layer_forward")
        f_ref = layer([x_float, snr_f]) if kind == "modnet" else layer(x_float)
        err = float(np.max(np.abs(f_env["out"].numpy() - f_ref.numpy())))
        if err > 1e-3 * max(1.0, float(np.max(np.abs(f_ref.numpy())))):
            raise RuntimeError(f"float steps of {part} layer {index} ({kind}) differ from the "
                               f"layer by {err}")
        e_whole = (_engine_layer_fn(kind, a, s, spec, patch_size), (x_int, snr_q))
        f_whole = (_float_layer_fn(kind, layer),
                   (x_float, snr_f) if kind == "modnet" else (x_float,))
        record = {"part": part, "index": index, "kind": kind, "name": name,
                  "input_shape": list(shape), "output_shape": list(e_ref.shape)}
        yield record, (e_steps, e_in), (f_steps, f_in), e_whole, f_whole, (e_ref, f_ref)
        x_int, x_float = e_ref, f_ref


def _profile_layer(record, engine, flt, e_whole, f_whole, modes, args, overhead):
    """Time the steps and the whole layer (engine and float, every mode) round-robin."""
    calls, meta = {}, {}
    for system, (steps, inputs) in (("engine", engine), ("float", flt)):
        for i, (step, step_args) in enumerate(zip(steps, inputs)):
            fns = {mode: _tf_function(step.fn, mode) for mode in modes}
            meta[(system, i)] = {"group": step.group, "label": step.label,
                                 "ops": _op_count(fns.get("graph", step.fn), step_args),
                                 "out_elements": _output_size(fns[modes[0]], step_args)}
            for mode, fn in fns.items():
                calls[(system, i, mode)] = (lambda f=fn, x=step_args: f(*x))
            if (system == "engine" and "xla" in modes and step.int8_fn is not None
                    and _fits_int8(step_args)):
                fn = _tf_function(step.int8_fn, "xla")
                got, ref = _as_tuple(fn(*step_args))[0], _as_tuple(step.fn(*step_args))[0]
                if not np.array_equal(got.numpy(), ref.numpy()):
                    raise RuntimeError(f"int8 matmul of {record['name']} {step.label} is not "
                                       f"bit-exact")
                calls[(system, i, "xla_int8")] = (lambda f=fn, x=step_args: f(*x))
    for system, (fn, fn_args) in (("engine", e_whole), ("float", f_whole)):
        for mode in modes:
            f = _tf_function(fn, mode)
            calls[(system, "layer", mode)] = (lambda f=f, x=fn_args: f(*x))
    timed = _time_round_robin(calls, args.repeats, args.warmup)
    steps_out = []
    for (system, i), info in meta.items():
        row = {**info, "system": system, "step": i}
        for mode in modes:
            t = timed[(system, i, mode)]
            row[mode] = dict(t, net_ms=max(0.0, t["median_ms"] - overhead[mode]))
        if (system, i, "xla_int8") in timed:
            t = timed[(system, i, "xla_int8")]
            row["xla_int8"] = dict(t, net_ms=max(0.0, t["median_ms"] - overhead["xla"]))
        steps_out.append(row)
    record = dict(record, steps=steps_out)
    for system in ("engine", "float"):
        record[system] = {mode: timed[(system, "layer", mode)] for mode in modes}
    return record


def _call_overhead(modes, repeats, warmup):
    """Median time of a trivial ``tf.function`` call (one int32 add on 1 element)."""
    import tensorflow as tf
    x = tf.constant([1], tf.int32)
    calls = {mode: (lambda f=_tf_function(lambda t: t + 1, mode): f(x)) for mode in modes}
    timed = _time_round_robin(calls, max(repeats, 20) * 5, warmup)
    return {mode: timed[mode]["median_ms"] for mode in modes}


# ----------------------------------------------------------------------------- matmul
def _matmul_bench(shapes, modes, repeats, warmup):
    """float32 vs int32 vs int8->int32 matmuls of the given shapes."""
    import tensorflow as tf
    rng = np.random.default_rng(0)
    rows = []
    for dims in shapes:
        batch = dims[:-3]
        m, k, n = dims[-3:]
        a8 = rng.integers(-127, 128, batch + (m, k)).astype(np.int8)
        b8 = rng.integers(-127, 128, batch + (k, n)).astype(np.int8)
        operands = {"float32": (a8.astype(np.float32), b8.astype(np.float32)),
                    "int32": (a8.astype(np.int32), b8.astype(np.int32)),
                    "int8->int32": (a8, b8)}
        calls, ref = {}, np.matmul(a8.astype(np.int64), b8.astype(np.int64))
        for dtype, (a, b) in operands.items():
            a, b = tf.constant(a), tf.constant(b)
            for mode in modes:
                if dtype == "int8->int32":
                    fn = _tf_function(lambda x, y: tf.linalg.matmul(
                        x, y, output_type=tf.int32), mode)
                else:
                    fn = _tf_function(lambda x, y: tf.matmul(x, y), mode)
                if not np.array_equal(fn(a, b).numpy().astype(np.int64), ref):
                    raise RuntimeError(f"{dtype} {mode} matmul of {dims} is not exact")
                calls[(dtype, mode)] = (lambda f=fn, x=a, y=b: f(x, y))
        timed = _time_round_robin(calls, repeats, warmup)
        macs = int(np.prod(dims))
        for (dtype, mode), t in timed.items():
            rows.append({"shape": "x".join(map(str, dims)), "dtype": dtype, "mode": mode,
                         "macs": macs, "gmac_per_s": macs / (t["median_ms"] * 1e6), **t})
    return rows


# ----------------------------------------------------------------------------- trace
_MATMUL_OP = re.compile(r"MatMul|Conv2D|Einsum|Conv3D")
_MOVE_OPS = {"Transpose", "_MklTranspose", "Reshape", "Roll", "SpaceToDepth", "DepthToSpace",
             "ConcatV2", "Pack", "Unpack", "StridedSlice", "Slice", "GatherV2", "Tile",
             "Squeeze", "ExpandDims", "Identity", "Shape", "Fill", "BroadcastTo"}
_OP_EVENT = re.compile(r"^([^\s:]+):([A-Za-z_]\w*)$")
_HLO_LINE = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*.*?\s([\w\-]+)\(")
_HLO_DTYPE = re.compile(r"=\s*\(?([a-z]+\d*)\[")


def _hlo_classes(hlo):
    """Optimized HLO text -> ``{entry instruction name: (class, dtype)}``; classes
    ``matmul`` (dot/convolution, or a fusion around one), ``fusion`` (elementwise/reduce
    fusions), ``copy`` (copy/transpose), ``other``."""
    comps, current = {}, None
    for line in hlo.splitlines():
        head = re.match(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$", line)
        if head:
            current = "ENTRY" if head.group(1) else head.group(2)
            comps[current] = []
        elif line.strip() == "}":
            current = None
        elif current is not None:
            comps[current].append(line)
    has_dot = {name: any(re.search(r"\s(dot|convolution)\(", ln) for ln in lines)
               for name, lines in comps.items()}
    classes = {}
    for line in comps.get("ENTRY", []):
        m = _HLO_LINE.match(line)
        if not m:
            continue
        name, opcode = m.groups()
        dtype = (_HLO_DTYPE.search(line) or [None, "?"])[1]
        if opcode in ("dot", "convolution") or (opcode == "custom-call" and re.search(
                r"matmul|conv", line, re.I)):
            cls = "matmul"
        elif opcode == "fusion":
            called = re.search(r"calls=%?([\w.\-]+)", line)
            cls = "matmul" if called and has_dot.get(called.group(1)) else "fusion"
        elif opcode in ("copy", "transpose"):
            cls = "copy"
        else:
            cls = "other"
        classes[name] = (cls, dtype)
    return classes


def _read_xspace(logdir):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as f:
        space.ParseFromString(f.read())
    return space


def _trace(fn, runs, logdir, hlo_classes=None):
    """Run ``fn`` ``runs`` times under the TF profiler; per-run ms by category and by
    op type (graph mode) or HLO instruction (XLA, ``hlo_classes`` given)."""
    import tensorflow as tf
    fn()
    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2,
                                                       python_tracer_level=0,
                                                       device_tracer_level=0)
    tf.profiler.experimental.start(logdir, options=options)
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    wall = (time.perf_counter() - start) / runs
    tf.profiler.experimental.stop()
    space = _read_xspace(logdir)
    by_cat, by_key = collections.Counter(), collections.Counter()
    unmatched = 0.0
    for plane in space.planes:
        names = plane.event_metadata
        hlo_stat = {i for i, m in plane.stat_metadata.items() if m.name == "hlo_op"}
        for line in plane.lines:
            for ev in line.events:
                name = names[ev.metadata_id].name
                ms = ev.duration_ps / 1e9 / runs
                if hlo_classes is not None:
                    if name in hlo_classes:
                        cls, dtype = hlo_classes[name]
                        by_cat[f"{cls} ({dtype})" if cls == "matmul" else cls] += ms
                        by_key[name] += ms
                    elif any(st.metadata_id in hlo_stat for st in ev.stats):
                        unmatched += ms  # an XLA thunk not found in the HLO text
                    continue
                m = _OP_EVENT.match(name)
                if not m or name.startswith("__inference") or m.group(2).endswith(
                        "PartitionedCall"):
                    continue
                op_type = m.group(2)
                cls = "matmul" if _MATMUL_OP.search(op_type) else (
                    "data movement" if op_type in _MOVE_OPS else "elementwise/reduce")
                by_cat[cls] += ms
                by_key[op_type] += ms
    total = sum(by_cat.values())
    return {"wall_ms": 1e3 * wall, "traced_ms": total, "untraced_ms": 1e3 * wall - total,
            "unmatched_ms": unmatched, "categories": {k: v for k, v in by_cat.most_common()},
            "top": [[k, v] for k, v in by_key.most_common(15)], "runs": runs}


def _trace_check(dims, runs, logdir):
    """How much of an isolated XLA matmul's wall time its trace event covers, int32 vs
    float32 (the int32 dot's event under-reports it)."""
    import tensorflow as tf
    rng = np.random.default_rng(1)
    out = {}
    for dtype in (np.int32, np.float32):
        a = tf.constant(rng.integers(-127, 128, dims[:-1]).astype(dtype))
        b = tf.constant(rng.integers(-127, 128, dims[:-3] + dims[-2:]).astype(dtype))
        fn = _tf_function(lambda x, y: tf.matmul(x, y), "xla")
        classes = _hlo_classes(fn.experimental_get_compiler_ir(a, b)(stage="optimized_hlo"))
        t = _trace(lambda f=fn, x=a, y=b: f(x, y), runs,
                   os.path.join(logdir, np.dtype(dtype).name), classes)
        out[np.dtype(dtype).name] = {"shape": "x".join(map(str, dims)), "wall_ms": t["wall_ms"],
                                     "traced_ms": t["traced_ms"], "categories": t["categories"]}
    return out


# ----------------------------------------------------------------------------- run
def _aggregate(layers, channel, modes):
    """Step table: per group, net ms (overhead subtracted) of the engine and the float codec
    per mode, the engine's int8-matmul what-if (XLA) and the op counts."""
    rows = {g: {"group": g, "engine": dict.fromkeys(modes, 0.0),
                "float": dict.fromkeys(modes, 0.0), "engine_ops": 0, "float_ops": 0,
                "engine_steps": 0, "float_steps": 0, "engine_xla_int8_matmul": 0.0}
            for g in GROUPS}
    raw = {s: dict.fromkeys(modes, 0.0) for s in ("engine", "float")}
    for rec in list(layers) + [channel]:
        for st in rec["steps"]:
            row = rows[st["group"]]
            row[f"{st['system']}_ops"] += st["ops"]
            row[f"{st['system']}_steps"] += 1
            for mode in modes:
                row[st["system"]][mode] += st[mode]["net_ms"]
                raw[st["system"]][mode] += st[mode]["median_ms"]
            if "xla" in modes and st["system"] == "engine":
                what_if = st["xla_int8"]["net_ms"] if "xla_int8" in st else st["xla"]["net_ms"]
                row["engine_xla_int8_matmul"] += what_if
    out = [r for r in rows.values() if r["engine_steps"] or r["float_steps"]]
    for mode in modes:
        total = sum(r["engine"][mode] for r in out)
        for r in out:
            r.setdefault("engine_share", {})[mode] = r["engine"][mode] / total if total else 0.0
    return out, raw


def _channel_job(engine, float_model, latent_int, latent_float, snr_q, snr_db, seed, modes,
                 args, overhead):
    """The channel as one step: engine (power normalisation, integer AWGN, requantisation
    onto the decoder's grid) and float (Sionna link)."""
    import tensorflow as tf
    from fqliscs_tf.engine.layers import requantize

    def engine_channel(latent, snr, sd):
        re_, im = engine.symbols(latent)
        re_hat, im_hat = engine._int_channel(re_, im, snr, sd)
        y = tf.reshape(tf.stack([re_hat, im_hat], axis=-1), tf.shape(latent))
        return requantize(y, engine._rx_mult, engine.spec.act_bits)

    def float_channel(latent, snr):
        return float_model.link(latent, snr)["latent_hat"]

    e_args = (latent_int, snr_q, seed)
    f_args = (latent_float, snr_db)
    calls = {}
    for mode in modes:
        ef = _tf_function(engine_channel, mode, autograph=True)
        ff = _tf_function(float_channel, mode, autograph=True)
        calls[("engine", mode)] = (lambda f=ef: f(*e_args))
        calls[("float", mode)] = (lambda f=ff: f(*f_args))
    timed = _time_round_robin(calls, args.repeats, args.warmup)
    steps = []
    for i, (system, fn, fn_args) in enumerate((("engine", engine_channel, e_args),
                                               ("float", float_channel, f_args))):
        row = {"group": "channel", "label": "channel", "system": system, "step": 0,
               "ops": _op_count(fn, fn_args), "out_elements": int(np.prod(latent_int.shape))}
        for mode in modes:
            t = timed[(system, mode)]
            row[mode] = dict(t, net_ms=max(0.0, t["median_ms"] - overhead[mode]))
        steps.append(row)
    record = {"part": "channel", "index": 0, "kind": "channel", "name": "channel",
              "input_shape": list(latent_int.shape), "output_shape": list(latent_int.shape),
              "steps": steps}
    for system in ("engine", "float"):
        record[system] = {mode: timed[(system, mode)] for mode in modes}
    return record, engine_channel(*e_args), float_channel(*f_args)


def run(args, argv=None):
    """Profile the engine and the float codec; returns the results dict (also written)."""
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TF already initialised in this process (e.g. under pytest)
        print(f"TF is already initialised: --threads {args.threads} not applied",
              file=sys.stderr)
    threads = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
               "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    tf.get_logger().setLevel("ERROR")  # one tf.function per step: retracing warnings
    from fqliscs_tf.checkpoints import load_model
    from fqliscs_tf.engine import IntegerCodec, quantize_image, quantize_snr_db
    from fqliscs_tf.engine.tflite import kodak_crops
    from fqliscs_tf.utils import provenance

    height, width = args.size
    modes = list(args.modes)
    load = {"start": os.getloadavg()}
    started = time.perf_counter()
    engine = IntegerCodec(args.engine, "awgn", jit_compile=True)
    float_model = load_model(args.float_model, channel_type="awgn")
    spec, cfg = engine.spec, engine.config
    image = tf.constant(kodak_crops(height, width, count=1)[0][None])
    pixels = quantize_image(image)
    snr_q = quantize_snr_db([args.snr_db], spec.snr_step_db)
    snr_col_q = tf.reshape(snr_q, [-1, 1])
    snr_db = tf.constant([args.snr_db], tf.float32)
    snr_col = tf.reshape(snr_db, [-1, 1])
    seed = tf.constant([0, 0], tf.int32)

    # 1. end to end, every system round-robin
    print(f"[{width}x{height}] end to end", file=sys.stderr, flush=True)
    e2e_fns = {}
    for mode in modes:
        codec = engine if mode == "xla" else IntegerCodec(engine.params, "awgn",
                                                          jit_compile=False)
        f = _tf_function(lambda a, b: float_model((a, b))["x_hat"], mode, autograph=True)
        e2e_fns[("engine", mode)] = (lambda c=codec: c(image, args.snr_db, seed=(0, 0))[
            "x_hat"].numpy())
        e2e_fns[("float", mode)] = (lambda f=f: f(image, snr_db).numpy())
    e2e_first = _time_round_robin(e2e_fns, args.repeats, args.warmup, keep=True)

    overhead = _call_overhead(modes, args.repeats, args.warmup)

    # 2. layers and their steps
    layers = []
    jobs = _layer_jobs("encoder", engine.params.encoder, float_model.encoder, pixels, image,
                       snr_col_q, snr_col, spec, cfg.patch_size)
    latent_int = latent_float = None
    for record, e, f, e_whole, f_whole, (latent_int, latent_float) in jobs:
        print(f"[{width}x{height}] encoder {record['index']} {record['name']}", file=sys.stderr,
              flush=True)
        layers.append(_profile_layer(record, e, f, e_whole, f_whole, modes, args, overhead))
    print(f"[{width}x{height}] channel", file=sys.stderr, flush=True)
    channel, y_int, y_float = _channel_job(engine, float_model, latent_int, latent_float,
                                           snr_q, snr_db, seed, modes, args, overhead)
    jobs = _layer_jobs("decoder", engine.params.decoder, float_model.decoder, y_int, y_float,
                       snr_col_q, snr_col, spec, cfg.patch_size)
    for record, e, f, e_whole, f_whole, _ in jobs:
        print(f"[{width}x{height}] decoder {record['index']} {record['name']}", file=sys.stderr,
              flush=True)
        layers.append(_profile_layer(record, e, f, e_whole, f_whole, modes, args, overhead))
    groups, raw = _aggregate(layers, channel, modes)

    # 3. matmul micro-benchmark
    print(f"[{width}x{height}] matmul micro-benchmark", file=sys.stderr, flush=True)
    matmul = _matmul_bench(args.matmul_shapes, modes, args.repeats, args.warmup)

    # 4. op-level traces of the end-to-end runs
    traces = {}
    if args.trace:
        with tempfile.TemporaryDirectory() as tmp:
            for mode in modes:
                print(f"[{width}x{height}] trace {mode}", file=sys.stderr, flush=True)
                codec = engine if mode == "xla" else IntegerCodec(engine.params, "awgn",
                                                                  jit_compile=False)
                f = _tf_function(lambda a, b: float_model((a, b))["x_hat"], mode,
                                 autograph=True)
                systems = {"engine": (codec._integer_fn, (pixels, snr_q, seed)),
                           "float": (f, (image, snr_db))}
                for system, (fn, fn_args) in systems.items():
                    classes = None
                    if mode == "xla":
                        classes = _hlo_classes(fn.experimental_get_compiler_ir(*fn_args)(
                            stage="optimized_hlo"))
                    traces[f"{system}_{mode}"] = _trace(
                        lambda fn=fn, a=fn_args: fn(*a), args.trace_runs,
                        os.path.join(tmp, f"{system}_{mode}"), classes)
            if "xla" in modes and args.matmul_shapes:
                traces["xla_matmul_check"] = _trace_check(args.matmul_shapes[0], 10,
                                                          os.path.join(tmp, "check"))

    # 1b. end to end again (the load drifts during a run): medians over both rounds
    print(f"[{width}x{height}] end to end, second round", file=sys.stderr, flush=True)
    e2e_second = _time_round_robin(e2e_fns, args.repeats, 1, keep=True)
    end_to_end = []
    for key in e2e_fns:
        pooled = [t / 1e3 for t in e2e_first[key]["times_ms"] + e2e_second[key]["times_ms"]]
        end_to_end.append({"system": key[0], "mode": key[1], **_summary(pooled),
                           "first_round_median_ms": e2e_first[key]["median_ms"],
                           "second_round_median_ms": e2e_second[key]["median_ms"]})

    load["end"] = os.getloadavg()
    sums = {s: {m: sum(r[s][m]["median_ms"] for r in layers + [channel]) for m in modes}
            for s in ("engine", "float")}
    out = {"name": "profile_engine",
           "description": "Where the integer engine's time goes: end-to-end latency, op groups "
                          "timed in isolation (engine vs float codec, XLA and graph mode), "
                          "matmul micro-benchmark, op-level traces",
           "settings": {"size": f"{width}x{height}", "height": height, "width": width,
                        "repeats": args.repeats, "warmup": args.warmup,
                        "threads": args.threads, "tf_threads": threads, "modes": modes,
                        "snr_db": args.snr_db,
                        "engine": args.engine, "float_model": args.float_model,
                        "image": "first bundled Kodak image (fqliscs_tf/assets/kodak), "
                                 "centre crop", "load_average": load,
                        "total_seconds": time.perf_counter() - started},
           "end_to_end": end_to_end,
           "call_overhead_ms": overhead,
           "groups": groups,
           "steps_raw_sum_ms": raw,
           "layers_sum_ms": sums,
           "layers": layers + [channel],
           "matmul": matmul,
           "trace": traces,
           "meta": provenance(command="python -m experiments.profile_engine " + " ".join(
               argv if argv is not None else sys.argv[1:]))}
    out["markdown"] = {"end_to_end": format_end_to_end(out), "groups": format_groups(out),
                       "layers": format_layers(out), "matmul": format_matmul(matmul),
                       "trace": format_trace(traces)}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1)
    return out


# ----------------------------------------------------------------------------- tables
def _e2e(out, system, mode):
    return next((r["median_ms"] for r in out["end_to_end"]
                 if r["system"] == system and r["mode"] == mode), None)


def format_end_to_end(out):
    """Markdown: end-to-end medians and the sums of the isolated layers / steps."""
    modes = out["settings"]["modes"]
    lines = ["| system | mode | end to end [ms] | sum of layers [ms] | sum of steps [ms] |",
             "|---|---|---:|---:|---:|"]
    for system in ("engine", "float"):
        for mode in modes:
            lines.append(f"| {system} | {mode} | {_e2e(out, system, mode):.1f} | "
                         f"{out['layers_sum_ms'][system][mode]:.1f} | "
                         f"{out['steps_raw_sum_ms'][system][mode]:.1f} |")
    return "\n".join(lines)


def format_groups(out):
    """Markdown: the op-group table (net of the per-call overhead)."""
    modes = out["settings"]["modes"]
    head = "| op group |"
    for mode in modes:
        head += f" engine {mode} [ms] | float {mode} [ms] | share of engine ({mode}) |"
    if "xla" in modes:
        head += " engine XLA, int8 matmuls [ms] |"
    head += " TF ops engine / float |"
    lines = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    totals = collections.defaultdict(float)
    for r in out["groups"]:
        line = f"| {r['group']} |"
        for mode in modes:
            line += (f" {r['engine'][mode]:.1f} | {r['float'][mode]:.1f} | "
                     f"{100 * r['engine_share'][mode]:.0f} % |")
            totals[("engine", mode)] += r["engine"][mode]
            totals[("float", mode)] += r["float"][mode]
        if "xla" in modes:
            line += f" {r['engine_xla_int8_matmul']:.1f} |"
            totals["int8"] += r["engine_xla_int8_matmul"]
        line += f" {r['engine_ops']} / {r['float_ops']} |"
        lines.append(line)
    line = "| **sum of steps** |"
    for mode in modes:
        line += f" {totals[('engine', mode)]:.1f} | {totals[('float', mode)]:.1f} | 100 % |"
    if "xla" in modes:
        line += f" {totals['int8']:.1f} |"
    lines.append(line + " |")
    return "\n".join(lines)


def format_layers(out):
    """Markdown: every layer, engine vs float, whole-layer medians."""
    modes = out["settings"]["modes"]
    head = "| part | # | layer | kind |" + "".join(
        f" engine {m} [ms] | float {m} [ms] |" for m in modes)
    lines = [head, "|---|---:|---|---|" + "---:|" * (2 * len(modes))]
    for r in out["layers"]:
        line = f"| {r['part']} | {r['index']} | {r['name']} | {r['kind']} |"
        for mode in modes:
            line += f" {r['engine'][mode]['median_ms']:.2f} | {r['float'][mode]['median_ms']:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def format_matmul(rows):
    """Markdown: the matmul micro-benchmark."""
    lines = ["| shape | operands | mode | median [ms] | GMAC/s |", "|---|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['dtype']} | {r['mode']} | {r['median_ms']:.2f} | "
                     f"{r['gmac_per_s']:.1f} |")
    return "\n".join(lines)


def format_trace(traces):
    """Markdown: traced time per category of every end-to-end run."""
    lines = ["| run | wall [ms] | traced [ms] | categories [ms] | top ops [ms] |",
             "|---|---:|---:|---|---|"]
    for name, t in traces.items():
        if name == "xla_matmul_check":
            for dtype, c in t.items():
                cats = ", ".join(f"{k} {v:.2f}" for k, v in c["categories"].items())
                lines.append(f"| isolated XLA matmul {c['shape']} {dtype} | {c['wall_ms']:.2f} "
                             f"| {c['traced_ms']:.2f} | {cats} | |")
            continue
        cats = ", ".join(f"{k} {v:.1f}" for k, v in t["categories"].items())
        top = ", ".join(f"{k} {v:.1f}" for k, v in t["top"][:6])
        lines.append(f"| {name} | {t['wall_ms']:.1f} | {t['traced_ms']:.1f} | {cats} | {top} |")
    return "\n".join(lines)


def main(argv=None):
    """Command-line entry point."""
    args = build_parser().parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1 or args.trace_runs < 1:
        raise SystemExit("--repeats, --threads and --trace-runs must be >= 1, --warmup >= 0")
    out = run(args, argv)
    for key in ("end_to_end", "groups", "layers", "matmul", "trace"):
        print(out["markdown"][key])
        print()
    print(f"results written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
