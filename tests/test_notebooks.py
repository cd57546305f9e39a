"""The worked-example notebooks (``notebooks/``): jupytext pairs, clean on disk, ``hm.`` only.

Each notebook is a pair: ``NAME.py``, the jupytext percent-format source (the file to edit and
review), and ``NAME.ipynb``, stored without outputs (``notebooks/jupytext.toml`` declares the
pairing; ``jupytext --sync notebooks/NAME.py`` updates one from the other). The notebooks are
**executed** by the documentation build in ``tests/test_docs.py`` (quick mode, every notebook
once per test run); this file checks what needs no kernel.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = [
    "01_heartsteps_primary",
    "02_heterogeneity",
    "03_tassh_cate",
    "04_designing_an_mrt",
    "05_jit_study",
]
# the public surface only: `import hte_mrt as hm`, then hm.<name>
INTERNAL_IMPORT = re.compile(
    r"^\s*(from\s+hte_mrt\b|import\s+hte_mrt\.|import\s+hte_mrt\s*$)", re.M
)


def _ipynb(name: str) -> nbformat.NotebookNode:
    path = NOTEBOOKS / f"{name}.ipynb"
    assert path.exists(), f"{path} is missing: run `jupytext --sync notebooks/{name}.py`"
    return nbformat.read(path, as_version=4)


def _source(name: str) -> nbformat.NotebookNode:
    path = NOTEBOOKS / f"{name}.py"
    assert path.exists(), f"{path} (the jupytext source of {name}.ipynb) is missing"
    return jupytext.read(path, fmt="py:percent")


def test_every_notebook_is_listed_and_paired():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == NAMES
    config = (NOTEBOOKS / "jupytext.toml").read_text()
    assert re.search(r'^formats\s*=\s*"ipynb,py:percent"', config, re.M), config


@pytest.mark.parametrize("name", NAMES)
def test_pair_is_in_sync(name):
    """The .ipynb holds exactly the cells of the .py source (run `jupytext --sync` if not)."""
    src = [(c.cell_type, c.source.strip()) for c in _source(name).cells]
    nb = [(c.cell_type, c.source.strip()) for c in _ipynb(name).cells]
    assert len(src) == len(nb), f"{name}: {len(src)} cells in .py, {len(nb)} in .ipynb"
    for k, (a, b) in enumerate(zip(src, nb, strict=True)):
        assert a == b, (
            f"{name}, cell {k}: .py and .ipynb differ: jupytext --sync notebooks/{name}.py"
        )


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_clean(name):
    """No outputs, no execution counts, no execution timing metadata; quick-run parameters."""
    nb = _ipynb(name)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", nb.metadata
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cells"
    for k, cell in enumerate(code):
        where = f"{name}, code cell {k} ({cell.source[:40]!r})"
        assert cell.outputs == [], f"{where} has stored outputs"
        assert cell.execution_count is None, f"{where} has an execution count"
        assert "execution" not in cell.metadata, f"{where} has execution metadata"
    assert "HTE_MRT_QUICK" in code[0].source, f"{name}: the first code cell must read QUICK"
    assert "parameters" in code[0].metadata.get("tags", []), f"{name}: tag the first cell"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_uses_the_public_surface(name):
    """`import hte_mrt as hm` and hm.<name> only (plus pandas, numpy, matplotlib, ...)."""
    code = "\n".join(c.source for c in _ipynb(name).cells if c.cell_type == "code")
    assert re.search(r"^import hte_mrt as hm$", code, re.M), f"{name}: no `import hte_mrt as hm`"
    bad = INTERNAL_IMPORT.findall(code)
    assert not bad, f"{name} imports internals: {bad}"
    assert "hte_mrt." not in code, f"{name} reaches into hte_mrt.<module>"
