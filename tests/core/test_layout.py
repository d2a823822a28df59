"""The architecture stays as designed (DESIGN §2): layers import downwards only, the core never imports Dagster,
assets use the subpackages' public roots, and function-local imports are only the deliberate lazy ones."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "maestro_pipeline"

#: Lowest first. A unit (a module or subpackage of ``maestro_pipeline``) may import units of its own layer or below.
#: ``config`` sits on the data layer: it validates maestro.yaml against the check catalog, the strategy registry and
#: file-name rules, and nothing below it reads the typed config.
LAYERS: list[set[str]] = [
    {"errors", "timeframes", "durations", "provenance", "schema", "instruments", "__init__"},
    {"market", "quality", "lake", "strategies"},
    {"config"},
    {"stats", "reporting"},
    {"engine"},
    {"walkforward"},
    {"search"},
    {"evaluation"},
    {"trading"},
    {"definitions", "cli", "bench"},
]
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}
#: Entry points that may touch Dagster (cli only inside functions, so its other commands stay light).
DAGSTER_ALLOWED = {"definitions.py", "cli/graph.py", "bench/backfill.py"}
#: Third-party libraries imported inside functions on purpose (their import is slow or needs a display/network);
#: the reason is next to each import.
LAZY_OK = {"great_expectations", "quantstats", "matplotlib", "PIL", "ccxt", "dagster", "assets", "hmmlearn"}


def _unit(path: Path) -> str:
    rel = path.relative_to(CORE)
    return rel.parts[0].removesuffix(".py")


def _resolve(path: Path, node: ast.ImportFrom) -> list[str]:
    """Absolute dotted names imported by ``node`` in ``path`` (relative imports resolved)."""
    if node.level == 0:
        base = node.module or ""
    else:
        pkg = list(path.relative_to(ROOT).with_suffix("").parts)
        pkg = pkg[:-1] if path.name != "__init__.py" else pkg[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
        base = ".".join(pkg + ([node.module] if node.module else []))
    if node.module is None and node.level:
        return [f"{base}.{a.name}" for a in node.names]
    return [base]


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported dotted name, imported inside a function) for every import in the file."""
    tree = ast.parse(path.read_text())
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((a.name, local) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                out.extend((n, local) for n in _resolve(path, child))
            visit(child, inner)

    visit(tree, False)
    return out


def _core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_core_unit_has_a_layer():
    assert {_unit(p) for p in _core_files()} <= set(LAYER_OF)


def test_layers_import_downwards_only():
    offenders = []
    for path in _core_files():
        me = _unit(path)
        for name, _ in _imports(path):
            parts = name.split(".")
            if parts[0] != "maestro_pipeline" or len(parts) < 2:
                continue
            target = parts[1]
            if target in LAYER_OF and LAYER_OF[target] > LAYER_OF[me]:
                offenders.append(f"{path.relative_to(ROOT)} ({me}, layer {LAYER_OF[me]}) imports {name} "
                                 f"(layer {LAYER_OF[target]})")
    assert offenders == []


def test_units_of_one_layer_do_not_import_each_other_in_a_cycle():
    edges: dict[str, set[str]] = {}
    for path in _core_files():
        me = _unit(path)
        for name, _ in _imports(path):
            parts = name.split(".")
            if parts[0] == "maestro_pipeline" and len(parts) > 1 and parts[1] in LAYER_OF and parts[1] != me:
                edges.setdefault(me, set()).add(parts[1])

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        return any(n == b or (n not in seen and reaches(n, b, seen | {n})) for n in edges.get(a, ()))

    cycles = sorted(f"{a} <-> {b}" for a in edges for b in edges[a] if reaches(b, a, {b}))
    assert cycles == []


def test_core_has_no_dagster_imports():
    offenders = [
        str(p.relative_to(CORE)) for p in _core_files()
        if str(p.relative_to(CORE)) not in DAGSTER_ALLOWED
        and {"dagster", "assets", "resources"} & {n.split(".")[0] for n, _ in _imports(p)}
    ]
    assert offenders == []
    # the CLI imports Dagster only inside the commands that run the graph
    for path in (CORE / "cli").glob("*.py"):
        assert all(local for n, local in _imports(path) if n.split(".")[0] in ("dagster", "assets")), path.name


def test_function_local_imports_are_only_deliberate_lazy_ones():
    offenders = [
        f"{p.relative_to(ROOT)}: {n}" for p in _core_files() for n, local in _imports(p)
        if local and n.split(".")[0] not in LAZY_OK
    ]
    assert offenders == []


def test_assets_import_the_core_through_its_public_roots():
    subpackages = {p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    offenders = []
    for path in sorted((ROOT / "assets").glob("*.py")) + sorted((ROOT / "resources").glob("*.py")):
        for name, _ in _imports(path):
            parts = name.split(".")
            if parts[0] == "maestro_pipeline" and len(parts) > 2 and parts[1] in subpackages:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_every_subpackage_declares_its_api():
    for init in sorted(CORE.glob("*/__init__.py")):
        tree = ast.parse(init.read_text())
        names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                 if isinstance(t, ast.Name)]
        assert "__all__" in names, f"{init.relative_to(ROOT)} has no __all__"


def test_the_checks_see_imports():
    # guard against vacuous passes: the scanner finds Dagster in the composition root, a relative import, and a
    # function-local import
    assert "assets" in {n.split(".")[0] for n, _ in _imports(CORE / "definitions.py")}
    assert ("maestro_pipeline.engine", False) in _imports(CORE / "search" / "study.py")
    assert any(local and n.startswith("great_expectations") for n, local in _imports(CORE / "quality" / "suites.py"))
