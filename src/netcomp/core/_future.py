"""Futures: a result that arrives later, and the operations handlers await.

Rules: a :class:`Future` completes once, on the loop thread, and calls its callbacks then.
An :class:`Op` (``call``, ``wait``, ``sleep``) starts when awaited (``_begin``) and hands
the driver a Future; nothing polls.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

__all__ = ["Future", "Op"]


class Future:
    """A result that arrives later, completed on the loop thread; awaitable in handlers."""

    __slots__ = ("_callbacks", "_done", "_exception", "_result")

    def __init__(self) -> None:
        self._done = False
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future], Any]] | None = None

    def done(self) -> bool:
        """Whether a result or an exception has been set."""
        return self._done

    def result(self) -> Any:
        """The result, or raise the exception that was set."""
        if not self._done:
            raise RuntimeError("Future.result() called before the future is done")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        """The exception that was set, if any."""
        return self._exception

    def set_result(self, result: Any) -> None:
        """Complete with ``result`` (ignored if already done)."""
        if not self._done:
            self._result = result
            self._finish()

    def set_exception(self, exception: BaseException) -> None:
        """Complete with ``exception`` (ignored if already done)."""
        if not self._done:
            self._exception = exception
            self._finish()

    def add_done_callback(self, callback: Callable[[Future], Any]) -> None:
        """Call ``callback(self)`` when done (at once if already done)."""
        if self._done:
            callback(self)
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    def _finish(self) -> None:
        self._done = True
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for callback in callbacks:
                callback(self)

    def __await__(self) -> Generator[Any, Any, Any]:
        if not self._done:
            yield self
        return self.result()

    def __repr__(self) -> str:
        if not self._done:
            return "<Future pending>"
        if self._exception is not None:
            return f"<Future exception={self._exception!r}>"
        return f"<Future result={self._result!r}>"


class Op:
    """Something a handler awaits: ``_begin()`` starts it and returns a :class:`Future`.

    Yielded from a circuits-style generator handler, ``_for_generator`` says what the
    generator receives back.
    """

    __slots__ = ()

    def _begin(self) -> Future:  # pragma: no cover - abstract
        raise NotImplementedError

    def _for_generator(self, future: Future) -> Any:
        """What a circuits-style generator receives back from ``yield op``."""
        return future.result()

    def __await__(self) -> Generator[Any, Any, Any]:
        future = self._begin()
        if not future.done():
            yield future
        return future.result()
