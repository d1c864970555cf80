"""Custom domains for tests: a verified one (through the real DNS check against the
dnslib server of tests/dns_server.py), and a client that sends its requests to a host."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from overture.platform.db import db, scoped_to
from overture.tenants import domains
from overture.tenants.access import Principal, access_to
from overture.tenants.domain_models import CustomDomain
from tests.dns_server import Zone
from tests.support import World

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def add_verified(w: World, handle: str, tenant: str, hostname: str,
                 zone: Zone) -> CustomDomain:
    """`hostname` added by `handle` to `tenant`, its record put in the zone, verified."""
    t, user = w.tenants[tenant], w.users[handle]
    with scoped_to(t.id, user_id=user.id):
        access = access_to(Principal(user), t)
        domain = domains.add_domain(access, hostname)
        zone.txt(domains.record_name(domain), domains.record_value(domain))
        check = domains.verify(access, domain)
        assert check.ok, check.message
        db.session.commit()
    return domain


class OnHost:
    """A browser-like client whose requests are for one host (its Host header)."""

    def __init__(self, app: Any, host: str, client: FlaskClient | None = None) -> None:
        self.client = client or app.test_client()
        self.base_url = f"http://{host}"

    def get(self, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", HTML)
        return self.client.get(path, base_url=self.base_url, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", HTML)
        return self.client.post(path, base_url=self.base_url, **kwargs)
