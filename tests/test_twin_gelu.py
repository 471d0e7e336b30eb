"""experiments.twin_gelu: argument checks (the export itself is covered by test_tflite)."""
import numpy as np
import pytest
from PIL import Image

from experiments import twin_gelu


def test_bad_gelu_form_is_named(tmp_path):
    with pytest.raises(ValueError, match="gelu must be one of"):
        twin_gelu.main(["--calibration", str(tmp_path), "--forms", "engine,relu"])


def test_too_few_calibration_images(tmp_path):
    for i in range(2):
        Image.fromarray(np.zeros([32, 32, 3], np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(SystemExit, match="at least 4 images"):
        twin_gelu.main(["--calibration", str(tmp_path)])


def test_bad_snr_list(tmp_path):
    with pytest.raises(SystemExit, match="--snrs"):
        twin_gelu.main(["--calibration", str(tmp_path), "--snrs", "1,high"])
