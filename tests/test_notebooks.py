"""The example notebooks (``notebooks/*.ipynb``) are clean on disk and run top to bottom.

Each notebook reads ``HTE_MRT_QUICK`` in its first (parameters) cell; with ``HTE_MRT_QUICK=1``
it uses small draws, so the whole notebook runs in well under two minutes.

Kernel: the notebooks must run on *this* interpreter (the one with hte_mrt installed). A
``python3`` kernelspec found on the Jupyter path could point at another Python (for example a
user-level spec in ``~/.local/share/jupyter/kernels``), so the test writes its own spec with
``ipykernel.kernelspec.install(prefix=...)`` (argv ``[sys.executable, "-m",
"ipykernel_launcher", ...]``) into a temporary prefix and puts that prefix first on
``JUPYTER_PATH``, which jupyter_client searches before the user and system directories. The
kernel inherits the test process's environment when it starts, so ``HTE_MRT_QUICK=1`` and
``MPLBACKEND=Agg`` are set with ``monkeypatch`` before the client starts it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = [
    "01_heartsteps_primary.ipynb",
    "02_heterogeneity.ipynb",
    "03_tassh_cate.ipynb",
    "04_designing_an_mrt.ipynb",
]
CELL_TIMEOUT = 600  # seconds per cell


def _read(name: str) -> nbformat.NotebookNode:
    path = NOTEBOOKS / name
    assert path.exists(), f"{path} is missing (regenerate with notebooks/build_notebooks.py)"
    return nbformat.read(path, as_version=4)


def test_every_notebook_is_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_clean(name):
    """No outputs, no execution counts, no execution timing metadata; quick-run parameters."""
    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cells"
    for k, cell in enumerate(code):
        where = f"{name}, code cell {k} ({cell.source[:40]!r})"
        assert cell.outputs == [], f"{where} has stored outputs"
        assert cell.execution_count is None, f"{where} has an execution count"
        assert "execution" not in cell.metadata, f"{where} has execution metadata"
    assert "HTE_MRT_QUICK" in code[0].source, f"{name}: the first code cell must read QUICK"


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A ``python3`` kernelspec for this interpreter, first on the Jupyter path; quick mode."""
    prefix = tmp_path / "jupyter-prefix"
    install_kernelspec(user=False, prefix=str(prefix), kernel_name="python3")
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("HTE_MRT_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert Path(spec.argv[0]) == Path(sys.executable), spec.argv
    return tmp_path


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, kernel_env):
    """Execute a copy (working directory: a temporary folder) with small draws."""
    work = kernel_env / "run"
    work.mkdir()
    nb = _read(name)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(work)}},
    )
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        nbformat.write(nb, work / name)  # the executed copy, for inspection on failure
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert not errors, f"{name}: {[(e.ename, e.evalue) for e in errors]}"
