"""The code on the documentation's pages runs (each page top to bottom, in one namespace), so the
guides cannot drift from the API. Notebook pages are executed by the docs build instead."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(
    p
    for p in [*DOCS.glob("*.md"), *DOCS.glob("guide/*.md")]
    if re.search(r"```python\n", p.read_text())
)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_code_runs(page, tmp_path, monkeypatch):
    shutil.copytree(DOCS.parent / "models", tmp_path / "models")  # pages load the shipped plans
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    namespace: dict = {"__name__": "__docs__"}
    for i, block in enumerate(blocks):
        if "not run" in block.splitlines()[0]:
            continue  # a block that only shows a call's shape (e.g. a cluster address)
        try:
            exec(compile(block, f"{page.name} block {i + 1}", "exec"), namespace)
        except Exception as exc:
            msg = f"{page.relative_to(DOCS)}: python block {i + 1} failed: {exc!r}\n{block}"
            raise AssertionError(msg) from exc
