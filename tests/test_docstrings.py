"""Every docstring example in the package runs (doctest), module by module."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import matplotlib
import pytest

import hte_mrt

matplotlib.use("Agg")

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(hte_mrt.__path__, prefix="hte_mrt.")
    if not m.name.rsplit(".", 1)[-1].startswith("_kernel")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save files write into a scratch folder
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.FAIL_FAST
    )
    tests = [t for t in finder.find(module, name) if t.examples]
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_public_functions_have_examples():
    """Public functions and classes reachable from ``import hte_mrt as hm`` document an example."""
    missing = []
    for name in hte_mrt.__all__:
        obj = getattr(hte_mrt, name)
        if (
            name.startswith("__")
            or not callable(obj)
            or (isinstance(obj, type) and issubclass(obj, BaseException))
        ):
            continue
        if ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert not missing, f"public names without an Examples section: {missing}"
