"""Effect of each integer-op approximation on PSNR: swap one method in the shipped integer codec.

    python -m experiments.approx_psnr

Runs the shipped integer codec (trained with the I-ViT shift GELU/softmax/sigmoid and the exact
Newton LayerNorm) on the bundled Kodak images, noiseless at a 10 dB SNR input, once as shipped
and once with each op swapped for its other variant at inference; writes
``outputs/approx_psnr.json`` (mean PSNR per variant).
"""
import json, time, dataclasses
import numpy as np, tensorflow as tf
from fqliscs_tf.engine import IntegerCodec, load_integer_codec
from fqliscs_tf.data import load_image, list_images
from fqliscs_tf.metrics import psnr
params = load_integer_codec("fqliscs_tf/weights/lite_c96_awgn_int")
imgs = [tf.constant(load_image(p)[None], tf.float32) / 255.0 for p in list_images("fqliscs_tf/assets/kodak")]
variants = {"shipped (gelu shift, softmax shift, sigmoid shift, LN newton)": {},
            "gelu=poly": {"gelu": "poly"}, "softmax=poly": {"softmax": "poly"},
            "sigmoid=poly": {"sigmoid": "poly"}, "layer_norm=ivit": {"layer_norm": "ivit"}}
out = {}
for name, change in variants.items():
    p = load_integer_codec("fqliscs_tf/weights/lite_c96_awgn_int")
    p.spec = dataclasses.replace(p.spec, **change)
    codec = IntegerCodec(p, "none", jit_compile=False)
    t = time.time()
    vals = [float(psnr(x, codec(x, 10.0)["x_hat"])[0]) for x in imgs]
    out[name] = float(np.mean(vals)); print(name, round(out[name], 3), round(time.time() - t, 1), flush=True)
import os
os.makedirs("outputs", exist_ok=True)
json.dump(out, open("outputs/approx_psnr.json", "w"), indent=1)
