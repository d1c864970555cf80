"""`/metrics` on real `overture web`, `overture worker` and `overture scheduler`
processes (gunicorn's and Dramatiq's pools in multiprocess mode) after a run started
by a webhook: an agent step on a fake model server, then an HTTP action."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from decimal import Decimal

import pytest

from overture.orchestration import workflows
from overture.orchestration.llm.prices import cost_of
from overture.platform.db import db, scoped_to
from tests.agent_fakes import FakeOpenAI, answer, create_agent
from tests.engine_support import Receiver, WorkerProcess, free_port, publish, start, wait_for
from tests.fault_support import WebProcess, scheduler_process
from tests.metrics_support import labelled_like_ids, scrape, scrape_until, value

TOKEN = "scrape-me-please"  # the metrics token of these processes


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


def _webhook(base: str, tenant_id: object, token: str, body: dict) -> dict:
    request = urllib.request.Request(f"{base}/hooks/{tenant_id}/{token}", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        return json.loads(response.read())


def test_web_worker_and_scheduler_metrics_after_a_run(app_ctx, world, settings, httpserver):
    a = world.tenants["a"].id
    fake = FakeOpenAI(httpserver)
    create_agent(world, {"name": "greeter", "model": {"provider": "openai",
                                                      "model": "gpt-4o-mini"},
                         "credential_id": str(fake.credential(world).id)})
    fake.say(answer("hello"), tokens=(405, 18))
    waits = publish(a, {"steps": [{"id": "ask", "type": "approval", "prompt": "go?"}]},
                    name="waits")
    worker_port, scheduler_port = free_port(), free_port()
    with Receiver() as receiver:
        wf = publish(a, {"steps": [
            {"id": "think", "type": "agent", "agent": "greeter", "task": "Say hello",
             "next": "tell"},
            {"id": "tell", "type": "action", "action": "http.request",
             "input": {"method": "POST", "url": receiver.url("/done"), "json": {}}}]})
        with scoped_to(a):
            hook_token = workflows.get_workflow(wf).webhook_token
            db.session.rollback()
        web = WebProcess(settings, workers=2, OVERTURE_METRICS_TOKEN=TOKEN)
        worker = WorkerProcess(settings, processes=2, threads=2,
                               env={"OVERTURE_WORKER_METRICS_PORT": str(worker_port)})
        scheduler = scheduler_process(settings, 0.5,
                                      OVERTURE_SCHEDULER_METRICS_PORT=str(scheduler_port))
        try:
            web.start()
            worker.start()
            scheduler.start()
            worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
            scrape(worker_metrics, timeout=120)  # served once the worker processes are up
            run_id = _webhook(web.base, a, hook_token, {"name": "Ada"})["run_id"]
            run = wait_for(a, run_id, timeout=60)
            assert run.status == "succeeded", run.error
            start(a, waits)  # its approval waits: the scheduler counts it
            web_samples = scrape(f"{web.base}/metrics", token=TOKEN)
            # the approval waiting: the workers took every message there was
            scheduler_samples = scrape_until(
                f"http://127.0.0.1:{scheduler_port}/metrics",
                lambda s: value(s, "overture_approvals_waiting") == 1, timeout=60)
            worker_samples = scrape_until(
                worker_metrics, lambda s: value(s, "overture_runs_finished_total") == 1)
        finally:
            scheduler.stop()
            worker.stop()
            web.stop()

    # the web app: the request by its route, the webhook, the run it started
    hook_route = "/hooks/<tenant_id>/<token>"
    assert value(web_samples, "overture_http_requests_total", route=hook_route,
                 method="POST", status="202") == 1
    assert value(web_samples, "overture_http_request_duration_seconds_count",
                 route=hook_route, method="POST") == 1
    assert value(web_samples, "overture_webhook_intake_total", outcome="accepted") == 1
    assert value(web_samples, "overture_runs_started_total", trigger="webhook") == 1
    assert value(web_samples, "overture_queue_depth", queue="steps") is not None

    # the workers: the run, its steps, the model's tokens and cost, the connector call
    assert value(worker_samples, "overture_runs_finished_total", status="succeeded") == 1
    assert value(worker_samples, "overture_run_duration_seconds_count") == 1
    assert value(worker_samples, "overture_step_duration_seconds_count",
                 step_type="agent") == 1
    assert value(worker_samples, "overture_step_duration_seconds_count",
                 step_type="action") == 1
    assert value(worker_samples, "overture_model_tokens_total", direction="input") == 405
    assert value(worker_samples, "overture_model_tokens_total", direction="output") == 18
    expected_cost = cost_of("openai", "gpt-4o-mini", 405, 18)
    assert Decimal(str(value(worker_samples, "overture_model_cost_usd_total"))) \
        == pytest.approx(expected_cost)
    assert value(worker_samples, "overture_connector_calls_total", connector="http",
                 outcome="ok") == 1
    assert value(worker_samples, "overture_queue_depth", queue="steps") == 0
    assert value(worker_samples, "overture_queue_oldest_message_age_seconds",
                 queue="steps") == 0

    # the scheduler: the approval waiting, the sweeper's count
    assert value(scheduler_samples, "overture_approvals_waiting") == 1
    assert value(scheduler_samples, "overture_sweeper_redispatches_total") is not None

    for samples in (web_samples, worker_samples, scheduler_samples):
        assert labelled_like_ids(samples) == []


def test_web_metrics_ask_for_the_token_when_one_is_set(settings):
    web = WebProcess(settings, workers=1, OVERTURE_METRICS_TOKEN=TOKEN).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{web.base}/metrics", timeout=10)
        assert refused.value.code == 401
        samples = scrape(f"{web.base}/metrics", token=TOKEN)
    finally:
        web.stop()
    assert value(samples, "overture_http_requests_total", route="/metrics",
                 status="401") == 1
