# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Real latent <-> complex channel symbols, and per-example power normalization.

Pairing convention: each example is flattened in row-major (C) order and
adjacent values are paired, ``z[i] = x[2i] + j x[2i+1]``. For a latent
``[batch, h, w, c]`` with even ``c`` this pairs channels ``(0, 1), (2, 3), ...``
of the same pixel.
"""
import tensorflow as tf

__all__ = ["real_to_complex", "complex_to_real", "normalize_power"]


def _real_dtype_for(x):
    """Real dtype used for a real input: float64 stays, anything else -> float32."""
    return tf.float64 if x.dtype == tf.float64 else tf.float32


def real_to_complex(x):
    r"""Maps a real tensor to complex symbols, one row of symbols per example.

    Each example is flattened (row-major) and adjacent values are paired:
    ``z[:, i] = x_flat[:, 2i] + j x_flat[:, 2i+1]``. Differentiable.

    Input
    -----
    x : [batch_size, ...], `tf.float`
        Real tensor with an even number of elements per example. Batch and
        the other dimensions may be dynamic.

    Output
    ------
    z : [batch_size, k], `tf.complex64` (`tf.complex128` for `tf.float64` input)
        Complex symbols, ``k`` = (elements per example) / 2

    Raises
    ------
    ValueError
        If ``x`` is complex, has rank < 2, or its per-example size is
        statically known and odd. (An odd size only known at run time makes
        the reshape fail with ``tf.errors.InvalidArgumentError``.)
    """
    x = tf.convert_to_tensor(x)
    if x.dtype.is_complex:
        raise ValueError(f"real_to_complex expects a real tensor, got dtype {x.dtype.name}")
    x = tf.cast(x, _real_dtype_for(x))
    rank = x.shape.rank
    if rank is not None and rank < 2:
        raise ValueError(
            f"real_to_complex expects a tensor [batch_size, ...] of rank >= 2, "
            f"got shape {x.shape}")
    n = x.shape[1:].num_elements() if rank is not None else None
    if n is not None and n % 2:
        raise ValueError(
            f"real_to_complex needs an even number of values per example to form "
            f"complex symbols, got {n} (per-example shape {x.shape[1:]})")
    k = n // 2 if n is not None else -1
    pairs = tf.reshape(x, [tf.shape(x)[0], k, 2])
    return tf.complex(pairs[..., 0], pairs[..., 1])


def _check_shape(shape):
    """Validates a per-example shape given as list/tuple/TensorShape/tensor."""
    if isinstance(shape, tf.TensorShape):
        if shape.rank is None or not shape.is_fully_defined():
            raise ValueError(
                f"complex_to_real needs a fully defined per-example shape, got "
                f"{shape}; pass tf.shape(x)[1:] for dynamic shapes")
        return shape.as_list()
    if isinstance(shape, (list, tuple)):
        if any(d is None for d in shape):
            raise ValueError(
                f"complex_to_real needs a per-example shape without None entries, "
                f"got {shape!r}; pass tf.shape(x)[1:] for dynamic shapes")
        return list(shape)
    shape = tf.convert_to_tensor(shape)
    if shape.shape.rank != 1:
        raise ValueError(f"complex_to_real expects a 1-D per-example shape, got {shape!r}")
    return tf.cast(shape, tf.int32)


def complex_to_real(z, shape):
    r"""Inverse of :func:`real_to_complex`.

    Splits every symbol into (real, imaginary) parts, interleaves them and
    reshapes each example to ``shape``. Differentiable.

    Input
    -----
    z : [batch_size, k], `tf.complex`
        Complex symbols (batch may be dynamic)

    shape : `list` | `tuple` | `tf.TensorShape` | 1-D `tf.int32` tensor
        Per-example output shape (without the batch dimension), with
        ``prod(shape) == 2 k``; e.g. ``tf.shape(latent)[1:]`` for dynamic
        spatial sizes.

    Output
    ------
    x : [batch_size] + ``shape``, `tf.float32` (`tf.float64` for `tf.complex128`)
        Real tensor

    Raises
    ------
    ValueError
        If ``z`` is not complex, ``shape`` has unknown entries, or the sizes
        are statically known and do not match.
    """
    z = tf.convert_to_tensor(z)
    if not z.dtype.is_complex:
        raise ValueError(f"complex_to_real expects a complex tensor, got dtype {z.dtype.name}")
    shape = _check_shape(shape)
    x = tf.stack([tf.math.real(z), tf.math.imag(z)], axis=-1)
    batch = tf.shape(z)[0]
    if isinstance(shape, list):
        k = z.shape[1:].num_elements() if z.shape.rank is not None else None
        if all(isinstance(d, int) for d in shape) and k is not None:
            n = 1
            for d in shape:
                n *= d
            if n != 2 * k:
                raise ValueError(
                    f"complex_to_real: per-example shape {shape} holds {n} values, "
                    f"but z carries {k} complex symbols ({2 * k} values) per example")
        return tf.reshape(x, [batch, *shape])
    return tf.reshape(x, tf.concat([[batch], shape], axis=0))


def normalize_power(z, epsilon=1e-12, return_power=False):
    r"""Scales each example to unit average symbol power.

    .. math::
        \tilde{z}_i = \frac{z_i}{\sqrt{P + \epsilon}},\qquad
        P = \frac{1}{k}\sum_{i=1}^{k} |z_i|^2

    computed separately for every example (row). Differentiable; an all-zero
    example stays all-zero.

    Input
    -----
    z : [batch_size, k], `tf.complex`
        Complex symbols (normalization runs along the last axis)

    epsilon : `float`, (default 1e-12)
        Added to ``P`` before the square root

    return_power : `bool`, (default `False`)
        If `True`, also return ``P``

    Output
    ------
    z_norm : [batch_size, k], `tf.complex`
        Symbols with :math:`\frac{1}{k}\sum_i |\tilde{z}_i|^2 = 1` per example
        (up to ``epsilon``)

    power : [batch_size, 1], `tf.float`
        Average power ``P`` of each example before normalization. Only
        returned if ``return_power`` is `True`.
    """
    z = tf.convert_to_tensor(z)
    if not z.dtype.is_complex:
        raise ValueError(f"normalize_power expects a complex tensor, got dtype {z.dtype.name}")
    zr, zi = tf.math.real(z), tf.math.imag(z)
    power = tf.reduce_mean(zr * zr + zi * zi, axis=-1, keepdims=True)
    scale = tf.math.rsqrt(power + tf.cast(epsilon, power.dtype))
    z_norm = z * tf.complex(scale, tf.zeros_like(scale))
    if return_power:
        return z_norm, power
    return z_norm
