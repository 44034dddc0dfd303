"""The package-level import graph of `mailbox_service`: no cycle, and every import points down.

Each top-level package or module under `src/mailbox_service` is one node. Every import counts,
wherever it is written: at the top, inside a function, under `if TYPE_CHECKING:`, relative or
absolute. A lazy or type-only import still ties the two packages together, so it may not be
used to hide a cycle. docs/architecture.md ("Layers") explains the layers declared here.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import mailbox_service

ROOT_PACKAGE = "mailbox_service"

LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("entry", frozenset({"__main__", "asgi", "cli"})),
    ("wiring", frozenset({"wiring"})),
    (
        "domain",
        frozenset(
            {
                "admin",
                "audit",
                "backfill",
                "backup",
                "evidence",
                "ingestion",
                "lifecycle",
                "mailbox",
                "notifications",
                "portal",
                "realtime",
                "senders",
                "webhooks",
            }
        ),
    ),
    ("http", frozenset({"server"})),
    ("platform", frozenset({"auth", "doctypes", "mail", "migrate", "ratelimit"})),
    ("storage", frozenset({"storage"})),
    ("instrumentation", frozenset({"observability"})),
    (
        "foundation",
        frozenset(
            {
                "__init__",
                "clock",
                "cursors",
                "errors",
                "log",
                "paths",
                "periodic",
                "process",
                "settings",
                "types",
                "untrusted",
            }
        ),
    ),
)
"""Top to bottom: a package may import its own layer and the layers below it, never above."""


@dataclass
class ImportGraph:
    """Which top-level unit imports which, with the `file:line` of every such import."""

    edges: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    units: set[str] = field(default_factory=set)

    def add(self, source: str, target: str, where: str) -> None:
        if source != target:
            self.edges.setdefault(source, {}).setdefault(target, []).append(where)

    def where(self, source: str, target: str) -> str:
        places = self.edges[source][target]
        more = f" (+{len(places) - 1} more)" if len(places) > 1 else ""
        return places[0] + more


def _unit_of(relative: Path) -> str:
    """`admin/service.py` -> `admin`; `log.py` -> `log`; the package's own `__init__.py` ->
    `__init__`."""
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _module_name(relative: Path) -> tuple[list[str], bool]:
    """Dotted parts of the module a file defines, and whether it is a package's `__init__`."""
    parts = [ROOT_PACKAGE, *relative.with_suffix("").parts]
    if parts[-1] == "__init__":
        return parts[:-1], True
    return parts, False


def _imported_modules(
    tree: ast.AST, module: list[str], is_package: bool
) -> Iterator[tuple[str, int]]:
    """Every module name an import statement anywhere in `tree` may load, with its line."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module if is_package else module[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            yield name, node.lineno
            # `from mailbox_service import audit` loads the subpackage `audit`.
            for alias in node.names:
                yield f"{name}.{alias.name}", node.lineno


def build_graph(package_dir: Path) -> ImportGraph:
    """The import graph of the package whose directory is `package_dir`."""
    graph = ImportGraph()
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir)
        source = _unit_of(relative)
        graph.units.add(source)
        module, is_package = _module_name(relative)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found: set[tuple[str, int]] = set()
        for name, line in _imported_modules(tree, module, is_package):
            parts = name.split(".")
            if parts[0] != ROOT_PACKAGE or len(parts) < 2:
                continue
            target = parts[1]
            if (package_dir / target).is_dir() or (package_dir / f"{target}.py").is_file():
                found.add((target, line))
        for target, line in sorted(found, key=lambda item: (item[1], item[0])):
            graph.add(source, target, f"{relative.as_posix()}:{line}")
    return graph


def find_cycles(edges: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """One cycle (as a closed path `a, b, ..., a`) for each strongly connected component with
    more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    nodes = sorted(set(edges) | {t for targets in edges.values() for t in targets})
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges.get(target, {})))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return [_cycle_in(component, edges) for component in components]


def _cycle_in(component: list[str], edges: Mapping[str, Mapping[str, object]]) -> list[str]:
    """A shortest closed path through the component's first node (breadth first)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(edges.get(node, {})):
                if target not in members:
                    continue
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")


def describe_cycle(cycle: list[str], graph: ImportGraph) -> str:
    steps = [f"{a} -> {b} ({graph.where(a, b)})" for a, b in itertools.pairwise(cycle)]
    return "cycle: " + " ; ".join(steps)


def describe_cycles(graph: ImportGraph) -> list[str]:
    """For each tangle of packages: one cycle through it, then all its members."""
    described = []
    for cycle in find_cycles(graph.edges):
        members = _component_of(cycle[0], graph.edges)
        line = describe_cycle(cycle, graph)
        if len(members) > len(cycle) - 1:
            line += f"\n    one of several: {len(members)} packages reach each other:"
            line += f" {', '.join(members)}"
            mutual = [
                f"{a} <-> {b}"
                for a, b in itertools.combinations(members, 2)
                if b in graph.edges.get(a, {}) and a in graph.edges.get(b, {})
            ]
            if mutual:
                line += f"\n    importing each other directly: {', '.join(mutual)}"
        described.append(line)
    return described


def _component_of(node: str, edges: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The packages that `node` reaches and that reach `node`."""

    def reach(start: str, forward: bool) -> set[str]:
        seen = {start}
        pending = [start]
        while pending:
            current = pending.pop()
            if forward:
                following = set(edges.get(current, {}))
            else:
                following = {s for s, targets in edges.items() if current in targets}
            pending.extend(following - seen)
            seen |= following
        return seen

    return sorted(reach(node, True) & reach(node, False))


def layer_of() -> dict[str, tuple[int, str]]:
    placed: dict[str, tuple[int, str]] = {}
    for rank, (name, units) in enumerate(LAYERS):
        for unit in units:
            assert unit not in placed, f"{unit} is declared in two layers"
            placed[unit] = (rank, name)
    return placed


def upward_imports(graph: ImportGraph) -> list[str]:
    """Imports from a lower layer into a higher one, as readable lines."""
    placed = layer_of()
    found = []
    for source, targets in sorted(graph.edges.items()):
        for target in sorted(targets):
            if source in placed and target in placed and placed[target][0] < placed[source][0]:
                found.append(
                    f"{source} ({placed[source][1]}) imports {target} ({placed[target][1]}):"
                    f" {graph.where(source, target)}"
                )
    return found


PACKAGE_DIR = Path(mailbox_service.__file__).parent


def test_every_package_is_placed_in_a_layer() -> None:
    graph = build_graph(PACKAGE_DIR)
    unplaced = sorted(graph.units - set(layer_of()))
    assert not unplaced, (
        f"not in any layer of {__name__}.LAYERS: {', '.join(unplaced)}; place each new package"
        " in the layer it belongs to (docs/architecture.md, 'Layers')"
    )
    gone = sorted(set(layer_of()) - graph.units)
    assert not gone, f"in {__name__}.LAYERS but not under src/mailbox_service: {', '.join(gone)}"


def test_no_package_level_import_cycle() -> None:
    graph = build_graph(PACKAGE_DIR)
    cycles = describe_cycles(graph)
    assert not cycles, f"{len(cycles)} import cycle(s) between packages:\n" + "\n".join(cycles)


def test_imports_point_down_the_layers() -> None:
    graph = build_graph(PACKAGE_DIR)
    upward = upward_imports(graph)
    assert not upward, f"{len(upward)} import(s) point up the layers:\n" + "\n".join(upward)


def test_the_graph_sees_lazy_relative_and_type_only_imports(tmp_path: Path) -> None:
    """The checks above can fail: a cycle made only of imports that run late or never."""
    package = tmp_path / ROOT_PACKAGE
    (package / "low").mkdir(parents=True)
    (package / "high").mkdir()
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "high" / "__init__.py").write_text("from . import views\n")
    (package / "high" / "views.py").write_text("from ..low import parts\n")
    (package / "low" / "parts.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from mailbox_service.high.views import View\n"
        "def later():\n"
        "    import mailbox_service.high\n"
    )
    graph = build_graph(package)
    assert graph.edges == {
        "high": {"low": ["high/views.py:1"]},
        "low": {"high": ["low/parts.py:3", "low/parts.py:5"]},
    }
    cycles = find_cycles(graph.edges)
    assert cycles == [["high", "low", "high"]]
    assert describe_cycle(cycles[0], graph) == (
        "cycle: high -> low (high/views.py:1) ; low -> high (low/parts.py:3 (+1 more))"
    )
