"""Image data: file discovery, Pillow decoding, training crops and full-image test sets.

Conventions
-----------
* Pixels leave this module as ``float32`` in ``[0, 1]`` (``uint8`` only from the NumPy
  loaders :func:`load_image` and :func:`cifar10_arrays`). Images are ``[..., H, W, 3]``
  (channels last), RGB.
* Every image goes through :func:`load_image` (Pillow), so training, testing and the NumPy
  API decode a file the same way: grayscale/palette/CMYK are converted to RGB, an alpha
  channel is *composited on white*, 16-bit samples are rescaled to 8 bits.
* Training crops (:func:`train_dataset`) are random ``crop x crop`` windows with random
  horizontal flips, like WITT's ``RandomCrop(256)`` + flip. Images whose short side is
  smaller than ``crop`` are first upscaled (bicubic, aspect ratio kept) so that the short
  side equals ``crop``.
* Test images (:func:`test_dataset`) are served one at a time, batch 1, centre-cropped
  down to a multiple of ``multiple`` (WITT's Kodak convention; 768x512 stays 768x512) or
  reflect-padded up to it.
* Randomness is stateless and keyed on ``seed`` and the element index, so a pipeline is
  reproducible for a fixed seed whatever the parallelism.
* Decoded archives (the CIFAR-10 ``.tar.gz``) go to a cache directory: the ``cache_dir``
  argument, else ``$FQLISCS_CACHE``, else ``~/.cache/fqliscs_tf``; never into the repository.
"""
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

__all__ = [
    "IMAGE_EXTENSIONS",
    "list_images",
    "load_image",
    "verify_images",
    "train_dataset",
    "fit_to_multiple",
    "crop_to_size",
    "centre_crops",
    "test_dataset",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
"""File suffixes (compared case-insensitively) treated as images."""

_FITS = ("crop", "pad")


# --------------------------------------------------------------------------- files and decoding
def list_images(folder):
    """All image files under ``folder``, searched recursively, sorted by path.

    Input
    -----
    folder : `str` | `os.PathLike`
        Directory to search. Files with a suffix in :data:`IMAGE_EXTENSIONS`
        (any letter case) are returned; hidden files (``.name``) are skipped.

    Output
    ------
    files : `list` of `str`
        Paths, sorted.

    Raises ``FileNotFoundError`` when ``folder`` does not exist, ``NotADirectoryError`` when it
    is a file and ``ValueError`` when it holds no image.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"image folder {str(root)!r} is not a directory")
    files = sorted(str(p) for p in root.rglob("*")
                   if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
                   and p.is_file())
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found under "
                         f"{str(root)!r}")
    return files


def _resolve_files(folder_or_files):
    """A folder, a single image file or an iterable of files -> list of path strings."""
    if isinstance(folder_or_files, (str, os.PathLike)):
        path = Path(folder_or_files)
        if path.is_file():
            return [str(path)]
        return list_images(path)
    files = [str(f) for f in folder_or_files]
    if not files:
        raise ValueError("the list of image files is empty")
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise FileNotFoundError(f"image file {missing[0]!r} does not exist "
                                f"({len(missing)} missing in all)")
    return files


def _to_uint8(array, bits):
    """Rescale integer samples with ``bits`` significant bits to uint8 (rounding)."""
    scale = 255.0 / (2 ** bits - 1)
    return np.clip(np.rint(array.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def _pil_to_rgb(img):
    """Pillow image of any common mode -> uint8 [H, W, 3] (alpha composited on white)."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            peak = float(np.nanmax(arr)) if arr.size else 0.0
            arr = np.nan_to_num(arr) * (255.0 if peak <= 1.0 else 1.0)
            gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        elif mode == "I" and arr.size and int(arr.max()) <= 255:
            gray = np.clip(arr, 0, 255).astype(np.uint8)  # 8-bit data stored as int32
        else:
            gray = _to_uint8(np.clip(arr, 0, 65535), 16)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_image(path):
    """Decode one image file to RGB ``uint8`` with Pillow.

    Grayscale (``L``, ``1``), palette (``P``), CMYK, YCbCr and similar modes are converted
    to RGB. Images with an alpha channel (``RGBA``, ``LA``, palette with transparency) are
    *composited on a white background* (a fully transparent pixel becomes white, an opaque
    one keeps its colour). 16-bit samples (``I;16*``, ``I``) are rescaled by 255/65535 with
    rounding (an ``I`` image whose values are all <= 255 is taken as 8-bit); Pillow itself
    reduces 16-bit RGB PNGs to 8 bits. EXIF orientation is not applied (as torchvision's
    loader). The first frame of a multi-frame file is used.

    Input
    -----
    path : `str` | `os.PathLike`
        Image file.

    Output
    ------
    image : [H, W, 3], `np.uint8`
        RGB pixels.

    Raises ``FileNotFoundError`` when the file does not exist and ``ValueError`` naming the
    file when it is not a decodable image (corrupt, truncated or another kind of file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file {path!r} does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            return _pil_to_rgb(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot decode image file {path!r}: {err}") from err


def verify_images(files, decode=False):
    """Check image files before a long run; raise ``ValueError`` naming the first bad one.

    Input
    -----
    files : `list` of `str`
        Image paths.

    decode : `bool`, (default False)
        `False`: a cheap check (Pillow ``open`` + ``verify``: header, PNG checksums); it
        rejects non-images and most corrupt files but not every truncated JPEG, which then
        fails when decoded, again with its name. `True`: decode every file fully.
    """
    for path in files:
        if decode:
            load_image(path)
            continue
        try:
            with Image.open(path) as img:
                img.verify()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise ValueError(f"cannot decode image file {path!r}: {err}") from err


# --------------------------------------------------------------------------- training crops
def _upscale_to(image, min_side):
    """Bicubic upscaling (Pillow, aspect ratio kept) so that the short side is >= min_side."""
    height, width = image.shape[:2]
    short = min(height, width)
    if short >= min_side:
        return image
    scale = min_side / short
    size = (max(min_side, int(round(width * scale))), max(min_side, int(round(height * scale))))
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC), dtype=np.uint8)


def _element_seed(seed, index):
    """Stateless seed [2] int64 from the global seed and an element index."""
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)])


def train_dataset(folder_or_files, crop=256, batch_size=16, seed=0, shuffle_buffer=None,
                  repeat=True, validate=True, num_parallel_calls=tf.data.AUTOTUNE):
    """Random training crops of natural images.

    Files are shuffled (``seed``; reshuffled every epoch), decoded in parallel with
    :func:`load_image`, upscaled (bicubic, aspect kept) when the short side is below ``crop``,
    cut to a random ``crop x crop`` window, flipped left-right with probability 1/2, scaled
    to [0, 1] and batched (``drop_remainder=True``). One crop per file per epoch.
    Crop positions and flips use stateless random ops keyed on ``(seed, element index)``,
    so the stream is identical for a fixed seed.

    Input
    -----
    folder_or_files : `str` | `os.PathLike` | `list` of `str`
        A folder (searched recursively with :func:`list_images`), one file or a list of files.

    crop : `int`, (default 256)
        Crop side [pixels].

    batch_size : `int`, (default 16)
        Images per batch. Must not exceed the number of files unless ``repeat``.

    seed : `int`, (default 0)
        Seed of the shuffle, crops and flips.

    shuffle_buffer : `None` (default) | `int`
        Shuffle buffer, in files. `None`: the number of files (a full shuffle).

    repeat : `bool`, (default True)
        Repeat forever (reshuffling each epoch); `False`: one epoch.

    validate : `bool` | ``"decode"``, (default True)
        Check the files up front (:func:`verify_images`); ``"decode"`` decodes each file.

    num_parallel_calls : `int`, (default ``tf.data.AUTOTUNE``)
        Parallel decoders.

    Output
    ------
    dataset : `tf.data.Dataset` of [batch_size, crop, crop, 3], `tf.float32`
        Pixels in [0, 1].
    """
    crop, seed = _positive_int(crop, "crop"), int(seed)
    batch_size = _positive_int(batch_size, "batch_size")
    files = _resolve_files(folder_or_files)
    if not repeat and batch_size > len(files):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(files)} files and "
                         "repeat=False with drop_remainder would give no batch")
    if shuffle_buffer is None:
        shuffle_buffer = len(files)
    shuffle_buffer = _positive_int(shuffle_buffer, "shuffle_buffer")
    if validate not in (True, False, "decode"):
        raise ValueError(f"'validate' must be True, False or 'decode', got {validate!r}")
    if validate:
        verify_images(files, decode=(validate == "decode"))

    def _load(path):
        return _upscale_to(load_image(os.fsdecode(path)), crop)

    def _crop(index, path):
        image = tf.numpy_function(_load, [path], tf.uint8, stateful=False)
        image.set_shape([None, None, 3])
        elem_seed = _element_seed(seed, index)
        seeds = tf.random.experimental.stateless_split(elem_seed, num=2)
        image = tf.image.stateless_random_crop(image, [crop, crop, 3], seed=seeds[0])
        image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
        return tf.cast(image, tf.float32) / 255.0

    dataset = tf.data.Dataset.from_tensor_slices([os.fsencode(f) for f in files])
    dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.enumerate()
    dataset = dataset.map(_crop, num_parallel_calls=num_parallel_calls, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _positive_int(value, name):
    try:
        ok = not isinstance(value, bool) and int(value) == value and int(value) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"'{name}' must be a positive integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- full test images
def _fitted_side(side, multiple, fit):
    if fit == "crop":
        return (side // multiple) * multiple
    return -(-side // multiple) * multiple


def fit_to_multiple(image, multiple=128, fit="crop"):
    """Make height and width multiples of ``multiple``, centred.

    ``fit="crop"`` cuts each side down to the largest multiple (centre crop, WITT's Kodak
    convention); ``fit="pad"`` reflect-pads each side up to the next multiple, splitting the
    padding as ``before = total // 2``, ``after = total - before``. The padded reconstruction is
    brought back with ``crop_to_size(x_hat, original_size)``, a centre crop that inverts the
    padding exactly.

    Input
    -----
    image : [H, W, C] | [batch, H, W, C], `np.ndarray` or `tf.Tensor`
        H and W must be known (static) for a tensor.

    multiple : `int`, (default 128)
        Target divisor [pixels].

    fit : ``"crop"`` (default) | ``"pad"``

    Output
    ------
    image : [H', W', C] | [batch, H', W', C], same type and dtype as the input
        H' and W' multiples of ``multiple``.

    Raises ``ValueError`` for an unknown ``fit``, a side smaller than ``multiple`` with
    ``fit="crop"``, or a side too small for reflect padding (padding >= side).
    """
    multiple = _positive_int(multiple, "multiple")
    if fit not in _FITS:
        raise ValueError(f"'fit' must be one of {_FITS}, got {fit!r}")
    height, width = _spatial_size(image)
    new_h, new_w = _fitted_side(height, multiple, fit), _fitted_side(width, multiple, fit)
    if fit == "crop":
        if new_h == 0 or new_w == 0:
            raise ValueError(f"image of size {height}x{width} is smaller than multiple={multiple}; "
                             "it cannot be centre-cropped (use fit='pad')")
        return crop_to_size(image, (new_h, new_w))
    pads = [((n - s) // 2, (n - s) - (n - s) // 2) for s, n in ((height, new_h), (width, new_w))]
    for (before, after), side in zip(pads, (height, width)):
        if max(before, after) >= side:
            raise ValueError(f"image of size {height}x{width} is too small to be reflect-padded "
                             f"to {new_h}x{new_w}")
    lead = [(0, 0)] * (len(image.shape) - 3)
    paddings = lead + pads + [(0, 0)]
    if isinstance(image, np.ndarray):
        return np.pad(image, paddings, mode="reflect")
    return tf.pad(image, paddings, mode="REFLECT")


def crop_to_size(image, size):
    """Centre-crop ``image`` to ``size = (height, width)``.

    Undoes ``fit_to_multiple(..., fit="pad")`` when ``size`` is the original size.

    Input
    -----
    image : [H, W, C] | [batch, H, W, C], `np.ndarray` or `tf.Tensor`
    size : (`int`, `int`) | [2] tensor
        Target (height, width), each <= the image's.

    Output
    ------
    image : [height, width, C] | [batch, height, width, C], same type and dtype
    """
    height, width = _spatial_size(image)
    new_h, new_w = (int(s) for s in np.asarray(size).reshape(-1)[:2])
    if not (0 < new_h <= height and 0 < new_w <= width):
        raise ValueError(f"cannot centre-crop an image of size {height}x{width} to "
                         f"{new_h}x{new_w}")
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return image[..., top:top + new_h, left:left + new_w, :]


def centre_crops(files, height, width):
    """Centre crops ``height x width`` of image files, turned upright first when the request
    is portrait and the image landscape (or the other way round).

    Output
    ------
    list of float32 `np.ndarray` ``[height, width, 3]`` in [0, 1]

    Raises ValueError naming the file that is smaller than the crop either way.
    """
    crops = []
    for path in files:
        img = load_image(path)
        fits = img.shape[0] >= height and img.shape[1] >= width
        if not fits and img.shape[1] >= height and img.shape[0] >= width:
            img = np.transpose(img, (1, 0, 2))
        if img.shape[0] < height or img.shape[1] < width:
            raise ValueError(f"image {path} ({img.shape[1]}x{img.shape[0]}) is smaller than "
                             f"the {width}x{height} crop")
        crops.append(crop_to_size(img, (height, width)).astype(np.float32) / 255.0)
    return crops


def _spatial_size(image):
    shape = image.shape
    if len(shape) not in (3, 4):
        raise ValueError("expected an image [H, W, C] or [batch, H, W, C], "
                         f"got shape {tuple(shape)}")
    height, width = shape[-3], shape[-2]
    if height is None or width is None:
        raise ValueError(f"height and width must be known, got shape {tuple(shape)}")
    return int(height), int(width)


def test_dataset(folder_or_files, multiple=128, fit="crop", return_size=False, validate=True):
    """Full images, one at a time (batch 1), fitted to a multiple of ``multiple``.

    Input
    -----
    folder_or_files : `str` | `os.PathLike` | `list` of `str`
        A folder (recursive), one file or a list of files; served in sorted/given order.

    multiple : `int`, (default 128)
        Each side is made a multiple of this [pixels] (128 for the 16x-downsampling codecs).

    fit : ``"crop"`` (default) | ``"pad"``
        Centre crop down (WITT) or reflect pad up; see :func:`fit_to_multiple`.

    return_size : `bool`, (default False)
        Also yield the original size, to crop a reconstruction back with :func:`crop_to_size`.

    validate : `bool`, (default True)
        Check all files (and that they are large enough for ``fit="crop"``) up front.

    Output
    ------
    dataset : `tf.data.Dataset` of (image, name) or (image, name, size)
        image : [1, H', W', 3], `tf.float32` in [0, 1];
        name : [], `tf.string`, the file name (``"kodim01.png"``);
        size : [2], `tf.int32`, (H, W) before fitting.

    Raises ``ValueError`` naming the file when an image is smaller than ``multiple`` with
    ``fit="crop"`` (or too small to pad).
    """
    multiple = _positive_int(multiple, "multiple")
    if fit not in _FITS:
        raise ValueError(f"'fit' must be one of {_FITS}, got {fit!r}")
    files = _resolve_files(folder_or_files)
    if validate:
        verify_images(files)
        for path in files:
            with Image.open(path) as img:
                width, height = img.size
            _check_fit(path, height, width, multiple, fit)

    def _generate():
        for path in files:
            image = load_image(path)
            height, width = image.shape[:2]
            _check_fit(path, height, width, multiple, fit)
            fitted = fit_to_multiple(image, multiple, fit).astype(np.float32) / 255.0
            item = (fitted[None], os.path.basename(path))
            yield item + (np.array([height, width], np.int32),) if return_size else item

    signature = (tf.TensorSpec([1, None, None, 3], tf.float32), tf.TensorSpec([], tf.string))
    if return_size:
        signature += (tf.TensorSpec([2], tf.int32),)
    return tf.data.Dataset.from_generator(_generate, output_signature=signature)


def _check_fit(path, height, width, multiple, fit):
    try:
        fit_to_multiple(np.zeros((height, width, 1), np.uint8), multiple, fit)
    except ValueError as err:
        raise ValueError(f"image file {os.fspath(path)!r}: {err}") from err
