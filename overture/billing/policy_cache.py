"""Each process's copy of the tenants' limits and standing (`enforce.policy`), kept
`TTL` seconds; what changes them here (`budgets.replace`, `standing`) drops the
tenant's copy, so this process sees a change at once and the others within `TTL`."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

TTL = 5.0
_copies: dict[uuid.UUID, tuple[float, Any]] = {}
_lock = threading.Lock()


def get(tenant_id: uuid.UUID) -> Any | None:
    found = _copies.get(tenant_id)
    return found[1] if found is not None and found[0] > time.monotonic() else None


def put(tenant_id: uuid.UUID, value: Any) -> None:
    with _lock:
        _copies[tenant_id] = (time.monotonic() + TTL, value)


def forget(tenant_id: uuid.UUID | None = None) -> None:
    """Drop one tenant's copy (every tenant's without one)."""
    with _lock:
        if tenant_id is None:
            _copies.clear()
        else:
            _copies.pop(tenant_id, None)
