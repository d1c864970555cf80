"""The load generator of the webhook phases (Overture and n8n alike): keep-alive
`http.client` connections on loopback POSTing small JSON bodies, bounded in count and
time, either as fast as the server answers (closed loop) or paced at a given rate."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Sent:
    sent: float  # wall clock when the request was written
    done: float  # wall clock when the response had been read
    status: int
    body: bytes


@dataclass
class Load:
    statuses: Counter[int] = field(default_factory=Counter)
    requests: list[Sent] = field(default_factory=list)
    start: float = 0.0
    last: float = 0.0  # the last response
    cpu: float = 0.0  # CPU seconds this process spent generating the load
    late: float = 0.0  # paced: how far behind schedule the last request was sent, seconds

    @property
    def count(self) -> int:
        return sum(self.statuses.values())

    @property
    def send_seconds(self) -> float:
        return self.last - self.start


def get(port: int, path: str) -> int:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return 0


def load(port: int, paths: list[str], total: int, clients: int, seconds: float,
         rate: float | None = None) -> Load:
    """POST to the paths round-robin from `clients` keep-alive connections until `total`
    requests or `seconds` have passed. With `rate`, request i is sent no earlier than
    i / rate seconds after the start (a client that is late sends at once)."""
    counter = itertools.count()
    out = Load(start=time.time())
    deadline = time.monotonic() + seconds
    t0 = time.monotonic()
    lock = threading.Lock()
    cpu0 = time.process_time()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[Sent] = []
        late = 0.0
        while time.monotonic() < deadline:
            i = next(counter)
            if i >= total:
                break
            if rate:
                due = t0 + i / rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                else:
                    late = max(late, -wait)
                if time.monotonic() >= deadline:
                    break
            body = json.dumps({"i": i})
            sent = time.time()
            try:
                conn.request("POST", paths[i % len(paths)], body=body,
                             headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                mine.append(Sent(sent, time.time(), response.status, data[:300]))
            except (OSError, http.client.HTTPException):
                mine.append(Sent(sent, time.time(), 0, b""))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
        with lock:
            out.requests += mine
            out.late = max(out.late, late)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    out.cpu = time.process_time() - cpu0
    out.statuses = Counter(r.status for r in out.requests)
    out.last = max((r.done for r in out.requests), default=out.start)
    return out
