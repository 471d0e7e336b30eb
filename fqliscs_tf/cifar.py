"""CIFAR-10: the standard pickles, class folders, or the .tar.gz archive (extracted to a cache).

Decoded archives go to a cache directory: the ``cache_dir`` argument, else
``$FQLISCS_CACHE``, else ``~/.cache/fqliscs_tf``; never into the repository.
"""
import os
import pickle
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from .data import IMAGE_EXTENSIONS, _element_seed, _positive_int, load_image

__all__ = ["CIFAR10_CLASSES", "resolve_cache_dir", "cifar10_arrays", "cifar10_dataset"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
"""CIFAR-10 class names in label order 0..9 (the order of ``batches.meta``)."""

def resolve_cache_dir(cache_dir=None):
    """The cache directory: ``cache_dir``, else ``$FQLISCS_CACHE``, else ``~/.cache/fqliscs_tf``.

    Output
    ------
    folder : `pathlib.Path`
        Not created here; created when something is cached.
    """
    chosen = cache_dir or os.environ.get("FQLISCS_CACHE") or Path.home() / ".cache" / "fqliscs_tf"
    return Path(chosen).expanduser()


def _extract_archive(archive, cache):
    """Extract a tar archive once into ``cache/<archive name>``; return that folder."""
    archive = Path(archive)
    name = re.sub(r"(\.tar\.gz|\.tgz|\.tar)$", "", archive.name)
    stat = archive.stat()
    target = cache / f"{name}-{stat.st_size}"
    marker = target / ".extracted"
    if marker.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tar.extractall(staging)
        (staging / ".extracted").write_text(str(archive.resolve()) + "\n")
        try:
            os.rename(staging, target)
        except OSError:
            if not marker.exists():  # not a concurrent extraction that won the race
                shutil.rmtree(target, ignore_errors=True)
                os.rename(staging, target)
    except (tarfile.TarError, OSError) as err:
        raise ValueError(f"cannot extract archive {str(archive)!r} into {str(cache)!r}: "
                         f"{err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _read_pickle_batches(folder, split):
    folder = Path(folder)
    if split == "train":
        files = sorted(folder.glob("data_batch_*"),
                       key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    else:
        files = [folder / "test_batch"] if (folder / "test_batch").is_file() else []
    if not files:
        raise ValueError(f"no {split!r} batches (data_batch_* / test_batch) in {str(folder)!r}")
    images, labels = [], []
    for path in files:
        try:
            with open(path, "rb") as handle:
                entry = pickle.load(handle, encoding="bytes")  # the CIFAR format is a pickle
            data = entry.get(b"data", entry.get("data"))
            batch_labels = entry.get(b"labels", entry.get("labels"))
            data = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError,
                ValueError) as err:
            raise ValueError(f"cannot read CIFAR-10 batch file {str(path)!r}: {err}") from err
        if batch_labels is None or len(batch_labels) != len(data):
            raise ValueError(f"CIFAR-10 batch file {str(path)!r} has no labels matching its data")
        images.append(data.transpose(0, 2, 3, 1))  # CHW (planar R, G, B) -> HWC
        labels.append(np.asarray(batch_labels, dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _class_dirs(folder):
    """Sub-folders of ``folder`` that directly contain image files."""
    dirs = []
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        if any(f.suffix.lower() in IMAGE_EXTENSIONS for f in sub.iterdir()):
            dirs.append(sub)
    return dirs


def _read_class_folders(folder):
    dirs = _class_dirs(folder)
    names = [d.name for d in dirs]
    if all(n in CIFAR10_CLASSES for n in names):
        index = {n: CIFAR10_CLASSES.index(n) for n in names}
    else:
        index = {n: i for i, n in enumerate(names)}
    images, labels = [], []
    for sub in dirs:
        for path in sorted(f for f in sub.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS):
            image = load_image(path)
            if image.shape != (32, 32, 3):
                raise ValueError(f"CIFAR-10 image {str(path)!r} is {image.shape[1]}x{image.shape[0]},"
                                 " expected 32x32")
            images.append(image)
            labels.append(index[sub.name])
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _find_cifar(folder, split, depth=0):
    """('pickle' | 'folders', path) for the first recognised layout under ``folder``."""
    folder = Path(folder)
    if (folder / "data_batch_1").is_file() or (folder / "test_batch").is_file():
        return "pickle", folder
    if (folder / "cifar-10-batches-py").is_dir():
        return "pickle", folder / "cifar-10-batches-py"
    if (folder / split).is_dir() and _class_dirs(folder / split):
        return "folders", folder / split
    if (folder / "train").is_dir() or (folder / "test").is_dir():
        return None, folder  # split folders exist, but not the one asked for
    if _class_dirs(folder):
        return "folders", folder
    if depth < 2:
        subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if len(subs) == 1:
            return _find_cifar(subs[0], split, depth + 1)
    return None, folder


def cifar10_arrays(path, split="train", cache_dir=None):
    """Load CIFAR-10 as arrays, from any of the usual layouts (auto-detected).

    Layouts: the standard ``cifar-10-batches-py`` pickle folder (``data_batch_1..5``,
    ``test_batch``; ``b"data"`` rows of 3072 = R, G, B planes of 32x32, ``b"labels"``) or
    a folder containing it; a folder with ``<split>/<class>/*.jpg`` (or the class folders
    directly, which then *are* the split); a ``.tar.gz``/``.tgz``/``.tar`` archive of any of
    these, extracted once into :func:`resolve_cache_dir` (the folder name carries the archive size).
    Class folders named after CIFAR-10 classes get the standard labels
    (:data:`CIFAR10_CLASSES`); other names are numbered in sorted order.
    Pickles execute code when loaded: read only trusted files.

    Input
    -----
    path : `str` | `os.PathLike`
        Folder or archive.

    split : ``"train"`` (default) | ``"test"``

    cache_dir : `None` (default) | `str`
        Where to extract archives; default ``$FQLISCS_CACHE`` or ``~/.cache/fqliscs_tf``.

    Output
    ------
    images : [N, 32, 32, 3], `np.uint8`
        RGB, channels last.

    labels : [N], `np.int64`
        Class indices 0..9.
    """
    if split not in ("train", "test"):
        raise ValueError(f"'split' must be 'train' or 'test', got {split!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"CIFAR-10 path {str(path)!r} does not exist")
    root = path
    if path.is_file():
        if not re.search(r"\.(tar\.gz|tgz|tar)$", path.name):
            raise ValueError(f"CIFAR-10 path {str(path)!r} is a file but not a "
                             ".tar.gz/.tgz/.tar archive")
        root = _extract_archive(path, resolve_cache_dir(cache_dir))
    kind, found = _find_cifar(root, split)
    if kind == "pickle":
        return _read_pickle_batches(found, split)
    if kind == "folders":
        return _cached_class_folders(found, root if path.is_file() else None)
    raise ValueError(f"no CIFAR-10 data found in {str(path)!r}: expected a 'cifar-10-batches-py' "
                     f"pickle folder, '{split}/<class>/*.jpg' class folders, or a .tar.gz of either")


def _cached_class_folders(folder, extracted_root):
    """Class folders -> arrays; inside an extracted archive the arrays are cached as .npz."""
    if extracted_root is None:
        return _read_class_folders(folder)
    parts = Path(folder).relative_to(extracted_root).parts
    npz = Path(extracted_root) / (".arrays-" + "-".join(parts) + ".npz")
    if npz.is_file():
        with np.load(npz) as cached:
            return cached["images"], cached["labels"]
    images, labels = _read_class_folders(folder)
    tmp = npz.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, images=images, labels=labels)
    os.replace(tmp, npz)
    return images, labels


def cifar10_dataset(path, split="train", batch_size=128, seed=0, training=None, repeat=False,
                    with_labels=False, cache_dir=None):
    """CIFAR-10 batches for training or evaluation.

    Input
    -----
    path : `str` | `os.PathLike`
        Any layout accepted by :func:`cifar10_arrays`.

    split : ``"train"`` (default) | ``"test"``

    batch_size : `int`, (default 128)

    seed : `int`, (default 0)
        Seed of the shuffle and flips.

    training : `None` (default) | `bool`
        `True`: shuffle (reshuffled each epoch), random horizontal flips, drop the last
        partial batch. `False`: file order, no augmentation, keep the last batch.
        `None`: ``split == "train"``.

    repeat : `bool`, (default False)
        Repeat forever.

    with_labels : `bool`, (default False)
        Yield ``(images, labels)`` instead of ``images``.

    cache_dir : `None` (default) | `str`
        See :func:`cifar10_arrays`.

    Output
    ------
    images : [batch_size, 32, 32, 3], `tf.float32`
        Pixels in [0, 1].

    labels : [batch_size], `tf.int64`
        Only with ``with_labels``.
    """
    batch_size, seed = _positive_int(batch_size, "batch_size"), int(seed)
    training = (split == "train") if training is None else bool(training)
    images, labels = cifar10_arrays(path, split, cache_dir=cache_dir)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if training:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()

    def _prepare(index, item):
        image, label = item
        image = tf.cast(image, tf.float32) / 255.0
        if training:
            image = tf.image.stateless_random_flip_left_right(
                image, seed=_element_seed(seed, index))
        return (image, label) if with_labels else image

    dataset = dataset.enumerate().map(_prepare, num_parallel_calls=tf.data.AUTOTUNE,
                                      deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    return dataset.prefetch(tf.data.AUTOTUNE)
