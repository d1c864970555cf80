"""The container's HEALTHCHECK: `python -m overture.healthcheck`.

One image runs every command, so the check asks which one PID 1 is: `overture web`
answers /healthz on PORT; the others (worker, scheduler) serve no HTTP of their own
here and are healthy while they run, which Docker already knows. Exit 0 when healthy,
1 with the reason otherwise (Docker keeps the output in `docker inspect`)."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

TIMEOUT_SECONDS = 4.0


def serves_http(cmdline: list[str]) -> bool:
    """Whether this command line is `overture web`: the console script run by its
    interpreter (`python /usr/local/bin/overture web ...`) or `python -m overture.cli web`."""
    programs = [i for i, part in enumerate(cmdline)
                if Path(part).name == "overture" or part == "overture.cli"]
    if not programs:
        return False
    arguments = [a for a in cmdline[programs[0] + 1:] if not a.startswith("-")]
    return bool(arguments) and arguments[0] == "web"


def command_line(pid: int = 1) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def check(cmdline: list[str], port: str) -> str | None:
    """None when healthy, else why not."""
    if not serves_http(cmdline):
        return None
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            return None if answer.status == 200 else f"{url} answered {answer.status}"
    except OSError as exc:
        return f"{url}: {exc}"


def main() -> int:
    problem = check(command_line(), os.environ.get("PORT", "8000"))
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
