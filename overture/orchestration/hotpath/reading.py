"""Reading what a step's scope needs (the outputs of finished steps on its iteration
path and the paths around it, a loop step's state): through the ORM session's
transaction (`SessionReader`), or in a pipelined transaction of their own
(`DirectReader`, `outputs_of`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from overture.orchestration.hotpath import STEPS, libpq_url
from overture.orchestration.models import StepStatus
from overture.platform import pipeline
from overture.platform.db import db


class Reader(Protocol):
    def outputs_on(self, run_id: uuid.UUID, paths: list[str]) -> list[tuple[str, str, Any]]:
        """(step id, path, output) of the finished steps on these iteration paths."""

    def loop_state(self, run_id: uuid.UUID, step_id: str, path: str) -> dict[str, Any] | None:
        """The state of a loop step's row (its items)."""


@dataclass(frozen=True)
class SessionReader:
    """Reads through the ORM session's transaction (flush first: Core does not)."""

    tenant_id: uuid.UUID

    def outputs_on(self, run_id: uuid.UUID, paths: list[str]) -> list[tuple[str, str, Any]]:
        s = STEPS.c
        return [tuple(r) for r in db.session.connection().execute(
            select(s.step_id, s.path, s.output).where(
                s.tenant_id == self.tenant_id, s.run_id == run_id, s.path.in_(paths),
                s.status.in_([StepStatus.SUCCEEDED, StepStatus.SKIPPED])))]

    def loop_state(self, run_id: uuid.UUID, step_id: str, path: str) -> dict[str, Any] | None:
        s = STEPS.c
        return db.session.connection().execute(
            select(s.state).where(s.tenant_id == self.tenant_id, s.run_id == run_id,
                                  s.step_id == step_id, s.path == path)).scalar_one_or_none()


_LOOP_STATE = ("SELECT state FROM step_runs WHERE run_id = %(run_id)s AND step_id = %(step_id)s"
               " AND path = %(path)s")


@dataclass(frozen=True)
class DirectReader:
    """Reads in a pipelined transaction of their own (outputs never change once read);
    outputs already read with the claim are served from memory."""

    tenant_id: uuid.UUID
    outputs: list[tuple[str, str, Any]]

    def outputs_on(self, run_id: uuid.UUID, paths: list[str]) -> list[tuple[str, str, Any]]:
        return self.outputs

    def loop_state(self, run_id: uuid.UUID, step_id: str, path: str) -> dict[str, Any] | None:
        with pipeline.transaction(libpq_url(), self.tenant_id) as batch:
            result = batch.execute(_LOOP_STATE, {"run_id": run_id, "step_id": step_id,
                                                "path": path})
        row = result.fetchone()
        return row.state if row else None


# The outputs a claimed step's expressions see: finished steps on its own iteration
# path and the paths around it ("a#1/b#2/" -> "", "a#1/", "a#1/b#2/").
_OUTPUTS_OF = """
WITH me AS ({me})
SELECT o.step_id, o.path, o.output FROM step_runs o, me
WHERE o.run_id = me.run_id AND o.status IN ('succeeded', 'skipped')
  AND o.path = ANY(ARRAY(
      SELECT '' UNION ALL
      SELECT left(me.path, i) FROM me, generate_series(1, length(me.path)) AS i
      WHERE substr(me.path, i, 1) = '/'))
"""
OUTPUTS_OF_STEP = _OUTPUTS_OF.format(
    me="SELECT run_id, path FROM step_runs WHERE id = %(id)s")
OUTPUTS_OF_CLAIMED = _OUTPUTS_OF.format(
    me="SELECT run_id, path FROM step_runs WHERE run_id = %(run_id)s"
       " AND claim = %(sibling_claim)s")


def outputs_of(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> list[tuple[str, str, Any]]:
    with pipeline.transaction(libpq_url(), tenant_id) as batch:
        result = batch.execute(OUTPUTS_OF_STEP, {"id": step_run_id})
    return [(o.step_id, o.path, o.output) for o in result.fetchall()]
