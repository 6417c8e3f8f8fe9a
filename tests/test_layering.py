"""The package's shape, checked from its source: imports point down, argparse stays in cli/, modules stay small.

Every module under ``src/npoptim`` is parsed with :mod:`ast`; its imports of
``npoptim`` modules (absolute or relative, at module level, inside functions or
under ``TYPE_CHECKING``) are the edges of a graph.  docs/architecture.md draws
the layers these tests hold the code to.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "npoptim"

#: Floor of each top-level part of the package (a module's floor is that of its first name under npoptim).
FLOORS: dict[str, str] = {
    "_version": "base", "_fingerprint": "base", "errors": "base", "checks": "base", "schedules": "base",
    "optimizers": "optimizers", "checkpoint": "optimizers",
    "problems": "problems", "functions": "problems", "nn": "problems", "data": "problems",
    "engine": "engine",
    "grading": "grading",
    "sweeps": "sweeps",
    "report": "report", "plotting": "report",
    "experiments": "experiments",
    "explore": "explore",
    "cli": "cli",
    "": "top",  # npoptim/__init__.py: the public names
}

#: What each floor may import (itself included).
ALLOWED: dict[str, set[str]] = {
    "base": {"base"},
    "optimizers": {"base", "optimizers"},
    "problems": {"base", "problems"},
    "engine": {"base", "optimizers", "problems", "engine"},
    "grading": {"base", "optimizers", "grading"},
    "sweeps": {"base", "optimizers", "problems", "engine", "sweeps"},
    "report": {"base", "optimizers", "problems", "engine", "report"},
    "experiments": {"base", "optimizers", "problems", "engine", "report", "experiments"},
    "explore": {"base", "optimizers", "problems", "engine", "experiments", "explore"},
    "cli": {"base", "optimizers", "problems", "engine", "sweeps", "report", "experiments", "explore", "grading", "cli"},
    "top": {"base", "optimizers"},
}

MAX_LINES = 500
#: Modules allowed over MAX_LINES, each with its current size as a ceiling (it may only shrink).  The kernels
#: stay one file: numba's on-disk cache of a compiled driver is invalidated only by a change to the file that
#: defines it, so the rule bodies it inlines must live in that same file.
OVERSIZE = {"npoptim.optimizers.fused.kernels": 635}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _resolve(name: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """``(imported npoptim module, line, at module level)`` for every import in ``path``, and ``argparse`` uses."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top_level = {id(n) for n in tree.body}
    for n in tree.body:  # imports under a module-level ``if`` / ``try`` run at import time too
        if isinstance(n, (ast.If, ast.Try)):
            top_level.update(id(m) for m in ast.walk(n))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(name, path.name == "__init__.py", node)
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            if t == "argparse" or t == "npoptim" or t.startswith("npoptim."):
                out.append((t, node.lineno, id(node) in top_level))
    return out


def floor(name: str) -> str:
    parts = name.split(".")
    return FLOORS[parts[1] if len(parts) > 1 else ""]


def graph(root: Path = PACKAGE) -> dict[str, list[tuple[str, int, bool]]]:
    mods = modules(root)
    known = set(mods)
    return {name: [e for e in imports(name, path, known) if e[0] != "argparse"] for name, path in mods.items()}


def cycles(edges: dict[str, list[tuple[str, int, bool]]], module_level_only: bool) -> list[list[str]]:
    """Every import circle (as one path through it per strongly connected group of modules)."""
    succ = {m: sorted({t for t, _, top in es if t in edges and t != m and (top or not module_level_only)})
            for m, es in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return found


def violations(root: Path = PACKAGE) -> list[str]:
    """Every import that points the wrong way, as ``module:line -> imported (floor -> floor)``."""
    out = []
    for name, es in graph(root).items():
        for target, line, _ in es:
            if target == "npoptim" and name != "npoptim":
                out.append(f"{name}:{line} -> npoptim (the package top; import the module that defines the name)")
            elif target != "npoptim" and floor(target) not in ALLOWED[floor(name)]:
                out.append(f"{name}:{line} -> {target} ({floor(name)} may not import {floor(target)})")
    return out


def test_every_module_has_a_floor():
    assert all(floor(name) in ALLOWED for name in modules())


def test_no_import_circle():
    edges = graph()
    assert cycles(edges, module_level_only=True) == []
    assert cycles(edges, module_level_only=False) == []  # not even through imports inside functions


def test_imports_point_down():
    assert violations() == []


def test_argparse_only_under_cli():
    mods = modules()
    users = sorted(n for n, p in mods.items() if any(t == "argparse" for t, _, _ in imports(n, p, set(mods))))
    assert users and all(n == "npoptim.cli" or n.startswith("npoptim.cli.") for n in users), users


def test_sweeps_engine_and_problems_never_reach_up():
    for name, es in graph().items():
        if floor(name) in ("sweeps", "engine", "problems"):
            assert not [t for t, _, _ in es if floor(t) in ("experiments", "report", "cli")], name


def test_no_module_over_500_lines():
    sizes = {n: len(p.read_text(encoding="utf-8").splitlines()) for n, p in modules().items()}
    over = {n: s for n, s in sizes.items() if s > OVERSIZE.get(n, MAX_LINES)}
    assert over == {}


@pytest.mark.parametrize(
    ("where", "source", "expect"),
    [
        ("sweeps/bad.py", "from ..experiments import training\n", "sweeps may not import experiments"),
        ("engine/bad.py", "def f():\n    from ..cli import main\n", "engine may not import cli"),
        ("problems/bad.py", "from npoptim.report import plotting\n", "problems may not import report"),
    ],
)
def test_the_checks_catch_a_violation(tmp_path, where, source, expect):
    """A copy of the package with one bad import added fails the direction check, naming it."""
    import shutil

    root = tmp_path / "npoptim"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / where).write_text(source, encoding="utf-8")
    found = violations(root)
    assert any(expect in v for v in found), found


def test_the_cycle_check_catches_a_circle():
    edges = {"a": [("b", 1, True)], "b": [("c", 1, False)], "c": [("a", 1, True)], "d": [("a", 1, True)]}
    assert cycles(edges, module_level_only=False) == [["a", "b", "c"]]
    assert cycles(edges, module_level_only=True) == []
