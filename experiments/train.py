"""Train or evaluate a JSCC codec (Swin, Deep JSCC or ADJSCC) through a Sionna channel.

Accepts the original WITT / FQ-LISCS command line, for example::

    fqliscs-train --training --trainset DIV2K --testset kodak --distortion-metric MSE \\
        --channel-type awgn --C 96 --multiple-snr 1,4,7,10,13 \\
        --train-dir ../shared/data/train --test-dir ../shared/data/kodak --workdir runs/lite

Without ``--training`` it evaluates a checkpoint (``--checkpoint``, a run's
``--workdir`` or an exported model folder) on the test set at every SNR of
``--multiple-snr`` and writes the records to JSON.

``--model deepjscc`` or ``--model adjscc`` trains and evaluates a learned CNN baseline
with the same command line, channels, data and JSON, at the CBR of ``--model-size``
and ``--C``.
"""
import argparse
import json
import logging
import os
import sys
import time

__all__ = ["main", "build_parser"]

log = logging.getLogger("fqliscs_tf.train")



def build_parser():
    from fqliscs_tf.presets import preset_names
    from fqliscs_tf.registry import model_families
    from phy import CHANNEL_TYPES
    p = argparse.ArgumentParser(
        prog="fqliscs-train", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("original WITT / FQ-LISCS flags")
    g.add_argument("--training", action="store_true",
                   help="train; without it, evaluate a checkpoint")
    g.add_argument("--trainset", choices=["CIFAR10", "DIV2K"], default="CIFAR10",
                   help="training data kind: CIFAR10 (32x32, preset cifar10) or DIV2K "
                        "(high-resolution folders, random crops)")
    g.add_argument("--testset", choices=["CIFAR10", "kodak"], default="kodak",
                   help="test data kind: CIFAR10 test split or a folder of full-size images")
    g.add_argument("--distortion-metric", choices=["MSE", "MS-SSIM"], default="MSE",
                   help="training loss: MSE on the 0-255 scale, or 1 - MS-SSIM")
    g.add_argument("--channel-type", choices=CHANNEL_TYPES, default="awgn",
                   help="channel between encoder and decoder: none (noiseless), awgn, or flat "
                        "Rayleigh with perfect CSI and MMSE equalization ('rayleigh' = "
                        "'rayleigh-fast', a new gain per symbol, as WITT; 'rayleigh-block' = "
                        "one gain per image); OFDM links ofdm-rayleigh, ofdm-tdl, ofdm-cdl, "
                        "ofdm-umi, ofdm-uma and MIMO links mimo, mimo-ofdm-cdl (their "
                        "parameters come from --channel-config, else the layer defaults). "
                        "--multiple-snr is the average SNR per channel use (per resource "
                        "element and receive antenna for OFDM/MIMO)")
    g.add_argument("--channel-config", default=None,
                   help="JSON file (or YAML, with PyYAML installed) holding 'channel_type' and "
                        "the keyword arguments of its channel layer, e.g. {\"channel_type\": "
                        "\"ofdm-tdl\", \"model\": \"C\", \"delay_spread\": 3e-7, "
                        "\"max_speed\": 30.0, \"estimator\": \"ls-lin\"} (delay spread [s], "
                        "speeds [m/s]; see docs/API.md); validated when read; overrides "
                        "--channel-type")
    g.add_argument("--C", type=int, default=96,
                   help="latent channels of the codec; CBR = C / (2^(2i) * 6) complex channel "
                        "uses per real source value, i = number of 2x downsamplings (4 for "
                        "lite and div2k: C=96 gives 1/16; 2 for cifar10: C=16 gives 1/6)")
    g.add_argument("--multiple-snr", default="1,4,7,10,13",
                   help="comma-separated SNRs [dB]; training draws one per image, "
                        "testing reports each")
    g = p.add_argument_group("data")
    g.add_argument("--train-dir", help="training images (folder, searched recursively) or, for "
                                       "CIFAR10, a cifar-10-batches-py folder, class folders or "
                                       "the .tar.gz archive; required with --training")
    g.add_argument("--test-dir", help="test images (for kodak: a folder; for CIFAR10: as "
                                      "--train-dir); required for evaluation, optional after "
                                      "training (then the final model is evaluated on it)")
    g.add_argument("--test-fit", choices=["crop", "pad"], default="crop",
                   help="make test image sides a multiple of the model's stride by centre "
                        "cropping (WITT's convention) or reflect padding (scored on the "
                        "original pixels)")
    g.add_argument("--max-test-images", type=int, default=0,
                   help="evaluate only the first N test images (0 = all)")
    g = p.add_argument_group("model and optimisation")
    g.add_argument("--model", default="swin", choices=model_families(),
                   help="codec family: swin, or the CNN baselines deepjscc (Bourtsoulatze et "
                        "al. 2019) and adjscc (Xu et al. 2022) at the CBR of --model-size "
                        "and --C")
    g.add_argument("--model-size", default=None, choices=preset_names(),
                   help="codec preset (lite, base = div2k, cifar10); default: cifar10 for "
                        "CIFAR10, lite for DIV2K")
    g.add_argument("--steps", type=int, default=None,
                   help="training length in optimisation steps (one global batch each); "
                        "10000 if neither --steps nor --epochs is given; with --resume, the "
                        "total including the steps already taken")
    g.add_argument("--epochs", type=float, default=None,
                   help="training length in passes over the training images (may be "
                        "fractional; converted to steps); alternative to --steps")
    g.add_argument("--batch-size", type=int, default=None,
                   help="global batch size [images], split over the replicas (if not given: "
                        "16 for DIV2K, 128 for CIFAR10, as WITT)")
    g.add_argument("--crop", type=int, default=256,
                   help="side of the random square training crops [pixels] (DIV2K; a multiple "
                        "of the preset's size multiple, 128 for lite and div2k); CIFAR10 "
                        "images are used whole (32x32)")
    g.add_argument("--time-budget", type=float, default=0,
                   help="stop after this many wall-clock seconds of training, summed over all "
                        "sittings of the run (checkpointed; 0 = no limit): the way to compare "
                        "designs at equal CPU time. The learning-rate schedule still follows "
                        "--steps")
    g.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    g.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                   help="constant rate, or cosine decay to 5%% of --lr at the last step")
    g.add_argument("--warmup-steps", type=int, default=0,
                   help="steps of linear learning-rate warm-up from 0 to --lr (0 = none)")
    g.add_argument("--seed", type=int, default=1024,
                   help="random seed of Python, NumPy, TensorFlow and Sionna, of the data "
                        "order, crops and flips, and of the per-image SNR draws (WITT uses "
                        "1024)")
    g.add_argument("--init-from", default=None,
                   help="start training from these weights (an exported model folder or a "
                        "run folder), e.g. a fixed-SNR model for the SNR curriculum")
    g.add_argument("--continue-from", default=None,
                   help="continue training an exported model folder (a shipped model or a "
                        "run's export/) as a later sitting of its run: the weights, the step "
                        "count (schedule, SNR draws) and the training seconds (--time-budget) "
                        "go on from the folder's record; --steps is the new total. Adam's "
                        "moments start fresh (see --rewarm-steps): a model folder is a "
                        "resumable checkpoint without the optimizer state")
    g.add_argument("--rewarm-steps", type=int, default=100,
                   help="with --continue-from: linear learning-rate ramp over the first N "
                        "steps while Adam's moments are re-estimated (0 = none)")
    g.add_argument("--init-partial", action="store_true",
                   help="with --init-from: start from a model of the same preset with another "
                        "--C (e.g. C=32 from the shipped C=96 one): equal-shape weights are "
                        "copied, the latent heads cut to their first C channels")
    g.add_argument("--qat", action="store_true",
                   help="quantization-aware fine-tuning: wrap the float Swin codec given by "
                        "--init-from with TF-MOT (int8 per-channel kernels, 8-bit activations, "
                        "16-bit residual stream, integer GELU/softmax/LayerNorm/sigmoid forms), "
                        "calibrate its activation ranges on --calibration-batches training "
                        "batches, then train; the FQ-LISCS reference uses --lr 1e-5. --init-from "
                        "may also be an integer codec folder (engine.json, e.g. a shipped *_int "
                        "model): its QAT weights go on, under --quant-spec. The export "
                        "is a QAT folder (model.json + TF checkpoint)")
    g.add_argument("--quant-spec", default="",
                   help="QuantSpec overrides for --qat as key=value pairs, e.g. "
                        "'gelu=poly,softmax=poly,residual_bits=12' (keys: weight_bits, "
                        "act_bits, residual_bits, gelu, softmax, sigmoid, layer_norm, "
                        "snr_step_db, symbol_bits, symbol_clip, ema_decay)")
    g.add_argument("--calibration-batches", type=int, default=20,
                   help="training batches used to initialise the activation ranges before "
                        "QAT (default: %(default)s)")
    g.add_argument("--no-jit", action="store_true",
                   help="do not compile the train step with XLA")
    g.add_argument("--distribute", default="auto",
                   choices=["auto", "none", "mirrored", "multiworker"],
                   help="tf.distribute strategy (auto: multiworker if TF_CONFIG names several "
                        "workers, mirrored if several devices are visible)")
    g.add_argument("--cpu-devices", type=int, default=0,
                   help="split the CPU into this many logical devices (to try MirroredStrategy "
                        "on one machine); 0 or 1 = do not split")
    g = p.add_argument_group("run management")
    g.add_argument("--workdir", default="runs/default",
                   help="folder for checkpoints, the log, exported weights and results")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --workdir from its latest checkpoint")
    g.add_argument("--save-every", type=int, default=500,
                   help="save a checkpoint every N steps (also at the end and on interruption)")
    g.add_argument("--eval-every", type=int, default=0,
                   help="evaluate on the test set every N steps (0 = only at the end)")
    g.add_argument("--checkpoint", default=None,
                   help="for evaluation: a run folder (its latest checkpoint) or an exported "
                        "model folder; default --workdir")
    g.add_argument("--output", default=None,
                   help="results JSON path (default WORKDIR/results.json)")
    g.add_argument("--quiet", action="store_true",
                   help="no progress bar (the log and metrics.jsonl are still written)")
    return p


def _setup_logging(workdir, filename="train.log"):
    os.makedirs(workdir, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.handlers.clear()
    fh = logging.FileHandler(os.path.join(workdir, filename))
    fh.setFormatter(fmt)
    sh = logging.StreamHandler(sys.stdout)
    sh.setFormatter(fmt)
    log.addHandler(fh)
    log.addHandler(sh)


def _fail(parser, message):
    parser.error(message)


def _resolve(args, parser):
    from phy import parse_snr_list
    try:
        args.snr_list = parse_snr_list(args.multiple_snr)
    except ValueError as e:
        _fail(parser, f"--multiple-snr: {e}")
    args.channel_kwargs = {}
    if args.channel_config:
        from phy.config import load_channel_config
        try:
            args.channel_type, args.channel_kwargs = load_channel_config(args.channel_config)
        except (OSError, ValueError) as e:
            _fail(parser, f"--channel-config: {e}")
    if args.model_size is None:
        args.model_size = "cifar10" if args.trainset == "CIFAR10" else "lite"
    if args.batch_size is None:
        args.batch_size = 128 if args.trainset == "CIFAR10" else 16
    for name in ("batch_size", "crop", "C", "save_every"):
        if getattr(args, name) <= 0:
            _fail(parser, f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.lr <= 0:
        _fail(parser, f"--lr must be positive, got {args.lr}")
    if args.init_partial and not args.init_from:
        _fail(parser, "--init-partial needs --init-from")
    if args.continue_from and (args.init_from or args.qat):
        _fail(parser, "--continue-from continues a float model; it cannot be combined with "
                      "--init-from or --qat")
    if args.rewarm_steps < 0:
        _fail(parser, f"--rewarm-steps must be >= 0, got {args.rewarm_steps}")
    if args.time_budget < 0:
        _fail(parser, f"--time-budget must be >= 0 seconds, got {args.time_budget}")
    if args.steps is not None and args.epochs is not None:
        _fail(parser, "give --steps or --epochs, not both")
    if args.training and not args.train_dir:
        _fail(parser, "--training needs --train-dir (for example ../shared/data/train)")
    args.quant_spec_dict = {}
    if args.qat:
        if args.model != "swin":
            _fail(parser, f"--qat supports --model swin only, got {args.model!r}")
        if args.training and not (args.init_from or args.resume):
            _fail(parser, "--qat needs --init-from (a trained float model or integer codec) "
                          "or --resume")
        try:
            args.quant_spec_dict = _parse_quant_spec(args.quant_spec)
        except ValueError as e:
            _fail(parser, f"--quant-spec: {e}")
    return args


def _parse_quant_spec(text):
    """``"gelu=poly,residual_bits=12"`` -> validated QuantSpec dict (defaults filled in)."""
    from fqliscs_tf.quant.fakequant import QuantSpec
    return QuantSpec(**_quant_spec_overrides(text)).to_dict()


def _quant_spec_overrides(text):
    """``"gelu=poly,residual_bits=12"`` -> ``{"gelu": "poly", "residual_bits": 12}``, typed."""
    import dataclasses

    from fqliscs_tf.quant.fakequant import QuantSpec
    types = {f.name: f.type for f in dataclasses.fields(QuantSpec)}
    values = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise ValueError(f"expected key=value with a key in {sorted(types)}, got {item!r}")
        kind = {"int": int, "float": float}.get(getattr(types[key], "__name__", types[key]), str)
        try:
            values[key] = kind(value)
        except ValueError:
            raise ValueError(f"{key} must be {kind.__name__}, got {value!r}") from None
    return values


def _run_config(args):
    keys = ["trainset", "testset", "distortion_metric", "channel_type", "channel_kwargs", "C",
            "multiple_snr", "model",
            "model_size", "batch_size", "crop", "lr", "lr_schedule", "warmup_steps", "steps",
            "seed", "train_dir", "qat", "quant_spec_dict", "init_from", "init_partial",
            "continue_from", "rewarm_steps", "time_budget"]
    return {k: getattr(args, k) for k in keys}


def _test_images(args, cfg):
    from fqliscs_tf import cifar, data
    if not args.test_dir:
        raise ValueError("evaluation needs --test-dir (for example ../shared/data/kodak)")
    if args.testset == "CIFAR10":
        import tensorflow as tf
        images, _ = cifar.cifar10_arrays(args.test_dir, split="test")
        if args.max_test_images:
            images = images[:args.max_test_images]
        return [(tf.constant(im[None], tf.float32) / 255.0, str(i)) for i, im in enumerate(images)]
    # Padded images carry their original size, so that scoring uses the original pixels.
    items = list(data.test_dataset(args.test_dir, cfg.size_multiple, fit=args.test_fit,
                                   return_size=args.test_fit == "pad"))
    if args.max_test_images:
        items = items[:args.max_test_images]
    return items


def _num_train_images(args, cfg):
    from fqliscs_tf import cifar, data
    if args.trainset == "CIFAR10":
        return cifar.cifar10_arrays(args.train_dir, "train")[0].shape[0]
    if args.crop % cfg.size_multiple:
        raise ValueError(f"--crop {args.crop} must be a multiple of {cfg.size_multiple} for "
                         f"preset {cfg.name!r}")
    return len(data.list_images(args.train_dir))


def data_seed(seed, first_step):
    """Seed of the data stream of a sitting that starts at ``first_step``: ``seed`` for the
    first sitting; a later sitting draws a fresh, reproducible stream instead of seeing the
    first sitting's crops again (the data iterator is not checkpointed)."""
    return int(seed) if first_step == 0 else (int(seed) * 1_000_003 + int(first_step)) % 2 ** 31


def _train_data(args, strategy, first_step=0):
    from fqliscs_tf import cifar, data
    seed = data_seed(args.seed, first_step)
    if args.trainset == "CIFAR10":
        ds = cifar.cifar10_dataset(args.train_dir, "train", args.batch_size, seed, training=True)
    else:
        ds = data.train_dataset(data.list_images(args.train_dir), args.crop, args.batch_size, seed)
    return strategy.experimental_distribute_dataset(ds)


def _sittings(meta):
    """The training history in a model folder's ``meta``: its ``sittings`` list, or one
    sitting made of its own record (steps, training seconds, command)."""
    if meta.get("sittings"):
        return list(meta["sittings"])
    keys = ("steps", "train_seconds", "command", "run_config")
    return [{k: meta[k] for k in keys if k in meta}] if "steps" in meta else []


def _lineage(folder):
    """What the model folder ``folder`` (given to --init-from) records of its own training:
    ``{"folder", "steps", "train_seconds", "sittings", "init_from"}``, the keys it has. A run
    that starts a fresh schedule from it keeps its history this way."""
    from fqliscs_tf.checkpoints import model_folder, read_model_info
    meta = read_model_info(model_folder(folder)).get("meta", {})
    out = {"folder": folder}
    out.update({k: meta[k] for k in ("steps", "train_seconds", "init_from") if k in meta})
    sittings = _sittings(meta)
    if sittings:
        out["sittings"] = sittings
    return out


def _continuation(args):
    """``(folder, steps, train_seconds, sittings, init_from)`` recorded by the model folder
    of --continue-from (``init_from`` None unless that run began with --init-from)."""
    from fqliscs_tf.checkpoints import model_folder, read_model_info
    src = model_folder(args.continue_from)
    meta = read_model_info(src).get("meta", {})
    steps = meta.get("steps")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"--continue-from {args.continue_from!r}: model.json records no step "
                         "count (meta.steps); use --init-from to start a new run from it")
    if "train_seconds" not in meta:
        log.warning("--continue-from %s: model.json records no training seconds; "
                    "--time-budget counts from 0", args.continue_from)
    return (src, steps, float(meta.get("train_seconds", 0.0)), _sittings(meta),
            meta.get("init_from"))


def _write_results(path, records, args, model_name, cbr, extra_meta):
    from fqliscs_tf.utils import provenance
    out = {"meta": provenance(command=" ".join(sys.argv), seed=args.seed,
                              testset=args.testset, test_dir=args.test_dir,
                              test_fit=args.test_fit, **extra_meta),
           "records": [{"model": model_name, "channel": args.channel_type, "snr_db": r["snr_db"],
                        "cbr": cbr, "psnr": r["psnr"], "ms_ssim": r["ms_ssim"],
                        "num_images": r["num_images"]} for r in records]}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    return out


def _print_table(records, model_name, channel):
    log.info("%-14s %-9s %7s %9s %9s", "model", "channel", "SNR", "PSNR[dB]", "MS-SSIM")
    for r in records:
        log.info("%-14s %-9s %7.1f %9.3f %9.4f", model_name, channel, r["snr_db"], r["psnr"],
                 r["ms_ssim"])


def _load_for_eval(args):
    """Build the model for evaluation from an exported folder or a run's checkpoint."""
    import tensorflow as tf

    from fqliscs_tf.checkpoints import MODEL_FILE, load_model, read_model_info
    from fqliscs_tf.registry import build_model
    path = args.checkpoint or args.workdir
    if os.path.isfile(os.path.join(path, MODEL_FILE)):
        if read_model_info(path).get("family") == "swin-qat":
            from fqliscs_tf.quant.qat import load_qat
            return load_qat(path, channel_type=args.channel_type, **args.channel_kwargs)
        return load_model(path, channel_type=args.channel_type, **args.channel_kwargs)
    ckpt_dir = os.path.join(path, "ckpt")
    latest = tf.train.latest_checkpoint(ckpt_dir)
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {path!r}: expected an exported model "
                                f"({MODEL_FILE}) or a run folder with ckpt/")
    family, preset, C = args.model, args.model_size, args.C
    run_cfg = os.path.join(path, "run_config.json")
    if os.path.isfile(run_cfg):
        with open(run_cfg) as f:
            saved = json.load(f)
        family, preset, C = saved.get("model", "swin"), saved["model_size"], saved["C"]
        if saved.get("qat"):
            from fqliscs_tf.quant.qat import QATJSCC, quantize_scope
            from fqliscs_tf.registry import model_config
            with quantize_scope():
                model = QATJSCC(model_config(family, preset, C=C), saved["quant_spec_dict"],
                                channel_type=args.channel_type,
                                channel_kwargs=args.channel_kwargs).build_for()
            tf.train.Checkpoint(model=model).restore(latest).expect_partial()
            return model
    model = build_model(family, preset, C=C, channel_type=args.channel_type,
                        channel_kwargs=args.channel_kwargs).build_for()
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model


def _qat_model(args, cfg, resuming):
    """The QAT codec: fresh (weights from the checkpoint) when resuming, else quantized from
    the --init-from model (a float model, or an integer engine folder whose QAT weights are
    rebuilt with ``qat_from_engine``) and calibrated on training batches."""
    from fqliscs_tf.checkpoints import load_model, model_folder
    from fqliscs_tf.engine.export import ENGINE_FILE
    from fqliscs_tf.engine.to_qat import qat_from_engine
    from fqliscs_tf.quant.qat import (QATJSCC, calibrate, quantize_codec, quantize_scope,
                                      requantize_codec)
    if resuming:
        with quantize_scope():
            return QATJSCC(cfg, args.quant_spec_dict, channel_type=args.channel_type,
                           channel_kwargs=args.channel_kwargs).build_for()
    if os.path.isfile(os.path.join(args.init_from, ENGINE_FILE)):
        # an integer codec (e.g. a shipped *_int folder): go on from its QAT weights
        source = qat_from_engine(args.init_from, channel_type=args.channel_type,
                                 **args.channel_kwargs)
    else:
        source = load_model(model_folder(args.init_from), channel_type=args.channel_type,
                            **args.channel_kwargs)
    if source.config != cfg:
        raise ValueError(f"--init-from {args.init_from!r} holds preset {source.config.name!r} "
                         f"C={source.config.C}, not {cfg.name!r} C={cfg.C}")
    if isinstance(source, QATJSCC):
        _check_kept_spec(args, source.spec)
        model = requantize_codec(source, args.quant_spec_dict)
    else:
        model = quantize_codec(source, args.quant_spec_dict)
    batches = _calibration_batches(args, cfg)
    calibrate(model, batches, args.snr_list, num_batches=args.calibration_batches)
    log.info("QAT codec from %s, activation ranges calibrated on %d batches", args.init_from,
             args.calibration_batches)
    return model


def _check_kept_spec(args, engine_spec):
    """--quant-spec starts from the defaults, as for a float model; an integer codec whose spec
    differs from them in a key that --quant-spec does not name would change silently."""
    given = _quant_spec_overrides(args.quant_spec)
    changed = {k: v for k, v in engine_spec.to_dict().items()
               if k not in given and args.quant_spec_dict.get(k) != v}
    if changed:
        keep = ",".join(f"{k}={v}" for k, v in sorted(changed.items()))
        raise ValueError(f"--init-from {args.init_from!r} was trained with {keep}, which "
                         f"--quant-spec would reset to the default; give it in --quant-spec "
                         f"(e.g. --quant-spec {keep}) to keep it, or another value to change it")


def _calibration_batches(args, cfg):
    from fqliscs_tf import cifar, data
    if args.trainset == "CIFAR10":
        return cifar.cifar10_dataset(args.train_dir, "train", args.batch_size, args.seed + 1,
                                     training=True)
    return data.train_dataset(data.list_images(args.train_dir), args.crop, args.batch_size,
                              args.seed + 1)


def _is_chief(strategy):
    """True unless this is a non-chief worker of a multi-worker strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def train(args, strategy):
    import tensorflow as tf
    from tqdm import tqdm

    from fqliscs_tf.checkpoints import (export_model, load_model, model_folder,
                                        set_matching_weights, set_weights_checked)
    from fqliscs_tf.registry import build_model, model_config
    from fqliscs_tf.training import Trainer, evaluate, steps_per_epoch

    cfg = model_config(args.model, args.model_size, C=args.C)
    chief = _is_chief(strategy)
    ckpt_dir = os.path.join(args.workdir, "ckpt")
    run_cfg_path = os.path.join(args.workdir, "run_config.json")
    if chief and os.path.isdir(ckpt_dir) and tf.train.latest_checkpoint(ckpt_dir) and \
            not args.resume:
        raise ValueError(f"{args.workdir!r} already holds a run; pass --resume to continue it "
                         "or choose another --workdir")
    if args.resume and os.path.isfile(run_cfg_path):
        with open(run_cfg_path) as f:
            saved = json.load(f)
        saved.setdefault("model", "swin")  # runs from before --model
        for key in ("model", "model_size", "C"):
            if saved[key] != getattr(args, key):
                raise ValueError(f"--resume: the run in {args.workdir!r} has {key}={saved[key]!r}, "
                                 f"not {getattr(args, key)!r}")
    if chief:
        with open(run_cfg_path, "w") as f:
            json.dump(_run_config(args), f, indent=2)

    num_images = _num_train_images(args, cfg)
    start_step, start_seconds, continue_src, history, origin = 0, 0.0, None, [], None
    if args.continue_from:
        continue_src, start_step, start_seconds, history, origin = _continuation(args)
    elif args.init_from and not args.qat:  # a fresh schedule from the folder's weights
        origin = _lineage(args.init_from)
    if args.steps is None:
        args.steps = (int(args.epochs * steps_per_epoch(num_images, args.batch_size))
                      if args.epochs is not None else 10000)
    if continue_src and args.steps <= start_step:
        raise ValueError(f"--steps {args.steps} is not beyond the {start_step} steps already in "
                         f"--continue-from {args.continue_from!r}: give the new total")
    jit = not args.no_jit
    if jit and strategy.num_replicas_in_sync > 1 and not tf.config.list_logical_devices("GPU"):
        # XLA clusters cannot reach variables of a second logical CPU device.
        log.info("XLA is off: %d replicas on logical CPU devices", strategy.num_replicas_in_sync)
        jit = False
    latest = tf.train.latest_checkpoint(os.path.join(args.workdir, "ckpt"))
    with strategy.scope():
        if args.qat:
            model = _qat_model(args, cfg, resuming=bool(args.resume and latest))
        else:
            model = build_model(args.model, cfg, channel_type=args.channel_type,
                                channel_kwargs=args.channel_kwargs).build_for()
        trainer = Trainer(model, args.snr_list, args.distortion_metric, args.lr, args.batch_size,
                          args.seed, jit_compile=jit, strategy=strategy,
                          total_steps=args.steps, lr_schedule=args.lr_schedule,
                          warmup_steps=args.warmup_steps, start_step=start_step,
                          rewarm_steps=args.rewarm_steps if continue_src else 0)
    ckpt = trainer.checkpoint()
    if not chief:
        # Every worker must save (collective ops), but only the chief writes to --workdir.
        ckpt_dir = os.path.join(args.workdir, f"worker{strategy.cluster_resolver.task_id}_ckpt")
    manager = tf.train.CheckpointManager(ckpt, ckpt_dir, max_to_keep=1 if not chief else 3)
    # Every worker resumes from the chief's checkpoint.
    if args.resume and latest:
        ckpt.restore(latest)
        log.info("resumed from %s at step %d", latest, trainer.current_step)
    elif continue_src:
        set_weights_checked(model, load_model(continue_src).get_weights(),
                            source=args.continue_from)
        trainer.train_seconds.assign(start_seconds)
        log.info("continuing %s at step %d (%.0f s of training so far), fresh Adam moments, "
                 "learning rate re-warmed over %d steps", args.continue_from, start_step,
                 start_seconds, args.rewarm_steps)
    elif args.init_from and not args.qat:
        src = model_folder(args.init_from)
        if args.init_partial:
            sliced, skipped = set_matching_weights(model, load_model(src).get_weights(),
                                                   source=args.init_from)
            log.info("initialised weights from %s; cut to size: %s; left at their "
                     "initialisation: %s", args.init_from, ", ".join(sliced) or "none",
                     ", ".join(skipped) or "none")
        else:
            set_weights_checked(model, load_model(src).get_weights(), source=args.init_from)
            log.info("initialised weights from %s", args.init_from)
    log.info("preset %s, %.2f M parameters, CBR %.4f, channel %s, SNRs %s, %d training images, "
             "batch %d, %s, XLA %s", cfg.name, model.count_params() / 1e6, cfg.cbr,
             args.channel_type, args.snr_list, num_images, args.batch_size,
             f"{type(strategy).__name__} ({strategy.num_replicas_in_sync} replicas)", jit)

    start_step = trainer.current_step
    it = iter(_train_data(args, strategy, start_step))
    bar = tqdm(total=args.steps, initial=start_step, disable=args.quiet, dynamic_ncols=True,
               desc="train")
    t0, seen = time.time(), 0
    spent0 = float(trainer.train_seconds.numpy())
    metrics_path = os.path.join(args.workdir, "metrics.jsonl")
    try:
        while trainer.current_step < args.steps:
            if args.time_budget and spent0 + time.time() - t0 >= args.time_budget:
                log.info("time budget of %.0f s reached at step %d", args.time_budget,
                         trainer.current_step)
                break
            loss, batch_psnr = trainer.train_step(next(it))
            trainer.train_seconds.assign(spent0 + time.time() - t0)
            step, seen = trainer.current_step, seen + 1
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.2f}", psnr=f"{float(batch_psnr):.2f}")
            if chief and (step % 50 == 0 or step == args.steps):
                rate = seen * args.batch_size / (time.time() - t0)
                with open(metrics_path, "a") as f:
                    f.write(json.dumps({"step": step, "loss": float(loss),
                                        "psnr": float(batch_psnr), "images_per_s": rate,
                                        "execution_mode": "xla" if jit else "graph",
                                        "time": time.time()}) + "\n")
            if step % args.save_every == 0:
                manager.save(checkpoint_number=step)
                log.info("step %d: loss %.3f, batch PSNR %.2f dB; checkpoint saved", step,
                         float(loss), float(batch_psnr))
            if chief and args.eval_every and step % args.eval_every == 0 and args.test_dir:
                records, _ = evaluate(model, _test_images(args, cfg), args.snr_list)
                _print_table(records, cfg.name, args.channel_type)
    finally:
        bar.close()
        if trainer.current_step > start_step:
            manager.save(checkpoint_number=trainer.current_step)
            log.info("checkpoint saved at step %d (%.1f s this sitting)", trainer.current_step,
                     time.time() - t0)
    if not chief:
        return None
    export_dir = os.path.join(args.workdir, "export")
    seconds = round(float(trainer.train_seconds.numpy()), 1)
    meta = dict(steps=trainer.current_step, train_seconds=seconds, run_config=_run_config(args),
                command=" ".join(sys.argv))
    if continue_src:  # this sitting joins the history of the folder it continued
        meta["sittings"] = history + [{
            "steps": trainer.current_step - start_step,
            "train_seconds": round(seconds - start_seconds, 1), "command": meta["command"],
            "run_config": meta["run_config"],
            "start": f"--continue-from {args.continue_from} at step {start_step}: fresh Adam"}]
    if origin:  # the folder a fresh schedule began from, kept over later sittings
        meta["init_from"] = origin
    if args.qat:
        from fqliscs_tf.quant.qat import save_qat
        save_qat(model, export_dir, **meta)
    else:
        export_model(model, export_dir, **meta)
    log.info("exported weights to %s", export_dir)
    return model


def run_eval(args, model=None):
    from fqliscs_tf.training import evaluate
    if model is None:
        model = _load_for_eval(args)
    else:
        model.set_channel(args.channel_type, **args.channel_kwargs)
    items = _test_images(args, model.config)
    records, secs = evaluate(model, items, args.snr_list)
    name = model.config.name
    _print_table(records, name, args.channel_type)
    path = args.output or os.path.join(args.workdir, "results.json")
    _write_results(path, records, args, name, model.cbr,
                   {"checkpoint": args.checkpoint or args.workdir, "eval_seconds": secs,
                    "execution_mode": "graph"})  # evaluate() runs tf.functions without XLA
    log.info("results written to %s", path)
    return records


def main(argv=None):
    """Console entry point; returns 0 on success (results go to the log and JSON)."""
    run(argv)
    return 0


def run(argv=None):
    """Train and/or evaluate as the flags say; returns the evaluation records (may be empty)."""
    parser = build_parser()
    args = _resolve(parser.parse_args(argv), parser)
    if args.cpu_devices > 1:
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices)
    from fqliscs_tf.training import make_strategy
    from fqliscs_tf.utils import set_seed
    # Collective ops (MultiWorkerMirroredStrategy) must be set up before any other TF op.
    strategy = make_strategy(args.distribute) if args.training else None
    chief = strategy is None or _is_chief(strategy)
    _setup_logging(args.workdir, "train.log" if chief else
                   f"worker{strategy.cluster_resolver.task_id}.log")
    set_seed(args.seed)
    model = train(args, strategy) if args.training else None
    if args.training and model is None:  # a non-chief worker
        return []
    if args.test_dir:
        return run_eval(args, model)
    return []


if __name__ == "__main__":
    sys.exit(main())
