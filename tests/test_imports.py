"""No import cycle among ``metahyper`` modules, layers import only downward, and every module
imports on its own.

The graph is built from the source with ``ast``, independently of Python's import machinery:
an edge A -> B for each ``import``/``from ... import`` in A that names module B
(``from metahyper.x import y`` is an edge to ``metahyper.x.y`` when that is a module, else to
``metahyper.x``), wherever it stands: imports inside functions count, because a cycle or an
upward import hidden in a function is still a dependency (it only fails later). Imports under
``if TYPE_CHECKING:`` never run and are left out. ``LAYERS`` is the package's layer order
(docs/architecture.md section 3): a module may import modules of its own layer or lower ones.
The last test imports each module first thing in a fresh interpreter state (a forked child of a
process that has loaded only third-party packages), which fails when a cycle makes a name
unavailable halfway through an import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "metahyper"

# Lowest first. An entry names a module or a subpackage (with everything under it); the root
# package ``metahyper`` (its ``__init__``) matches itself only.
LAYERS = (
    ("foundation", ("metahyper._version", "metahyper.atomic", "metahyper.config", "metahyper.registry",
                    "metahyper.plugins", "metahyper.resources", "metahyper.progress", "metahyper.checkpoint",
                    "metahyper.outdir", "metahyper.ranks", "metahyper.errors", "metahyper.lazy",
                    "metahyper.threads", "metahyper.allocator", "metahyper.installed", "metahyper.safe_yaml",
                    "metahyper.files", "metahyper.interrupts")),
    ("data", ("metahyper.data",)),
    ("models", ("metahyper.models",)),
    ("train", ("metahyper.train",)),
    ("meta", ("metahyper.meta",)),
    ("suite", ("metahyper.suite",)),
    ("eval", ("metahyper.eval",)),
    ("pipeline", ("metahyper.pipeline", "metahyper.exits")),
    ("classify", ("metahyper.classify",)),
    ("lm", ("metahyper.lm",)),
    ("launch", ("metahyper.launch",)),
    ("api", ("metahyper.api", "metahyper.cli", "metahyper")),
)


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(node: ast.AST):
    """Every import statement under ``node`` (functions and classes included), except the body
    of ``if TYPE_CHECKING:`` (its ``else`` runs, so it counts)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif _is_type_checking(child):
            for branch in child.orelse:
                yield from _imports(ast.Module(body=[branch], type_ignores=[]))
        else:
            yield from _imports(child)


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
        for node in _imports(tree):
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


def test_graph_resolves_relative_submodule_function_level_and_type_checking_imports(tmp_path):
    source = textwrap.dedent("""
        from typing import TYPE_CHECKING
        import metahyper.data.stores
        from metahyper.data import rng, ImageStore
        from . import imageops
        if TYPE_CHECKING:
            from metahyper.data.episodes import TaskBatch
        class Later:
            def later(self):
                import metahyper.pipeline.stages
    """)
    known = set(module_files())
    tree = ast.parse(source)
    edges = set().union(*(_targets(n, "metahyper.data.x", False, known) for n in _imports(tree)))
    assert edges == {"metahyper.data.stores", "metahyper.data.rng", "metahyper.data", "metahyper.data.imageops",
                     "metahyper.pipeline.stages"}


def test_no_import_cycles_among_metahyper_modules():
    graph = import_graph()
    assert graph["metahyper.data.stores"] >= {"metahyper.atomic", "metahyper.data.imageops"}  # the graph is real
    assert "metahyper.data.transforms" not in graph["metahyper.data.stores"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def layer_of(module: str) -> int:
    """Index in ``LAYERS`` of ``module``; a KeyError names a module that no layer lists."""
    for index, (_, entries) in enumerate(LAYERS):
        if any(module == e or (e != "metahyper" and module.startswith(e + ".")) for e in entries):
            return index
    raise KeyError(f"{module} is in no layer of tests/test_imports.py LAYERS: add it where it belongs")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every edge from a lower layer to a higher one, as "A (layer) imports B (layer)"."""
    return [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
            for a in sorted(graph) for b in sorted(graph[a]) if layer_of(b) > layer_of(a)]


def test_layer_check_on_a_hand_made_graph():
    graph = {"metahyper.data.loader": {"metahyper.meta.distributed", "metahyper.ranks"},
             "metahyper.meta.distributed": {"metahyper.ranks"}, "metahyper": {"metahyper.cli"},
             "metahyper.cli": {"metahyper"}, "metahyper.ranks": set()}
    assert upward_imports(graph) == ["metahyper.data.loader (data) imports metahyper.meta.distributed (meta)"]
    assert layer_of("metahyper") == layer_of("metahyper.cli") == len(LAYERS) - 1
    assert layer_of("metahyper.data.episodes") < layer_of("metahyper.models.roles") < layer_of("metahyper.meta.maml")


def test_every_module_is_in_a_layer_and_imports_only_downward():
    graph = import_graph()
    for module in graph:
        layer_of(module)
    upward = upward_imports(graph)
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_every_module_imports_in_a_fresh_interpreter():
    modules = sorted(module_files())
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, f"importing the {len(modules)} modules failed:\n{done.stderr[-3000:]}"
