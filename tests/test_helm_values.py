"""The Helm chart's values: the README's example installs cleanly; the schema and the
templates refuse bad values naming them; the Grafana dashboard charts the metrics the
app exports."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.helm_support import (
    CHART,
    EXTERNAL,
    NAMESPACE,
    RELEASE,
    env_of,
    pod_specs,
    render,
    validate_all,
)


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def test_the_readme_example_values_install_cleanly(chart):
    readme = (CHART.parents[1] / "README.md").read_text()
    example = readme.split("with, for example, `overture-values.yaml`:\n\n```yaml\n")[1]
    values = yaml.safe_load(example.split("```")[0])
    objects = render(chart, values)
    validate_all(objects)
    assert {"ScaledObject", "ServiceMonitor", "Ingress"} <= {o["kind"] for o in objects}
    web = pod_specs(objects)["acme-overture-web"]["containers"][0]
    assert web["image"] == "registry.example.com/overture:0.1.0"
    assert env_of(web)["OVERTURE_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "overture", "key": "SMTP_PASSWORD"}


def refused(chart: helm.Chart, values: dict[str, Any]) -> str:
    with pytest.raises((helm.HelmValuesError, helm.HelmRenderError)) as caught:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return str(caught.value)


@pytest.mark.parametrize(("values", "named"), [
    ({"web": {"replicas": "two"}}, "/web/replicas"),
    ({"web": {"replica": 3}}, "replica"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"scheduler": {"replicas": 2}}, "/scheduler/replicas"),
    ({"ingress": {"customDomains": ["Not a domain"]}}, "/ingress/customDomains/0"),
    # A secret, or a variable the chart sets itself, cannot come in through extraEnv.
    ({"config": {"extraEnv": {"DATABASE_URL": "postgresql://app:pw@db/overture"}}},
     "invalid propertyName 'DATABASE_URL'"),
    ({"config": {"extraEnv": {"STRIPE_API_KEY": "sk_live_1"}}},
     "invalid propertyName 'STRIPE_API_KEY'"),
    ({"config": {"extraEnv": {"PORT": "9000"}}}, "invalid propertyName 'PORT'"),
    ({"secrets": {"masterKey": {"value": "k1:AAAA"}}}, "value"),
    ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext/runAsNonRoot"),
    ({"worker": {"keda": {"enabled": "yes"}}}, "/worker/keda/enabled"),
])
def test_the_schema_refuses_bad_values_naming_them(chart, values, named):
    message = refused(chart, values)
    assert "values don't meet the specifications of the schema" in message
    assert named in message


def test_a_missing_secret_name_or_an_undrainable_budget_fails_the_render_clearly(chart):
    secrets = copy.deepcopy(EXTERNAL["secrets"])
    secrets["masterKey"]["secretName"] = ""
    assert ("secrets.masterKey: name the Secret holding OVERTURE_MASTER_KEY (secrets.masterKey."
            "secretName or secrets.existingSecret); the chart never takes secret values in "
            "plain text") in refused(chart, {"secrets": secrets})
    assert "web.pdb.minAvailable (2) must be lower than web's replicas (2)" in refused(
        chart, {"web": {"pdb": {"minAvailable": 2}}})
    assert "worker.keda.maxReplicas (1) must be at least worker.keda.minReplicas (3)" in refused(
        chart, {"worker": {"keda": {"enabled": True, "minReplicas": 3, "maxReplicas": 1}}})


DASHBOARD_METRICS = {
    "overture_http_requests_total", "overture_http_request_duration_seconds",
    "overture_runs_started_total", "overture_runs_finished_total",
    "overture_run_duration_seconds", "overture_step_duration_seconds",
    "overture_queue_depth", "overture_queue_oldest_message_age_seconds",
    "overture_sweeper_redispatches_total", "overture_approvals_waiting",
    "overture_model_tokens_total", "overture_model_cost_usd_total",
    "overture_connector_calls_total", "overture_webhook_intake_total",
    "overture_stripe_outbox_backlog"}


def test_the_dashboard_charts_every_metric_and_only_those(chart):
    dashboard = json.loads((CHART / "dashboards" / "overture.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    used = set()
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            names = set(re.findall(r"overture_[a-z_]+", target["expr"]))
            used |= {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}
            assert 'namespace=~"$namespace"' in target["expr"]
    assert used == DASHBOARD_METRICS
    variables = [v["name"] for v in dashboard["templating"]["list"]]
    assert variables == ["datasource", "namespace"]
