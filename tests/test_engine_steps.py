"""Each step type inside real runs on real worker processes (`-k engine`)."""

from __future__ import annotations

import pytest

from tests.engine_support import (
    publish,
    running_workers,
    start,
    step_outputs,
    steps_of,
    wait_for,
)


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings) as worker:
        yield worker


def test_engine_sequential_transform_and_output(app_ctx, world, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "double", "type": "transform", "output": {"n": "{{ input.n * 2 }}"},
         "next": "greet"},
        {"id": "greet", "type": "transform",
         "output": "hello {{ input.name }}, {{ steps.double.n }}"},
    ]})
    run = wait_for(a, start(a, wf, {"n": 21, "name": "Ada"}))
    assert run.status == "succeeded", run.error
    assert run.output == "hello Ada, 42"


def test_engine_condition_and_router(app_ctx, world, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "check", "type": "condition", "if": "input.amount > 100", "then": "big",
         "else": "small"},
        {"id": "big", "type": "transform", "output": "big", "next": "route"},
        {"id": "small", "type": "transform", "output": "small", "next": "route"},
        {"id": "route", "type": "router", "routes": [
            {"when": "input.kind == 'billing'", "next": "billing"},
            {"when": "input.kind == 'tech'", "next": "tech"}], "default": "other"},
        {"id": "billing", "type": "transform", "output": "B {{ steps.check.result }}"},
        {"id": "tech", "type": "transform", "output": "T"},
        {"id": "other", "type": "transform", "output": "O"},
    ]})
    cases = [({"amount": 500, "kind": "billing"}, "B true"), ({"amount": 5, "kind": "tech"}, "T"),
             ({"amount": 5, "kind": "sales"}, "O")]
    ids = [start(a, wf, case) for case, _ in cases]
    for run_id, (_, expected) in zip(ids, cases, strict=True):
        run = wait_for(a, run_id)
        assert (run.status, run.output) == ("succeeded", expected)
    outputs = step_outputs(a, ids[0])
    assert ("big", "") in outputs and ("small", "") not in outputs


def test_engine_parallel_fan_out_of_50_waits_for_all(app_ctx, world, workers):
    a = world.tenants["a"].id
    # Each branch starts by reading a step before the fan-out: however a branch is
    # started (its own message, or taken on by a worker ending another), it sees it.
    branches = [{"steps": [{"id": f"b{i}", "type": "transform",
                            "output": {"i": f"{{{{ steps.seed + {i} }}}}"}, "next": f"c{i}"},
                           {"id": f"c{i}", "type": "transform",
                            "output": f"{{{{ steps.b{i}.i * 10 }}}}"}]} for i in range(50)]
    wf = publish(a, {"steps": [
        {"id": "seed", "type": "transform", "output": 1000, "next": "fan"},
        {"id": "fan", "type": "parallel", "branches": branches, "next": "sum"},
        {"id": "sum", "type": "transform", "output": "{{ steps.fan.size() }}"},
    ]})
    run = wait_for(a, start(a, wf), timeout=60)
    assert run.status == "succeeded", run.error
    assert run.output == 50
    fan = step_outputs(a, run.id)[("fan", "")]
    assert fan == [(1000 + i) * 10 for i in range(50)]
    assert run.steps_executed == 2 + 100 + 1  # branch steps count when the join completes


def test_engine_parallel_inside_a_branch_joins_in_order(app_ctx, world, workers):
    """A fan-out inside a branch of another: the inner one starts and joins inside its
    block, the step after it sees its outputs, and every step is counted once."""
    a = world.tenants["a"].id
    inner = {"id": "inner", "type": "parallel", "next": "after_inner", "branches": [
        {"steps": [{"id": f"x{i}", "type": "transform",
                    "output": f"{{{{ steps.seed + {i} }}}}"}]} for i in range(2)]}
    wf = publish(a, {"steps": [
        {"id": "seed", "type": "transform", "output": 100, "next": "fan"},
        {"id": "fan", "type": "parallel", "next": "sum", "branches": [
            {"steps": [{"id": "b0", "type": "transform", "output": "first"}]},
            {"steps": [inner, {"id": "after_inner", "type": "transform",
                               "output": "{{ steps.inner[0] + steps.inner[1] }}"}]},
            {"steps": [{"id": "b2", "type": "transform", "output": "last"}]}]},
        {"id": "sum", "type": "transform", "output": "{{ steps.fan }}"},
    ]})
    run = wait_for(a, start(a, wf), timeout=60)
    assert run.status == "succeeded", run.error
    assert run.output == ["first", 201, "last"]
    assert step_outputs(a, run.id)[("inner", "fan#1/")] == [100, 101]
    # seed, fan, sum; b0, inner, after_inner, b2; x0, x1
    assert run.steps_executed == 9


def test_engine_parallel_join_any_cancels_the_rest(app_ctx, world, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "race", "type": "parallel", "join": "any", "branches": [
            {"steps": [{"id": "fast", "type": "transform", "output": "fast"}]},
            {"steps": [{"id": "slow", "type": "delay", "seconds": 30, "next": "late"},
                       {"id": "late", "type": "transform", "output": "late"}]}]},
    ]})
    run = wait_for(a, start(a, wf))
    assert run.status == "succeeded"
    assert run.output == ["fast", None]
    statuses = {s: st for s, _, st in steps_of(a, run.id)}
    assert statuses["slow"] == "cancelled" and "late" not in statuses


def test_engine_nested_loop_with_concurrency(app_ctx, world, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "rows", "type": "loop", "for_each": "input.matrix", "concurrency": 3,
         "body": {"steps": [
             {"id": "cells", "type": "loop", "for_each": "item", "concurrency": 2,
              "body": {"steps": [{"id": "sq", "type": "transform",
                                  "output": "{{ item * item }}"}]},
              "next": "total"},
             {"id": "total", "type": "transform",
              "output": "{{ steps.cells.size() }} cells in row {{ index }}"}]}},
    ]})
    run = wait_for(a, start(a, wf, {"matrix": [[1, 2], [3], [4, 5, 6], []]}), timeout=60)
    assert run.status == "succeeded", run.error
    assert run.output == ["2 cells in row 0", "1 cells in row 1", "3 cells in row 2",
                          "0 cells in row 3"]
    outputs = step_outputs(a, run.id)
    assert outputs[("cells", "rows#2/")] == [16, 25, 36]


def test_engine_repeat_until_stops_at_condition_or_maximum(app_ctx, world, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "again", "type": "loop", "until": "item >= 3", "max_iterations": 10,
         "body": {"steps": [{"id": "count", "type": "transform", "output": "{{ index + 1 }}"}]},
         "next": "capped"},
        {"id": "capped", "type": "loop", "until": "false", "max_iterations": 4,
         "body": {"steps": [{"id": "tick", "type": "transform", "output": "{{ index }}"}]}},
    ]})
    run = wait_for(a, start(a, wf))
    assert run.status == "succeeded", run.error
    assert step_outputs(a, run.id)[("again", "")] == [1, 2, 3]
    assert run.output == [0, 1, 2, 3]


def test_engine_stop_step_ends_the_run_with_status_and_output(app_ctx, world, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "gate", "type": "condition", "if": "input.ok", "then": "done", "else": "halt"},
        {"id": "done", "type": "stop", "status": "succeeded", "output": {"ok": True}},
        {"id": "halt", "type": "stop", "status": "failed", "error": "not ok: {{ input.why }}"},
    ]})
    ok = wait_for(a, start(a, wf, {"ok": True}))
    assert (ok.status, ok.output) == ("succeeded", {"ok": True})
    bad = wait_for(a, start(a, wf, {"ok": False, "why": "no stock"}))
    assert bad.status == "failed" and bad.error["message"] == "not ok: no stock"


def test_engine_delay_waits_then_continues(app_ctx, world, workers):
    import time

    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "pause", "type": "delay", "seconds": 1, "next": "after"},
        {"id": "after", "type": "transform", "output": "{{ steps.pause.waited_until }}"},
    ]})
    began = time.monotonic()
    run = wait_for(a, start(a, wf))
    assert run.status == "succeeded" and time.monotonic() - began >= 1.0


def test_engine_subworkflow_runs_a_child_and_uses_its_output(app_ctx, world, workers):
    a = world.tenants["a"].id
    child = publish(a, {"steps": [{"id": "shout", "type": "transform",
                                   "output": "{{ input.word }}!"}]}, name="child")
    parent = publish(a, {"steps": [
        {"id": "call", "type": "subworkflow", "workflow_id": str(child),
         "input": {"word": "{{ input.word }}"}, "next": "wrap"},
        {"id": "wrap", "type": "transform", "output": "[{{ steps.call }}]"},
    ]}, name="parent")
    run = wait_for(a, start(a, parent, {"word": "hey"}))
    assert (run.status, run.output) == ("succeeded", "[hey!]")


def test_engine_step_error_fails_the_run_with_the_error_recorded(app_ctx, world, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "boom", "type": "transform", "output": "{{ input.missing.deeper }}"}]})
    run = wait_for(a, start(a, wf, {}))
    assert run.status == "failed"
    assert run.error["step"] == "boom" and run.error["code"] == "expression"


def test_engine_error_route_goes_to_the_fallback(app_ctx, world, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "risky", "type": "transform", "output": "{{ input.nope.x }}",
         "on_error": "fallback"},
        {"id": "fallback", "type": "transform", "output": "recovered from {{ error.step }}"},
    ]})
    run = wait_for(a, start(a, wf, {}))
    assert (run.status, run.output) == ("succeeded", "recovered from risky")
