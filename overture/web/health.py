"""Liveness and readiness probes."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app
from sqlalchemy import text

from overture.platform import outage
from overture.platform.db import db
from overture.platform.logging import get_logger
from overture.platform.queue import broker_reachable

bp = APIBlueprint("health", __name__, enable_openapi=False)
log = get_logger(__name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, object], int, dict[str, str]]:
    checks = {"database": _database_ok(),
              "broker": broker_reachable(current_app.extensions["overture.broker"])}
    if all(checks.values()):
        return {"status": "ready", "checks": checks}, 200, {}
    return ({"status": "not-ready", "checks": checks}, 503,
            {"Retry-After": str(outage.RETRY_AFTER_SECONDS)})


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception as exc:  # any failure means "not ready"
        log.warning("database.unreachable", error=outage.summary(exc))
        db.session.rollback()
        return False
