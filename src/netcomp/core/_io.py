"""Descriptor readiness: the one selector a loop waits in, and the watches on it.

Rules (docs/architecture.md, "The loop"): a :class:`Watch` records a descriptor, the
events wanted (``selectors.EVENT_READ | EVENT_WRITE``; 0 pauses it) and the callback that
runs, on the loop thread, when it is ready. Watches exist before the selector does: the
selector (and the wake-up descriptor other threads write to) is made when the loop first
runs, and registers every watch then. Registering, changing and cancelling are O(1). One
callback's error never stops the loop; a watch cancelled by an earlier callback of the
same pass is not called.

Where the selector class chosen is the stdlib ``EpollSelector`` (Linux's default), the loop
waits in a ``select.epoll`` object directly, keeping its own map from descriptor to watch:
the same kernel wait without the ``selectors`` layer's per-ready-descriptor Python work
(a key lookup and a tuple). The selector's rules are kept: a descriptor is registered
once (KeyError), ready events are masked by what its watch wants. Any other selector
class is used as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import selectors
from collections.abc import Callable
from typing import Any

from ._wakeup import Wakeup

__all__ = ["IO", "Watch"]

log = logging.getLogger("netcomp")

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_EPOLL = getattr(select, "epoll", None)
_EPOLLIN = getattr(select, "EPOLLIN", 0)
_EPOLLOUT = getattr(select, "EPOLLOUT", 0)
_NOT_IN = ~_EPOLLIN  # any of these bits: the descriptor is writable (or failed)
_NOT_OUT = ~_EPOLLOUT  # any of these bits: the descriptor is readable (or failed)


def _fd_of(fileobj: Any) -> int:
    """The descriptor of ``fileobj`` (an int, or an object with ``fileno()``), as the
    ``selectors`` module finds it: ValueError when it has none."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class Watch:
    """Interest in one descriptor's readiness, made by ``Loop.watch``.

    ``callback(mask)`` runs on the loop thread when the descriptor is ready for what
    ``events`` names (``selectors.EVENT_READ`` / ``EVENT_WRITE``; 0 pauses the watch).
    ``modify(events)`` changes the interest, ``cancel()`` ends it (and lets go of the
    callback), ``move(loop)`` carries it to another loop. All O(1), loop thread only.
    A watch follows its component's tree by itself when that tree joins another.
    ``fd`` is its descriptor while it is registered in a native epoll (else -1).
    """

    __slots__ = ("callback", "events", "fd", "fileobj", "loop")

    def __init__(
        self, loop: IO, fileobj: Any, events: int, callback: Callable[[int], Any]
    ) -> None:
        self.loop: IO | None = loop
        self.fileobj = fileobj
        self.events = events
        self.callback: Callable[[int], Any] | None = callback
        self.fd = -1  # its descriptor while registered in a native epoll (else -1)

    @property
    def active(self) -> bool:
        """Not cancelled."""
        return self.loop is not None

    def modify(self, events: int) -> None:
        """Watch for ``events`` from now on (0: for nothing, until the next ``modify``)."""
        if events != self.events and self.loop is not None:
            self.loop._watch_modify(self, events)

    def cancel(self) -> None:
        """Stop watching for good."""
        loop = self.loop
        if loop is not None:
            loop._watch_cancel(self)
            self.loop = None
        self.callback = None

    def move(self, loop: IO) -> None:
        """Carry the watch (and its interest) to ``loop``."""
        current = self.loop
        if current is loop or current is None:
            return
        current._watch_cancel(self)
        self.loop = loop
        loop._watch_add(self)

    def __repr__(self) -> str:
        state = "cancelled" if self.loop is None else f"events={self.events}"
        return f"<Watch {self.fileobj!r} {state}>"


class IO:
    """The I/O half of a :class:`Loop`: its selector, wake-up descriptor and watches."""

    _sleeping: bool
    _chain: bool
    #: Set on the instance by :meth:`use_selector` only (see ``Loop``'s class defaults).
    _selector_class: type[selectors.BaseSelector] = selectors.DefaultSelector
    #: The pipe Python's C-level signal handler writes to (``signal.set_wakeup_fd``) while
    #: the loop runs on the main thread: its ends, else -1 (class defaults: rarely set).
    _signal_fd = -1
    _signal_wfd = -1

    def __init__(self) -> None:
        self._wakeup: Wakeup | None = None
        self._selector: Any = None  # a selectors.BaseSelector, or a select.epoll
        self._watches: set[Watch] = set()
        self._io_count = 0  # watches with an interest: the selector has work
        # With a native epoll (see the module rules): it, its registered watches by
        # descriptor, and the wake-up descriptor. ``_poll`` is the kernel wait itself
        # (``epoll.poll`` or the selector's ``select``).
        self._epoll: Any = None
        self._fd_watches: dict[int, Watch] = {}
        self._wakeup_fd = -1
        self._poll: Callable[..., list[Any]] | None = None

    def watch(self, fileobj: Any, events: int, callback: Callable[[int], Any]) -> Watch:
        """Call ``callback(mask)`` on the loop thread whenever ``fileobj`` is ready for
        ``events`` (``selectors.EVENT_READ | EVENT_WRITE``; 0 watches for nothing yet).
        Returns the :class:`Watch` (``modify``, ``cancel``, ``move``)."""
        watch = Watch(self, fileobj, events, callback)
        self._watch_add(watch)
        return watch

    @property
    def watched(self) -> int:
        """How many descriptors are watched for something (the wake-up not counted)."""
        return self._io_count

    @property
    def backend(self) -> str:
        """The selector class name the loop waits in (``EpollSelector``, ...)."""
        return self._selector_class.__name__

    def use_selector(self, selector_class: type[selectors.BaseSelector]) -> None:
        """Wait in a ``selector_class`` selector (the Poller's backend choice)."""
        if selector_class is self._selector_class:
            return
        self._selector_class = selector_class
        if self._selector is not None:
            self._close_selector()
            self._ensure_selector()

    # The native epoll's register/modify/unregister, with the selectors module's errors.
    def _epoll_register(self, watch: Watch, events: int) -> None:
        fd = _fd_of(watch.fileobj)
        fds = self._fd_watches
        if fd in fds or fd == self._wakeup_fd or fd == self._signal_fd:
            raise KeyError(f"{watch.fileobj!r} (FD {fd}) is already registered")
        self._epoll.register(
            fd, (_EPOLLIN if events & _READ else 0) | (_EPOLLOUT if events & _WRITE else 0)
        )
        watch.fd = fd
        fds[fd] = watch

    def _epoll_unregister(self, watch: Watch) -> None:
        fd, watch.fd = watch.fd, -1
        if self._fd_watches.get(fd) is watch:
            del self._fd_watches[fd]
            with contextlib.suppress(OSError):  # closed already: the kernel dropped it
                self._epoll.unregister(fd)

    def _watch_add(self, watch: Watch) -> None:
        self._watches.add(watch)
        if watch.events:
            self._io_count += 1
            self._chain = False  # the selector has work: dispatch stops after its batch
            if self._epoll is not None:
                self._epoll_register(watch, watch.events)
            elif self._selector is not None:
                self._selector.register(watch.fileobj, watch.events, watch)

    def _watch_modify(self, watch: Watch, events: int) -> None:
        old, watch.events = watch.events, events
        selector = self._selector
        if old and events:
            if self._epoll is not None:
                if watch.fd < 0:
                    raise KeyError(f"{watch.fileobj!r} is not registered")
                self._epoll.modify(
                    watch.fd,
                    (_EPOLLIN if events & _READ else 0) | (_EPOLLOUT if events & _WRITE else 0),
                )
            elif selector is not None:
                selector.modify(watch.fileobj, events, watch)
        elif events:
            self._io_count += 1
            self._chain = False
            if self._epoll is not None:
                self._epoll_register(watch, events)
            elif selector is not None:
                selector.register(watch.fileobj, events, watch)
        else:
            self._io_count -= 1
            if self._epoll is not None:
                self._epoll_unregister(watch)
            elif selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(watch.fileobj)

    def _watch_cancel(self, watch: Watch) -> None:
        self._watches.discard(watch)
        if watch.events:
            self._io_count -= 1
            if self._epoll is not None:
                self._epoll_unregister(watch)
            elif self._selector is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(watch.fileobj)

    def _take_watches(self, other: IO) -> None:
        """Move ``other``'s watches here."""
        for watch in list(other._watches):
            watch.move(self)

    def _ensure_selector(self) -> None:
        if self._selector is not None:
            return
        self._wakeup = Wakeup()
        if self._selector_class is selectors.EpollSelector and _EPOLL is not None:
            # Linux's default: the kernel object itself (see the module rules).
            self._selector = self._epoll = epoll = _EPOLL()
            self._poll = epoll.poll
            self._wakeup_fd = fd = self._wakeup.fileno()
            epoll.register(fd, _EPOLLIN)
            if self._signal_fd >= 0:
                epoll.register(self._signal_fd, _EPOLLIN)
            for watch in self._watches:
                if watch.events:
                    self._epoll_register(watch, watch.events)
            return
        selector = self._selector = self._selector_class()
        self._poll = selector.select
        selector.register(self._wakeup.fileno(), selectors.EVENT_READ, None)
        if self._signal_fd >= 0:
            selector.register(self._signal_fd, selectors.EVENT_READ, None)
        for watch in self._watches:
            if watch.events:
                selector.register(watch.fileobj, watch.events, watch)

    def _close_selector(self) -> None:
        selector, self._selector = self._selector, None
        self._epoll = self._poll = None
        for watch in self._fd_watches.values():
            watch.fd = -1
        self._fd_watches = {}
        self._wakeup_fd = -1
        if selector is not None:
            selector.close()
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            wakeup.close()

    # ----------------------------------------------------------------- signals
    def _open_signal_fd(self) -> int:
        """A non-blocking pipe for ``signal.set_wakeup_fd``: its read end is waited on
        beside the wake-up descriptor (made readable by Python's C-level handler, which
        may run just before the loop enters its wait, or on another thread: either way
        the wait ends and the Python-level handler runs). Returns the write end."""
        read_fd, write_fd = os.pipe()
        for fd in (read_fd, write_fd):
            os.set_blocking(fd, False)
        self._signal_fd = read_fd
        if self._epoll is not None:
            self._epoll.register(read_fd, _EPOLLIN)
        elif self._selector is not None:
            self._selector.register(read_fd, selectors.EVENT_READ, None)
        self._signal_wfd = write_fd
        return write_fd

    def _close_signal_fd(self) -> None:
        """Stop waiting on the signal pipe and close it."""
        read_fd, self._signal_fd = self._signal_fd, -1
        if read_fd < 0:
            return
        if self._selector is not None:
            with contextlib.suppress(KeyError, OSError, ValueError):
                self._selector.unregister(read_fd)
        os.close(read_fd)
        os.close(self._signal_wfd)
        self._signal_wfd = -1

    def _drain_signal_fd(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._signal_fd, 512):
                pass

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.wake()

    def _select(self, timeout: float | None) -> bool:
        """Wait in the selector and run the ready descriptors' callbacks; True if any."""
        assert self._poll is not None
        if self._epoll is not None:
            return self._select_epoll(timeout)
        ready = self._poll(timeout)
        # Awake from here on: what I/O callbacks fire needs no wake-up write.
        self._sleeping = False
        for key, mask in ready:
            watch = key.data
            if watch is None:
                if key.fd == self._signal_fd:
                    self._drain_signal_fd()
                else:
                    assert self._wakeup is not None
                    self._wakeup.drain()
                continue
            callback = watch.callback
            if callback is None:
                continue  # cancelled by an earlier callback of this pass
            try:
                callback(mask)
            except Exception:  # one descriptor's bug never kills the loop
                log.exception("error in I/O callback %r", callback)
        return bool(ready)

    def _select_epoll(self, timeout: float | None) -> bool:
        """``_select`` on the native epoll: the ready watches are found by descriptor when
        their turn comes (a watch cancelled meanwhile is skipped)."""
        fds = self._fd_watches
        if timeout is not None and timeout < 0:
            timeout = 0  # (epoll takes a negative timeout as "forever")
        assert self._poll is not None
        ready = self._poll(timeout, len(fds) + 1)
        # Awake from here on: what I/O callbacks fire needs no wake-up write.
        self._sleeping = False
        for fd, flags in ready:
            watch = fds.get(fd)
            if watch is None:
                if fd == self._wakeup_fd:
                    assert self._wakeup is not None
                    self._wakeup.drain()
                elif fd == self._signal_fd:
                    self._drain_signal_fd()
                continue
            callback = watch.callback
            if callback is None:
                continue
            mask = watch.events & (
                (_WRITE if flags & _NOT_IN else 0) | (_READ if flags & _NOT_OUT else 0)
            )
            try:
                callback(mask)
            except Exception:  # one descriptor's bug never kills the loop
                log.exception("error in I/O callback %r", callback)
        return bool(ready)
