"""The one-way flow between rooms (ARCHITECTURE.md): no room imports from a room above it.

    data -> estimands / design -> estimators -> results -> studies -> reports / cli

with the documented exception that estimators import the results containers they return
(results never import an estimator). Imports inside functions count as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hte_mrt"
SHARED = {"errors", "_util", "_contract"}  # usable by every room
ALLOWED = {
    "data": {"data"},
    "estimands": {"data", "estimands"},
    "design": {"data", "design"},
    "results": {"data", "estimands", "results"},
    "estimators": {"data", "estimands", "design", "estimators", "results"},
    "studies": {"data", "estimands", "design", "estimators", "results", "studies"},
    "reports": {"data", "estimands", "design", "estimators", "results", "studies", "reports"},
}


def _room(path: Path) -> str | None:
    rel = path.relative_to(SRC).parts
    return rel[0] if len(rel) > 1 else None


def _imported_rooms(tree: ast.AST) -> set[tuple[str, int]]:
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for n in names:
            parts = n.split(".")
            if parts[0] == "hte_mrt" and len(parts) > 1:
                out.add((parts[1], node.lineno))
    return out


MODULES = sorted(p for p in SRC.rglob("*.py") if _room(p) in ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_flow_one_way(path):
    room = _room(path)
    bad = [
        f"line {line}: imports hte_mrt.{target}"
        for target, line in _imported_rooms(ast.parse(path.read_text()))
        if target not in SHARED and target not in ALLOWED[room]
    ]
    assert not bad, f"{path.relative_to(SRC)} ({room} room): " + "; ".join(sorted(bad))


def test_the_check_would_catch_an_upward_import():
    tree = ast.parse("def f():\n    from hte_mrt.estimators.wcls import wcls\n")
    assert ("estimators", 2) in _imported_rooms(tree)
    assert "estimators" not in ALLOWED["results"]
