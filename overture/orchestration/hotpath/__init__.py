"""The engine's most frequent transactions, on PostgreSQL, in one or two network
round trips each (`platform.pipeline`), with no ORM, by statement family:

- `claiming`: claiming a step run (and its run's facts and the outputs its scope
  needs, in the same round trip), or a queued step of a fan-out for a worker that
  just ended a branch of it;
- `step_end`: recording a completed step that hands over to the next step of its
  block (`hand_over`) or ends the run (`finish_run`), with the fragments every such
  statement shares;
- `branches`: a parallel step starting its branches (`fan_out`), a step ending a
  branch whose join may still wait for others (`branch_done`), and the join of
  branches that have all ended (`join_all`);
- `reading`: what a step's scope reads, in the session's transaction or in one of
  its own.

Each returns None when it wrote nothing (the run is over, the claim was lost, the
case is not the common one, or the transaction could not happen); the engine then
records with the ORM (`flow`), which handles every case. The ORM claim
(`claiming.claim_row`, `reading.SessionReader`) also serves SQLite, where the embedded
mode runs.

Every statement here runs under row-level security in the tenant's scope.
"""

from __future__ import annotations

from overture.orchestration.models import Run, StepRun
from overture.platform.db import db

STEPS = StepRun.__table__
RUNS = Run.__table__


def available() -> bool:
    return db.engine.dialect.name == "postgresql"


_urls: dict[int, str] = {}


def libpq_url() -> str:
    """The session's database as a libpq URL: the same server, the same role."""
    engine = db.engine
    url = _urls.get(id(engine))
    if url is None:
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        _urls[id(engine)] = url
    return url
