"""Every connector in `connectors/library/`, found by module, keyed by connector key."""

from __future__ import annotations

import importlib
import pkgutil
import threading

from overture.connectors import library
from overture.connectors.spec import Connector
from overture.platform.errors import NotFound

_REGISTRY: dict[str, Connector] = {}


_LOADING = threading.Lock()


def _discover() -> dict[str, Connector]:
    """Load the library once; concurrent first callers wait for the whole of it."""
    if not _REGISTRY:
        with _LOADING:
            if not _REGISTRY:
                found: dict[str, Connector] = {}
                for module in pkgutil.iter_modules(library.__path__):
                    loaded = importlib.import_module(f"{library.__name__}.{module.name}")
                    connector = getattr(loaded, "CONNECTOR", None)
                    if isinstance(connector, Connector):
                        found[connector.key] = connector
                _REGISTRY.update(found)
    return _REGISTRY


TENANT_PREFIX = "openapi."  # a tenant's own connectors (`connectors.openapi`)


def register(connector: Connector) -> None:
    """Add a connector that is not a library module, for every tenant. A tenant's own
    connectors (imported OpenAPI documents) are never registered here: `find` reads
    them through the tenant scope."""
    if connector.key.startswith(TENANT_PREFIX):
        raise ValueError(f"{connector.key!r}: tenant connectors are not global")
    _discover()[connector.key] = connector


def all_connectors() -> list[Connector]:
    """The library, and the scope tenant's own connectors."""
    from overture.connectors import openapi

    return sorted([*_discover().values(), *openapi.tenant_connectors()], key=lambda c: c.key)


def get(key: str) -> Connector:
    connector = find(key)
    if connector is None:
        raise NotFound(f"no connector {key!r}")
    return connector


def find(key: str) -> Connector | None:
    if key.startswith(TENANT_PREFIX):
        from overture.connectors import openapi

        return openapi.find_connector(key)
    return _discover().get(key)
