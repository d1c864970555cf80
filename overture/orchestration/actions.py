"""What an `action` step calls: a connector action (`<connector>.<action>`, with the
step's `connection`), or an action registered here by other code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overture.billing.usage import NOWHERE, Attribution
from overture.connectors import registry
from overture.connectors.errors import ActionFailed
from overture.connectors.execute import execute, execute_unconnected
from overture.orchestration.outcomes import StepFailed, budget_exceeded
from overture.platform.errors import OvertureError, PaymentRequired, ValidationFailed


@dataclass(frozen=True)
class ActionCall:
    input: Any
    idempotency_key: str
    timeout: float
    tenant_id: str
    connection: str | None = None
    attribution: Attribution = NOWHERE  # where the call's usage belongs


Action = Callable[[ActionCall], Any]
_ACTIONS: dict[str, Action] = {}


def register_action(key: str, action: Action) -> None:
    _ACTIONS[key] = action


def exists(key: str) -> bool:
    if key in _ACTIONS:
        return True
    connector_key, _, action_key = key.rpartition(".")
    connector = registry.find(connector_key)
    return connector is not None and connector.action(action_key) is not None


def get(key: str) -> Action:
    if key in _ACTIONS:
        return _ACTIONS[key]
    if not exists(key):
        raise StepFailed("unknown_action", f"no action {key!r}")
    connector_key, _, action_key = key.rpartition(".")
    return lambda call: _call_connector(connector_key, action_key, call)


def _call_connector(connector_key: str, action_key: str, call: ActionCall) -> Any:
    """Connector errors become step errors whose codes the retry policy understands."""
    try:
        if call.connection:
            return execute(call.connection, action_key, call.input, call.idempotency_key,
                           call.timeout, call.attribution)
        return execute_unconnected(connector_key, action_key, call.input, call.idempotency_key,
                                   call.timeout, call.attribution)
    except ActionFailed as failure:
        raise StepFailed(failure.reason, failure.detail,
                         {k: v for k, v in failure.extra.items() if k != "reason"}) from failure
    except ValidationFailed as invalid:
        raise StepFailed("invalid_input", invalid.detail, {"errors": invalid.errors}) from invalid
    except PaymentRequired as refused:
        raise budget_exceeded(refused) from refused
    except OvertureError as error:
        raise StepFailed(error.code, error.detail) from error
