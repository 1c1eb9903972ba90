"""Manager lifecycle: run/start/stop/join, tick/flush, thread-safe fire, processes, signals."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from time import monotonic
from typing import IO, Any

import pytest

from netcomp import BaseComponent, Component, Event, Manager, handler, sleep
from netcomp.testing import LoopWaits, VirtualClock, running

# ---------------------------------------------------------------------------- helpers


class Flags(Component):
    """Sets ``ready`` once ``started`` is handled; logs what the lifecycle handlers saw."""

    def init(self) -> None:
        self.ready = threading.Event()
        self.log: list[str] = []

    def started(self, manager: Manager) -> None:
        self.log.append("started")
        self.ready.set()

    def stopped(self, manager: Manager) -> None:
        self.log.append("stopped")


def _run_in_thread(manager: Manager) -> tuple[threading.Thread, dict[str, Any]]:
    """Call ``manager.run()`` in a thread; the dict receives its return value."""
    result: dict[str, Any] = {}

    def target() -> None:
        result["code"] = manager.run()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def _stop_and_join(manager: Manager, timeout: float = 5.0) -> None:
    manager.stop()
    manager.join(timeout)
    assert not manager.running


# ---------------------------------------------------------------- run / start / stop


def test_start_runs_the_loop_in_a_thread_and_fires_started() -> None:
    manager = Manager()
    flags = Flags()
    manager += flags
    assert not manager.running
    manager.start()
    try:
        assert flags.ready.wait(5)
        assert manager.running
        assert manager.loop.thread is not None
        assert manager.loop.thread is not threading.current_thread()
        assert manager.loop.thread.is_alive()
    finally:
        _stop_and_join(manager)
    assert not manager.loop.thread.is_alive()
    assert flags.log == ["started", "stopped"]


def test_stopped_handlers_run_before_run_returns() -> None:
    log: list[str] = []
    at_return: dict[str, list[str]] = {}

    class Lifecycle(Flags):
        def stopped(self, manager: Manager) -> None:
            log.append("sync stopped")

    class SlowStop(BaseComponent):
        @handler("stopped")
        async def _on_stopped(self, manager: Manager) -> None:
            await sleep(0.05)
            log.append("async stopped")

    manager = Manager()
    manager.loop.clock = VirtualClock(autojump_threshold=0)  # the sleep takes no real time
    lifecycle = Lifecycle()
    manager += lifecycle
    manager += SlowStop()

    def target() -> None:
        manager.run()
        at_return["log"] = list(log)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert lifecycle.ready.wait(5)
    assert log == []
    manager.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert at_return["log"] == ["sync stopped", "async stopped"]


def test_stop_code_is_returned_by_run_and_join() -> None:
    manager = Manager()
    flags = Flags()
    manager += flags
    thread, result = _run_in_thread(manager)
    assert flags.ready.wait(5)
    manager.stop(9)
    thread.join(5)
    assert not thread.is_alive()
    assert result["code"] == 9

    started = Manager()
    flags = Flags()
    started += flags
    started.start()
    assert flags.ready.wait(5)
    started.stop(11)
    assert started.join(5) == 11
    assert not started.running


def test_stop_from_a_started_handler_with_run_in_this_thread() -> None:
    class Quit(Component):
        def started(self, manager: Manager) -> None:
            self.stop(7)

    manager = Manager()
    manager += Quit()
    assert manager.run() == 7
    assert not manager.running


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_system_exit_in_a_handler_stops_gracefully_then_leaves_run(kind: str) -> None:
    stopped_seen: list[Manager] = []

    class Exits(BaseComponent):
        @handler("started")
        def _sync(self, manager: Manager) -> None:
            if kind == "sync":
                raise SystemExit(3)

        @handler("started")
        async def _async(self, manager: Manager) -> None:
            if kind == "async":
                await sleep(0)
                raise SystemExit(3)

        @handler("stopped")
        def _stopped(self, manager: Manager) -> None:
            stopped_seen.append(manager)

    manager = Manager()
    manager += Exits()
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            manager.run()
        except SystemExit as exit_:
            result["exit"] = exit_.code

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert result["exit"] == 3  # Python's meaning of SystemExit is kept: the program exits
    assert stopped_seen == [manager]  # a graceful stop: stopped was handled
    assert not manager.running


def test_system_exit_in_a_started_tree_ends_its_thread_and_join_returns_the_code() -> None:
    class Exits(Component):
        def started(self, manager: Manager) -> None:
            raise SystemExit(4)

    manager = Manager()
    manager += Exits()
    manager.start()
    assert manager.join(5) == 4
    assert not manager.running


@pytest.mark.parametrize("code", [0, 3, "a message"])
def test_a_program_ending_in_run_exits_with_the_code_of_a_handlers_system_exit(
    tmp_path: Path, code: int | str
) -> None:
    program = tmp_path / "exits.py"
    program.write_text(
        textwrap.dedent(
            f"""
            from netcomp import Component

            class App(Component):
                def started(self, manager):
                    raise SystemExit({code!r})

            App().run()
            print("not reached")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=60
    )
    if isinstance(code, int):
        assert done.returncode == code
        assert done.stderr == ""
    else:
        assert done.returncode == 1
        assert done.stderr == f"{code}\n"  # Python prints a SystemExit's message
    assert done.stdout == ""


def test_join_with_timeout_returns_while_still_running() -> None:
    manager = Manager()
    flags = Flags()
    manager += flags
    manager.start()
    try:
        assert flags.ready.wait(5)
        assert manager.join(0.05) is None
        assert manager.running
        assert manager.loop.thread is not None and manager.loop.thread.is_alive()
    finally:
        _stop_and_join(manager)


def test_start_twice_raises_and_run_while_running_raises() -> None:
    manager = Manager()
    flags = Flags()
    manager += flags
    manager.start()
    try:
        assert flags.ready.wait(5)
        with pytest.raises(RuntimeError, match="already running"):
            manager.start()
        with pytest.raises(RuntimeError, match="already running"):
            manager.run()
    finally:
        _stop_and_join(manager)


def test_run_or_start_on_a_registered_child_raises() -> None:
    root = Manager()
    child = Component()
    root += child
    with pytest.raises(RuntimeError, match="root"):
        child.run()
    with pytest.raises(RuntimeError, match="root"):
        child.start()
    assert not root.running


def test_stop_when_not_running_is_a_no_op() -> None:
    manager = Manager()
    manager.stop()
    manager.stop(5)
    assert not manager.running
    assert manager.join(0.1) is None


def test_manager_can_be_restarted_after_it_stopped() -> None:
    manager = Manager()
    flags = Flags()
    manager += flags
    for _ in range(2):
        flags.ready.clear()
        manager.start()
        assert flags.ready.wait(5)
        _stop_and_join(manager)
    assert flags.log == ["started", "stopped", "started", "stopped"]


# -------------------------------------------------------------------- tick / flush


class Chain(Component):
    """a fires b, b fires c."""

    def init(self) -> None:
        self.seen: list[str] = []

    def a(self) -> None:
        self.seen.append("a")
        self.fire(Event.create("b"))

    def b(self) -> None:
        self.seen.append("b")
        self.fire(Event.create("c"))

    def c(self) -> None:
        self.seen.append("c")


def test_tick_dispatches_one_batch_and_flush_runs_cascades_to_the_end() -> None:
    manager = Manager()
    chain = Chain()
    manager += chain
    manager.flush()  # the registered event
    assert not manager.loop.queue

    manager.fire(Event.create("a"))
    assert chain.seen == []  # nothing runs until the loop turns
    manager.tick()
    assert chain.seen == ["a"]
    manager.tick()
    assert chain.seen == ["a", "b"]
    manager.fire(Event.create("a"))
    manager.flush()
    assert chain.seen == ["a", "b", "c", "a", "b", "c"]
    assert not manager.loop.queue
    assert not manager.running


def test_tick_with_nothing_to_do_returns() -> None:
    manager = Manager()
    manager.tick()
    manager.tick(0.01)
    manager.flush()
    assert not manager.loop.queue


def test_flush_limit_bounds_an_endless_ping_pong() -> None:
    class PingPong(Component):
        def init(self) -> None:
            self.count = 0

        def ping(self) -> None:
            self.count += 1
            self.fire(Event.create("pong"))

        def pong(self) -> None:
            self.count += 1
            self.fire(Event.create("ping"))

    manager = Manager()
    pingpong = PingPong()
    manager += pingpong
    manager.flush()
    manager.fire(Event.create("ping"))
    manager.flush(limit=10)
    assert 0 < pingpong.count <= 10
    assert manager.loop.queue  # still going: flush returned because of the limit
    before = pingpong.count
    manager.flush(limit=5)
    assert before < pingpong.count <= before + 5


RALLY_END = 300_000


class Rally(Component):
    """An endless ping-pong under ``run()`` (dispatch goes from batch to batch without
    returning to the loop while nothing else needs it); ``log`` records each event, and
    what the test adds records itself there too."""

    def init(self) -> None:
        self.log: list[str] = []
        self.hooks: dict[int, Any] = {}

    def ping(self, i: int) -> None:
        self.log.append(f"ping {i}")
        hook = self.hooks.pop(i, None)
        if hook is not None:
            hook()
        if i < RALLY_END:  # a bound: the tests stop it long before
            self.fire(Event.create("pong", i + 1))

    def pong(self, i: int) -> None:
        self.log.append(f"pong {i}")
        if i < RALLY_END:
            self.fire(Event.create("ping", i + 1))


@pytest.mark.parametrize(
    ("kind", "at"),
    [("callback", 5), ("timer", 7)],
    ids=["call_soon", "due timer"],
)
def test_a_handlers_callback_or_due_timer_runs_between_its_batch_and_the_next_under_run(
    kind: str, at: int
) -> None:
    manager = Manager()
    rally = Rally()
    manager += rally

    def scheduled() -> None:
        rally.log.append(kind)
        manager.stop()

    if kind == "callback":
        rally.hooks[at] = lambda: manager.loop.call_soon(scheduled)
    else:
        rally.hooks[at] = lambda: manager.loop.call_later(0, scheduled)
    manager.fire(Event.create("ping", 1))
    assert manager.run() == 0
    where = rally.log.index(f"ping {at}")
    assert rally.log[where : where + 3] == [f"ping {at}", kind, f"pong {at + 1}"]


def test_a_callback_from_another_thread_is_not_starved_by_endless_batches() -> None:
    manager = Manager()
    rally = Rally()
    manager += rally
    rallying = threading.Event()
    rally.hooks[3] = rallying.set
    manager.fire(Event.create("ping", 1))
    manager.start()
    try:
        assert rallying.wait(10)
        ran = threading.Event()

        def callback() -> None:
            rally.log.append("callback")
            ran.set()
            manager.stop()

        manager.loop.call_soon_threadsafe(callback)
        assert ran.wait(10), "the callback never ran while the events went on"
    finally:
        manager.stop()
        assert manager.join(10) == 0
    assert "callback" in rally.log
    assert f"pong {RALLY_END}" not in rally.log  # it ran (and stopped) before the end


def test_tick_from_another_thread_while_running_raises() -> None:
    manager = Manager()
    with running(manager), pytest.raises(RuntimeError, match="thread"):
        manager.tick()


# ------------------------------------------------------------- fire from any thread


def test_fire_from_another_thread_wakes_an_idle_loop_at_once() -> None:
    manager = Manager()
    waits = LoopWaits(manager.loop)
    with running(manager) as recorder:
        # The loop goes idle after started: it sleeps in select with no deadline.
        assert waits.wait_blocked(lambda: not manager.loop.queue, timeout=2) is None
        assert manager.loop.scheduled() == []
        begin = monotonic()
        manager.fire(Event.create("poke"))
        recorder.wait_for("poke", timeout=2)
        latency = monotonic() - begin
    assert latency < 1.0


def test_many_threads_firing_at_once_lose_nothing() -> None:
    threads_n, per_thread = 4, 2000

    class Counter(Component):
        def init(self) -> None:
            self.got: dict[int, list[int]] = {t: [] for t in range(threads_n)}
            self.done = threading.Event()

        def hit(self, tid: int, i: int) -> None:
            self.got[tid].append(i)

        def finish(self) -> None:
            self.done.set()

    manager = Manager()
    counter = Counter()
    manager += counter
    barrier = threading.Barrier(threads_n)

    def blast(tid: int) -> None:
        barrier.wait(5)
        for i in range(per_thread):
            manager.fire(Event.create("hit", tid, i))

    with running(manager):
        workers = [threading.Thread(target=blast, args=(t,)) for t in range(threads_n)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(10)
            assert not worker.is_alive()
        manager.fire(Event.create("finish"))  # queued after every hit: FIFO
        assert counter.done.wait(10)
    for tid in range(threads_n):
        assert counter.got[tid] == list(range(per_thread))  # all there, in each thread's order


def test_register_then_unregister_from_another_thread_keeps_their_order() -> None:
    # register() from outside the loop thread is deferred to the loop; an unregister()
    # right after it must not be lost because the component has no parent yet.
    manager = Manager()
    with running(manager) as recorder:
        child = Component()
        child.register(manager)
        child.unregister()
        recorder.wait_for("unregistered", predicate=lambda e: e.args[0] is child, timeout=5)
        assert child.parent is None
        assert child not in manager.components


# ------------------------------------------------------------------------ processes


# start(process=True) forks, which it refuses while other threads run; pytest's process may
# have some (a resolver pool left by an earlier test), so these run in a fresh interpreter.
START_PROCESS = """
    import multiprocessing, os
    from netcomp import Component, Manager

    reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)

    class Reporter(Component):
        def started(self, manager):
            writer.send(("started", os.getpid()))

        def stopped(self, manager):
            writer.send(("stopped", os.getpid()))

    manager = Manager()
    manager += Reporter()
    manager.start(process=True)
    process = manager.loop.process
    try:
        assert reader.poll(10), "the child did not report started"
        kind, pid = reader.recv()
        assert kind == "started" and pid == process.pid and pid != os.getpid()
        assert manager.running
        manager.stop()
        assert manager.join(10) == 0
        assert reader.poll(5), "the child's stopped handler did not run"
        assert reader.recv() == ("stopped", pid)
        assert not manager.running
        print("OK", flush=True)
    finally:
        if process.is_alive():
            process.kill()
"""

EXIT_CODE = """
    from netcomp import Component, Manager

    class Quit(Component):
        def started(self, manager):
            self.stop(4)

    manager = Manager()
    manager += Quit()
    manager.start(process=True)
    assert manager.join(10) == 4
    assert not manager.running
    print("OK", flush=True)
"""

REFUSED_WITH_THREADS = """
    import threading
    from netcomp import Manager

    done = threading.Event()
    threading.Thread(target=done.wait, name="busy-helper", daemon=True).start()
    try:
        Manager().start(process=True)
    except RuntimeError as error:
        print(error, flush=True)
    finally:
        done.set()
"""


def _run_script(source: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_start_process_runs_the_tree_in_a_child_and_stop_ends_it() -> None:
    assert _run_script(START_PROCESS) == "OK\n"


def test_child_process_exit_code_is_what_its_loop_stopped_with() -> None:
    assert _run_script(EXIT_CODE) == "OK\n"


def test_start_process_refuses_to_fork_while_other_threads_run() -> None:
    out = _run_script(REFUSED_WITH_THREADS)
    assert out.startswith("start(process=True) forks this process, and forking while other ")
    assert "(running: busy-helper)" in out


# -------------------------------------------------------------------------- signals


class _Lines:
    """Reads a child's output lines on a thread, so the test can wait with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def expect(self, text: str, timeout: float = 10.0) -> None:
        """Read lines until one equals ``text``; fail on EOF or timeout."""
        deadline = monotonic() + timeout
        while True:
            remaining = deadline - monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout} s; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"output ended before {text!r}; saw {self.seen}")
            self.seen.append(line)
            if line == text:
                return


def _spawn(source: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(source)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


GRACEFUL = """
    import sys
    from netcomp import Component, Manager

    class App(Component):
        def started(self, manager):
            print("READY", flush=True)

        def stopped(self, manager):
            print("STOPPED", flush=True)

    manager = Manager()
    manager += App()
    code = manager.run()
    print("EXIT", code, flush=True)
    sys.exit(code or 0)
"""


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_manager_gracefully(signo: int) -> None:
    proc = _spawn(GRACEFUL)
    try:
        assert proc.stdout is not None
        lines = _Lines(proc.stdout)
        lines.expect("READY")
        proc.send_signal(signo)
        lines.expect("STOPPED")
        lines.expect("EXIT 0")  # run() returns 0 on a stop given no code
        assert proc.wait(10) == 0
    finally:
        _kill(proc)


SIGNAL_ON_ANOTHER_THREAD = """
    import os, signal, sys, threading, time
    from netcomp import Component, Manager

    def signal_while_the_loop_waits(main_tid):
        # Python's C-level handler runs on the thread a signal is sent to; the main
        # thread, asleep in epoll_wait, is not interrupted. Send it once the loop waits.
        deadline = time.monotonic() + 10
        with open(f"/proc/self/task/{main_tid}/wchan") as wchan:
            while "epoll" not in wchan.read() and time.monotonic() < deadline:
                wchan.seek(0)
                time.sleep(0.001)
        print("SENT", flush=True)  # (before: after it, the loop may print at once)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    class App(Component):
        def started(self, manager):
            main_tid = threading.main_thread().native_id
            threading.Thread(target=signal_while_the_loop_waits, args=(main_tid,)).start()

        def stopped(self, manager):
            print("STOPPED", flush=True)

    manager = Manager()
    manager += App()
    sys.exit(manager.run() or 0)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc (Linux)")
def test_a_signal_taken_by_another_thread_wakes_the_waiting_loop() -> None:
    """The loop waits on ``signal.set_wakeup_fd``'s pipe: a signal whose C-level handler
    runs elsewhere than in the loop's wait (another thread, or the main thread just before
    it enters epoll_wait) still ends the wait. It did not: the daemon test hung in CI."""
    proc = _spawn(SIGNAL_ON_ANOTHER_THREAD)
    try:
        assert proc.stdout is not None
        lines = _Lines(proc.stdout)
        lines.expect("SENT")
        lines.expect("STOPPED", timeout=5)
        assert proc.wait(10) == 0
    finally:
        _kill(proc)


KEEP_ON_FIRST_SIGNAL = """
    import sys
    import threading
    from netcomp import Component, Event, Manager, handler

    class App(Component):
        def init(self):
            self.signals = 0

        def started(self, manager):
            print("READY", flush=True)

        @handler("signal")
        def _on_signal(self, event, signo, frame):
            self.signals += 1
            if self.signals == 1:
                event.stop()  # the manager must keep running
                print("KEPT", flush=True)

        def ping(self, text):
            print("PONG", text, flush=True)

        def stopped(self, manager):
            print("STOPPED", flush=True)

    manager = Manager()
    manager += App()

    def pump():
        for line in sys.stdin:
            manager.fire(Event.create("ping", line.strip()))

    threading.Thread(target=pump, daemon=True).start()
    sys.exit(manager.run() or 0)
"""


def test_a_signal_handler_that_stops_the_event_keeps_the_manager_running() -> None:
    proc = _spawn(KEEP_ON_FIRST_SIGNAL)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        lines = _Lines(proc.stdout)
        lines.expect("READY")
        proc.send_signal(signal.SIGTERM)
        lines.expect("KEPT")
        # Still handling events after the signal was dealt with:
        proc.stdin.write("after-signal\n")
        proc.stdin.flush()
        lines.expect("PONG after-signal")
        assert "STOPPED" not in lines.seen
        proc.send_signal(signal.SIGTERM)  # not stopped this time: graceful stop
        lines.expect("STOPPED")
        assert proc.wait(10) == 0
    finally:
        _kill(proc)


BLOCKED = """
    import signal, sys, time
    from netcomp import Component, Manager

    class App(Component):
        def started(self, manager):
            previous = signal.getsignal(signal.SIGINT)

            def seen(signo, frame):
                print("SIGNAL", flush=True)  # the loop's own handler runs right after
                previous(signo, frame)

            signal.signal(signal.SIGINT, seen)
            print("READY", flush=True)
            time.sleep(60)  # a handler that blocks the loop: no graceful stop can run

        def loop_ended(self):
            print("ENDED", flush=True)

    manager = Manager()
    manager += App()
    try:
        manager.run()
    except KeyboardInterrupt as error:
        print("FORCED", error, flush=True)
        sys.exit(130)
"""


def test_a_second_sigint_forces_the_exit_while_a_handler_blocks() -> None:
    proc = _spawn(BLOCKED)
    try:
        assert proc.stdout is not None
        lines = _Lines(proc.stdout)
        lines.expect("READY")
        proc.send_signal(signal.SIGINT)  # graceful: queued behind the blocked handler
        lines.expect("SIGNAL")
        proc.send_signal(signal.SIGINT)  # the second one does not wait
        lines.expect("SIGNAL")
        lines.expect("ENDED")  # the components' loop_ended hooks still ran
        lines.expect("FORCED signal 2 again while stopping: forced exit")
        assert proc.wait(10) == 130
    finally:
        _kill(proc)


def test_registered_and_unregistered_name_the_component_channel_too() -> None:
    """Every handler hears them (``"*"``); ``event.channels`` also says whose they are, as
    circuits fired them on the component's channel (its tests wait on that)."""
    from netcomp import Component

    class Named(Component):
        channel = "named"

    seen: list[tuple[str, tuple[Any, ...]]] = []

    class Listener(Component):
        def registered(self, event: Any, component: Any, manager: Any) -> None:
            seen.append(("registered", event.channels))

        def unregistered(self, event: Any, component: Any, manager: Any) -> None:
            seen.append(("unregistered", event.channels))

    root = Manager()
    Listener().register(root)
    root.flush()
    seen.clear()
    child = Named().register(root)
    root.flush()
    child.unregister()
    root.flush()
    assert seen == [("registered", ("*", "named")), ("unregistered", ("*", "named"))]


def test_run_on_the_main_thread_lends_and_gives_back_the_signal_wakeup_fd() -> None:
    """``run()`` points ``signal.set_wakeup_fd`` at its own pipe while it runs and
    restores the program's own wake-up descriptor (and its pipe is closed) after."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are the main thread's")
    own_read, own_write = os.pipe()
    os.set_blocking(own_write, False)
    seen: list[tuple[int, int]] = []

    class Peek(Component):
        def started(self, manager: Any) -> None:
            loops = signal.set_wakeup_fd(-1)
            signal.set_wakeup_fd(loops)
            seen.append((loops, os.fstat(loops).st_ino))
            self.stop()

    previous = signal.set_wakeup_fd(own_write)
    try:
        manager = Manager()
        manager += Peek()
        assert manager.run() == 0
        assert signal.set_wakeup_fd(own_write) == own_write  # given back
        assert seen and seen[0][0] not in (-1, own_write)
        fd, inode = seen[0]
        try:
            reused = os.fstat(fd).st_ino  # (the number may have been given out again)
        except OSError:
            reused = None
        assert reused != inode  # the loop's pipe is closed
    finally:
        signal.set_wakeup_fd(previous)
        os.close(own_read)
        os.close(own_write)
