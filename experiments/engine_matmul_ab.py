"""A/B latency of the integer engine: int8 x int8 -> int32 matmuls vs int32 x int32 ones.

Builds the shipped integer codec twice in one process, once with
:func:`fqliscs_tf.engine.layers.int_matmul` (int8 operands when both fit) and once with every
matmul in int32, checks that both give identical pixels, and times them interleaved
(median of ``--repeats`` runs, XLA, batch 1, no channel noise change between runs).

    python -m experiments.engine_matmul_ab --size 256 --repeats 7
"""
import argparse
import json
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="fqliscs_tf/weights/lite_c96_awgn_int",
                   help="integer engine folder")
    p.add_argument("--size", type=int, default=256, help="square image side [pixels]")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per variant")
    p.add_argument("--output", default=None, help="JSON file for the timings")
    args = p.parse_args(argv)
    if args.size <= 0 or args.repeats <= 0:
        p.error("--size and --repeats must be positive")

    import tensorflow as tf
    import fqliscs_tf.engine.layers as layers
    from fqliscs_tf.engine import IntegerCodec

    def int32_matmul(a, b, bits_a, bits_b, transpose_b=False):
        return tf.matmul(tf.cast(a, tf.int32), tf.cast(b, tf.int32), transpose_b=transpose_b)

    x = tf.constant(np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, 3)),
                    tf.int32)
    snr, seed = tf.constant([40]), tf.constant([0, 0])
    variants, pixels = {}, {}
    for name, fn in (("int8", layers.int_matmul), ("int32", int32_matmul)):
        original, layers.int_matmul = layers.int_matmul, fn
        try:
            codec = IntegerCodec(args.model)
            pixels[name] = codec._integer_fn(x, snr, seed)["x_hat"].numpy()  # traces now
        finally:
            layers.int_matmul = original
        variants[name] = codec
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, codec in variants.items():
            t = time.perf_counter()
            codec._integer_fn(x, snr, seed)["x_hat"].numpy()
            times[name].append(1000 * (time.perf_counter() - t))
    result = {"size": args.size, "identical": bool(np.array_equal(pixels["int8"], pixels["int32"])),
              "median_ms": {k: float(np.median(v)) for k, v in times.items()},
              "runs_ms": times}
    result["speedup"] = result["median_ms"]["int32"] / result["median_ms"]["int8"]
    print(json.dumps({k: result[k] for k in ("identical", "median_ms", "speedup")}))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
