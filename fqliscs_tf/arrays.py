"""Array archives for shipped weights: ``.npz`` zip files, packed smaller than ``savez_compressed``.

Two lossless packings, both undone by :func:`load_arrays`:

* every member is LZMA-compressed instead of deflated;
* a ``float16`` array is stored as its two byte planes, ``uint8`` of shape ``(2, *shape)``
  (high bytes, then low bytes). The high byte (sign, exponent, two mantissa bits) is highly
  redundant across a weight tensor, the low byte is not; split, LZMA finds the redundancy
  (the shipped float16 codecs: 4.11 MB deflated -> 3.83 MB).

Optionally a numeric array is stored as the wrapped difference of its bit patterns from the
array of the same name, dtype and shape in a ``base`` archive (a fine-tune of a shipped codec
stored against the codec it started from): ``(a - b) mod 2**bits`` on the unsigned view of
both. For int8 weights that is mostly zeros; for float16 weights that moved a little it is
mostly small numbers, since neighbouring floats have neighbouring bit patterns.

The files stay zip archives of ``.npy`` members, so ``np.load`` opens them; the member
``__packing__`` (JSON) lists the byte-plane and difference members, which only
:func:`load_arrays` turns back into the original arrays. Archives written by
``np.savez``/``np.savez_compressed`` load unchanged.
"""
import hashlib
import io
import json
import os
import zipfile

import numpy as np

__all__ = ["save_arrays", "load_arrays", "arrays_digest", "save_folder_arrays",
           "load_folder_arrays"]

PACKING = "__packing__"


def _planes(a):
    u = np.ascontiguousarray(a).view(np.uint16)
    return np.stack([(u >> 8).astype(np.uint8), (u & 0xFF).astype(np.uint8)])


def _unplanes(p):
    return ((p[0].astype(np.uint16) << 8) | p[1]).view(np.float16)


def _wrapped(a, b, sign):
    """``a + sign * b`` on the unsigned views of the two arrays' bit patterns, with
    wrap-around (exact and invertible for any fixed-width numeric dtype)."""
    unsigned = np.dtype(f"uint{a.dtype.itemsize * 8}")
    ua, ub = a.view(unsigned), b.astype(a.dtype).view(unsigned)
    return (ua + ub if sign > 0 else ua - ub).view(a.dtype)


def arrays_digest(arrays):
    """SHA-256 (hex) of the names, dtypes, shapes and bytes of ``arrays`` (a mapping)."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_arrays(path, arrays, base=None):
    """Write ``arrays`` (name -> ndarray) to the zip archive ``path``.

    ``base`` (optional, name -> ndarray): numeric arrays whose name, dtype and shape match
    an array in ``base`` are stored as the wrapped difference of their bit patterns from it;
    pass the same ``base`` to :func:`load_arrays`. Returns ``path``.
    """
    packing = {"float16_planes": [], "difference": []}
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"  # written whole, then renamed: never half a file
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_LZMA) as zf:
        for key, value in arrays.items():
            if key == PACKING:
                raise ValueError(f"{PACKING!r} is reserved and cannot name an array")
            a = np.asarray(value)
            if base is not None and key in base and a.dtype.kind in "iuf" \
                    and base[key].dtype == a.dtype and base[key].shape == a.shape:
                a = _wrapped(a, np.asarray(base[key]), -1)
                packing["difference"].append(key)
            elif a.dtype == np.float16:
                a = _planes(a)
                packing["float16_planes"].append(key)
            with zf.open(key + ".npy", "w") as f:
                np.lib.format.write_array(f, a, allow_pickle=False)
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array(json.dumps(packing)), allow_pickle=False)
        zf.writestr(PACKING + ".npy", buf.getvalue())
    os.replace(tmp, path)
    return path


def load_arrays(path, base=None):
    """Read an archive written by :func:`save_arrays` (or ``np.savez*``) -> dict name -> ndarray.

    Raises ValueError when the archive holds differences and no ``base`` is given, or
    ``base`` lacks one of their arrays.
    """
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    packing = json.loads(str(arrays.pop(PACKING))) if PACKING in arrays else {}
    for key in packing.get("float16_planes", []):
        arrays[key] = _unplanes(arrays[key])
    diffs = packing.get("difference", [])
    if diffs and base is None:
        raise ValueError(f"{path} stores {len(diffs)} arrays as differences from a base "
                         "archive, and no base was given")
    for key in diffs:
        if key not in base or base[key].shape != arrays[key].shape \
                or base[key].dtype != arrays[key].dtype:
            raise ValueError(f"{path}: the base has no {arrays[key].dtype} array {key!r} of "
                             f"shape {arrays[key].shape} to add the stored difference to")
        arrays[key] = _wrapped(arrays[key], np.asarray(base[key]), +1)
    return arrays


# --------------------------------------------------------------------------- model folders
def _folder_json(directory, info_file):
    path = os.path.join(directory, info_file)
    if not os.path.isfile(path):
        raise ValueError(f"{directory!r} has no {info_file}")
    with open(path) as f:
        return json.load(f)


def save_folder_arrays(directory, info_file, arrays_file, arrays, base=None):
    """Write a model folder's arrays; with ``base`` (another folder of the same kind) store
    them as differences from that folder's arrays.

    Returns the ``"base"`` entry to record in the folder's ``info_file``: ``None``, or
    ``{"folder": path of base relative to directory, "digest": arrays_digest of base}``.
    """
    base_arrays = entry = None
    if base is not None:
        base_arrays = load_folder_arrays(base, info_file, arrays_file)
        rel = os.path.relpath(os.path.abspath(base), os.path.abspath(directory))
        entry = {"folder": rel.replace(os.sep, "/"), "digest": arrays_digest(base_arrays)}
    save_arrays(os.path.join(directory, arrays_file), arrays, base=base_arrays)
    return entry


def load_folder_arrays(directory, info_file, arrays_file):
    """A model folder's arrays, adding back the base folder's arrays (recursively) when
    its ``info_file`` names one.

    Raises ValueError when the base folder is missing or is not the one the differences
    were taken from (its digest changed).
    """
    entry = _folder_json(directory, info_file).get("base")
    base_arrays = None
    if entry:
        base = os.path.normpath(os.path.join(directory, entry["folder"]))
        if not os.path.isfile(os.path.join(base, info_file)):
            raise ValueError(f"{directory!r} is stored as differences from the folder "
                             f"{entry['folder']!r} beside it, which is missing ({base!r})")
        base_arrays = load_folder_arrays(base, info_file, arrays_file)
        if arrays_digest(base_arrays) != entry["digest"]:
            raise ValueError(f"{directory!r} is stored as differences from {base!r}, but that "
                             "folder's arrays changed since (digest mismatch): restore it")
    return load_arrays(os.path.join(directory, arrays_file), base=base_arrays)
