"""What the benchmark's phases share: settings, a result row, child processes, waiting,
and the workflows they run. See bench/README.md."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1:5432")
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", f"postgresql://postgres@{PG_HOST}/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
OWNER_ROLE, APP_ROLE = "overture_owner", "overture_app"

PROCESSES = int(os.environ.get("BENCH_PROCESSES", "2"))  # worker processes, every system
THREADS = int(os.environ.get("BENCH_THREADS", "8"))  # threads per worker process
SEQ_STEPS = 10
SEQ_RUNS = int(os.environ.get("BENCH_SEQ_RUNS", "200"))  # concurrent sequential runs
PAR_WIDTH = 50
PAR_RUNS = int(os.environ.get("BENCH_PAR_RUNS", "20"))  # concurrent 50-branch runs
SOLO_RUNS = int(os.environ.get("BENCH_SOLO_RUNS", "20"))  # one at a time, idle latency
HOOK_STEPS = 3
HOOK_REQUESTS = int(os.environ.get("BENCH_HOOK_REQUESTS", "3000"))  # at most this many
HOOK_SECONDS = float(os.environ.get("BENCH_HOOK_SECONDS", "20"))  # and for at most this long
HOOK_CLIENTS = int(os.environ.get("BENCH_HOOK_CLIENTS", "32"))  # concurrent HTTP clients
PACED_SECONDS = float(os.environ.get("BENCH_PACED_SECONDS", "10"))  # load at n8n's rate
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))  # each row reports its best round
ROUND_BUDGET = 200.0  # seconds: a further round starts only while within budget
PHASE_TIMEOUT = 120.0  # a phase that has not finished by then fails the benchmark
N8N_PUBLISHED = 220.0  # n8n's published executions/s on 2 vCPUs (single instance)
FINISHED = ("succeeded", "failed", "cancelled", "timed_out")
ALL_PHASES = "raw,fair,engine,langgraph,scaleout,n8n,webhooks"


@dataclass
class Result:
    runs: int
    steps: int
    seconds: float
    lat: list[float] = field(default_factory=list)  # per-step latencies, seconds
    failed: int = 0
    created_per_s: float = 0.0  # runs created (start_run, one transaction each) per second

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.lat, q) * 1000


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ratio_line(label: str, num: Result | None, den: Result | None, target: float,
               as_percent: bool) -> str:
    if num is None or den is None or den.rate == 0:
        return f"  {label}: n/a"
    value = num.rate / den.rate
    shown = f"{value * 100:.0f}%" if as_percent else f"{value:.2f}x"
    want = f"{target * 100:.0f}%" if as_percent else f"{target:g}x"
    verdict = "MET" if value >= target else "NOT MET"
    return f"  {label}: {num.rate:.0f} / {den.rate:.0f} = {shown} (target >= {want}): {verdict}"


def keep_best(best: dict[str, Result], new: dict[str, Result]) -> None:
    """Per row, keep the round with the most steps/s (a noisy neighbour only ever slows
    a round down, so the best round is the least disturbed one)."""
    for key, result in new.items():
        if key not in best or result.rate > best[key].rate:
            best[key] = result


class Proc:
    """A child process in its own process group, ended by its own id."""

    def __init__(self, args: list[str], env: dict[str, str], name: str,
                 stdin: bool = False, stdout: bool = False, cwd: str = ROOT) -> None:
        self.name = name
        self.log = open(os.path.join(env["BENCH_TMP"], f"{name}.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, env=env, cwd=cwd, start_new_session=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else self.log, stderr=self.log, text=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()

    def tail(self) -> str:
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.05,
               procs: tuple[Proc, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited while waiting for {what}:\n{p.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    print(f"... {name}", file=sys.stderr, flush=True)
    t = time.monotonic()
    yield
    print(f"    {name}: {time.monotonic() - t:.1f}s", file=sys.stderr, flush=True)


def note(text: str) -> None:
    print(f"    {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- workflows


def sequential(steps: int) -> dict[str, Any]:
    return {"steps": [{"id": f"s{i}", "type": "transform", "output": i,
                       **({"next": f"s{i + 1}"} if i + 1 < steps else {})}
                      for i in range(steps)]}


def parallel(width: int) -> dict[str, Any]:
    branches = [{"steps": [{"id": f"b{i}", "type": "transform", "output": i}]}
                for i in range(width)]
    return {"steps": [{"id": "fan", "type": "parallel", "branches": branches, "next": "after"},
                      {"id": "after", "type": "transform", "output": "done"}]}
