"""The pages a mail links to, by name.

The floors that write mail (the engine's approvals and failed runs, billing's alerts)
sit below the web layer that serves the pages, so they cannot build a page's URL
themselves: the web layer registers, at start, how to build each named page's path
(`web/mail_links.py`), and a mail puts it after its tenant's public address
(`tenants.domains.public_base_url`).
"""

from __future__ import annotations

from collections.abc import Callable

PathBuilder = Callable[..., str]
_builders: dict[str, PathBuilder] = {}


def register(name: str, build: PathBuilder) -> None:
    _builders[name] = build


def path(name: str, **values: object) -> str:
    """The path of page `name` (such as `/runs/<id>`) for these values."""
    try:
        build = _builders[name]
    except KeyError:
        raise RuntimeError(f"no page is registered for mail links named {name!r}: the web "
                           "layer registers them when the app is made") from None
    return build(**values)
