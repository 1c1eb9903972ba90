"""URL dispatch to controllers over real sockets: prefixes, actions, arguments, methods,
helpers, JSON controllers, async and generator actions, late registration."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from _web_support import Client, Gauge, Reply, Site, raw_request, serve, small_buffer_listener
from netcomp import Component, Event, Future, handler, sleep
from netcomp.web import Controller, Dispatcher, JSONController, NotFound, Response, expose
from netcomp.web.events import request as request_event


class Root(Controller):
    channel = "/"

    def index(self) -> str:
        return "root index"

    def hello(self, name: str = "world") -> str:
        return f"hello {name}"

    def add(self, a: str, b: str) -> str:
        return str(int(a) + int(b))

    def echo(self, *args: str, **kwargs: Any) -> dict[str, Any]:
        return {"args": list(args), "kwargs": kwargs, "method": self.request.method}

    @expose("robots.txt")
    def robots(self) -> str:
        self.response.headers["Content-Type"] = "text/plain"
        return "User-agent: *\nDisallow:\n"

    @expose("a-b", "c.d")
    def dashed(self) -> str:
        return f"dashed {self.request.path}"

    def info(self, **query: str) -> str:
        self.response.headers["X-Controller"] = type(self).__name__
        self.response.status = 202
        return f"{self.request.method} {self.request.path} {self.request.query_string}"

    def go(self) -> Response:
        return self.redirect("/hello")

    def moved(self) -> Response:
        return self.redirect("/new", 301)

    def missing(self) -> Response:
        return self.notfound("no such thing")

    def secret(self) -> Response:
        return self.forbidden()

    def teapot(self) -> Response:
        return self.error(418, "short and stout")

    def made(self) -> Response:
        return self.json({"made": True}, status=201)

    async def slow(self, word: str = "x") -> str:
        request = self.request  # read before the first await
        await sleep(0.01)
        return f"slow {word} {request.method}"

    def gen(self) -> Iterator[str]:
        yield "gen"
        yield "erated"

    def _private(self) -> str:
        return "never"


class Api(JSONController):
    channel = "/api"

    def index(self) -> Any:
        return {"api": True}

    def text(self) -> str:
        return "a string"

    def created(self) -> Any:
        self.response.status = 201
        self.response.headers["X-Id"] = "9"
        return [1, 2]

    def raw(self) -> bytes:
        return b"raw bytes"

    def absent(self) -> Any:
        raise NotFound(description="nothing here")

    async def later(self, n: str) -> Any:
        await sleep(0)
        return {"n": int(n)}


class Deep(Controller):
    channel = "/a/b"

    def index(self, *rest: str) -> str:
        return f"deep {list(rest)}"

    def leaf(self) -> str:
        return "deep leaf"


class Shallow(Controller):
    channel = "/a"

    def index(self, *rest: str) -> str:
        return f"shallow {list(rest)}"


class Rest(Controller):
    channel = "/rest"

    def GET(self, item: str | None = None) -> str:
        return f"get {item}"

    def POST(self, **fields: Any) -> Any:
        self.response.status = 201
        return {"posted": fields}

    def DELETE(self, item: str) -> str:
        return f"deleted {item}"

    def count(self) -> str:
        return "count action"


@pytest.fixture(scope="module", params=["events", "direct", "bare"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """The controllers above on virtual time (``site.vt``): nothing times out by itself.
    ``events``: with a catch-all Recorder, every action is an event of its own; ``direct``:
    without one, plain actions run in their request's dispatch (the fast path); ``bare``:
    nobody but the Dispatcher hears ``request`` either, so it answers without the event."""
    with serve(
        Root(),
        Api(),
        Deep(),
        Shallow(),
        Rest(),
        dispatcher=True,
        virtual=True,
        catch_all=request.param == "events",
        record_requests=request.param != "bare",
    ) as running_site:
        yield running_site


def fetch(site: Site, target: str, method: str = "GET", **kwargs: Any) -> Reply:
    with site.client() as client:
        return client.request(method, target, **kwargs)


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/", "root index"),
        ("/index", "root index"),
        ("/hello", "hello world"),
        ("/hello/bob", "hello bob"),
        ("/hello?name=ann", "hello ann"),
        ("/add/2/3", "5"),
        ("/robots.txt", "User-agent: *\nDisallow:\n"),
        ("/a-b", "dashed /a-b"),
        ("/c.d", "dashed /c.d"),
        ("/hello/%C3%A9l%C3%A8ve", "hello \u00e9l\u00e8ve"),
        ("/a", "shallow []"),
        ("/a/x/y", "shallow ['x', 'y']"),
        ("/a/b", "deep []"),
        ("/a/b/", "deep []"),
        ("/a/b/x", "deep ['x']"),
        ("/a/b/leaf", "deep leaf"),
        ("/a/b/c/d", "deep ['c', 'd']"),
    ],
)
def test_routes(site: Site, target: str, body: str) -> None:
    reply = fetch(site, target)
    assert (reply.status, reply.text) == (200, body)


def test_segments_query_and_form_as_arguments(site: Site) -> None:
    reply = fetch(site, "/echo/one/two%20three?x=1&y=2&x=3")
    assert json.loads(reply.body) == {
        "args": ["one", "two three"],
        "kwargs": {"x": ["1", "3"], "y": "2"},
        "method": "GET",
    }
    form = fetch(
        site,
        "/echo/p?q=query",
        "POST",
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        body=b"f=form&g=%C3%A9",
    )
    assert json.loads(form.body) == {
        "args": ["p"],
        "kwargs": {"q": "query", "f": "form", "g": "\u00e9"},
        "method": "POST",
    }


def test_form_fields_fill_named_parameters(site: Site) -> None:
    reply = fetch(
        site,
        "/hello",
        "POST",
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        body=b"name=form",
    )
    assert reply.text == "hello form"


@pytest.mark.parametrize(
    "target",
    [
        "/nothing/here",  # Root.index takes no argument
        "/ab",  # not under /a (segments, not characters), and not a Root action
        "/add/1",  # too few
        "/add/1/2/3",  # too many
        "/hello?bogus=1",  # unknown keyword
        "/_private",
        "/init",  # a Controller method, not an action
        "/redirect",  # a helper, not an action
    ],
)
def test_unknown_paths_and_wrong_arity_are_404(site: Site, target: str) -> None:
    reply = fetch(site, target)
    assert reply.status == 404, reply.text
    assert reply.text != "never"


def test_nothing_registered_is_404() -> None:
    class Only(Controller):
        channel = "/only"

        def index(self) -> str:
            return "only"

    with serve(Only(), dispatcher=True) as site:
        assert fetch(site, "/").status == 404
        assert fetch(site, "/else/where").status == 404
        assert fetch(site, "/only").text == "only"
        assert fetch(site, "/onlyx").status == 404


def test_request_and_response_in_actions(site: Site) -> None:
    reply = fetch(site, "/info?k=v")
    assert (reply.status, reply.text) == (202, "GET /info k=v")
    assert reply.header("x-controller") == "Root"


@pytest.mark.parametrize(
    ("target", "status", "field"),
    [
        ("/go", 303, ("location", "/hello")),
        ("/moved", 301, ("location", "/new")),
        ("/missing", 404, None),
        ("/secret", 403, None),
        ("/teapot", 418, None),
    ],
)
def test_helpers(site: Site, target: str, status: int, field: tuple[str, str] | None) -> None:
    reply = fetch(site, target)
    assert reply.status == status
    if field is not None:
        assert reply.header(field[0]) == field[1]
    if target == "/missing":
        assert b"no such thing" in reply.body
    if target == "/teapot":
        assert b"short and stout" in reply.body
    assert site.recorder.errors == []


def test_json_helper(site: Site) -> None:
    reply = fetch(site, "/made")
    assert (reply.status, json.loads(reply.body)) == (201, {"made": True})
    assert reply.header("content-type") == "application/json"


def test_async_and_generator_actions(site: Site) -> None:
    vt = site.vt
    with site.client() as client:
        for method, target in (("GET", "/slow/hi"), ("POST", "/slow")):
            asleep_until = vt.now + 0.01
            client.send(raw_request(target, "Content-Length: 0", method=method))
            vt.wait_timer(asleep_until)
            vt.advance_to(asleep_until)
            assert client.reply(method).text == f"slow {target[6:] or 'x'} {method}"
        assert client.request(target="/gen").text == "generated"


def test_async_actions_run_concurrently(site: Site) -> None:
    vt = site.vt
    with site.client() as client:
        client.send(
            b"".join(f"GET /slow/{n} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for n in range(5))
        )
        asleep_until = vt.now + 0.01
        vt.wait_timer(asleep_until)
        assert vt.deadlines().count(asleep_until) == 5  # all five asleep at once
        vt.advance_to(asleep_until)
        assert [client.reply().text for _ in range(5)] == [f"slow {n} GET" for n in range(5)]


# ------------------------------------------------------------ by method
def test_method_named_actions(site: Site) -> None:
    assert fetch(site, "/rest").text == "get None"
    assert fetch(site, "/rest/7").text == "get 7"
    posted = fetch(
        site,
        "/rest",
        "POST",
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        body=b"a=1",
    )
    assert (posted.status, json.loads(posted.body)) == (201, {"posted": {"a": "1"}})
    assert fetch(site, "/rest/7", "DELETE").text == "deleted 7"
    assert fetch(site, "/rest", "DELETE").status == 404  # DELETE needs an item
    assert fetch(site, "/rest/count").text == "count action"
    head = fetch(site, "/rest/7", "HEAD")
    assert (head.status, head.body, head.header("content-length")) == (200, b"", "5")


@pytest.mark.parametrize("method", ["PUT", "PATCH", "OPTIONS"])
def test_method_not_allowed_lists_allow(site: Site, method: str) -> None:
    reply = fetch(site, "/rest", method)
    assert reply.status == 405
    allowed = {m.strip() for m in (reply.header("allow") or "").split(",")}
    assert allowed == {"GET", "HEAD", "POST", "DELETE"}  # HEAD: answered by GET


# -------------------------------------------------------- JSONController
def test_json_controller(site: Site) -> None:
    index = fetch(site, "/api")
    assert (index.status, json.loads(index.body)) == (200, {"api": True})
    assert index.header("content-type") == "application/json"
    text = fetch(site, "/api/text")
    assert json.loads(text.body) == "a string"
    assert text.header("content-type") == "application/json"
    created = fetch(site, "/api/created")
    assert (created.status, json.loads(created.body)) == (201, [1, 2])
    assert created.header("x-id") == "9"
    assert fetch(site, "/api/raw").body == b"raw bytes"
    absent = fetch(site, "/api/absent")
    assert absent.status == 404 and b"nothing here" in absent.body
    assert json.loads(fetch(site, "/api/later/5").body) == {"n": 5}


def test_two_controllers_side_by_side(site: Site) -> None:
    assert fetch(site, "/").text == "root index"
    assert json.loads(fetch(site, "/api").body) == {"api": True}
    assert json.loads(fetch(site, "/api/").body) == {"api": True}
    assert fetch(site, "/apix").status == 404  # Root has no "apix" and index takes nothing
    assert fetch(site, "/api/hello").status == 404  # Root's actions are not the Api's


# ------------------------------------------------------- late registration
def test_controller_registered_after_start() -> None:
    class Late(Controller):
        channel = "/late"

        def index(self) -> str:
            return "late index"

        def hello(self) -> str:
            return "late hello"

    with serve(Root(), dispatcher=True) as site:
        assert fetch(site, "/late").status == 404
        late = Late()
        late.register(site.server)  # from this thread: handed to the loop
        site.recorder.wait_for("registered", predicate=lambda e: e.args[0] is late)
        assert fetch(site, "/late").text == "late index"
        assert fetch(site, "/late/hello").text == "late hello"
        assert fetch(site, "/hello").text == "hello world"
        late.unregister()
        site.recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is late)
        assert fetch(site, "/late").status == 404


def test_registered_from_a_handler_on_the_loop() -> None:
    class Later(Controller):
        channel = "/later"

        def index(self) -> str:
            return "later"

    class Installer(Component):
        channel = "web"

        @handler("install")
        def _install(self) -> None:
            Later().register(self.root)

    with serve(Installer(), dispatcher=True) as site:
        site.manager.fire(Event.create("install"), "web")
        site.recorder.wait_for("install")
        assert fetch(site, "/later").text == "later"


def test_own_request_handler_answers_before_the_dispatcher() -> None:
    def first(request: Any, response: Any) -> str | None:
        return "intercepted" if request.path == "/hello" else None

    with serve(first, Root(), dispatcher=True) as site:
        assert fetch(site, "/hello").text == "intercepted"
        assert fetch(site, "/hello/x").text == "hello x"


# ---------------------------------------------------------------- streaming
def test_action_returning_a_generator_is_streamed_with_backpressure() -> None:
    pulled = Gauge()
    chunk = b"z" * 16384

    class Streamer(Controller):
        channel = "/"

        def lines(self) -> Iterator[bytes]:
            def produce() -> Iterator[bytes]:
                for _ in range(1024):  # 16 MiB
                    pulled.enter()
                    yield chunk

            return produce()

    with (
        serve(
            Streamer(),
            dispatcher=True,
            sock=small_buffer_listener(),
            high_water=65536,
            low_water=16384,
            virtual=True,
        ) as site,
        Client(site.port, rcvbuf=32 * 1024) as client,
    ):
        client.send(b"GET /lines HTTP/1.1\r\nHost: t\r\n\r\n")
        pulled.wait(lambda g: g.total >= 1)
        site.vt.settle()  # stalled: idle until the client reads
        assert pulled.total <= 128  # 2 MiB: far above the buffers
        reply = client.reply()
        assert reply.chunked and len(reply.body) == 16 * 1024 * 1024


def test_generator_action_streams_what_it_yields_with_backpressure() -> None:
    pulled = Gauge()
    chunk = b"y" * 16384

    class Streamer(Controller):
        channel = "/"

        def lines(self) -> Iterator[bytes]:
            for _ in range(1024):  # 16 MiB
                pulled.enter()
                yield chunk

    with (
        serve(
            Streamer(),
            dispatcher=True,
            sock=small_buffer_listener(),
            high_water=65536,
            low_water=16384,
            virtual=True,
        ) as site,
        Client(site.port, rcvbuf=32 * 1024) as client,
    ):
        client.send(b"GET /lines HTTP/1.1\r\nHost: t\r\n\r\n")
        pulled.wait(lambda g: g.total >= 1)
        site.vt.settle()  # stalled: idle until the client reads
        assert pulled.total <= 128  # 2 MiB: far above the buffers
        reply = client.reply()
        assert reply.chunked and len(reply.body) == 16 * 1024 * 1024
        assert reply.header("content-type") == "application/octet-stream"


class lookup(Event):
    """lookup(key): answered by Store."""


class Store(Component):
    channel = "store"

    def lookup(self, key: str) -> str:
        if key == "bad":
            raise KeyError(key)
        return key.upper()


def test_generator_action_waits_for_calls_between_pieces() -> None:
    class Page(Controller):
        channel = "/"

        def page(self, *keys: str) -> Iterator[Any]:
            yield "<ul>"
            for key in keys:
                value = yield self.call(lookup(key), "store")  # a Value, as in circuits
                yield "<li>missing</li>" if value.errors else f"<li>{value.value}</li>"
            yield "</ul>"

    with serve(Page(), Store(), dispatcher=True, check_errors=False) as site:
        with site.client() as client:
            reply = client.request(target="/page/a/bad/b")
        errors = site.recorder.errors
    assert [type(e.args[1]) for e in errors] == [KeyError]  # Store's own error, reported
    assert reply.chunked and reply.text == "<ul><li>A</li><li>missing</li><li>B</li></ul>"
    assert reply.header("content-type") == "text/html; charset=utf-8"


def test_generator_action_ends_quietly_when_the_client_leaves() -> None:
    ended = Gauge()

    class Endless(Controller):
        channel = "/"

        def forever(self) -> Iterator[bytes]:
            try:
                while True:
                    yield b"x" * 65536
            finally:
                ended.enter()

    with serve(Endless(), dispatcher=True) as site:
        with site.client() as client:
            client.send(b"GET /forever HTTP/1.1\r\nHost: t\r\n\r\n")
            client.read_raw(b"xxxx")
        ended.wait(lambda g: g.total == 1)
        site.recorder.wait_for("request")
        assert site.recorder.errors == []


# ------------------------------------------- plain actions without an event
class Where(Controller):
    """Says which event is being dispatched while its action runs."""

    channel = "/"

    def index(self) -> str:
        current = self.loop.current
        return current.name if current is not None else "-"

    def boom(self) -> str:
        raise ZeroDivisionError("boom")


@pytest.mark.parametrize(("catch_all", "running"), [(False, "request"), (True, "index")])
def test_plain_action_runs_in_its_request_unless_someone_could_see_its_event(
    catch_all: bool, running: str
) -> None:
    # A catch-all handler (the Recorder) sees every event: the action gets its own then.
    with serve(Where(), dispatcher=True, catch_all=catch_all) as site:
        assert fetch(site, "/").text == running


def test_another_handler_of_the_action_keeps_its_event() -> None:
    seen: list[str] = []

    class Also(Component):
        channel = "/"

        @handler("index")
        def _also(self, event: Event) -> None:
            seen.append(event.request.path)  # type: ignore[attr-defined]

    with serve(Where(), Also(), dispatcher=True, catch_all=False) as site:
        assert fetch(site, "/").text == "index"
    assert seen == ["/"]


class WaitsFor(Component):
    """From ``started``, awaits the next event ``name`` on ``channel``; notes its path."""

    def init(self, name: str, channel: str) -> None:
        self.name = name
        self.on = channel
        self.waiting = threading.Event()
        self.woken = threading.Event()
        self.got: list[str] = []

    def started(self, manager: Any) -> None:
        self.fire(Event.create("watch"))

    async def watch(self) -> None:
        self.waiting.set()  # the waiter is in place before the loop serves anyone
        event = await self.wait(self.name, self.on)
        # A request event carries the Request; an action's event has it as an attribute.
        request = event.args[0] if self.name == "request" else event.request  # type: ignore[attr-defined]
        self.got.append(request.path)
        self.woken.set()


def check_waiter(name: str, channel: str, answer: str, **options: Any) -> None:
    """A waiter alone keeps the event: it wakes with the request, which is answered."""
    waits = WaitsFor(name, channel)
    with serve(Where(), waits, dispatcher=True, catch_all=False, **options) as site:
        assert waits.waiting.wait(5)
        assert fetch(site, "/").text == answer
        assert waits.woken.wait(5)
    assert waits.got == ["/"]


def test_a_waiter_for_the_action_keeps_its_event() -> None:
    check_waiter("index", "/", "index")


def test_a_plain_action_that_raises_is_reported_as_its_event_would_be(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serve(Where(), dispatcher=True, catch_all=False, check_errors=False) as site:
        reply = fetch(site, "/boom")
        error = site.recorder.wait_for("exception")
        assert fetch(site, "/").text == "request"  # the loop goes on, on the fast path
    assert reply.status == 500 and b"boom" not in reply.body
    assert error.args[0] is ZeroDivisionError
    assert error.kwargs["handler"].__qualname__ == "Where.boom"
    fevent = error.kwargs["fevent"]
    assert fevent.name == "boom" and fevent.request.path == "/boom"
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and "500" in logged[0].getMessage()  # once, by the server


def test_a_path_set_by_an_earlier_handler_routes_even_after_its_raw_path_did() -> None:
    class Rewrite(Component):
        channel = "web"

        @handler("request", priority=1)
        def _rewrite(self, request: Any, response: Any) -> None:
            if request.headers.get("x-rewrite"):
                request.path = request.headers["x-rewrite"]

    with (
        serve(Root(), Rewrite(), dispatcher=True, catch_all=False) as site,
        site.client() as client,
    ):
        assert client.request(target="/hello/%C3%A9").text == "hello \u00e9"
        assert client.request(target="/x").status == 404  # routed (and cached) raw
        rewritten = client.request(target="/x", headers=[("X-Rewrite", "/hello/ann")])
        assert rewritten.text == "hello ann"
        assert client.request(target="/x").status == 404


# ------------------------------------- requests without an event (the Dispatcher alone)
@pytest.mark.parametrize(("record_requests", "running"), [(True, "request"), (False, "-")])
def test_a_request_nobody_else_could_see_is_answered_without_its_event(
    record_requests: bool, running: str
) -> None:
    # Where.index names the event being dispatched while it runs: none at all when the
    # Dispatcher answers without the request's event.
    with serve(Where(), dispatcher=True, catch_all=False, record_requests=record_requests) as site:
        assert fetch(site, "/").text == running
        assert fetch(site, "/nowhere/at/all").status == 404
        assert site.recorder.errors == []


def test_another_request_handler_keeps_the_event() -> None:
    seen: list[str] = []

    class Peek(Component):
        channel = "web"

        @handler("request", priority=1)
        def _peek(self, request: Any, response: Any) -> None:
            seen.append(request.path)

    with serve(Where(), Peek(), dispatcher=True, catch_all=False, record_requests=False) as site:
        assert fetch(site, "/").text == "request"
    assert seen == ["/"]


def test_a_waiter_for_request_keeps_the_event() -> None:
    check_waiter("request", "web", "request", record_requests=False)


def test_a_feedback_switch_on_the_request_class_keeps_the_event() -> None:
    done: list[str] = []
    heard = threading.Event()

    class Hears(Component):
        channel = "web"

        @handler("request_complete")
        def _complete(self, done_event: Event, value: Any) -> None:
            done.append(done_event.args[0].path)
            heard.set()

    request_event.complete = True  # as circuits programs do
    try:
        with serve(
            Where(), Hears(), dispatcher=True, catch_all=False, record_requests=False
        ) as site:
            # In the request's dispatch (tracked for its feedback: the action is an
            # event of its own then), not without it ("-").
            assert fetch(site, "/").text == "index"
            assert heard.wait(5)
        assert done == ["/"]
    finally:
        request_event.complete = False


def test_thousands_of_pipelined_requests_answered_at_once_keep_their_order() -> None:
    # Each is answered while the link is still taking requests from the same read: the
    # link goes on in its own loop (no recursion per request, no RecursionError).
    count = 3000
    with (
        serve(Root(), dispatcher=True, catch_all=False, record_requests=False) as site,
        site.client() as client,
    ):
        client.send(
            b"".join(b"GET /hello/n%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(count))
        )
        data = client.read_raw(b"hello n%d" % (count - 1))
        assert site.recorder.errors == []
    bodies = [int(n) for n in re.findall(rb"hello n(\d+)", data)]
    assert bodies == list(range(count))


class Faulty(Dispatcher):
    """A Dispatcher whose routing has a bug."""

    def answer(self, request: Any, response: Any) -> Any:
        if request.path == "/bug":
            raise ZeroDivisionError("routing bug")
        return super().answer(request, response)


def test_an_error_of_the_dispatcher_without_the_event_is_reported_as_with_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serve(
        Faulty(), Where(), catch_all=False, record_requests=False, check_errors=False
    ) as site:
        reply = fetch(site, "/bug")
        error = site.recorder.wait_for("exception")
        assert fetch(site, "/").text == "-"  # the loop goes on, without events
    assert reply.status == 500 and b"routing bug" not in reply.body
    assert error.args[0] is ZeroDivisionError
    assert error.kwargs["handler"].__qualname__ == "Dispatcher._on_request"
    fevent = error.kwargs["fevent"]
    assert fevent.name == "request" and fevent.args[0].path == "/bug"
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and "500" in logged[0].getMessage()  # once, by the server


class Later(Controller):
    """Plain actions that return what the loop must run or wait for."""

    channel = "/"

    def coro(self) -> Any:
        async def later() -> str:
            await sleep(0)
            return "from a coroutine"

        return later()

    def future(self) -> Any:
        future: Future = Future()
        self.loop.call_soon(future.set_result, "from a future")
        return future

    def failing(self) -> Any:
        async def later() -> str:
            raise KeyError("later")

        return later()


@pytest.mark.parametrize("record_requests", [True, False])
def test_a_plain_action_may_return_a_coroutine_or_a_future_without_the_event(
    record_requests: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with serve(
        Later(),
        dispatcher=True,
        catch_all=False,
        record_requests=record_requests,
        check_errors=False,
    ) as site:
        assert fetch(site, "/coro").text == "from a coroutine"
        assert fetch(site, "/future").text == "from a future"
        assert fetch(site, "/failing").status == 500
        error = site.recorder.wait_for("exception")
    assert error.args[0] is KeyError  # reported as with the event: its handler, its event
    assert error.kwargs["handler"].__qualname__ == "Dispatcher._on_request"
    assert error.kwargs["fevent"].name == "request"
    assert error.kwargs["fevent"].args[0].path == "/failing"
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and "500" in logged[0].getMessage()
