"""Handlers: @handler, the ``event`` parameter, binding rules, inheritance, init(),
adding and removing handlers at run time, and signature errors."""

from __future__ import annotations

from typing import Any

import pytest

from netcomp import (
    BaseComponent,
    Component,
    Event,
    HandlerSignatureError,
    Manager,
    NetcompError,
    handler,
)
from netcomp.testing import Recorder, fire_and_flush, running


class ping(Event):
    """Test event."""


class pong(Event):
    """Test event."""


class install(Event):
    """Asks a component to add or remove a handler (on the loop thread)."""


# ------------------------------------------------------------- @handler
def test_handler_names_select_events() -> None:
    seen: list[tuple[str, Any]] = []

    class C(BaseComponent):
        @handler("ping", "pong")
        def both(self, x: Any) -> None:
            seen.append(("both", x))

        @handler("pong")
        def only_pong(self, x: Any) -> None:
            seen.append(("only_pong", x))

    m = Manager()
    m += C()
    fire_and_flush(m, ping(1))
    fire_and_flush(m, pong(2))
    fire_and_flush(m, Event.create("other", 3))
    assert seen == [("both", 1), ("both", 2), ("only_pong", 2)]


def test_handler_without_names_hears_every_event() -> None:
    class C(BaseComponent):
        def init(self) -> None:
            self.names: list[str] = []

        @handler()
        def everything(self, event: Event, *args: Any, **kwargs: Any) -> None:
            self.names.append(event.name)

    m = Manager()
    c = C()
    m += c
    fire_and_flush(m, ping(1))
    fire_and_flush(m, Event.create("custom", a=1))
    assert c.names == ["registered", "ping", "custom"]


def test_handler_rejects_bad_names() -> None:
    with pytest.raises(TypeError, match="non-empty strings"):
        handler("")
    with pytest.raises(TypeError, match="non-empty strings"):
        handler(3)  # type: ignore[arg-type]


def test_bare_handler_decorator_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="non-empty strings"):

        @handler  # type: ignore[arg-type]
        def oops() -> None:
            pass


def test_event_first_parameter_receives_the_event() -> None:
    got: list[Any] = []

    class C(BaseComponent):
        @handler("ping")
        def with_event(self, event: Event, a: Any, b: Any = None) -> None:
            got.append(("with_event", event, a, b))

        @handler("ping")
        def without_event(self, a: Any, b: Any = None) -> None:
            got.append(("without_event", a, b))

        @handler("ping")
        def event_not_first(self, a: Any, event: Any = "default") -> None:
            # ``event`` only counts as the first parameter; here it is just an argument.
            got.append(("event_not_first", a, event))

        @handler("ping")
        def kw_only_event(self, *args: Any, event: Any = "kw") -> None:
            got.append(("kw_only_event", args, event))

    m = Manager()
    m += C()
    e = ping(1)
    value = fire_and_flush(m, e)
    assert not value.errors
    assert got == [
        ("with_event", e, 1, None),
        ("without_event", 1, None),
        ("event_not_first", 1, "default"),
        ("kw_only_event", (1,), "kw"),
    ]


def test_event_parameter_rule_for_component_methods() -> None:
    class C(Component):
        def init(self) -> None:
            self.got: list[Any] = []

        def ping(self, event: Event, x: Any) -> None:
            self.got.append((event.name, x))

        def pong(self, x: Any) -> None:
            self.got.append(("plain", x))

    m = Manager()
    c = C()
    m += c
    fire_and_flush(m, ping(1))
    fire_and_flush(m, pong(2))
    assert c.got == [("ping", 1), ("plain", 2)]


def test_priority_orders_handlers_highest_first() -> None:
    order: list[str] = []

    class C(BaseComponent):
        @handler("ping", priority=-5)
        def low(self) -> None:
            order.append("low")

        @handler("ping")
        def zero(self) -> None:
            order.append("zero")

        @handler("ping", priority=10)
        def high(self) -> None:
            order.append("high")

        @handler("ping", priority=2.5)
        def mid(self) -> None:
            order.append("mid")

    m = Manager()
    m += C()
    fire_and_flush(m, ping())
    assert order == ["high", "mid", "zero", "low"]


def test_handler_channel_overrides_the_component_channel() -> None:
    heard: list[tuple[str, Any]] = []

    class C(BaseComponent):
        channel = "mine"

        @handler("ping")
        def on_mine(self, x: Any) -> None:
            heard.append(("mine", x))

        @handler("ping", channel="elsewhere")
        def on_elsewhere(self, x: Any) -> None:
            heard.append(("elsewhere", x))

    m = Manager()
    m += C()
    fire_and_flush(m, ping(1), "mine")
    fire_and_flush(m, ping(2), "elsewhere")
    fire_and_flush(m, ping(3), "nobody")
    assert heard == [("mine", 1), ("elsewhere", 2)]


# -------------------------------------------------------------- binding
def test_base_component_binds_only_decorated_methods() -> None:
    calls: list[str] = []

    class C(BaseComponent):
        @handler("ping")
        def decorated(self) -> None:
            calls.append("decorated")

        def pong(self) -> None:  # public but not decorated: not a handler here
            calls.append("pong")

    m = Manager()
    c = C()
    m += c
    fire_and_flush(m, ping())
    fire_and_flush(m, pong())
    assert calls == ["decorated"]
    assert m.handlers("pong") == []
    assert m.handlers("ping") == [c.decorated]


def test_component_binds_public_methods_by_name() -> None:
    class C(Component):
        def init(self) -> None:
            self.calls: list[str] = []

        def ping(self) -> str:
            self.calls.append("ping")
            return "ping!"

        def _private(self) -> None:
            self.calls.append("_private")

        @property
        def pong(self) -> str:  # a property is not a method
            return "property"

    m = Manager()
    c = C()
    m += c
    value = fire_and_flush(m, ping())
    fire_and_flush(m, Event.create("_private"))
    fire_and_flush(m, pong())
    assert value.value == "ping!"
    assert c.calls == ["ping"]
    assert m.handlers("_private") == []
    assert m.handlers("pong") == []


def test_component_does_not_bind_the_framework_api() -> None:
    class C(Component):
        def init(self, x: int = 0) -> None:
            self.x = x

        def hello(self) -> None:
            pass

    m = Manager()
    c = C(channel="c")
    m += c
    names = {n for e in m.loop.registry.entries() if e.component is c for n in e.names}
    assert names == {"hello"}
    for api in ("init", "fire", "register", "unregister", "stop", "start", "run", "tick"):
        assert m.handlers(api, "c") == [], api
        assert m.handlers(api, "*") == [], api
    # Firing an event named like an API method does not call the method.
    value = fire_and_flush(m, Event.create("stop"), "c")
    assert not value.errors
    value = fire_and_flush(m, Event.create("init", 5), "c")
    assert not value.errors
    assert c.x == 0


def test_component_init_is_not_an_init_event_handler() -> None:
    """Regression: ``init`` once got bound as the handler of an ``init`` event."""

    class C(Component):
        def init(self) -> None:
            self.inits = getattr(self, "inits", 0) + 1

    m = Manager()
    c = C()
    m += c
    fire_and_flush(m, Event.create("init"))
    assert c.inits == 1
    assert [e for e in m.loop.registry.entries() if e.component is c] == []


def test_component_method_shadowing_the_api_is_refused() -> None:
    with pytest.raises(TypeError, match="stop"):

        class C(Component):
            def stop(self, code: Any = None) -> None:
                pass


def test_handler_false_excludes_a_public_method() -> None:
    class C(Component):
        def init(self) -> None:
            self.calls: list[str] = []

        @handler(False)
        def helper(self) -> None:
            self.calls.append("helper")

        def ping(self) -> None:
            self.helper()

    m = Manager()
    c = C()
    m += c
    fire_and_flush(m, Event.create("helper"))
    assert c.calls == []
    fire_and_flush(m, ping())
    assert c.calls == ["helper"]


def test_handler_false_in_a_subclass_removes_an_inherited_handler() -> None:
    class Base(Component):
        def ping(self) -> str:
            return "base"

    class Sub(Base):
        @handler(False)
        def ping(self) -> str:
            return "sub"

    m = Manager()
    m += Sub()
    value = fire_and_flush(m, ping())
    assert value.value is None
    assert m.handlers("ping") == []


# ---------------------------------------------------------- inheritance
def test_inherited_and_new_handlers_both_run() -> None:
    class Base(BaseComponent):
        @handler("ping")
        def base_ping(self) -> str:
            return "base"

    class Sub(Base):
        @handler("ping")
        def sub_ping(self) -> str:
            return "sub"

    m = Manager()
    m += Sub()
    value = fire_and_flush(m, ping())
    assert value.value == ["base", "sub"]


def test_inherited_handlers_of_a_component_run() -> None:
    class Base(Component):
        def ping(self) -> str:
            return "base ping"

    class Sub(Base):
        def pong(self) -> str:
            return "sub pong"

    m = Manager()
    m += Sub()
    assert fire_and_flush(m, ping()).value == "base ping"
    assert fire_and_flush(m, pong()).value == "sub pong"


def test_redefinition_replaces_the_inherited_handler() -> None:
    class Base(BaseComponent):
        @handler("ping")
        def on_ping(self) -> str:
            return "base"

    class Sub(Base):
        @handler("ping")
        def on_ping(self) -> str:
            return "sub"

    m = Manager()
    m += Sub()
    assert fire_and_flush(m, ping()).value == "sub"
    m2 = Manager()
    m2 += Base()
    assert fire_and_flush(m2, ping()).value == "base"


def test_override_hides_same_named_inherited_handlers() -> None:
    class Base(BaseComponent):
        @handler("ping")
        def base_ping(self) -> str:
            return "base ping"

        @handler("pong")
        def base_pong(self) -> str:
            return "base pong"

    class Sub(Base):
        @handler("ping", override=True)
        def sub_ping(self) -> str:
            return "sub ping"

    m = Manager()
    m += Sub()
    assert fire_and_flush(m, ping()).value == "sub ping"
    # Handlers of other names are still inherited.
    assert fire_and_flush(m, pong()).value == "base pong"


def test_override_does_not_hide_siblings_in_the_same_class() -> None:
    class C(BaseComponent):
        @handler("ping")
        def one(self) -> str:
            return "one"

        @handler("ping", override=True)
        def two(self) -> str:
            return "two"

    m = Manager()
    m += C()
    assert fire_and_flush(m, ping()).value == ["one", "two"]


def test_inherited_handlers_run_on_each_instance_separately() -> None:
    class C(BaseComponent):
        def init(self, label: str) -> None:
            self.label = label

        @handler("ping")
        def who(self) -> str:
            return self.label

    m = Manager()
    m += C("a")
    m += C("b")
    assert fire_and_flush(m, ping()).value == ["a", "b"]


# ------------------------------------------------------------------ init
def test_init_receives_constructor_arguments() -> None:
    class C(BaseComponent):
        def init(self, a: int, b: int = 2, *, c: int = 3) -> None:
            self.got = (a, b, c)

    assert C(1).got == (1, 2, 3)
    assert C(1, 5, c=7).got == (1, 5, 7)
    c = C(1, channel="x")
    assert c.got == (1, 2, 3)
    assert c.channel == "x"


def test_init_receives_channel_when_it_accepts_it() -> None:
    class WithChannel(BaseComponent):
        def init(self, a: int, channel: Any = "default") -> None:
            self.got = (a, channel)

    class WithKwargs(BaseComponent):
        def init(self, **kwargs: Any) -> None:
            self.got = kwargs

    c = WithChannel(1, channel="chan")
    assert c.got == (1, "chan")
    assert c.channel == "chan"
    assert WithChannel(1).got == (1, "default")
    assert WithKwargs(channel="k", z=1).got == {"channel": "k", "z": 1}


def test_init_mistakes_raise_type_error() -> None:
    class NoInit(BaseComponent):
        pass

    class NeedsArg(BaseComponent):
        def init(self, a: int) -> None:
            self.a = a

    with pytest.raises(TypeError, match="init"):
        NoInit(1)
    with pytest.raises(TypeError):
        NeedsArg()
    assert NoInit(channel="ok").channel == "ok"


def test_channel_class_attribute_is_the_default() -> None:
    class C(BaseComponent):
        channel = "cls"

    assert C().channel == "cls"
    assert C(channel="inst").channel == "inst"
    assert C().channel == "cls"


# --------------------------------------------------------- run time changes
def test_add_and_remove_handler_between_events() -> None:
    m = Manager()
    c = BaseComponent(channel="c")
    m += c
    got: list[Any] = []

    def ping(x: Any) -> str:  # handles "ping" by its __name__
        got.append(("fn", x))
        return "fn"

    def named(event: Event, x: Any) -> None:
        got.append(("named", event.name, x))

    assert c.add_handler(ping) is ping
    c.add_handler(named, "ping", "pong")
    assert fire_and_flush(m, ping_event := Event.create("ping", 1), "c").value == "fn"
    assert got == [("fn", 1), ("named", "ping", 1)]
    assert ping_event.value is not None
    fire_and_flush(m, pong(2), "c")
    assert got[-1] == ("named", "pong", 2)

    c.remove_handler(ping)
    fire_and_flush(m, Event.create("ping", 3), "c")
    assert got[-1] == ("named", "ping", 3)
    assert ("fn", 3) not in got
    c.remove_handler(named, "pong")
    fire_and_flush(m, pong(4), "c")
    assert got[-1] == ("named", "ping", 3)


def test_add_handler_respects_channel_priority_and_decorator() -> None:
    m = Manager()
    c = BaseComponent(channel="c")
    m += c
    order: list[str] = []

    @handler("ping", priority=5, channel="other")
    def decorated() -> None:
        order.append("decorated")

    def low() -> None:
        order.append("low")

    def high() -> None:
        order.append("high")

    c.add_handler(low, "ping", priority=-1)
    c.add_handler(high, "ping", priority=1)
    c.add_handler(decorated)
    fire_and_flush(m, ping(), "c")
    assert order == ["high", "low"]
    order.clear()
    fire_and_flush(m, ping(), "other")
    assert order == ["decorated"]
    order.clear()
    fire_and_flush(m, ping(), "*")
    assert order == ["decorated", "high", "low"]


def test_remove_handler_removes_a_bound_method() -> None:
    class C(BaseComponent):
        @handler("ping")
        def on_ping(self) -> str:
            return "bound"

    m = Manager()
    c = C()
    m += c
    assert fire_and_flush(m, ping()).value == "bound"
    c.remove_handler(c.on_ping)
    assert fire_and_flush(m, ping()).value is None


def test_handler_added_during_dispatch_hears_later_events() -> None:
    class Installer(BaseComponent):
        def init(self) -> None:
            self.extra_calls = 0

        def extra(self) -> str:
            self.extra_calls += 1
            return "extra"

        @handler("install")
        def on_install(self, add: bool) -> None:
            if add:
                self.add_handler(self.extra, "ping")
            else:
                self.remove_handler(self.extra)

    m = Manager()
    c = Installer()
    m += c
    m.fire(install(True))
    m.fire(ping())  # same batch as install: its handlers were looked up after install ran
    m.flush()
    assert c.extra_calls == 1
    fire_and_flush(m, install(False))
    fire_and_flush(m, ping())
    assert c.extra_calls == 1


def test_add_and_remove_handler_on_a_running_manager(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app

    class Installer(BaseComponent):
        channel = "inst"

        def extra(self, n: int) -> str:
            return f"extra {n}"

        @handler("install")
        def on_install(self, add: bool) -> None:
            if add:
                self.add_handler(self.extra, "ping")
            else:
                self.remove_handler(self.extra)

    c = Installer()
    c.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is c)

    before = manager.fire(ping(0), "inst")
    recorder.wait_for("ping", predicate=lambda e: e.args == (0,))
    assert before.value is None

    manager.fire(install(True), "inst")
    recorder.wait_for("install", predicate=lambda e: e.args == (True,))
    during = manager.fire(ping(1), "inst")
    recorder.wait_for("ping", predicate=lambda e: e.args == (1,))
    assert during.value == "extra 1"

    manager.fire(install(False), "inst")
    recorder.wait_for("install", predicate=lambda e: e.args == (False,))
    after = manager.fire(ping(2), "inst")
    recorder.wait_for("ping", predicate=lambda e: e.args == (2,))
    assert after.value is None


def test_add_handler_from_another_thread_is_seen_by_the_next_event(
    app: tuple[Manager, Recorder],
) -> None:
    # The test thread adds and removes handlers while the loop dispatches: once the call
    # returns, the events fired after it see the change.
    manager, recorder = app
    for n in range(50):
        answer = manager.add_handler(lambda n=n: n, "ping", channel="*")
        value = manager.fire(ping(n))
        recorder.wait_for("ping", predicate=lambda e, n=n: e.args == (n,))
        assert value.value == n
        manager.remove_handler(answer)
    value = manager.fire(ping("last"))
    recorder.wait_for("ping", predicate=lambda e: e.args == ("last",))
    assert value.value is None


# ---------------------------------------------- circuits' handler API
@handler("ping")
def on_ping(self: Manager, n: int) -> str:
    """A plain function, as circuits adds it: it takes the manager as ``self``."""
    return f"{type(self).__name__} {n}"


def test_add_handler_binds_a_function_to_a_plain_manager() -> None:
    m = Manager()
    method = m.addHandler(on_ping)
    assert method.__self__ is m and method.__func__ is on_ping  # type: ignore[attr-defined]
    assert fire_and_flush(m, ping(1)).value == "Manager 1"
    assert m.handlers() == [method]
    m.removeHandler(method)
    assert fire_and_flush(m, ping(2)).value is None
    assert m.handlers() == []


def test_remove_handler_for_one_event_keeps_it_for_the_others() -> None:
    class Both(BaseComponent):
        @handler("ping", "pong")
        def both(self, n: int) -> int:
            return n

    c = Both()
    m = Manager() + c
    before = fire_and_flush(m, ping(1))
    c.removeHandler(c.both, "ping")
    assert before.value == 1
    assert fire_and_flush(m, ping(2)).value is None
    assert fire_and_flush(m, pong(3)).value == 3
    assert c.handles("pong") and not c.handles("ping")


def test_handles_and_handlers_on_classes_and_instances() -> None:
    class Base(Component):
        def foo(self) -> None:
            pass

        @handler("*")
        def everything(self, event: Event) -> None:
            pass

        @handler("_private")
        def private(self) -> None:
            pass

    class Sub(Base):
        def bar(self) -> None:
            pass

    assert Base.handles("foo") and not Base.handles("bar")
    assert Sub.handles("foo", "bar") and not Sub.handles("foo", "baz")
    assert not Sub.handles("*") and not Sub.handles("_private")  # not event names
    assert set(Sub.handlers()) == {Base.foo, Base.everything, Base.private, Sub.bar}
    sub = Sub()
    assert sub.handles("foo", "bar")
    assert set(sub.handlers()) == {sub.foo, sub.everything, sub.private, sub.bar}
    sub.add_handler(lambda: None, "late")
    assert sub.handles("late") and not Sub.handles("late")  # run time: the instance only
    m = Manager() + sub
    assert m.handlers("foo") == [sub.foo, sub.everything]  # netcomp's query, unchanged
    with pytest.raises(TypeError, match="on a component"):
        Sub.handlers("foo")


def test_circuits_handler_methods_are_not_handler_names() -> None:
    for name in ("addHandler", "removeHandler"):
        with pytest.raises(TypeError, match=name):
            type("Bad", (Component,), {name: lambda self: None})


# ------------------------------------------------------ signature errors
class Strict(BaseComponent):
    """Handlers that take no arguments, one argument, and one that fails inside."""

    def init(self) -> None:
        self.ran: list[str] = []

    @handler("ping")
    def no_args(self) -> str:
        self.ran.append("no_args")
        return "no_args"

    @handler("pong")
    def one_arg(self, x: Any) -> str:
        self.ran.append("one_arg")
        return "one_arg"


class Errors(BaseComponent):
    """Collects ``exception`` events."""

    def init(self) -> None:
        self.events: list[Event] = []

    @handler("exception")
    def on_exception(self, event: Event, *args: Any, **kwargs: Any) -> None:
        self.events.append(event)


def test_signature_error_names_handler_and_event() -> None:
    m = Manager()
    s, errors = Strict(), Errors()
    m += s
    m += errors
    value = fire_and_flush(m, ping(1, 2))
    error = value.exception
    assert isinstance(error, HandlerSignatureError)
    assert isinstance(error, TypeError)
    assert isinstance(error, NetcompError)
    assert "Strict.no_args" in str(error)
    assert "ping" in str(error)
    assert "(1, 2)" in str(error)
    assert isinstance(error.__cause__, TypeError)
    # The exception event carries it, with the handler and the failing event.
    assert len(errors.events) == 1
    etype, evalue, _tb = errors.events[0].args
    assert etype is HandlerSignatureError
    assert evalue is error
    assert errors.events[0].kwargs["handler"] == s.no_args
    assert errors.events[0].kwargs["fevent"] is value.event


def test_signature_error_for_missing_and_keyword_arguments() -> None:
    m = Manager()
    m += Strict()
    missing = fire_and_flush(m, pong())
    assert isinstance(missing.exception, HandlerSignatureError)
    assert "one_arg" in str(missing.exception)
    unexpected = fire_and_flush(m, pong(1, nope=2))
    assert isinstance(unexpected.exception, HandlerSignatureError)
    assert "nope" in str(unexpected.exception)


def test_signature_error_of_an_async_handler() -> None:
    class C(BaseComponent):
        @handler("ping")
        async def on_ping(self) -> str:
            return "never"

    m = Manager()
    m += C()
    value = fire_and_flush(m, ping(1))
    assert isinstance(value.exception, HandlerSignatureError)
    assert "on_ping" in str(value.exception)


def test_signature_error_does_not_stop_other_handlers_or_events() -> None:
    class Fine(BaseComponent):
        @handler("ping", priority=-1)
        def after(self, *args: Any) -> str:
            return "after"

    m = Manager()
    s = Strict()
    m += s
    m += Fine()
    value = fire_and_flush(m, ping("bad"))
    assert isinstance(value.exception, HandlerSignatureError)
    assert value.value == "after"
    good = fire_and_flush(m, pong(1))
    assert good.value == "one_arg"
    assert not good.errors


def test_unhandled_signature_error_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    m = Manager()
    m += Strict()
    with caplog.at_level("ERROR", logger="netcomp"):
        fire_and_flush(m, ping(1))
    records = [r for r in caplog.records if r.name == "netcomp"]
    assert records, caplog.text
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is HandlerSignatureError


def test_type_error_inside_a_handler_stays_a_plain_type_error() -> None:
    def helper(a: Any) -> None:
        pass

    class C(BaseComponent):
        @handler("ping")
        def body_raises(self) -> None:
            raise TypeError("my own type error")

        @handler("pong")
        def calls_wrongly(self) -> None:
            helper()  # type: ignore[call-arg]

        @handler("install")
        async def async_body_raises(self) -> None:
            raise TypeError("async type error")

    m = Manager()
    errors = Errors()
    m += C()
    m += errors
    for event, message in (
        (ping(), "my own type error"),
        (pong(), "helper"),
        (install(), "async type error"),
    ):
        value = fire_and_flush(m, event)
        error = value.exception
        assert type(error) is TypeError, (event, error)
        assert message in str(error)
    assert [type(e.args[1]) for e in errors.events] == [TypeError] * 3


def test_handler_signature_error_while_running(manager: Manager) -> None:
    s = Strict()
    s.register(manager)
    with running(manager, check_errors=False) as recorder:
        bad = manager.fire(ping("unexpected"))
        error_event = recorder.wait_for("exception")
        recorder.wait_for("ping", predicate=lambda e: e.value is bad)
        assert isinstance(bad.exception, HandlerSignatureError)
        assert error_event.args[1] is bad.exception
        assert error_event.kwargs["fevent"] is bad.event
        # The loop goes on.
        good = manager.fire(pong(1))
        recorder.wait_for("pong")
        assert good.value == "one_arg"
        assert manager.running
    assert s.ran == ["one_arg"]
    assert len(recorder.errors) == 1


@pytest.mark.parametrize("args", [(), (1,), (1, 2)], ids=["none", "one", "two"])
def test_many_plain_handlers_get_the_arguments_as_fired(args: tuple[int, ...]) -> None:
    """Several plain handlers (the dispatch loop that passes one argument as one): each
    gets the event's positional arguments, in priority order; one that raises does not
    keep the next from running."""
    from netcomp import Component, Event, Manager, handler

    class many(Event):
        pass

    seen: list[tuple[str, tuple[int, ...]]] = []

    class Takers(Component):
        @handler("many", priority=2)
        def first(self, *got: int) -> str:
            seen.append(("first", got))
            raise ValueError("first fails")

        @handler("many", priority=1)
        def second(self, *got: int) -> str:
            seen.append(("second", got))
            return "second"

    manager = Manager()
    manager += Takers()
    manager.flush()
    value = manager.fire(many(*args))
    manager.flush()
    assert seen == [("first", args), ("second", args)]
    assert value.value == "second" and isinstance(value.exception, ValueError)
