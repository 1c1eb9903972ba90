"""Layers use each other only through public names (docs/architecture.md, "Layers").

Checked on the source (``ast``) and on the classes:
* no module of ``net``, ``web``, ``broker`` or ``tools`` imports a private module (``_x``)
  of another layer;
* no attribute access ``obj._name`` in ``net`` or ``web`` names an underscore attribute that
  only another layer defines (``event._pending``, ``loop._timers``, ``conn._watch`` from
  web, ...);
* no class of ``net`` or ``web`` overrides an underscore method or attribute of a base
  class from another layer (a private hook is private);
* no function in ``src/`` is longer than 60 lines, except the dispatch hot path, which says
  why in its docstring;
* no import cycle inside ``core``, ``web`` or ``tools`` (imports inside functions and under
  ``TYPE_CHECKING`` count).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections import defaultdict
from pathlib import Path

import pytest

import netcomp

PACKAGE = Path(netcomp.__file__).parent
LAYERS = ("core", "net", "web", "broker", "tools")
#: Functions allowed past 60 lines, with the reason each gives in its own docstring.
LONG_FUNCTIONS = {"netcomp.core._dispatch.Dispatch.dispatch_batch"}
MAX_LINES = 60


def layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


def layer_of_module(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def defined_names(layer: str) -> set[str]:
    """Underscore names a layer defines: functions, classes, assignments, slots."""
    names: set[str] = set()
    for path in layer_files(layer):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets)
                and isinstance(node.value, (ast.Tuple, ast.List))
            ):
                names.update(e.value for e in node.value.elts if isinstance(e, ast.Constant))
    return {n for n in names if private(n)}


DEFINED = {layer: defined_names(layer) for layer in LAYERS}


def resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")[: -node.level]
    return ".".join(base + ([node.module] if node.module else []))


@pytest.mark.parametrize("layer", ["net", "web", "broker", "tools"])
def test_no_import_of_another_layers_private_module(layer: str) -> None:
    bad = []
    for path in layer_files(layer):
        module = module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = resolve(module, node)
                other = layer_of_module(target)
                if other and other != layer and any(private(p) for p in target.split(".")):
                    bad.append(f"{path.name}:{node.lineno} imports {target}")
    assert not bad, bad


@pytest.mark.parametrize("layer", ["net", "web", "broker", "tools"])
def test_no_access_to_private_names_of_another_layer(layer: str) -> None:
    others = set().union(*(DEFINED[o] for o in LAYERS if o != layer))
    bad = []
    for path in layer_files(layer):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and private(node.attr)
                and node.attr in others
                and node.attr not in DEFINED[layer]
            ):
                bad.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert not bad, bad


@pytest.mark.parametrize("layer", ["net", "web", "broker", "tools"])
def test_no_override_of_another_layers_private_members(layer: str) -> None:
    bad = []
    for path in layer_files(layer):
        module = importlib.import_module(module_name(path))
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            for attr, member in vars(cls).items():
                if not private(attr) or not (
                    inspect.isfunction(member) or isinstance(member, property)
                ):
                    continue  # data a base's machinery sets (``_handler_specs``) is not a hook
                for base in cls.__mro__[1:]:
                    base_layer = layer_of_module(base.__module__)
                    if base_layer and base_layer != layer and attr in vars(base):
                        bad.append(f"{cls.__qualname__}.{attr} overrides {base.__qualname__}")
    assert not bad, bad


def test_no_function_is_longer_than_sixty_lines_but_the_hot_path() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)

        def visit(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}.{child.name}"
                    size = (child.end_lineno or child.lineno) - child.lineno + 1
                    if size > MAX_LINES and name not in LONG_FUNCTIONS:
                        long.append(f"{name}: {size} lines")
                    visit(child, name)
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}.{child.name}")

        visit(ast.parse(path.read_text()), module)
    assert not long, long


def test_the_long_hot_path_says_why() -> None:
    from netcomp.core._dispatch import Dispatch

    doc = (inspect.getdoc(Dispatch.dispatch_batch) or "").lower()
    assert "hot path" in doc and "measured" in doc


def import_graph(layer: str) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in layer_files(layer):
        module = module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = resolve(module, node)
                if node.module is None:
                    targets = [f"{target}.{a.name}" for a in node.names]
                else:
                    targets = [target]
                for t in targets:
                    if t.startswith(f"netcomp.{layer}.") and t != module:
                        graph[module].add(t)
    return graph


@pytest.mark.parametrize("layer", ["core", "web", "tools"])
def test_no_import_cycles_inside_the_layer(layer: str) -> None:
    graph = import_graph(layer)
    cycles = []

    def visit(node: str, path: list[str], done: set[str]) -> None:
        if node in path:
            cycles.append(" -> ".join([*path[path.index(node) :], node]))
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node], done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        visit(start, [], done)
    assert not cycles, cycles
