"""The architecture stays as designed: the domain core never imports Dagster."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "maestro_pipeline"
ALLOWED = {"definitions.py", "cli.py"}  # the composition root and the command-line shell


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_has_no_dagster_imports():
    offenders = [
        str(p.relative_to(CORE)) for p in CORE.rglob("*.py")
        if p.name not in ALLOWED and ({"dagster", "assets", "resources"} & _imports(p))
    ]
    assert offenders == []


def test_the_check_sees_imports():
    # guard against a vacuous pass: the scanner does find Dagster in the composition root
    assert "assets" in _imports(CORE / "definitions.py")
