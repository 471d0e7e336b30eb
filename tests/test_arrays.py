"""Packed weight archives (fqliscs_tf.arrays) and model folders stored against a base folder."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from conftest import smooth_images

from fqliscs_tf.arrays import (arrays_digest, load_arrays, load_folder_arrays, save_arrays,
                               save_folder_arrays)
from fqliscs_tf.checkpoints import MODEL_FILE, WEIGHTS_FILE, export_model, load_model
from fqliscs_tf.codec import JSCC
from fqliscs_tf.engine import IntegerCodec, export_integer_codec, load_integer_codec, save_integer_codec
from fqliscs_tf.engine.export import ENGINE_ARRAYS, ENGINE_FILE

from experiments.ship import repack


def _weights(seed, n=4096):
    rng = np.random.default_rng(seed)
    return {"w0000": (0.05 * rng.standard_normal((n // 64, 64))).astype(np.float16),
            "w0001": rng.integers(-128, 128, n, dtype=np.int8),
            "w0002": rng.integers(-2**31, 2**31 - 1, 64, dtype=np.int32),
            "w0003": rng.standard_normal(16).astype(np.float32),
            "flag": np.array(True),
            "names": np.array(["dense/kernel:0", "dense/bias:0"])}


def _equal(a, b):
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
                                    and np.array_equal(a[k], b[k]) for k in a)


def test_round_trip_is_bit_exact_and_numpy_opens_it(tmp_path):
    arrays = _weights(0)
    save_arrays(tmp_path / "a.npz", arrays)
    assert _equal(load_arrays(tmp_path / "a.npz"), arrays)
    with np.load(tmp_path / "a.npz") as raw:      # a zip of .npy members, as np.savez writes
        assert raw["w0001"].dtype == np.int8 and raw["w0000"].shape == (2, 64, 64)  # byte planes
    np.savez_compressed(tmp_path / "plain.npz", **arrays)   # the old files load unchanged
    assert _equal(load_arrays(tmp_path / "plain.npz"), arrays)
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_float16_byte_planes_beat_deflate(tmp_path):
    w = {"w": (0.05 * np.random.default_rng(1).standard_normal(200_000)).astype(np.float16)}
    save_arrays(tmp_path / "a.npz", w)
    np.savez_compressed(tmp_path / "b.npz", **w)
    assert os.path.getsize(tmp_path / "a.npz") < 0.95 * os.path.getsize(tmp_path / "b.npz")


def test_differences_from_a_base_are_exact_and_small(tmp_path):
    base = _weights(0, n=64_000)
    rng = np.random.default_rng(5)
    tuned = {k: v.copy() for k, v in base.items()}
    moved = rng.random(tuned["w0001"].shape) < 0.1          # a fine-tune moves a few int8s
    tuned["w0001"][moved] += rng.choice(np.array([-1, 1], np.int8), moved.sum())
    tuned["w0000"] = (tuned["w0000"].astype(np.float32) * 1.001).astype(np.float16)
    tuned["w0002"][:3] = [2**31 - 1, -2**31, 0]              # wrap-around both ways
    tuned["extra"] = np.arange(5, dtype=np.int16)            # not in the base: stored whole
    save_arrays(tmp_path / "full.npz", tuned)
    save_arrays(tmp_path / "diff.npz", tuned, base=base)
    assert _equal(load_arrays(tmp_path / "diff.npz", base=base), tuned)
    assert os.path.getsize(tmp_path / "diff.npz") < 0.5 * os.path.getsize(tmp_path / "full.npz")
    with pytest.raises(ValueError, match="differences from a base archive, and no base"):
        load_arrays(tmp_path / "diff.npz")
    with pytest.raises(ValueError, match="'w0001'"):
        load_arrays(tmp_path / "diff.npz", base={**base, "w0001": base["w0001"][:10]})
    with pytest.raises(ValueError, match="reserved"):
        save_arrays(tmp_path / "x.npz", {"__packing__": np.zeros(1)})
    assert arrays_digest(base) == arrays_digest(dict(reversed(base.items())))
    assert arrays_digest(base) != arrays_digest(tuned)


def test_float_model_stored_against_a_base_folder(tmp_path):
    from conftest import tiny_codec_config
    tf.random.set_seed(3)
    a = JSCC(tiny_codec_config(), "none").build_for()
    b = JSCC(tiny_codec_config(), "none").build_for()
    b.set_weights([w + 1e-3 * np.sign(w) for w in a.get_weights()])   # "a fine-tune of a"
    export_model(a, tmp_path / "a", weights_dtype="float16")
    export_model(b, tmp_path / "b", weights_dtype="float16", base=tmp_path / "a", note="x")
    with open(tmp_path / "b" / MODEL_FILE) as f:
        info = json.load(f)
    assert info["base"]["folder"] == "../a" and info["meta"]["note"] == "x"
    x, snr = tf.constant(smooth_images(1, seed=2)), tf.constant([7.0])
    export_model(b, tmp_path / "b_whole", weights_dtype="float16")
    np.testing.assert_array_equal(load_model(tmp_path / "b")((x, snr))["x_hat"],
                                  load_model(tmp_path / "b_whole")((x, snr))["x_hat"])
    export_model(b, tmp_path / "a", weights_dtype="float16")    # the base is overwritten
    with pytest.raises(ValueError, match="digest mismatch"):
        load_model(tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    with pytest.raises(ValueError, match="folder '../a' beside it, which is missing"):
        load_model(tmp_path / "b")


def test_integer_codec_stored_against_a_base_folder(tiny_qat, tmp_path):
    _, qat = tiny_qat
    params = export_integer_codec(qat)
    save_integer_codec(params, tmp_path / "base")
    save_integer_codec(params, tmp_path / "same", base=tmp_path / "base")
    assert os.path.getsize(tmp_path / "same" / ENGINE_ARRAYS) < \
        0.5 * os.path.getsize(tmp_path / "base" / ENGINE_ARRAYS)     # all differences are 0
    x = tf.constant(smooth_images(1, seed=4))
    run = lambda p: IntegerCodec(p, "awgn", jit_compile=False)(x, 4.0, seed=(1, 2))["x_hat"].numpy()
    np.testing.assert_array_equal(run(params), run(load_integer_codec(str(tmp_path / "same"))))


def test_repack_rewrites_a_shipped_folder_without_changing_it(tiny_qat, tmp_path):
    from conftest import tiny_codec_config
    model = JSCC(tiny_codec_config(), "none").build_for()
    export_model(model, tmp_path / "base", weights_dtype="float16")
    folder = tmp_path / "tuned"
    export_model(model, folder, weights_dtype="float16", note="kept")
    arrays = load_folder_arrays(folder, MODEL_FILE, WEIGHTS_FILE)
    np.savez_compressed(folder / WEIGHTS_FILE, **arrays)    # as the files were written before
    before, after = repack(folder, base=tmp_path / "base")
    assert after < before
    assert _equal(load_folder_arrays(folder, MODEL_FILE, WEIGHTS_FILE), arrays)
    with open(folder / MODEL_FILE) as f:
        info = json.load(f)
    assert info["meta"]["note"] == "kept" and info["base"]["folder"] == "../base"
    repack(folder)                                          # and back to a whole file
    with open(folder / MODEL_FILE) as f:
        assert "base" not in json.load(f)
    save_integer_codec(export_integer_codec(tiny_qat[1]), tmp_path / "int")
    ints = load_folder_arrays(tmp_path / "int", ENGINE_FILE, ENGINE_ARRAYS)
    repack(tmp_path / "int")
    assert _equal(load_folder_arrays(tmp_path / "int", ENGINE_FILE, ENGINE_ARRAYS), ints)


def test_save_folder_arrays_names_a_missing_base(tmp_path):
    with pytest.raises(ValueError, match="has no model.json"):
        save_folder_arrays(tmp_path, MODEL_FILE, WEIGHTS_FILE, {"w": np.zeros(2)},
                           base=tmp_path / "nope")
