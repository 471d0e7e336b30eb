"""Integer forward of each codec layer, on integer tensors only.

Every function takes ``tf.int32`` tensors (int8 or int16 values) and the layer's exported
``(arrays, scales)`` (see :mod:`.export`) and returns ``tf.int32`` tensors; matrix products
accumulate in int32, requantizations are TFLite dyadic multiplies
(:func:`~fqliscs_tf.quant.fixedpoint.multiply_by_quantized_multiplier`), nonlinear ops are
the integer forms of :mod:`fqliscs_tf.quant.intops`. Feature maps are
``[B, H, W, C]``, windows ``[B*nW, N, C]``.
"""
import numpy as np
import tensorflow as tf

from fqliscs_tf.quant import intops
from fqliscs_tf.quant.fixedpoint import multiply_by_quantized_multiplier
from fqliscs_tf.swin import (relative_position_index, shifted_window_separation,
                             window_partition, window_reverse)

__all__ = ["int_matmul", "linear", "requantize", "clip_bits", "layer_forward"]


def int_matmul(a, b, bits_a, bits_b, transpose_b=False):
    """``a @ b`` with int32 accumulation; ``a``, ``b`` int32 tensors holding ``bits``-wide values.

    When both operands fit in int8 they are cast to int8 and multiplied with an int32 output
    (exact; under XLA as fast as a float32 matmul, while an int32 x int32 matmul is 2-8x
    slower on x86 CPUs: ``experiments/profile_engine.py``). Otherwise an int32 matmul.
    """
    if bits_a <= 8 and bits_b <= 8:
        return tf.linalg.matmul(tf.cast(a, tf.int8), tf.cast(b, tf.int8),
                                transpose_b=transpose_b, output_type=tf.int32)
    return tf.matmul(a, b, transpose_b=transpose_b)


def linear(x, w, b=None, x_bits=32):
    """``x @ w + b`` in int32: x ``[..., in]`` int32 holding ``x_bits``-wide values, w
    ``[in, out]`` int8, b ``[out]`` int32."""
    shape = tf.shape(x)
    x2 = tf.reshape(x, [-1, w.shape[0]])
    if x_bits <= 8:
        acc = int_matmul(x2, tf.constant(w.astype(np.int8)), x_bits, 8)
    else:
        acc = tf.matmul(x2, tf.constant(w.astype(np.int32)))
    if b is not None:
        acc = acc + tf.constant(b.astype(np.int32))
    return tf.reshape(acc, tf.concat([shape[:-1], [w.shape[1]]], 0))


def requantize(acc, mult, bits):
    """``clamp(round(acc * M), -(2**(bits-1) - 1), 2**(bits-1) - 1)``, M = dyadic ``mult``."""
    qmax = 2 ** (bits - 1) - 1
    y = multiply_by_quantized_multiplier(acc, mult[0], mult[1])
    return tf.clip_by_value(y, -qmax, qmax)


def clip_bits(x, bits):
    """Saturate to the symmetric ``bits``-wide grid ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``."""
    qmax = 2 ** (bits - 1) - 1
    return tf.clip_by_value(x, -qmax, qmax)


def _layer_norm(x, in_scale, gamma, beta, out_scale, spec):
    y, _ = intops.int_layer_norm(x, in_scale, gamma, beta, out_scale=out_scale,
                                 bits=spec.act_bits, method=spec.layer_norm,
                                 in_bits=spec.residual_bits)
    qmax = 2 ** (spec.act_bits - 1) - 1
    return tf.clip_by_value(y, -qmax, qmax)


def patch_embed(x, a, s, spec, patch_size):
    """uint8 pixels ``[B, H, W, 3]`` (as int32) -> residual grid of the next layer."""
    patches = tf.nn.space_to_depth(x, patch_size)
    return requantize(linear(patches, a["w"], a["b"]), a["m_out"], spec.residual_bits)


def _attention(windows, a, s, spec, separation):
    heads, n = s["heads"], s["window"] ** 2
    dim = a["wqkv"].shape[1] // 3
    hd = dim // heads
    ab = spec.act_bits
    qkv = requantize(linear(windows, a["wqkv"], a["bqkv"], ab), a["m_qkv"], ab)
    qkv = tf.transpose(tf.reshape(qkv, [-1, n, 3, heads, hd]), [2, 0, 3, 1, 4])
    index = relative_position_index(s["window"]).reshape(-1)
    bias = tf.gather(tf.constant(a["rel_table"]), index)  # [N*N, heads]
    bias = tf.transpose(tf.reshape(bias, [n, n, heads]), [2, 0, 1])
    logits = int_matmul(qkv[0], qkv[1], ab, ab, transpose_b=True) + bias[None]
    if separation is not None:
        num_windows = tf.shape(separation)[0]
        logits = tf.reshape(logits, [-1, num_windows, heads, n, n])
        mask = tf.where(separation, tf.constant(int(a["mask"]), tf.int32), 0)
        logits = tf.reshape(logits + mask[None, :, None], [-1, heads, n, n])
    attn, _ = intops.int_softmax(logits, s["logit"], method=spec.softmax, bits=spec.act_bits)
    out = tf.transpose(int_matmul(attn, qkv[2], ab, ab), [0, 2, 1, 3])  # attn in [0, 2**(ab-1))
    out = tf.reshape(out, [-1, n, dim])
    # attn (grid 2**-(bits-1)) @ v -> the "attn" grid.
    m = _scalar_mult(2.0 ** -(spec.act_bits - 1) * s["v"] / s["attn"])
    out = requantize(out, m, spec.act_bits)
    return requantize(linear(out, a["wproj"], a["bproj"], ab), a["m_proj"], spec.residual_bits)


def _scalar_mult(real):
    from fqliscs_tf.quant.fixedpoint import quantize_multiplier
    return quantize_multiplier(float(real))


def swin_block(x, a, s, spec):
    """Residual-grid ``[B, H, W, dim]`` -> the next layer's residual grid."""
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    ws, sh = s["window"], s["shift"]
    rb = spec.residual_bits
    y = _layer_norm(x, s["in"], s["norm1_gamma"], s["norm1_beta"], s["norm1"], spec)
    separation = None
    if sh > 0:
        y = tf.roll(y, shift=[-sh, -sh], axis=[1, 2])
        separation = shifted_window_separation(h, w, ws, sh)
    y = _attention(window_partition(y, ws), a, s, spec, separation)
    y = window_reverse(y, ws, b, h, w)
    if sh > 0:
        y = tf.roll(y, shift=[sh, sh], axis=[1, 2])
    x = clip_bits(requantize(x, a["m_res1"], 32) + y, rb)
    y = _layer_norm(x, s["mid"], s["norm2_gamma"], s["norm2_beta"], s["norm2"], spec)
    hidden = requantize(linear(y, a["w1"], a["b1"], spec.act_bits), a["m_fc1"], spec.act_bits)
    g, g_scale = intops.int_gelu(hidden, s["fc1"], method=spec.gelu)
    g = requantize(g, _scalar_mult(g_scale / s["gelu"]), spec.act_bits)
    y = requantize(linear(g, a["w2"], a["b2"], spec.act_bits), a["m_fc2"], 32)
    return clip_bits(requantize(x, a["m_res2"], 32) + y, rb)


def patch_merging(x, a, s, spec):
    x = tf.nn.space_to_depth(x, 2)
    y = _layer_norm(x, s["in"], s["norm_gamma"], s["norm_beta"], s["norm"], spec)
    return requantize(linear(y, a["w"], x_bits=spec.act_bits), a["m_out"], spec.residual_bits)


def patch_reverse_merging(x, a, s, spec):
    y = _layer_norm(x, s["in"], s["norm_gamma"], s["norm_beta"], s["norm"], spec)
    y = linear(y, a["w"], x_bits=spec.act_bits)
    if s["image_output"]:  # uint8 pixels
        y = multiply_by_quantized_multiplier(y, a["m_out"][0], a["m_out"][1])
        return tf.nn.depth_to_space(tf.clip_by_value(y, 0, 255), s["factor"])
    return tf.nn.depth_to_space(requantize(y, a["m_out"], spec.residual_bits), s["factor"])


def output_norm(x, a, s, spec):
    return _layer_norm(x, s["in"], s["norm_gamma"], s["norm_beta"], s["out"], spec)


def head(x, a, s, spec):
    return requantize(linear(x, a["w"], a["b"]), a["m_out"], spec.act_bits)


def modnet(x, snr_q, a, s, spec):
    """x int8 ``[B, H, W, C]`` (grid ``s["x"]``), snr_q ``[B, 1]`` int32 (SNR grid)."""
    r8 = spec.act_bits
    temp = x
    for i in range(s["num_layers"]):
        h = tf.nn.relu(requantize(linear(snr_q, a[f"bm{i}_fc1_w"], a[f"bm{i}_fc1_b"]),
                                  a[f"bm{i}_fc1_m"], r8))
        h = tf.nn.relu(requantize(linear(h, a[f"bm{i}_fc2_w"], a[f"bm{i}_fc2_b"]),
                                  a[f"bm{i}_fc2_m"], r8))
        z = requantize(linear(h, a[f"bm{i}_fc3_w"], a[f"bm{i}_fc3_b"]), a[f"bm{i}_fc3_m"], r8)
        gate, _ = intops.int_sigmoid(z, s[f"bm{i}_fc3"], method=spec.sigmoid, bits=r8)
        temp = requantize(linear(temp, a[f"sm{i}_w"], a[f"sm{i}_b"]), a[f"sm{i}_m"], r8)
        temp = requantize(temp * gate[:, None, None, :], a[f"mod{i}_m"], r8)
    z = requantize(linear(temp, a["out_w"], a["out_b"]), a["out_m"], r8)
    gate, _ = intops.int_sigmoid(z, s["out"], method=spec.sigmoid, bits=r8)
    return requantize(x * gate, a["m_next"], s["next_bits"])


def layer_forward(kind, x, a, s, spec, snr_q=None, patch_size=2):
    """Dispatch one exported layer."""
    if kind == "patch_embed":
        return patch_embed(x, a, s, spec, patch_size)
    if kind == "swin_block":
        return swin_block(x, a, s, spec)
    if kind == "patch_merging":
        return patch_merging(x, a, s, spec)
    if kind == "patch_reverse_merging":
        return patch_reverse_merging(x, a, s, spec)
    if kind == "output_norm":
        return output_norm(x, a, s, spec)
    if kind == "head":
        return head(x, a, s, spec)
    if kind == "modnet":
        return modnet(x, snr_q, a, s, spec)
    raise ValueError(f"unknown integer layer kind {kind!r}")
