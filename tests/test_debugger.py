"""The Debugger: every event, the unhandled ones flagged, every handler error with its
traceback; to stderr by default, or to a logger."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from netcomp import Component, Debugger, Event, Manager

DEBUG_LOGGER = "netcomp.debug"


class App(Component):
    def ping(self, n: int) -> int:
        self.fire(Event.create("pong", n))
        return n + 1

    def pong(self, n: int) -> None:
        pass

    def explode(self) -> None:
        raise ValueError("boom")


def _debugger(**options: object) -> Debugger:
    """A Debugger that logs on ``netcomp.debug`` (the tests read it with caplog)."""
    return Debugger(logger=logging.getLogger(DEBUG_LOGGER), **options)  # type: ignore[arg-type]


def _tree(debugger: Debugger) -> Manager:
    manager = Manager()
    manager += App()
    manager += debugger
    return manager


def _messages(caplog: pytest.LogCaptureFixture, name: str = DEBUG_LOGGER) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name]


def test_debugger_logs_every_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=DEBUG_LOGGER)
    manager = _tree(_debugger())
    ping = Event.create("ping", 1)
    value = manager.fire(ping)
    manager.flush()
    messages = _messages(caplog)
    assert repr(ping) in messages
    assert any(m.startswith("<pong[") and "(1)" in m for m in messages)
    assert sum(m.startswith("<registered[") for m in messages) == 2
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == DEBUG_LOGGER)
    # Logged in dispatch order, and the debugger leaves the value alone.
    assert messages.index(repr(ping)) < next(
        i for i, m in enumerate(messages) if m.startswith("<pong[")
    )
    assert value.value == 2


def test_debugger_ignores_events_by_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=DEBUG_LOGGER)
    manager = _tree(_debugger(ignore_events=["pong", "registered"]))
    manager.fire(Event.create("ping", 1))
    manager.flush()
    messages = _messages(caplog)
    assert any(m.startswith("<ping[") for m in messages)
    assert not any(m.startswith(("<pong[", "<registered[")) for m in messages)


def test_debugger_ignores_events_by_channel(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=DEBUG_LOGGER)
    manager = _tree(_debugger(ignore_channels=["quiet"]))
    manager.flush()
    caplog.clear()
    quiet = Event.create("hello", "q")
    loud = Event.create("hello", "l")
    manager.fire(quiet, "quiet")
    manager.fire(loud, "loud")
    manager.flush()
    assert _messages(caplog) == [
        repr(loud),  # the trace, as circuits writes it
        f"unhandled: no handler for 'hello' on 'loud': {loud!r}",  # nothing handles hello
    ]


def test_debugger_logs_handler_errors_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=DEBUG_LOGGER)
    manager = _tree(_debugger())
    manager.fire(Event.create("explode"))
    manager.flush()
    errors = [r for r in caplog.records if r.name == DEBUG_LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    assert "Traceback" in text
    assert "ValueError: boom" in text
    assert "explode" in text  # the handler and the failed event are named
    assert 'raise ValueError("boom")' in text


def test_debugger_without_errors_does_not_log_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=DEBUG_LOGGER)
    manager = _tree(_debugger(errors=False))
    manager.fire(Event.create("explode"))
    manager.flush()
    records = [r for r in caplog.records if r.name == DEBUG_LOGGER]
    assert not [r for r in records if r.levelno >= logging.ERROR]
    assert any(r.getMessage().startswith("<explode[") for r in records)


def test_debugger_without_events_logs_only_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=DEBUG_LOGGER)
    manager = _tree(_debugger(events=False))
    manager.fire(Event.create("ping", 1))
    manager.fire(Event.create("explode"))
    manager.flush()
    records = [r for r in caplog.records if r.name == DEBUG_LOGGER]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR


def test_debugger_uses_a_custom_logger(caplog: pytest.LogCaptureFixture) -> None:
    name = "tests.custom.debugger"
    caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.DEBUG, logger=DEBUG_LOGGER)
    manager = _tree(Debugger(logger=logging.getLogger(name)))
    ping = Event.create("ping", 5)
    manager.fire(ping)
    manager.flush()
    assert repr(ping) in _messages(caplog, name)
    assert _messages(caplog) == []


def test_debugger_respects_the_logger_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=DEBUG_LOGGER)
    manager = _tree(_debugger())
    manager.fire(Event.create("ping", 1))
    manager.fire(Event.create("explode"))
    manager.flush()
    records = [r for r in caplog.records if r.name == DEBUG_LOGGER]
    assert [r.levelno for r in records] == [logging.ERROR]


# ------------------------------------------------------- circuits' options
class DuckLogger:
    """What circuits' tests pass as ``logger=``: only ``debug`` and ``error``."""

    def __init__(self) -> None:
        self.debug_msgs: list[str] = []
        self.error_msgs: list[str] = []

    def debug(self, msg: str) -> None:
        self.debug_msgs.append(msg)

    def error(self, msg: str) -> None:
        self.error_msgs.append(msg)


def test_any_object_with_debug_and_error_is_a_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger = DuckLogger()
    manager = _tree(Debugger(logger=logger))
    manager.flush()
    logger.debug_msgs.clear()
    ping = Event.create("ping", 1)
    manager.fire(ping)
    manager.fire(Event.create("explode"))
    unhandled = Event.create("nobody")
    manager.fire(unhandled)
    manager.flush()
    assert logger.debug_msgs[:3] == [repr(ping), "<explode[*] ()>", repr(unhandled)]
    assert len(logger.error_msgs) == 1
    assert logger.error_msgs[0].startswith(
        "ERROR <handler[*][explode] (App.explode)> (<explode[*] ()>) (<class 'ValueError'>): "
        "ValueError('boom')\nTraceback (most recent call last):"
    )
    # It has no warning(): the unhandled event is reported on netcomp's logger.
    warnings = [r.getMessage() for r in caplog.records if r.name == "netcomp"]
    assert warnings == [f"unhandled: no handler for 'nobody' on '*': {unhandled!r}"]


def test_file_may_be_a_path_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "debug.log"
    path.write_text("before\n")
    debugger = Debugger(file=str(path))
    manager = _tree(debugger)
    manager.flush()
    ping = Event.create("ping", 1)
    manager.fire(ping)
    manager.flush()
    lines = path.read_text().splitlines()
    assert lines[0] == "before"
    assert repr(ping) in lines


def test_prefix_and_trim(capsys: pytest.CaptureFixture[str]) -> None:
    manager = _tree(Debugger(prefix=lambda: "T", trim=13, ignore_events=["registered"]))
    manager.flush()
    manager.fire(Event.create("ping", 123456789))
    manager.flush()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "T: <ping[*] ( ...>"
    debugger = Debugger(prefix="app", file=io.StringIO())
    manager = _tree(debugger)
    manager.flush()
    assert debugger.file is not None
    assert debugger.file.getvalue().startswith("app: <registered[")  # type: ignore[attr-defined]


def test_switches_and_lists_can_change_at_any_time(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    debugger = Debugger(file=out)
    other = Debugger(file=io.StringIO())
    manager = _tree(debugger)
    manager.flush()
    debugger.IgnoreEvents.extend(["ping"])  # circuits' names for the same lists
    assert debugger.ignore_events == ["ping"] and other.ignore_events == []  # its own list
    debugger.IgnoreChannels.append("quiet")
    out.seek(0)
    out.truncate()
    manager.fire(Event.create("ping", 1))
    manager.fire(Event.create("pong", 2), "quiet")
    manager.fire(Event.create("pong", 3), "quiet", "loud")  # not every channel is ignored
    manager.flush()
    # (then the App's ping handler fires pong(1) on "*")
    assert out.getvalue().splitlines() == ["<pong[quiet,loud] (3)>", "<pong[*] (1)>"]
    debugger.events = False
    debugger.errors = False
    out.seek(0)
    out.truncate()
    manager.fire(Event.create("explode"))
    manager.flush()
    assert out.getvalue() == ""
    # Not shown, and not lost either: netcomp's default logging reports the error.
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] != []
    debugger.errors = True
    manager.fire(Event.create("explode"))
    manager.flush()
    assert out.getvalue().startswith("ERROR <handler[*][explode] (App.explode)>")
