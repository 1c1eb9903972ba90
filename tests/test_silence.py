"""Nothing fails silently (docs/architecture.md, "Errors"): failure events nobody takes are
logged once, a call nobody answers raises, errors someone awaits are not logged twice."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from netcomp import (
    BaseComponent,
    Component,
    Debugger,
    Event,
    Manager,
    NotHandled,
    handler,
)
from netcomp.testing import Recorder, fire_and_flush


class hello(Event):
    """hello(name)"""


class go(Event):
    """go()"""


class trouble(Event):
    """trouble(where, why): a failure report, as net's ``error`` is."""

    unhandled_logger = "tests.silence"

    def describe(self) -> str:
        where, why = self.args
        return f"trouble at {where}: {why}"


def _records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


def test_an_unhandled_failure_event_is_logged_once_at_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Manager() + Recorder()  # a catch-all handler does not take it by name
    fire_and_flush(app, trouble("127.0.0.1:9", "refused"))
    records = _records(caplog, "tests.silence")
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, "trouble at 127.0.0.1:9: refused")
    ]


def test_a_failure_event_taken_by_name_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Careful(Component):
        def trouble(self, where: str, why: str) -> None:
            pass

    app = Manager() + Careful()
    fire_and_flush(app, trouble("here", "why"))
    assert _records(caplog, "tests.silence") == []


def test_awaiting_a_call_nobody_handles_raises_not_handled() -> None:
    class Greeter(Component):
        def helo(self, name: str) -> str:  # misspelt
            return f"Hello, {name}!"

    class Caller(BaseComponent):
        @handler("go")
        async def _go(self) -> Any:
            try:
                return await self.call(hello("world"))
            except NotHandled as error:
                return error

    app = Manager() + Greeter() + Caller()
    error = fire_and_flush(app, go()).value
    assert isinstance(error, NotHandled)
    assert str(error) == (
        "no handler took <hello[*] ('world')>: nothing handles 'hello' on channel(s) '*'"
    )


def test_a_call_answered_with_none_by_a_named_handler_is_handled() -> None:
    class Quiet(Component):
        def hello(self, name: str) -> None:
            pass

    class Caller(BaseComponent):
        @handler("go")
        async def _go(self) -> str:
            return repr(await self.call(hello("x")))

    app = Manager() + Quiet() + Caller()
    assert fire_and_flush(app, go()).value == "None"


def test_a_generator_handler_keeps_circuits_shape_for_unhandled_calls() -> None:
    class Caller(BaseComponent):
        @handler("go")
        def _go(self) -> Any:
            value = yield self.call(hello("x"))
            yield (value.handled, value.value)

    app = Manager() + Caller()
    assert fire_and_flush(app, go()).value == (False, None)


def test_an_error_the_caller_catches_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(Component):
        def hello(self, name: str) -> str:
            raise ValueError(f"no greeting for {name}")

    class Caller(BaseComponent):
        @handler("go")
        async def _go(self) -> str:
            try:
                return await self.call(hello("x"))
            except ValueError as error:
                return f"caught: {error}"

    app = Manager() + Failing() + Caller()
    assert fire_and_flush(app, go()).value == "caught: no greeting for x"
    assert _records(caplog, "netcomp") == []


def test_an_error_the_caller_does_not_catch_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(Component):
        def hello(self, name: str) -> str:
            raise ValueError("deep")

    class Caller(BaseComponent):
        @handler("go")
        async def _go(self) -> str:
            return await self.call(hello("x"))

    app = Manager() + Failing() + Caller()
    value = fire_and_flush(app, go())
    assert isinstance(value.exception, ValueError)
    errors = [r for r in _records(caplog, "netcomp") if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "go" in errors[0].getMessage()  # reported where it was not handled: the caller


def test_an_error_nobody_awaits_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(Component):
        def hello(self, name: str) -> str:
            raise ValueError("alone")

    app = Manager() + Failing()
    fire_and_flush(app, hello("x"))
    errors = [r for r in _records(caplog, "netcomp") if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and errors[0].exc_info[1] is not None
    assert str(errors[0].exc_info[1]) == "alone"


def test_the_debugger_writes_to_stderr_and_warns_of_unhandled_events(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    class Greeter(Component):
        def hello(self, name: str) -> str:
            return name

        def boom(self) -> None:
            raise RuntimeError("kaput")

    app = Manager() + Greeter() + Debugger()
    app.flush()
    capsys.readouterr()
    fire_and_flush(app, hello("ok"))
    fire_and_flush(app, Event.create("helo", "typo"))
    fire_and_flush(app, Event.create("boom"))
    err = capsys.readouterr().err.splitlines()
    # circuits' trace, line for line: each event as it is dispatched...
    assert err[0] == "<hello[*] ('ok')>"
    assert err[1] == "<helo[*] ('typo')>"
    assert err[2] == "<boom[*] ()>"
    assert err[3].startswith("<exception[*] (<class 'RuntimeError'>, RuntimeError('kaput')")
    # ... then the error, naming the handler as circuits does, with its traceback.
    assert err[4].startswith(
        "ERROR <handler[*][boom] (Greeter.boom)> (<boom[*] ()>) (<class 'RuntimeError'>): "
        "RuntimeError('kaput')"
    )
    assert "Traceback (most recent call last):" in err
    assert err[-1] == "RuntimeError: kaput"
    # The event nobody handles is a warning on netcomp's logger (stderr when logging is
    # not configured), so it is seen even when the trace goes to a file.
    records = _records(caplog, "netcomp")
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert warnings == ["unhandled: no handler for 'helo' on '*': <helo[*] ('typo')>"]


def test_the_debugger_does_not_flag_notifications(capsys: pytest.CaptureFixture[str]) -> None:
    app = Manager() + Debugger()
    app.flush()  # registered: nobody handles it, and that is normal
    out = capsys.readouterr().err
    assert "<registered[" in out and "unhandled" not in out


def test_run_returns_zero_on_a_stop_without_a_code() -> None:
    class Quick(Component):
        def started(self, manager: Any) -> None:
            self.stop()

    assert Quick().run() == 0


def test_an_error_through_a_chained_value_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(Component):
        def hello(self, name: str) -> str:
            raise ValueError("through a chain")

    class Relay(BaseComponent):
        @handler("go")
        def _go(self) -> Any:
            return self.fire(hello("x"))  # the outer event takes the inner's result

    app = Manager() + Failing() + Relay()
    value = fire_and_flush(app, go())
    assert isinstance(value.exception, ValueError)
    errors = [r for r in _records(caplog, "netcomp") if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "<go[" in errors[0].getMessage() and "hello" in errors[0].getMessage()


def test_an_error_through_a_chain_the_caller_awaits_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(Component):
        def hello(self, name: str) -> str:
            raise ValueError("awaited through a chain")

    class Relay(BaseComponent):
        @handler("relay")
        def _relay(self) -> Any:
            return self.fire(hello("x"))

    class Caller(BaseComponent):
        @handler("go")
        async def _go(self) -> str:
            try:
                return await self.call(Event.create("relay"))
            except ValueError as error:
                return f"caught: {error}"

    app = Manager() + Failing() + Relay() + Caller()
    assert fire_and_flush(app, go()).value == "caught: awaited through a chain"
    assert _records(caplog, "netcomp") == []


def test_importing_netcomp_configures_no_logging() -> None:
    import subprocess
    import sys

    code = (
        "import logging, netcomp, netcomp.net, netcomp.web, netcomp.testing\n"
        "names = ['', 'netcomp', 'netcomp.net', 'netcomp.web', 'netcomp.web.access']\n"
        "print([logging.getLogger(n).handlers for n in names],"
        " logging.getLogger('netcomp').level, logging.getLogger().level)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert out == "[[], [], [], [], []] 0 30\n"


def test_configure_logging_sends_netcomps_lines_to_a_stream() -> None:
    import io

    from netcomp import configure_logging

    stream = io.StringIO()
    logger = logging.getLogger("netcomp")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        configure_logging("warning", stream)
        configure_logging("info", stream)  # again: replaces, does not add a second handler
        logging.getLogger("netcomp.web.access").info("one line")
        logging.getLogger("netcomp.net").debug("not at info")
        assert stream.getvalue().endswith(" INFO    netcomp.web.access: one line\n")
        assert stream.getvalue().count("\n") == 1
        with pytest.raises(ValueError, match="log level must be one of debug, info"):
            configure_logging("loud")
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
