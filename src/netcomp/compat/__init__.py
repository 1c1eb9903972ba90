"""netcomp.compat: circuits programs run on netcomp, unchanged.

``python -m netcomp.compat app.py [args]`` runs ``app.py`` as ``python app.py [args]``
would, except that ``import circuits`` and ``circuits.*`` give netcomp's modules:
``circuits.X.Y`` *is* ``netcomp.X.Y``, the same module object under both names, so a
program that mixes the two spellings shares one set of classes. :func:`install` does the
same from code, before the program's first circuits import.

Rules:
* The mapping is by name: ``circuits`` is ``netcomp``, ``circuits.a.b`` is
  ``netcomp.a.b``. Nothing is copied or wrapped, so a module netcomp adds later is
  mapped as soon as it exists.
* A circuits module netcomp has no counterpart of raises ``ModuleNotFoundError`` naming
  the circuits module and why (``MISSING``, or the netcomp module that would stand for
  it and does not exist), so ``try: import circuits.x / except ImportError`` works as it
  does for any optional module.
* The real circuits package, if installed, is never imported while the mapping is in
  place; :func:`install` refuses when it was imported already.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import runpy
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["MISSING", "CircuitsFinder", "counterpart", "install", "main", "uninstall"]

SOURCE = "circuits"
TARGET = "netcomp"
GUIDE = "see docs/circuits.md, 'Coming from circuits'"

#: circuits packages and modules netcomp has no counterpart of, with what to do instead.
MISSING: dict[str, str] = {
    "circuits.io": "circuits' file, serial, process and inotify components; use the "
    "standard library from a component (a Worker for blocking calls)",
    "circuits.node": "circuits' remote nodes; for another process on this machine use "
    "start(process=True, link=...) and ipc (netcomp.core.bridge)",
    "circuits.protocols": "circuits' line, HTTP, IRC, STOMP and websocket protocols",
    "circuits.tools": "circuits' tree-inspection helpers (inspect, graph, ...)",
    "circuits.web.client": "circuits.web's HTTP client",
    "circuits.web.sessions": "circuits.web's sessions",
    "circuits.web.tools": "circuits.web's tools (serve_file, check_auth, ...)",
    "circuits.web.websockets": "circuits.web's websockets",
    "circuits.web.wsgi": "circuits.web's WSGI Application and Gateway; "
    "netcomp.web.WSGIGateway serves a WSGI application",
}


def _is_circuits(name: str) -> bool:
    return name == SOURCE or name.startswith(SOURCE + ".")


def counterpart(name: str) -> str:
    """The name of the netcomp module that stands for circuits module ``name``
    (``"circuits.net.events"`` -> ``"netcomp.net.events"``).

    Raises ``ModuleNotFoundError`` for a circuits module listed in :data:`MISSING`, and
    ``ValueError`` for a name outside ``circuits``.
    """
    if not _is_circuits(name):
        raise ValueError(f"{name!r} is not a circuits module name")
    for missing, why in MISSING.items():
        if name == missing or name.startswith(missing + "."):
            raise ModuleNotFoundError(
                f"No module named {name!r}: netcomp has no counterpart of {missing} "
                f"({why}); {GUIDE}",
                name=name,
            )
    return TARGET + name[len(SOURCE) :]


class _Alias(importlib.abc.Loader):
    """Loads a circuits name as the netcomp module it stands for (no new module)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.spec: Any = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system gave the module the alias's spec: netcomp's module keeps its own.
        module.__spec__ = self.spec


class CircuitsFinder(importlib.abc.MetaPathFinder):
    """The ``sys.meta_path`` finder :func:`install` puts first: it finds ``circuits`` and
    ``circuits.*`` as netcomp's modules of the same names, and nothing else."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec loading ``fullname`` as its netcomp counterpart (``None`` outside
        circuits); ``ModuleNotFoundError`` when netcomp has none."""
        if not _is_circuits(fullname):
            return None
        name = counterpart(fullname)
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: netcomp.compat maps it to {name}, which "
                f"this netcomp does not have; {GUIDE}",
                name=fullname,
            )
        package = found.submodule_search_locations is not None
        return importlib.machinery.ModuleSpec(fullname, _Alias(name), is_package=package)


def _finder() -> CircuitsFinder | None:
    for entry in sys.meta_path:
        if isinstance(entry, CircuitsFinder):
            return entry
    return None


def install() -> CircuitsFinder:
    """Map ``circuits`` and ``circuits.*`` imports to netcomp's modules from now on.

    Idempotent; returns the finder. Raises ``RuntimeError`` if the real circuits package
    was imported already (its classes would not be netcomp's).
    """
    finder = _finder()
    if finder is not None:
        return finder
    loaded = sys.modules.get(SOURCE)
    if loaded is not None and not (loaded.__name__ or "").startswith(TARGET):
        raise RuntimeError(
            f"circuits ({getattr(loaded, '__file__', '?')}) is imported already; "
            "call netcomp.compat.install() before the program's first circuits import"
        )
    finder = CircuitsFinder()
    sys.meta_path.insert(0, finder)
    return finder


def uninstall() -> None:
    """Undo :func:`install`: remove the finder and forget the ``circuits`` names it made
    (netcomp's modules stay imported)."""
    finder = _finder()
    if finder is None:
        return
    sys.meta_path.remove(finder)
    for name in [n for n in sys.modules if _is_circuits(n)]:
        module = sys.modules[name]
        if (getattr(module, "__name__", "") or "").startswith(TARGET):
            del sys.modules[name]


USAGE = """\
usage: python -m netcomp.compat PROGRAM.py [ARGS...]
       python -m netcomp.compat -m MODULE [ARGS...]

Runs a circuits program on netcomp: its circuits imports give netcomp's modules."""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m netcomp.compat``: run a program (a path, or ``-m module``) with the
    mapping installed, ``sys.argv`` set as ``python`` would set it. Returns 0 when the
    program returns (its ``sys.exit()`` ends the process as usual); 2 for a usage error."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if (
        not args
        or (args[0] == "-m" and len(args) < 2)
        or (args[0].startswith("-") and args[0] != "-m")
    ):
        print(USAGE, file=sys.stderr)
        return 2
    install()
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return 0
    path = args[0]
    if not os.path.exists(path):
        print(f"python -m netcomp.compat: can't open file {path!r}: no such file", file=sys.stderr)
        return 2
    sys.argv = [path, *args[1:]]
    sys.path[0] = os.path.dirname(os.path.abspath(path))  # as `python PROGRAM.py` sets it
    runpy.run_path(path, run_name="__main__")
    return 0
