"""The generalisation test set: scikit-image's sample photographs written as PNG files."""
import numpy as np
import pytest
from PIL import Image

from experiments import photos


def test_photos_are_written_as_rgb_png(tmp_path):
    pytest.importorskip("skimage", reason="scikit-image is not installed (the [eval] extra)")
    paths = photos.write_photos(str(tmp_path), ("coffee", "astronaut"))
    sizes = [Image.open(p).size for p in paths]
    assert sizes == [(600, 400), (512, 512)]
    assert all(np.asarray(Image.open(p)).shape[2] == 3 for p in paths)
    with pytest.raises(ValueError, match="unknown photograph"):
        photos.write_photos(str(tmp_path), ("lena",))
