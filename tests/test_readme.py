"""Every Python code block of README.md runs, top to bottom, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_uses_only_the_hm_namespace():
    code = "\n".join(_blocks())
    assert "import hte_mrt as hm" in code
    imports = re.findall(r"^\s*(?:from|import) (hte_mrt\S*)", code, flags=re.M)
    assert set(imports) == {"hte_mrt"}, f"README imports beyond 'import hte_mrt as hm': {imports}"


def test_readme_code_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that save files write into a scratch folder
    blocks = _blocks()
    assert len(blocks) >= 3
    namespace: dict = {"__name__": "__readme__"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md block {i + 1}", "exec"), namespace)
        except Exception as exc:  # name the failing block
            raise AssertionError(
                f"README.md python block {i + 1} failed: {exc!r}\n{block}"
            ) from exc
