"""Liveness and readiness probes."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, current_app
from sqlalchemy import text

from overture.platform import database_outage
from overture.platform.db import db
from overture.platform.logging import get_logger
from overture.platform.queue import broker_reachable
from overture.web.problems import problem

bp = APIBlueprint("health", __name__, enable_openapi=False)
log = get_logger(__name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, object], int] | Response:
    checks = {"database": _database_ok(),
              "broker": broker_reachable(current_app.extensions["overture.broker"])}
    if all(checks.values()):
        return {"status": "ready", "checks": checks}, 200
    down = ", ".join(name for name, ok in checks.items() if not ok)
    return problem(503, "unavailable", "Service unavailable", f"not ready: {down} unreachable",
                   headers={"Retry-After": str(database_outage.RETRY_AFTER_SECONDS)}, checks=checks)


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception as exc:  # any failure means "not ready"
        log.warning("database.unreachable", error=database_outage.summary(exc))
        db.session.rollback()
        return False
