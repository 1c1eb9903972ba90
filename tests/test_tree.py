"""Component trees: +, +=, -, register/unregister, root/parent/components, moving subtrees,
lifecycle events and their order, registration mistakes, repr."""

from __future__ import annotations

import os
from typing import Any

import pytest

from netcomp import (
    BaseComponent,
    Component,
    Event,
    Manager,
    NetcompError,
    RegistrationError,
    handler,
)
from netcomp.testing import Recorder


class ping(Event):
    """Test event."""


class Node(BaseComponent):
    """Records every event it hears as (name, args)."""

    def init(self, label: str = "", channel: Any = "*") -> None:
        self.label = label
        self.channel = channel
        self.heard: list[tuple[str, tuple[Any, ...]]] = []

    @handler()
    def everything(self, event: Event, *args: Any, **kwargs: Any) -> None:
        self.heard.append((event.name, args))

    def names(self) -> list[str]:
        return [name for name, _ in self.heard]

    def __repr__(self) -> str:  # short, so assertion messages stay readable
        return f"<Node {self.label}>"


# -------------------------------------------------------------- operators
def test_add_registers_and_returns_the_parent() -> None:
    a, b = Node("a"), Node("b")
    result = a + b
    assert result is a
    assert b.parent is a
    assert b.root is a
    assert a.components == [b]


def test_iadd_registers_and_keeps_the_name_bound_to_the_parent() -> None:
    a, b, c = Node("a"), Node("b"), Node("c")
    original = a
    a += b
    a += c
    assert a is original
    assert a.components == [b, c]
    assert b.parent is a and c.parent is a


def test_sub_unregisters_and_returns_the_parent() -> None:
    a, b = Node("a"), Node("b")
    a += b
    result = a - b
    assert result is a
    assert b.parent is None
    assert b.root is b
    assert a.components == []
    a += b
    a -= b
    assert a.components == []


def test_sub_of_a_non_child_is_a_registration_error() -> None:
    a, b, c = Node("a"), Node("b"), Node("c")
    a += b
    b += c
    with pytest.raises(RegistrationError, match="not a child"):
        a - c  # a grandchild, not a child
    with pytest.raises(RegistrationError):
        a - Node("stranger")
    assert c.parent is b


def test_register_and_unregister_methods() -> None:
    m = Manager()
    c = Node("c")
    assert c.register(m) is c
    assert c.parent is m and c.root is m
    assert m.components == [c]
    assert c.unregister() is c
    assert c.parent is None and c.root is c
    assert m.components == []
    # Unregistering something that is not registered is a no-op.
    assert c.unregister() is c


def test_register_needs_a_manager() -> None:
    with pytest.raises(TypeError, match="Manager"):
        Node().register("not a manager")  # type: ignore[arg-type]


def test_registering_again_under_the_same_parent_is_a_no_op() -> None:
    m = Manager()
    rec = Node("rec")
    m += rec
    c = Node("c")
    m += c
    m += c
    c.register(m)
    m.flush()
    assert m.components == [rec, c]
    assert rec.names().count("registered") == 2  # rec's own and c's, once each


# --------------------------------------------------------------- the tree
def test_root_parent_components_in_nested_trees() -> None:
    a, b, c, d = Node("a"), Node("b"), Node("c"), Node("d")
    b += c
    b += d
    a += b
    assert [n.root for n in (a, b, c, d)] == [a, a, a, a]
    assert (a.parent, b.parent, c.parent, d.parent) == (None, a, b, b)
    assert a.components == [b]
    assert b.components == [c, d]
    assert list(a.walk()) == [a, b, c, d]
    # Taking b out makes it the root of its own subtree again.
    a -= b
    assert [n.root for n in (b, c, d)] == [b, b, b]
    assert a.root is a and a.components == []


def test_moving_a_subtree_between_trees() -> None:
    t1, t2 = Node("t1"), Node("t2")
    sub, leaf = Node("sub"), Node("leaf")
    sub += leaf
    t1 += sub
    with pytest.raises(RegistrationError, match="already registered"):
        t2 += sub
    assert sub.parent is t1
    sub.unregister()
    t2 += sub
    assert sub.parent is t2 and sub.root is t2 and leaf.root is t2
    t1.flush()
    t2.flush()
    t1.heard.clear()
    t2.heard.clear()
    leaf.heard.clear()
    t1.fire(ping("t1"))
    t2.fire(ping("t2"))
    t1.flush()
    t2.flush()
    assert t1.heard == [("ping", ("t1",))]
    assert leaf.heard == [("ping", ("t2",))]
    assert t2.heard == [("ping", ("t2",))]


def test_handlers_follow_their_component_in_and_out_of_the_tree() -> None:
    m = Manager()
    b, c = Node("b"), Node("c")
    b += c
    m += b
    m.flush()
    m.fire(ping(1))
    m.flush()
    assert ("ping", (1,)) in b.heard and ("ping", (1,)) in c.heard
    m -= b
    m.flush()
    b.heard.clear()
    c.heard.clear()
    m.fire(ping(2))
    m.flush()
    assert b.heard == [] and c.heard == []
    # The detached subtree is a tree of its own, with its own queue.
    b.fire(ping(3))
    b.flush()
    assert b.heard == [("ping", (3,))]
    assert c.heard == [("ping", (3,))]


def test_events_queued_on_a_subtree_are_dispatched_by_the_new_root() -> None:
    m = Manager()
    watcher = Node("watcher")
    m += watcher
    m.flush()
    sub, leaf = Node("sub"), Node("leaf")
    sub += leaf
    sub.fire(ping("early"))
    leaf.fire(ping("earlier-leaf"))
    old = sub.loop
    m += sub  # sub's queue (registered, ping, ping) moves to m's loop
    assert not old.queue
    assert sub.loop is m.loop
    m.flush()
    assert sub.names() == ["registered", "ping", "ping", "registered"]
    assert leaf.heard == sub.heard
    # The watcher joined the tree first and hears what the subtree queued before joining.
    assert [h for h in watcher.heard if h[0] == "ping"] == [
        ("ping", ("early",)),
        ("ping", ("earlier-leaf",)),
    ]


def test_subtree_joining_a_running_tree(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app
    sub, leaf = Node("sub"), Node("leaf")
    sub += leaf
    sub.fire(ping("queued before joining"))
    sub.register(manager)
    event = recorder.wait_for("ping")
    assert event.args == ("queued before joining",)
    recorder.wait_for("registered", predicate=lambda e: e.args == (sub, manager))
    assert sub.root is manager and leaf.root is manager
    assert ("ping", ("queued before joining",)) in leaf.heard
    manager.fire(ping("after"))
    recorder.wait_for("ping", predicate=lambda e: e.args == ("after",))
    assert leaf.heard[-1] == ("ping", ("after",))


# ------------------------------------------------------ lifecycle events
def test_registered_event_args_and_who_hears_it() -> None:
    m = Manager()
    watcher = Node("watcher")
    m += watcher
    m.flush()
    assert watcher.heard == [("registered", (watcher, m))]
    watcher.heard.clear()
    a, b = Node("a"), Node("b")
    a += b  # queued on a while a is its own root
    m += a
    m.flush()
    registered = [args for name, args in watcher.heard if name == "registered"]
    # b's registration (queued on a, moved in) comes before a's own.
    assert registered == [(b, a), (a, m)]
    # The newcomer hears its own registered event.
    assert ("registered", (a, m)) in a.heard


def test_unregister_without_a_running_loop_queues_both_events() -> None:
    m = Manager()
    watcher = Node("watcher")
    c = Node("c")
    m += watcher
    m += c
    m.flush()
    c.heard.clear()
    m -= c
    # With no loop running, the component leaves at once ...
    assert c.parent is None and m.components == [watcher]
    m.flush()
    lifecycle = [h for h in watcher.heard if h[0] in ("prepare_unregister", "unregistered")]
    # ... and both events are dispatched on the old root, in order.
    assert lifecycle == [("prepare_unregister", (c,)), ("unregistered", (c, m))]
    assert c.heard == []


def test_unregister_while_running_has_two_phases(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app

    class Leaver(Node):
        @handler("prepare_unregister")
        def tidy(self, component: Any) -> None:
            if component is self:
                # Still in the tree: an event fired now is heard by this component.
                self.fire(Event.create("goodbye"))

    c = Leaver("c")
    c.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is c)
    c.unregister()
    recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is c)
    assert c.parent is None and c.root is c
    assert c not in manager.components
    names = c.names()
    assert names[names.index("prepare_unregister") :] == ["prepare_unregister", "goodbye"]
    # The root saw prepare_unregister, what it caused, then unregistered.
    seen = [
        n for n in recorder.names_seen() if n in ("prepare_unregister", "goodbye", "unregistered")
    ]
    assert seen == ["prepare_unregister", "goodbye", "unregistered"]
    # Gone: it hears nothing the tree fires from now on.
    before = len(c.heard)
    manager.fire(ping("after"))
    recorder.wait_for("ping", predicate=lambda e: e.args == ("after",))
    assert len(c.heard) == before


def test_unregister_while_running_keeps_the_component_until_prepare_is_complete(
    app: tuple[Manager, Recorder],
) -> None:
    manager, recorder = app
    observed: list[Any] = []

    class Slow(Node):
        @handler("prepare_unregister")
        async def tidy(self, component: Any) -> None:
            if component is not self:
                return
            # A coroutine that waits on another event: the component stays registered.
            await self.call(Event.create("flush_buffers"))
            observed.append(self.parent)

        @handler("flush_buffers")
        def flush_buffers(self) -> str:
            observed.append(self.root)
            return "flushed"

    c = Slow("slow")
    c.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is c)
    c.unregister()
    recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is c)
    assert observed == [manager, manager]
    assert c.parent is None


def test_lifecycle_order_for_a_subtree(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app
    sub, leaf = Node("sub"), Node("leaf")
    sub += leaf
    sub.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is sub)
    sub.unregister()
    recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is sub)
    # Both the subtree's root and its child heard the prepare phase.
    assert ("prepare_unregister", (sub,)) in sub.heard
    assert ("prepare_unregister", (sub,)) in leaf.heard
    assert leaf.root is sub
    assert not any(name == "unregistered" for name, _ in leaf.heard)


def test_unregister_from_a_handler_on_the_loop() -> None:
    m = Manager()
    watcher = Node("watcher")

    class Quitter(Node):
        @handler("quit")
        def on_quit(self) -> None:
            self.unregister()

    q = Quitter("q")
    m += watcher
    m += q
    m.flush()
    m.fire(Event.create("quit"))
    m.flush()
    assert q.parent is None
    order = [n for n in watcher.names() if n in ("quit", "prepare_unregister", "unregistered")]
    assert order == ["quit", "prepare_unregister", "unregistered"]


# ------------------------------------------------------ registration errors
def test_registration_error_is_a_value_error() -> None:
    assert issubclass(RegistrationError, ValueError)
    assert issubclass(RegistrationError, NetcompError)


def test_cannot_register_a_component_that_is_registered_elsewhere() -> None:
    t1, t2, c = Node("t1"), Node("t2"), Node("c")
    t1 += c
    with pytest.raises(RegistrationError) as info:
        c.register(t2)
    assert "already registered" in str(info.value)
    assert repr(t1) in str(info.value)
    with pytest.raises(ValueError):
        t2 += c
    assert c.parent is t1 and t2.components == []


def test_cannot_register_into_itself() -> None:
    a = Node("a")
    with pytest.raises(RegistrationError):
        a.register(a)
    with pytest.raises(RegistrationError):
        a + a
    assert a.parent is None and a.components == []


def test_cannot_register_into_its_own_subtree() -> None:
    a, b, c = Node("a"), Node("b"), Node("c")
    a += b
    b += c
    with pytest.raises(RegistrationError, match="subtree"):
        a.register(c)
    with pytest.raises(RegistrationError, match="subtree"):
        a.register(b)
    with pytest.raises(RegistrationError):
        c += a
    assert a.parent is None
    assert [n.root for n in (a, b, c)] == [a, a, a]


def test_cannot_register_a_running_manager(app: tuple[Manager, Recorder]) -> None:
    manager, _recorder = app
    with pytest.raises(RegistrationError, match="running"):
        manager.register(Manager())


# -------------------------------------------------------------------- repr
def test_repr_of_managers_and_components() -> None:
    class Plain(Component):
        pass

    m = Manager()
    c = Plain(channel="web")
    m += c
    text = repr(c)
    assert "Plain" in text
    assert "web" in text
    assert str(os.getpid()) in text
    assert text.startswith("<") and text.endswith(">")
    root = repr(m)
    assert "Manager" in root and "*" in root
    assert "queued=1" in root  # the registered event
    m.flush()
    assert "queued=0" in repr(m)


def test_repr_shows_the_running_state(app: tuple[Manager, Recorder]) -> None:
    manager, recorder = app
    stopped_text = repr(Manager())

    class Plain(BaseComponent):
        pass

    c = Plain(channel="chan")
    c.register(manager)
    recorder.wait_for("registered", predicate=lambda e: e.args[0] is c)
    assert repr(manager) != stopped_text
    assert "[R]" in repr(manager)
    assert "[R]" in repr(c)
    assert "[S]" in stopped_text


def test_repr_names_the_process_and_the_thread_it_runs_on(app: tuple[Manager, Recorder]) -> None:
    manager, _recorder = app
    assert f" {os.getpid()}:netcomp-Manager " in repr(manager)  # the loop's thread
    idle = Manager()
    assert f" {os.getpid()}:MainThread " in repr(idle)  # not running: the caller's


# ------------------------------------------------- circuits' container protocol
def test_len_counts_the_events_queued_on_the_tree() -> None:
    root = Manager()
    child = Node("child")
    root += child  # queues registered
    assert len(root) == 1
    assert len(child) == 1  # one tree, one queue
    root.fire(ping())
    assert len(root) == 2
    while len(root):
        root.flush()
    assert len(root) == 0
    assert bool(root) and bool(child)  # empty, and still true


def test_in_looks_for_a_child_or_a_class_of_one() -> None:
    root = Manager()
    a, b = Node("a"), Node("b")
    root += a
    a += b
    assert a in root and b in a
    assert b not in root  # a grandchild is not a child
    assert root not in a
    assert Node in root and BaseComponent in root  # an instance of the class is a child
    assert Component not in root
    root.flush()
    a.unregister()
    assert a not in root and Node not in root
    assert b in a


# ----------------------------------------------------- finding components
def test_findchannel_findtype_and_findroot() -> None:
    from netcomp.core.utils import findchannel, findcmp, findroot, findtype

    class Other(BaseComponent):
        pass

    root = Manager()
    a, b, c = Node("a", channel="x"), Node("b", channel="y"), Node("c", channel="x")
    root += a
    a += b
    b += c
    assert findchannel(root, "x") is a  # parents before children
    assert findchannel(root, "x", all=True) == [a, c]
    assert findchannel(root, "nowhere") is None
    assert findchannel(b, "x") is c  # the search covers the subtree it is given
    assert findtype(root, Node) is a
    assert findtype(root, Node, all=True) == [a, b, c]
    assert findtype(root, Manager) is root  # the root itself counts
    assert findtype(root, Other) is None
    assert findcmp is not findtype and findcmp(root, Node, all=True) == [a, b, c]
    assert findroot(c) is root and findroot(root) is root
