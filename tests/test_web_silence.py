"""The web server says what went wrong (docs/architecture.md, "Errors"): every 500 is logged
with its traceback, once; a 404 for "nobody answered" and one for "wrong arguments" say why."""

from __future__ import annotations

import logging

import pytest

from _web_support import get, serve
from netcomp.web import Controller


class Root(Controller):
    channel = "/"

    def broken(self) -> str:
        raise ValueError("the handler's bug")

    def odd(self) -> object:
        return object()  # not something a response can be

    def nothing(self) -> None:
        return None

    def items(self, a: str, b: str) -> str:
        return a + b


def _web_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "netcomp.web"]


def test_a_handler_error_is_a_500_logged_once_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serve(Root(), dispatcher=True, check_errors=False) as site:
        reply = get(site.port, "/broken")
    assert reply.status == 500
    assert "the handler's bug" not in reply.text  # not without expose_tracebacks
    records = _web_records(caplog)
    assert [r.levelno for r in records] == [logging.ERROR]
    assert records[0].getMessage() == (
        "GET /broken: 500 Internal Server Error: a handler raised: "
        'ValueError("the handler\'s bug")'
    )
    assert records[0].exc_info is not None and records[0].exc_info[2] is not None
    assert not [r for r in caplog.records if r.name == "netcomp"]  # not twice


def test_an_answer_that_cannot_be_sent_is_a_500_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serve(Root(), dispatcher=True, check_errors=False) as site:
        reply = get(site.port, "/odd")
    assert reply.status == 500
    records = _web_records(caplog)
    assert [r.levelno for r in records] == [logging.ERROR]
    message = records[0].getMessage()
    assert message.startswith("GET /odd: 500 Internal Server Error: the handler's answer ")
    assert records[0].exc_info is not None


def test_handlers_that_answer_nothing_give_404_and_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serve(Root(), dispatcher=True) as site:
        reply = get(site.port, "/nothing")
    assert reply.status == 404
    records = _web_records(caplog)
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (
            logging.WARNING,
            "GET /nothing: no handler answered (they returned None and wrote nothing): "
            "404; return a body, or raise NotFound() for a deliberate 404",
        )
    ]


def test_a_url_missing_an_actions_arguments_is_a_404_with_a_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="netcomp.web")
    with serve(Root(), dispatcher=True) as site:
        reply = get(site.port, "/items")
        assert get(site.port, "/items/x/y").text == "xy"
    assert reply.status == 404
    records = [r for r in _web_records(caplog) if r.levelno == logging.DEBUG]
    assert [r.getMessage() for r in records] == [
        "GET /items: 404, Root.items(a, b) cannot take () {}: missing a required argument: 'a'"
    ]
