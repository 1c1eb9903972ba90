"""Every public component class shows its real constructor: to ``inspect.signature`` (and
so to help() and IDEs), and to type checkers, where wrong calls are errors."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest

import netcomp
import netcomp.net
import netcomp.testing
import netcomp.web
from netcomp import BaseComponent

MODULES = [netcomp, netcomp.net, netcomp.web, netcomp.testing]
COMPONENTS = sorted(
    {
        getattr(module, name)
        for module in MODULES
        for name in module.__all__
        if inspect.isclass(getattr(module, name))
        and issubclass(getattr(module, name), BaseComponent)
        and getattr(module, name) not in (BaseComponent, netcomp.Component)
    },
    key=lambda cls: cls.__qualname__,
)
#: Classes users subclass, whose own constructor is the subclass's init().
OPEN_ENDED = {netcomp.web.Controller, netcomp.web.JSONController}


@pytest.mark.parametrize("cls", COMPONENTS, ids=lambda c: c.__qualname__)
def test_every_component_class_shows_its_parameters(cls: type) -> None:
    params = inspect.signature(cls).parameters
    catch_all = [
        p.name
        for p in params.values()
        if p.kind is p.VAR_KEYWORD or (p.kind is p.VAR_POSITIONAL and p.name == "args")
    ]
    if cls in OPEN_ENDED:
        return
    assert not catch_all, f"{cls.__qualname__}{inspect.signature(cls)} hides its parameters"
    assert "channel" in params, f"{cls.__qualname__} takes no channel="


def test_the_signatures_users_meet_first() -> None:
    from netcomp.net import Connex, TCPServer
    from netcomp.web import Server

    assert list(inspect.signature(Connex).parameters)[:3] == [
        "destinations",
        "connect_timeout",
        "backoff",
    ]
    assert list(inspect.signature(TCPServer).parameters)[:2] == ["bind", "secure"]
    server = inspect.signature(Server).parameters
    assert server["limits"].kind is inspect.Parameter.KEYWORD_ONLY
    assert str(inspect.signature(netcomp.Timer)).startswith(
        "(interval: 'float | datetime.datetime', event: 'Event'"
    )


WRONG_CALLS = """
    from netcomp import Event, Timer, Worker
    from netcomp.net import Connex, TCPClient, TCPServer, UDPServer
    from netcomp.web import Server, Static

    Connex([("127.0.0.1", 8101)])  # fine
    Connex(("127.0.0.1", 8101))  # E
    TCPServer("x", bogus=1)  # E
    TCPServer(8000, backlog="many")  # E
    TCPClient(connect_timeout="10")  # E
    UDPServer(("127.0.0.1", 0), max_reads=1.5)  # E
    Server(("127.0.0.1", 8000), limits=5)  # E
    Server(("127.0.0.1", 8000), None)  # E
    Static("/srv", prefx="/static")  # E
    Timer("5", Event.create("tick"))  # E
    Worker(proceses=True)  # E
"""


def test_type_checkers_refuse_wrong_constructor_calls(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    source = textwrap.dedent(WRONG_CALLS)
    target = tmp_path / "wrong_calls.py"
    target.write_text(source)
    out, err, _status = api.run(
        [
            str(target),
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--show-column-numbers",
        ]
    )
    flagged = {
        int(line.split(":")[1])
        for line in out.splitlines()
        if line.startswith(str(target)) and ": error:" in line
    }
    expected = {n for n, line in enumerate(source.splitlines(), 1) if line.endswith("# E")}
    assert flagged == expected, out + err
