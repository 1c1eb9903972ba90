"""Controllers: components whose methods answer the URLs under their channel."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Generator
from datetime import timedelta
from http.cookies import Morsel, SimpleCookie
from types import GeneratorType
from typing import Any, ClassVar, TypeVar

from ..core import BaseComponent, Event
from ._errors import Forbidden, HTTPError, NotFound, Redirect
from ._request import Request
from ._response import Response
from ._tools import expires, serve_download, serve_file

__all__ = ["HTTP_METHODS", "Controller", "Cookies", "JSONController", "expose"]

F = TypeVar("F", bound=Callable[..., Any])

#: Method names that, defined on a controller, answer by HTTP method instead of by path.
HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))


def expose(*names: str) -> Callable[[F], F]:
    """Answer the given path segments (which need not be identifiers) with this method.

    ``@expose("robots.txt")`` makes ``/robots.txt`` under the controller call it.
    """

    def decorate(func: F) -> F:
        func._netcomp_expose = names  # type: ignore[attr-defined]
        return func

    return decorate


class _Signature:
    """What a controller method accepts, to tell a wrong URL (404) from a bug."""

    __slots__ = ("max_args", "min_args", "names", "signature", "var_kw")

    def __init__(self, func: Callable[..., Any]) -> None:
        self.signature = inspect.signature(func)
        params = list(self.signature.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self.min_args = sum(1 for p in positional if p.default is p.empty)
        has_var = any(p.kind is p.VAR_POSITIONAL for p in params)
        self.max_args = 1 << 30 if has_var else len(positional)
        self.var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
        self.names = frozenset(p.name for p in params if p.kind is not p.VAR_POSITIONAL)

    def accepts(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        if not kwargs:
            return self.min_args <= len(args) <= self.max_args
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError:
            return False
        return True

    def mismatch(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """Why these arguments do not fit (for the log line of a 404)."""
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as error:
            return str(error)
        return "they fit"


class Cookies:
    """circuits' ``self.cookie`` in a controller: reads the request's cookies (morsels,
    ``.value``); what is set goes to the response as ``Set-Cookie``. The request's own
    cookies are never sent back (their attributes, ``HttpOnly`` included, stay as set)."""

    __slots__ = ("request", "response")

    def __init__(self, request: Request, response: Response) -> None:
        self.request = request
        self.response = response

    def get(self, name: str, default: Any = None) -> Morsel[str] | Any:
        """The morsel of ``name``: set in this response, else sent by the client."""
        if self.response._cookies is not None and name in self.response._cookies:
            return self.response._cookies[name]
        value = self.request.cookies.get(name)
        if value is None:
            return default
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value
        return jar[name]

    def __getitem__(self, name: str) -> Morsel[str]:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __setitem__(self, name: str, value: Any) -> None:
        self.response.set_cookie(name, str(value))

    def __delitem__(self, name: str) -> None:
        self.response.set_cookie(name, "", max_age=0)


class Controller(BaseComponent):
    """Answers URLs under its ``channel`` (a path prefix such as ``"/"`` or ``"/api"``).

    Every public method defined on a subclass is an action: ``/prefix/name/a/b?x=1`` calls
    ``name("a", "b", x="1")``; ``/prefix`` calls ``index``. Methods named ``GET``,
    ``POST``... answer by HTTP method. While an action runs, ``self.request`` and
    ``self.response`` are its request and response (in an ``async def`` action, read them
    before the first ``await``: another request may run meanwhile).

    An action returns what a response body may be (see :class:`Response`); a generator it
    returns is streamed. A generator *method* (one with ``yield``) streams what it yields
    as ``str``/``bytes``, each piece sent at once and the method resumed only when the
    connection has room; between pieces it may ``yield self.call(...)`` as any circuits
    generator handler does.
    """

    channel: Any = "/"
    _actions: ClassVar[dict[str, str]] = {}  # path segment -> method name
    _methods: ClassVar[frozenset[str]] = frozenset()

    request: Request
    response: Response

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        actions: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            if klass.__module__ == __name__ or not issubclass(klass, Controller):
                continue
            for attr, obj in vars(klass).items():
                if not inspect.isfunction(obj):
                    continue
                exposed = getattr(obj, "_netcomp_expose", None)
                if exposed is not None:
                    for name in exposed:
                        actions[name] = attr
                elif not attr.startswith("_") and attr not in _RESERVED:
                    actions[attr] = attr
        cls._actions = actions
        cls._methods = frozenset(name for name in actions if name in HTTP_METHODS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not (isinstance(self.channel, str) and self.channel.startswith("/")):
            raise ValueError(f"a Controller's channel is a path prefix, got {self.channel!r}")
        self._signatures: dict[str, _Signature] = {}
        #: name -> (the action's handler, its runner) for plain (not ``async def``, not
        #: generator) methods: what the Dispatcher may call without an event of its own.
        self._direct: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {}
        self._channels = (self.channel,)  # what the Dispatcher fires actions on
        for name, attr in self._actions.items():
            method = getattr(self, attr)
            self._signatures[name] = _Signature(method)
            run = self._runner(method)
            action = self._action(run, method)
            self.add_handler(action, name, channel=self.channel)
            if not (inspect.iscoroutinefunction(method) or inspect.isgeneratorfunction(method)):
                self._direct[name] = (action, run)

    def _runner(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """``run(request, response, args, kwargs)``: call ``method`` as the action for
        this request (what its handler does, without the event)."""
        # The base class's _wrap_result returns its argument: then it is not called.
        wrap = None if type(self)._wrap_result is Controller._wrap_result else self._wrap_result
        # A generator function is a circuits-style generator handler whose str/bytes
        # yields are streamed (see _stream_yields); a generator *returned* by a plain
        # method is a body to stream, so it travels inside the response, where the core
        # would otherwise take it for a generator handler.
        yields = inspect.isgeneratorfunction(method)

        def run(
            request: Request, response: Response, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            self.request = request
            self.response = response
            result = method(*args, **kwargs)
            if yields:
                return _stream_yields(result, response)
            if result.__class__ is GeneratorType:
                response.body = result
                return response
            return result if wrap is None else wrap(result)

        return run

    def _action(self, run: Callable[..., Any], method: Callable[..., Any]) -> Callable[..., Any]:
        def action(event: Event, *args: Any, **kwargs: Any) -> Any:
            return run(event.request, event.response, args, kwargs)  # type: ignore[attr-defined]

        action.__qualname__ = getattr(method, "__qualname__", "action")
        return action

    def _wrap_result(self, result: Any) -> Any:
        return result

    def accepts(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether action ``name`` exists and takes these arguments."""
        signature = self._signatures.get(name)
        return signature is not None and signature.accepts(args, kwargs)

    def why_not(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """Why action ``name`` does not take these arguments (``accepts`` was false)."""
        signature = self._signatures.get(name)
        if signature is None:
            return f"{type(self).__name__} has no action {name!r}"
        params = ", ".join(
            str(p.replace(annotation=p.empty)) for p in signature.signature.parameters.values()
        )
        return (
            f"{type(self).__name__}.{name}({params}) cannot take "
            f"{args!r} {kwargs!r}: {signature.mismatch(args, kwargs)}"
        )

    @property
    def methods(self) -> frozenset[str]:
        """HTTP methods this controller answers by method name (``GET``...)."""
        return self._methods

    # ------------------------------------------------------------ helpers
    def redirect(self, location: str, status: int = 303) -> Response:
        """Raise a redirect to ``location`` (``return self.redirect(...)`` reads well)."""
        raise Redirect(location, status)

    def notfound(self, description: str | None = None) -> Response:
        """Raise 404."""
        raise NotFound(description=description)

    def forbidden(self, description: str | None = None) -> Response:
        """Raise 403."""
        raise Forbidden(description=description)

    def error(self, status: int, description: str | None = None) -> Response:
        """Raise ``status`` (an :class:`HTTPError`)."""
        raise HTTPError(status, description)

    # ------------------------------------------------- circuits.web's helpers
    @property
    def cookie(self) -> Cookies:
        """The request's cookies, and the response's to set (circuits' ``self.cookie``)."""
        return Cookies(self.request, self.response)

    @property
    def session(self) -> Any:
        """The request's session (``RuntimeError`` without a Sessions component)."""
        session = self.request.session
        if session is None:
            raise RuntimeError("no session: register a netcomp.web.Sessions on the server")
        return session

    @property
    def uri(self) -> str:
        """The URL of the request being answered."""
        request = self.request
        return f"{request.scheme}://{request.host or 'localhost'}{request.target}"

    def expires(self, secs: float | timedelta = 0, force: bool = False) -> None:
        """Say how long the response may be cached (``netcomp.web.tools.expires``)."""
        expires(self.request, self.response, secs, force)

    def serve_file(
        self,
        path: str | os.PathLike[str],
        type: str | None = None,
        disposition: str | None = None,
        name: str | None = None,
    ) -> Response:
        """Answer with a file (``netcomp.web.tools.serve_file``)."""
        return serve_file(self.request, self.response, path, type, disposition, name)

    def serve_download(self, path: str | os.PathLike[str], name: str | None = None) -> Response:
        """Answer with a file as a download (``netcomp.web.tools.serve_download``)."""
        return serve_download(self.request, self.response, path, name)

    def json(self, data: Any, status: int = 200) -> Response:
        """A JSON response (``return self.json({...})``)."""
        return Response(
            json.dumps(data, separators=(",", ":")).encode(),
            status,
            content_type="application/json",
        )


class JSONController(Controller):
    """A controller whose actions' results are always sent as JSON (``str`` included).

    The status and headers set on ``self.response`` are kept.
    """

    def _wrap_result(self, result: Any) -> Any:
        response = self.response
        if inspect.iscoroutine(result):
            return self._json_later(result, response)
        if result is None or isinstance(result, (Response, bytes)) or inspect.isgenerator(result):
            return result
        return response.json(result)

    async def _json_later(self, coroutine: Any, response: Response) -> Any:
        result = await coroutine
        if result is None or isinstance(result, (Response, bytes)):
            return result
        return response.json(result)


def _stream_yields(gen: Generator[Any, Any, Any], response: Response) -> Generator[Any, Any, None]:
    """Run a generator action as the core runs generator handlers, except that what it
    yields as ``str``/``bytes`` is sent at once as the next piece of a streamed body,
    and it resumes only when the connection has room (backpressure). What it yields for
    the loop (``self.call(...)``, ``self.wait(...)``, a Value, a Future, a bare
    ``yield``) goes to the loop; other values are the handler's results, as in circuits."""
    send: Any = None
    throw: BaseException | None = None
    while True:
        try:
            item = gen.send(send) if throw is None else gen.throw(throw)
        except StopIteration:
            return
        send = throw = None
        if isinstance(item, (str, bytes)):
            if not response.started and "content-type" not in response.headers:
                kind = "text/html; charset=utf-8" if isinstance(item, str) else _OCTETS
                response.headers["Content-Type"] = kind
            try:
                response.write(item)
            except ConnectionError:  # the client left: end the action (its finally runs)
                gen.close()
                return
            yield response.flush()
        else:
            try:
                send = yield item
            except BaseException as error:  # e.g. the error of a call() it waited for
                throw = error


_OCTETS = "application/octet-stream"
_RESERVED = frozenset(name for name in dir(Controller) if not name.startswith("_"))
