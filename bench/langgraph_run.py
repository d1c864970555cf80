"""One LangGraph load process for bench/engine.py: `python -m bench.langgraph_run URL RUNS
STEPS DURABILITY TAG`.

Builds the same sequential graph as the engine's (STEPS no-op nodes in a line),
compiled with LangGraph's PostgreSQL checkpointer (AsyncPostgresSaver on a psycopg
pool), warms up, creates RUNS runs (each invoked with its input up to an interrupt
before its first node: the input is checkpointed, as the engine's runs are created
before its clock starts), prints "ready", waits for a line on stdin, then resumes the
RUNS graphs concurrently on asyncio and prints one JSON line: start, end, and the
per-step latencies. A step's latency runs from the moment the previous step was done
(for the first step: when the run was resumed) to the moment this one is done; a step
counts as done when the next node starts (LangGraph starts it after the superstep's
checkpoint has been handed to the saver), and the last one when `ainvoke` returns.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

POOL_SIZE = 20


class State(TypedDict):
    n: int


def build(steps: int, stamps: dict[str, list[float]]) -> StateGraph:
    graph = StateGraph(State)

    async def node(state: State, config: RunnableConfig) -> dict[str, int]:
        stamps[config["configurable"]["thread_id"]].append(time.time())
        return {"n": state["n"] + 1}

    names = [f"s{i}" for i in range(steps)]
    for name in names:
        graph.add_node(name, node)
    graph.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    return graph


async def main(url: str, runs: int, steps: int, durability: str, tag: str) -> None:
    stamps: dict[str, list[float]] = {}
    async with AsyncConnectionPool(url, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False,
                                   kwargs={"autocommit": True, "prepare_threshold": 0,
                                           "row_factory": dict_row}) as pool:
        saver = AsyncPostgresSaver(pool)
        app = build(steps, stamps).compile(checkpointer=saver)
        first = "s0"

        async def create(thread_id: str) -> None:
            await app.ainvoke({"n": 0}, {"configurable": {"thread_id": thread_id}},
                              durability=durability, interrupt_before=[first])

        async def one(thread_id: str) -> list[float]:
            stamps[thread_id] = []
            submitted = time.time()
            result = await app.ainvoke(None, {"configurable": {"thread_id": thread_id}},
                                       durability=durability)
            end = time.time()
            assert result["n"] == steps, result
            marks = [submitted, *stamps.pop(thread_id)[1:], end]
            return [b - a for a, b in itertools.pairwise(marks)]

        for i in range(5):  # warm-up: connections, compiled graph, prepared paths
            await create(f"{tag}-warm-{i}")
            await one(f"{tag}-warm-{i}")
        names = [f"{tag}-{i}" for i in range(runs)]
        for chunk in range(0, runs, POOL_SIZE):  # created before the clock, as the engine's
            await asyncio.gather(*(create(name) for name in names[chunk:chunk + POOL_SIZE]))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        start = time.time()
        per_run = await asyncio.gather(*(one(name) for name in names))
        end = time.time()
    lat = [x for run in per_run for x in run]
    print(json.dumps({"start": start, "end": end, "steps": runs * steps, "lat": lat}),
          flush=True)


if __name__ == "__main__":
    url, runs, steps, durability, tag = sys.argv[1:6]
    asyncio.run(main(url, int(runs), int(steps), durability, tag))
