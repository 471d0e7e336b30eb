# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Measure training and inference speed and peak memory of the codec presets on this machine.

For every (preset, task, mode, precision) it starts a fresh Python process, so that the
peak RSS belongs to that configuration alone and no tracing or XLA cache is shared::

    fqliscs-benchmark --presets lite,div2k,cifar10 --modes eager,graph,xla \\
        --tasks train,infer --size 256 --repeats 5 --iters 3

Tasks: ``train`` is one Adam step on a batch (``Trainer.train_step``); ``infer`` is
encoder -> channel -> decoder on a batch (``JSCC`` forward pass, SNR 10 dB).
Modes: ``eager`` (``tf.config.run_functions_eagerly``), ``graph`` (``tf.function``)
and ``xla`` (``tf.function(jit_compile=True)``). Precisions: ``float32`` and
``mixed_bfloat16`` (keras' mixed policy: bfloat16 compute, float32 variables, the channel
and the output in float32; oneDNN runs bfloat16 matmuls on AMX or AVX512-BF16 where the CPU
has them). Each child runs ``--warmup`` calls
(the first one traces / compiles; its time is reported as ``compile_s``), then
``--repeats`` timed runs of ``--iters`` batches each. cifar10 always runs on 32x32.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

__all__ = ["main", "build_parser", "run_benchmark", "format_table"]

MODES = ("eager", "graph", "xla")
PRECISIONS = ("float32", "mixed_bfloat16")
TASKS = ("train", "infer")
# Presets with a fixed, small input size (side [pixels]); the others use --size.
FIXED_SIZE = {"cifar10": 32}
DEFAULT_BATCH = {"train": (4, 64), "infer": (1, 64)}  # (high-resolution, fixed-size)
TRAIN_SNRS = (1.0, 4.0, 7.0, 10.0, 13.0)
INFER_SNR_DB = 10.0
RESULT_MARK = "@@fqliscs-benchmark@@ "
_CONFIG_TUPLES = ("embed_dims", "depths", "num_heads")


# ----------------------------------------------------------------------------- command line

def _csv_choice(allowed, what):
    def parse(text):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty list of {what}s")
        for item in items:
            if item not in allowed:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {item!r}; choose from {', '.join(allowed)}")
        return list(dict.fromkeys(items))  # dedupe, keep order
    return parse


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _overrides(text):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def build_parser():
    from fqliscs_tf.presets import preset_names
    p = argparse.ArgumentParser(
        prog="fqliscs-benchmark", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", type=_csv_choice(preset_names(), "preset"),
                   default=["lite", "div2k", "cifar10"],
                   help="comma-separated presets (default lite,div2k,cifar10; "
                        f"known: {', '.join(preset_names())})")
    p.add_argument("--size", type=_positive_int, default=256,
                   help="square image side [pixels] for the high-resolution presets; a multiple "
                        "of the preset's size_multiple. cifar10 always uses 32 "
                        "(default %(default)s)")
    p.add_argument("--modes", type=_csv_choice(MODES, "mode"), default=list(MODES),
                   help="comma-separated execution modes: eager (tf.config."
                        "run_functions_eagerly), graph (tf.function), xla (tf.function with "
                        "jit_compile=True) (default eager,graph,xla)")
    p.add_argument("--precisions", type=_csv_choice(PRECISIONS, "precision"),
                   default=["float32"],
                   help="comma-separated compute precisions: float32, mixed_bfloat16 (keras "
                        "mixed policy, float32 variables) (default float32)")
    p.add_argument("--tasks", type=_csv_choice(TASKS, "task"), default=list(TASKS),
                   help="comma-separated tasks: train (one Adam step per batch, one SNR per "
                        "image from 1,4,7,10,13 dB) and infer (encoder -> channel -> decoder "
                        f"at {INFER_SNR_DB:g} dB) (default train,infer)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="training batch [images] (default 4 for high-resolution presets, 64 "
                        "for cifar10)")
    p.add_argument("--infer-batch", type=_positive_int, default=None,
                   help="inference batch [images]; latency is the batch time divided by it "
                        "(default 1 for high-resolution presets, 64 for cifar10)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed calls before timing, at least 2; the first traces and "
                        "compiles (default %(default)s)")
    p.add_argument("--repeats", type=_positive_int, default=5,
                   help="timed runs per configuration (default %(default)s)")
    p.add_argument("--iters", type=_positive_int, default=3,
                   help="batches per timed run (default %(default)s)")
    p.add_argument("--channel", default="awgn",
                   help="channel type between encoder and decoder, one of phy.CHANNEL_TYPES "
                        "(e.g. awgn, rayleigh, ofdm-tdl), with its default parameters "
                        "(default %(default)s)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="TensorFlow intra- and inter-op threads in each child "
                        "(default: TensorFlow's choice)")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds allowed per child process; one that runs longer is "
                        "recorded as 'timeout'; 0 = no limit (default %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of each child (weights, input images, SNR draws and "
                        "channel noise) (default %(default)s)")
    p.add_argument("--preset-overrides", type=_overrides, default=None,
                   help="JSON object of CodecConfig fields applied to every preset, for tiny "
                        "test runs, e.g. '{\"embed_dims\": [16, 24], \"depths\": [1, 1], "
                        "\"num_heads\": [2, 2], \"C\": 8}'")
    p.add_argument("--output", default=os.path.join("experiments", "results", "benchmark.json"),
                   help="results JSON path; parent folders are created (default %(default)s)")
    p.add_argument("--markdown", action="store_true",
                   help="print the summary as a Markdown table (for docs/RESULTS.md)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def _config(preset, overrides):
    from fqliscs_tf.presets import get_config
    overrides = dict(overrides or {})
    for key in _CONFIG_TUPLES:
        if isinstance(overrides.get(key), list):
            overrides[key] = tuple(overrides[key])
    return get_config(preset, **overrides)


def _resolve(args, parser):
    """Checks flag combinations and builds one job spec per (preset, task, mode, precision)."""
    from phy import CHANNEL_TYPES
    if args.warmup < 2:
        parser.error(f"--warmup must be at least 2 (tracing plus one settled call), "
                     f"got {args.warmup}")
    if args.timeout < 0:
        parser.error(f"--timeout must be >= 0, got {args.timeout}")
    if args.channel.lower() not in CHANNEL_TYPES:
        parser.error(f"unknown --channel {args.channel!r}; choose from {', '.join(CHANNEL_TYPES)}")
    jobs = []
    for preset in args.presets:
        try:
            cfg = _config(preset, args.preset_overrides)
        except (TypeError, ValueError) as e:
            parser.error(f"--preset-overrides do not fit preset {preset!r}: {e}")
        fixed = preset in FIXED_SIZE
        size = FIXED_SIZE[preset] if fixed else args.size
        if size % cfg.size_multiple:
            parser.error(f"--size {size} is not a multiple of {cfg.size_multiple} "
                         f"(downsampling {cfg.downsampling} x window {cfg.window_size}) "
                         f"required by preset {preset!r}")
        for task in args.tasks:
            given = args.batch_size if task == "train" else args.infer_batch
            batch = given or DEFAULT_BATCH[task][int(fixed)]
            for mode in args.modes:
                for precision in args.precisions:
                    jobs.append({"preset": preset, "task": task, "mode": mode,
                                 "precision": precision, "batch_size": batch, "size": size,
                                 "overrides": args.preset_overrides, "warmup": args.warmup,
                                 "repeats": args.repeats, "iters": args.iters,
                                 "channel": args.channel, "threads": args.threads,
                                 "seed": args.seed})
    return jobs


# ----------------------------------------------------------------------------- child process

def _current_rss_mib():
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_mib():
    import resource
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024 if sys.platform.startswith("linux") else kib / 2 ** 20


def _make_step(spec, model, tf):
    """The function timed for ``spec``: a no-argument callable returning a tensor."""
    batch, size, mode = spec["batch_size"], spec["size"], spec["mode"]
    images = tf.random.uniform([batch, size, size, 3], seed=spec["seed"])
    if spec["task"] == "train":
        from fqliscs_tf.training import Trainer
        trainer = Trainer(model, list(TRAIN_SNRS), metric="MSE", lr=1e-4,
                          global_batch_size=batch, seed=spec["seed"],
                          jit_compile=mode == "xla", strategy=tf.distribute.get_strategy())
        return lambda: trainer.train_step(images)[0]
    snr_db = tf.fill([batch], INFER_SNR_DB)

    def forward(image, snr):
        return model((image, snr), training=False)["x_hat"]

    if mode != "eager":
        forward = tf.function(forward, jit_compile=mode == "xla")
    return lambda: forward(images, snr_db)


def _measure(spec):
    rss_start = _current_rss_mib()
    import tensorflow as tf
    if spec["threads"]:
        tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(spec["threads"])
    import tf_keras as keras

    from fqliscs_tf.codec import JSCC
    from fqliscs_tf.utils import set_seed
    keras.mixed_precision.set_global_policy(spec["precision"])
    if spec["mode"] == "eager":
        tf.config.run_functions_eagerly(True)  # the train step is a tf.function
    set_seed(spec["seed"])
    cfg = _config(spec["preset"], spec["overrides"])
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model = JSCC(cfg, channel_type=spec["channel"]).build_for()
        step = _make_step(spec, model, tf)
    rss_built = _current_rss_mib()

    warmup_s = []
    for _ in range(spec["warmup"]):
        t0 = time.perf_counter()
        step().numpy()
        warmup_s.append(time.perf_counter() - t0)
    rss_before = _current_rss_mib()
    peak_before = _peak_rss_mib()

    images = spec["batch_size"] * spec["iters"]
    runs = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        for _ in range(spec["iters"]):
            out = step()
        out.numpy()  # wait for the last batch
        seconds = time.perf_counter() - t0
        runs.append({"seconds": seconds, "images": images, "images_per_s": images / seconds,
                     "latency_ms": 1e3 * seconds / images,
                     "batch_ms": 1e3 * seconds / spec["iters"]})
    return {"status": "ok", "params": int(model.count_params()),
            "compile_s": warmup_s[0], "warmup_s": warmup_s, "runs": runs,
            "rss_start_mib": rss_start, "rss_after_build_mib": rss_built,
            "rss_before_timed_mib": rss_before, "peak_rss_before_timed_mib": peak_before,
            "peak_rss_mib": _peak_rss_mib(), "loadavg_1min": os.getloadavg()[0],
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


def _worker(spec_json):
    """Child entry point: measure one spec, print one marked JSON line."""
    import traceback
    spec = json.loads(spec_json)
    try:
        result = _measure(spec)
        code = 0
    except Exception as e:  # reported to the parent, which keeps going
        result = {"status": "error", "error": f"{type(e).__name__}: {e}",
                  "traceback": traceback.format_exc()[-4000:], "peak_rss_mib": _peak_rss_mib()}
        code = 1
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    return code


# ----------------------------------------------------------------------------- parent process

def _run_child(spec, timeout):
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [sys.executable, "-m", "experiments.benchmark", "--worker", json.dumps(spec)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=timeout or None)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "error": f"no result within {timeout:g} s",
                "wall_s": time.perf_counter() - start}
    wall = time.perf_counter() - start
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            result["wall_s"] = wall
            return result
    how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
           else f"exit code {proc.returncode}")
    return {"status": "error", "error": f"child gave no result ({how})",
            "stderr": proc.stderr[-4000:], "wall_s": wall}


def _summarise(spec, child, macs):
    """One result record: the spec, summary statistics and the child's raw figures."""
    rec = {k: spec[k] for k in ("preset", "task", "mode", "precision", "batch_size", "size")}
    rec["status"] = child.get("status", "error")
    rec["macs_per_image"] = macs
    runs = child.get("runs") or []
    ips = [r["images_per_s"] for r in runs]
    ok = rec["status"] == "ok" and ips
    rec["images_per_s_median"] = statistics.median(ips) if ok else None
    rec["images_per_s_min"] = min(ips) if ok else None
    rec["images_per_s_max"] = max(ips) if ok else None
    rec["latency_ms_median"] = (statistics.median(r["latency_ms"] for r in runs)
                                if ok and spec["task"] == "infer" else None)
    rec["batch_ms_median"] = statistics.median(r["batch_ms"] for r in runs) if ok else None
    rec["forward_gmac_per_s"] = (macs * rec["images_per_s_median"] / 1e9
                                 if ok and spec["task"] == "infer" else None)
    rec["compile_s"] = child.get("compile_s")
    rec["peak_rss_mib"] = child.get("peak_rss_mib")
    rec.update({k: v for k, v in child.items() if k not in rec and k not in ("status", "runs")})
    rec["runs"] = runs
    return rec


COLUMNS = [("preset", "preset", "{}"), ("task", "task", "{}"), ("mode", "mode", "{}"),
           ("precision", "precision", "{}"),
           ("batch", "batch_size", "{}"), ("size", "size", "{}"),
           ("img/s median", "images_per_s_median", "{:.2f}"),
           ("min", "images_per_s_min", "{:.2f}"), ("max", "images_per_s_max", "{:.2f}"),
           ("latency ms", "latency_ms_median", "{:.1f}"), ("compile s", "compile_s", "{:.2f}"),
           ("peak RSS MiB", "peak_rss_mib", "{:.0f}")]
TEXT_COLUMNS = 4  # the first columns are left-aligned text


def format_table(results, markdown=False):
    """The summary table as plain text or Markdown."""
    rows = []
    for rec in results:
        row = []
        for _, key, fmt in COLUMNS:
            value = rec.get(key)
            if key == "images_per_s_median" and rec["status"] != "ok":
                row.append(rec["status"])
            else:
                row.append("-" if value is None else fmt.format(value))
        rows.append(row)
    header = [c[0] for c in COLUMNS]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i < TEXT_COLUMNS else "---:"
                                for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) if i >= TEXT_COLUMNS else h.ljust(w)
                       for i, (h, w) in enumerate(zip(header, widths)))]
    lines += ["  ".join(v.rjust(w) if i >= TEXT_COLUMNS else v.ljust(w)
                        for i, (v, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join(lines)


def _write(path, out):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, path)


def run_benchmark(args, jobs, argv=None):
    """Runs every job in a child process; writes the JSON after each one. Returns the dict."""
    from fqliscs_tf.cost import count_macs
    from fqliscs_tf.utils import provenance
    command = shlex.join(["fqliscs-benchmark", *(sys.argv[1:] if argv is None else argv)])
    meta = provenance(command=command, presets=args.presets, size=args.size,
                      modes=args.modes, precisions=args.precisions, tasks=args.tasks,
                      batch_size=args.batch_size,
                      infer_batch=args.infer_batch, warmup=args.warmup, repeats=args.repeats,
                      iters=args.iters, channel=args.channel, threads=args.threads,
                      seed=args.seed, preset_overrides=args.preset_overrides,
                      timeout_s=args.timeout, train_snr_db=list(TRAIN_SNRS),
                      infer_snr_db=INFER_SNR_DB,
                      latency="per image: batch time / batch size, median over runs",
                      compile_s="wall time of the first warm-up call (tracing + compiling)",
                      peak_rss="ru_maxrss of the child process that ran the configuration")
    out = {"name": "benchmark",
           "description": "training (one Adam step per batch) and inference (encoder -> "
                          "channel -> decoder) throughput, latency and peak RSS",
           "meta": meta, "results": []}
    for i, spec in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {spec['preset']} {spec['task']} {spec['mode']} "
              f"{spec['precision']} "
              f"batch {spec['batch_size']} {spec['size']}x{spec['size']} ...",
              file=sys.stderr, flush=True)
        child = _run_child(spec, args.timeout)
        macs = count_macs(_config(spec["preset"], spec["overrides"]),
                          spec["size"], spec["size"])["total"]
        rec = _summarise(spec, child, macs)
        if rec["status"] != "ok":
            print(f"    {rec['status']}: {rec.get('error', '')}", file=sys.stderr, flush=True)
        out["results"].append(rec)
        _write(args.output, out)
    return out


def main(argv=None):
    """Command-line entry point. Returns 0 when every measurement succeeded, else 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker is not None:
        return _worker(args.worker)
    jobs = _resolve(args, parser)
    out = run_benchmark(args, jobs, argv)
    print(format_table(out["results"], markdown=args.markdown))
    print(f"results written to {args.output}", file=sys.stderr)
    return 0 if all(r["status"] == "ok" for r in out["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
