# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""int8 vs float32 matrix products in TFLite (XNNPACK) and TF on this CPU, at the codec's shapes.

    python -m experiments.tflite_gemm --threads 1 --repeats 15 \
        --output experiments/results/tflite_gemm.json

The issue's speed target (TFLite int8 at least 2x TF float32) needs int8 kernels that are much
faster than float32 ones. This measures the ceiling for it, one product at a time, so no
softmax, LayerNorm or requantization chain is involved:

* ``dense`` shapes ``MxKxN``: ``[1, M, K] @ [K, N] + bias`` as one FULLY_CONNECTED op (the
  Swin blocks' qkv, proj, fc1 and fc2 at 256x256 have ``M`` = tokens of the stage);
* ``bmm`` shapes ``BxMxKxN``: ``[B, M, K] @ [B, K, N]``, both operands activations, as one
  BATCH_MATMUL op (the attention products, ``B`` = windows x heads).

Each product is converted twice from the same Keras model: float32, and full-integer int8
(int8 I/O, per-channel int8 weights, int32 bias; calibrated on Gaussian inputs). Both run with
ai-edge-litert's default resolver (the XNNPACK delegate; the JSON records the number of
delegate partitions, 1 when the op is delegated) and ``--threads`` threads, and TF float32 runs
the same product under XLA (its time includes TF's per-call dispatch, a few tenths of a ms,
as in the codec benchmark). The systems are timed round-robin (one call of each per round) so
that load changes hit all of them alike; the table gives the median per call [ms], GMAC/s and
the int8 / float32 speed ratios from the same rounds.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

__all__ = ["main", "build_parser", "parse_shapes", "DEFAULT_DENSE", "DEFAULT_BMM"]

# The lite preset at 256x256 (dims 32/64/128/160 at 128^2/64^2/32^2/16^2 tokens, MLP ratio 4):
# stage-0 qkv and fc1, stage-1 fc2, stage-2 fc1, stage-3 qkv.
DEFAULT_DENSE = "16384x32x96,16384x32x128,4096x256x64,1024x128x512,256x160x480"
# Attention: stage 0 (256 windows x 2 heads, 64 tokens, head dim 16), QK^T and A.V.
DEFAULT_BMM = "512x64x16x64,512x64x64x16"


def parse_shapes(text, rank):
    """``"AxBxC,..."`` -> list of int tuples of length ``rank``; ValueError naming a bad item."""
    shapes = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        parts = item.lower().split("x")
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            dims = ()
        if len(dims) != rank or min(dims) < 1:
            raise ValueError(f"shape {item!r} must be {rank} positive integers joined by 'x'")
        shapes.append(dims)
    return shapes


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dense", default=DEFAULT_DENSE,
                   help="FULLY_CONNECTED shapes MxKxN, comma-separated (default: the lite "
                        "codec's at 256x256; empty for none)")
    p.add_argument("--bmm", default=DEFAULT_BMM,
                   help="BATCH_MATMUL shapes BxMxKxN, comma-separated (empty for none)")
    p.add_argument("--threads", type=int, default=1, help="TFLite and TF intra-op threads")
    p.add_argument("--repeats", type=int, default=15, help="timed rounds (default 15)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds (default 3)")
    p.add_argument("--workdir", default="outputs/tflite_gemm", help="folder of the .tflite files")
    p.add_argument("--output", default="outputs/tflite_gemm/tflite_gemm.json")
    return p


def _keras_product(kind, shape, seed=0):
    """A one-op Keras model and its float32 inputs for ``kind`` in {"dense", "bmm"}."""
    import tensorflow as tf
    import tf_keras as keras
    rng = np.random.default_rng(seed)
    if kind == "dense":
        m, k, n = shape
        x = keras.Input((m, k), batch_size=1)
        model = keras.Model(x, keras.layers.Dense(n)(x))
        shapes = [(1, m, k)]
    else:
        b, m, k, n = shape
        a, c = keras.Input((m, k), batch_size=b), keras.Input((k, n), batch_size=b)
        model = keras.Model([a, c], keras.layers.Lambda(lambda t: tf.matmul(*t))([a, c]))
        shapes = [(b, m, k), (b, k, n)]
    return model, [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _convert(model, samples, int8):
    """``.tflite`` bytes of ``model``: float32, or int8 calibrated on Gaussian inputs shaped
    like ``samples``."""
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(1)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.standard_normal(s.shape).astype(np.float32) for s in samples]
            for _ in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _tflite_call(path, samples, threads):
    """A zero-argument callable that runs one ``invoke`` on fixed inputs of the model's dtype."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=path, num_threads=threads)
    interp.allocate_tensors()
    pending = list(samples)
    for detail in interp.get_input_details():  # TFLite may order the inputs differently
        value = pending.pop(next(i for i, s in enumerate(pending)
                                 if list(s.shape) == list(detail["shape"])))
        if detail["dtype"] == np.int8:  # quantized with the input tensor's own parameters
            scale, zero_point = detail["quantization"]
            value = np.clip(np.round(value / scale) + zero_point, -128, 127)
        interp.set_tensor(detail["index"], value.astype(detail["dtype"]))
    return interp.invoke


def _tf_call(model, samples):
    import tensorflow as tf
    inputs = [tf.constant(s, tf.float32) for s in samples]
    fn = tf.function(lambda *t: model(list(t) if len(t) > 1 else t[0]), jit_compile=True)
    return lambda: fn(*inputs).numpy()


def _round_robin(calls, repeats, warmup):
    """Median, min and max per call [ms] of each named callable, timed one after another."""
    times = {name: [] for name in calls}
    for r in range(warmup + repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            if r >= warmup:
                times[name].append(1e3 * (time.perf_counter() - start))
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "max_ms": max(t),
                   "runs": len(t)} for name, t in times.items()}


def measure(kind, shape, args):
    """One row: latency of TF float32 (XLA), TFLite float32 and TFLite int8 for one product."""
    from fqliscs_tf.engine.tflite import check_integer_only, xnnpack_partitions
    model, samples = _keras_product(kind, shape)
    name = f"{kind}_{'x'.join(map(str, shape))}"
    paths = {}
    for mode in ("float32", "int8"):
        paths[mode] = os.path.join(args.workdir, f"{name}_{mode}.tflite")
        with open(paths[mode], "wb") as f:
            f.write(_convert(model, samples, mode == "int8"))
    report = check_integer_only(paths["int8"])
    calls = {"tf_float32_xla": _tf_call(model, samples),
             "tflite_float32": _tflite_call(paths["float32"], samples, args.threads),
             "tflite_int8": _tflite_call(paths["int8"], samples, args.threads)}
    timing = _round_robin(calls, args.repeats, args.warmup)
    macs = int(np.prod(shape))
    row = {"kind": kind, "shape": list(shape), "macs": macs, "timing": timing,
           "integer_only": report["ok"], "int8_ops": report["ops"],
           "xnnpack_partitions": {m: xnnpack_partitions(p, args.threads)
                                  for m, p in paths.items()}}
    for sys_name, t in timing.items():
        row[f"gmacs_{sys_name}"] = macs / t["median_ms"] / 1e6
    row["int8_vs_tflite_float32"] = (timing["tflite_float32"]["median_ms"]
                                     / timing["tflite_int8"]["median_ms"])
    row["int8_vs_tf_float32"] = (timing["tf_float32_xla"]["median_ms"]
                                 / timing["tflite_int8"]["median_ms"])
    return row


def format_table(rows):
    lines = ["| op | shape | TF fp32 XLA [ms] | TFLite fp32 [ms] | TFLite int8 [ms] | "
             "int8 GMAC/s | int8 vs TFLite fp32 | int8 vs TF fp32 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t = r["timing"]
        lines.append(
            f"| {r['kind']} | {'x'.join(map(str, r['shape']))} | "
            f"{t['tf_float32_xla']['median_ms']:.3f} | {t['tflite_float32']['median_ms']:.3f} | "
            f"{t['tflite_int8']['median_ms']:.3f} | {r['gmacs_tflite_int8']:.0f} | "
            f"{r['int8_vs_tflite_float32']:.2f}x | {r['int8_vs_tf_float32']:.2f}x |")
    return "\n".join(lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        jobs = ([("dense", s) for s in parse_shapes(args.dense, 3)]
                + [("bmm", s) for s in parse_shapes(args.bmm, 4)])
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    if not jobs:
        raise SystemExit("error: --dense and --bmm are both empty: nothing to measure")
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        raise SystemExit("error: --threads and --repeats must be >= 1 and --warmup >= 0, got "
                         f"{args.threads}, {args.repeats}, {args.warmup}")
    import tensorflow as tf

    from fqliscs_tf.utils import provenance
    try:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    except RuntimeError:  # TF already running in this process (e.g. under pytest)
        print("TF's thread count is already fixed in this process; TF runs with "
              f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'} threads",
              file=sys.stderr)
    os.makedirs(args.workdir, exist_ok=True)
    load = {"start": os.getloadavg()}
    rows = []
    for kind, shape in jobs:
        rows.append(measure(kind, shape, args))
        print(f"{kind} {shape}: int8 {rows[-1]['int8_vs_tflite_float32']:.2f}x TFLite fp32, "
              f"{rows[-1]['int8_vs_tf_float32']:.2f}x TF fp32", file=sys.stderr, flush=True)
    load["end"] = os.getloadavg()
    out = {"name": "tflite_gemm",
           "description": __doc__.splitlines()[0],
           "settings": {"threads": args.threads, "repeats": args.repeats,
                        "warmup": args.warmup, "load_average": load,
                        "tf_intra_op_threads":
                            tf.config.threading.get_intra_op_parallelism_threads()},
           "results": rows, "markdown": format_table(rows),
           "meta": provenance(command="python -m experiments.tflite_gemm " + " ".join(
               argv if argv is not None else sys.argv[1:]))}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1)
    print(out["markdown"])
    print(f"results written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
