"""The Debugger: every event, the unhandled ones flagged, every handler error with its
traceback; to stderr by default, or to a logger."""

from __future__ import annotations

import logging

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
        f"{loud!r} (unhandled: no handler for 'hello' on 'loud')"  # nothing handles hello
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
