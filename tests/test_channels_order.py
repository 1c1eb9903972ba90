"""Channels (component channel, "*", several channels, instances) and dispatch order
(priority, registration order, FIFO, breadth-first)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from netcomp import BaseComponent, Event, Manager, handler
from netcomp.testing import fire_and_flush, running


class ping(Event):
    """Test event."""


class Listener(BaseComponent):
    """Records the ``ping`` events it hears, tagged with its label."""

    def init(self, label: str, log: list[tuple[str, Any]], channel: Any = "*") -> None:
        self.channel = channel
        self.label = label
        self.log = log

    @handler("ping")
    def on_ping(self, *args: Any) -> str:
        self.log.append((self.label, args))
        return self.label


def build(*specs: tuple[str, Any]) -> tuple[Manager, list[tuple[str, Any]], list[Listener]]:
    """A manager with one Listener per (label, channel), registered in that order."""
    m = Manager()
    log: list[tuple[str, Any]] = []
    listeners = [Listener(label, log, channel=channel) for label, channel in specs]
    for listener in listeners:
        m += listener
    m.flush()
    return m, log, listeners


def heard(log: list[tuple[str, Any]]) -> list[str]:
    labels = [label for label, _ in log]
    log.clear()
    return labels


# --------------------------------------------------------------- channels
def test_component_channel_selects_events() -> None:
    m, log, _ = build(("a", "chan_a"), ("b", "chan_b"))
    fire_and_flush(m, ping(), "chan_a")
    assert heard(log) == ["a"]
    fire_and_flush(m, ping(), "chan_b")
    assert heard(log) == ["b"]
    fire_and_flush(m, ping(), "chan_c")
    assert heard(log) == []


def test_star_component_hears_every_channel() -> None:
    m, log, _ = build(("a", "chan_a"), ("star", "*"))
    fire_and_flush(m, ping(), "chan_a")
    assert heard(log) == ["a", "star"]
    fire_and_flush(m, ping(), "elsewhere")
    assert heard(log) == ["star"]


def test_firing_on_star_reaches_every_channel() -> None:
    m, log, _ = build(("a", "chan_a"), ("b", "chan_b"), ("star", "*"))
    value = fire_and_flush(m, ping(), "*")
    assert heard(log) == ["a", "b", "star"]
    assert value.value == ["a", "b", "star"]


def test_non_string_channels_work() -> None:
    key = ("tuple", 1)
    m, log, _ = build(("n", 7), ("t", key), ("s", "7"))
    fire_and_flush(m, ping(), 7)
    assert heard(log) == ["n"]
    fire_and_flush(m, ping(), key)
    assert heard(log) == ["t"]


def test_several_channels_reach_each_handler_once() -> None:
    m, log, _ = build(("a", "chan_a"), ("b", "chan_b"), ("c", "chan_c"), ("star", "*"))
    value = fire_and_flush(m, ping(), "chan_a", "chan_b")
    assert heard(log) == ["a", "b", "star"]
    assert value.value == ["a", "b", "star"]
    # Repeated channels, and "*" together with named channels: still once per handler.
    fire_and_flush(m, ping(), "chan_a", "chan_a", "*", "chan_b")
    assert heard(log) == ["a", "b", "c", "star"]


def test_handler_channel_and_component_channel_together_run_once() -> None:
    log: list[str] = []

    class C(BaseComponent):
        channel = "comp"

        @handler("ping", channel="own")
        def on_ping(self) -> None:
            log.append("on_ping")

    m = Manager()
    c = C()
    m += c
    fire_and_flush(m, ping(), "own", c, "comp", "*")
    assert log == ["on_ping"]


def test_firing_at_an_instance_targets_only_it() -> None:
    m, log, (a, b, other) = build(("a", "same"), ("b", "same"), ("other", "different"))
    value = fire_and_flush(m, ping(1), b)
    assert heard(log) == ["b"]
    assert value.value == "b"
    # An instance whose channel is not the one fired on still hears events aimed at it.
    fire_and_flush(m, ping(2), other)
    assert heard(log) == ["other"]
    fire_and_flush(m, ping(3), "same")
    assert heard(log) == ["a", "b"]
    # An instance plus a channel: the union, each handler once.
    fire_and_flush(m, ping(4), a, "same", other)
    assert heard(log) == ["a", "b", "other"]


def test_firing_at_an_instance_also_reaches_star_components() -> None:
    m, log, (target, _star) = build(("target", "t"), ("star", "*"))
    fire_and_flush(m, ping(), target)
    assert heard(log) == ["target", "star"]


def test_default_channel_is_the_firing_components_channel() -> None:
    m, log, (a, b, _star) = build(("a", "chan_a"), ("b", "chan_b"), ("star", "*"))
    event = ping()
    a.fire(event)
    assert event.channels == ("chan_a",)
    m.flush()
    assert heard(log) == ["a", "star"]
    b.fire(ping())
    m.flush()
    assert heard(log) == ["b", "star"]
    # The root manager's channel is "*": its events reach everyone.
    root_event = ping()
    m.fire(root_event)
    assert root_event.channels == ("*",)
    m.flush()
    assert heard(log) == ["a", "b", "star"]


def test_event_class_channels_are_the_default() -> None:
    class aimed(Event):
        channels = ("chan_b",)

    m = Manager()
    log: list[str] = []

    class C(BaseComponent):
        def init(self, label: str, channel: Any) -> None:
            self.label = label
            self.channel = channel

        @handler("aimed")
        def on_aimed(self) -> None:
            log.append(self.label)

    a, b = C("a", channel="chan_a"), C("b", channel="chan_b")
    m += a
    m += b
    a.fire(aimed())
    m.flush()
    assert log == ["b"]
    log.clear()
    a.fire(aimed(), "chan_a")  # explicit channels win
    m.flush()
    assert log == ["a"]


def test_components_on_different_channels_do_not_hear_each_other() -> None:
    class Chatty(BaseComponent):
        """Answers ``hello`` with ``reply`` on its own channel."""

        def init(self, channel: Any) -> None:
            self.channel = channel
            self.heard: list[tuple[str, Any]] = []

        @handler("hello")
        def on_hello(self, n: int) -> None:
            self.heard.append(("hello", n))
            self.fire(Event.create("reply", self.channel, n))

        @handler("reply")
        def on_reply(self, sender: Any, n: int) -> None:
            self.heard.append(("reply", (sender, n)))

    m = Manager()
    parent = Chatty(channel="one")
    child = Chatty(channel="two")
    grandchild = Chatty(channel="three")
    m += parent
    parent += child
    child += grandchild
    m.flush()
    parent.fire(Event.create("hello", 1))
    child.fire(Event.create("hello", 2))
    grandchild.fire(Event.create("hello", 3))
    m.flush()
    assert parent.heard == [("hello", 1), ("reply", ("one", 1))]
    assert child.heard == [("hello", 2), ("reply", ("two", 2))]
    assert grandchild.heard == [("hello", 3), ("reply", ("three", 3))]


# ------------------------------------------------------------ handler order
def test_handlers_by_descending_priority_then_registration_order() -> None:
    order: list[str] = []

    class P(BaseComponent):
        def init(self, label: str, priority: float) -> None:
            self.label = label
            self.add_handler(self.run, "ping", priority=priority)

        def run(self) -> None:
            order.append(self.label)

    m = Manager()
    for label, priority in [("a", 0), ("b", 5), ("c", 0), ("d", -1), ("e", 5), ("f", 0)]:
        m += P(label, priority)
    fire_and_flush(m, ping())
    assert order == ["b", "e", "a", "c", "f", "d"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_order_is_deterministic_with_many_components(seed: int) -> None:
    rng = random.Random(seed)
    priorities = [rng.choice([-2, 0, 0, 1, 3, 3]) for _ in range(60)]

    def run_once() -> list[int]:
        order: list[int] = []

        class P(BaseComponent):
            def init(self, index: int, priority: float) -> None:
                self.index = index
                self.add_handler(self.run, "ping", priority=priority)

            def run(self) -> int:
                order.append(self.index)
                return self.index

        m = Manager()
        for index, priority in enumerate(priorities):
            m += P(index, priority)
        value = fire_and_flush(m, ping())
        assert value.value == order
        first = list(order)
        order.clear()
        # A second event (served from the lookup cache) sees the same order.
        again = fire_and_flush(m, ping())
        assert again.value == order == first
        return first

    expected = sorted(range(len(priorities)), key=lambda i: (-priorities[i], i))
    first = run_once()
    assert first == expected
    assert run_once() == expected


def test_ties_follow_registration_order_not_tree_position() -> None:
    m, log, (a, b) = build(("a", "*"), ("b", "*"))
    # c registers under b after a and b: it runs after both, though it is b's child.
    c = Listener("c", log)
    b += c
    d = Listener("d", log)
    a += d
    m.flush()
    fire_and_flush(m, ping())
    assert heard(log) == ["a", "b", "c", "d"]


def test_a_joining_subtree_keeps_its_internal_order_after_existing_handlers() -> None:
    m, log, _ = build(("m1", "*"), ("m2", "*"))
    sub = Listener("s0", log)
    for label in ("s1", "s2", "s3"):
        sub += Listener(label, log)
    m += sub
    m.flush()
    fire_and_flush(m, ping())
    assert heard(log) == ["m1", "m2", "s0", "s1", "s2", "s3"]


def test_removed_and_re_added_handler_goes_last() -> None:
    m, log, (a, _b, _c) = build(("a", "*"), ("b", "*"), ("c", "*"))
    a.remove_handler(a.on_ping)
    a.add_handler(a.on_ping, "ping")
    fire_and_flush(m, ping())
    assert heard(log) == ["b", "c", "a"]


# ------------------------------------------------------------- event order
def test_events_are_dispatched_fifo() -> None:
    m, log, _ = build(("x", "*"))
    for n in range(20):
        m.fire(ping(n))
    m.flush()
    assert [args for _, args in log] == [(n,) for n in range(20)]


class Tree(BaseComponent):
    """Each event named N fires the events CHILDREN[N] (from the handler), in order."""

    CHILDREN: dict[str, tuple[str, ...]] = {
        "a": ("a1", "a2"),
        "b": ("b1",),
        "a1": ("a11",),
        "a2": (),
        "b1": (),
        "a11": (),
    }

    def init(self) -> None:
        self.order: list[str] = []

    @handler()
    def any_event(self, event: Event, *args: Any, **kwargs: Any) -> None:
        if event.name not in self.CHILDREN:
            return
        self.order.append(event.name)
        for child in self.CHILDREN[event.name]:
            self.fire(Event.create(child))


def test_events_are_breadth_first() -> None:
    m = Manager()
    t = Tree()
    m += t
    m.flush()
    m.fire(Event.create("a"))
    m.fire(Event.create("b"))
    m.flush()
    # Depth-first would be a, a1, a11, a2, b, b1.
    assert t.order == ["a", "b", "a1", "a2", "b1", "a11"]


def test_one_tick_dispatches_one_batch() -> None:
    m = Manager()
    t = Tree()
    m += t
    m.flush()
    m.fire(Event.create("a"))
    m.fire(Event.create("b"))
    m.tick()
    assert t.order == ["a", "b"]
    m.tick()
    assert t.order == ["a", "b", "a1", "a2", "b1"]
    m.tick()
    assert t.order == ["a", "b", "a1", "a2", "b1", "a11"]
    m.tick()
    assert t.order == ["a", "b", "a1", "a2", "b1", "a11"]


def test_breadth_first_while_running(manager: Manager) -> None:
    t = Tree()
    t.register(manager)
    with running(manager) as recorder:

        def fire_all() -> None:
            # On the loop thread, in one go, so both land in the same batch.
            manager.fire(Event.create("a"))
            manager.fire(Event.create("b"))

        manager.loop.call_soon_threadsafe(fire_all)
        recorder.wait_for("a11")
    assert t.order == ["a", "b", "a1", "a2", "b1", "a11"]


# ----------------------------------------------------------- fire(priority=)
def test_event_priority_orders_the_next_batch_lowest_first() -> None:
    m, log, _ = build(("x", "*"))
    m.fire(ping("p2"), priority=2)
    m.fire(ping("plain 1"))
    m.fire(ping("p-1"), priority=-1)
    m.fire(ping("p0"), priority=0)
    m.fire(ping("plain 2"))
    m.fire(ping("p2 again"), priority=2)
    m.flush()
    assert [args[0] for _, args in log] == [
        "p-1",
        "plain 1",
        "p0",
        "plain 2",
        "p2",
        "p2 again",
    ]  # circuits' order: lowest first, firing order among equals (no priority: 0)


def test_event_priority_never_moves_an_event_into_the_running_batch() -> None:
    class Firer(BaseComponent):
        @handler("go")
        def _go(self) -> None:
            self.fire(Event.create("early"), priority=-5)

    m = Manager()
    t = Tree()
    m += t
    m += Firer()
    m.flush()
    m.fire(Event.create("go"))
    m.fire(Event.create("a"))
    m.tick()  # one batch: go, a; what they fire waits, the prioritized one first
    assert t.order == ["a"]
    early = m.fire(Event.create("b"))  # fired after: still after the prioritized one
    m.tick()
    assert t.order == ["a", "a1", "a2", "b"]
    assert early.result


def test_event_priority_from_another_thread(manager: Manager) -> None:
    log: list[tuple[str, Any]] = []
    manager += Listener("x", log)
    with running(manager) as recorder:

        def fire_all() -> None:  # on the loop thread, in one go: one batch
            manager.fire(ping("late"), priority=1)
            manager.fire(ping("plain"))

        manager.loop.call_soon_threadsafe(fire_all)
        recorder.wait_for("ping", count=2)
        manager.fire(ping("then"), priority=-1)  # alone in its batch
        recorder.wait_for("ping", count=3)
    assert [args[0] for _, args in log] == ["plain", "late", "then"]


def test_event_priority_of_a_tree_that_joins_another() -> None:
    log: list[tuple[str, Any]] = []
    child = Listener("x", log)
    child.fire(ping("p1"), priority=1)
    child.fire(ping("plain"))
    m = Manager() + child  # the queued events, and their order, move along
    m.flush()
    assert [args[0] for _, args in log] == ["plain", "p1"]
