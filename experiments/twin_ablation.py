# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Where the all-int8 TFLite export loses against the integer engine, group by group.

    python -m experiments.twin_ablation --model fqliscs_tf/weights/lite_c96_awgn_int \
        --calibration ../shared/data/kodak --size 512x768 --forms xnnpack_fold,xnnpack_fit

The int8 TFLite twin (:mod:`fqliscs_tf.engine.tflite`) rounds to 8 bits where the engine keeps
16 or 32 bits: the residual stream, the LayerNorm internals (centred rows, sums of squares and
their reciprocal square root, normalized rows), the softmax internals and the attention / MLP
branch outputs before their residual adds. This runs the twin as a TensorFlow simulation
(its fake-quant nodes, float arithmetic between them) with each group of those roundings
removed in turn, and reports PSNR minus the engine's on the same images and channel noise.

The simulation has the twin's explicit 8-bit grids only; the TFLite converter also rounds
the outputs of the ops between them (LOGISTIC, MUL, ...), so the export itself is a little
lower. Calibration: centre crops of the first 4 ``--calibration`` images; test images: centre
crops of the 4 bundled Kodak images (keep them out of ``--calibration``). JSON to
``--output`` with provenance.
"""
import argparse
import json
import os
import sys
import time

#: Groups of the int8 twin's roundings that the engine does not have, and the rows run.
GROUPS = ("residual", "layer_norm", "softmax", "branch")
ROWS = [()] + [(g,) for g in GROUPS] + [GROUPS]
_OBSERVED_GROUP = {"centred": "layer_norm", "normalized": "layer_norm",
                   "proj": "branch", "fc2": "branch"}


def build_parser():
    from experiments.twin_gelu import add_model_arguments
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(p)
    p.add_argument("--forms", default="xnnpack_fit",
                   help="comma-separated names of fqliscs_tf.engine.tflite.XNNPACK_FORMS, or "
                        "'default' (TwinOptions(activations='int8')); default %(default)s")
    p.add_argument("--size", default="256x256", help="HxW crop [pixels] (default %(default)s)")
    p.add_argument("--snrs", default="1,13", help="comma-separated SNRs [dB] (AWGN)")
    p.add_argument("--seed", type=int, default=0, help="channel seed (default 0)")
    p.add_argument("--output", default="outputs/twin_ablation.json")
    return p


def _parse(args):
    from fqliscs_tf.engine.tflite import XNNPACK_FORMS
    forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    for form in forms:
        if form != "default" and form not in XNNPACK_FORMS:
            raise ValueError(f"unknown forms {form!r}; choose default or one of "
                             f"{', '.join(XNNPACK_FORMS)}")
    try:
        snrs = [float(s) for s in args.snrs.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--snrs must be comma-separated numbers, got {args.snrs!r}") from None
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be HxW, e.g. 256x256, got {args.size!r}") from None
    if not forms or not snrs:
        raise ValueError("--forms and --snrs must name at least one value each")
    return forms, snrs, height, width


def ablated_twin_class():
    """A :class:`~fqliscs_tf.engine.tflite._Part` whose ``exact`` groups (:data:`GROUPS`) are
    left in float outside the probe pass (the probe pass measures every range as usual)."""
    import tensorflow as tf

    from fqliscs_tf.engine.tflite import _Part

    class AblatedTwin(_Part):
        exact = frozenset()

        def _float(self, group):
            return group in self.exact and self.probe is None

        def residual(self, x, layer, name):
            return x if self._float("residual") else super().residual(x, layer, name)

        def fq_observed(self, name, x):
            group = _OBSERVED_GROUP.get(name.rsplit("/", 1)[-1])
            if group is not None and self._float(group):
                self.observe(name, x)
                return x
            return super().fq_observed(name, x)

        def normalize_mlp(self, x, name):
            if self._float("layer_norm"):
                d = x - tf.reduce_mean(x, axis=-1, keepdims=True)
                return d * tf.math.rsqrt(tf.reduce_sum(d * d, axis=-1, keepdims=True))
            return super().normalize_mlp(x, name)

        def softmax(self, logits, name):
            if self._float("softmax"):
                return tf.nn.softmax(logits, axis=-1), None
            return super().softmax(logits, name)

    return AblatedTwin


def simulate(encoder, decoder, receiver, spec, images, snr_db, seed):
    """The twins as :class:`~fqliscs_tf.engine.tflite.TFLiteCodec` runs the exports: uint8
    pixels in, int8 latents, the engine's integer channel (``seed`` for the whole batch),
    uint8 pixels out. Returns float32 ``[B, H, W, 3]`` in [0, 1]."""
    import numpy as np
    import tensorflow as tf

    from fqliscs_tf.engine.export import act_scale
    code = int(round(snr_db / spec.snr_step_db))
    snr = tf.constant(np.full([1, 1], code * spec.snr_step_db, np.float32))
    s_latent = act_scale(encoder.last_absmax(), 8)
    s_dec_in = act_scale(decoder.first_absmax(), 8)
    pixels = np.round(np.clip(images, 0.0, 1.0) * 255.0) / 255.0
    latents = [encoder(tf.constant(pixels[i:i + 1], tf.float32), encoder.snr_input(snr))
               for i in range(len(images))]
    q = np.clip(np.round(np.concatenate(latents) / s_latent), -127, 127).astype(np.int32)
    received = receiver(q, [code] * len(images), seed)["received"]
    out = [decoder(tf.constant(received[i:i + 1].astype(np.float32) * np.float32(s_dec_in)),
                   decoder.snr_input(snr)).numpy() for i in range(len(images))]
    return (np.round(np.clip(np.concatenate(out), 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def main(argv=None):
    args = build_parser().parse_args(argv)
    forms, snrs, height, width = _parse(args)
    import numpy as np

    from experiments.twin_gelu import engine_crops
    from fqliscs_tf.data import list_images
    from fqliscs_tf.engine.export import act_scale
    from fqliscs_tf.engine.tflite import XNNPACK_FORMS, TwinOptions, _Receiver, calibrated_twins
    from fqliscs_tf.engine.to_qat import qat_from_engine
    from fqliscs_tf.metrics import psnr
    from fqliscs_tf.utils import provenance
    calibration = list_images(args.calibration)
    if len(calibration) < 4:
        raise ValueError(f"--calibration needs at least 4 images, {args.calibration!r} has "
                         f"{len(calibration)}")
    images, calib, reference = engine_crops(args.model, calibration, height, width, snrs,
                                            seed=(args.seed, 0))
    calib = [c[None] for c in calib]
    qat = qat_from_engine(args.model)
    spec = qat.spec
    twin = ablated_twin_class()
    results = {}
    for form in forms:
        start = time.time()
        overrides = {} if form == "default" else XNNPACK_FORMS[form]
        options = TwinOptions(activations="int8", **overrides)
        encoder, decoder, _, _ = calibrated_twins(qat, options, calib, seed=args.seed, twin=twin)
        receiver = _Receiver(spec, act_scale(decoder.first_absmax(), 8), "awgn")
        rows = {}
        for exact in ROWS:
            encoder.exact = decoder.exact = frozenset(exact)
            label = "+".join(exact) if exact else "none"
            rows[label] = {f"{s:g}": float(np.mean(
                psnr(images, simulate(encoder, decoder, receiver, spec, images, s,
                                      (args.seed, 0))).numpy() - reference[s]))
                for s in snrs}
            print(f"{form}: float {label:38s} sim - engine [dB] "
                  + ", ".join(f"{k} dB {v:+.3f}" for k, v in rows[label].items()), flush=True)
        results[form] = {"options": dict(overrides), "sim_minus_engine_db": rows,
                         "seconds": round(time.time() - start, 1)}
    result = {"model": args.model, "size": [height, width], "snr_db": snrs,
              "calibration": calibration[:4], "groups_kept_in_float": list(GROUPS),
              "engine_psnr_db": {f"{s:g}": float(np.mean(v)) for s, v in reference.items()},
              "forms": results, "provenance": provenance(command=" ".join(sys.argv))}
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
