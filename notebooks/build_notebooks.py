# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Writes the tutorial notebooks 01-05 (without outputs) from the cells below.

    python notebooks/build_notebooks.py          # rewrite them
    python notebooks/build_notebooks.py --check  # exit 1 if a stored notebook differs

The ``.ipynb`` files are the product (``tests/test_notebooks.py`` runs them); this script
keeps their source reviewable as plain Python. Edit a cell here, rerun the script, and
commit both. Cell ids are fixed, so an unchanged cell gives an unchanged file.
"""
import argparse
import json
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# The first code cell of every notebook: environment, quick mode, seeds, paths.
SETUP = '''\
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # hide TensorFlow's C++ info messages
QUICK = os.environ.get("FQLISCS_NB_QUICK") == "1"    # CI size: fewer steps, one small image

import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

for gpu in tf.config.list_physical_devices("GPU"):     # take GPU memory as needed
    tf.config.experimental.set_memory_growth(gpu, True)

import fqliscs_tf
import phy
from fqliscs_tf import data
from fqliscs_tf.utils import set_seed

set_seed(42)   # Python, NumPy, TensorFlow and Sionna (sionna.phy.config.seed)
PACKAGE_DIR = Path(fqliscs_tf.__file__).resolve().parent
KODAK = sorted((PACKAGE_DIR / "assets" / "kodak").glob("*.png"))   # 4 bundled 768x512 images
print(f"quick mode: {QUICK}; TensorFlow {tf.__version__}; images: {[p.name for p in KODAK]}")'''

# ---------------------------------------------------------------------------------------------
NB01 = [
    ("md", """\
# Quickstart: the integer codec over an OFDM link

This notebook loads the shipped **integer** Swin JSCC codec (`lite_c96_awgn_int`: int8 kernels,
int32 biases, integer GELU, softmax and LayerNorm), sends a Kodak image over a 3GPP CDL OFDM link
at a few SNRs and compares the reconstructions with those of the float codec it was quantized from
(`lite_c96_awgn`). Both codecs have a channel bandwidth ratio of 1/16 and were trained on AWGN
only; the OFDM link is new to them.

* [The codecs](#The-codecs)
* [The OFDM CDL link](#The-OFDM-CDL-link)
* [Images over the link](#Images-over-the-link)

With `FQLISCS_NB_QUICK=1` the notebook runs at its CI size (a 256x256 crop, three SNRs). The
quantization pipeline is in `03_full_integer_quantization.ipynb` and
[docs/QUANTIZATION.md](../docs/QUANTIZATION.md)."""),
    ("code", SETUP),
    ("md", """\
## The codecs

`IntegerCodec(folder, channel_type)` loads an exported integer codec (`engine.json` +
`engine.npz`). It takes float images in [0, 1] and returns float images, but between the input
quantization (uint8 pixels, int8 SNR code on a 0.25 dB grid) and the output pixels it computes
with integers only. `load_model` loads the float codec."""),
    ("code", '''\
from fqliscs_tf.checkpoints import load_model
from fqliscs_tf.engine import IntegerCodec
from fqliscs_tf.metrics import psnr

INT_DIR = PACKAGE_DIR / "weights" / "lite_c96_awgn_int"
FLOAT_DIR = PACKAGE_DIR / "weights" / "lite_c96_awgn"
int_codec = IntegerCodec(str(INT_DIR), channel_type="awgn")
float_codec = load_model(FLOAT_DIR)
print(f"integer codec: {int_codec.params.kernel_bytes() / 1e6:.2f} MB of int8 kernels, "
      f"{int_codec.params.num_bytes() / 1e6:.2f} MB of integer arrays in all; "
      f"CBR {int_codec.cbr:g}")
print(f"float codec:   {float_codec.count_params() / 1e6:.2f} M parameters, "
      f"{4 * float_codec.count_params() / 1e6:.2f} MB as float32")
print(f"image sides must be multiples of {float_codec.config.size_multiple}")'''),
    ("md", """\
The test image is `kodim23` (a 256x256 crop in quick mode; the lite codec needs sides that are
multiples of 128)."""),
    ("code", '''\
image = data.load_image(KODAK[3])                  # kodim23, uint8 [H, W, 3]
if QUICK:
    image = data.crop_to_size(image, (256, 256))
x = tf.constant(image[None], tf.float32) / 255.0
SNRS = [0.0, 5.0, 10.0] if QUICK else [-2.0, 1.0, 4.0, 7.0, 10.0, 13.0]   # [dB]
k = phy.num_channel_uses([None, image.shape[0] // 16, image.shape[1] // 16,
                          float_codec.config.C])
print(f"{KODAK[3].name}: {image.shape[1]}x{image.shape[0]} -> k = {k} complex symbols")'''),
    ("md", """\
## The OFDM CDL link

Channel type `"ofdm-cdl"` is a `phy.OFDMLinkChannel` with the 3GPP TR 38.901 CDL-A model at
3.5 GHz (100 ns delay spread, a static user), 30 kHz subcarriers, perfect channel knowledge and
LMMSE equalization. The integer channels are AWGN and Rayleigh fading; any other link is float by
nature, so `IntegerCodec` dequantizes its int8 I/Q symbols into the Sionna link and rounds the
received symbols back onto the symbol grid before the integer decoder. `set_channel` swaps the
channel of either codec without touching its weights."""),
    ("code", '''\
CHANNEL = "ofdm-cdl"
int_codec.set_channel(CHANNEL)
float_codec.set_channel(CHANNEL)
link = phy.get_channel(CHANNEL)          # the same layer, built here to inspect it
rg = link.resource_grid
print(f"{type(link).__name__}: {rg.num_ofdm_symbols} OFDM symbols x {rg.fft_size} subcarriers, "
      f"{link.num_data_symbols} data REs per slot -> {link.num_slots(k)} slots per image")'''),
    ("md", """\
## Images over the link

One batch holds the image once per SNR. The float channel draws a new CDL realization for every
slot (Sionna's seed was set in the first cell)."""),
    ("code", '''\
batch = tf.repeat(x, len(SNRS), axis=0)
t0 = time.time()
x_int = int_codec(batch, SNRS)["x_hat"]
t_int = time.time() - t0
t0 = time.time()
x_float = tf.clip_by_value(float_codec((batch, tf.constant(SNRS, tf.float32)))["x_hat"], 0.0, 1.0)
t_float = time.time() - t0
p_int, p_float = psnr(batch, x_int).numpy(), psnr(batch, x_float).numpy()
print(f"integer codec ({t_int:.1f} s), float codec ({t_float:.1f} s)")
for snr, a, b in zip(SNRS, p_int, p_float):
    print(f"SNR {snr:5.1f} dB: integer {a:5.2f} dB, float {b:5.2f} dB")'''),
    ("code", '''\
cols = len(SNRS) + 1
fig, axes = plt.subplots(2, cols, figsize=(2.8 * cols, 5.8))
for row, (name, recon, values) in enumerate([("integer", x_int, p_int),
                                             ("float", x_float, p_float)]):
    axes[row, 0].imshow(image)
    axes[row, 0].set_title("original", fontsize=9)
    for ax, im, snr, p in zip(axes[row, 1:], recon.numpy(), SNRS, values):
        ax.imshow(im)
        ax.set_title(f"{name}, {snr:g} dB SNR\\nPSNR {p:.2f} dB", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle(f"{KODAK[3].name} over OFDM CDL-A (CBR 1/16)")
fig.tight_layout()'''),
    ("code", '''\
plt.figure(figsize=(5.5, 3.8))
plt.plot(SNRS, p_float, marker="o", label="float codec (lite_c96_awgn)")
plt.plot(SNRS, p_int, marker="s", label="integer codec (lite_c96_awgn_int)")
plt.xlabel("SNR [dB]")
plt.ylabel("PSNR [dB]")
plt.title(f"OFDM CDL-A, {image.shape[1]}x{image.shape[0]}, one channel draw")
plt.grid(True, alpha=0.3)
plt.legend();'''),
    ("md", """\
The integer codec follows the float one closely: its loss comes from int8 weights and
activations, the integer nonlinear ops and the int8 channel symbols. Each point is one channel
draw of one image, so differences of a few tenths of a dB between the two codecs are partly
channel randomness; `fqliscs-evaluate` averages over the Kodak set and many draws.

Next steps: `02_end_to_end_training_in_sionna.ipynb` (training through an OFDM link),
`03_full_integer_quantization.ipynb` (how the integer codec is made) and
`05_realistic_scenarios.ipynb` (UMi, mobility, MIMO)."""),
]

# ---------------------------------------------------------------------------------------------
NB03 = [
    ("md", """\
# Full-integer quantization: float -> QAT -> integer engine -> TFLite

This notebook turns the shipped float codec `lite_c96_awgn` into an integer-only codec, step by
step, and checks each step:

* [Float codec and data](#Float-codec-and-data)
* [Quantization-aware codec (TF-MOT)](#Quantization-aware-codec-(TF-MOT))
* [Integer engine](#Integer-engine): export, run, PSNR against the QAT and float codecs
* [Integer-only check](#Integer-only-check): no floating-point tensor in the engine graph
* [TFLite int8](#TFLite-int8)
* [Compute and size](#Compute-and-size): BOPs and bytes, float32 against int8
* [Integer nonlinear ops](#Integer-nonlinear-ops): GELU, softmax and LayerNorm against the float ops

With `FQLISCS_NB_QUICK=1` it runs at CI size (128x128 crops, a short calibration, no
fine-tuning). The scheme and its guarantees are described in
[docs/QUANTIZATION.md](../docs/QUANTIZATION.md)."""),
    ("code", SETUP),
    ("md", """\
## Float codec and data

Calibration crops come from three bundled Kodak images, the test image from the fourth. Real
runs calibrate and fine-tune on the training pool (`fqliscs-train --qat`)."""),
    ("code", '''\
import tempfile

from fqliscs_tf.checkpoints import load_model
from fqliscs_tf.metrics import psnr

workdir = Path(tempfile.mkdtemp(prefix="fqliscs_nb03_"))     # outputs of this notebook
float_model = load_model(PACKAGE_DIR / "weights" / "lite_c96_awgn")
CROP = 128                                  # calibration / fine-tuning crop side [pixels]
TEST_SIZE = (128, 128) if QUICK else (256, 256)
SNRS = [1.0, 7.0, 13.0] if QUICK else [1.0, 4.0, 7.0, 10.0, 13.0]   # [dB], the training range

train_images = [data.load_image(f) for f in KODAK[:3]]
crop_rng = np.random.default_rng(42)

def random_crops(batch_size, crop=CROP):
    """float32 [batch_size, crop, crop, 3] in [0, 1], random crops of the three images."""
    out = []
    for _ in range(batch_size):
        image = train_images[crop_rng.integers(len(train_images))]
        top = crop_rng.integers(image.shape[0] - crop + 1)
        left = crop_rng.integers(image.shape[1] - crop + 1)
        out.append(image[top:top + crop, left:left + crop])
    return np.stack(out).astype(np.float32) / 255.0

test_image = data.crop_to_size(data.load_image(KODAK[3]), TEST_SIZE)
x_test = tf.constant(test_image[None], tf.float32) / 255.0
print(f"{float_model.count_params() / 1e6:.2f} M parameters; test image {KODAK[3].name} "
      f"cropped to {TEST_SIZE[1]}x{TEST_SIZE[0]}")'''),
    ("md", """\
## Quantization-aware codec (TF-MOT)

`quantize_codec` rebuilds the encoder and decoder with fake quantization at every point where the
integer engine requantizes (int8 activations, int16 residual stream, unsigned 7-bit attention
probabilities and gates), wraps every Dense/Conv kernel, nested ones included, in a TF-MOT
per-channel int8 weight quantizer, and copies the float weights. Its nonlinear ops already run the
integer algorithms in the forward pass (straight-through float gradients). `calibrate` then sets
the activation ranges from a few batches, without changing any weight. The full pipeline
fine-tunes the QAT codec afterwards (`fqliscs-train --qat`, about 1500 steps); the full-size run of
this notebook does a short fine-tuning with `Trainer`, the quick run skips it."""),
    ("code", '''\
from fqliscs_tf.quant.qat import calibrate, quantize_codec

t0 = time.time()
qat = quantize_codec(float_model)
print(f"quantize_codec: {time.time() - t0:.1f} s; spec: {qat.spec}")
t0 = time.time()
CAL_BATCHES = 2 if QUICK else 20
calibrate(qat, (random_crops(4) for _ in range(CAL_BATCHES)), snr_db=SNRS)
print(f"calibrate on {CAL_BATCHES} batches of 4 crops: {time.time() - t0:.1f} s")

FINETUNE_STEPS = 0 if QUICK else 100
if FINETUNE_STEPS:
    from fqliscs_tf.training import Trainer
    trainer = Trainer(qat, SNRS, metric="MSE", lr=2e-5, global_batch_size=4, seed=42,
                      jit_compile=False)
    t0 = time.time()
    for step in range(1, FINETUNE_STEPS + 1):
        loss, batch_psnr = trainer.train_step(tf.constant(random_crops(4)))
        if step % 20 == 0:
            print(f"QAT step {step}: loss {float(loss):.1f}, PSNR {float(batch_psnr):.2f} dB")
    print(f"{FINETUNE_STEPS} QAT steps: {time.time() - t0:.1f} s")'''),
    ("md", """\
## Integer engine

`export_integer_codec` reads the QAT codec into integer parameters: int8 kernels, int32 biases at
the accumulator scale and TFLite-style dyadic multipliers (int32 mantissa + shift) for every
requantization. `save_integer_codec` writes them as `engine.json` + `engine.npz`, the format of
the shipped `lite_c96_awgn_int`. `IntegerCodec` runs them with TensorFlow integer ops, here over
the integer AWGN channel (int8 I/Q symbols, integer Gaussian noise from a table).
`jit_compile=False` avoids an XLA compilation of tens of seconds for this one-off size."""),
    ("code", '''\
from fqliscs_tf.engine import IntegerCodec, export_integer_codec, save_integer_codec

params = export_integer_codec(qat)
engine_dir = save_integer_codec(params, str(workdir / "engine"))
print(f"{len(params.encoder)} encoder and {len(params.decoder)} decoder layers; "
      f"files: {sorted(p.name for p in Path(engine_dir).iterdir())}")
int_codec = IntegerCodec(engine_dir, channel_type="awgn", jit_compile=False)

batch = tf.repeat(x_test, len(SNRS), axis=0)
snr_t = tf.constant(SNRS, tf.float32)
t0 = time.time()
x_int = int_codec(batch, SNRS, seed=(1, 2))["x_hat"]
print(f"integer codec: {time.time() - t0:.1f} s (first call: graph tracing included)")
qat.set_channel("awgn")
float_model.set_channel("awgn")
x_qat = tf.clip_by_value(qat((batch, snr_t))["x_hat"], 0.0, 1.0)
x_float = tf.clip_by_value(float_model((batch, snr_t))["x_hat"], 0.0, 1.0)
curves = {"float": psnr(batch, x_float).numpy(),
          "QAT (fake quantization)": psnr(batch, x_qat).numpy(),
          "integer engine": psnr(batch, x_int).numpy()}
for label, values in curves.items():
    print(f"{label:24s}", "  ".join(f"{p:5.2f}" for p in values), "dB")'''),
    ("code", '''\
plt.figure(figsize=(5.5, 3.8))
for label, values in curves.items():
    plt.plot(SNRS, values, marker="o", label=label)
plt.xlabel("SNR [dB]")
plt.ylabel("PSNR [dB]")
plt.title(f"{KODAK[3].name} {TEST_SIZE[1]}x{TEST_SIZE[0]}, AWGN, CBR 1/16")
plt.grid(True, alpha=0.3)
plt.legend(fontsize="small")

i_show = len(SNRS) // 2
fig, axes = plt.subplots(1, 4, figsize=(11, 3.2))
axes[0].imshow(test_image)
axes[0].set_title("original", fontsize=9)
for ax, (label, recon) in zip(axes[1:], [("float", x_float), ("QAT (fake quantization)", x_qat),
                                         ("integer engine", x_int)]):
    ax.imshow(recon[i_show].numpy())
    ax.set_title(f"{label}\\n{curves[label][i_show]:.2f} dB", fontsize=9)
for ax in axes:
    ax.axis("off")
fig.suptitle(f"SNR {SNRS[i_show]:g} dB")'''),
    ("md", """\
The QAT codec and the integer engine agree closely (the engine is not bit-exact with the QAT
graph: it rounds with TFLite's double rounding where QAT rounds half up in float32, see
docs/QUANTIZATION.md; the noise draws also differ: float AWGN in QAT, the integer generator in the
engine). The gap to the float codec is the cost of quantization, which QAT fine-tuning reduces.

## Integer-only check

`IntegerCodec.integer_graph(h, w)` traces the engine's whole graph, from uint8-valued pixels and
the int8 SNR code through the encoder, the power normalization, the integer AWGN channel and the
decoder to the output pixels. Every tensor in it must be an integer (or boolean) tensor."""),
    ("code", '''\
from collections import Counter

t0 = time.time()
graph = int_codec.integer_graph(*TEST_SIZE)
dtypes = Counter()
float_tensors = []
for op in graph.get_operations():
    for tensor in op.outputs:
        dtypes[tensor.dtype.name] += 1
        if tensor.dtype.is_floating or tensor.dtype.is_complex:
            float_tensors.append(f"{op.type}:{op.name}")
print(f"{len(graph.get_operations())} ops traced in {time.time() - t0:.1f} s; "
      f"tensor dtypes: {dict(dtypes)}")
print(f"floating-point or complex tensors: {len(float_tensors)}")
assert not float_tensors, float_tensors[:10]'''),
    ("md", """\
## TFLite int8

`fqliscs_tf.engine.tflite.export_tflite` converts the QAT codec's encoder and decoder into two
TFLite models with int8 inputs and outputs at a fixed image size (batch 1), and
`check_integer_only` inspects a `.tflite` file: tensor dtypes, ops (no DEQUANTIZE, no kernel that
computes in float at run time) and I/O types. Here at 128x128. The conversion takes about 20 s
on a CPU, so the quick (CI) run skips it; `tests/test_tflite.py` covers the export there."""),
    ("code", '''\
from fqliscs_tf.engine.tflite import check_integer_only, export_tflite

if QUICK:
    print("quick mode: TFLite export skipped")
else:
    t0 = time.time()
    tflite_paths = export_tflite(qat, str(workdir / "tflite"), 128, 128)
    print(f"export_tflite at 128x128: {time.time() - t0:.1f} s")
    for part in ("encoder", "decoder"):
        report = check_integer_only(tflite_paths[part])
        print(f"{part}: integer-only {report['ok']}, "
              f"{Path(tflite_paths[part]).stat().st_size / 1e6:.2f} MB, "
              f"tensors {report['tensor_dtypes']}, violations {report['violations']}")'''),
    ("md", """\
## Compute and size

`fqliscs_tf.cost` counts the multiply-accumulates (MACs) of a codec analytically; bit operations
are `BOPs = MACs x b_w x b_a` (attention matmuls multiply two activations: `b_a x b_a`). The
weight bytes compare the float32 parameters with the exported integer arrays (int8 kernels, plus
int32 biases and multipliers). `fqliscs-cost` prints the same table for every preset."""),
    ("code", '''\
from fqliscs_tf.cost import bops, count_macs

H, W = 512, 768                               # a landscape Kodak image
macs = count_macs(float_model.config, H, W)
cost = {
    "float32": bops(macs["total"], 32, 32, macs["attention"]),
    "W8A8": bops(macs["total"], 8, 8, macs["attention"]),
}
size = {
    "float32": 4 * float_model.count_params(),
    "int8 kernels": params.kernel_bytes(),
    "all integer arrays": params.num_bytes(),
}
print(f"{W}x{H}: {macs['total'] / 1e9:.2f} GMAC ({macs['attention'] / 1e9:.2f} in attention)")
for name, value in cost.items():
    print(f"  {name:8s} {value / 1e12:7.3f} TBOPs")
print(f"BOPs ratio {cost['float32'] / cost['W8A8']:.1f}x")
for name, value in size.items():
    print(f"  {name:20s} {value / 1e6:6.2f} MB")

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.2))
ax0.bar(list(cost), [v / 1e12 for v in cost.values()], color=["C0", "C2"])
ax0.set(ylabel="TBOPs", title=f"bit operations per {W}x{H} image")
ax1.bar(list(size), [v / 1e6 for v in size.values()], color=["C0", "C2", "C3"])
ax1.set(ylabel="MB", title="weights")
fig.tight_layout()'''),
    ("md", """\
## Integer nonlinear ops

`fqliscs_tf.quant.intops` has the integer forward of every nonlinear op, `int_*(q, scale) ->
(q_out, out_scale)`. We evaluate them on integer inputs and compare the dequantized outputs with
TensorFlow's float ops on the same (quantized) inputs: GELU on every point of an 8-bit grid over
[-4, 4], softmax on Gaussian attention logits (rows of 64, one 8x8 window), LayerNorm on rows of
128 channels with a 16-bit input, as in the residual stream. Both methods of each op are shown
(`shift`: I-ViT, `poly`: I-BERT; `newton`: exact integer square root, `ivit`: I-ViT's 10 Newton
steps); the codec uses those in `qat.spec`."""),
    ("code", '''\
from fqliscs_tf.quant import intops

rng = np.random.default_rng(0)
fig, axes = plt.subplots(2, 3, figsize=(14, 6.4))

# GELU on the 8-bit grid of [-4, 4]
g_scale = 4.0 / 127.0
q = np.arange(-127, 128, dtype=np.int32)
xg = q * g_scale
ref = tf.nn.gelu(tf.constant(xg), approximate=False).numpy()
axes[0, 0].plot(xg, ref, "k", lw=1, label="float GELU")
for method in intops.GELU_METHODS:
    y, s = intops.int_gelu(tf.constant(q), g_scale, method=method)
    approx = y.numpy() * s
    axes[0, 0].plot(xg, approx, ".", ms=2, label=f"int_gelu {method}")
    axes[1, 0].plot(xg, approx - ref, ".", ms=2,
                    label=f"{method}: RMS {np.sqrt(np.mean((approx - ref) ** 2)):.4f}")
axes[0, 0].set(title="GELU, 8-bit input grid", xlabel="x")
axes[1, 0].set(title="GELU error (integer - float)", xlabel="x")

# softmax on rows of 64 Gaussian logits (std 2), 8-bit logit grid
logits = rng.normal(0.0, 2.0, (256, 64))
s_scale = float(np.max(np.abs(logits)) / 127.0)
ql = np.round(logits / s_scale).astype(np.int32)
ref = tf.nn.softmax(tf.constant(ql * s_scale), axis=-1).numpy()
for method in intops.SOFTMAX_METHODS:
    y, s = intops.int_softmax(tf.constant(ql), s_scale, method=method)
    approx = y.numpy() * s
    axes[0, 1].plot(ref.ravel(), approx.ravel(), ".", ms=1, label=f"int_softmax {method}")
    axes[1, 1].plot(ref.ravel(), (approx - ref).ravel(), ".", ms=1,
                    label=f"{method}: RMS {np.sqrt(np.mean((approx - ref) ** 2)):.2e}")
axes[0, 1].plot([0, ref.max()], [0, ref.max()], "k", lw=1, label="float softmax")
axes[0, 1].set(title="softmax (rows of 64 logits)", xlabel="float probability",
               ylabel="integer probability")
axes[1, 1].set(title="softmax error", xlabel="float probability")

# LayerNorm on rows of 128 channels, 16-bit input
mu = rng.normal(0.0, 2.0, (128, 1))
sigma = np.exp(rng.uniform(np.log(0.1), np.log(10.0), (128, 1)))
xl = mu + sigma * rng.normal(0.0, 1.0, (128, 128))
l_scale = float(np.max(np.abs(xl)) / 32767.0)
qx = np.round(xl / l_scale).astype(np.int32)
xq = qx * l_scale
ref = (xq - xq.mean(-1, keepdims=True)) / np.sqrt(xq.var(-1, keepdims=True) + 1e-5)
for method in intops.LAYER_NORM_METHODS:
    y, s = intops.int_layer_norm(tf.constant(qx), l_scale, method=method, in_bits=16)
    approx = y.numpy() * s
    axes[0, 2].plot(ref.ravel(), approx.ravel(), ".", ms=1, label=f"int_layer_norm {method}")
    axes[1, 2].plot(ref.ravel(), (approx - ref).ravel(), ".", ms=1,
                    label=f"{method}: RMS {np.sqrt(np.mean((approx - ref) ** 2)):.1e}")
axes[0, 2].set(title="LayerNorm (128 channels, 16-bit input)", xlabel="float output",
               ylabel="integer output")
axes[1, 2].set(title="LayerNorm error (normalized output)", xlabel="float output")
for ax in axes.ravel():
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", markerscale=4)
fig.tight_layout()
print(f"the codec uses GELU {qat.spec.gelu}, softmax {qat.spec.softmax}, "
      f"LayerNorm {qat.spec.layer_norm}")'''),
    ("md", """\
`fqliscs_tf.quant.approx_error.measure_approximation_errors()` runs the same comparison on the
standard inputs used in the cost report (fine and 8-bit grids, several logit spreads, 8-bit
LayerNorm outputs); errors are in the output's real units, `out_lsb` is the output grid step."""),
    ("code", '''\
from fqliscs_tf.quant.approx_error import measure_approximation_errors

print(f"{'op/method/case':34s} {'RMS':>9s} {'max |err|':>9s} {'bias':>10s} {'out LSB':>9s}")
for name, r in measure_approximation_errors().items():
    print(f"{name:34s} {r['rms']:9.2e} {r['max_abs']:9.2e} {r['bias']:10.2e} "
          f"{r['out_lsb']:9.2e}")'''),
    ("md", """\
What to take away:

* `quantize_codec` + `calibrate` give a W8A8 codec in one call each; QAT fine-tuning
  (`fqliscs-train --qat`) recovers most of the remaining gap to the float codec.
* The exported engine computes with integers only between the uint8 input pixels and the uint8
  output pixels (the check above), and matches the QAT codec's PSNR closely.
* The integer GELU, softmax and LayerNorm errors are to be read against the output grid step
  (`out_lsb` above): the 8-bit activations that follow each op round at that step anyway."""),
]


# ---------------------------------------------------------------------------------------------
NB02 = [
    ("md", """\
# End-to-end training through an OFDM link

This notebook trains a small Swin JSCC codec **end to end through a Sionna OFDM link**: a 3GPP
TDL-C channel with a moving user, least-squares (LS) channel estimation at the pilots and LMMSE
equalization. The loss is computed on the reconstructed image, and its gradient flows back through
the equalizer, the channel estimator, the channel and the resource-grid mapper into the encoder.
The whole run fits on a CPU in a few minutes.

* [The OFDM link](#The-OFDM-link)
* [A small codec](#A-small-codec)
* [Training data](#Training-data)
* [Training](#Training)
* [Evaluation on a held-out image](#Evaluation-on-a-held-out-image)
* [Export, and the same run from the command line](#Export,-and-the-same-run-from-the-command-line)

With the environment variable `FQLISCS_NB_QUICK=1` the notebook shrinks to its CI size (fewer
steps, smaller crops, one small test image, fewer SNRs). The API is summarised in
[docs/API.md](../docs/API.md)."""),
    ("code", SETUP),
    ("md", """\
## The OFDM link

A channel is a *channel type* plus the keyword arguments of its layer. The same JSON file is what
`fqliscs-train --channel-config FILE` reads; `load_channel_config` validates it and returns
`(channel_type, kwargs)`."""),
    ("code", '''\
import tempfile

workdir = Path(tempfile.mkdtemp(prefix="fqliscs_nb02_"))   # outputs of this notebook
config_path = workdir / "tdl.json"
phy.save_channel_config(config_path, "ofdm-tdl", model="C", delay_spread=300e-9,
                        max_speed=30.0, estimator="ls-lin")
print(config_path.read_text())
channel_type, channel_kwargs = phy.load_channel_config(config_path)
print(channel_type, channel_kwargs)'''),
    ("md", """\
`phy.get_channel` builds the layer, here a `phy.OFDMLinkChannel`. One *slot* is one Sionna
`ResourceGrid`: 14 OFDM symbols x 76 subcarriers at 30 kHz with guard carriers, a DC null and
Kronecker pilots on OFDM symbols 2 and 11. The codec's symbols fill the data resource elements of
as many slots as needed; every slot is an independent channel realization."""),
    ("code", '''\
link = phy.get_channel(channel_type, **channel_kwargs)
rg = link.resource_grid
print(f"{rg.num_ofdm_symbols} OFDM symbols x {rg.fft_size} subcarriers at "
      f"{rg.subcarrier_spacing / 1e3:g} kHz ({rg.bandwidth / 1e6:.2f} MHz); "
      f"{link.num_data_symbols} data REs per slot")
rg.show();'''),
    ("md", """\
Every channel layer has the same contract: `z_hat, no_eff = channel(z, snr_db)`, with `z` the
unit-power complex symbols `[batch_size, k]` (`tf.complex64`), `snr_db` one SNR [dB] per example
or a scalar, and `no_eff` `[batch_size, k]` (`tf.float32`) the mean squared error of every
estimate as the receiver predicts it. A check with random symbols: with perfect channel knowledge
the prediction is exact; with LS estimation it is an approximation (it does not include the
interpolation error between the pilots, which grows with the user speed)."""),
    ("code", '''\
z = tf.complex(tf.random.normal([16, link.num_data_symbols]),
               tf.random.normal([16, link.num_data_symbols])) / np.sqrt(2.0)   # 16 slots
for estimator in ["perfect", "ls-lin"]:
    check = phy.get_channel(channel_type, **{**channel_kwargs, "estimator": estimator})
    for snr_db in [0.0, 10.0, 20.0]:
        z_hat, no_eff = check(z, snr_db)
        mse = tf.reduce_mean(tf.abs(z_hat - z) ** 2).numpy()
        print(f"{estimator:8s} SNR {snr_db:4.0f} dB: measured MSE {mse:.4f}, "
              f"mean no_eff {tf.reduce_mean(no_eff).numpy():.4f}")'''),
    ("md", """\
## A small codec

`CodecConfig` describes a Swin JSCC encoder/decoder pair; the presets (`lite`, `div2k`,
`cifar10`) are instances of it. For a CPU tutorial we use a two-stage model with about 0.2 M
parameters. With 2 downsamplings and `C = 6` latent channels, the channel bandwidth ratio is
`C / (2^4 * 6) = 1/16`, the same as the shipped `lite_c96_awgn` model. `JSCC` puts the channel
inside the model: calling it with `(images, snr_db)` runs encoder -> channel -> decoder."""),
    ("code", '''\
from fqliscs_tf.codec import JSCC
from fqliscs_tf.presets import CodecConfig

cfg = CodecConfig("tiny", embed_dims=(32, 64), depths=(1, 1), num_heads=(2, 4), window_size=4,
                  C=6, modnet_layers=2, modulator_hidden=32)
model = JSCC(cfg, channel_type, channel_kwargs).build_for()
CROP = 32 if QUICK else 64              # training crop side [pixels], a multiple of 16
k = phy.num_channel_uses([None, CROP // cfg.downsampling, CROP // cfg.downsampling, cfg.C])
print(f"{model.count_params() / 1e3:.0f} k parameters; image sides must be multiples of "
      f"{cfg.size_multiple}; CBR {model.cbr:.4f} (1/{1 / model.cbr:g})")
print(f"a {CROP}x{CROP} crop -> {k} complex channel uses -> {link.num_slots(k)} slot(s)")'''),
    ("md", """\
## Training data

Kodak is this project's evaluation set; real runs (`fqliscs-train`) train on a separate image
pool through `fqliscs_tf.data.train_dataset`. To stay self-contained, this notebook trains on
random crops (with horizontal flips) of three bundled Kodak images and tests on the fourth one,
which it never sees during training."""),
    ("code", '''\
train_files, test_file = KODAK[:3], KODAK[3]
train_images = [data.load_image(f) for f in train_files]     # uint8 [H, W, 3]
crop_rng = np.random.default_rng(42)

def random_crops(batch_size, crop):
    """Random crops with random left-right flips: float32 [batch_size, crop, crop, 3] in [0, 1]."""
    out = []
    for _ in range(batch_size):
        image = train_images[crop_rng.integers(len(train_images))]
        top = crop_rng.integers(image.shape[0] - crop + 1)
        left = crop_rng.integers(image.shape[1] - crop + 1)
        patch = image[top:top + crop, left:left + crop]
        out.append(patch[:, ::-1] if crop_rng.random() < 0.5 else patch)
    return tf.constant(np.stack(out), tf.float32) / 255.0

examples = random_crops(8, CROP)
fig, axes = plt.subplots(1, 8, figsize=(12, 1.8))
for ax, im in zip(axes, examples.numpy()):
    ax.imshow(im)
    ax.axis("off")
fig.suptitle(f"training crops ({CROP}x{CROP}) from {', '.join(f.name for f in train_files)}");'''),
    ("md", """\
## Training

`fqliscs_tf.training.Trainer` owns the Adam optimizer and the XLA-compiled train step. Each image
of a batch gets one SNR drawn from `SNRS_TRAIN`, so a single model learns to work at every SNR (the
SNR also feeds the codec's ModNet layers). The loss is the MSE on the 0-255 scale; the step also
returns the batch PSNR [dB]. The first step includes the XLA compilation of the codec *and* the
Sionna link. Expect a plateau at about 10 dB (the model outputs the mean colour) for the first
hundred steps or so, before the codec starts to use the channel."""),
    ("code", '''\
from fqliscs_tf.training import Trainer

STEPS = 250 if QUICK else 2000
BATCH = 16
SNRS_TRAIN = [0.0, 5.0, 10.0, 15.0]     # [dB]
# A cosine decay of the learning rate pays off only over more steps than the quick run has.
trainer = Trainer(model, SNRS_TRAIN, metric="MSE", lr=5e-4, global_batch_size=BATCH, seed=42,
                  jit_compile=True, lr_schedule="constant" if QUICK else "cosine",
                  total_steps=STEPS)

history = {"step": [], "loss": [], "psnr": []}
log_every = max(STEPS // 10, 1)
t0 = time.time()
for step in range(1, STEPS + 1):
    loss, batch_psnr = trainer.train_step(random_crops(BATCH, CROP))
    history["step"].append(step)
    history["loss"].append(float(loss))
    history["psnr"].append(float(batch_psnr))
    if step == 1:
        print(f"step 1 (with XLA compilation) took {time.time() - t0:.1f} s")
        t1 = time.time()
    elif step % log_every == 0 or step == STEPS:
        print(f"step {step:5d}: loss {np.mean(history['loss'][-log_every:]):8.1f}, "
              f"PSNR {np.mean(history['psnr'][-log_every:]):5.2f} dB")
print(f"{(STEPS - 1) / (time.time() - t1):.1f} steps/s after compilation")'''),
    ("code", '''\
def smooth(values, width):
    """Moving average over ``width`` steps (shorter at the start)."""
    values = np.asarray(values)
    return np.array([values[max(0, i - width + 1):i + 1].mean() for i in range(len(values))])

width = max(STEPS // 30, 1)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
ax1.semilogy(history["step"], history["loss"], alpha=0.3, color="C0")
ax1.semilogy(history["step"], smooth(history["loss"], width), color="C0")
ax1.set(xlabel="step", ylabel="loss (MSE, 0-255 scale)", title="training loss")
ax2.plot(history["step"], history["psnr"], alpha=0.3, color="C1")
ax2.plot(history["step"], smooth(history["psnr"], width), color="C1")
ax2.set(xlabel="step", ylabel="batch PSNR [dB]", title="training PSNR (SNR drawn per image)")
for ax in (ax1, ax2):
    ax.grid(True, alpha=0.3)
fig.tight_layout()'''),
    ("md", """\
## Evaluation on a held-out image

`fqliscs_tf.training.evaluate` reconstructs each image at every SNR and returns the mean PSNR and
MS-SSIM per SNR. `model.set_channel` swaps the channel without touching the codec weights, so we
can score the same model on the channel it was trained on, on the same channel with perfect
channel knowledge at the receiver, and on AWGN."""),
    ("code", '''\
from fqliscs_tf.training import evaluate

SNRS_TEST = [0.0, 10.0, 20.0] if QUICK else [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0]
test_image = data.load_image(test_file)
if QUICK:
    test_image = data.crop_to_size(test_image, (128, 128))
x_test = tf.constant(test_image[None], tf.float32) / 255.0
items = [(x_test, test_file.name)]

scenarios = {
    "OFDM TDL-C, LS estimation (trained)": (channel_type, channel_kwargs),
    "OFDM TDL-C, perfect CSI": (channel_type, {**channel_kwargs, "estimator": "perfect"}),
    "AWGN": ("awgn", {}),
}
curves = {}
for label, (ctype, ckwargs) in scenarios.items():
    model.set_channel(ctype, **ckwargs)
    records, _ = evaluate(model, items, SNRS_TEST)
    curves[label] = [r["psnr"] for r in records]
    print(f"{label:38s}", "  ".join(f"{p:5.2f}" for p in curves[label]), "dB")
model.set_channel(channel_type, **channel_kwargs)     # back to the training channel

plt.figure(figsize=(6, 4))
for label, values in curves.items():
    plt.plot(SNRS_TEST, values, marker="o", label=label)
plt.xlabel("SNR [dB]")
plt.ylabel("PSNR [dB]")
plt.title(f"{test_file.name} ({test_image.shape[1]}x{test_image.shape[0]}), CBR 1/16")
plt.grid(True, alpha=0.3)
plt.legend();'''),
    ("code", '''\
from fqliscs_tf.metrics import psnr

snrs = tf.constant(SNRS_TEST, tf.float32)
batch = tf.repeat(x_test, len(SNRS_TEST), axis=0)
x_hat = tf.clip_by_value(model((batch, snrs))["x_hat"], 0.0, 1.0)
values = psnr(batch, x_hat).numpy()

fig, axes = plt.subplots(1, len(SNRS_TEST) + 1, figsize=(2.6 * (len(SNRS_TEST) + 1), 2.6))
axes[0].imshow(test_image)
axes[0].set_title("original")
for ax, im, snr, p in zip(axes[1:], x_hat.numpy(), SNRS_TEST, values):
    ax.imshow(im)
    ax.set_title(f"{snr:g} dB: {p:.2f} dB")
for ax in axes:
    ax.axis("off")
fig.suptitle("reconstructions over the training channel (OFDM TDL-C, LS)");'''),
    ("md", """\
A model this small, trained for minutes on three images, is far from the shipped `lite` model
(trained for 10,000 steps on 591 images); the point here is the mechanics. Because the LS
estimator and the LMMSE equalizer sit inside the training graph, the codec learns to live with the
receiver's estimation errors, which are largest at low SNR.

## Export, and the same run from the command line

`export_model` writes `model.json` (configuration, channel, metadata) and `weights.npz`;
`load_model` rebuilds the model, optionally on another channel."""),
    ("code", '''\
from fqliscs_tf.checkpoints import export_model, load_model

export_dir = export_model(model, workdir / "tiny_tdl", steps=STEPS)
reloaded = load_model(export_dir)
print(sorted(p.name for p in Path(export_dir).iterdir()))
print(reloaded.channel_type, reloaded.channel_kwargs)'''),
    ("md", """\
The command-line equivalent for a preset model on a real training pool (resumable, with
checkpoints, logs and an evaluation JSON in the work folder):

```bash
fqliscs-train --training --trainset DIV2K --train-dir ../shared/data/train \\
    --testset kodak --test-dir ../shared/data/kodak --model-size lite --C 96 \\
    --channel-config tdl.json --multiple-snr 0,5,10,15 --crop 128 --batch-size 8 \\
    --steps 10000 --lr 3e-4 --lr-schedule cosine --warmup-steps 300 --workdir runs/lite_tdl
```"""),
]

# ---------------------------------------------------------------------------------------------
NB04 = [
    ("md", """\
# JSCC versus separate source and channel coding

This notebook sends the same image over the same AWGN channel, with the same number of channel
uses, in three ways:

1. **JSCC**: the shipped `lite_c96_awgn` Swin codec (CBR 1/16, one model for all SNRs);
2. **separation**: HEVC intra (the codec inside BPG) + CRC + 5G NR LDPC + QAM, at a fixed
   modulation and coding scheme (MCS) or with the ideal adaptive MCS;
3. **codec + capacity**: the best HEVC-intra image that fits in `k * log2(1 + SNR)` bits, an upper
   bound for any separated scheme with this codec.

It shows the **cliff effect**: a fixed-MCS link is error-free above its threshold and delivers
nothing below it, while the JSCC image degrades gracefully.

* [The image and the channel budget](#The-image-and-the-channel-budget)
* [JSCC](#JSCC)
* [Codec + capacity](#Codec-+-capacity)
* [Codec + LDPC + QAM at a fixed MCS](#Codec-+-LDPC-+-QAM-at-a-fixed-MCS)
* [Ideal adaptive MCS](#Ideal-adaptive-MCS)
* [The cliff effect](#The-cliff-effect)

`FQLISCS_NB_QUICK=1` runs a CI-sized version (one 256x256 crop, five SNRs). The API is summarised
in [docs/API.md](../docs/API.md)."""),
    ("code", SETUP),
    ("md", """\
## The image and the channel budget

For an `H x W` RGB image the codec sends `k = CBR * 3 * H * W` complex channel uses (unit average
power per image; the SNR is per channel use). The separated schemes get exactly the same `k`."""),
    ("code", '''\
from fqliscs_tf.checkpoints import load_model
from phy import bounds, separation
from phy.image_codecs import BudgetTooSmallError, available_codecs

model = load_model(PACKAGE_DIR / "weights" / "lite_c96_awgn")     # AWGN-trained, SNR 1-13 dB
files = KODAK[3:] if QUICK else KODAK                              # kodim23 in quick mode
images = [data.load_image(f) for f in files]                       # uint8 [H, W, 3]
if QUICK:
    images = [data.crop_to_size(im, (256, 256)) for im in images]
H, W = images[0].shape[:2]
k = int(round(model.cbr * 3 * H * W))
CODEC = "heif" if "heif" in available_codecs() else "jpeg2000"
SNRS = [-2.0, 2.0, 6.0, 10.0, 14.0] if QUICK else list(np.arange(-4.0, 17.0, 2.0))
print(f"{len(images)} image(s) of {W}x{H}; CBR {model.cbr:g} -> k = {k} channel uses per image; "
      f"codec {CODEC!r}")

out = model((tf.constant(images[:1], tf.float32) / 255.0, tf.constant([10.0])))
print("JSCC symbols:", out["symbols"].shape, out["symbols"].dtype)
for snr in SNRS:
    print(f"SNR {snr:5.1f} dB: capacity {bounds.awgn_capacity(snr):.3f} bit/channel use -> "
          f"{bounds.capacity_bpp(model.cbr, snr):.3f} bit/pixel, "
          f"{bounds.capacity_bits(k, snr) / 8:7.0f} bytes per image")'''),
    ("md", """\
## JSCC

`evaluate` averages the PSNR over the images at every SNR (it sends each image once per SNR, as
one batch). The JSCC model is cheap to run, so it gets a denser SNR grid."""),
    ("code", '''\
from fqliscs_tf.training import evaluate

def as_batch(image):
    return tf.constant(image[None], tf.float32) / 255.0

SNRS_JSCC = SNRS if QUICK else list(np.arange(-4.0, 16.5, 1.0))
psnr_jscc = []
for i in range(0, len(SNRS_JSCC), 4):     # 4 SNRs per batch keeps the memory low at 768x512
    records, _ = evaluate(model, [as_batch(im) for im in images], SNRS_JSCC[i:i + 4])
    psnr_jscc += [r["psnr"] for r in records]
for snr, p in zip(SNRS_JSCC, psnr_jscc):
    print(f"SNR {snr:5.1f} dB: JSCC {p:.2f} dB")'''),
    ("md", """\
## Codec + capacity

`codec_at_capacity` runs the codec's rate control with a budget of `floor(k C(SNR) / 8)` bytes.
When even the lowest quality does not fit, the codec cannot send the image at all
(`BudgetTooSmallError`)."""),
    ("code", '''\
def mean_or_nan(values):
    return float(np.mean(values)) if values and not any(np.isnan(values)) else float("nan")

def image_psnr(x, x_hat):
    mse = np.mean((x.astype(np.float64) - x_hat.astype(np.float64)) ** 2)
    return 10.0 * np.log10(255.0 ** 2 / mse)

psnr_capacity, shown = [], {}
for snr in SNRS:
    values = []
    for i, image in enumerate(images):
        try:
            result = bounds.codec_at_capacity(image, CODEC, bounds.capacity_bits(k, snr))
        except BudgetTooSmallError:
            values.append(float("nan"))
            continue
        values.append(image_psnr(image, result.image))
        if i == 0:
            shown[("capacity", snr)] = result.image
    psnr_capacity.append(mean_or_nan(values))
    print(f"SNR {snr:5.1f} dB: codec + capacity {psnr_capacity[-1]:.2f} dB")'''),
    ("md", """\
## Codec + LDPC + QAM at a fixed MCS

`transmit_image` picks the best codec quality whose bitstream fits the payload of the MCS
(`max_payload_bits`), sends it through CRC + 5G LDPC + QAM + AWGN + APP demapping + LDPC
decoding, and decodes the image if every code block passes its CRC. Otherwise the receiver shows
`fallback_image`, a mid-gray image. The measured SNR threshold of every MCS (zero block errors in
200 blocks) is stored with the package."""),
    ("code", '''\
MCS_INDICES = (7, 12, 19)        # 38.214 table 1: QPSK, 16-QAM, 64-QAM
for index in MCS_INDICES:
    mcs = separation.get_mcs(index)
    print(f"MCS {index:2d}: {2 ** mcs.num_bits_per_symbol:3d}-QAM, rate {mcs.coderate:.3f}, "
          f"threshold {separation.mcs_threshold_db(mcs, 'awgn'):5.2f} dB, "
          f"payload {separation.max_payload_bits(k, mcs) // 8} bytes per image")

psnr_fixed = {}
for index in MCS_INDICES:
    psnr_fixed[index] = []
    for snr in SNRS:
        values = []
        for i, image in enumerate(images):
            result = separation.transmit_image(image, CODEC, k, snr, index, "awgn", seed=i)
            values.append(result["psnr"])
            if i == 0:
                shown[(index, snr)] = result["image"]
        psnr_fixed[index].append(float(np.mean(values)))
    print(f"MCS {index:2d}:", "  ".join(f"{p:5.2f}" for p in psnr_fixed[index]), "dB")'''),
    ("md", """\
## Ideal adaptive MCS

`transmit_image_adaptive` chooses, per image and SNR, the MCS with the largest payload among those
whose measured threshold is at most the SNR (an ideal link adaptation: the transmitter knows the
SNR exactly), then simulates the transmission. Below the lowest threshold nothing can be sent."""),
    ("code", '''\
psnr_adaptive = []
for snr in SNRS:
    values, chosen = [], []
    for i, image in enumerate(images):
        result = separation.transmit_image_adaptive(image, CODEC, k, snr, "awgn", seed=i)
        values.append(result["psnr"])
        chosen.append(f"MCS {result['mcs'].index} ({result['status']})" if result["mcs"]
                      else result["status"])
        if i == 0:
            shown[("adaptive", snr)] = result["image"]
    psnr_adaptive.append(float(np.mean(values)))
    print(f"SNR {snr:5.1f} dB: adaptive {psnr_adaptive[-1]:5.2f} dB; {', '.join(chosen)}")'''),
    ("md", """\
## The cliff effect

Each fixed-MCS curve is flat above its threshold (the bits arrive intact, the PSNR is that of the
codec at that rate) and collapses to the gray fallback below it: more SNR does not help, less SNR
is fatal. (The plot joins the measured points with a step at the measured threshold of the MCS.)
The adaptive scheme follows the upper envelope of all MCSs but needs the transmitter to know the
SNR exactly, and still has nothing to send below the lowest threshold. The JSCC curve has no
cliff: its quality follows the SNR in both directions, also beyond the 1-13 dB range it was
trained on.

Where the digital link works, it can beat this JSCC model in PSNR: the shipped `lite` model is
small, was trained for 75 minutes on a CPU, and stays well below the published WITT figures (see
the README). What the comparison shows is the difference in *shape*: JSCC needs neither link
adaptation nor an SNR margin, and never delivers nothing."""),
    ("code", '''\
plt.figure(figsize=(7.5, 4.8))
plt.plot(SNRS_JSCC, psnr_jscc, "o-", color="C0", lw=2, label="JSCC (lite_c96_awgn)")
plt.plot(SNRS, psnr_capacity, "k--", label=f"{CODEC} + capacity")
plt.plot(SNRS, psnr_adaptive, "s:", color="C1", label=f"{CODEC} + LDPC + QAM, adaptive MCS")
for j, index in enumerate(MCS_INDICES):
    mcs, color = separation.get_mcs(index), f"C{j + 2}"
    # the measured points, joined by a step at the measured threshold of the MCS
    threshold = separation.mcs_threshold_db(mcs, "awgn")
    xs, ys = list(SNRS), list(psnr_fixed[index])
    first_above = next((i for i, s in enumerate(xs) if s >= threshold), None)
    if first_above:
        xs.insert(first_above, threshold)
        ys.insert(first_above, ys[first_above])
    plt.plot(xs, ys, "-", color=color, drawstyle="steps-post")
    plt.plot(SNRS, psnr_fixed[index], "^", color=color)
    plt.plot([], [], "^-", color=color,
             label=f"{CODEC} + LDPC + {2 ** mcs.num_bits_per_symbol}-QAM, MCS {index}")
plt.xlabel("SNR [dB]")
plt.ylabel("PSNR [dB]")
plt.title(f"AWGN, CBR 1/16, {len(images)} image(s) of {W}x{H}")
plt.grid(True, alpha=0.3)
plt.legend(fontsize="small");'''),
    ("md", """\
The reconstructions of the first image at the lowest SNR and at a mid SNR. At the lowest SNR the
three fixed MCSs are below their thresholds and show the fallback image; at the mid SNR only those
whose threshold is above the SNR do."""),
    ("code", '''\
show_snrs = [SNRS[0], SNRS[len(SNRS) // 2]]
columns = ["JSCC", "capacity", "adaptive", *MCS_INDICES]
fig, axes = plt.subplots(len(show_snrs), len(columns) + 1,
                         figsize=(2.3 * (len(columns) + 1), 2.5 * len(show_snrs)))
for row, snr in zip(axes, show_snrs):
    x = as_batch(images[0])
    jscc = tf.clip_by_value(model((x, tf.constant([snr])))["x_hat"], 0.0, 1.0)
    shown[("JSCC", snr)] = np.round(jscc[0].numpy() * 255.0).astype(np.uint8)
    row[0].imshow(images[0])
    row[0].set_title(f"original, SNR {snr:g} dB", fontsize=9)
    for ax, name in zip(row[1:], columns):
        image = shown.get((name, snr))
        if image is None:
            ax.set_title(f"{name}: nothing sent", fontsize=9)
        else:
            ax.imshow(image)
            label = f"MCS {name}" if isinstance(name, int) else name
            ax.set_title(f"{label}: {image_psnr(images[0], image):.1f} dB", fontsize=9)
    for ax in row:
        ax.axis("off")
fig.tight_layout()'''),
    ("md", """\
Notes:

* The digital link is simulated bit-exactly (`phy.separation.LDPCQAMLink`), so rare block errors
  above the threshold also give the fallback.
* `channel="rayleigh"` (fast fading) and `"rayleigh-block"` work the same way, with the ergodic
  Rayleigh capacity in `phy.bounds`; other codecs: `phy.image_codecs.available_codecs()`.
* The full Kodak comparison over many codecs is a job for the command line; see
  [docs/RESULTS.md](../docs/RESULTS.md) for the measured figures."""),
]

# ---------------------------------------------------------------------------------------------
NB05 = [
    ("md", """\
# Realistic channels: UMi with mobility, and MIMO with and without precoding

The shipped `lite_c96_awgn` codec was trained on AWGN only. Here it is sent, unchanged, over
realistic Sionna links, to see what fading, channel estimation, mobility and multiple antennas do
to the reconstructed image:

* [UMi with mobility](#UMi-with-mobility): the 3GPP urban-micro model over OFDM, a new user
  drop per slot, perfect or LS channel estimation, user speeds up to 100 m/s;
* [Where the errors go](#Where-the-errors-go): the post-equalization SINR of every latent pixel
  next to the error map;
* [MIMO with and without precoding](#MIMO-with-and-without-precoding): spatial multiplexing,
  SVD and regularized zero-forcing precoding, eigen-beamforming, and MIMO-OFDM over CDL.

`FQLISCS_NB_QUICK=1` runs a CI-sized version (one 256x256 crop, three SNRs, one channel draw).
The API is summarised in [docs/API.md](../docs/API.md)."""),
    ("code", SETUP),
    ("code", '''\
from fqliscs_tf.checkpoints import load_model
from fqliscs_tf.metrics import psnr

model = load_model(PACKAGE_DIR / "weights" / "lite_c96_awgn")     # AWGN-trained, SNR 1-13 dB
image = data.load_image(KODAK[3])                                  # kodim23, uint8 [H, W, 3]
if QUICK:
    image = data.crop_to_size(image, (256, 256))
x = tf.constant(image[None], tf.float32) / 255.0
SNRS = [0.0, 5.0, 10.0] if QUICK else [-1.0, 1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0]   # [dB]
NUM_DRAWS = 1 if QUICK else 4          # channel realizations per SNR
SNR_SHOW = 5.0                          # [dB], one of SNRS, for the image comparisons

def run(channel_type, **channel_kwargs):
    """Sends ``x`` over a channel at every SNR.

    Returns the PSNR [dB] per SNR (mean over NUM_DRAWS draws) and the first draw's
    (reconstruction [H, W, 3], no_eff [k]) per SNR.
    """
    model.set_channel(channel_type, **channel_kwargs)
    values, examples = [], {}
    for snr in SNRS:
        batch = tf.repeat(x, NUM_DRAWS, axis=0)
        out = model((batch, tf.fill([NUM_DRAWS], snr)))
        x_hat = tf.clip_by_value(out["x_hat"], 0.0, 1.0)
        values.append(float(tf.reduce_mean(psnr(batch, x_hat))))
        examples[snr] = (x_hat[0].numpy(), out["no_eff"][0].numpy())
    return values, examples

k = phy.num_channel_uses([None, image.shape[0] // 16, image.shape[1] // 16, model.config.C])
print(f"{image.shape[1]}x{image.shape[0]} image -> k = {k} complex symbols per image")'''),
    ("md", """\
## UMi with mobility

`phy.OFDMLinkChannel("umi")` draws a new single-sector UMi topology (one user, 3.5 GHz, omni
antennas) for every slot and normalizes each slot's channel to unit average energy, so `snr_db`
is the average SNR of every slot and only the selectivity inside the slot remains. The user speed
makes the channel vary over the 14 OFDM symbols of a slot: the Doppler shift is `v f_c / c`."""),
    ("code", '''\
speeds = [0.0, 30.0, 100.0]     # [m/s]
fig, axes = plt.subplots(1, len(speeds), figsize=(4.2 * len(speeds), 3.0), sharey=True)
for ax, v in zip(axes, speeds):
    link = phy.OFDMLinkChannel("umi", min_speed=v, max_speed=v)
    rg = link.resource_grid
    z = tf.complex(tf.random.normal([1, link.symbols_per_slot()]),
                   tf.random.normal([1, link.symbols_per_slot()])) / np.sqrt(2.0)
    _, _, h_freq, _ = link(z, 20.0, return_channel=True)
    h = h_freq[0, 0, 0, 0, 0].numpy()                  # [OFDM symbol, subcarrier]
    gain_db = 20.0 * np.log10(np.abs(h) + 1e-6)
    im = ax.imshow(gain_db, aspect="auto", origin="lower", vmin=-20, vmax=8, cmap="viridis")
    doppler = v * 3.5e9 / 299792458.0                 # [Hz], carrier 3.5 GHz
    periods = doppler * rg.ofdm_symbol_duration * rg.num_ofdm_symbols
    ax.set_title(f"{v:g} m/s: Doppler {doppler:.0f} Hz\\n({periods:.2f} periods per slot)",
                 fontsize=9)
    ax.set_xlabel("subcarrier")
axes[0].set_ylabel("OFDM symbol")
fig.colorbar(im, ax=axes, label="|h| [dB]");'''),
    ("md", """\
The JSCC codec over these links. With perfect CSI the LMMSE equalizer knows the channel of every
resource element; with LS estimation (`estimator="ls-lin"`) it knows only noisy estimates at the
pilots (OFDM symbols 2 and 11), interpolated linearly across the grid, so estimation noise and,
at high speed, channel changes between the pilots add to the distortion."""),
    ("code", '''\
umi = {
    "AWGN (reference)": ("awgn", {}),
    "UMi 0 m/s, perfect CSI": ("ofdm-umi", {}),
    "UMi 0 m/s, LS": ("ofdm-umi", {"estimator": "ls-lin"}),
    "UMi 30 m/s, LS": ("ofdm-umi", {"estimator": "ls-lin", "min_speed": 30.0, "max_speed": 30.0}),
    "UMi 100 m/s, LS": ("ofdm-umi", {"estimator": "ls-lin", "min_speed": 100.0,
                                     "max_speed": 100.0}),
}
results = {}
for label, (ctype, kwargs) in umi.items():
    t0 = time.time()
    results[label] = run(ctype, **kwargs)
    print(f"{label:24s}", "  ".join(f"{p:5.2f}" for p in results[label][0]),
          f"dB  ({time.time() - t0:.1f} s)")

def plot_curves(labels, title):
    plt.figure(figsize=(6.5, 4.2))
    for label in labels:
        plt.plot(SNRS, results[label][0], marker="o", label=label)
    plt.xlabel("SNR [dB]")
    plt.ylabel("PSNR [dB]")
    plt.title(title)
    plt.grid(True, alpha=0.3)
    plt.legend(fontsize="small")

plot_curves(umi, f"lite_c96_awgn over UMi, {image.shape[1]}x{image.shape[0]}")'''),
    ("code", '''\
def show_images(labels, snr):
    fig, axes = plt.subplots(1, len(labels) + 1, figsize=(2.7 * (len(labels) + 1), 3.0))
    axes[0].imshow(image)
    axes[0].set_title("original", fontsize=9)
    for ax, label in zip(axes[1:], labels):
        x_hat = results[label][1][snr][0]
        p = psnr(x, x_hat[None]).numpy()[0]
        ax.imshow(x_hat)
        ax.set_title(f"{label}\\n{p:.2f} dB", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"SNR {snr:g} dB")

show_images(list(umi), SNR_SHOW)'''),
    ("md", """\
## Where the errors go

The link returns, for every symbol, `no_eff`: the mean squared error of the LMMSE estimate given
the channel. The post-equalization SINR is `(1 - no_eff) / no_eff`. Two adjacent latent values
form one complex symbol, so each latent pixel (16x16 image pixels) is carried by `C/2 = 48`
symbols; averaging their SINR gives a map at the latent resolution. Symbols fill the slots in
latent raster order, so every slot (an independent UMi drop with its own frequency selectivity)
covers a band of latent pixels."""),
    ("code", '''\
def sinr_map(no_eff):
    """Mean post-equalization SINR [dB] per latent pixel, [H/16, W/16]."""
    h, w = image.shape[0] // 16, image.shape[1] // 16
    sinr = (1.0 - no_eff) / np.maximum(no_eff, 1e-12)
    return 10.0 * np.log10(sinr.reshape(h, w, -1).mean(axis=-1))

def show_effect(label, snr=SNR_SHOW):
    x_hat, no_eff = results[label][1][snr]
    err = np.abs(x_hat - image / 255.0).mean(axis=-1)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].imshow(x_hat)
    axes[0].set_title(f"{label}, SNR {snr:g} dB", fontsize=9)
    im1 = axes[1].imshow(err, cmap="magma", vmin=0, vmax=0.25)
    axes[1].set_title("absolute error (mean over RGB)", fontsize=9)
    im2 = axes[2].imshow(sinr_map(no_eff), cmap="viridis")
    axes[2].set_title("post-equalization SINR per latent pixel [dB]", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.colorbar(im1, ax=axes[1], fraction=0.046)
    fig.colorbar(im2, ax=axes[2], fraction=0.046)

show_effect("UMi 100 m/s, LS")'''),
    ("md", """\
## MIMO with and without precoding

`phy.MIMOLinkChannel` (channel type `"mimo"`) is a flat-fading `N_t x N_r` link with a new i.i.d.
Rayleigh matrix per channel use, perfect CSI at the receiver (and at the transmitter for
precoding) and LMMSE detection. The symbols are split over `num_streams` spatial streams; the
total transmit power per channel use is 1 whatever the number of antennas and streams, and
`snr_db` is the average SNR per receive antenna. So two streams halve the channel uses of the
image but share the power:

* no precoding: one stream per transmit antenna;
* SVD precoding: equal power on the strongest eigenmodes; with one stream it is eigen-beamforming
  (array and diversity gain, but the full number of channel uses);
* RZF: regularized zero-forcing with more transmit than receive antennas.

`"mimo-ofdm-cdl"` does the same per resource element over a 3GPP CDL-A OFDM channel."""),
    ("code", '''\
mimo = {
    "SISO Rayleigh (reference)": ("rayleigh", {}),
    "2x2, no precoding": ("mimo", {}),
    "2x2, SVD, 2 streams": ("mimo", {"precoding": "svd"}),
    "2x2, SVD, 1 stream": ("mimo", {"precoding": "svd", "num_streams": 1}),
    "4x2, RZF, 2 streams": ("mimo", {"num_tx_ant": 4, "num_rx_ant": 2, "precoding": "rzf"}),
    "CDL-A OFDM 2x2, no precoding": ("mimo-ofdm-cdl", {}),
    "CDL-A OFDM 2x2, SVD": ("mimo-ofdm-cdl", {"precoding": "svd"}),
}
for label, (ctype, kwargs) in mimo.items():
    t0 = time.time()
    results[label] = run(ctype, **kwargs)
    streams = getattr(model.link.channel, "num_streams", 1)
    print(f"{label:30s}", "  ".join(f"{p:5.2f}" for p in results[label][0]),
          f"dB; {-(-k // streams)} channel uses ({time.time() - t0:.1f} s)")

plot_curves(mimo, "lite_c96_awgn over MIMO links")'''),
    ("code", '''\
show_images(list(mimo)[:5], SNR_SHOW)
show_effect("2x2, no precoding")'''),
    ("md", """\
With fast fading every channel use sees a new matrix, so the SINR map has no structure: the
fading acts as extra noise spread evenly over the image, unlike the slot-wise bands of UMi."""),
    ("md", """\
What to take away:

* The AWGN-trained codec keeps working over every link, without retraining: fading and estimation
  errors lower the PSNR smoothly, there is no cliff.
* With LS estimation most of the loss at low SNR is estimation noise; mobility adds distortion at
  high SNR, where the interpolation error between pilots dominates the noise.
* Spatial multiplexing trades quality for channel uses; beamforming does the opposite. Training
  through these links (see `02_end_to_end_training_in_sionna.ipynb` and
  `fqliscs-train --channel-config`) lets the codec adapt to them."""),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": NB01,
    "02_end_to_end_training_in_sionna.ipynb": NB02,
    "03_full_integer_quantization.ipynb": NB03,
    "04_phy_baselines.ipynb": NB04,
    "05_realistic_scenarios.ipynb": NB05,
}


def build(cells, prefix):
    """A notebook (nbformat v4, no outputs) with deterministic cell ids."""
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell.id = f"{prefix}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(nb):
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a stored notebook differs from its cells")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        text = render(build(cells, "nb" + name[:2]))
        path = HERE / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python notebooks/build_notebooks.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
