"""The layers hold: no package imports another package's private modules, no import
circles between modules, and every module stays a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "corral"


def _imports() -> dict[str, set[str]]:
    """Module -> the corral modules it imports (TYPE_CHECKING imports included)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[module] = {n for n in names if n == "corral" or n.startswith("corral.")}
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_package_imports_another_packages_private_module() -> None:
    crossing = [
        f"{source} imports {target}"
        for source, targets in _imports().items()
        for target in targets
        if any(part.startswith("_") for part in target.split(".")[2:])
        and _package(target) != _package(source)
    ]
    assert crossing == []


def test_modules_import_each_other_in_no_circle() -> None:
    graph: nx.DiGraph[str] = nx.DiGraph()
    for source, targets in _imports().items():
        for target in targets:
            if target != source and not _package_face(target, source):
                graph.add_edge(source, target)
    assert list(nx.simple_cycles(graph)) == []


def _package_face(target: str, source: str) -> bool:
    """A package's ``__init__`` importing its own modules (its face) is not a circle."""
    return source.startswith(target + ".") or target.startswith(source + ".")


def test_every_module_stays_under_about_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 420
    }
    assert long == {}
