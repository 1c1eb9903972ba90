"""netcomp.web's modules with circuits.web's names: thin re-exports of the one
implementation, and circuits' error names as HTTPError subclasses with circuits'
constructors, which answer their status whether a handler returns or raises them."""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import Any

import pytest

import netcomp.web
from _web_support import get, serve
from netcomp.web import Controller, HTTPError

THIN = {
    "netcomp.web.controllers": ["Controller", "JSONController", "expose"],
    "netcomp.web.events": ["request"],
    "netcomp.web.servers": ["BaseServer", "Server"],
    "netcomp.web.dispatchers": ["Dispatcher", "Static"],
    "netcomp.web.dispatchers.dispatcher": ["Dispatcher"],
    "netcomp.web.dispatchers.static": ["Static"],
}


@pytest.mark.parametrize("name", sorted(THIN))
def test_thin_modules_re_export_netcomp_web(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__ and "circuits" in module.__doc__
    assert sorted(module.__all__) == sorted(THIN[name])
    for attr in module.__all__:
        assert getattr(module, attr) is getattr(netcomp.web, attr), (name, attr)


def test_circuits_web_exports_the_error_events_names() -> None:
    from netcomp.web import errors

    for name in ("forbidden", "httperror", "notfound", "redirect"):
        assert getattr(netcomp.web, name) is getattr(errors, name)


ERRORS = importlib.import_module("netcomp.web.errors")
EXCEPTIONS = importlib.import_module("netcomp.web.exceptions")


@pytest.mark.parametrize(
    ("make", "status", "family"),
    [
        (lambda: ERRORS.httperror(None, None), 500, None),
        (lambda: ERRORS.httperror(None, None, 418, description="teapot"), 418, None),
        (lambda: ERRORS.forbidden(None, None, description="no"), 403, netcomp.web.Forbidden),
        (lambda: ERRORS.unauthorized(None, None), 401, None),
        (lambda: ERRORS.notfound(None, None), 404, netcomp.web.NotFound),
        (lambda: ERRORS.redirect(None, None, ["/a", "/b"], 301), 301, netcomp.web.Redirect),
        (lambda: EXCEPTIONS.NotFound("gone"), 404, netcomp.web.NotFound),
        (lambda: EXCEPTIONS.Forbidden(), 403, netcomp.web.Forbidden),
        (lambda: EXCEPTIONS.BadRequest(), 400, netcomp.web.BadRequest),
        (lambda: EXCEPTIONS.MethodNotAllowed(["GET", "POST"]), 405, netcomp.web.MethodNotAllowed),
        (lambda: EXCEPTIONS.Redirect("/x", 307), 307, netcomp.web.Redirect),
        (lambda: EXCEPTIONS.Gone(), 410, None),
        (lambda: EXCEPTIONS.ServiceUnavailable(), 503, None),
        (lambda: EXCEPTIONS.NotImplemented(), 501, None),
    ],
)
def test_circuits_error_names_are_http_errors(make: Any, status: int, family: Any) -> None:
    error = make()
    assert isinstance(error, HTTPError)
    assert error.status == error.code == status
    if family is not None:
        assert isinstance(error, family)


def test_circuits_constructors_mean_what_they_meant() -> None:
    assert EXCEPTIONS.NotFound("gone").description == "gone"  # not a status
    assert ERRORS.notfound(None, None, description="gone").description == "gone"
    moved = ERRORS.redirect("req", "res", ["/a", "/b"])
    assert (moved.status, moved.urls, moved.request) == (303, ["/a", "/b"], "req")
    assert ("Location", "/a") in moved.headers
    assert ("Allow", "GET, POST") in EXCEPTIONS.MethodNotAllowed(["POST", "GET"]).headers
    with pytest.raises(ValueError, match="a redirect needs a URL"):
        EXCEPTIONS.Redirect([])
    every = set(EXCEPTIONS.__all__)
    assert {"HTTPException", "NotFound", "Forbidden", "Redirect", "Unauthorized"} <= every
    for name in EXCEPTIONS.__all__:
        cls = getattr(EXCEPTIONS, name)
        assert inspect.isclass(cls) and issubclass(cls, EXCEPTIONS.HTTPException)
        assert cls.__doc__


class Site(Controller):
    def returned(self) -> Any:
        return ERRORS.notfound(self.request, self.response, description="not here")

    def raised(self) -> Any:
        raise EXCEPTIONS.Forbidden("keep out")

    def moved(self) -> Any:
        return ERRORS.redirect(self.request, self.response, "/elsewhere")

    def netcomps(self) -> Any:
        return netcomp.web.NotFound(description="returned, not raised")


def test_an_http_error_answers_when_returned_or_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with serve(Site(), dispatcher=True) as site:
        returned = get(site.port, "/returned")
        assert returned.status == 404 and "not here" in returned.text
        raised = get(site.port, "/raised")
        assert raised.status == 403 and "keep out" in raised.text
        moved = get(site.port, "/moved")
        assert moved.status == 303 and moved.header("location") == "/elsewhere"
        assert get(site.port, "/netcomps").status == 404
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
