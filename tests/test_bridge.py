"""Bridges: ``ipc`` events handled in another tree (another process) and their answers back.

In this process: two trees joined by two Bridges over a real ``socketpair``, and a Bridge
whose other end is a raw socket the test writes to (malformed, unknown, oversized
messages). Real processes (``start(process=True, link=...)``) run in fresh interpreters:
forking refuses while other threads run, and pytest's process has some.
"""

from __future__ import annotations

import collections
import enum
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from netcomp import (
    Bridge,
    BridgeError,
    Component,
    Event,
    Manager,
    NotHandled,
    NotSendable,
    RemoteError,
    ipc,
)
from netcomp.core._wire import MAX_DEPTH, MalformedMessage, dumps, loads, to_json
from netcomp.testing import Recorder, running

TIMEOUT = 10.0


class hello(Event):
    """hello(who)"""


class boom(Event):
    """boom(): its handler raises"""


class echo(Event):
    """echo(*args, **kwargs): answered with what it got"""


class opaque(Event):
    """opaque(): answered with something that cannot cross"""


class nobody(Event):
    """Nothing handles it."""


class other(Event):
    """Defined here, but not among a strict bridge's events."""


class Answers(Component):
    def hello(self, who: str) -> str:
        return f"hello {who}"

    def boom(self) -> None:
        raise ValueError("bad thing")

    def echo(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [args, kwargs]

    def opaque(self) -> object:
        return object()


# ------------------------------------------------------------------ the wire
SAMPLES = [
    None,
    True,
    0,
    -(2**70),
    1.5,
    "text with \n newline and é",
    b"\x00\xff\n",
    [1, [2, [3]]],
    (1, (2, b"x")),
    (),
    {"a": 1, "b": (2, 3)},
    {1: "int key", (1, 2): "tuple key", b"k": "bytes key"},
    {"$not a tag": 1},
    {1, 2, "three"},
    frozenset({b"a", (1, 2)}),
    {"nested": [{"deep": {"$bytes": "looks like a tag"}}]},
]


@pytest.mark.parametrize(
    "value", SAMPLES, ids=[f"{i}-{type(v).__name__}" for i, v in enumerate(SAMPLES)]
)
def test_data_crosses_with_its_exact_types(value: Any) -> None:
    back = loads(dumps({"op": "x", "v": to_json(value)}))["v"]
    assert back == value
    assert types(back) == types(value)  # tuples stay tuples, bytes stay bytes


def types(value: Any) -> Any:
    """``value``'s shape: each item's exact type, containers in a stable order."""
    if isinstance(value, (list, tuple)):
        return (type(value), [types(item) for item in value])
    if isinstance(value, (set, frozenset)):
        return (type(value), sorted(repr(types(item)) for item in value))
    if isinstance(value, dict):
        pairs = [(repr(types(k)), types(v)) for k, v in value.items()]
        return (dict, sorted(pairs, key=repr))
    return (type(value), value)


def test_a_message_is_one_line_of_json() -> None:
    line = dumps({"op": "x", "v": to_json(("a\nb", b"\n"))})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"op": "x", "v": {"$tuple": ["a\nb", {"$bytes": "Cg=="}]}}


class Colour(enum.IntEnum):
    RED = 1


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (object(), "value is a builtins.object"),
        ([1, {"k": socket.socket}], "value[1]['k'] is a builtins.type"),
        (Colour.RED, "value is a test_bridge.Colour"),
        (Point(1, 2), "value is a test_bridge.Point"),
        (bytearray(b"x"), "value is a builtins.bytearray"),
    ],
)
def test_only_plain_data_is_sent(value: Any, said: str) -> None:
    with pytest.raises(NotSendable) as refused:
        to_json(value)
    assert said in str(refused.value)
    assert isinstance(refused.value, TypeError)


def test_too_deep_or_recursive_data_is_refused() -> None:
    deep: list[Any] = []
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(NotSendable, match="nests deeper"):
        to_json(deep)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(NotSendable, match="nests deeper"):
        to_json(loop)
    line = b'{"v":' + b"[" * (MAX_DEPTH + 10) + b"]" * (MAX_DEPTH + 10) + b"}"
    with pytest.raises(MalformedMessage, match="deeper"):
        loads(line)


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"v": {"$pickle": "gASV"}}',
        b'{"v": {"$bytes": "not base64!"}}',
        b'{"v": {"$bytes": "AA==", "other": 1}}',
        b'{"v": {"$set": [[1]]}}',
        b'{"v": {"$dict": [[[1], 2]]}}',
        b'{"v": {"$dict": [1, 2]}}',
        b'{"v": {"$tuple": 5}}',
    ],
)
def test_what_is_not_a_message_is_malformed(line: bytes) -> None:
    with pytest.raises(MalformedMessage):
        loads(line)


# ------------------------------------------------------------ two trees, one process
@pytest.fixture
def pair() -> Iterator[tuple[Manager, Recorder, Manager, Recorder, Bridge]]:
    """Tree A (empty) and tree B (with Answers), bridged over a socketpair, running."""
    a_sock, b_sock = socket.socketpair()
    a, b = Manager(), Manager()
    bridge = Bridge(a_sock).register(a)
    Bridge(b_sock).register(b)
    Answers().register(b)
    with running(b, check_errors=False) as b_rec, running(a, check_errors=False) as a_rec:
        a_rec.wait_for("ready", TIMEOUT)
        yield a, a_rec, b, b_rec, bridge  # type: ignore[misc]


def test_ipc_runs_the_event_on_the_other_side_and_brings_its_value(pair: Any) -> None:
    a, a_rec, _b, b_rec, _bridge = pair
    value = a.fire(ipc(hello("ada")))
    a_rec.wait_for("ipc", TIMEOUT)
    assert value.value == "hello ada"
    got = b_rec.wait_for("hello", TIMEOUT)
    assert type(got) is hello and got.args == ("ada",) and got.channels == ("*",)


def test_arguments_and_results_keep_their_types(pair: Any) -> None:
    a, a_rec, _b, _b_rec, _bridge = pair
    args = (b"\x00", (1, 2), {1: "a"}, [(), {"x"}])
    value = a.fire(ipc(echo(*args, key=frozenset({b"z"}))))
    a_rec.wait_for("ipc", TIMEOUT)
    assert value.value == [args, {"key": frozenset({b"z"})}]
    assert types(value.value) == types([args, {"key": frozenset({b"z"})}])


class Caller(Component):
    """Awaits ipc calls from a handler, as a program would."""

    async def ask(self, remote: Event) -> Any:
        try:
            return ("ok", await self.call(ipc(remote)))
        except Exception as error:  # the test looks at what was raised
            return ("raised", error)

    def ask_gen(self, remote: Event) -> Any:
        value = yield self.call(ipc(remote))
        yield ("value", value.value, value.handled)  # circuits: what a generator yields


def ask(manager: Manager, recorder: Recorder, event: Event, name: str = "ask") -> Any:
    count = recorder.count(name) + 1
    manager.fire(Event.create(name, event))
    return recorder.wait_for(name, TIMEOUT, count=count).value.value


def test_await_gets_the_result_or_the_remote_error(pair: Any) -> None:
    a, a_rec, _b, b_rec, _bridge = pair
    Caller().register(a)
    a_rec.wait_for("registered", TIMEOUT)
    assert ask(a, a_rec, hello("bob")) == ("ok", "hello bob")
    kind, error = ask(a, a_rec, boom())
    assert kind == "raised" and isinstance(error, RemoteError)
    assert (error.type_name, error.message) == ("ValueError", "bad thing")
    assert 'raise ValueError("bad thing")' in error.remote_traceback
    assert "raise ValueError" in str(error.__cause__)
    kind, error = ask(a, a_rec, nobody())
    assert kind == "raised" and isinstance(error, NotHandled)
    assert "nothing handles 'nobody' there" in str(error)
    kind, error = ask(a, a_rec, hello(object()))
    assert kind == "raised" and isinstance(error, NotSendable)
    assert "args[0] is a builtins.object" in str(error)
    kind, error = ask(a, a_rec, opaque())
    assert kind == "raised" and isinstance(error, RemoteError)
    assert error.type_name == "netcomp.core._wire.NotSendable"
    assert "the result is a builtins.object" in error.message
    assert ask(a, a_rec, hello("gen"), "ask_gen") == ("value", "hello gen", True)
    # the remote error was the caller's: the other side fired exception, and that is all
    assert [e.args[0] for e in b_rec.errors] == [ValueError]


def test_an_error_nobody_awaits_is_logged_once_where_the_call_was_made(
    pair: Any, caplog: pytest.LogCaptureFixture
) -> None:
    a, a_rec, _b, _b_rec, _bridge = pair
    value = a.fire(ipc(boom()))
    a_rec.wait_for("exception", TIMEOUT)
    assert isinstance(value.exception, RemoteError)
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 1, logged
    assert logged[0].exc_info is not None and logged[0].exc_info[1] is value.exception


def test_an_unhandled_remote_event_is_none_for_fire(pair: Any) -> None:
    a, a_rec, _b, _b_rec, _bridge = pair
    value = a.fire(ipc(nobody()))
    a_rec.wait_for("ipc", TIMEOUT)
    assert value.value is None and not value.errors and value.handled is False


def test_ipc_channel_chooses_where_the_event_is_fired(pair: Any) -> None:
    a, a_rec, _b, b_rec, _bridge = pair
    a.fire(ipc(hello("x"), channel="elsewhere"))
    a_rec.wait_for("ipc", TIMEOUT)
    assert b_rec.wait_for("hello", TIMEOUT).channels == ("elsewhere",)


def test_the_link_ends_pending_calls_fail_and_disconnected_fires(pair: Any) -> None:
    a, a_rec, b, b_rec, bridge = pair
    Caller().register(a)
    a_rec.wait_for("registered", TIMEOUT)
    [b_bridge] = [c for c in b.components if isinstance(c, Bridge)]
    b.loop.call_soon_threadsafe(b_bridge.close)
    a_rec.wait_for("disconnected", TIMEOUT)
    b_rec.wait_for("disconnected", TIMEOUT)
    assert not bridge.connected
    kind, error = ask(a, a_rec, hello("late"))
    assert kind == "raised" and isinstance(error, BridgeError)
    assert "is closed" in str(error)


# --------------------------------------------------------- a raw peer over a socket
class Peer:
    """The other end of a Bridge, written to and read by the test (blocking, timeouts)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(TIMEOUT)
        self.sock = sock
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def message(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            assert data, "the bridge closed the link"
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return loads(line)

    def event(self, call_id: int, cls: str, name: str, *args: Any) -> None:
        message = {
            "op": "event",
            "id": call_id,
            "class": cls,
            "name": name,
            "args": to_json(args),
            "kwargs": {},
            "channels": to_json(("*",)),
        }
        self.send(dumps(message))


@pytest.fixture
def peer() -> Iterator[tuple[Manager, Recorder, Peer, Bridge]]:
    ours, theirs = socket.socketpair()
    manager = Manager()
    bridge = Bridge(ours, max_message=4096).register(manager)
    Answers().register(manager)
    with running(manager, check_errors=False) as recorder:
        yield manager, recorder, Peer(theirs), bridge  # type: ignore[misc]
    theirs.close()


HELLO = f"{hello.__module__}:{hello.__qualname__}"


def test_the_bridge_says_hello_then_answers_calls(peer: Any) -> None:
    _manager, recorder, raw, bridge = peer
    first = raw.message()
    assert first["op"] == "hello" and first["version"] == 1 and isinstance(first["pid"], int)
    raw.send(dumps({"op": "hello", "version": 1, "pid": 4242}))
    assert recorder.wait_for("ready", TIMEOUT).args == (bridge,)
    assert bridge.peer_pid == 4242
    raw.event(7, HELLO, "hello", "raw")
    assert raw.message() == {"op": "value", "id": 7, "value": "hello raw", "handled": True}


def refusals(recorder: Recorder, count: int) -> list[str]:
    recorder.wait_for("error", TIMEOUT, count=count)
    return [str(e.args[0]) for e in recorder.events if e.name == "error"]


def test_unknown_classes_are_refused_and_the_loop_goes_on(peer: Any) -> None:
    _manager, recorder, raw, _bridge = peer
    assert raw.message()["op"] == "hello"
    raw.event(1, "netcomp_never_imported.evil:hello", "hello", "x")
    reply = raw.message()
    assert (
        reply["id"] == 1
        and "unknown event class netcomp_never_imported.evil:hello" in (reply["refused"])
    )
    assert "netcomp_never_imported" not in " ".join(sys.modules)  # nothing was imported
    raw.event(2, "os:system", "system", "echo pwned")  # defined, but not an Event
    assert "unknown event class os:system" in raw.message()["refused"]
    raw.send(b"\x80\x04\x95pickle?\n")
    raw.send(b'{"op": "value", "id": 999, "value": 1}\n')
    raw.event(3, HELLO, "hello", "still here")
    assert raw.message() == {"op": "value", "id": 3, "value": "hello still here", "handled": True}
    said = refusals(recorder, 4)
    assert "unknown event class netcomp_never_imported.evil:hello" in said[0]
    assert "os:system" in said[1]
    assert "not a message" in said[2]
    assert "an answer to no call (id 999)" in said[3]
    assert all(isinstance(e.args[0], BridgeError) for e in recorder.events if e.name == "error")


def test_an_ipc_event_does_not_cross(peer: Any) -> None:
    _manager, recorder, raw, _bridge = peer
    raw.message()
    raw.event(1, f"{ipc.__module__}:{ipc.__qualname__}", "ipc", "relay me")
    assert "an ipc event does not cross a bridge" in raw.message()["refused"]
    assert recorder.count("ipc") == 0


def test_a_message_longer_than_max_message_is_not_sent(peer: Any) -> None:
    manager, recorder, raw, bridge = peer
    raw.message()
    value = manager.fire(ipc(hello("x" * 5000)))
    recorder.wait_for("ipc", TIMEOUT)
    assert isinstance(value.exception, NotSendable)
    assert "more than max_message (4096)" in str(value.exception)
    assert bridge.pending == 0 and bridge.connected
    manager.fire(ipc(hello("short")))
    assert raw.message()["args"] == ("short",)  # the first one never went out


def test_a_strict_bridge_rebuilds_only_its_events() -> None:
    ours, theirs = socket.socketpair()
    manager = Manager()
    Bridge(ours, events=[hello]).register(manager)
    Answers().register(manager)
    raw = Peer(theirs)
    with running(manager, check_errors=False) as recorder:
        raw.message()
        raw.event(1, f"{other.__module__}:{other.__qualname__}", "other")
        assert "is not among this bridge's events" in raw.message()["refused"]
        raw.event(2, HELLO, "hello", "allowed")
        assert raw.message()["value"] == "hello allowed"
        assert recorder.count("other") == 0
    theirs.close()


def test_an_event_created_by_name_crosses_by_name(peer: Any) -> None:
    _manager, _recorder, raw, _bridge = peer
    raw.message()
    event_id = f"{Event.__module__}:{Event.__qualname__}"
    raw.event(1, event_id, "hello", "by name")
    assert raw.message()["value"] == "hello by name"


def test_refused_error_events_are_logged_when_nobody_handles_them(
    peer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _manager, recorder, raw, _bridge = peer
    raw.message()
    raw.send(b"garbage\n")
    recorder.wait_for("error", TIMEOUT)
    lines = [r.getMessage() for r in caplog.records if r.name == "netcomp"]
    assert any("error on the bridge on 'bridge': refused a message" in line for line in lines)


def test_a_message_past_max_message_ends_the_link(peer: Any) -> None:
    _manager, recorder, raw, bridge = peer
    raw.message()
    raw.send(b"x" * 5000 + b"\n")  # a whole line too long: refused, the link goes on
    assert "refused a message of 5000 bytes" in refusals(recorder, 1)[0]
    assert bridge.connected
    raw.send(b"y" * 9000)  # no end in sight: the link ends
    recorder.wait_for("disconnected", TIMEOUT)
    assert not bridge.connected
    assert raw.sock.recv(10) == b""


def test_a_peer_that_goes_away_fails_pending_calls(peer: Any) -> None:
    manager, recorder, raw, bridge = peer
    raw.message()
    value = manager.fire(ipc(hello("anyone?")))
    assert raw.message()["op"] == "event"
    raw.sock.close()
    recorder.wait_for("ipc", TIMEOUT)
    assert isinstance(value.exception, BridgeError)
    assert "ended before <hello" in str(value.exception)
    assert "the other end closed the link" in str(value.exception)
    assert bridge.pending == 0


def test_bridge_options_are_checked() -> None:
    with pytest.raises(TypeError, match="connected stream socket"):
        Bridge("not a socket")  # type: ignore[arg-type]
    a, b = socket.socketpair()
    with a, b:
        with pytest.raises(ValueError, match="max_message"):
            Bridge(a, max_message=10)
        with pytest.raises(TypeError, match="Event classes"):
            Bridge(a, events=[int])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="carries an Event"):
        ipc("hello")  # type: ignore[arg-type]


def test_link_needs_a_process() -> None:
    with pytest.raises(ValueError, match=r"start\(process=True, link=\.\.\.\)"):
        Manager().start(link=Manager())


# ------------------------------------------------------------------ real processes
def run_script(source: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``source`` in a fresh interpreter; its stdout is a pipe, so block-buffered."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


# What every process script shares: events, a child that answers, a parent that asks.
COMMON = """
    import os, sys, threading
    from netcomp import (
        BridgeError, Component, Event, Manager, NotHandled, RemoteError, ipc
    )
    from netcomp.testing import running

    class hello(Event): pass
    class boom(Event): pass
    class whoami(Event): pass
    class report(Event): pass

    class Child(Component):
        def hello(self, who):
            return f"hello {who} from {os.getpid()}"

        def boom(self):
            raise ValueError("bad thing")

    class Asker(Component):
        async def ask(self, remote):  # (a first parameter named event gets the Event)
            try:
                return ("ok", await self.call(ipc(remote)))
            except Exception as error:
                return ("raised", type(error).__name__, str(error))
"""

PARENT_ASKS_CHILD = """
    parent = Manager()
    parent += Asker()
    child = Child()
    process, bridge = child.start(process=True, link=parent)
    assert bridge.parent is parent and bridge.peer_pid == process.pid != os.getpid()
    with running(parent, check_errors=False) as recorder:
        assert recorder.wait_for("ready", 10).args == (bridge,)

        def ask(event):
            count = recorder.count("ask") + 1
            parent.fire(Event.create("ask", event))
            return recorder.wait_for("ask", 10, count=count).value.value

        assert ask(hello("ada")) == ("ok", f"hello ada from {process.pid}"), ask(hello("ada"))
        kind, name, text = ask(boom())
        assert (kind, name) == ("raised", "RemoteError"), text
        assert text == f"ValueError: bad thing (in process {process.pid})", text
        kind, name, text = ask(Event.create("nobody"))
        assert name == "NotHandled" and f"no handler in process {process.pid}" in text, text
        child.stop()
        assert child.join(10) == 0
        recorder.wait_for("disconnected", 10)
        kind, name, text = ask(hello("late"))
        assert name == "BridgeError" and "is closed" in text, text
    print("OK", flush=True)
"""


def test_a_parent_calls_into_its_child_and_gets_answers_and_errors() -> None:
    proc = run_script(COMMON + PARENT_ASKS_CHILD)
    assert proc.stdout == "OK\n"
    assert proc.stderr == ""  # every error was awaited: nothing logged, in either process


CHILD_ASKS_PARENT = """
    class Parent(Component):
        def started(self, manager):
            # fork from a handler of the running loop (the main thread, no other thread)
            self.child = Inner()
            self.process, self.bridge = self.child.start(process=True, link=self.root)

        def whoami(self):
            return os.getpid()

        def report(self, text):
            print(text, flush=True)
            self.stop(3)

    class Inner(Component):
        async def started(self, manager):
            pid = await self.call(ipc(whoami()))
            await self.call(ipc(report(f"child {os.getpid()} heard parent {pid}")))

    parent = Parent()
    code = parent.run()
    assert code == 3, code
    # the parent's loop ended, so did the link: the child stopped by itself
    assert parent.child.join(10) == 0
    print(f"parent {os.getpid()} child {parent.process.pid}", flush=True)
"""


def test_a_child_calls_its_parent_from_a_fork_made_by_a_running_loop() -> None:
    proc = run_script(COMMON + CHILD_ASKS_PARENT)
    heard, pids = proc.stdout.splitlines()
    _, parent, _, child = pids.split()
    assert heard == f"child {child} heard parent {parent}"
    assert proc.stderr == ""


UNKNOWN_CLASS = """
    class Parent(Component):
        def whoami(self):
            return os.getpid()

        def report(self, *lines):
            for line in lines:
                print(line, flush=True)
            self.stop()

    class Inner(Component):
        async def started(self, manager):
            class secret(Event):  # defined in the child only, after the fork
                pass

            try:
                await self.call(ipc(secret()))
                said = "sent?!"
            except BridgeError as error:
                said = f"refused: {error}"
            pid = await self.call(ipc(whoami()))  # the link goes on
            await self.call(ipc(report(said, f"then whoami -> {pid}")))

    parent = Parent()
    Inner().start(process=True, link=parent)
    parent.run()
"""


def test_an_event_class_the_other_side_does_not_know_is_refused_and_reported() -> None:
    proc = run_script(COMMON + UNKNOWN_CLASS)
    refused, then = proc.stdout.splitlines()
    assert refused.startswith("refused: process ") and " refused <secret" in refused
    assert "unknown event class __main__:Inner.started.<locals>.secret" in refused
    assert then.startswith("then whoami -> ")
    # the parent had no handler of error: it logged the refusal, once
    assert proc.stderr.count("error on the bridge on 'bridge-") == 1, proc.stderr
    assert "unknown event class __main__:Inner.started.<locals>.secret" in proc.stderr


CHILD_DIES = """
    class Dies(Component):
        def hello(self, who):
            os._exit(9)  # gone without an answer

    parent = Manager()
    parent += Asker()
    child = Dies()
    process, bridge = child.start(process=True, link=parent)
    with running(parent, check_errors=False) as recorder:
        recorder.wait_for("ready", 10)
        parent.fire(Event.create("ask", hello("anyone")))
        kind, name, text = recorder.wait_for("ask", 10).value.value
        assert name == "BridgeError", text
        assert "ended before <hello" in text and "closed the link" in text, text
        recorder.wait_for("disconnected", 10)
        assert child.join(10) == 9
    print("OK", flush=True)
"""


def test_a_child_that_dies_fails_the_calls_waiting_for_it() -> None:
    assert run_script(COMMON + CHILD_DIES).stdout == "OK\n"


PARENT_CLOSES = """
    class Says(Component):
        def stopped(self, manager):
            print(f"child stopped: {manager is self}")  # not flushed: the child's exit does

    parent = Manager()
    child = Says()
    process, bridge = child.start(process=True, link=parent)
    with running(parent, check_errors=False) as recorder:
        recorder.wait_for("ready", 10)
        bridge.unregister()  # the link ends with it: the child stops
        recorder.wait_for("unregistered", 10)
        assert child.join(10) == 0
        assert not bridge.connected
    print("OK", flush=True)
"""


def test_unregistering_the_parents_bridge_stops_the_child() -> None:
    proc = run_script(COMMON + PARENT_CLOSES)
    assert proc.stdout == "child stopped: True\nOK\n"


REFUSED_WITH_THREADS = """
    before = sorted(os.listdir("/proc/self/fd"))
    done = threading.Event()
    threading.Thread(target=done.wait, name="busy-helper", daemon=True).start()
    parent = Manager()
    try:
        Child().start(process=True, link=parent)
    except RuntimeError as error:
        print(error, flush=True)
    finally:
        done.set()
    assert parent.components == [], parent.components  # no bridge was left behind
    assert sorted(os.listdir("/proc/self/fd")) == before  # nor its sockets
"""


def test_start_with_link_still_refuses_to_fork_while_threads_run() -> None:
    out = run_script(COMMON + REFUSED_WITH_THREADS).stdout
    assert out.startswith("start(process=True) forks this process")
    assert "(running: busy-helper)" in out


def test_the_bridge_example_in_docs_circuits_md_runs() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "circuits.md").read_text()
    section = doc.split("## Bridges in more detail", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    out = run_script(code).stdout
    assert re.fullmatch(r"hello ada from \d+\n", out), out
