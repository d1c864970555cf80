"""The Helm chart (helm/overture), rendered without a cluster by the Helm SDK
(helm-python-sdk) for four value sets, each manifest validated against the Kubernetes
1.30 schemas (kubernetes-validate, strict: unknown fields fail). The custom resources
(KEDA, Prometheus Operator) have no schema there: their shape is checked here.
tests/test_helm_values.py holds the values the schema refuses, and the dashboard."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import helm_python as helm
import kubernetes_validate
import pytest

from overture.orchestration.worker import QUEUE
from tests.conftest import REDIS_URL
from tests.helm_support import (
    CHART,
    CUSTOM_RESOURCES,
    EXTERNAL,
    INGRESS,
    KEDA_ON,
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    SECRET_VARS,
    VALUE_SETS,
    by_kind,
    env_of,
    pod_specs,
    render,
    validate_all,
)


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def test_helm_lint_strict_finds_nothing_above_info():
    report = helm.lint(CHART, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_each_value_set_renders_objects_valid_for_kubernetes(chart, name):
    objects = render(chart, VALUE_SETS[name])
    assert len(objects) >= 10
    for obj in objects:
        if obj["kind"] in CUSTOM_RESOURCES:
            continue  # no Kubernetes schema: their shapes are tested below
        assert kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names))
    for obj in objects:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", obj["metadata"]["name"])
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE


def test_defaults_run_web_workers_scheduler_and_a_migration_hook(chart):
    objects = render(chart, {})
    deployments = by_kind(objects, "Deployment")
    assert set(deployments) == {"acme-overture-web", "acme-overture-worker",
                                "acme-overture-scheduler"}
    args = {n: d["spec"]["template"]["spec"]["containers"][0]["args"]
            for n, d in deployments.items()}
    assert args == {"acme-overture-web": ["web", "--workers", "2"],
                    "acme-overture-worker": ["worker", "--processes", "2", "--threads", "8"],
                    "acme-overture-scheduler": ["scheduler", "--interval", "5"]}
    scheduler = deployments["acme-overture-scheduler"]["spec"]
    assert scheduler["replicas"] == 1 and scheduler["strategy"] == {"type": "Recreate"}
    assert "replicas" not in deployments["acme-overture-web"]["spec"]  # the HPA's
    assert deployments["acme-overture-worker"]["spec"]["replicas"] == 2
    hpa = by_kind(objects, "HorizontalPodAutoscaler")["acme-overture-web"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "acme-overture-web"
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    # Off unless enabled: no KEDA, no ServiceMonitor, no Ingress, no dashboard.
    kinds = {o["kind"] for o in objects}
    assert not kinds & (CUSTOM_RESOURCES | {"Ingress", "Secret"})
    assert set(by_kind(objects, "ConfigMap")) == {"acme-overture"}
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert budgets["acme-overture-web"]["spec"]["minAvailable"] == 1
    assert budgets["acme-overture-worker"]["spec"]["maxUnavailable"] == 1
    assert "acme-overture-scheduler" not in budgets  # one replica: a budget forbids drains


def test_the_migration_job_is_a_pre_install_and_pre_upgrade_hook_as_the_owner(chart):
    job = by_kind(render(chart, {}), "Job")["acme-overture-migrations"]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["db", "upgrade"]
    env = env_of(container)
    assert env["DATABASE_OWNER_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "overture", "key": "DATABASE_OWNER_URL"}
    assert "envFrom" not in container  # the ConfigMap does not exist yet at pre-install
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_pod_is_locked_down(chart, name):
    for pod_name, pod in pod_specs(render(chart, VALUE_SETS[name])).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, pod_name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
        for container in pod["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "runAsNonRoot": True, "privileged": False,
                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
            assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
            assert set(container["resources"]) == {"requests", "limits"}


def test_web_is_probed_on_healthz_and_readyz(chart):
    web = pod_specs(render(chart, {}))["acme-overture-web"]["containers"][0]
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_secrets_only_come_from_existing_secrets(chart, name):
    objects = render(chart, VALUE_SETS[name])
    assert not by_kind(objects, "Secret")
    config = by_kind(objects, "ConfigMap")["acme-overture"]["data"]
    assert not set(config) & SECRET_VARS
    for pod in pod_specs(objects).values():
        for container in pod["containers"]:
            for var, entry in env_of(container).items():
                if var in SECRET_VARS:
                    assert set(entry) == {"name", "valueFrom"}
                    assert set(entry["valueFrom"]) == {"secretKeyRef"}


def test_external_secrets_are_each_read_from_their_own_secret(chart):
    objects = render(chart, EXTERNAL)
    web = pod_specs(objects)["acme-overture-web"]["containers"][0]
    refs = {var: e["valueFrom"]["secretKeyRef"] for var, e in env_of(web).items()
            if "valueFrom" in e}
    assert refs == {"DATABASE_URL": {"name": "pg-app", "key": "uri"},
                    "REDIS_URL": {"name": "redis-conn", "key": "url"},
                    "SECRET_KEY": {"name": "overture-keys", "key": "secret-key"},
                    "OVERTURE_MASTER_KEY": {"name": "overture-vault", "key": "master"},
                    "OVERTURE_METRICS_TOKEN": {"name": "overture-keys", "key": "metrics"}}
    job = pod_specs(objects)["acme-overture-migrations"]["containers"][0]
    assert env_of(job)["DATABASE_OWNER_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "pg-owner", "key": "uri"}


def test_service_monitors_scrape_metrics_on_web_workers_and_scheduler(chart):
    objects = render(chart, EXTERNAL)
    services = by_kind(objects, "Service")
    monitors = by_kind(objects, "ServiceMonitor")
    assert set(monitors) == {"acme-overture-web", "acme-overture-worker",
                             "acme-overture-scheduler"}
    scraped = {}
    for name, monitor in monitors.items():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        spec = monitor["spec"]
        assert set(spec) == {"selector", "namespaceSelector", "endpoints"}
        assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        [endpoint] = spec["endpoints"]
        assert endpoint["path"] == "/metrics" and endpoint["interval"] == "30s"
        assert endpoint["bearerTokenSecret"] == {"name": "overture-keys", "key": "metrics"}
        selected = [s for s in services.values() if spec["selector"]["matchLabels"].items()
                    <= s["metadata"]["labels"].items()]
        assert len(selected) == 1, name
        ports = {p["name"]: p for p in selected[0]["spec"]["ports"]}
        scraped[name] = (endpoint["port"], ports[endpoint["port"]]["port"])
    assert scraped == {"acme-overture-web": ("http", 80),
                       "acme-overture-worker": ("metrics", 9191),
                       "acme-overture-scheduler": ("metrics", 9192)}
    config = by_kind(objects, "ConfigMap")["acme-overture"]["data"]
    assert config["OVERTURE_WORKER_METRICS_PORT"] == "9191"


def test_the_grafana_dashboard_ships_in_a_labelled_config_map(chart):
    dashboard = by_kind(render(chart, EXTERNAL), "ConfigMap")["acme-overture-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(dashboard["data"]["overture.json"])
    assert shipped == json.loads((CHART / "dashboards" / "overture.json").read_text())


def test_keda_scales_workers_on_the_redis_list_the_steps_wait_in(chart):
    namespace = f"kedatest-{uuid.uuid4().hex[:8]}"
    objects = render(chart, {**KEDA_ON, "config": {"redisNamespace": namespace}})
    assert "replicas" not in by_kind(objects, "Deployment")["acme-overture-worker"]["spec"]
    scaled = by_kind(objects, "ScaledObject")["acme-overture-worker"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"name": "acme-overture-worker"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 12)
    [trigger] = spec["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["authenticationRef"] == {"name": "acme-overture-worker-redis"}
    metadata = trigger["metadata"]
    assert all(isinstance(v, str) for v in metadata.values())  # KEDA's metadata is strings
    assert metadata["address"] == "redis.data.svc:6379" and metadata["listLength"] == "20"
    auth = by_kind(objects, "TriggerAuthentication")["acme-overture-worker-redis"]
    assert auth["spec"] == {"secretTargetRef": [
        {"parameter": "password", "name": "redis-auth", "key": "password"}]}
    assert queued_in(metadata["listName"], namespace) == 1


def queued_in(list_name: str, namespace: str) -> int:
    """Send one step message through the app's broker under `namespace`; the length of
    the Redis list `list_name` then."""
    import dramatiq
    from dramatiq import Message

    from overture.platform.queue import make_broker

    previous = dramatiq.get_broker()
    broker = make_broker(REDIS_URL, namespace)
    dramatiq.set_broker(previous)
    try:
        broker.declare_queue(QUEUE)
        broker.enqueue(Message(queue_name=QUEUE, actor_name="run_step", args=(), kwargs={},
                               options={}))
        return int(broker.client.llen(list_name))
    finally:
        for key in broker.client.scan_iter(f"{namespace}*"):
            broker.client.delete(key)
        broker.close()


def test_ingress_routes_each_tenant_domain_with_its_own_certificate(chart):
    objects = render(chart, INGRESS)
    ingress = by_kind(objects, "Ingress")["acme-overture"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "20m"
    hosts = ["agents.example.com", "portal.acme-support.example", "help.globex.example"]
    assert [r["host"] for r in ingress["spec"]["rules"]] == hosts
    assert [t["hosts"] for t in ingress["spec"]["tls"]] == [[h] for h in hosts]
    secrets = [t["secretName"] for t in ingress["spec"]["tls"]]
    assert secrets == ["acme-overture-tls", "acme-overture-domain-portal-acme-support-example",
                       "acme-overture-domain-help-globex-example"]
    web = by_kind(objects, "Service")["acme-overture-web"]
    for rule in ingress["spec"]["rules"]:
        [path] = rule["http"]["paths"]
        assert path["backend"]["service"] == {"name": web["metadata"]["name"],
                                              "port": {"name": "http"}}
    issuer = render(chart, {"ingress": {**INGRESS["ingress"], "certManager": {
        "enabled": True, "issuer": "team-ca", "issuerKind": "Issuer"}}})
    annotations = by_kind(issuer, "Ingress")["acme-overture"]["metadata"]["annotations"]
    assert annotations["cert-manager.io/issuer"] == "team-ca"
    assert "cert-manager.io/cluster-issuer" not in annotations


def test_a_named_claim_keeps_audit_checkpoints_written_by_the_scheduler_read_by_web(chart):
    objects = render(chart, {"auditCheckpoints": {"existingClaim": "overture-audit"}})
    validate_all(objects)
    path = by_kind(objects, "ConfigMap")["acme-overture"]["data"][
        "OVERTURE_AUDIT_CHECKPOINT_PATH"]
    pods = pod_specs(objects)
    mounts = {}
    for name, pod in pods.items():
        claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        mounted = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] != "tmp"]
        if claims:
            assert claims[0]["persistentVolumeClaim"] == {"claimName": "overture-audit"}
            [mount] = mounted
            assert path.startswith(mount["mountPath"] + "/")
            mounts[name] = mount["readOnly"]
        else:
            assert not mounted
    assert mounts == {"acme-overture-scheduler": False, "acme-overture-web": True}


def test_network_policies_admit_the_ingress_controller_and_prometheus_only(chart):
    policies = by_kind(render(chart, {}), "NetworkPolicy")
    web = policies["acme-overture-web"]["spec"]
    froms = [rule["from"][0]["namespaceSelector"]["matchLabels"] for rule in web["ingress"]]
    assert froms == [{"kubernetes.io/metadata.name": "ingress-nginx"},
                     {"kubernetes.io/metadata.name": "monitoring"}]
    assert policies["acme-overture-migrations"]["spec"]["ingress"] == []
    worker = policies["acme-overture-worker"]["spec"]
    assert worker["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    egress_ports = {p["port"] for rule in worker["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 5432, 6379, 443, 80}
