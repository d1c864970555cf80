"""The counted cost of one engine step (`Bench.engine_cost`, round 1 of the engine phase):
SQL statements, transactions, round trips and Python calls, which a busy machine does
not change."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from bench.common import SEQ_STEPS, sequential

if TYPE_CHECKING:
    from bench.engine import Bench


def engine_cost(bench: Bench) -> dict[str, float]:
    """What one no-op step costs, counted rather than timed (so a busy machine does
    not change it): the engine's own `process` on 10 sequential runs, in this
    process, on one thread."""
    import cProfile
    import pstats

    from sqlalchemy import event

    from overture.orchestration import engine
    from overture.platform.db import db

    bench.costs_counted += 1
    workflow_id, _ = bench.publish(sequential(SEQ_STEPS), f"cost-{bench.costs_counted}")
    held = bench.create_runs(workflow_id, 12)
    counts = Counter[str]()
    with bench.app.app_context():
        sa_engine = db.engine

    def on_statement(*_: Any) -> None:
        counts["statements"] += 1

    def on_commit(*_: Any) -> None:
        counts["commits"] += 1

    def run(messages: list[tuple[Any, ...]]) -> None:
        for step_run_id, tenant_id, _ in messages:
            with bench.app.app_context():
                try:
                    engine.process(step_run_id, tenant_id)
                finally:
                    db.session.remove()

    # The hot path talks to PostgreSQL through batches (platform/pipeline.py): count
    # their statements, transactions (each starts by writing the tenant scope) and
    # sends (one write and one read each: a round trip).
    from overture.platform import pipeline

    plain_execute = pipeline.Batch.execute
    plain_run = pipeline._Link.run

    def counting_execute(batch: Any, query: str, *args: Any, **kw: Any) -> Any:
        text = query.lstrip().upper()
        if text.startswith("SELECT SET_CONFIG"):
            counts["pipeline_transactions"] += 1
        elif not text.startswith(("BEGIN", "COMMIT")):
            counts["pipeline_statements"] += 1
        return plain_execute(batch, query, *args, **kw)

    def counting_run(link: Any, queued: Any) -> None:
        counts["syncs"] += 1
        plain_run(link, queued)

    run(held[:2])  # warm: connections, caches
    event.listen(sa_engine, "before_cursor_execute", on_statement)
    event.listen(sa_engine, "commit", on_commit)
    pipeline.Batch.execute = counting_execute  # type: ignore[method-assign]
    pipeline._Link.run = counting_run  # type: ignore[method-assign]
    profile = cProfile.Profile()
    try:
        profile.enable()
        run(held[2:])
        profile.disable()
    finally:
        event.remove(sa_engine, "before_cursor_execute", on_statement)
        event.remove(sa_engine, "commit", on_commit)
        pipeline.Batch.execute = plain_execute  # type: ignore[method-assign]
        pipeline._Link.run = plain_run  # type: ignore[method-assign]
    steps = 10 * SEQ_STEPS
    calls = sum(nc for (_, nc, _, _, _) in pstats.Stats(profile).stats.values())
    orm_trips = counts["statements"] + 2 * counts["commits"]
    return {"statements": (counts["statements"] + counts["pipeline_statements"]) / steps,
            "transactions": (counts["commits"] + counts["pipeline_transactions"]) / steps,
            "round_trips": (orm_trips + counts["syncs"]) / steps, "calls": calls / steps}

