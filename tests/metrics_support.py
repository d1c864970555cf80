"""Reading a Prometheus scrape in tests."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

UUID_LIKE = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
Samples = list[tuple[str, dict[str, str], float]]


def parse(text: str) -> Samples:
    return [(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample's value (summed over the labels not named), None when absent."""
    found = [v for n, ls, v in samples
             if n == name and all(ls.get(k) == want for k, want in labels.items())]
    return sum(found) if found else None


def labelled_like_ids(samples: Samples) -> list[tuple[str, str, str]]:
    """(metric, label, value) of every label value that looks like a UUID."""
    return [(name, key, v) for name, labels, _ in samples for key, v in labels.items()
            if UUID_LIKE.search(v)]


def scrape(url: str, timeout: float = 30.0, token: str | None = None) -> Samples:
    """The endpoint's samples, waiting for it to start answering."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while True:
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=5) as response:
                return parse(response.read().decode())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def scrape_until(url: str, ready: object, timeout: float = 30.0) -> Samples:
    """Scrape until `ready(samples)` holds (values other processes write a little later)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url, timeout)
        if ready(samples) or time.monotonic() > deadline:  # type: ignore[operator]
            return samples
        time.sleep(0.1)
