"""Swin Transformer layers on channels-last feature maps.

Every layer here works on ``[batch, height, width, channels]`` float32 tensors
whose spatial size is only known at run time, so one model serves 32x32 CIFAR
crops, 256x256 training crops and full 768x512 Kodak images. Sublayers are
created in ``__init__`` and built explicitly in ``build`` so that TF-MOT's
``QuantizeWrapper`` can reach their kernels before the first call.

Every layer takes ``quant`` (None, or a :class:`~fqliscs_tf.quant.fakequant.QuantSpec` or its
dict). With it, the layer fake-quantizes its activations at the points where the integer
engine requantizes (listed in each layer's ``quant_points``) and runs the integer training
forms of LayerNorm, softmax and GELU; the float path is unchanged. Layers quantize their
*input* (16-bit residual grid) and leave their output float for the next layer's input
quantizer.
"""
import numpy as np
import tensorflow as tf
import tf_keras as keras

from fqliscs_tf.quant import intops
from fqliscs_tf.quant.fakequant import as_quant_spec, fake_norm, make_ranges, ste_round

__all__ = [
    "PatchEmbed",
    "PatchMerging",
    "PatchReverseMerging",
    "SwinBlock",
    "window_partition",
    "window_reverse",
    "shifted_window_mask",
    "shifted_window_separation",
    "relative_position_index",
]

_LN_EPS = 1e-5


def _dense(units, name, use_bias=True):
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    return keras.layers.Dense(units, use_bias=use_bias, kernel_initializer=init, name=name)


def _layer_norm(name):
    return keras.layers.LayerNormalization(epsilon=_LN_EPS, name=name)


def _quant_config(quant):
    spec = as_quant_spec(quant)
    return None if spec is None else spec.to_dict()


def window_partition(x, window_size):
    """Split ``[B, H, W, C]`` into non-overlapping windows ``[B*nW, ws*ws, C]``.

    ``H`` and ``W`` must be multiples of ``window_size``; windows are ordered
    row-major per image, images outermost.
    """
    shape = tf.shape(x)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    ws = window_size
    x = tf.reshape(x, [b, h // ws, ws, w // ws, ws, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, ws * ws, c])


def window_reverse(windows, window_size, batch, height, width):
    """Inverse of :func:`window_partition`: ``[B*nW, ws*ws, C]`` -> ``[B, H, W, C]``."""
    ws = window_size
    c = tf.shape(windows)[-1]
    x = tf.reshape(windows, [batch, height // ws, width // ws, ws, ws, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [batch, height, width, c])


def shifted_window_separation(height, width, window_size, shift_size):
    """``[nW, ws*ws, ws*ws]`` bool: True for token pairs of a shifted window that come from
    different image regions (they must not attend to each other)."""
    ws, s = window_size, shift_size

    def region(n):
        idx = tf.range(n)
        return tf.where(idx < n - ws, 0, tf.where(idx < n - s, 1, 2))

    ids = region(height)[:, None] * 3 + region(width)[None, :]
    ids = window_partition(ids[None, :, :, None], ws)[..., 0]  # [nW, N]
    return tf.not_equal(ids[:, :, None], ids[:, None, :])


def shifted_window_mask(height, width, window_size, shift_size):
    """Additive attention mask for shifted windows, ``[nW, ws*ws, ws*ws]`` float32.

    After the cyclic shift, a window at the border holds tokens from up to four
    image regions that are not neighbours; pairs of tokens from different
    regions get -100 (softmax weight ~0), pairs from one region get 0.
    """
    separated = shifted_window_separation(height, width, window_size, shift_size)
    return tf.where(separated, -100.0, 0.0)


def relative_position_index(window_size):
    """Index ``[ws*ws, ws*ws]`` int32 into a ``(2ws-1)^2`` relative-position bias table."""
    coords = np.stack(np.meshgrid(np.arange(window_size), np.arange(window_size), indexing="ij"))
    coords = coords.reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :] + (window_size - 1)
    return (rel[0] * (2 * window_size - 1) + rel[1]).astype(np.int32)


class PatchEmbed(keras.layers.Layer):
    """Non-overlapping patch embedding: ``[B, H, W, 3]`` -> ``[B, H/p, W/p, dim]``."""

    quant_points = ()
    kernels = ("proj",)

    def __init__(self, dim, patch_size=2, quant=None, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.patch_size = int(patch_size)
        self.quant = as_quant_spec(quant)
        self.proj = keras.layers.Conv2D(self.dim, self.patch_size, strides=self.patch_size,
                                        name="proj")

    def build(self, input_shape):
        self.proj.build(input_shape)
        super().build(input_shape)

    def call(self, x):
        if self.quant is not None:  # the 8-bit image grid pixel / 255
            x = tf.quantization.fake_quant_with_min_max_args(x, 0.0, 1.0, num_bits=8)
        return self.proj(x)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "patch_size": self.patch_size,
                "quant": _quant_config(self.quant)}


class PatchMerging(keras.layers.Layer):
    """2x2 patch merging: ``[B, H, W, C]`` -> ``[B, H/2, W/2, out_dim]``.

    Space-to-depth (4C channels), LayerNorm, then a bias-free linear map to ``out_dim``.
    """

    quant_points = ("input", "norm")
    kernels = ("reduction",)

    def __init__(self, out_dim, quant=None, **kwargs):
        super().__init__(**kwargs)
        self.out_dim = int(out_dim)
        self.quant = as_quant_spec(quant)
        self.norm = _layer_norm("norm")
        self.reduction = _dense(self.out_dim, "reduction", use_bias=False)

    def build(self, input_shape):
        merged = tf.TensorShape(input_shape[:-1]).concatenate([4 * int(input_shape[-1])])
        self.norm.build(merged)
        self.reduction.build(merged)
        if self.quant is not None:
            self.ranges = make_ranges(self, self.quant, ["norm"], ["input"])
        super().build(input_shape)

    def call(self, x, training=None):
        if self.quant is None:
            x = tf.nn.space_to_depth(x, 2)
            return self.reduction(self.norm(x))
        r = self.ranges
        x = tf.nn.space_to_depth(r["input"](x, training), 2)
        y = fake_norm(x, r["input"].scale(), self.norm, self.quant, r["norm"], training)
        return self.reduction(y)

    def get_config(self):
        return {**super().get_config(), "out_dim": self.out_dim,
                "quant": _quant_config(self.quant)}


class PatchReverseMerging(keras.layers.Layer):
    """Upsampling by ``factor``: ``[B, H, W, C]`` -> ``[B, f*H, f*W, out_dim]``.

    LayerNorm, a bias-free linear map to ``f*f*out_dim``, then depth-to-space.
    """

    quant_points = ("input", "norm")
    kernels = ("increment",)

    def __init__(self, out_dim, factor=2, image_output=False, quant=None, **kwargs):
        super().__init__(**kwargs)
        self.out_dim = int(out_dim)
        self.factor = int(factor)
        self.image_output = bool(image_output)
        self.quant = as_quant_spec(quant)
        self.norm = _layer_norm("norm")
        self.increment = _dense(self.factor ** 2 * self.out_dim, "increment", use_bias=False)

    def build(self, input_shape):
        self.norm.build(input_shape)
        self.increment.build(input_shape)
        if self.quant is not None:
            self.ranges = make_ranges(self, self.quant, ["norm"], ["input"])
        super().build(input_shape)

    def call(self, x, training=None):
        if self.quant is None:
            return tf.nn.depth_to_space(self.increment(self.norm(x)), self.factor)
        r = self.ranges
        x = r["input"](x, training)
        y = fake_norm(x, r["input"].scale(), self.norm, self.quant, r["norm"], training)
        y = tf.nn.depth_to_space(self.increment(y), self.factor)
        if self.image_output:  # 8-bit pixels, pixel / 255 in [0, 1]
            y = tf.quantization.fake_quant_with_min_max_args(y, 0.0, 1.0, num_bits=8)
        return y

    def get_config(self):
        return {**super().get_config(), "out_dim": self.out_dim, "factor": self.factor,
                "image_output": self.image_output, "quant": _quant_config(self.quant)}


class SwinBlock(keras.layers.Layer):
    """One Swin Transformer block: (shifted-)window attention and an MLP, pre-norm, residual.

    Input and output: ``[B, H, W, dim]`` float32, with ``H`` and ``W`` multiples
    of ``window_size``. ``shift_size > 0`` makes it the shifted-window variant.

    Parameters
    ----------
    dim : int
        Channels.
    num_heads : int
        Attention heads; ``dim`` must be divisible by it.
    window_size : int
        Side of the square attention window [tokens].
    shift_size : int
        Cyclic shift [tokens], 0 or ``window_size // 2`` in practice.
    mlp_ratio : float
        Hidden width of the MLP relative to ``dim``.
    """

    quant_points = ("input", "norm1", "q", "k", "v", "attn", "mid", "norm2", "fc1", "gelu")
    kernels = ("qkv", "proj", "fc1", "fc2")

    def __init__(self, dim, num_heads, window_size=8, shift_size=0, mlp_ratio=4.0, quant=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.quant = as_quant_spec(quant)
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size={shift_size} must be in [0, window_size={window_size})")
        self.dim = int(dim)
        self.num_heads = int(num_heads)
        self.window_size = int(window_size)
        self.shift_size = int(shift_size)
        self.mlp_ratio = float(mlp_ratio)
        self.head_dim = self.dim // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.norm1 = _layer_norm("norm1")
        self.qkv = _dense(3 * self.dim, "qkv")
        self.proj = _dense(self.dim, "proj")
        self.norm2 = _layer_norm("norm2")
        self.fc1 = _dense(int(self.dim * self.mlp_ratio), "fc1")
        self.fc2 = _dense(self.dim, "fc2")
        self._rel_index = relative_position_index(self.window_size).reshape(-1)

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape)
        hidden = shape[:-1].concatenate([int(self.dim * self.mlp_ratio)])
        self.norm1.build(shape)
        self.qkv.build(shape)
        self.proj.build(shape)
        self.norm2.build(shape)
        self.fc1.build(shape)
        self.fc2.build(hidden)
        self.relative_position_bias_table = self.add_weight(
            name="relative_position_bias_table",
            shape=((2 * self.window_size - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        if self.quant is not None:
            self.ranges = make_ranges(self, self.quant,
                                      ["norm1", "q", "k", "v", "attn", "norm2", "fc1", "gelu"],
                                      ["input", "mid"])
        super().build(input_shape)

    def relative_position_bias(self):
        """``[num_heads, N, N]`` bias added to the attention logits (N = ws*ws)."""
        n = self.window_size ** 2
        bias = tf.gather(self.relative_position_bias_table, self._rel_index)
        return tf.transpose(tf.reshape(bias, [n, n, self.num_heads]), [2, 0, 1])

    def attention(self, windows, mask=None):
        """Multi-head self-attention inside windows: ``[B*nW, N, dim]`` -> same shape.

        ``mask``: ``[nW, N, N]`` additive mask or None.
        """
        n = self.window_size ** 2
        qkv = tf.reshape(self.qkv(windows), [-1, n, 3, self.num_heads, self.head_dim])
        qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])  # [3, B*nW, heads, N, hd]
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        logits = tf.matmul(q, k, transpose_b=True) + self.relative_position_bias()[None]
        if mask is not None:
            num_windows = tf.shape(mask)[0]
            logits = tf.reshape(logits, [-1, num_windows, self.num_heads, n, n])
            mask = tf.cast(mask, logits.dtype)         # bfloat16 under a mixed policy
            logits = tf.reshape(logits + mask[None, :, None], [-1, self.num_heads, n, n])
        attn = tf.nn.softmax(logits, axis=-1)
        out = tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3])
        return self.proj(tf.reshape(out, [-1, n, self.dim]))

    def attention_quant(self, windows, mask, training):
        """Quantized-mode :meth:`attention`: int8 q, k, v and output, logits on the grid
        ``s_q * s_k`` (relative-position bias rounded to it), integer-form softmax."""
        r, n = self.ranges, self.window_size ** 2
        qkv = tf.reshape(self.qkv(windows), [-1, n, 3, self.num_heads, self.head_dim])
        qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])
        q = r["q"](qkv[0] * self.scale, training)
        k = r["k"](qkv[1], training)
        v = r["v"](qkv[2], training)
        s_logit = r["q"].scale() * r["k"].scale()
        bias = ste_round(self.relative_position_bias() / s_logit) * s_logit
        logits = tf.matmul(q, k, transpose_b=True) + bias[None]
        if mask is not None:
            num_windows = tf.shape(mask)[0]
            logits = tf.reshape(logits, [-1, num_windows, self.num_heads, n, n])
            logits = tf.reshape(logits + mask[None, :, None], [-1, self.num_heads, n, n])
        attn = intops.fake_softmax(logits, s_logit, method=self.quant.softmax,
                                   bits=self.quant.act_bits)
        out = tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3])
        out = r["attn"](tf.reshape(out, [-1, n, self.dim]), training)
        return self.proj(out)

    def _call_quant(self, x, training):
        r, spec = self.ranges, self.quant
        shape = tf.shape(x)
        b, h, w = shape[0], shape[1], shape[2]
        ws, s = self.window_size, self.shift_size
        x = r["input"](x, training)
        y = fake_norm(x, r["input"].scale(), self.norm1, spec, r["norm1"], training)
        mask = None
        if s > 0:
            y = tf.roll(y, shift=[-s, -s], axis=[1, 2])
            mask = shifted_window_mask(h, w, ws, s)
        y = self.attention_quant(window_partition(y, ws), mask, training)
        y = window_reverse(y, ws, b, h, w)
        if s > 0:
            y = tf.roll(y, shift=[s, s], axis=[1, 2])
        x = r["mid"](x + y, training)
        y = fake_norm(x, r["mid"].scale(), self.norm2, spec, r["norm2"], training)
        hidden = r["fc1"](self.fc1(y), training)
        g = intops.fake_gelu(hidden, r["fc1"].scale(), method=spec.gelu)
        return x + self.fc2(r["gelu"](g, training))

    def call(self, x, training=None):
        if self.quant is not None:
            return self._call_quant(x, training)
        shape = tf.shape(x)
        b, h, w = shape[0], shape[1], shape[2]
        ws, s = self.window_size, self.shift_size
        y = self.norm1(x)
        mask = None
        if s > 0:
            y = tf.roll(y, shift=[-s, -s], axis=[1, 2])
            mask = shifted_window_mask(h, w, ws, s)
        y = self.attention(window_partition(y, ws), mask)
        y = window_reverse(y, ws, b, h, w)
        if s > 0:
            y = tf.roll(y, shift=[s, s], axis=[1, 2])
        x = x + y
        return x + self.fc2(tf.nn.gelu(self.fc1(self.norm2(x)), approximate=False))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "window_size": self.window_size, "shift_size": self.shift_size,
                "mlp_ratio": self.mlp_ratio, "quant": _quant_config(self.quant)}
