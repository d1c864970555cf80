"""Replay in test mode (issue 18): a run's input against a new agent version shows a
per-step diff (the agent's step changed, with a line diff; the others unchanged), its
world-changing action answers with the recorded output (nothing sent); an A/B
comparison of two agent versions over three recorded runs gives a summary table."""

from __future__ import annotations

import pytest

from tests.agent_fakes import create_agent, update_agent
from tests.engine_api_support import ok, publish_via_api, start_via_api
from tests.support import as_key
from tests.testmode_support import flow, problem, run_of, usage_of, writer

UNKNOWN = "8d6c1f8e-5a0e-4a53-9f5e-2f4b8f6a3c11"


pytestmark = pytest.mark.usefixtures("loopback_allowed")  # the receiver is on loopback


def recorded(app, world, inbox, receiver, runs: int = 1):
    """The writer agent at v1 and v2, a workflow pinned to v1, and `runs` live runs."""
    agent_id = create_agent(world, writer("Dear customer,\nyour refund is on its way."))
    api = as_key(app, world, "a_admin")
    wf = publish_via_api(api, flow(receiver))
    update_agent(world, agent_id, writer("Dear customer,\nyour refund was sent today."))
    live = [start_via_api(api, wf["id"], {"n": n})["id"] for n in range(runs)]
    inbox.drain()
    assert len(receiver.hits_to("/notify")) == runs
    return api, wf, agent_id, live


def test_replay_against_a_new_agent_version_shows_a_per_step_diff(
        app, world, inbox, receiver):
    api, _wf, agent_id, (source,) = recorded(app, world, inbox, receiver)
    replay = ok(api.post(f"/runs/{source}/replay", json={
        "agent_versions": [{"agent_id": str(agent_id), "version": 2}]}), 202)
    assert replay["mode"] == "test" and replay["replay_of_id"] == source
    inbox.drain()
    assert len(receiver.hits_to("/notify")) == 1  # the replay sent nothing
    assert usage_of(world.tenants["a"].id, replay["id"]) == 0

    body = ok(api.get(f"/runs/{replay['id']}/diff"))
    steps = {s["step_id"]: s for s in body["steps"]}
    assert body["source_run_id"] == source and body["status_after"] == "succeeded"
    assert steps["prepare"]["change"] == "unchanged"
    assert steps["notify"]["change"] == "unchanged"  # the source run's recorded answer
    assert steps["notify"]["output_after"] == run_of(api, source)["steps"][2]["output"]
    write = steps["write"]
    assert write["change"] == "changed"
    paths = {c["path"]: c for c in write["changes"]}
    assert paths["output"]["after"] == "Dear customer,\nyour refund was sent today."
    assert paths["version"] == {"op": "changed", "path": "version", "before": 1, "after": 2}
    (text,) = write["text_diffs"]
    assert "-your refund is on its way." in text["diff"]
    assert "+your refund was sent today." in text["diff"]
    assert " Dear customer," in text["diff"]
    assert steps["done"]["change"] == "changed" and body["output_changed"] is True
    assert body["summary"] == {"unchanged": 2, "changed": 2, "added": 0, "removed": 0}

    # The same version again: nothing changed.
    same = ok(api.post(f"/runs/{source}/replay", json={"test": True}), 202)
    inbox.drain()
    again = ok(api.get(f"/runs/{same['id']}/diff"))
    assert again["summary"]["changed"] == 0 and again["output_changed"] is False


def test_replay_bad_input_is_a_problem(app, world, inbox, receiver):
    api, _wf, agent_id, (source,) = recorded(app, world, inbox, receiver)
    problem(api.post(f"/runs/{UNKNOWN}/replay", json={"test": True}), 404)
    problem(api.get(f"/runs/{UNKNOWN}/diff"), 404)
    problem(api.get(f"/runs/{source}/diff"), 422)  # not a replay
    other = publish_via_api(api, {"steps": [{"id": "x", "type": "transform"}]})
    other_version = ok(api.get(f"/workflows/{other['id']}/versions"))["items"][0]["id"]
    fields = {e["field"] for e in problem(api.post(f"/runs/{source}/replay", json={
        "version": other_version}), 422)["errors"]}
    assert fields == {"version"}
    assert {e["field"] for e in problem(api.post(f"/runs/{source}/replay", json={
        "version": 9}), 422)["errors"]} == {"version"}
    assert {e["field"] for e in problem(api.post(f"/runs/{source}/replay", json={
        "agent_versions": [{"agent_id": str(agent_id), "version": 7}]}),
        422)["errors"]} == {"agent_versions.0.version"}
    assert {e["field"] for e in problem(api.post(f"/runs/{source}/replay", json={
        "agent_versions": [{"agent_id": UNKNOWN, "version": 1}]}),
        422)["errors"]} == {"agent_versions.0.agent_id"}
    problem(api.post(f"/runs/{source}/replay", json={"test": True, "from_step": "write"}),
            422)
    # Another tenant's run, agent and comparison are not found.
    intruder = as_key(app, world, "b_admin")
    problem(intruder.post(f"/runs/{source}/replay", json={"test": True}), 404)
    problem(intruder.get(f"/runs/{source}/diff"), 404)
    problem(intruder.post(f"/agents/{agent_id}/compare", json={
        "version_a": 1, "version_b": 2, "run_ids": [source]}), 404)
    problem(api.post(f"/agents/{agent_id}/compare", json={
        "version_a": 1, "version_b": 5, "run_ids": [source]}), 422)
    problem(api.post(f"/agents/{agent_id}/compare", json={
        "version_a": 1, "version_b": 2, "run_ids": [UNKNOWN]}), 422)
    problem(api.get(f"/agents/{agent_id}/comparisons/{UNKNOWN}"), 404)


def test_replay_ab_comparison_of_two_agent_versions_over_three_runs(
        app, world, inbox, receiver):
    api, _wf, agent_id, sources = recorded(app, world, inbox, receiver, runs=3)
    started = ok(api.post(f"/agents/{agent_id}/compare", json={
        "version_a": 1, "version_b": 2, "run_ids": sources}), 202)
    assert started["finished"] is False and len(started["runs"]) == 3
    inbox.drain()
    table = ok(api.get(f"/agents/{agent_id}/comparisons/{started['id']}"))
    assert table["finished"] is True
    assert (table["version_a"], table["version_b"]) == (1, 2)
    assert {r["source_run_id"] for r in table["runs"]} == set(sources)
    for row in table["runs"]:
        assert row["a"]["status"] == row["b"]["status"] == "succeeded"
        assert row["a"]["output"] == "Dear customer,\nyour refund is on its way."
        assert row["b"]["output"] == "Dear customer,\nyour refund was sent today."
        assert row["outputs_equal"] is False and row["steps_changed"] == 2
        assert row["a"]["tokens"] == row["b"]["tokens"] == 120
        assert row["a"]["latency_seconds"] is not None
    totals = table["totals"]
    assert totals["runs"] == 3 and totals["outputs_differ"] == 3
    assert totals["a"]["succeeded"] == totals["b"]["succeeded"] == 3
    assert totals["a"]["tokens"] == 360
    assert len(receiver.hits_to("/notify")) == 3  # six replays sent nothing

    by_last = ok(api.post(f"/agents/{agent_id}/compare", json={
        "version_a": 2, "version_b": 2, "last": 2}), 202)
    inbox.drain()
    table = ok(api.get(f"/agents/{agent_id}/comparisons/{by_last['id']}"))
    assert len(table["runs"]) == 2 and table["totals"]["outputs_equal"] == 2
