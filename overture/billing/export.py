"""The raw usage events of a period, for audit and export, streamed oldest first, as
CSV or JSON Lines.

Events are read meter by meter through their (tenant, metric, time) index, a batch at
a time after the last one read (keyset), and merged by time: no sort of the whole
period, no other index on the hot table. Each batch is its own short transaction, so a
slow download holds no snapshot open (which would keep PostgreSQL from pruning the
roll-ups' old row versions while the engine updates them). Which meters to read comes
from the catalogue and the period's roll-ups.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select, tuple_

from overture.billing.meters import BY_NAME
from overture.billing.periods import Period
from overture.billing.rollups import UsageDaily
from overture.billing.usage import UsageEvent
from overture.platform.db import db

BATCH = 500
COLUMNS = ["id", "occurred_at", "meter", "quantity", "unit", "dimension", "workflow_id",
           "run_id", "step_id", "step_run_id", "agent_id", "user_id"]
TEXT = {"dimension", "step_id"}  # names others chose; the rest are ours


def iter_events(period: Period) -> Iterator[dict[str, Any]]:
    """The scope tenant's events in the period, oldest first, as plain values."""
    streams = [_events_of(meter, period) for meter in _meters(period)]
    for _, _, event in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        yield event


def _meters(period: Period) -> list[str]:
    """The catalogue's meters and any other the period's roll-ups hold (an old name)."""
    days = period.days
    held = db.session.scalars(select(UsageDaily.meter).distinct().where(
        UsageDaily.bucket >= days[0], UsageDaily.bucket <= days[-1]))
    return sorted(set(held) | set(BY_NAME))


def _events_of(meter: str, period: Period) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    unit = BY_NAME[meter].unit if meter in BY_NAME else ""
    after: tuple[Any, Any] | None = None
    while True:
        stmt = (select(UsageEvent).where(UsageEvent.metric == meter,
                                         UsageEvent.created_at >= period.since,
                                         UsageEvent.created_at < period.until)
                .order_by(UsageEvent.created_at, UsageEvent.id).limit(BATCH))
        if after is not None:
            stmt = stmt.where(tuple_(UsageEvent.created_at, UsageEvent.id) > after)
        batch = [_plain(e, unit) for e in db.session.scalars(stmt)]
        db.session.rollback()  # the read's transaction ends with each batch
        yield from batch
        if len(batch) < BATCH:
            return
        after = batch[-1][:2]


def _plain(event: UsageEvent, unit: str) -> tuple[Any, Any, dict[str, Any]]:
    return event.created_at, event.id, {
        "id": str(event.id), "occurred_at": event.created_at.isoformat(),
        "meter": event.metric, "quantity": str(event.quantity), "unit": unit,
        "dimension": event.dimension, "workflow_id": _str(event.workflow_id),
        "run_id": _str(event.run_id), "step_id": event.step_id,
        "step_run_id": _str(event.step_run_id), "agent_id": _str(event.agent_id),
        "user_id": _str(event.user_id)}


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def json_lines(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    for event in events:
        yield json.dumps(event, separators=(",", ":")) + "\n"


def csv_lines(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    """CSV with a header row; empty cells for nulls. A dimension or step id starting
    like a formula is defused for spreadsheets (numbers are left as they are: a
    storage change may be negative)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for event in events:
        writer.writerow([_cell(event[c], c in TEXT) for c in COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any, free_text: bool) -> str:
    text = "" if value is None else str(value)
    formula = free_text and text[:1] in ("=", "+", "-", "@", "\t", "\r")
    return "'" + text if formula else text
