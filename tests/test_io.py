"""The loop's I/O half (core/_io.py): watches on real descriptors, in the native epoll
(Linux's default ``EpollSelector``) and in the ``selectors`` classes alike, one pass of
the selector at a time."""

from __future__ import annotations

import select
import selectors
import socket
import time
from collections.abc import Iterator

import pytest

from netcomp import Manager
from netcomp.core._loop import Loop

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
KINDS = [
    name
    for name in ("EpollSelector", "PollSelector", "SelectSelector")
    if hasattr(selectors, name)
]


@pytest.fixture(params=KINDS)
def loop(request: pytest.FixtureRequest) -> Iterator[Loop]:
    loop = Manager().loop
    loop.use_selector(getattr(selectors, request.param))
    loop._ensure_selector()
    yield loop
    loop.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="Linux only")
def test_the_default_selector_is_a_native_epoll_and_says_epollselector() -> None:
    loop = Manager().loop
    loop._ensure_selector()
    try:
        assert isinstance(loop._selector, select.epoll)
        assert loop.backend == "EpollSelector"
    finally:
        loop.close()
    other = Manager().loop
    other.use_selector(selectors.PollSelector)
    other._ensure_selector()
    try:
        assert isinstance(other._selector, selectors.PollSelector)
    finally:
        other.close()


def test_a_ready_descriptor_gets_the_events_its_watch_wants(
    loop: Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    seen: list[int] = []
    watch = loop.watch(a, READ, seen.append)
    assert loop._select(0) is False and seen == []  # writable, but only READ is wanted
    b.send(b"x")
    assert loop._select(1.0) is True
    assert seen == [READ]  # (it is writable too: not said)
    watch.modify(READ | WRITE)
    seen.clear()
    loop._select(1.0)
    assert seen == [READ | WRITE]
    watch.modify(WRITE)
    seen.clear()
    loop._select(1.0)
    assert seen == [WRITE]


def test_a_paused_watch_is_silent_until_modified_again(
    loop: Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    seen: list[int] = []
    watch = loop.watch(a, READ, seen.append)
    b.send(b"x")
    watch.modify(0)
    assert loop.watched == 0
    loop._select(0)
    assert seen == []
    watch.modify(READ)
    assert loop.watched == 1
    loop._select(1.0)
    assert seen == [READ]


def test_a_watch_cancelled_by_an_earlier_callback_of_the_pass_is_not_called(
    loop: Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    c, d = socket.socketpair()
    try:
        calls: list[str] = []
        watches = {}

        def on(name: str, other: str):  # type: ignore[no-untyped-def]
            def callback(mask: int) -> None:
                calls.append(name)
                watches[other].cancel()

            return callback

        watches["a"] = loop.watch(a, READ, on("a", "c"))
        watches["c"] = loop.watch(c, READ, on("c", "a"))
        b.send(b"x")
        d.send(b"x")
        loop._select(1.0)
        assert len(calls) == 1, calls  # the first one cancelled the other
    finally:
        c.close()
        d.close()


def test_a_descriptor_is_watched_once(
    loop: Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _b = pair
    loop.watch(a, READ, lambda mask: None)
    with pytest.raises(KeyError):
        loop.watch(a, READ, lambda mask: None)
    with pytest.raises(KeyError):
        loop.watch(a.fileno(), WRITE, lambda mask: None)


def test_a_watch_whose_socket_closed_first_cancels_quietly_and_the_fd_is_reused(
    loop: Loop,
) -> None:
    a, b = socket.socketpair()
    watch = loop.watch(a, READ, lambda mask: None)
    a.close()
    watch.cancel()  # (its descriptor is gone: nothing to unregister in the kernel)
    b.close()
    c, d = socket.socketpair()
    try:
        seen: list[int] = []
        loop.watch(c, READ, seen.append)  # most likely the same number again
        d.send(b"x")
        loop._select(1.0)
        assert seen == [READ]
    finally:
        c.close()
        d.close()


def test_a_wake_up_from_another_thread_ends_the_wait_and_runs_no_callback(
    loop: Loop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _b = pair
    seen: list[int] = []
    loop.watch(a, READ, seen.append)
    loop._wake()
    start = time.monotonic()
    assert loop._select(5.0) is True  # the wake-up descriptor was ready
    assert time.monotonic() - start < 4.0
    assert seen == []
    assert loop._select(0) is False  # drained


def test_a_negative_timeout_does_not_wait(loop: Loop) -> None:
    start = time.monotonic()
    assert loop._select(-1.0) is False
    assert time.monotonic() - start < 1.0


def test_a_bad_file_object_is_refused(loop: Loop) -> None:
    with pytest.raises(ValueError):
        loop.watch(-1, READ, lambda mask: None)
    with pytest.raises(ValueError):
        loop.watch(object(), READ, lambda mask: None)
