"""The raw Dramatiq phase: `bench/raw_worker.py`'s chains, with and without one commit
per step, for cases (a), (b) and (a')."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from bench.common import (
    PAR_RUNS,
    PAR_WIDTH,
    PROCESSES,
    SEQ_RUNS,
    SEQ_STEPS,
    SOLO_RUNS,
    THREADS,
    Result,
)

if TYPE_CHECKING:
    from bench.common import Proc
    from bench.engine import Bench


def raw_sequential(bench: Bench, runs: int, commit: bool, procs: tuple[Proc, ...],
                   label: str) -> Result:
    from bench import raw_worker

    t0 = time.time()
    for i in range(runs):
        raw_worker.hop.send(f"{label}-{i}", 0, SEQ_STEPS, time.time(), [], commit)
    docs = bench.raw_done(runs, procs)
    end = max(d["end"] for d in docs)
    lat = [x for d in docs for x in d["lat"]]
    return Result(runs, runs * SEQ_STEPS, end - t0, lat)

def raw_solo(bench: Bench, commit: bool, procs: tuple[Proc, ...], label: str) -> Result:
    from bench import raw_worker

    lat: list[float] = []
    t0 = time.time()
    for i in range(SOLO_RUNS):
        raw_worker.hop.send(f"{label}-solo-{i}", 0, SEQ_STEPS, time.time(), [], commit)
        done = bench.redis.blpop([raw_worker.DONE_KEY], timeout=30)
        if done is None:
            raise RuntimeError(f"a solo raw run did not finish:\n{procs[0].tail()}")
        lat += json.loads(done[1])["lat"]
    return Result(SOLO_RUNS, SOLO_RUNS * SEQ_STEPS, time.time() - t0, lat)

def raw_parallel(bench: Bench, runs: int, commit: bool, procs: tuple[Proc, ...],
                 label: str) -> Result:
    from bench import raw_worker

    bench.redis.delete(raw_worker.LAT_KEY)
    t0 = time.time()
    for i in range(runs):
        raw_worker.fan.send(f"{label}-{i}", PAR_WIDTH, time.time(), commit)
    docs = bench.raw_done(runs, procs)
    end = max(d["end"] for d in docs)
    lat = [float(x) for x in bench.redis.lrange(raw_worker.LAT_KEY, 0, -1)]
    bench.redis.delete(raw_worker.LAT_KEY)
    return Result(runs, runs * (PAR_WIDTH + 2), end - t0, lat)

def run_raw(bench: Bench, round_no: int) -> dict[str, Result]:
    out: dict[str, Result] = {}
    proc = bench.raw_workers()
    procs = (proc,)
    try:
        from bench import raw_worker

        for i in range(2 * PROCESSES * THREADS):  # warm-up: every thread, a connection
            raw_worker.hop.send(f"warm-{i}", 0, 3, time.time(), [], True)
        bench.raw_done(2 * PROCESSES * THREADS, procs, timeout=60)
        for commit, name in ((False, "raw"), (True, "raw+commit")):
            label = f"r{round_no}-{name}"
            out[f"seq/{name}"] = raw_sequential(bench, SEQ_RUNS, commit, procs, label)
            out[f"par/{name}"] = raw_parallel(bench, PAR_RUNS, commit, procs, label)
            out[f"solo/{name}"] = raw_solo(bench, commit, procs, label)
    finally:
        bench.stop(proc)
    return out
