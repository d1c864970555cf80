"""Scale-out lines: the engine's steps/s for case (a) (SEQ_RUNS sequential 10-step runs
at once) with one `overture worker` of 1, 2 and 4 processes, and with the same workload
split across two independent pools (two `overture worker` invocations of PROCESSES
processes each, sharing Redis and PostgreSQL). `overture scheduler` (the sweeper) runs
all the while, as in production. One round: these lines show the shape, not a best."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from bench.common import PROCESSES, SEQ_RUNS, SEQ_STEPS, THREADS, Result, note, sequential

if TYPE_CHECKING:
    from bench.common import Proc
    from bench.engine import Bench

# (label, processes per pool, pools)
PHASE_BUDGET = 150.0  # seconds: a further line starts only while within it
LINES = [("1 process", 1, 1), ("2 processes", 2, 1), ("4 processes", 4, 1),
         (f"2 pools x {PROCESSES} processes", PROCESSES, 2)]


def worker(bench: Bench, processes: int, name: str) -> Proc:
    return bench.start([sys.executable, "-m", "overture.cli", "worker", "--processes",
                        str(processes), "--threads", str(THREADS)], name)


def run_scaleout(bench: Bench) -> dict[str, Result]:
    out: dict[str, Result] = {}
    scheduler = bench.start([sys.executable, "-m", "overture.cli", "scheduler"], "scheduler")
    started = time.monotonic()
    try:
        for n, (label, processes, pools) in enumerate(LINES):
            if time.monotonic() - started > PHASE_BUDGET:
                note(f"scale-out: {label} skipped, the phase's {PHASE_BUDGET:.0f}s are spent")
                continue
            line_started = time.monotonic()
            warm, _ = bench.publish(sequential(SEQ_STEPS), f"scale-warm-{n}")
            flow, _ = bench.publish(sequential(SEQ_STEPS), f"scale-{n}")
            workers = [worker(bench, processes, f"scale-{n}-pool-{p}") for p in range(pools)]
            procs = (scheduler, *workers)
            try:
                bench.engine_batch(warm, processes * pools * THREADS, procs)  # a connection each
                out[f"scale/{label}"] = r = bench.engine_batch(flow, SEQ_RUNS, procs)
                note(f"scale-out: {label}: {r.rate:.0f} steps/s "
                     f"({time.monotonic() - line_started:.0f}s with start and warm-up)")
            finally:
                for w in workers:
                    bench.stop(w)
    finally:
        bench.stop(scheduler)
    return out


def lines(results: dict[str, Result]) -> list[str]:
    rows = [(label, results.get(f"scale/{label}")) for label, _, _ in LINES]
    if not any(r for _, r in rows):
        return []
    base = results.get("scale/1 process")
    head = f"{'workers':32} {'runs':>5} {'steps':>6} {'secs':>7} {'steps/s':>8} {'vs 1 proc':>10}"
    out = [f"Scale-out: (a) sequential {SEQ_STEPS} steps, {SEQ_RUNS} concurrent runs, "
           f"{THREADS} threads per process, `overture scheduler` running (one round)",
           head, "-" * len(head)]
    for label, r in rows:
        if r is None:
            continue
        vs = f"{r.rate / base.rate:.2f}x" if base and base.rate else "n/a"
        bad = f"  ({r.failed} runs not succeeded!)" if r.failed else ""
        out.append(f"{label:32} {r.runs:5d} {r.steps:6d} {r.seconds:7.2f} {r.rate:8.0f} "
                   f"{vs:>10}{bad}")
    return [*out, ""]
