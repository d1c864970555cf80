"""A real DNS server on a random loopback UDP port (dnslib), serving TXT records the
test controls, and a fixture that points the app's resolver settings at it.

    def test_x(app, dns_zone):
        dns_zone.txt("_verify.portal.acme.example", "verify=abc")
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import DNSLogger, DNSServer


class Zone:
    """What the server answers: TXT values per name; any other name does not exist."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.names: set[str] = set()
        self.queries: list[tuple[str, str]] = []  # (name, type), as asked
        self.before_answer: Callable[[str], None] | None = None
        self.servfail = False  # answer every query SERVFAIL (a resolver in trouble)
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return name.lower().rstrip(".") + "."

    def txt(self, name: str, *values: str) -> None:
        """Put TXT records at `name` (in addition to those there)."""
        with self._lock:
            self.records.setdefault(self._key(name), []).extend(values)

    def exists(self, name: str) -> None:
        """`name` exists, with no TXT record (an A record, say)."""
        with self._lock:
            self.names.add(self._key(name))

    def clear(self, name: str) -> None:
        with self._lock:
            self.records.pop(self._key(name), None)

    def resolve(self, request: Any, handler: Any) -> Any:
        name = str(request.q.qname).lower()
        self.queries.append((name, QTYPE[request.q.qtype]))
        if self.before_answer is not None:
            self.before_answer(name)
        reply = request.reply()
        if self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        with self._lock:
            values = list(self.records.get(name, ()))
            known = name in self.records or name in self.names
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=60))
        return reply


@pytest.fixture
def dns_zone(app: Any) -> Iterator[Zone]:
    zone = Zone()
    server = DNSServer(zone, address="127.0.0.1", port=0,
                       logger=DNSLogger(logf=lambda _line: None))
    server.start_thread()
    settings = app.extensions["overture.settings"]
    app.extensions["overture.settings"] = replace(
        settings, dns_nameservers=("127.0.0.1",), dns_port=server.server.server_address[1],
        dns_timeout_seconds=30.0)  # a bound for a busy machine, not a speed check
    try:
        yield zone
    finally:
        app.extensions["overture.settings"] = settings
        server.stop()
        server.server.server_close()
