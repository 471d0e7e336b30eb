# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Classical image codecs for the separation baselines, with rate control.

Every codec has the same contract::

    data = codec.encode(image, quality)    # image: uint8 [H, W, 3] -> bytes
    image_hat = codec.decode(data)         # bytes -> uint8 [H, W, 3]

and its own quality scale, listed in ``codec.qualities`` from the worst
(smallest file) to the best (largest file). ``codec.higher_is_better`` gives
the direction of the native scale.

Registered codecs (quality scale from worst to best; fixed encoder settings):

* ``"jpeg"``: libjpeg-turbo via imagecodecs ``jpeg8``; ``level`` 1 ... 100;
  ``optimize=True`` (optimized Huffman tables), libjpeg default 4:2:0 chroma.
* ``"jpeg2000"``: OpenJPEG via imagecodecs ``jpeg2k``; target PSNR [dB]
  15.0 ... 60.0 in 0.25 dB steps (OpenJPEG fixed-quality mode); raw J2K
  codestream (no JP2 boxes), one quality layer.
* ``"webp"``: libwebp via imagecodecs; ``level`` 0 ... 100; lossy, ``method=4``.
* ``"avif"``: libavif + libaom via imagecodecs; ``level`` 0 ... 100;
  ``speed=6`` (0 slowest ... 10 fastest), YUV 4:4:4.
* ``"jpegxl"``: libjxl via imagecodecs; butteraugli ``distance`` 25 ... 0.05
  (121 log-spaced values, **lower is better**); ``effort=5`` (1 ... 9).
* ``"heif"``: HEVC intra via pillow-heif (libheif + x265, decoded with
  libde265); ``quality`` 0 ... 100; chroma 4:4:4, x265 ``preset="fast"``,
  ``tune="psnr"``, no nclx colour-profile box.

``"heif"`` is HEVC intra coding, the codec inside BPG. Its bitstream is a
whole HEIF file: the ``ftyp`` + ``meta`` boxes (including the HEVC parameter
sets) take about 360 bytes, much more than a BPG header (about 0.007 bpp on a
768x512 Kodak image; it dominates on tiny images, e.g. 64x64). AVIF files
likewise carry about 275 bytes outside the coded data. JPEG XL cannot go
below distance 25: on hard images at low rates (e.g. kodim05 at 0.22 bpp) its
smallest file does not fit and rate control raises.

Rate control (:func:`rate_control`) bisects over ``codec.qualities``
assuming the file size grows with quality; it verifies the size of what it
returns. If even the worst quality does not fit, it raises
:class:`BudgetTooSmallError` (a `ValueError`).
"""
import collections
import functools
import io

import numpy as np

__all__ = [
    "BudgetTooSmallError",
    "CODEC_NAMES",
    "ImageCodec",
    "RateControlResult",
    "available_codecs",
    "best_fit",
    "get_codec",
    "rate_control",
]


class BudgetTooSmallError(ValueError):
    """Raised when even the lowest quality of a codec exceeds the byte budget."""


def _check_image(image):
    """Returns a C-contiguous uint8 [H, W, 3] array or raises ValueError."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"image must be a uint8 array [H, W, 3], got dtype {image.dtype} "
            f"and shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be non-empty, got shape {image.shape}")
    return np.ascontiguousarray(image)


def _check_decoded(image):
    """Checks a decoder output (uint8 [H, W, 3])."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"decoder returned dtype {image.dtype}, shape {image.shape}; expected uint8 [H, W, 3]")
    return image


class ImageCodec:
    r"""A classical image codec with a discrete quality scale.

    Parameters
    ----------
    name : `str`
        Registry name

    encode_fn : callable ``(image uint8 [H, W, 3], quality) -> bytes``
        Encoder

    decode_fn : callable ``(bytes) -> uint8 [H, W, 3]``
        Decoder

    qualities : sequence of numbers
        Valid quality values ordered from the worst (smallest file) to the
        best (largest file)

    higher_is_better : `bool`
        Direction of the native scale (`False` e.g. for the JPEG XL distance)

    description : `str`
        Library and fixed encoder settings
    """

    def __init__(self, name, encode_fn, decode_fn, qualities, higher_is_better, description):
        self._name = name
        self._encode_fn = encode_fn
        self._decode_fn = decode_fn
        self._qualities = tuple(qualities)
        self._higher_is_better = bool(higher_is_better)
        self._description = description

    def __repr__(self):
        return f"ImageCodec({self._name!r}: {self._description})"

    @property
    def name(self):
        """`str` : Registry name"""
        return self._name

    @property
    def qualities(self):
        """`tuple` : Valid quality values, from the worst (smallest file) to the best"""
        return self._qualities

    @property
    def higher_is_better(self):
        """`bool` : `True` if a larger quality value means a better image"""
        return self._higher_is_better

    @property
    def description(self):
        """`str` : Library and fixed encoder settings"""
        return self._description

    def encode(self, image, quality):
        """Encodes an image.

        Input
        -----
        image : [H, W, 3], `np.uint8`
            RGB image

        quality : number
            Quality on the codec's own scale (see :attr:`qualities`)

        Output
        ------
        data : `bytes`
            The complete bitstream (file) the receiver needs
        """
        image = _check_image(image)
        lo, hi = min(self._qualities), max(self._qualities)
        if not lo <= quality <= hi:
            raise ValueError(
                f"quality {quality!r} is outside the {self._name!r} scale [{lo}, {hi}]")
        return bytes(self._encode_fn(image, quality))

    def decode(self, data):
        """Decodes a bitstream.

        Input
        -----
        data : `bytes`
            Bitstream produced by :meth:`encode`

        Output
        ------
        image : [H, W, 3], `np.uint8`
            Reconstructed RGB image
        """
        return _check_decoded(self._decode_fn(bytes(data)))


# ---------------------------------------------------------------------------
# Codec implementations
# ---------------------------------------------------------------------------

def _jpeg():
    import imagecodecs
    return ImageCodec(
        "jpeg",
        lambda img, q: imagecodecs.jpeg8_encode(img, level=int(q), optimize=True),
        imagecodecs.jpeg8_decode,
        range(1, 101), True,
        f"libjpeg-turbo via imagecodecs {imagecodecs.__version__}, level 1..100, optimize=True")


def _jpeg2000():
    import imagecodecs
    qualities = tuple(float(q) for q in np.round(np.arange(15.0, 60.0 + 1e-9, 0.25), 2))
    return ImageCodec(
        "jpeg2000",
        lambda img, q: imagecodecs.jpeg2k_encode(
            img, level=float(q), codecformat=imagecodecs.JPEG2K.CODEC.J2K),
        imagecodecs.jpeg2k_decode,
        qualities, True,
        f"{imagecodecs.jpeg2k_version()} via imagecodecs, target PSNR 15..60 dB, J2K codestream")


def _webp():
    import imagecodecs
    return ImageCodec(
        "webp",
        lambda img, q: imagecodecs.webp_encode(img, level=int(q), lossless=False, method=4),
        imagecodecs.webp_decode,
        range(0, 101), True,
        f"{imagecodecs.webp_version()} via imagecodecs, level 0..100, lossy, method=4")


_AVIF_SPEED = 6


def _avif():
    import imagecodecs
    pixelformat = imagecodecs.AVIF.PIXEL_FORMAT.YUV444
    return ImageCodec(
        "avif",
        lambda img, q: imagecodecs.avif_encode(img, level=int(q), speed=_AVIF_SPEED,
                                               pixelformat=pixelformat),
        imagecodecs.avif_decode,
        range(0, 101), True,
        f"{imagecodecs.avif_version()} (aom) via imagecodecs, level 0..100, "
        f"speed={_AVIF_SPEED}, YUV444")


_JPEGXL_EFFORT = 5


def _jpegxl():
    import imagecodecs
    qualities = tuple(float(d) for d in np.round(np.geomspace(25.0, 0.05, 121), 4))
    return ImageCodec(
        "jpegxl",
        lambda img, d: imagecodecs.jpegxl_encode(img, distance=float(d), effort=_JPEGXL_EFFORT),
        imagecodecs.jpegxl_decode,
        qualities, False,
        f"{imagecodecs.jpegxl_version()} via imagecodecs, distance 25..0.05 (lower is better), "
        f"effort={_JPEGXL_EFFORT}")


_HEIF_PRESET = "fast"


def _heif():
    import pillow_heif

    def encode(img, q):
        buf = io.BytesIO()
        pillow_heif.encode("RGB", (img.shape[1], img.shape[0]), img.tobytes(), buf,
                           quality=int(q), chroma=444,
                           enc_params={"preset": _HEIF_PRESET, "tune": "psnr"},
                           save_nclx_profile=False)
        return buf.getvalue()

    def decode(data):
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
        image = np.asarray(heif[0])
        if image.ndim == 3 and image.shape[-1] == 4:  # drop an alpha plane if present
            image = image[..., :3]
        return np.ascontiguousarray(image)

    info = pillow_heif.libheif_info()
    return ImageCodec(
        "heif", encode, decode, range(0, 101), True,
        f"HEVC intra: pillow-heif {pillow_heif.__version__}, libheif {info.get('libheif')}, "
        f"{info.get('HEIF')}, quality 0..100, chroma 444, preset={_HEIF_PRESET}, tune=psnr")


_FACTORIES = collections.OrderedDict([
    ("jpeg", _jpeg),
    ("jpeg2000", _jpeg2000),
    ("webp", _webp),
    ("avif", _avif),
    ("jpegxl", _jpegxl),
    ("heif", _heif),
])

#: Names of all codecs known to the registry (see :func:`available_codecs`
#: for the ones that work in this installation).
CODEC_NAMES = tuple(_FACTORIES)


@functools.lru_cache(maxsize=None)
def _build(name):
    """Builds a codec and checks it round-trips a small image; None if unavailable."""
    try:
        codec = _FACTORIES[name]()
        probe = np.zeros((16, 16, 3), np.uint8)
        probe[..., 0] = np.arange(16, dtype=np.uint8)[:, None] * 16
        data = codec.encode(probe, codec.qualities[len(codec.qualities) // 2])
        if codec.decode(data).shape != probe.shape:
            return None
    except Exception:  # pylint: disable=broad-except  # missing library / encoder
        return None
    return codec


def available_codecs():
    """Names of the codecs whose encoder and decoder work in this installation.

    Output
    ------
    names : `tuple` of `str`
        Subset of :data:`CODEC_NAMES`, in registry order
    """
    return tuple(name for name in CODEC_NAMES if _build(name) is not None)


def get_codec(name):
    """Returns a codec by name.

    Input
    -----
    name : `str` | :class:`ImageCodec`
        One of :func:`available_codecs` (case-insensitive); an
        :class:`ImageCodec` is returned unchanged.

    Output
    ------
    codec : :class:`ImageCodec`

    Raises
    ------
    ValueError
        If the name is unknown or the codec does not work in this
        installation; the message lists the available codecs.
    """
    if isinstance(name, ImageCodec):
        return name
    key = name.lower() if isinstance(name, str) else name
    if key not in _FACTORIES:
        raise ValueError(
            f"Unknown image codec {name!r}; available codecs: {', '.join(available_codecs())}")
    codec = _build(key)
    if codec is None:
        raise ValueError(
            f"Image codec {name!r} is not available in this installation; "
            f"available codecs: {', '.join(available_codecs())}")
    return codec


#: Result of :func:`rate_control`.
RateControlResult = collections.namedtuple("RateControlResult", ["data", "quality", "image"])
RateControlResult.__doc__ = """Result of :func:`rate_control`: ``(data, quality, image)``.

data : `bytes`
    Bitstream, ``len(data) <= max_bytes``
quality : number
    Quality setting used (codec's own scale)
image : [H, W, 3], `np.uint8`
    Decoded reconstruction of ``data``
"""


def rate_control(image, codec, max_bytes):
    """Best-quality encoding of ``image`` whose bitstream fits ``max_bytes``.

    Bisection over the codec's quality scale (``codec.qualities``, worst to
    best), assuming the file size increases with quality: about
    ``log2(len(qualities)) + 2`` encodes (9-10 for most codecs). The
    returned bitstream is always one whose size was measured to be
    ``<= max_bytes``; if the size is not monotone in quality, a better
    setting that also fits may be missed.

    Input
    -----
    image : [H, W, 3], `np.uint8`
        RGB image

    codec : `str` | :class:`ImageCodec`
        Codec name (see :func:`available_codecs`) or codec

    max_bytes : `int`
        Byte budget

    Output
    ------
    : :class:`RateControlResult`
        ``(data, quality, image)``

    Raises
    ------
    BudgetTooSmallError
        (a `ValueError`) If even the worst quality produces more than
        ``max_bytes`` bytes; the message gives the minimum size.
    ValueError
        For an unknown codec, a malformed image or a negative budget.
    """
    codec = get_codec(codec)
    image = _check_image(image)
    if isinstance(max_bytes, bool) or not float(max_bytes).is_integer() or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative integer, got {max_bytes!r}")
    max_bytes = int(max_bytes)
    qualities = codec.qualities
    cache = {}

    def size(i):
        if i not in cache:
            cache[i] = codec.encode(image, qualities[i])
        return len(cache[i])

    if size(0) > max_bytes:
        raise BudgetTooSmallError(
            f"{codec.name!r} needs at least {size(0)} bytes for this {image.shape[1]}x"
            f"{image.shape[0]} image (quality {qualities[0]}), budget is {max_bytes} bytes")
    lo, hi = 0, len(qualities) - 1  # invariant: lo fits
    if size(hi) <= max_bytes:
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if size(mid) <= max_bytes:
            lo = mid
        else:
            hi = mid
    data = cache[lo]
    if len(data) > max_bytes:  # cannot happen by construction; keep the guarantee explicit
        raise RuntimeError(f"rate control returned {len(data)} > {max_bytes} bytes")
    return RateControlResult(data, qualities[lo], codec.decode(data))


def best_fit(image, codecs, encode):
    """The codec whose ``encode(codec)`` result has the highest PSNR against ``image``.

    ``encode(codec)`` returns an object with an ``image`` field (uint8, the decoded
    picture) or raises :class:`BudgetTooSmallError`; e.g.
    ``lambda c: rate_control(image, c, max_bytes)``. Returns ``(codec, result)``, or
    ``(None, None)`` when no codec fits.
    """
    best, best_psnr = (None, None), -np.inf
    for codec in codecs:
        try:
            result = encode(codec)
        except BudgetTooSmallError:
            continue
        mse = np.mean((image.astype(np.float64) - result.image.astype(np.float64)) ** 2)
        p = np.inf if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)
        if p > best_psnr:
            best, best_psnr = (codec, result), p
    return best
