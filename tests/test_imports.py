"""No import cycle among ``metahyper`` modules, and every module imports on its own.

The graph is built from the source with ``ast``, independently of Python's import machinery:
an edge A -> B for each module-level ``import``/``from ... import`` in A that names module B
(``from metahyper.x import y`` is an edge to ``metahyper.x.y`` when that is a module, else to
``metahyper.x``); imports inside functions and under ``if TYPE_CHECKING:`` do not run at import
time and are left out. The second test imports each module first thing in a fresh interpreter
state (a forked child of a process that has loaded only third-party packages), which fails
when a cycle makes a name unavailable halfway through an import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "metahyper"

def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _is_type_checking(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _module_level_imports(body: list[ast.stmt]):
    """Import statements that run when the module is imported (into if/try/with blocks, not
    into functions, classes or ``if TYPE_CHECKING:``)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)) and not _is_type_checking(node):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, block, []):
                    yield from _module_level_imports(child.body if isinstance(child, ast.ExceptHandler) else [child])


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The package modules one import statement of ``module`` loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    base = node.module or ""
    if node.level:
        anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([base] if base else []))
    names = {f"{base}.{alias.name}" for alias in node.names}
    return (names & known) | ({base} if base in known and names - known else set())


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        edges = set()
        for node in _module_level_imports(tree.body):
            edges |= _targets(node, module, path.name == "__init__.py", set(files))
        graph[module] = edges - {module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path A -> ... -> A) per strongly connected component with >1 module
    (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root), on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
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
                        components.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child), on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth-first search)."""
    start = min(component)
    parents, frontier = {start: None}, [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in component {sorted(component)}")


def test_cycle_finder_on_a_hand_made_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}, "g": {"a"}}
    assert sorted(find_cycles(graph)) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_resolves_relative_submodule_and_type_checking_imports(tmp_path):
    source = textwrap.dedent("""
        from typing import TYPE_CHECKING
        import metahyper.data.stores
        from metahyper.data import rng, ImageStore
        from . import imageops
        if TYPE_CHECKING:
            from metahyper.data.episodes import TaskBatch
        def later():
            import metahyper.stages
    """)
    known = set(module_files())
    tree = ast.parse(source)
    edges = set().union(*(_targets(n, "metahyper.data.x", False, known) for n in _module_level_imports(tree.body)))
    assert edges == {"metahyper.data.stores", "metahyper.data.rng", "metahyper.data", "metahyper.data.imageops"}


def test_no_import_cycles_among_metahyper_modules():
    graph = import_graph()
    assert graph["metahyper.data.stores"] >= {"metahyper.atomic", "metahyper.data.imageops"}  # the graph is real
    assert "metahyper.data.transforms" not in graph["metahyper.data.stores"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_every_module_imports_in_a_fresh_interpreter():
    modules = sorted(module_files())
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, f"importing the {len(modules)} modules failed:\n{done.stderr[-3000:]}"
