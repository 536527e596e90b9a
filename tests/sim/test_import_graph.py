"""The simulator's modules import each other in one direction only (issue 11): `sim/ami.py` and
`sim/simulator.py` used to import each other, one side under TYPE_CHECKING, the other inside a function,
so nothing failed at import time while each reached through the other. Every import counts here: at
module level, inside functions and under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

import cti.sim

PKG = Path(cti.sim.__file__).parent


def _imports(tree: ast.Module, modules: set[str]) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in modules:
                out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {f"cti.sim.{p.stem}": p for p in PKG.glob("*.py") if p.stem != "__init__"}
    names = set(files)
    return {m: _imports(ast.parse(p.read_text(encoding="utf-8")), names) - {m} for m, p in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for dep in sorted(graph.get(m, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_find_cycle_sees_a_cycle_and_a_clean_graph() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_simulator_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "cti.sim.simulator" in graph["cti.sim.runner"]  # the graph is really read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_ami_server_does_not_know_the_simulator() -> None:
    """It gets a narrow driver (cti.sim.ami_actions.AmiDriver), not the Simulator and its controls."""
    graph = import_graph()
    for m in ("cti.sim.ami", "cti.sim.ami_actions", "cti.sim.ami_session"):
        assert "cti.sim.simulator" not in graph[m], m
