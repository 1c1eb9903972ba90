"""The Redis bridge against a real redis-server and real processes (never a mock).

A private server runs per test run (per xdist worker) with no persistence; the durability
tests start their own with an append-only file. Peers are other Python processes running
``tests/_broker_peer.py``. Every wait has a hard timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _broker_peer import EVENTS, FAST, Unlucky, compute, job, say
from _net_support import cert_files, client_ssl_context
from _redis_support import Peer, RedisServer, free_port, need_redis, redis_server
from netcomp import Component, Event, Future, Manager, handler
from netcomp.broker import (
    JsonCodec,
    MsgpackCodec,
    RedisBridge,
    RedisClient,
    RedisError,
    Undeliverable,
    WireError,
    WorkQueue,
)
from netcomp.net import QueueFull
from netcomp.testing import running

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server for this module's tests (no persistence)."""
    need_redis()
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    """Peer processes a test starts; each is stopped (or killed) at the end."""
    started: list[Peer] = []
    yield started
    for peer in started:
        if peer.proc.poll() is None:
            peer.kill()
        if peer.proc.stdout is not None:
            peer.proc.stdout.close()


class Collector(Component):
    """Collects ``done`` events on ``results``; the test waits for a number of distinct ones."""

    channel = "results"

    def init(self, target: int) -> None:
        self.target = target
        self.seen: list[tuple[int, str]] = []
        self.distinct: set[int] = set()
        self.cond = threading.Condition()

    def done(self, n: int, worker: str) -> None:
        with self.cond:
            self.seen.append((n, worker))
            self.distinct.add(n)
            self.cond.notify_all()

    @handler(False)
    def wait_all(self, timeout: float, count: int | None = None) -> list[tuple[int, str]]:
        """Block the test until ``count`` (default ``target``) distinct jobs were done."""
        want = self.target if count is None else count
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.distinct) >= want, timeout)
            assert ok, f"only {len(self.distinct)} of {want} done within {timeout} s"
            return list(self.seen)


def bridge_tree(url: str, channels: list[Any], *parts: Any, **options: Any) -> Manager:
    manager = Manager()
    bridge = RedisBridge(url, channels, events=EVENTS, backoff=FAST, block=1.0, **options)
    bridge.register(manager)
    for part in parts:
        part.register(manager)
    return manager


# ------------------------------------------------------------------ broadcast
def test_broadcast_reaches_three_processes_and_never_comes_back(
    redis: RedisServer, peers: list[Peer]
) -> None:
    manager = bridge_tree(redis.url, ["chat", "echo"])
    with running(manager) as recorder:
        recorder.wait_for("bridged", timeout=10)
        peers += [Peer("echo", redis.url) for _ in range(3)]
        for peer in peers:
            peer.wait_line("ready")
        recorder.wait_for("hello", count=3, timeout=10)
        to = {"who": ("all", b"\x00\xff"), 7: [1.5, None, True]}
        manager.fire(say("hi", to=to), "chat")
        recorder.wait_for("heard", count=3, timeout=10)
        heard = [e for e in recorder.events if e.name == "heard"]
        assert sorted(e.args for e in heard) == sorted((peer.pid, "hi") for peer in peers)
        assert all(e.kwargs == {"to": to} for e in heard)  # the same arguments, types kept
        # Our own say was handled here once (locally), never again from Redis.
        assert recorder.count("say") == 1
        for peer in peers:
            assert peer.stop() == 0
    assert not recorder.errors


class Said(Component):
    """Collects what ``say`` events carry on ``chat``, in order; fires a burst on ``burst``."""

    channel = "chat"

    def init(self) -> None:
        self.said: list[Any] = []
        self.cond = threading.Condition()

    def say(self, text: Any, to: Any = None) -> None:
        with self.cond:
            self.said.append(text)
            self.cond.notify_all()

    @handler("burst", channel="chat")
    def _burst(self, count: int, bad_at: int) -> None:
        for i in range(count):
            self.fire(say(object() if i == bad_at else i), "chat")

    @handler(False)
    def wait_count(self, count: int, timeout: float) -> list[Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.said) >= count, timeout)
            assert ok, f"only {len(self.said)} of {count} within {timeout} s"
            return list(self.said)


def test_a_turn_s_broadcast_events_go_out_together_in_order_one_refused_alone(
    redis: RedisServer,
) -> None:
    # 2,501 events fired in one turn: the one that cannot cross is refused when it is
    # fired (TypeError on its value); the 2,500 others are published as few messages
    # (at most 1,000 events each), and arrive in order.
    hearing, saying = Said(), Said()
    receiver = bridge_tree(redis.url, ["chat"], hearing, prefix="burst")
    sender = bridge_tree(redis.url, ["chat"], saying, prefix="burst")
    with running(receiver) as heard, running(sender, check_errors=False) as sent:
        heard.wait_for("bridged", timeout=10)
        sent.wait_for("bridged", timeout=10)
        redis.call("CONFIG", "RESETSTAT")
        sender.fire(Event.create("burst", 2501, 1234), "chat")
        got = hearing.wait_count(2500, timeout=20)
        assert got == [i for i in range(2501) if i != 1234]
        refused = sent.wait_for("say", predicate=lambda e: type(e.args[0]) is object)
        assert refused.value is not None and isinstance(refused.value.exception, TypeError)
        stats = redis.call("INFO", "commandstats").decode()
        publishes = int(stats.split("cmdstat_publish:calls=")[1].split(",")[0])
        assert publishes == 3
        local = saying.wait_count(2501, timeout=1)  # local handlers ran, for all of them
        assert local[:1234] + local[1235:] == got and type(local[1234]) is object
    assert not heard.errors


# ------------------------------------------------------------------ work queue
def test_work_queue_three_workers_ten_thousand_events_each_once(
    redis: RedisServer, peers: list[Peer]
) -> None:
    total = 10_000
    collector = Collector(total)
    manager = bridge_tree(
        redis.url, [WorkQueue("jobs"), WorkQueue("results", consume=True)], collector
    )
    with running(manager) as recorder:
        recorder.wait_for("bridged", timeout=10)
        peers += [Peer("worker", redis.url, "--name", f"w{i}") for i in range(3)]
        for peer in peers:
            peer.wait_line("ready")
        for n in range(total):
            manager.fire(job(n), "jobs")
        seen = collector.wait_all(60)
        counts = Counter(n for n, _ in seen)
        assert sorted(counts) == list(range(total))
        assert set(counts.values()) == {1}, "a job was handled twice"
        workers = Counter(worker for _, worker in seen)
        assert set(workers) == {"w0", "w1", "w2"}, workers
        assert redis.call("XLEN", "netcomp:jobs") == 0  # acknowledged and deleted
        for peer in peers:
            assert peer.stop() == 0
    assert not recorder.errors


def test_a_killed_worker_s_unacknowledged_jobs_go_to_another(
    redis: RedisServer, peers: list[Peer]
) -> None:
    collector = Collector(20)
    manager = bridge_tree(
        redis.url,
        [WorkQueue("jobs", group="kill"), WorkQueue("results", consume=True)],
        collector,
        prefix="kill9",
    )
    with running(manager) as recorder:
        recorder.wait_for("bridged", timeout=10)
        stuck = Peer("worker", redis.url, "--name", "stuck", "--stuck", "--prefetch", "5",
                     "--prefix", "kill9", "--group", "kill")  # fmt: skip
        peers.append(stuck)
        stuck.wait_line("ready")
        for n in range(20):
            manager.fire(job(n), "jobs")
        taken = [int(stuck.wait_line("taken")[-1].split()[1]) for _ in range(5)]
        stuck.kill()  # kill -9 with 5 jobs taken and unacknowledged
        pending = redis.call("XPENDING", "kill9:jobs", "kill")
        assert pending[0] >= 5
        rescuer = Peer("worker", redis.url, "--name", "rescuer", "--prefix", "kill9",
                       "--group", "kill")  # fmt: skip
        peers.append(rescuer)
        seen = collector.wait_all(30)
        assert sorted(n for n, _ in seen) == list(range(20))
        assert {worker for _, worker in seen} == {"rescuer"}
        assert set(taken) <= {n for n, _ in seen}
        assert rescuer.stop() == 0
    assert not recorder.errors


def test_redis_killed_and_restarted_with_aof_loses_nothing_acknowledged(
    tmp_path: Path, peers: list[Peer]
) -> None:
    need_redis()
    half = 2000
    collector = Collector(2 * half)
    with redis_server(tmp_path, aof=True) as server:
        manager = bridge_tree(
            server.url,
            [
                WorkQueue("jobs", group="dur"),
                WorkQueue("results", consume=True, idle_timeout=1.0, claim_interval=0.25),
            ],
            collector,
            prefix="dur",
        )
        with running(manager) as recorder:
            recorder.wait_for("bridged", timeout=10)
            worker = Peer("worker", server.url, "--prefix", "dur", "--group", "dur")
            peers.append(worker)
            worker.wait_line("ready")
            for n in range(half):
                manager.fire(job(n), "jobs")
            collector.wait_all(20, count=100)
            server.kill()  # kill -9 in the middle of the stream
            for n in range(half, 2 * half):
                manager.fire(job(n), "jobs")  # queued while Redis is down
            server.restart()
            seen = collector.wait_all(30)
            assert {n for n, _ in seen} == set(range(2 * half))
            later: list[int] = []
            firsts: set[int] = set()
            for n, _ in seen:
                if n >= half and n not in firsts:
                    firsts.add(n)
                    later.append(n)
            assert later == sorted(later), "sends queued while down arrived out of order"
            assert worker.stop() == 0
        assert recorder.count("unlinked") >= 1  # the test's own links did go down


# ------------------------------------------------------------------ calls
class ask(Event):
    """``ask(x, channel, timeout)``: call ``compute(x)`` across the bridge."""


class Asker(Component):
    channel = "asker"

    async def ask(self, x: int, channel: str, timeout: float | None = None) -> Any:
        return await self.call(compute(x), channel, timeout=timeout)

    async def shout(self, text: str) -> Any:
        return await self.call(say(text), "chat")


def test_calls_across_the_bridge_return_values_raise_errors_and_time_out(
    redis: RedisServer, peers: list[Peer]
) -> None:
    manager = bridge_tree(
        redis.url, [WorkQueue("rpc"), WorkQueue("nobody")], Asker(), call_timeout=0.5
    )
    with running(manager, check_errors=False) as recorder:
        recorder.wait_for("bridged", timeout=10)
        peers.append(Peer("rpc", redis.url))
        peers[0].wait_line("ready")

        def ask_for(x: int, channel: str = "rpc", timeout: float | None = 10) -> Any:
            value = manager.fire(ask(x, channel, timeout), "asker")
            recorder.wait_for("ask", predicate=lambda e: e.value is value, timeout=15)
            return value

        assert ask_for(21).value == 42
        failed = ask_for(-1).exception
        assert type(failed) is ValueError and str(failed) == "negative: -1"
        unlucky = ask_for(13).exception
        assert type(unlucky) is Unlucky and str(unlucky) == "thirteen"
        late = ask_for(1, "nobody", timeout=0.2).exception
        assert isinstance(late, TimeoutError) and "timed out after 0.2 s" in str(late)
        late = ask_for(1, "nobody", timeout=None).exception  # the bridge's call_timeout
        assert isinstance(late, TimeoutError) and "through Redis within 0.5 s" in str(late)
        assert peers[0].stop() == 0


# ------------------------------------------------------------------ the wire
def test_malformed_payloads_and_unknown_classes_are_errors_and_the_loop_goes_on(
    redis: RedisServer,
) -> None:
    manager = bridge_tree(redis.url, ["chat", WorkQueue("wq", consume=True)], prefix="wire")
    with running(manager, check_errors=False) as recorder:
        recorder.wait_for("bridged", timeout=10)
        unknown = MsgpackCodec().encode([1, "e", "elsewhere", 1, "nope", [], {}, 0])
        for payload in (b"garbage", b"M\xc1", b"J[1,2]", unknown):
            assert redis.call("PUBLISH", "wire:chat", payload) == 1
        recorder.wait_for("error", count=4, timeout=10)
        errors = [e.args[0] for e in recorder.events if e.name == "error"]
        assert all(isinstance(err, WireError) for err in errors), errors
        assert "'nope' is not registered" in str(errors[-1])
        good = JsonCodec().encode([1, "e", "elsewhere", 2, "say", ["still here"], {}, 0])
        redis.call("PUBLISH", "wire:chat", good)
        assert recorder.wait_for("say", timeout=10).args == ("still here",)
        # On a work queue, such an entry goes to the dead-letter stream, with the reason.
        redis.call("XADD", "wire:wq", "*", "d", b"garbage")
        undeliverable = recorder.wait_for(
            "error", predicate=lambda e: isinstance(e.args[0], Undeliverable), timeout=10
        ).args[0]
        assert undeliverable.dead_letter == "wire:wq:dead"
        dead = redis.call("XRANGE", "wire:wq:dead", "-", "+")
        fields = dict(zip(dead[0][1][::2], dead[0][1][1::2], strict=True))
        assert fields[b"d"] == b"garbage" and b"not a netcomp message" in fields[b"reason"]
        # An entry holds one event: a message of two is refused whole, with the reason.
        two = MsgpackCodec().encode([2, "e", "else", 3, ["say", [1], {}, 0], ["say", [2], {}, 0]])
        redis.call("XADD", "wire:wq", "*", "d", two)
        recorder.wait_for(
            "error", predicate=lambda e: isinstance(e.args[0], Undeliverable), count=2, timeout=10
        )
        dead = redis.call("XRANGE", "wire:wq:dead", "-", "+")
        assert (
            b"holds one event"
            in dict(zip(dead[1][1][::2], dead[1][1][1::2], strict=True))[b"reason"]
        )
        assert redis.call("XLEN", "wire:wq") == 0
        assert recorder.count("say") == 1  # "still here" only


# ------------------------------------------------------------------ AUTH and TLS
def test_auth_with_username_password_and_database(tmp_path: Path) -> None:
    need_redis()
    options = ("--requirepass", "secret", "--user", "alice", "on", ">wonderland", "~*", "&*",
               "+@all")  # fmt: skip
    with redis_server(tmp_path, *options) as server:
        base = f"127.0.0.1:{server.port}"
        first = bridge_tree(f"redis://alice:wonderland@{base}/3", ["chat"], prefix="auth")
        second = bridge_tree(f"redis://:secret@{base}/3", ["chat"], prefix="auth")
        with running(first) as one, running(second) as two:
            one.wait_for("bridged", timeout=10)
            two.wait_for("bridged", timeout=10)
            first.fire(say("through auth"), "chat")
            assert two.wait_for("say", timeout=10).args == ("through auth",)
        wrong = bridge_tree(f"redis://:wrong@{base}/0", ["chat"])
        with running(wrong, check_errors=False) as recorder:
            failure = recorder.wait_for("error", timeout=10).args[0]
            assert isinstance(failure, RedisError) and "AUTH failed" in str(failure)
        bridge = next(c for c in wrong.components if isinstance(c, RedisBridge))
        assert not bridge.commands.link.enabled  # a wrong password is not retried forever


def test_tls_to_redis(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    need_redis()
    cert, key = cert_files(tmp_path_factory)
    tls_port = free_port()
    options = ("--port", "0", "--tls-port", str(tls_port), "--tls-cert-file", cert,
               "--tls-key-file", key, "--tls-ca-cert-file", cert,
               "--tls-auth-clients", "no")  # fmt: skip
    with redis_server(tmp_path, *options):
        url = f"rediss://127.0.0.1:{tls_port}/0"
        context = client_ssl_context(cert)
        first = bridge_tree(url, ["chat"], ssl_context=context)
        second = bridge_tree(url, ["chat"], ssl_context=context)
        with running(first) as one, running(second) as two:
            one.wait_for("bridged", timeout=10)
            two.wait_for("bridged", timeout=10)
            first.fire(say("over TLS"), "chat")
            assert two.wait_for("say", timeout=10).args == ("over TLS",)


# ------------------------------------------------------------------ the client
def test_client_queues_while_down_refuses_when_full_and_flushes_in_order(
    tmp_path: Path,
) -> None:
    need_redis()
    port = free_port()
    client = RedisClient(f"redis://127.0.0.1:{port}/0", queue_limit=200, backoff=FAST)
    manager = Manager()
    client.register(manager)
    replies: list[Any] = []
    with running(manager, check_errors=False) as recorder:
        recorder.wait_for("unreachable", timeout=10)  # nothing listens yet

        def send_all() -> None:
            for n in range(10):
                client.send("RPUSH", "order", n, callback=replies.append)

        manager.loop.call_soon_threadsafe(send_all)
        refused = recorder.wait_for("error", timeout=10).args[0]
        assert isinstance(refused, QueueFull)
        kept = 10 - sum(isinstance(r, QueueFull) for r in replies)
        assert 0 < kept < 10
        with redis_server(tmp_path, port=port) as server:
            recorder.wait_for("linked", timeout=10)
            assert server.call("LRANGE", "order", 0, -1) == [str(n).encode() for n in range(kept)]
        assert [r for r in replies if not isinstance(r, QueueFull)] == list(range(1, kept + 1))


def test_a_call_whose_broadcast_cannot_be_queued_fails_at_once() -> None:
    # Redis is not there and the queue is nearly full: the turn's message is refused
    # whole (error(QueueFull)), and the call in it raises instead of waiting its timeout.
    need_redis()
    manager = bridge_tree(f"redis://127.0.0.1:{free_port()}/0", ["chat"], Asker(), queue_limit=300)
    with running(manager, check_errors=False) as recorder:
        recorder.wait_for("unreachable", timeout=10)
        value = manager.fire(Event.create("shout", "x" * 400), "asker")
        recorder.wait_for("shout", predicate=lambda e: e.value is value, timeout=10)
        assert isinstance(value.exception, ConnectionError)
        assert "queue is full" in str(value.exception)
        assert any(isinstance(e.args[0], QueueFull) for e in recorder.events if e.name == "error")


# ------------------------------------------------------------------ the example
def test_distributed_jobs_example(redis: RedisServer, peers: list[Peer]) -> None:
    """examples/distributed_jobs.py as its header says: two workers, a front, curl."""
    env = {"REDIS_URL": redis.url}
    example = [str(Path(__file__).resolve().parent.parent / "examples" / "distributed_jobs.py")]
    workers = [Peer("", "", script=[*example, "worker"], env=env) for _ in range(2)]
    peers += workers
    for worker in workers:
        worker.wait_line("ready")
    front = Peer("", "", script=[*example, "front", "0"], env=env)
    peers.append(front)
    port = int(front.wait_line("listening on")[-1].rsplit(":", 1)[1])
    answers = []
    for n in range(6):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/square?n={n}", timeout=10) as r:
            answers.append(json.loads(r.read()))
    assert [a["square"] for a in answers] == [n * n for n in range(6)]
    assert {a["worker"] for a in answers} <= {w.pid for w in workers}
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/fail", timeout=10)
    assert failed.value.code == 500
    failed.value.close()
    for peer in (front, *workers):
        assert peer.stop() == 0


class Failing(Component):
    channel = "flaky"

    def job(self, n: int) -> None:
        raise RuntimeError(f"job {n} fails every time")


def test_an_entry_failing_every_delivery_goes_to_the_dead_letter_stream(
    redis: RedisServer,
) -> None:
    queue = WorkQueue(
        "flaky", consume=True, idle_timeout=0.2, claim_interval=0.05, max_deliveries=2
    )
    manager = bridge_tree(redis.url, [queue], Failing(), prefix="dlq")
    with running(manager, check_errors=False) as recorder:
        recorder.wait_for("bridged", timeout=10)
        manager.fire(job(7), "flaky")
        buried = recorder.wait_for(
            "error", predicate=lambda e: isinstance(e.args[0], Undeliverable), timeout=10
        ).args[0]
        assert "delivered 2 times without success" in buried.reason
        assert recorder.count("job") == 3  # sent here, then handled twice (and failed)
        dead = redis.call("XRANGE", "dlq:flaky:dead", "-", "+")
        fields = dict(zip(dead[0][1][::2], dead[0][1][1::2], strict=True))
        assert fields[b"deliveries"] == b"2" and fields[b"group"] == b"workers"
        assert redis.call("XPENDING", "dlq:flaky", "workers")[0] == 0  # acknowledged


class Holding(Component):
    """Takes ``job`` events on ``held`` and holds each (its Future) until ``release``."""

    channel = "held"

    def init(self) -> None:
        self.futures: list[Future] = []
        self.taken: list[int] = []
        self.cond = threading.Condition()

    def job(self, n: int) -> Future:
        future = Future()
        with self.cond:
            self.futures.append(future)
            self.taken.append(n)
            self.cond.notify_all()
        return future

    @handler("release", channel="ctl")
    def _release(self) -> None:
        with self.cond:
            futures, self.futures = self.futures, []
        for future in futures:
            future.set_result(None)

    @handler(False)
    def wait_held(self, count: int, timeout: float) -> int:
        """Wait until ``count`` jobs are held; how many are."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.futures) >= count, timeout)
            assert ok, f"only {len(self.futures)} of {count} held within {timeout} s"
            return len(self.futures)


@pytest.mark.parametrize("prefetch", [1, 3])
def test_a_worker_holds_at_most_prefetch_entries_with_its_reads_in_flight(
    redis: RedisServer, prefetch: int
) -> None:
    # A worker keeps two reads in flight; together with what it handles they never ask
    # for more than ``prefetch`` entries: the others stay in the stream for other workers.
    holding = Holding()
    queue = WorkQueue("held", consume=True, prefetch=prefetch)
    manager = bridge_tree(redis.url, [queue], holding, prefix=f"prefetch{prefetch}")
    key = f"prefetch{prefetch}:held"
    with running(manager) as recorder:
        recorder.wait_for("bridged", timeout=10)
        for n in range(10):
            manager.fire(job(n), "held")
        assert holding.wait_held(prefetch, timeout=10) == prefetch
        # Redis answers a worker's reads in order, the second at once after the first:
        # what they took is in the group's pending list before this command runs.
        assert redis.call("XPENDING", key, "workers")[0] == prefetch
        assert redis.call("XLEN", key) == 10
        done, releases = 0, 0
        while done < 10:
            held = holding.wait_held(min(prefetch, 10 - done), timeout=10)
            assert held <= prefetch
            manager.fire(Event.create("release"), "ctl")
            releases += 1
            recorder.wait_for("release", count=releases, timeout=10)
            done += held
        assert sorted(holding.taken) == list(range(10))  # each once, none held back


def test_a_worker_whose_read_redis_refuses_reads_again(redis: RedisServer) -> None:
    # The stream's key holds a string: Redis refuses the group and every read (WRONGTYPE),
    # as it refuses them with LOADING while it restarts. Each refusal is an error event;
    # once the key is a stream with the group, the worker reads again and takes the job.
    key = "refused:held"
    redis.call("SET", key, "not a stream")
    holding = Holding()
    worker = bridge_tree(redis.url, [WorkQueue("held", consume=True)], holding, prefix="refused")
    sender = bridge_tree(redis.url, [WorkQueue("held")], prefix="refused")
    with running(worker, check_errors=False) as heard, running(sender) as sent:
        heard.wait_for(
            "error",
            predicate=lambda e: (
                isinstance(e.args[0], RedisError) and "WRONGTYPE" in str(e.args[0])
            ),
            count=3,  # the group, then reads
            timeout=10,
        )
        redis.call("DEL", key)
        redis.call("XGROUP", "CREATE", key, "workers", "0", "MKSTREAM")
        sent.wait_for("bridged", timeout=10)
        sender.fire(job(5), "held")
        holding.wait_held(1, timeout=10)
        assert holding.taken == [5]
