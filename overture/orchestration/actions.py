"""Actions an `action` step can call, by key. The connector framework registers its
actions here; `http.request` is built in."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from overture.orchestration.outcomes import StepFailed
from overture.platform import http
from overture.platform.errors import OvertureError


@dataclass(frozen=True)
class ActionCall:
    input: Any
    idempotency_key: str
    timeout: float
    tenant_id: str
    connection: str | None = None


Action = Callable[[ActionCall], Any]
_ACTIONS: dict[str, Action] = {}


def register_action(key: str, action: Action) -> None:
    _ACTIONS[key] = action


def get(key: str) -> Action:
    try:
        return _ACTIONS[key]
    except KeyError:
        raise StepFailed("unknown_action", f"no action {key!r}") from None


def known_actions() -> list[str]:
    return sorted(_ACTIONS)


def http_request(call: ActionCall) -> dict[str, Any]:
    """A generic HTTP request; sends the step's idempotency key as `Idempotency-Key`."""
    spec = call.input if isinstance(call.input, dict) else {}
    url = spec.get("url")
    if not isinstance(url, str):
        raise StepFailed("invalid", "http.request needs a 'url'")
    headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
    headers.setdefault("Idempotency-Key", call.idempotency_key)
    try:
        response = http.request(str(spec.get("method", "GET")).upper(), url, headers=headers,
                                json=spec.get("json"), params=spec.get("params"),
                                timeout=min(call.timeout, float(spec.get("timeout", 30))))
    except httpx.TimeoutException as exc:
        raise StepFailed("timeout", f"{url} did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise StepFailed("connection", f"{url}: {exc}") from exc
    except OvertureError as exc:
        raise StepFailed(exc.code, exc.detail) from exc
    if response.status_code == 429:
        raise StepFailed("rate_limited", f"{url} answered 429")
    if response.status_code >= 500:
        raise StepFailed("http_5xx", f"{url} answered {response.status_code}")
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, ValueError):
        body = response.text
    if response.status_code >= 400 and not spec.get("allow_errors"):
        raise StepFailed("http_4xx", f"{url} answered {response.status_code}",
                         {"status": response.status_code, "body": body})
    return {"status": response.status_code, "headers": dict(response.headers), "body": body}


register_action("http.request", http_request)
