"""Shared test set-up: every test starts from the same seeds (Python, NumPy, TF, Sionna)."""
import pytest

from fqliscs_tf.utils import set_seed

SEED = 42


@pytest.fixture(autouse=True)
def seed():
    """Seeds Python, NumPy, TF and Sionna (eagerly) before every test."""
    set_seed(SEED)
