"""Tests for fqliscs_tf.data: discovery, decoding, training crops, test images, CIFAR-10."""
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fqliscs_tf import cifar, data

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rgb(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


@pytest.fixture
def image_folder(tmp_path):
    """Mixed formats, nested folders, upper-case suffixes, a non-image file."""
    root = tmp_path / "images"
    _save(root / "a.png", _rgb(40, 50, 1))
    _save(root / "sub" / "b.JPG", _rgb(48, 64, 2), quality=95)
    _save(root / "sub" / "deeper" / "c.jpeg", _rgb(64, 48, 3), quality=95)
    _save(root / "d.BMP", _rgb(36, 36, 4))
    (root / "notes.txt").write_text("not an image")
    return root


# --------------------------------------------------------------------------- list_images / load_image
def test_list_images_recursive_mixed_formats(image_folder):
    files = data.list_images(image_folder)
    names = [Path(f).relative_to(image_folder).as_posix() for f in files]
    assert names == ["a.png", "d.BMP", "sub/b.JPG", "sub/deeper/c.jpeg"]


def test_list_images_missing_and_empty(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.list_images(missing)
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="empty_folder"):
        data.list_images(empty)


def test_load_image_modes_to_rgb(tmp_path):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    out = data.load_image(_save(tmp_path / "gray.png", gray))
    assert out.dtype == np.uint8 and out.shape == (6, 8, 3)
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=-1))

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = [10, 20, 30, 255]  # opaque: keeps its colour
    rgba[0, 1] = [10, 20, 30, 0]  # transparent: white
    out = data.load_image(_save(tmp_path / "rgba.png", rgba))
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])

    palette = Image.new("P", (5, 3))
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * (256 * 3 - 6))
    palette.putpixel((2, 1), 1)
    palette.save(tmp_path / "palette.png")
    out = data.load_image(tmp_path / "palette.png")
    assert out.shape == (3, 5, 3)
    np.testing.assert_array_equal(out[1, 2], [200, 100, 50])
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])

    deep = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)  # 16-bit grayscale PNG
    Image.fromarray(deep).save(tmp_path / "deep.png")
    out = data.load_image(tmp_path / "deep.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 255])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_corrupt_and_truncated_files_name_the_file(tmp_path, image_folder):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"definitely not a PNG file" * 10)
    with pytest.raises(ValueError, match="broken.png"):
        data.load_image(bad)
    jpeg = _save(tmp_path / "full.jpg", _rgb(64, 64), quality=90).read_bytes()
    cut = tmp_path / "truncated.jpg"
    cut.write_bytes(jpeg[: len(jpeg) // 2])
    with pytest.raises(ValueError, match="truncated.jpg"):
        data.load_image(cut)
    # A corrupt file in a training folder fails at start-up, with its name.
    (image_folder / "sub" / "zzz_corrupt.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="zzz_corrupt.png"):
        data.train_dataset(image_folder, crop=32, batch_size=2, seed=0)
    with pytest.raises(FileNotFoundError, match="absent.png"):
        data.load_image(tmp_path / "absent.png")


# --------------------------------------------------------------------------- training crops
def _take(dataset, count):
    return [batch.numpy() for batch in dataset.take(count)]


def test_train_dataset_shape_range_determinism(image_folder):
    kwargs = dict(crop=32, batch_size=3, shuffle_buffer=4)
    first = _take(data.train_dataset(image_folder, seed=7, **kwargs), 3)
    again = _take(data.train_dataset(image_folder, seed=7, **kwargs), 3)
    other = _take(data.train_dataset(image_folder, seed=8, **kwargs), 3)
    for batch in first:
        assert batch.shape == (3, 32, 32, 3) and batch.dtype == np.float32
        assert 0.0 <= batch.min() and batch.max() <= 1.0
        # Pixels are exact multiples of 1/255 (no resampling for large-enough images).
        np.testing.assert_allclose(batch * 255, np.round(batch * 255), atol=1e-3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_train_dataset_crops_come_from_the_image(tmp_path):
    source = _rgb(40, 50, 11)
    _save(tmp_path / "only.png", source)
    batch = _take(data.train_dataset(tmp_path, crop=16, batch_size=1, seed=3), 1)[0][0]
    crop = np.round(batch * 255).astype(np.uint8)
    found = any(np.array_equal(window[i:i + 16, j:j + 16], crop)
                for window in (source, source[:, ::-1])
                for i in range(40 - 15) for j in range(50 - 15))
    assert found


def test_train_dataset_small_images_and_one_epoch(tmp_path):
    _save(tmp_path / "tiny.png", _rgb(10, 20, 5))  # smaller than the crop: upscaled
    _save(tmp_path / "thin.bmp", _rgb(70, 12, 6))
    _save(tmp_path / "big.jpg", _rgb(80, 90, 7))
    dataset = data.train_dataset(tmp_path, crop=24, batch_size=1, seed=0, repeat=False)
    batches = _take(dataset, 10)
    assert len(batches) == 3
    assert all(b.shape == (1, 24, 24, 3) for b in batches)
    with pytest.raises(ValueError, match="batch_size"):
        data.train_dataset(tmp_path, crop=24, batch_size=4, seed=0, repeat=False)
    with pytest.raises(ValueError, match="crop"):
        data.train_dataset(tmp_path, crop=0, batch_size=1, seed=0)


# --------------------------------------------------------------------------- test images
def test_test_dataset_centre_crop(tmp_path):
    source = _rgb(300, 200, 9)
    _save(tmp_path / "wide.png", source)
    items = list(data.test_dataset(tmp_path, multiple=128))
    assert len(items) == 1
    image, name = items[0]
    assert image.shape == (1, 256, 128, 3) and image.dtype == tf.float32
    assert name.numpy() == b"wide.png"
    # 300 -> 256: offset 22; 200 -> 128: offset 36.
    np.testing.assert_allclose(image.numpy()[0] * 255, source[22:278, 36:164], atol=1e-3)


def test_test_dataset_pad_and_crop_back(tmp_path):
    source = _rgb(100, 130, 10)
    _save(tmp_path / "odd.png", source)
    image, name, size = next(iter(data.test_dataset(tmp_path, multiple=64, fit="pad",
                                                    return_size=True)))
    assert image.shape == (1, 128, 192, 3)
    assert name.numpy() == b"odd.png" and size.numpy().tolist() == [100, 130]
    restored = data.crop_to_size(image, size).numpy()[0]
    np.testing.assert_allclose(restored * 255, source, atol=1e-3)
    # Reflect padding: the row above the image mirrors the row below its first one.
    top = (128 - 100) // 2
    np.testing.assert_array_equal(image.numpy()[0, top - 1], image.numpy()[0, top + 1])


def test_fit_to_multiple_numpy_and_tensor():
    array = np.arange(2 * 9 * 13 * 1, dtype=np.float32).reshape(2, 9, 13, 1)
    cropped = data.fit_to_multiple(array, 4, "crop")
    assert isinstance(cropped, np.ndarray) and cropped.shape == (2, 8, 12, 1)
    np.testing.assert_array_equal(cropped, array[:, 0:8, 0:12])
    padded = data.fit_to_multiple(tf.constant(array), 4, "pad")
    assert isinstance(padded, tf.Tensor) and padded.shape == (2, 12, 16, 1)
    np.testing.assert_array_equal(data.crop_to_size(padded, (9, 13)).numpy(), array)
    with pytest.raises(ValueError, match="fit"):
        data.fit_to_multiple(array, 4, "stretch")
    with pytest.raises(ValueError, match="smaller than multiple"):
        data.fit_to_multiple(array, 16, "crop")


def test_test_dataset_too_small_names_file(tmp_path):
    _save(tmp_path / "small_one.png", _rgb(100, 200))
    with pytest.raises(ValueError, match="small_one.png"):
        data.test_dataset(tmp_path, multiple=128, fit="crop")
    image, _ = next(iter(data.test_dataset(tmp_path, multiple=128, fit="pad")))
    assert image.shape == (1, 128, 256, 3)


def test_kodak_from_shared_data():
    kodak = SHARED_DATA / "kodak"
    if not (kodak / "kodim01.png").is_file():
        pytest.skip(f"shared Kodak images not found at {kodak}")
    files = [str(kodak / "kodim01.png"), str(kodak / "kodim04.png")]
    shapes = [tuple(image.shape) for image, _ in data.test_dataset(files, multiple=128)]
    assert shapes == [(1, 512, 768, 3), (1, 768, 512, 3)]


# --------------------------------------------------------------------------- CIFAR-10
def _fake_cifar_pickles(folder, batches=2, per_batch=3):
    """Write a tiny cifar-10-batches-py folder; return the expected HWC images and labels."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    expected = {}
    for name in [f"data_batch_{i}" for i in range(1, batches + 1)] + ["test_batch"]:
        chw = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        chw[0, :, 1, 2] = [10, 20, 30]  # pixel (row 1, col 2) of the first image = RGB(10, 20, 30)
        labels = rng.integers(0, 10, per_batch).tolist()
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": chw.reshape(per_batch, 3072), b"labels": labels,
                         b"batch_label": name.encode()}, handle)
        expected[name] = (chw.transpose(0, 2, 3, 1), np.asarray(labels))
    return expected


def test_cifar10_pickle_format(tmp_path):
    expected = _fake_cifar_pickles(tmp_path / "cifar-10-batches-py")
    for path in (tmp_path, tmp_path / "cifar-10-batches-py"):
        images, labels = cifar.cifar10_arrays(path, "train")
        assert images.shape == (6, 32, 32, 3) and images.dtype == np.uint8
        assert labels.shape == (6,)
        np.testing.assert_array_equal(images[0, 1, 2], [10, 20, 30])  # CHW -> HWC
        np.testing.assert_array_equal(images[3, 1, 2], [10, 20, 30])
        np.testing.assert_array_equal(images[:3], expected["data_batch_1"][0])
        np.testing.assert_array_equal(labels[3:], expected["data_batch_2"][1])
    images, labels = cifar.cifar10_arrays(tmp_path, "test")
    np.testing.assert_array_equal(images, expected["test_batch"][0])
    np.testing.assert_array_equal(labels, expected["test_batch"][1])
    with pytest.raises(ValueError, match="split"):
        cifar.cifar10_arrays(tmp_path, "valid")


def _fake_cifar_folders(root, split, classes=("cat", "dog"), per_class=2):
    for c, name in enumerate(classes):
        for i in range(per_class):
            pixels = np.full((32, 32, 3), 40 * c + i, np.uint8)
            pixels[1, 2] = [10, 20, 30]
            _save(root / split / name / f"{i:04d}.png", pixels)


def test_cifar10_class_folders(tmp_path):
    _fake_cifar_folders(tmp_path / "cifar", "train")
    _fake_cifar_folders(tmp_path / "cifar", "test", per_class=1)
    images, labels = cifar.cifar10_arrays(tmp_path / "cifar", "train")
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [3, 3, 5, 5]  # standard CIFAR-10 indices of cat and dog
    np.testing.assert_array_equal(images[:, 1, 2], [[10, 20, 30]] * 4)
    assert images[1, 0, 0, 0] == 1 and images[2, 0, 0, 0] == 40
    test_images, test_labels = cifar.cifar10_arrays(tmp_path / "cifar", "test")
    assert test_images.shape == (2, 32, 32, 3) and test_labels.tolist() == [3, 5]
    # Class folders given directly.
    direct, direct_labels = cifar.cifar10_arrays(tmp_path / "cifar" / "train")
    np.testing.assert_array_equal(direct, images)
    np.testing.assert_array_equal(direct_labels, labels)


def test_cifar10_archive_extracted_to_cache(tmp_path, monkeypatch):
    _fake_cifar_folders(tmp_path / "src" / "cifar_small", "train")
    _fake_cifar_folders(tmp_path / "src" / "cifar_small", "test", per_class=1)
    archive = tmp_path / "cifar_small.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar_small", arcname="cifar_small")
    monkeypatch.setenv("FQLISCS_CACHE", str(tmp_path / "env_cache"))
    images, labels = cifar.cifar10_arrays(archive, "test")
    assert images.shape == (2, 32, 32, 3) and labels.tolist() == [3, 5]
    extracted = list((tmp_path / "env_cache").glob("cifar_small-*/cifar_small/train/cat/*.png"))
    assert len(extracted) == 2
    again, _ = cifar.cifar10_arrays(archive, "test")  # served from the cache
    np.testing.assert_array_equal(again, images)
    explicit = tmp_path / "explicit_cache"
    images, _ = cifar.cifar10_arrays(archive, "train", cache_dir=explicit)
    assert images.shape == (4, 32, 32, 3) and any(explicit.iterdir())


def test_cifar10_unrecognised_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        cifar.cifar10_arrays(tmp_path / "missing_dir")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="no CIFAR-10 data"):
        cifar.cifar10_arrays(tmp_path / "junk")
    _fake_cifar_folders(tmp_path / "only_train", "train")
    with pytest.raises(ValueError, match="no CIFAR-10 data"):
        cifar.cifar10_arrays(tmp_path / "only_train", "test")


def test_cifar10_dataset(tmp_path):
    _fake_cifar_pickles(tmp_path / "cifar-10-batches-py", batches=2, per_batch=5)
    images, labels = cifar.cifar10_arrays(tmp_path, "train")
    train = cifar.cifar10_dataset(tmp_path, "train", batch_size=4, seed=1)
    batches = [b.numpy() for b in train]
    assert len(batches) == 2 and all(b.shape == (4, 32, 32, 3) for b in batches)
    assert all(b.dtype == np.float32 and 0 <= b.min() and b.max() <= 1 for b in batches)
    again = [b.numpy() for b in cifar.cifar10_dataset(tmp_path, "train", batch_size=4, seed=1)]
    np.testing.assert_array_equal(np.stack(batches), np.stack(again))
    # Every training sample is an image of the set, possibly flipped.
    pool = {im.tobytes() for im in images} | {im[:, ::-1].tobytes() for im in images}
    assert all(np.round(s * 255).astype(np.uint8).tobytes() in pool for b in batches for s in b)
    evaluation = cifar.cifar10_dataset(tmp_path, "train", batch_size=4, training=False,
                                      with_labels=True)
    got = list(evaluation)
    assert [x.shape[0] for x, _ in got] == [4, 4, 2]
    np.testing.assert_allclose(np.concatenate([x for x, _ in got]) * 255, images, atol=1e-3)
    np.testing.assert_array_equal(np.concatenate([y for _, y in got]), labels)


def test_centre_crops_turn_the_image_for_a_portrait_request(tmp_path):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)  # landscape, 60 wide
    path = tmp_path / "land.png"
    Image.fromarray(pixels).save(path)
    (land,), (port,) = data.centre_crops([path], 20, 50), data.centre_crops([path], 50, 20)
    assert land.shape == (20, 50, 3) and land.dtype == np.float32
    np.testing.assert_array_equal(land * 255, pixels[10:30, 5:55])
    np.testing.assert_array_equal(port * 255, pixels.transpose(1, 0, 2)[5:55, 10:30])
    with pytest.raises(ValueError, match="land.png .* smaller than the 70x70 crop"):
        data.centre_crops([path], 70, 70)
