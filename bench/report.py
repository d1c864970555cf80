"""The benchmark's printed report (`python -m bench.engine`). See bench/README.md."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import os
import platform
from typing import TYPE_CHECKING

from bench import compare, scaleout
from bench.common import (
    PAR_RUNS,
    PAR_WIDTH,
    PROCESSES,
    SEQ_RUNS,
    SEQ_STEPS,
    SOLO_RUNS,
    THREADS,
    Result,
    ratio_line,
)
from bench.n8n_install import N8N_VERSION

if TYPE_CHECKING:
    from bench.engine import Bench
    from bench.webhooks import HookResult

def versions(bench: Bench) -> list[str]:
    def v(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    pg = bench.query("SHOW server_version")[0][0]
    redis_version = bench.redis.info("server").get("redis_version", "?")
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    return [
        f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, PostgreSQL {pg}, Redis {redis_version}, "
        f"Dramatiq {v('dramatiq')}, SQLAlchemy {v('SQLAlchemy')}, psycopg {v('psycopg')}, "
        f"gunicorn {v('gunicorn')}",
        f"n8n {N8N_VERSION} (if its phase ran), "
        f"LangGraph {v('langgraph')}, langgraph-checkpoint-postgres "
        f"{v('langgraph-checkpoint-postgres')}, langgraph-checkpoint {v('langgraph-checkpoint')}",
        f"workers: {PROCESSES} processes x {THREADS} threads for every Dramatiq system; "
        f"LangGraph: {PROCESSES} processes x asyncio",
    ]


SYSTEMS = [("raw", "raw Dramatiq (no state)"),
           ("raw+commit", "raw Dramatiq + 1 commit/step"),
           ("fair", "fair baseline: 1 msg/run, 1 trip/step"),
           ("engine", "Overture engine"),
           ("engine+budgets", "Overture engine, budget checks on"),
           ("langgraph-async", "LangGraph+PostgresSaver (durab. async)"),
           ("langgraph-sync", "LangGraph+PostgresSaver (durab. sync)")]
CASES = [("seq", f"(a) sequential {SEQ_STEPS} steps, {SEQ_RUNS} concurrent runs"),
         ("par", f"(b) parallel {PAR_WIDTH} branches + join, {PAR_RUNS} concurrent runs"),
         ("solo", f"(a') sequential {SEQ_STEPS} steps, 1 run at a time ({SOLO_RUNS} runs)")]


def fair_lines(results: dict[str, Result]) -> list[str]:
    """The engine against the fair, engine-shaped baseline (tracked; no target yet)."""
    out = []
    for case, name in (("seq", "(a)"), ("solo", "(a')")):
        engine, fair = results.get(f"{case}/engine"), results.get(f"{case}/fair")
        if engine is not None and fair is not None and fair.rate:
            out.append(f"  {name} engine / fair engine-shaped baseline (1 message per run, "
                       f"1 round trip per step): {engine.rate:.0f} / {fair.rate:.0f} = "
                       f"{engine.rate / fair.rate * 100:.0f}% (tracked)")
    return out


def report(bench: Bench, results: dict[str, Result], hooks: HookResult | None,
           n8n: list[HookResult], rounds: int, load_before: tuple[float, ...],
           load_after: tuple[float, ...]) -> str:
    lines = ["", "Overture engine benchmark", *versions(bench),
             f"each row: the best of {rounds} round(s) (raw, fair, engine, LangGraph in turn), "
             "p50/p99 from that same round",
             "load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} "
             "{:.2f} (above ~0.5 something else shared these 2 cores)".format(
                 *load_before, *load_after), ""]
    head = (f"{'system':40} {'runs':>5} {'steps':>6} {'secs':>7} {'steps/s':>8} "
            f"{'p50 ms':>8} {'p99 ms':>8}")
    for case, title in CASES:
        rows = [(label, results[f"{case}/{key}"]) for key, label in SYSTEMS
                if f"{case}/{key}" in results]
        if not rows:
            continue
        lines += [title, head, "-" * len(head)]
        for label, r in rows:
            bad = f"  ({r.failed} runs not succeeded!)" if r.failed else ""
            lines.append(f"{label:40} {r.runs:5d} {r.steps:6d} {r.seconds:7.2f} {r.rate:8.0f} "
                         f"{r.pct(0.5):8.1f} {r.pct(0.99):8.1f}{bad}")
        lines.append("")
    engine_seq, engine_par = results.get("seq/engine"), results.get("par/engine")
    lgs = [r for k, r in results.items() if k.startswith("seq/langgraph")]
    best_lg = max(lgs, key=lambda r: r.rate) if lgs else None
    if bench.cost is not None:
        c = bench.cost
        lines += ["Engine cost of one no-op step, counted, not timed (in-process, 1 thread, "
                  f"{SEQ_STEPS}-step runs):",
                  f"  {c['statements']:.1f} SQL statements in {c['transactions']:.1f} "
                  f"transactions = {c['round_trips']:.1f} round trips to PostgreSQL (pipelined: "
                  f"scope, statements and commit in one), {c['calls']:,.0f} Python calls",
                  "  (raw Dramatiq + 1 commit/step: 3 round trips: BEGIN, INSERT, COMMIT)"]
        if bench.cost_budgets is not None:
            b = bench.cost_budgets
            lines.append(f"  with budget checks on (a budget, caps on runs and steps): "
                         f"{b['statements']:.2f} statements in {b['transactions']:.2f} "
                         f"transactions = {b['round_trips']:.2f} round trips, "
                         f"{b['calls']:,.0f} Python calls (off: {c['statements']:.2f}, "
                         f"{c['transactions']:.2f}, {c['round_trips']:.2f}, {c['calls']:,.0f})")
        lines.append("")
    ratios = ["Ratios (steps/s):",
              ratio_line("(a) engine / (raw Dramatiq + 1 commit/step)", engine_seq,
                         results.get("seq/raw+commit"), 0.5, True),
              ratio_line("(b) engine / (raw Dramatiq + 1 commit/step)", engine_par,
                         results.get("par/raw+commit"), 0.5, True),
              ratio_line("(a) engine / LangGraph+PostgresSaver (its faster durability)",
                         engine_seq, best_lg, 2.0, False),
              ratio_line("(a) engine with budget checks on / off (metering on in both)",
                         results.get("seq/engine+budgets"), engine_seq, 0.9, True)]
    if engine_seq is not None or engine_par is not None:
        lines += [r for r in ratios if not r.endswith(": n/a")]
    budgeted = results.get("seq/engine+budgets")
    if engine_seq is not None and budgeted is not None:
        lines.append(f"  (a) runs created per second (start_run, one transaction each), "
                     f"budget checks off / on: {engine_seq.created_per_s:.0f} / "
                     f"{budgeted.created_per_s:.0f}")
    lines += fair_lines(results)
    lines += ["", *scaleout.lines(results)]
    lines += compare.lines(hooks, n8n)
    return "\n".join(lines)


