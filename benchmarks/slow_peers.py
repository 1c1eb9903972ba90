"""Slow peers against the demo web server: slowhttptest attacks while a probe measures.

Usage::

    python benchmarks/slow_peers.py                                  # 4 attacks, 200 conns, 10 s
    python benchmarks/slow_peers.py --connections 1000 --duration 60 --json /tmp/slow.json
    python benchmarks/slow_peers.py --attacks read --connections 1000 --duration 60

For each attack, a fresh demo server (``python -m netcomp.web --bind 127.0.0.1:0``, the
same process the issue measured) is started; one probe request (``GET /`` on a new
connection, as an ordinary client) is sent every ``--probe-interval`` seconds for the
whole run, on schedule whether or not earlier ones are answered, each with a 5 s timeout
(so an outage counts every probe it holds up); ``slowhttptest`` runs ``--connections`` slow
connections for ``--duration`` seconds; the server's RSS is sampled every 0.1 s and its
peak (``VmHWM``) read at the end. Then the server is stopped (SIGINT) and its standard
error searched for tracebacks and ERROR lines.

Attacks (slowhttptest's options as in the issue):

* ``headers``: slowloris, ``-H -i 10 -s 8192 -x 24``: a header line every 10 s.
* ``body``: R-U-Dead-Yet, ``-B -i 10 -s 8192 -x 10``: a POST body, 10 bytes every 10 s.
* ``read``: slow read of a streamed response, ``-X -w 512 -y 1024 -n 5 -z 32 -k 1``
  against ``/stream?lines=100000`` (2.3 MB): windows of 512-1024 bytes, 32 bytes read
  every 5 s.
* ``read-pipelined``: the same with ``-k 3`` (three pipelined requests a connection).

Prints one row per attack: probes answered within 1 s (and at all), p50/p99/max
latency, the longest time without an answer, baseline and peak RSS, the CPU time the
server used, slowhttptest's last counts, and server errors and warnings.
``tests/test_web_attacks.py`` runs short versions of the same (200 connections, 10 s)
with assertions. Linux only; needs slowhttptest.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import re
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ATTACKS = {
    "headers": ["-H", "-i", "10", "-s", "8192", "-x", "24"],
    "body": ["-B", "-i", "10", "-s", "8192", "-x", "10"],
    "read": ["-X", "-w", "512", "-y", "1024", "-n", "5", "-z", "32", "-k", "1"],
    "read-pipelined": ["-X", "-w", "512", "-y", "1024", "-n", "5", "-z", "32", "-k", "3"],
}
TARGETS = {"headers": "/", "body": "/echo", "read": "/stream?lines=100000"}
PROBE_TIMEOUT = 5.0
START_TIMEOUT = 20.0
SLOWHTTPTEST = shutil.which("slowhttptest") or "/usr/bin/slowhttptest"


@dataclass
class Run:
    """What one attack run measured."""

    attack: str
    connections: int
    duration: float
    command: str = ""
    probes: int = 0
    answered: int = 0  # a 200 within PROBE_TIMEOUT
    within_1s: int = 0
    p50: float = 0.0
    p99: float = 0.0
    max_latency: float = 0.0
    longest_gap: float = 0.0  # the longest time the probe went without an answer
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU the server used, from start to stop
    attacker: dict[str, int] = field(default_factory=dict)  # slowhttptest's last counts
    attacker_exit: str = ""  # slowhttptest's own words on why it ended
    attack_seconds: float = 0.0  # how long slowhttptest ran
    server_errors: list[str] = field(default_factory=list)
    server_warnings: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def answered_share(self) -> float:
        return self.within_1s / self.probes if self.probes else 0.0


# ------------------------------------------------------------------- server
class DemoServer:
    """``python -m netcomp.web`` on a free port, its RSS and its standard error."""

    def __init__(self, log_dir: Path) -> None:
        self.stderr_path = log_dir / "server.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netcomp.web", "--bind", "127.0.0.1:0", "--log-level", "info"],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.port = self._wait_listening()

    def _wait_listening(self) -> int:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + START_TIMEOUT
            line = b""
            while time.monotonic() < deadline:
                if not selector.select(deadline - time.monotonic()):
                    break
                data = os.read(self.proc.stdout.fileno(), 4096)
                if not data:
                    break
                line += data
                found = re.search(rb"listening on http://127\.0\.0\.1:(\d+)\n", line)
                if found:
                    return int(found.group(1))
        self.stop()
        raise RuntimeError(f"the demo server did not start: {line!r}")

    def rss_mb(self, field_name: str = "VmRSS") -> float:
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith(field_name + ":"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used so far."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        return self.proc.returncode

    def errors(self) -> list[str]:
        """Lines of its standard error that tell of a failure."""
        text = self.stderr_path.read_text(errors="replace")
        return [
            line
            for line in text.splitlines()
            if "Traceback" in line or " ERROR " in line or "Error:" in line
        ]

    def warnings(self) -> list[str]:
        """Its WARNING lines (the output budget's closes, for one)."""
        text = self.stderr_path.read_text(errors="replace")
        return [line for line in text.splitlines() if " WARNING " in line]


def raise_fd_limit() -> None:
    """Descriptors for 1,000 connections on each side: the soft limit up to the hard one
    (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -------------------------------------------------------------------- probe
class Probe(threading.Thread):
    """``GET /`` on a new connection every ``interval`` s, on schedule whether or not the
    earlier ones are answered (each on a thread of its own, at most ``PROBE_TIMEOUT``
    s), so an outage counts every probe it holds up; records each latency (or ``None``
    for no 200 within PROBE_TIMEOUT) with its start time."""

    def __init__(self, port: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.interval = interval
        self.results: list[tuple[float, float | None]] = []
        self.began = 0.0
        self.ended = 0.0  # when the last probe was sent
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._sent: list[threading.Thread] = []

    def run(self) -> None:
        self.began = next_at = time.monotonic()
        while not self.stopping.is_set():
            sender = threading.Thread(target=self._send, daemon=True)
            sender.start()
            self._sent.append(sender)
            self.ended = time.monotonic()
            next_at += self.interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))
        # Each probe is bounded by its timeout (connecting, then reading): wait for them.
        deadline = time.monotonic() + 2 * PROBE_TIMEOUT + 1
        for sender in self._sent:
            sender.join(max(0.0, deadline - time.monotonic()))

    @property
    def sent(self) -> int:
        """How many probes were sent (one still unanswered counts as not answered)."""
        return len(self._sent)

    def _send(self) -> None:
        start = time.monotonic()
        latency = self.once()
        with self._lock:
            self.results.append((start, latency))

    def once(self) -> float | None:
        start = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=PROBE_TIMEOUT)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                return None
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
        return time.monotonic() - start


class Sampler(threading.Thread):
    """The server's RSS every 0.1 s (its kernel-kept peak is read at the end too)."""

    def __init__(self, server: DemoServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak = 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            self.peak = max(self.peak, self.server.rss_mb())


# ------------------------------------------------------------------- attack
def slowhttptest_command(attack: str, port: int, connections: int, duration: float) -> list[str]:
    target = TARGETS["read" if attack.startswith("read") else attack]
    return [
        SLOWHTTPTEST,
        "-c",
        str(connections),
        *ATTACKS[attack],
        "-r",
        str(min(connections, 200)),
        "-l",
        str(int(duration)),
        "-p",
        "5",
        "-u",
        f"http://127.0.0.1:{port}{target}",
    ]


def _attacker_counts(output: str) -> tuple[dict[str, int], str]:
    """slowhttptest's last status block (connected, closed, error, pending) and why it
    ended."""
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", output)
    counts: dict[str, int] = {}
    for name in ("pending", "connected", "error", "closed"):
        found = re.findall(rf"{name}:\s+(\d+)", plain)
        if found:
            counts[name] = int(found[-1])
    ended = re.findall(r"Exit status:\s*(.+)", plain)
    return counts, ended[-1].strip() if ended else ""


def run_attack(
    attack: str, connections: int, duration: float, interval: float = 0.25, settle: float = 1.0
) -> Run:
    """One attack against a fresh demo server, measured (see the module docs)."""
    run = Run(attack, connections, duration)
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="slow-peers-") as tmp:
        server = DemoServer(Path(tmp))
        sampler = Sampler(server)
        probe = Probe(server.port, interval)
        try:
            for _ in range(5):  # warm: the first requests import and allocate
                probe.once()
            run.rss_before_mb = server.rss_mb()
            sampler.start()
            command = slowhttptest_command(attack, server.port, connections, duration)
            run.command = " ".join(command).replace(str(server.port), "PORT")
            probe.start()
            began = time.monotonic()
            attacker = subprocess.run(
                command,
                capture_output=True,
                timeout=duration + 60,
                cwd=tmp,
                check=False,
            )
            run.attack_seconds = time.monotonic() - began
            run.attacker, run.attacker_exit = _attacker_counts(
                attacker.stdout.decode(errors="replace")
            )
            time.sleep(settle)  # let the probe see the server after the attack, too
        finally:
            probe.stopping.set()
            sampler.stopping.set()
            probe.join(2 * PROBE_TIMEOUT + 2)
            sampler.join(1)
            run.rss_peak_mb = max(sampler.peak, server.rss_mb("VmHWM"))
            run.server_cpu = server.cpu_seconds()
            server.stop()
            run.server_errors = server.errors()
            run.server_warnings = server.warnings()
    _summarise(run, list(probe.results), probe.sent, probe.began, probe.ended)
    return run


def _summarise(
    run: Run, results: list[tuple[float, float | None]], sent: int, began: float, ended: float
) -> None:
    results = sorted(results)
    run.probes = max(sent, len(results))
    latencies = sorted(t for _, t in results if t is not None)
    run.latencies = [round(t, 4) for _, t in results if t is not None]
    run.answered = len(latencies)
    run.within_1s = sum(1 for t in latencies if t <= 1.0)
    if latencies:
        run.p50 = latencies[len(latencies) // 2]
        run.p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        run.max_latency = latencies[-1]
    # The longest time without an answer: from the first probe sent to the first answer,
    # between answers (in the order they came), and from the last one to the last probe.
    marks = [began, *sorted(start + t for start, t in results if t is not None)]
    run.longest_gap = max([b - a for a, b in itertools.pairwise(marks)] + [ended - marks[-1], 0.0])


# ------------------------------------------------------------------- report
def table(runs: list[Run]) -> str:
    head = (
        "| attack | conns | s (ran) | probes | <= 1 s | answered | p50 ms | p99 ms | max ms "
        "| longest gap s | RSS before MB | RSS peak MB | server CPU s "
        "| attacker (connected/closed/error) | server errors / warnings |"
    )
    rows = [head, "|" + "---|" * 15]
    for r in runs:
        att = r.attacker
        rows.append(
            f"| {r.attack} | {r.connections} | {r.duration:.0f} ({r.attack_seconds:.0f}) "
            f"| {r.probes} "
            f"| {r.within_1s} ({100 * r.answered_share:.1f}%) | {r.answered} "
            f"| {1000 * r.p50:.1f} | {1000 * r.p99:.1f} | {1000 * r.max_latency:.0f} "
            f"| {r.longest_gap:.2f} | {r.rss_before_mb:.1f} | {r.rss_peak_mb:.1f} "
            f"| {r.server_cpu:.1f} "
            f"| {att.get('connected', '?')}/{att.get('closed', '?')}/{att.get('error', '?')} "
            f"| {len(r.server_errors)} / {len(r.server_warnings)} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--attacks", default=",".join(ATTACKS))
    args.add_argument("--connections", type=int, default=200)
    args.add_argument("--duration", type=float, default=10.0)
    args.add_argument("--probe-interval", type=float, default=0.25)
    args.add_argument("--json", type=Path, default=None)
    options = args.parse_args(argv)
    if not os.path.exists(SLOWHTTPTEST):
        print("slowhttptest is not installed (apt-get install slowhttptest)", file=sys.stderr)
        return 2
    runs = []
    for attack in options.attacks.split(","):
        what = f"{options.connections} connections, {options.duration:.0f} s"
        print(f"== {attack}: {what}", flush=True)
        run = run_attack(attack, options.connections, options.duration, options.probe_interval)
        print(f"   {run.command}", flush=True)
        print(f"   slowhttptest: {run.attacker_exit} after {run.attack_seconds:.1f} s")
        for line in (run.server_errors + run.server_warnings)[:5]:
            print(f"   server: {line}", flush=True)
        runs.append(run)
    print(f"\nload average before the report: {os.getloadavg()}")
    print(table(runs))
    if options.json is not None:
        options.json.write_text(json.dumps([asdict(r) for r in runs], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
