"""The fair, engine-shaped raw baseline: one broker message per run, each step one
INSERT committed in the same round trip (autocommit), the next step run at once in the
same worker thread (`raw_worker.chain`). The engine does the same work shape plus
everything that makes it an engine (claim, context, record, dispatch, metering, audit),
so its steps/s as a fraction of this is what the engine costs over the floor.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from bench.common import PROCESSES, SEQ_RUNS, SEQ_STEPS, SOLO_RUNS, THREADS, Result

if TYPE_CHECKING:
    from bench.engine import Bench


def run_fair(bench: Bench, round_no: int) -> dict[str, Result]:
    from bench import raw_worker

    proc = bench.raw_workers()
    procs = (proc,)
    try:
        for i in range(2 * PROCESSES * THREADS):  # warm-up: every thread, a connection
            raw_worker.chain.send(f"fair-warm-{round_no}-{i}", 3, time.time())
        bench.raw_done(2 * PROCESSES * THREADS, procs, timeout=60)
        label = f"r{round_no}-fair"
        t0 = time.time()
        for i in range(SEQ_RUNS):
            raw_worker.chain.send(f"{label}-{i}", SEQ_STEPS, time.time())
        docs = bench.raw_done(SEQ_RUNS, procs)
        seq = Result(SEQ_RUNS, SEQ_RUNS * SEQ_STEPS, max(d["end"] for d in docs) - t0,
                     [x for d in docs for x in d["lat"]])
        lat: list[float] = []
        t0 = time.time()
        for i in range(SOLO_RUNS):
            raw_worker.chain.send(f"{label}-solo-{i}", SEQ_STEPS, time.time())
            done = bench.redis.blpop([raw_worker.DONE_KEY], timeout=30)
            if done is None:
                raise RuntimeError(f"a solo fair run did not finish:\n{proc.tail()}")
            lat += json.loads(done[1])["lat"]
        solo = Result(SOLO_RUNS, SOLO_RUNS * SEQ_STEPS, time.time() - t0, lat)
    finally:
        bench.stop(proc)
    return {"seq/fair": seq, "solo/fair": solo}
