"""The LangGraph + PostgresSaver phase: `bench/langgraph_run.py` in PROCESSES processes,
100 concurrent runs each. As for the engine, the runs are created before the clock
starts (each graph invoked up to an interrupt before its first node, its input
checkpointed) and the clock times their execution (resumed all at once at t0)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from bench.common import PROCESSES, SEQ_RUNS, SEQ_STEPS, Result

if TYPE_CHECKING:
    from bench.engine import Bench


def run_langgraph(bench: Bench, round_no: int) -> dict[str, Result]:
    try:
        import langgraph  # noqa: F401
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError:
        print("LangGraph is not installed (pip install -e '.[bench]'): skipped",
              file=sys.stderr)
        return {}
    if round_no == 0:
        with PostgresSaver.from_conn_string(bench.owner_url) as saver:
            saver.setup()
    out: dict[str, Result] = {}
    for durability in ("async", "sync"):
        per = SEQ_RUNS // PROCESSES
        children = [bench.start([sys.executable, "-m", "bench.langgraph_run", bench.owner_url,
                                str(per), str(SEQ_STEPS), durability,
                                f"r{round_no}-{durability}{n}"],
                               f"langgraph-{durability}-{n}", stdin=True, stdout=True)
                    for n in range(PROCESSES)]
        try:
            for child in children:
                line = child.proc.stdout.readline()  # type: ignore[union-attr]
                if line.strip() != "ready":
                    raise RuntimeError(f"{child.name} did not start:\n{child.tail()}")
            for child in children:
                child.proc.stdin.write("go\n")  # type: ignore[union-attr]
                child.proc.stdin.flush()  # type: ignore[union-attr]
            docs = []
            for child in children:
                line = child.proc.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    raise RuntimeError(f"{child.name} failed:\n{child.tail()}")
                docs.append(json.loads(line))
        finally:
            for child in children:
                bench.stop(child)
        start = min(d["start"] for d in docs)
        end = max(d["end"] for d in docs)
        lat = [x for d in docs for x in d["lat"]]
        out[f"seq/langgraph-{durability}"] = Result(
            per * PROCESSES, sum(d["steps"] for d in docs), end - start, lat)
    return out

