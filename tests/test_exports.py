"""The public API is curated and documented, and the layers import downwards only.

Rules checked here (docs/architecture.md, "Layers"):
* every name in ``__all__`` of ``netcomp``, ``netcomp.core`` and ``netcomp.testing`` exists and
  has its own docstring, and so do the public methods of exported classes;
* each private ``netcomp.core`` module lists its public classes and functions in its own
  ``__all__``, and each of those is re-exported by ``netcomp.core`` unless it is a named
  internal helper (``INTERNAL`` below: adding one is a deliberate decision) or a name
  circuits users import from a submodule (``THIN`` below);
* the public submodules of ``netcomp.core`` (``THIN``: where circuits users import
  ``circuits.core.<module>``'s names) define nothing: each name they list is the very
  object a private core module defines;
* ``netcomp`` re-exports exactly the core names;
* ``netcomp.core`` imports only the standard library and itself; ``net`` and ``web`` (when
  they exist) import only lower layers. Imports are read from the source with ``ast``, so
  imports inside functions and ``TYPE_CHECKING`` blocks count too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import netcomp
import netcomp.app
import netcomp.broker
import netcomp.core
import netcomp.net
import netcomp.net.events
import netcomp.net.sockets
import netcomp.testing
import netcomp.tools
import netcomp.web

PACKAGE_DIR = Path(netcomp.__file__).parent
CORE_DIR = PACKAGE_DIR / "core"

#: Public names of private core modules that netcomp.core deliberately does not export.
INTERNAL = {
    "netcomp.core._clock": {"VirtualClock"},  # exported by netcomp.testing
    "netcomp.core._dispatch": {"Dispatch", "Tree", "reset_event"},
    "netcomp.core._gcfreeze": {"freeze_startup", "thaw_startup"},  # run(gc_freeze=) uses them
    "netcomp.core._future": {"Op"},
    "netcomp.core._observe": {"Fanout", "fire_hook", "observed_batch"},
    "netcomp.core._io": {"IO"},
    "netcomp.core._scheduling": {"Scheduling"},
    "netcomp.core._handlers": {"HandlerSpec", "takes_event"},
    "netcomp.core._registry": {"HandlerEntry", "Plan", "Registry"},
    "netcomp.core._tasks": {"Driver", "Task"},
    "netcomp.core._remote": {
        "class_id",
        "defined_event",
        "error_info",
        "field",
        "link_disconnected",
        "link_error",
        "link_ready",
    },
    "netcomp.core._wire": {"MAX_DEPTH", "MalformedMessage", "dumps", "loads", "to_json"},
}

#: The public submodules of netcomp.core and what each names again: circuits' module
#: layout (``circuits.core.manager``, ...). Each is a thin re-export of the one
#: implementation in a private module.
THIN = {
    "components": {"BaseComponent", "Component", "prepare_unregister"},
    "bridge": {"Bridge", "BridgeError", "NotSendable", "RemoteError", "ipc"},
    "debugger": {"Debugger"},
    "events": {
        "Event",
        "exception",
        "prepare_unregister",
        "registered",
        "signal",
        "started",
        "stopped",
        "unregistered",
    },
    "handlers": {"handler"},
    "loader": {"Loader"},
    "manager": {"TIMEOUT", "Manager", "TimeoutError", "current_manager", "sleep"},
    "pollers": {"BasePoller", "EPoll", "KQueue", "Poll", "Poller", "Select", "ensure_poller"},
    "timers": {"Timer"},
    "utils": {"findchannel", "findcmp", "findroot", "findtype", "safeimport"},
    "values": {"Value"},
    "workers": {"Worker", "task"},
}
THIN_MODULES = [importlib.import_module(f"netcomp.core.{name}") for name in sorted(THIN)]
THIN_NAMES = set().union(*THIN.values())

#: Core modules that import modules by name at run time (what they are asked to load).
DYNAMIC_IMPORTS = {"_loader.py"}

#: Which netcomp layers each layer may import (docs/architecture.md: imports point down only).
LAYERS = {
    "core": {"core"},
    "net": {"core", "net"},
    "web": {"core", "net", "web"},
    "broker": {"core", "net", "broker"},
    "tools": {"core", "net", "web", "tools"},
}

PUBLIC_MODULES = [
    netcomp,
    netcomp.core,
    netcomp.testing,
    netcomp.net,
    netcomp.net.events,
    netcomp.net.sockets,
    netcomp.web,
    netcomp.app,
    netcomp.broker,
    netcomp.tools,
    *THIN_MODULES,
]


def own_doc(obj: Any) -> str | None:
    """The docstring written on ``obj`` itself (a class does not inherit its base's)."""
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return doc.strip() if isinstance(doc, str) and doc.strip() else None


def core_modules() -> list[ModuleType]:
    """The private modules of netcomp.core (the thin public ones are checked apart)."""
    return [
        importlib.import_module(f"netcomp.core.{info.name}")
        for info in pkgutil.iter_modules(netcomp.core.__path__)
        if info.name not in THIN
    ]


def source_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.py"))


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, name: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file at ``path``.

    ``name`` is the file's module name (default: from its place under ``src/``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name or module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    # "from . import x": each x may be a submodule.
                    found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
                    continue
                found.append((node.lineno, target))
            else:
                assert node.module is not None
                found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
        ) or (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__"):
            found.append((node.lineno, "<dynamic import>"))
    return found


def is_stdlib(name: str) -> bool:
    return name.partition(".")[0] in sys.stdlib_module_names


# ------------------------------------------------------------------ __all__
@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_names_exist_and_are_documented(module: ModuleType) -> None:
    assert own_doc(module), f"{module.__name__} has no module docstring"
    names = module.__all__
    assert len(names) == len(set(names)), f"duplicates in {module.__name__}.__all__"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{module.__name__}.__all__ lists missing names {missing}"
    undocumented = []
    for name in names:
        obj = getattr(module, name)
        if name == "__version__":
            assert isinstance(obj, str) and obj
            continue
        if not own_doc(obj):
            undocumented.append(name)
    assert not undocumented, f"{module.__name__}: no docstring on {undocumented}"


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_public_methods_of_exported_classes_are_documented(module: ModuleType) -> None:
    undocumented = []
    for name in module.__all__:
        cls = getattr(module, name)
        if not inspect.isclass(cls):
            continue
        for attr, member in vars(cls).items():
            if attr.startswith("_"):
                continue
            if isinstance(member, property):
                target: Any = member.fget
            elif isinstance(member, (staticmethod, classmethod)):
                target = member.__func__
            elif inspect.isfunction(member):
                target = member
            else:
                continue
            if not own_doc(target):
                undocumented.append(f"{name}.{attr}")
    assert not undocumented, f"undocumented public methods: {undocumented}"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from netcomp import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(netcomp.__all__)


def test_netcomp_reexports_the_core_names() -> None:
    assert set(netcomp.__all__) == set(netcomp.core.__all__) | {"__version__"}
    for name in netcomp.core.__all__:
        assert getattr(netcomp, name) is getattr(netcomp.core, name), name


def test_core_exports_are_defined_in_core() -> None:
    for name in netcomp.core.__all__:
        obj = getattr(netcomp.core, name)
        defined_in = getattr(obj, "__module__", "")
        assert defined_in.startswith("netcomp.core."), (name, defined_in)


@pytest.mark.parametrize("module", core_modules(), ids=lambda m: m.__name__)
def test_core_module_public_names_are_exported(module: ModuleType) -> None:
    assert own_doc(module), f"{module.__name__} has no module docstring"
    assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
    defined_here = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == module.__name__
    }
    assert defined_here <= set(module.__all__), (
        f"{module.__name__} defines public {sorted(defined_here - set(module.__all__))} "
        "without listing them in its __all__ (rename them with a leading _ if private)"
    )
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.__all__ lists missing {name}"
    internal = INTERNAL.get(module.__name__, set())
    not_exported = set(module.__all__) - set(netcomp.core.__all__) - internal - THIN_NAMES
    assert not not_exported, (
        f"{module.__name__} has public {sorted(not_exported)} that netcomp.core does not "
        "export; export them or list them in INTERNAL"
    )
    stale = internal & set(netcomp.core.__all__)
    assert not stale, f"{sorted(stale)} are exported; drop them from INTERNAL"


def test_internal_helpers_still_exist() -> None:
    for module_name_, names in INTERNAL.items():
        module = importlib.import_module(module_name_)
        assert names <= set(module.__all__), (module_name_, names - set(module.__all__))


def test_private_modules_are_private() -> None:
    for info in pkgutil.iter_modules(netcomp.core.__path__):
        assert info.name.startswith("_") or info.name in THIN, (
            f"netcomp.core.{info.name} should be private (or a thin module listed in THIN)"
        )


@pytest.mark.parametrize("module", THIN_MODULES, ids=lambda m: m.__name__)
def test_thin_modules_name_the_one_implementation(module: ModuleType) -> None:
    short = module.__name__.rpartition(".")[2]
    assert set(module.__all__) == THIN[short]
    private = [m for m in core_modules()]
    for name in module.__all__:
        obj = getattr(module, name)
        homes = [m.__name__ for m in private if name in m.__all__ and getattr(m, name) is obj]
        assert homes, f"{module.__name__}.{name} is not a private core module's own object"
    source = Path(module.__file__ or "").read_text(encoding="utf-8")
    tree = ast.parse(source)
    defines = [
        node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign))
        and not (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
        )
    ]
    assert not defines, f"{module.__name__} defines things of its own: it only names them"


# ------------------------------------------------------------------ layers
@pytest.mark.parametrize("path", source_files(CORE_DIR), ids=lambda p: p.name)
def test_core_imports_only_stdlib_and_core(path: Path) -> None:
    bad = [
        (line, name)
        for line, name in imported_modules(path)
        if not (is_stdlib(name) or name == "netcomp.core" or name.startswith("netcomp.core."))
        and not (name == "<dynamic import>" and path.name in DYNAMIC_IMPORTS)
    ]
    assert not bad, f"{path.name} imports outside stdlib + netcomp.core: {bad}"


@pytest.mark.parametrize(
    "layer", [name for name in LAYERS if (PACKAGE_DIR / name).is_dir()], ids=str
)
def test_layers_import_downwards_only(layer: str) -> None:
    allowed = LAYERS[layer]
    bad = []
    for path in source_files(PACKAGE_DIR / layer):
        for line, name in imported_modules(path):
            if name == "netcomp":
                bad.append((path.name, line, name))  # the top package pulls in every layer
            elif name.startswith("netcomp."):
                target = name.split(".")[1]
                if target not in allowed:
                    bad.append((path.name, line, name))
    assert not bad, f"netcomp.{layer} imports upwards or sideways: {bad}"


def test_app_imports_only_stdlib_and_core() -> None:
    path = PACKAGE_DIR / "app.py"
    bad = [
        (line, name)
        for line, name in imported_modules(path)
        if not (is_stdlib(name) or name == "netcomp.core" or name.startswith("netcomp.core."))
    ]
    assert not bad, f"netcomp.app imports outside stdlib + netcomp.core: {bad}"


def test_import_checker_sees_relative_and_nested_imports(tmp_path: Path) -> None:
    """The checker itself: a module importing upwards and a third-party name is caught."""
    source = textwrap.dedent(
        """
        import os
        from . import _events
        from .. import web
        from ..net import poller
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import httptools
        def later():
            import numpy.linalg
        """
    )
    path = tmp_path / "mod.py"
    path.write_text(source)
    names = [name for _line, name in imported_modules(path, "netcomp.core._mod")]
    assert names == [
        "os",
        "netcomp.core._events",
        "netcomp.web",
        "netcomp.net",
        "typing",
        "httptools",
        "numpy.linalg",
    ]
    outside = [n for n in names if not (is_stdlib(n) or n.startswith("netcomp.core"))]
    assert outside == ["netcomp.web", "netcomp.net", "httptools", "numpy.linalg"]


def test_importing_core_loads_only_stdlib_modules() -> None:
    code = textwrap.dedent(
        """
        import sys
        before = set(sys.modules)
        import netcomp.core
        new = sorted(set(sys.modules) - before)
        print("\\n".join(new))
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=PACKAGE_DIR.parent,
    )
    loaded = result.stdout.split()
    assert "netcomp.core" in loaded
    foreign = [
        name
        for name in loaded
        if not (is_stdlib(name) or name == "netcomp" or name.startswith("netcomp.core"))
    ]
    assert not foreign, f"importing netcomp.core loaded {foreign}"
