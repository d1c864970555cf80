"""Test mode in the console: replay a run in test mode from its viewer, and compare two
versions of an agent over recorded runs (an A/B table), with the API's services."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.orchestration import runs
from overture.orchestration.agents import service as agents
from overture.orchestration.testmode import compare
from overture.orchestration.testmode import start as test_start
from overture.platform.db import db
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import form_errors


@bp.post("/runs/<run_id>/test-replay")
@page("run.cancel")
def test_replay_run(run_id: str) -> Response:
    with form_errors() as errors:
        replay = test_start.replay(runs.get_run(run_id), console_access().principal.user.id,
                                   version=request.form.get("version") or None)
        db.session.commit()
        flash("Replaying in test mode: nothing is sent, nothing is billed. This is the new "
              "run, compared with the source below.", "ok")
        return redirect(url_for("console.run", run_id=replay.id))
    flash(next(iter(errors.values()), "The run could not be replayed."), "error")
    return redirect(url_for("console.run", run_id=run_id))


def _number(name: str) -> int | None:
    raw = request.form.get(name, "").strip()
    return int(raw) if raw.isdigit() else None


@bp.post("/agents/<agent_id>/compare")
@page("run.start")
def compare_agent(agent_id: str) -> Response:
    agent = agents.get_agent(agent_id)
    with form_errors() as errors:
        found = compare.start_comparison(agent, _number("version_a"), _number("version_b"),
                                         None, _number("last") or 5,
                                         console_access().principal.user.id)
        db.session.commit()
        return redirect(url_for("console.agent_comparison", agent_id=agent.id,
                                comparison_id=found["id"]))
    flash(next(iter(errors.values()), "The comparison could not start."), "error")
    return redirect(url_for("console.agent", agent_id=agent.id))


@bp.get("/agents/<agent_id>/comparisons/<comparison_id>", endpoint="agent_comparison")
@page("run.read")
def agent_comparison(agent_id: str, comparison_id: str) -> Any:
    agent = agents.get_agent(agent_id)
    table = compare.summary(agent, comparison_id)
    return render("console/agent_compare.html", title=f"{agent.name}: A/B comparison",
                  agent=agent, table=table, poll=not table["finished"])
