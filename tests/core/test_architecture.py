"""The shape docs/architecture.md describes, checked from the source: which app may import which,
and no import cycle between modules, counting imports made inside functions (a cycle that a
function-level import only hides still ties the modules together). Imports under
``if TYPE_CHECKING:`` are for annotations and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: app -> the apps it may import (docs/architecture.md, "Apps and the direction of dependency").
MAY_IMPORT = {
    "supportdesk": set(),
    "cases": {"supportdesk"},
    "sla": {"supportdesk", "cases"},
    # The engineering clocks count in sla's calendars with its arithmetic (escalations/clocks.py).
    "escalations": {"supportdesk", "cases", "sla"},
    "knowledge": {"supportdesk", "cases"},
    "inbound": {"supportdesk", "cases"},
    "incidents": {"supportdesk", "cases", "sla"},
    "metrics": {"supportdesk", "cases", "sla", "escalations", "knowledge"},
    "imports": {"supportdesk", "cases", "sla", "metrics"},
}
#: Modules allowed beyond their app's row, each with the reason.
EXCEPTIONS = {
    # The demo seeds SLA clocks and the metrics rollup (docs/architecture.md).
    "cases.management.commands.load_demo_data": {"sla", "metrics"},
}
#: Cycles that are still there, to be removed (issue 17); each must disappear from this list
#: once it is gone (the test fails on a listed cycle that no longer exists).
KNOWN_CYCLES = [
    frozenset({"escalations.services", "escalations.tasks"}),
    frozenset({"imports.preparing", "imports.services"}),
]


def _modules() -> dict[str, Path]:
    found = {}
    for app in MAY_IMPORT:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in ast.walk(node))
    return skipped


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        candidates = [f"{base}.{alias.name}" for alias in node.names]
        names = [name if name in modules else base for name in candidates]
    resolved = []
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            resolved.append(name)
    return resolved


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped:
                edges[name].update(_targets(name, path, node, modules))
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_every_app_has_a_row():
    """A new app folder (one with an ``apps.py``) needs its row above before it can import anything."""
    folders = {path.parent.name for path in ROOT.glob("*/apps.py")}
    assert folders <= set(MAY_IMPORT), sorted(folders - set(MAY_IMPORT))


def test_each_app_imports_only_the_apps_it_may(graph):
    wrong = []
    for module, targets in graph.items():
        app = module.split(".")[0]
        allowed = MAY_IMPORT[app] | EXCEPTIONS.get(module, set()) | {app}
        wrong += [f"{module} imports {t}" for t in sorted(targets) if t.split(".")[0] not in allowed]
    assert wrong == []


def test_no_module_import_cycle_beyond_the_known_ones(graph):
    cycles = _cycles(graph)
    new = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in cycles]
    assert new == [], "new import cycles"
    assert gone == [], "these cycles are gone: remove them from KNOWN_CYCLES"


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    edges = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}
    assert _cycles(edges) == [frozenset({"a.x", "a.y", "a.z"})]
