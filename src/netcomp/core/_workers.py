"""Workers: run blocking functions on threads or processes and answer with their results.

Rules: ``task(f, *args, **kw)`` fired at a Worker's channel is handled by submitting ``f`` to
a ``concurrent.futures`` pool; the event's Value completes with ``f``'s result (or its
exception) when the pool's future completes, which wakes the loop through the thread-safe
callback queue: nothing polls. The pool is created on first use and shut down on ``stopped``
or when the worker leaves its tree.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any

from ._components import BaseComponent
from ._events import Event
from ._future import Future
from ._handlers import handler

__all__ = ["Worker", "task"]


class task(Event):
    """``task(f, *args, **kwargs)``: run ``f(*args, **kwargs)`` on a :class:`Worker`."""

    def __init__(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not callable(f):
            raise TypeError(f"task() needs a callable, not {f!r}")
        super().__init__(f, *args, **kwargs)


class Worker(BaseComponent):
    """A pool of threads (default) or processes answering ``task`` events on ``channel``."""

    channel = "worker"

    def __init__(
        self, process: bool = False, workers: int | None = None, channel: Any = "worker"
    ) -> None:
        """``process``: use processes; ``workers``: pool size (``concurrent.futures`` default)."""
        super().__init__(channel=channel)
        self.process = process
        self.workers = workers
        self._pool: cf.Executor | None = None

    @property
    def pool(self) -> cf.Executor:
        """The executor (created on first use)."""
        if self._pool is None:
            if self.process:
                # Never fork: the loop (and maybe other pools) run threads, and a fork taken
                # while threads run can deadlock the child (deprecated from Python 3.12).
                # A forkserver (spawn where there is none) starts workers from a clean
                # process; the function and its arguments must be picklable.
                import multiprocessing  # only for process pools (it loads a lot)

                methods = multiprocessing.get_all_start_methods()
                method = "forkserver" if "forkserver" in methods else "spawn"
                self._pool = cf.ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context(method)
                )
            else:
                self._pool = cf.ThreadPoolExecutor(
                    self.workers, thread_name_prefix="netcomp-worker"
                )
        return self._pool

    @handler("task")
    def _on_task(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        future = Future()

        def settle(cf_future: cf.Future[Any]) -> None:
            # Runs on a pool thread: hand the outcome to the loop thread (read self.loop
            # now: the worker may have moved to another tree meanwhile).
            try:
                result = cf_future.result()
            except BaseException as error:
                self.loop.call_soon_threadsafe(future.set_exception, error)
            else:
                self.loop.call_soon_threadsafe(future.set_result, result)

        self.pool.submit(f, *args, **kwargs).add_done_callback(settle)
        return future

    @handler("stopped", channel="*")
    def _on_stopped(self, manager: Any) -> None:
        self.shutdown(wait=False)

    def loop_changed(self) -> None:
        """Leaving its tree shuts the pool down (it is re-created on the next task)."""
        if self.parent is None:
            self.shutdown(wait=False)

    def shutdown(self, wait: bool = True) -> None:
        """Shut the pool down (running tasks finish; it is re-created on the next task)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=False)

    def __repr__(self) -> str:
        kind = "process" if self.process else "thread"
        return f"<Worker/{self.channel} {kind} workers={self.workers}>"
