"""Loading components from modules on a search path: ``safeimport`` and ``Loader``
(circuits' ``circuits.core.utils.safeimport`` and ``circuits.core.loader.Loader``)."""

from __future__ import annotations

import logging
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from netcomp import Event, Loader, Manager
from netcomp.core.utils import safeimport
from netcomp.testing import fire_and_flush, running


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory on ``sys.path`` and a module name nobody has imported; both are
    forgotten afterwards."""
    name = f"netcomp_test_{uuid.uuid4().hex}"
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path, name
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[module]


def write(directory: Path, name: str, source: str) -> None:
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    cached = directory / "__pycache__"
    for pyc in cached.glob(f"{name}.*.pyc") if cached.is_dir() else ():
        pyc.unlink()


APP = """
    from netcomp import Component

    HELPER = 1

    class Greeter(Component):
        def init(self, greeting="Hello"):
            self.greeting = greeting

        def greet(self, who):
            return f"{self.greeting} {who}!"

    class Second(Component):
        pass
"""


def test_safeimport_imports_then_reloads(modules: tuple[Path, str]) -> None:
    directory, name = modules
    write(directory, name, "def foo():\n    return 'one'\n")
    first = safeimport(name)
    assert isinstance(first, ModuleType) and first.foo() == "one"
    write(directory, name, "def foo():\n    return 'two'\n")
    again = safeimport(name)
    assert again is first and again.foo() == "two"  # reloaded in place


def test_a_failed_import_returns_none_leaves_no_module_and_is_logged(
    modules: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    directory, name = modules
    write(directory, f"{name}_dep", "X = 1\n")
    write(directory, name, f"import {name}_dep\nraise RuntimeError('broken module')\n")
    assert safeimport(name) is None
    assert name not in sys.modules and f"{name}_dep" not in sys.modules  # as before
    records = [r for r in caplog.records if r.name == "netcomp"]
    assert len(records) == 1 and records[0].levelno == logging.ERROR
    assert name in records[0].getMessage()
    assert records[0].exc_info is not None and "broken module" in str(records[0].exc_info[1])


def test_a_failed_reload_keeps_the_module_it_had(
    modules: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    directory, name = modules
    write(directory, name, "def foo():\n    return 'fine'\n")
    module = safeimport(name)
    assert module is not None
    write(directory, name, "def foo();\n")  # a syntax error
    assert safeimport(name) is None
    assert sys.modules[name] is module and module.foo() == "fine"
    assert any("SyntaxError" in repr(r.exc_info) for r in caplog.records)


def test_loader_loads_and_registers_the_first_component(modules: tuple[Path, str]) -> None:
    directory, name = modules
    write(directory, name, APP)
    manager = Manager()
    loader = Loader()
    manager += loader
    value = fire_and_flush(manager, Event.create("load", name), "loader")
    greeter = value.value
    assert type(greeter).__name__ == "Greeter"  # the first defined, not imported Component
    assert greeter.parent is loader
    assert fire_and_flush(manager, Event.create("greet", "you")).value == "Hello you!"


def test_loader_arguments_and_no_auto_register(modules: tuple[Path, str]) -> None:
    directory, name = modules
    write(directory, name, APP)
    loader = Loader(auto_register=False, init_kwargs={"greeting": "Hi"}, paths=[str(directory)])
    greeter = loader.load(name)
    assert greeter is not None and greeter.parent is None
    assert greeter.greeting == "Hi"  # type: ignore[attr-defined]
    assert sys.path[0] == str(directory)  # not added twice
    assert sys.path.count(str(directory)) == 1


def test_loader_from_another_thread_while_running(modules: tuple[Path, str]) -> None:
    directory, name = modules
    write(directory, name, APP)
    manager = Manager()
    loader = Loader(paths=[str(directory)])
    manager += loader
    with running(manager) as recorder:
        greeter = loader.load(name)  # circuits' tests call it directly, off the loop
        recorder.wait_for("registered", predicate=lambda e: e.args[0] is greeter)
        value = manager.fire(Event.create("greet", "there"))
        recorder.wait_for("greet")
        assert value.value == "Hello there!"


def test_loader_of_a_module_without_components(
    modules: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    directory, name = modules
    write(directory, name, "from netcomp import Component\nVALUE = Component\n")
    assert Loader().load(name) is None
    assert "defines no component" in caplog.text
    assert Loader().load(f"{name}_missing") is None
