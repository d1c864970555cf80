"""Time-ordered identifiers (UUIDv7, RFC 9562).

Ids sort by creation time, so a list ordered by id is ordered by age and a cursor
is just the last id seen.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = [0, 0]  # [unix ms, 12-bit counter] keeps ids monotonic within one millisecond


def new_id() -> uuid.UUID:
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms = _last[0]
            _last[1] += 1
            if _last[1] > 0xFFF:
                ms += 1
                _last[1] = 0
        else:
            _last[1] = 0
        _last[0] = ms
        counter = _last[1]
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFFFFFFFFFFFFFF
    value = (ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    return uuid.UUID(int=value)


def parse_id(raw: str | uuid.UUID | None) -> uuid.UUID | None:
    """An id from user input, or None when it is not a UUID at all."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(str(raw))
    except (ValueError, TypeError, AttributeError):
        return None
