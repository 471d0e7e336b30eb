# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Latency of the float codec, the integer engine and the TFLite models on this machine.

One process measures every system on the same images, so that the speed ratios come from
the same run::

    fqliscs-benchmark-int --sizes 256x256,768x512 --repeats 7 --threads 2

Systems (batch 1, one image per call, AWGN at ``--snr-db``; each codec runs encoder ->
channel -> decoder):

* ``tf_float32_xla``: the float codec (:func:`fqliscs_tf.checkpoints.load_model`), Sionna
  AWGN, ``tf.function(jit_compile=True)``;
* ``engine_int``: :class:`fqliscs_tf.engine.IntegerCodec` (TF integer ops, XLA);
* ``tflite_int8[_ref]``: :class:`fqliscs_tf.engine.tflite.TFLiteCodec` on the int8 export,
  ai-edge-litert default kernels (XNNPACK delegate) and the reference kernels;
* ``tflite_16x8``: the 16x8 export (int16 activations, int8 kernels, int8 I/O);
* ``tflite_float32``: the same twin graph in float32 (XNNPACK), float AWGN in NumPy;
* ``tflite_int8[NAME]`` (with ``--int8-variants``): int8 exports with other
  :class:`~fqliscs_tf.engine.tflite.TwinOptions` (e.g. the XNNPACK-delegated LayerNorm,
  softmax and GELU forms), timed as ``tflite_int8``; their PSNR joins the PSNR rows and the
  number of XNNPACK delegate partitions of each model goes to the JSON (``xnnpack_partitions``,
  also recorded for ``tflite_int8``).

Each system runs ``--warmup`` calls, then ``--repeats`` timed calls; the table shows the
median (and min/max) per image. The TFLite rows also give encoder + decoder ``invoke`` time
alone. Before timing, the PSNR of the engine and of both TFLite exports is measured on the
bundled Kodak images (centre crops at each size) at ``--psnr-snrs`` (AWGN, channel seed
(0, 0)). The TFLite models are exported at each size, calibrated on ``--calibration``
images. Results (with provenance and the machine load) go to ``--output`` as JSON; the
markdown tables are printed.
"""
import argparse
import dataclasses
import json
import os
import re
import statistics
import sys
import time

import numpy as np

__all__ = ["main", "build_parser", "parse_size", "parse_int8_variants", "run", "format_table",
           "format_psnr_table"]

SYSTEMS = ("tf_float32_xla", "engine_int", "tflite_int8", "tflite_int8_ref", "tflite_16x8",
           "tflite_float32")
_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fqliscs_tf", "weights")
DEFAULT_QAT = os.path.join(_WEIGHTS, "lite_c96_awgn_int")   # the shipped integer codec
DEFAULT_FLOAT = os.path.join(_WEIGHTS, "lite_c96_awgn")
INT8_VARIANT_KEYS = ("gelu", "layer_norm", "softmax", "mask", "fold_norm")


def parse_size(text):
    """``"768x512"`` (width x height) -> ``(height, width)``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return height, width


def _sizes(text):
    return [parse_size(s) for s in text.split(",") if s.strip()]


def _systems(text):
    items = [s.strip() for s in text.split(",") if s.strip()]
    for item in items:
        if item not in SYSTEMS:
            raise argparse.ArgumentTypeError(f"unknown system {item!r}; choose from "
                                             f"{', '.join(SYSTEMS)}")
    return items


def parse_int8_variants(text):
    """``--int8-variants`` -> ``{name: TwinOptions overrides}`` (``activations="int8"`` implied).

    Comma-separated items, each a preset (``xnnpack``: ``TwinOptions.xnnpack()``, i.e.
    ``layer_norm:mlp;gelu:erf``; ``xnnpack_all``: ``TwinOptions.xnnpack(gelu="sigmoid",
    softmax="mlp")``; ``xnnpack_elu``: the same with ``softmax="elu"``; ``xnnpack_fold``:
    ``xnnpack_elu`` with ``fold_norm=True``; ``xnnpack_fit``: ``xnnpack_fold`` with
    ``gelu="engine"``) or ``NAME=key:value;key:value`` with keys gelu,
    layer_norm, softmax, mask, fold_norm (true / false). Raises ValueError naming the bad
    item, key or value.
    """
    from fqliscs_tf.engine.tflite import XNNPACK_FORMS, TwinOptions
    variants = {}
    for item in (v.strip() for v in text.split(",")):
        if not item:
            continue
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ValueError(f"int8 variant name must be letters, digits or '_', got {name!r} "
                             f"in {item!r}")
        if name in variants:
            raise ValueError(f"int8 variant {name!r} given twice")
        if not sep:
            if name not in XNNPACK_FORMS:
                raise ValueError(f"unknown int8 variant preset {name!r}; presets: "
                                 f"{', '.join(XNNPACK_FORMS)}, or NAME=key:value;key:value")
            variants[name] = dict(XNNPACK_FORMS[name])
            continue
        overrides = {}
        for pair in (v.strip() for v in spec.split(";")):
            if not pair:
                continue
            key, colon, value = (v.strip() for v in pair.partition(":"))
            if not colon or not value:
                raise ValueError(f"int8 variant {name!r}: expected key:value, got {pair!r}")
            if key not in INT8_VARIANT_KEYS:
                raise ValueError(f"int8 variant {name!r}: unknown key {key!r}; keys: "
                                 f"{', '.join(INT8_VARIANT_KEYS)}")
            if key in overrides:
                raise ValueError(f"int8 variant {name!r}: key {key!r} given twice")
            if key == "fold_norm":
                if value.lower() not in ("true", "false"):
                    raise ValueError(f"int8 variant {name!r}: fold_norm must be true or "
                                     f"false, got {value!r}")
                overrides[key] = value.lower() == "true"
                continue
            try:
                TwinOptions(activations="int8", **{key: value})
            except ValueError as e:
                raise ValueError(f"int8 variant {name!r}: bad value {value!r} for key {key!r} "
                                 f"({e})") from None
            overrides[key] = value
        if not overrides:
            raise ValueError(f"int8 variant {name!r}: no key:value given")
        try:
            TwinOptions(activations="int8", **overrides)
        except ValueError as e:
            raise ValueError(f"int8 variant {name!r}: {e}") from None
        variants[name] = overrides
    return variants


def _int8_variants(text):
    try:
        return parse_int8_variants(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser():
    p = argparse.ArgumentParser(prog="fqliscs-benchmark-int",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qat", default=DEFAULT_QAT,
                   help="QAT codec folder (save_qat) or integer engine folder (its QAT model "
                        "is rebuilt with qat_from_engine); when missing, the float model is "
                        "quantized and calibrated on the bundled Kodak images "
                        "(default %(default)s)")
    p.add_argument("--float-model", default=DEFAULT_FLOAT,
                   help="float codec folder (default %(default)s)")
    p.add_argument("--sizes", type=_sizes, default=_sizes("256x256,768x512"),
                   help="image sizes WIDTHxHEIGHT (default 256x256,768x512)")
    p.add_argument("--systems", type=_systems, default=list(SYSTEMS),
                   help=f"comma-separated subset of {', '.join(SYSTEMS)} (default all)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs (default %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs (default %(default)s)")
    p.add_argument("--threads", type=int, default=2,
                   help="TF intra-op and TFLite threads (default %(default)s)")
    p.add_argument("--snr-db", type=float, default=10.0, help="AWGN SNR [dB] (default 10)")
    p.add_argument("--psnr-snrs", default="1,13",
                   help="SNRs [dB] of the PSNR comparison, '' to skip (default %(default)s)")
    p.add_argument("--calibration", default="",
                   help="comma-separated representative images of the TFLite export "
                        "(default: the bundled Kodak images)")
    p.add_argument("--tflite-dir", default="outputs/benchmark_int_tflite",
                   help="where the TFLite exports are written (default %(default)s)")
    p.add_argument("--reuse-exports", action="store_true",
                   help="reuse exports of the same size and mode found in --tflite-dir")
    p.add_argument("--int8-variants", type=_int8_variants, default={}, metavar="SPECS",
                   help="extra TFLite int8 rows 'tflite_int8[NAME]', exported with other "
                        "TwinOptions (activations int8): comma-separated presets 'xnnpack' "
                        "(layer_norm:mlp;gelu:erf = TwinOptions.xnnpack()), 'xnnpack_all' "
                        "(layer_norm:mlp;gelu:sigmoid;softmax:mlp), 'xnnpack_elu' "
                        "(the same with softmax:elu), 'xnnpack_fold' (xnnpack_elu with "
                        "fold_norm:true) and 'xnnpack_fit' (xnnpack_fold with gelu:engine) or "
                        "'NAME=key:value;key:value' with keys gelu, layer_norm, softmax, mask, "
                        "fold_norm "
                        "(quote the ';'); timed and PSNR-compared as tflite_int8, with the "
                        "XNNPACK partition count per model in the JSON (default none)")
    p.add_argument("--output", default="experiments/results/benchmark_int.json",
                   help="JSON results (default %(default)s)")
    return p


# ----------------------------------------------------------------------------- helpers
def _load_qat(path, float_model):
    from fqliscs_tf.quant.qat import calibrate, load_qat, quantize_codec
    from fqliscs_tf.engine.export import ENGINE_FILE
    if os.path.isfile(os.path.join(path, ENGINE_FILE)):
        from fqliscs_tf.engine.to_qat import qat_from_engine
        return qat_from_engine(path), path
    if os.path.isdir(path):
        return load_qat(path), path
    import tensorflow as tf
    from fqliscs_tf.engine.tflite import kodak_crops
    qat = quantize_codec(float_model)
    crops = [tf.constant(c[None]) for c in kodak_crops(256, 256)]
    calibrate(qat, crops, [1.0, 7.0, 13.0])
    return qat, f"{DEFAULT_FLOAT} quantized + calibrated on 4 Kodak 256x256 crops"


def _export(qat, folder, height, width, options, float32, images, reuse):
    """Export (or, with ``reuse``, keep an export of this size and these
    :class:`~fqliscs_tf.engine.tflite.TwinOptions` in ``folder``)."""
    from fqliscs_tf.engine.tflite import MANIFEST_FILE, export_tflite
    manifest = os.path.join(folder, MANIFEST_FILE)
    if reuse and os.path.isfile(manifest):
        with open(manifest) as f:
            info = json.load(f)
        wanted = {"encoder", "decoder"} | ({"encoder_float32", "decoder_float32"}
                                           if float32 else set())
        if ((info["height"], info["width"]) == (height, width)
                and info["options"] == dataclasses.asdict(options)
                and wanted <= set(info["files"])):
            return 0.0
    start = time.perf_counter()
    export_tflite(qat, folder, height, width, images=images,
                  options=options, float32=float32)
    return time.perf_counter() - start


def _checks(folders):
    """:func:`~fqliscs_tf.engine.tflite.check_integer_only` of every exported model (reference
    kernels), without the per-tensor lists."""
    from fqliscs_tf.engine.tflite import check_integer_only
    out = {}
    for mode, folder in folders.items():
        for part in ("encoder", "decoder"):
            report = check_integer_only(os.path.join(folder, f"{part}.tflite"))
            out[f"{mode}/{part}"] = {k: report[k] for k in (
                "ok", "tensor_dtypes", "ops", "inputs", "outputs", "violations", "notes")}
    return out


def _psnr(x, x_hat):
    return 10.0 * np.log10(1.0 / np.mean((np.asarray(x) - np.asarray(x_hat)) ** 2,
                                         axis=(1, 2, 3)))


def _psnr_rows(engine, folders, images, snrs, size):
    """PSNR per image: engine and both TFLite exports, same SNR grid and channel seed."""
    from fqliscs_tf.engine.tflite import TFLiteCodec
    rows = []
    codecs = {name: TFLiteCodec(folder, "awgn") for name, folder in folders.items()}
    for snr in snrs:
        ref = _psnr(images, engine(images, snr, seed=(0, 0))["x_hat"].numpy())
        row = {"size": size, "snr_db": snr, "engine": ref.tolist()}
        for name, codec in codecs.items():
            got = _psnr(images, codec(images, snr, seed=(0, 0))["x_hat"])
            row[name] = got.tolist()
            row[f"{name}_delta_db"] = float(np.mean(got - ref))
        rows.append(row)
        print(f"[{size}] PSNR @{snr:g} dB: engine {ref.mean():.3f}, " + ", ".join(
            f"{n} {np.mean(row[n]):.3f}" for n in codecs), file=sys.stderr, flush=True)
    return rows


def _time(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
            "max_ms": 1e3 * max(times), "runs": len(times)}


def _float_tflite_codec(folder, threads, snr_db, seed=0):
    """encoder_float32 -> float AWGN (NumPy, unit power) -> decoder_float32, and the two
    invokes alone."""
    from ai_edge_litert.interpreter import Interpreter
    with open(os.path.join(folder, "tflite.json")) as f:
        files = json.load(f)["files"]
    models = {}
    for part in ("encoder", "decoder"):
        it = Interpreter(model_path=os.path.join(folder, files[f"{part}_float32"]),
                         num_threads=threads)
        it.allocate_tensors()
        ins = it.get_input_details()
        models[part] = (it, next(d for d in ins if "snr" not in d["name"]),
                        next(d for d in ins if "snr" in d["name"]),
                        it.get_output_details()[0])
    rng = np.random.default_rng(seed)
    no = 10.0 ** (-snr_db / 10.0)
    snr = np.full([1, 1], snr_db, np.float32)

    def run(part, x):
        it, xin, sin, out = models[part]
        it.set_tensor(xin["index"], x)
        it.set_tensor(sin["index"], snr)
        it.invoke()
        return it.get_tensor(out["index"])

    def codec(image):
        z = run("encoder", image)
        z = z * np.sqrt(0.5 * z.size / np.sum(z * z))  # unit power per complex symbol
        y = z + rng.normal(0.0, np.sqrt(no / 2.0), z.shape).astype(np.float32)
        return run("decoder", y.astype(np.float32))

    def models_only(image, latent):
        run("encoder", image)
        run("decoder", latent)

    return codec, models_only


def run(args, argv=None):
    """Measure every system at every size; returns the results dict (also written)."""
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from fqliscs_tf.checkpoints import load_model
    from fqliscs_tf.engine import IntegerCodec, export_integer_codec
    from fqliscs_tf.data import centre_crops
    from fqliscs_tf.engine.tflite import (TFLiteCodec, TwinOptions, kodak_crops,
                                          xnnpack_partitions)
    from fqliscs_tf.utils import provenance

    float_model = load_model(args.float_model)
    qat, qat_source = _load_qat(args.qat, float_model)
    engine = IntegerCodec(export_integer_codec(qat), "awgn")
    snrs = [float(v) for v in args.psnr_snrs.split(",") if v.strip()]
    variants = getattr(args, "int8_variants", None) or {}
    variant_options = {n: TwinOptions(activations="int8", **o) for n, o in variants.items()}
    row_options = {f"tflite_int8[{n}]": o for n, o in variant_options.items()}
    calibration = [v for v in args.calibration.split(",") if v.strip()]
    results, psnr_rows, exports, checks = [], [], {}, {}
    load = {"start": os.getloadavg()}
    for height, width in args.sizes:
        images = np.stack(kodak_crops(height, width))
        image = images[:1]
        size = f"{width}x{height}"
        print(f"[{size}] exporting TFLite models", file=sys.stderr, flush=True)
        folders = {"int8": os.path.join(args.tflite_dir, f"{size}_int8"),
                   "int16": os.path.join(args.tflite_dir, f"{size}_16x8")}
        cal = centre_crops(calibration, height, width) if calibration else None
        need = set(args.systems)
        exports[size] = {
            "int8_s": _export(qat, folders["int8"], height, width,
                              TwinOptions(activations="int8"), "tflite_float32" in need, cal,
                              args.reuse_exports),
            "16x8_s": _export(qat, folders["int16"], height, width,
                              TwinOptions(activations="int16"), False, cal, args.reuse_exports)}
        variant_folders = {}  # row name -> export folder
        for name, options in variant_options.items():
            folder = os.path.join(args.tflite_dir, f"{size}_int8_{name}")
            print(f"[{size}] exporting int8 variant {name} {variants[name]}", file=sys.stderr,
                  flush=True)
            exports[size][f"int8[{name}]_s"] = _export(qat, folder, height, width, options,
                                                       False, cal, args.reuse_exports)
            variant_folders[f"tflite_int8[{name}]"] = folder
        checks[size] = _checks({**folders, **{row[len("tflite_"):]: f
                                              for row, f in variant_folders.items()}})
        partitions = {row: {part: xnnpack_partitions(os.path.join(folder, f"{part}.tflite"),
                                                     args.threads)
                            for part in ("encoder", "decoder")}
                      for row, folder in [("tflite_int8", folders["int8"]),
                                          *variant_folders.items()]}
        if snrs:
            psnr_rows += _psnr_rows(engine, {"tflite_int8": folders["int8"],
                                             "tflite_16x8": folders["int16"],
                                             **variant_folders},
                                    images, snrs, size)
        x = tf.constant(image)
        snr = tf.constant([args.snr_db])
        systems = list(args.systems)
        extra = list(variant_folders)
        at = systems.index("tflite_int8") + 1 if "tflite_int8" in systems else len(systems)
        systems[at:at] = extra
        for system in systems:
            print(f"[{size}] {system}", file=sys.stderr, flush=True)
            row = {"system": system, "size": size, "height": height, "width": width}
            if system == "tf_float32_xla":
                fn = tf.function(lambda a, b: float_model((a, b))["x_hat"], jit_compile=True)
                row.update(_time(lambda: fn(x, snr).numpy(), args.repeats, args.warmup))
            elif system == "engine_int":
                row.update(_time(lambda: engine(x, args.snr_db, seed=(0, 0))["x_hat"].numpy(),
                                 args.repeats, args.warmup))
            elif system == "tflite_float32":
                codec, models_only = _float_tflite_codec(folders["int8"], args.threads,
                                                         args.snr_db)
                latent = np.zeros([1, height // qat.config.downsampling,
                                   width // qat.config.downsampling, qat.config.C], np.float32)
                row.update(_time(lambda: codec(image), args.repeats, args.warmup))
                row["models_only_ms"] = _time(lambda: models_only(image, latent), args.repeats,
                                              args.warmup)["median_ms"]
            else:
                mode = "int16" if system == "tflite_16x8" else "int8"
                folder = variant_folders.get(system, folders[mode])
                resolver = "ref" if system.endswith("_ref") else "default"
                codec = TFLiteCodec(folder, "awgn", op_resolver=resolver,
                                    num_threads=args.threads)
                repeats = args.repeats if resolver == "default" else max(3, args.repeats // 2)
                row.update(_time(lambda: codec(image, args.snr_db), repeats, 1))
                pixels = np.round(image * 255).astype(np.int32)
                code = int(round(args.snr_db / codec.spec.snr_step_db))
                latent = codec.encode(pixels, code)

                def models_only():
                    codec.encode(pixels, code)
                    codec.decode(latent, code)
                row["models_only_ms"] = _time(models_only, repeats, 1)["median_ms"]
                row["op_resolver"] = resolver
                if system in partitions:
                    row["xnnpack_partitions"] = partitions[system]
                if system in extra:
                    row["options"] = dataclasses.asdict(row_options[system])
            results.append(row)
            print(f"[{size}] {system}: {row['median_ms']:.1f} ms", file=sys.stderr, flush=True)
    load["end"] = os.getloadavg()
    for size in {r["size"] for r in results}:
        base = next((r for r in results if r["size"] == size
                     and r["system"] == "tf_float32_xla"), None)
        for r in results:
            if base is not None and r["size"] == size:
                r["speed_vs_tf_float32"] = base["median_ms"] / r["median_ms"]
    out = {"name": "benchmark_int",
           "description": "Latency per image, batch 1: float codec (XLA), integer engine, "
                          "TFLite int8 / 16x8 / float32 (ai-edge-litert); PSNR engine vs "
                          "TFLite on the bundled Kodak images",
           "settings": {"threads": args.threads, "repeats": args.repeats,
                        "warmup": args.warmup, "snr_db": args.snr_db, "qat": qat_source,
                        "float_model": args.float_model, "psnr_snrs": snrs,
                        "calibration": calibration or "bundled Kodak images",
                        "int8_variants": {n: dataclasses.asdict(o)
                                          for n, o in variant_options.items()},
                        "kodak_images": sorted(os.listdir(os.path.join(
                            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "fqliscs_tf", "assets", "kodak"))),
                        "export_seconds": exports, "load_average": load},
           "results": results,
           "psnr": psnr_rows,
           "integer_only_checks": checks,
           "meta": provenance(command="fqliscs-benchmark-int " + " ".join(
               argv if argv is not None else sys.argv[1:]))}
    out["markdown"] = format_table(results)
    out["psnr_markdown"] = format_psnr_table(psnr_rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1)
    return out


def format_table(results):
    """Markdown table: one row per (size, system)."""
    parts = any("xnnpack_partitions" in r for r in results)
    lines = ["| size | system | median [ms] | min-max [ms] | enc+dec invoke [ms] | "
             "speed vs TF fp32 |" + (" XNNPACK partitions enc/dec |" if parts else ""),
             "|---|---|---:|---:|---:|---:|" + ("---:|" if parts else "")]
    for r in results:
        invoke = f"{r['models_only_ms']:.1f}" if "models_only_ms" in r else "-"
        ratio = f"{r['speed_vs_tf_float32']:.2f}x" if "speed_vs_tf_float32" in r else "-"
        line = (f"| {r['size']} | {r['system']} | {r['median_ms']:.1f} | "
                f"{r['min_ms']:.1f}-{r['max_ms']:.1f} | {invoke} | {ratio} |")
        if parts:
            p = r.get("xnnpack_partitions")
            line += f" {p['encoder']}/{p['decoder']} |" if p else " - |"
        lines.append(line)
    return "\n".join(lines)


def format_psnr_table(rows):
    """Markdown table: mean PSNR [dB] of the engine and the TFLite exports per (size, SNR)."""
    extra = []
    for r in rows:
        extra += [k for k in r if k.startswith("tflite_int8[") and not k.endswith("_delta_db")
                  and k not in extra]
    lines = ["| size | SNR [dB] | engine | TFLite 16x8 | delta | TFLite int8 | delta |"
             + "".join(f" {k} | delta |" for k in extra),
             "|---|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(extra)]
    for r in rows:
        lines.append(f"| {r['size']} | {r['snr_db']:g} | {np.mean(r['engine']):.3f} | "
                     f"{np.mean(r['tflite_16x8']):.3f} | {r['tflite_16x8_delta_db']:+.3f} | "
                     f"{np.mean(r['tflite_int8']):.3f} | {r['tflite_int8_delta_db']:+.3f} |"
                     + "".join(f" {np.mean(r[k]):.3f} | {r[k + '_delta_db']:+.3f} |"
                               if k in r else " - | - |" for k in extra))
    return "\n".join(lines)


def main(argv=None):
    """Command-line entry point."""
    args = build_parser().parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        raise SystemExit("--repeats and --threads must be >= 1, --warmup >= 0")
    out = run(args, argv)
    print(out["psnr_markdown"])
    print()
    print(out["markdown"])
    print(f"results written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
