"""The package's architecture, checked: layers, cycles, private names, who records the trace,
and module size. See DEVELOPING.md ("The model at a glance") for the picture."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "k8sbook"

#: the layers, bottom first; a module may import its own layer's package and the layers below
LAYERS: dict[str, int] = {
    "core": 0, "api": 1, "client": 2, "storage": 3, "apiserver": 4,
    "controlplane": 5, "node": 5, "addons": 6,
    "cluster": 7, "textbook": 8, "serve": 9, "cli": 10, "__init__": 11,
}
#: the only module that records trace messages
FABRIC = "k8sbook.client.network"
MAX_LINES = 400
SIZE_REASON = "over 400 lines"


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@functools.cache
def source(path: Path) -> str:
    return path.read_text()


@functools.cache
def tree(path: Path) -> ast.Module:
    """The module's syntax tree, parsed once for all the checks (read only)."""
    return ast.parse(source(path))


@functools.cache
def nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of the module's tree (``ast.walk`` order), walked once for all the checks."""
    return tuple(ast.walk(tree(path)))


def imports_of(module: str, path: Path) -> set[str]:
    """Every k8sbook module ``module`` imports (top level or inside functions)."""
    out: set[str] = set()
    for node in nodes(path):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "k8sbook":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "k8sbook":
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level:
            pytest.fail(f"{module}: relative import (use k8sbook.… absolute imports)")
    return {m for m in out if m in MODULES and m != module}


@functools.cache
def import_graph() -> nx.DiGraph:
    """Modules and their k8sbook imports (built when a test first needs it, not at collection:
    every pytest-xdist worker collects this file)."""
    graph = nx.DiGraph()
    for mod, path in MODULES.items():
        graph.add_node(mod)
        for dep in imports_of(mod, path):
            graph.add_edge(mod, dep)
    return graph


def test_layers_point_down() -> None:
    wrong = []
    for a, b in import_graph().edges:
        la, lb = layer_of(a), layer_of(b)
        if la != lb and LAYERS[lb] >= LAYERS[la]:
            wrong.append(f"{a} -> {b}")
    assert wrong == []


def test_no_import_cycles() -> None:
    """Package ``__init__`` modules that re-export their own submodules are not cycles."""
    g = import_graph().copy()
    for a, b in list(g.edges):
        if b.startswith(a + "."):  # a package importing its submodule for a re-export
            g.remove_edge(a, b)
    assert [sorted(c) for c in nx.simple_cycles(g)] == []


def _defined_private_names(path: Path) -> set[str]:
    names = set()
    for node in nodes(path):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if n.startswith("_")}


def test_no_private_names_of_other_modules() -> None:
    """``x._name`` only for names the same module defines; no ``from m import _name``."""
    wrong = []
    for mod, path in MODULES.items():
        own = _defined_private_names(path)
        for node in nodes(path):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("k8sbook"):
                wrong += [f"{mod}: from {node.module} import {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                    not node.attr.startswith("__") and node.attr not in own:
                wrong.append(f"{mod}:{node.lineno}: .{node.attr}")
    assert wrong == []


def test_only_the_fabric_records_trace_messages() -> None:
    wrong = []
    for mod, path in MODULES.items():
        if mod == FABRIC or mod == "k8sbook.core.trace":
            continue
        for node in nodes(path):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("record", "complete"):
                target = ast.unparse(node.func.value)
                if target.endswith("trace"):
                    wrong.append(f"{mod}:{node.lineno}: {ast.unparse(node.func)}")
    assert wrong == []


def test_modules_are_small_or_say_why() -> None:
    wrong = []
    for mod, path in MODULES.items():
        lines = source(path).count("\n")
        doc = ast.get_docstring(tree(path)) or ""
        if lines > MAX_LINES and SIZE_REASON not in doc:
            wrong.append(f"{mod}: {lines} lines")
    assert wrong == []


def test_every_module_says_what_it_mirrors() -> None:
    """Each module's docstring exists (and, by convention, names its upstream package)."""
    assert [m for m, p in MODULES.items() if not ast.get_docstring(tree(p))] == []
