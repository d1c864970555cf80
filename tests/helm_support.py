"""Rendering the Helm chart (helm/overture) in tests: the Helm SDK (helm-python-sdk, no
cluster, no helm binary), the value sets the tests share, and lookups in what renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

CHART = Path(__file__).resolve().parents[1] / "helm" / "overture"
KUBE_VERSION = "1.30"
RELEASE, NAMESPACE = "acme", "overture"
CUSTOM_RESOURCES = {"ServiceMonitor", "ScaledObject", "TriggerAuthentication"}
SECRET_VARS = {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "SECRET_KEY",
               "OVERTURE_MASTER_KEY", "OVERTURE_AUDIT_KEY", "OVERTURE_SMTP_PASSWORD",
               "OVERTURE_METRICS_TOKEN"}

KEDA_ON = {"worker": {"keda": {"enabled": True, "minReplicas": 1, "maxReplicas": 12,
                               "redis": {"address": "redis.data.svc:6379",
                                         "passwordSecret": {"name": "redis-auth",
                                                            "key": "password"}}}}}
INGRESS = {"ingress": {"enabled": True, "host": "agents.example.com",
                       "customDomains": ["portal.acme-support.example", "help.globex.example"],
                       "certManager": {"enabled": True, "issuer": "letsencrypt-prod"},
                       "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "20m"}},
           "config": {"trustedProxies": "10.0.0.0/8"}}
EXTERNAL = {"secrets": {"existingSecret": "",
                        "databaseUrl": {"secretName": "pg-app", "key": "uri"},
                        "databaseOwnerUrl": {"secretName": "pg-owner", "key": "uri"},
                        "redisUrl": {"secretName": "redis-conn", "key": "url"},
                        "secretKey": {"secretName": "overture-keys", "key": "secret-key"},
                        "masterKey": {"secretName": "overture-vault", "key": "master"},
                        "metricsToken": {"secretName": "overture-keys", "key": "metrics"}},
            "monitoring": {"serviceMonitor": {"enabled": True,
                                              "labels": {"release": "kube-prometheus-stack"}},
                           "grafanaDashboard": {"enabled": True}}}
VALUE_SETS = {"defaults": {}, "keda": KEDA_ON, "ingress": INGRESS, "external-secrets": EXTERNAL}


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the chart renders with these values (NOTES.txt aside)."""
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objects
            if o["kind"] in ("Deployment", "Job")}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def validate_all(objects: list[dict[str, Any]]) -> None:
    """Every object against the Kubernetes schemas (strict: an unknown field fails), but
    the custom resources, which have none there: their tests check their shapes."""
    for obj in objects:
        if obj["kind"] not in CUSTOM_RESOURCES:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
