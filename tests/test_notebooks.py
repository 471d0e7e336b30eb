"""The tutorial notebooks: stored without outputs, and each runs top to bottom in quick mode.

Every ``notebooks/*.ipynb`` is executed with nbclient in a ``python3`` kernel of this
interpreter, with ``FQLISCS_NB_QUICK=1`` (the notebooks' CI size) and the notebooks folder
as working directory, within :data:`NOTEBOOK_TIMEOUT_S` seconds per notebook.
"""
import sys
import time
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NOTEBOOK_TIMEOUT_S = 180.0

try:
    import nbclient
    import nbformat
except ImportError:  # the test extra is not installed
    nbclient = nbformat = None

needs_nbclient = pytest.mark.skipif(
    nbclient is None,
    reason="nbclient is not importable: pip install -e '.[test]' (nbclient, nbformat, ipykernel)")


def _ids(paths):
    return [p.name for p in paths]


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


def _read_json(path):
    import json
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(path):
    nb = _read_json(path)
    assert nb.get("nbformat") == 4, f"{path.name}: not an nbformat 4 notebook"
    dirty = [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: code cells {dirty} have outputs or execution counts; "
                       "clear them before committing (e.g. jupyter nbconvert "
                       "--clear-output --inplace)")


@needs_nbclient
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_in_quick_mode(path, monkeypatch):
    from jupyter_client.kernelspec import NoSuchKernel
    monkeypatch.setenv("FQLISCS_NB_QUICK", "1")     # inherited by the kernel process
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT_S
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        # One budget for the whole notebook: each cell gets what is left of it.
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        allow_errors=False)
    start = time.monotonic()
    try:
        client.execute()
    except NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel: pip install ipykernel")
    except nbclient.exceptions.CellTimeoutError as e:
        pytest.fail(f"{path.name} did not finish within {NOTEBOOK_TIMEOUT_S:g} s in quick mode: "
                    f"{str(e).splitlines()[0]}")
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{path.name} failed in quick mode:\n{e}")
    elapsed = time.monotonic() - start
    sys.stderr.write(f"\n{path.name}: {elapsed:.1f} s in quick mode\n")
    errors = [o for cell in nb.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs {errors}"
