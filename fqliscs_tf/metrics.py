"""Image quality metrics and distortion losses: PSNR, MS-SSIM, MSE / 1 - MS-SSIM.

Conventions (those of the WITT / SwinJSCC / FQ-LISCS code)
-----------------------------------------------------------
* Images are ``[batch, H, W, C]`` with values in ``[0, max_val]`` (``max_val=1`` by default).
* The reconstruction ``x_hat`` is clipped to ``[0, max_val]`` (always for PSNR; by default,
  ``clip=True``, for MS-SSIM and the losses); the reference ``x`` is used as given.
  Nothing is rounded to integers.
* PSNR is per image on the 0-255 scale, ``10 log10(255^2 / MSE_255)``, capped at
  :data:`PSNR_CAP_DB` (100 dB) for identical images; average the per-image values over a
  test set (Kodak: batch 1, mean of 24 values).
* MS-SSIM follows pytorch_msssim / WITT's ``loss/distortion.py``: Gaussian window
  (sigma 1.5), "valid" filtering, 2x2 average pooling between scales (ceil mode: on an odd
  side the last row/column is pooled on its own), SSIM and contrast-structure averaged over space *and* channels at each
  scale, negative contrast-structure values set to 0 (ReLU) and the per-scale values
  floored at 1e-8 before the fractional powers, so that gradients stay finite.
"""
import numpy as np
import tensorflow as tf

__all__ = [
    "PSNR_CAP_DB",
    "MS_SSIM_WEIGHTS",
    "DISTORTION_METRICS",
    "psnr",
    "ms_ssim_config",
    "ms_ssim",
    "per_image_distortion",
    "distortion_loss",
]

PSNR_CAP_DB = 100.0
"""Upper bound of :func:`psnr` [dB], returned for identical images (MSE 0)."""

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Standard MS-SSIM power factors for 5 scales (Wang, Simoncelli, Bovik 2003)."""

DISTORTION_METRICS = ("MSE", "MS-SSIM")
"""Names accepted by :func:`distortion_loss` and :func:`per_image_distortion` (any case)."""

_K1, _K2 = 0.01, 0.03
_SIGMA = 1.5
_EPS = 1e-8


def _check_pair(x, x_hat):
    """Cast to float32 and check ranks and static shapes."""
    x = tf.convert_to_tensor(x)
    x_hat = tf.convert_to_tensor(x_hat)
    x, x_hat = tf.cast(x, tf.float32), tf.cast(x_hat, tf.float32)
    if x.shape.rank != 4 or x_hat.shape.rank != 4:
        raise ValueError(f"images must be [batch, H, W, C], got shapes {x.shape} and {x_hat.shape}")
    if not x.shape.is_compatible_with(x_hat.shape):
        raise ValueError(f"x and x_hat shapes differ: {x.shape} vs {x_hat.shape}")
    return x, x_hat


def _check_max_val(max_val):
    if not np.isscalar(max_val) or not float(max_val) > 0:
        raise ValueError(f"'max_val' must be a positive number, got {max_val!r}")
    return float(max_val)


def psnr(x, x_hat, max_val=1.0):
    """Per-image PSNR on the 0-255 scale, after clipping ``x_hat`` to ``[0, max_val]``.

    .. math::
        \\mathrm{PSNR} = \\min\\left(10 \\log_{10} \\frac{255^2}{\\mathrm{MSE}_{255}},\\ 100\\right)

    with :math:`\\mathrm{MSE}_{255}` the mean over H, W, C of
    :math:`(255 (x - \\hat x) / \\mathrm{max\\_val})^2`: identical images (MSE 0) give
    :data:`PSNR_CAP_DB` = 100 dB. Differentiable (zero gradient where capped).

    Input
    -----
    x : [batch, H, W, C], `tf.float`
        Reference images in [0, max_val].

    x_hat : [batch, H, W, C], `tf.float`
        Reconstructions (clipped to [0, max_val] here).

    max_val : `float`, (default 1.0)
        Peak value of the input scale (1 for [0, 1] images, 255 for [0, 255]).

    Output
    ------
    psnr : [batch], `tf.float32`
        PSNR per image [dB].
    """
    max_val = _check_max_val(max_val)
    x, x_hat = _check_pair(x, x_hat)
    x_hat = tf.clip_by_value(x_hat, 0.0, max_val)
    scale = 255.0 / max_val
    mse = tf.reduce_mean(tf.square((x - x_hat) * scale), axis=[1, 2, 3])
    value = 10.0 * tf.math.log(255.0 ** 2 / tf.maximum(mse, 1e-30)) / tf.math.log(10.0)
    return tf.minimum(value, PSNR_CAP_DB)


def ms_ssim_config(height, width, filter_size=None, levels=None):
    """Window size and number of scales used by :func:`ms_ssim` for an image size.

    Rule, with ``s = min(height, width)``: the window is 11 if ``s > 80`` else 3; the number of
    scales is the largest ``L <= 5`` with ``s > (window - 1) * 2**(L - 1)`` (the smallest scale
    is then at least as large as the window). This gives the standard 5 scales with an 11x11
    window for ``s >= 161``; 11x11 with 4 scales for 81..160 (the WITT/SwinJSCC setting);
    3x3 with 5 scales for 33..80 and 3x3 with 4 scales for 17..32 (32x32 CIFAR-10, as the
    WITT repository). An explicit ``filter_size`` and/or ``levels`` overrides the rule (the
    other one then follows it) and must satisfy the same inequality.

    Input
    -----
    height, width : `int`
        Image size [pixels].

    filter_size : `None` (default) | odd `int`
    levels : `None` (default) | `int` in 1..5

    Output
    ------
    filter_size, levels : `int`, `int`
    """
    side = min(int(height), int(width))
    if filter_size is not None:
        if isinstance(filter_size, bool) or int(filter_size) != filter_size or filter_size < 1 \
                or filter_size % 2 == 0:
            raise ValueError(f"'filter_size' must be a positive odd integer, got {filter_size!r}")
        filter_size = int(filter_size)
    if levels is not None:
        top = len(MS_SSIM_WEIGHTS)
        if isinstance(levels, bool) or int(levels) != levels or not 1 <= levels <= top:
            raise ValueError(f"'levels' must be an integer in 1..{top}, got {levels!r}")
        levels = int(levels)

    def fits(size, num):
        return side > (size - 1) * 2 ** (num - 1) and side >= size

    if filter_size is None:
        if levels is None:
            filter_size = 11 if side > 80 else 3
        else:
            filter_size = 11 if fits(11, levels) else 3
    if levels is None:
        levels = max((n for n in range(1, len(MS_SSIM_WEIGHTS) + 1) if fits(filter_size, n)),
                     default=0)
    if levels == 0 or not fits(filter_size, levels):
        raise ValueError(f"image of size {height}x{width} is too small for MS-SSIM with a "
                         f"{filter_size}x{filter_size} window and {levels or 1} scale(s): the short "
                         f"side must exceed (filter_size - 1) * 2**(levels - 1)")
    return filter_size, levels


def _gaussian_window(size):
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    window = np.exp(-coords ** 2 / (2.0 * _SIGMA ** 2))
    return window / window.sum()


def _ssim_and_cs(x, y, window, max_val):
    """Mean SSIM and mean contrast-structure over H, W, C: two [batch] tensors."""
    channels = x.shape[-1]
    stacked = tf.concat([x, y, x * x, y * y, x * y], axis=-1)
    size = len(window)
    kernel = tf.constant(window, tf.float32)
    kernel_h = tf.tile(tf.reshape(kernel, [size, 1, 1, 1]), [1, 1, 5 * channels, 1])
    kernel_w = tf.tile(tf.reshape(kernel, [1, size, 1, 1]), [1, 1, 5 * channels, 1])
    blurred = tf.nn.depthwise_conv2d(stacked, kernel_h, [1, 1, 1, 1], "VALID")
    blurred = tf.nn.depthwise_conv2d(blurred, kernel_w, [1, 1, 1, 1], "VALID")
    mu_x, mu_y, e_xx, e_yy, e_xy = tf.split(blurred, 5, axis=-1)
    c1, c2 = (_K1 * max_val) ** 2, (_K2 * max_val) ** 2
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    cs_map = tf.nn.relu((2.0 * cov + c2) / (var_x + var_y + c2))
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    ssim = tf.reduce_mean(luminance * cs_map, axis=[1, 2, 3])
    cs = tf.reduce_mean(cs_map, axis=[1, 2, 3])
    return ssim, cs


def ms_ssim(x, x_hat, max_val=1.0, filter_size=None, levels=None, clip=True):
    """Per-image multi-scale SSIM, differentiable and NaN-free.

    Window size and number of scales follow :func:`ms_ssim_config` (standard 11x11 / 5 scales
    for a short side >= 161 px, 3x3 / 4 scales at 32x32); the standard power factors
    :data:`MS_SSIM_WEIGHTS` are truncated to the number of scales and renormalized to sum 1.
    Note: WITT/SwinJSCC report MS-SSIM with ``levels=4`` at every resolution (Kodak
    included); pass ``levels=4`` to reproduce their numbers.

    .. math::
        \\mathrm{MS\\text{-}SSIM} = \\prod_{j=1}^{L-1} \\max(cs_j, 10^{-8})^{w_j}
            \\cdot \\max(ssim_L, 10^{-8})^{w_L}

    Input
    -----
    x : [batch, H, W, C], `tf.float`
        Reference images in [0, max_val].

    x_hat : [batch, H, W, C], `tf.float`
        Reconstructions.

    max_val : `float`, (default 1.0)
        Dynamic range (sets the SSIM constants C1 = (0.01 max_val)^2, C2 = (0.03 max_val)^2).

    filter_size : `None` (default) | odd `int`
        Gaussian window side (sigma 1.5); `None`: automatic.

    levels : `None` (default) | `int` in 1..5
        Number of scales; `None`: automatic.

    clip : `bool`, (default True)
        Clip ``x_hat`` to [0, max_val] first.

    Output
    ------
    ms_ssim : [batch], `tf.float32`
        In [0, 1]; 1 for identical images.

    H and W must be known statically unless both ``filter_size`` and ``levels`` are given.
    """
    max_val = _check_max_val(max_val)
    x, x_hat = _check_pair(x, x_hat)
    if x.shape[-1] is None:
        raise ValueError(f"the channel dimension must be known, got shape {x.shape}")
    height, width = x.shape[1] or x_hat.shape[1], x.shape[2] or x_hat.shape[2]
    if height is None or width is None:
        if filter_size is None or levels is None:
            raise ValueError("ms_ssim needs a static image size, or both 'filter_size' and "
                             f"'levels'; got shape {x.shape}")
        filter_size, levels = ms_ssim_config(10 ** 6, 10 ** 6, filter_size, levels)
    else:
        filter_size, levels = ms_ssim_config(height, width, filter_size, levels)
    if clip:
        x_hat = tf.clip_by_value(x_hat, 0.0, max_val)
    weights = np.asarray(MS_SSIM_WEIGHTS[:levels], np.float64)
    weights = tf.constant(weights / weights.sum(), tf.float32)
    window = _gaussian_window(filter_size)
    values = []
    for level in range(levels):
        ssim, cs = _ssim_and_cs(x, x_hat, window, max_val)
        if level < levels - 1:
            values.append(cs)
            x = tf.nn.avg_pool2d(x, 2, 2, "SAME")  # SAME: odd sides average their last row alone
            x_hat = tf.nn.avg_pool2d(x_hat, 2, 2, "SAME")
        else:
            values.append(ssim)
    values = tf.maximum(tf.stack(values, axis=0), _EPS)  # [levels, batch]
    return tf.reduce_prod(tf.pow(values, weights[:, None]), axis=0)


def per_image_distortion(x, x_hat, metric="MSE", max_val=1.0, clip=True, filter_size=None,
                         levels=None):
    """Training distortion per image: MSE on the 0-255 scale, or 1 - MS-SSIM.

    Input
    -----
    x : [batch, H, W, C], `tf.float`
        Reference images in [0, max_val].

    x_hat : [batch, H, W, C], `tf.float`
        Reconstructions.

    metric : ``"MSE"`` (default) | ``"MS-SSIM"`` (case-insensitive)
        ``"MSE"``: mean over H, W, C of ``(255 (x - x_hat) / max_val)^2`` (WITT's
        ``torch.mean((X*255 - Y*255)**2)``, per image). ``"MS-SSIM"``: ``1 - ms_ssim(x, x_hat)``.

    max_val : `float`, (default 1.0)
        Peak value of the input scale.

    clip : `bool`, (default True)
        Clip ``x_hat`` to [0, max_val] first, as WITT does (``recon_image.clamp(0., 1.)``);
        pixels outside the range then get no gradient.

    filter_size, levels : `None` (default) | `int`
        MS-SSIM window and scales, see :func:`ms_ssim` (ignored for ``"MSE"``).

    Output
    ------
    distortion : [batch], `tf.float32`
        Average it over the global batch for a loss (e.g. ``tf.nn.compute_average_loss``).
    """
    name = str(metric).upper()
    if name not in DISTORTION_METRICS:
        raise ValueError(f"'metric' must be one of {DISTORTION_METRICS}, got {metric!r}")
    if name == "MS-SSIM":
        return 1.0 - ms_ssim(x, x_hat, max_val=max_val, filter_size=filter_size, levels=levels,
                             clip=clip)
    max_val = _check_max_val(max_val)
    x, x_hat = _check_pair(x, x_hat)
    if clip:
        x_hat = tf.clip_by_value(x_hat, 0.0, max_val)
    return tf.reduce_mean(tf.square((x - x_hat) * (255.0 / max_val)), axis=[1, 2, 3])


def distortion_loss(x, x_hat, metric="MSE", max_val=1.0, clip=True, filter_size=None, levels=None):
    """Batch-mean training distortion: the mean of :func:`per_image_distortion`.

    ``"MSE"`` gives the MSE on the 0-255 scale over all pixels of the batch; ``"MS-SSIM"``
    gives ``1 - mean(ms_ssim)``. Arguments as :func:`per_image_distortion`; an unknown
    ``metric`` raises ``ValueError``.

    Output
    ------
    loss : [], `tf.float32`
    """
    return tf.reduce_mean(per_image_distortion(x, x_hat, metric, max_val=max_val, clip=clip,
                                               filter_size=filter_size, levels=levels))
