"""The shape of the code: packages import only from the layers below them, and no modules import each other (also
through function-level imports), read from the sources themselves."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lowest first; a package may import from itself and from packages of a lower rank only
RANK = {"frontend": 0, "boards": 1, "fpga": 2, "hls": 3, "rtl": 3, "edge": 4}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in RANK:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each project module -> the project modules it imports anywhere in its body (top level or in a function)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(resolve(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update(resolve(f"{node.module}.{alias.name}") for alias in node.names)
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports of a package at the same rank or above (hls and rtl are siblings: neither imports the other)."""
    return sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                  if m.split(".")[0] != t.split(".")[0] and RANK[t.split(".")[0]] >= RANK[m.split(".")[0]])


def test_no_upward_imports() -> None:
    graph = _imports(_modules())
    assert len(graph) > 60 and graph["edge.cli"]  # the walk found the code and its imports
    assert not _upward(graph)


def test_no_import_cycles() -> None:
    assert not _cycles(_imports(_modules()))


def test_the_checks_catch_what_they_look_for() -> None:
    """The checks on a made-up graph: an upward import and a two-module cycle are both seen."""
    graph = {"fpga.a": {"edge.b", "frontend.c"}, "edge.b": {"fpga.a"}, "frontend.c": set(), "hls.d": {"rtl.e"},
             "rtl.e": set()}
    assert _cycles(graph) == [["edge.b", "fpga.a"]]
    assert _upward(graph) == ["fpga.a -> edge.b", "hls.d -> rtl.e"]
