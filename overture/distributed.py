"""`overture up --distributed`: the production shape on one machine.

Web (gunicorn), the Dramatiq workers and the scheduler run as separate child processes,
each the same `overture` command a container would run, against the PostgreSQL and
Redis of the settings. The supervisor only starts, watches and stops them: it loads no
app, so it costs a few megabytes.

Each child gets a process group of its own, so a Ctrl-C in the terminal reaches only the
supervisor, which then stops every child's whole group (gunicorn's and Dramatiq's
forked processes with it) with SIGTERM, and with SIGKILL after STOP_GRACE_SECONDS or a
second Ctrl-C. SIGHUP is passed on. If one child exits by itself, the others are
stopped and the supervisor exits non-zero naming it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

import click

from overture.platform.config import Settings

STOP_GRACE_SECONDS = 20.0
POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1  # prctl: the kernel signals the child when the supervisor dies


@dataclass(frozen=True)
class Options:
    web_workers: int = 2
    worker_processes: int = 2
    worker_threads: int = 8
    scheduler_interval: float = 5.0
    migrate: bool = True
    seed_demo: bool = True


def refusal(settings: Settings) -> str | None:
    """Why the settings cannot run distributed, or None."""
    if settings.is_sqlite:
        return ("overture up --distributed needs PostgreSQL: set DATABASE_URL (and "
                "DATABASE_OWNER_URL for migrations) to a PostgreSQL database; the SQLite "
                "file cannot be shared by separate processes. `overture up` runs the "
                "embedded default instead.")
    if not settings.redis_url:
        return ("overture up --distributed needs Redis for the queue between web and "
                "workers: set REDIS_URL. `overture up` runs the embedded default instead.")
    return None


def commands(options: Options) -> dict[str, list[str]]:
    """The long-running children, by name: each an `overture` command."""
    return {
        "web": ["web", "--workers", str(options.web_workers)],
        "worker": ["worker", "--processes", str(options.worker_processes),
                   "--threads", str(options.worker_threads)],
        "scheduler": ["scheduler", "--interval", str(options.scheduler_interval)],
    }


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """A supervisor killed outright (SIGKILL) leaves no orphans: Linux signals the child."""
    # Not Linux: no prctl; Ctrl-C and SIGTERM still stop everything.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(arguments: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "overture.cli", *arguments],
        start_new_session=True, preexec_fn=_die_with_parent)


def _run_once(name: str, arguments: list[str]) -> None:
    code = _spawn(arguments).wait()
    if code != 0:
        raise click.ClickException(f"`overture {' '.join(arguments)}` ({name}) failed with "
                                   f"exit code {code}; nothing was started")


@dataclass
class Supervisor:
    """Starts the children, forwards signals, stops them all."""

    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False
    kill_now: bool = False

    def start(self, named: dict[str, list[str]]) -> None:
        for name, arguments in named.items():
            self.children[name] = _spawn(arguments)
            click.echo(f"  {name:10} pid {self.children[name].pid}: overture "
                       + " ".join(arguments))

    def signal_all(self, signum: int) -> None:
        for child in self.children.values():
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signum)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.signal_all(signal.SIGHUP)
            return
        if self.stopping:  # a second Ctrl-C: no more patience
            self.kill_now = True
        self.stopping = True

    def exited(self) -> tuple[str, int] | None:
        for name, child in self.children.items():
            code = child.poll()
            if code is not None:
                return name, code
        return None

    def wait(self) -> tuple[str, int] | None:
        """Until a signal asks to stop (None) or a child exits by itself (its name, code)."""
        while not self.stopping:
            gone = self.exited()
            if gone:
                return gone
            time.sleep(POLL_SECONDS)
        return None

    def stop(self) -> None:
        """SIGTERM to every child's group; SIGKILL to what is left after the grace."""
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while any(c.poll() is None for c in self.children.values()):
            if self.kill_now or time.monotonic() > deadline:
                self.signal_all(signal.SIGKILL)
            time.sleep(POLL_SECONDS)
        # The groups' other members (forked workers) follow their leader; make sure.
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)


def _install(handler: Callable[[int, FrameType | None], None]) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


def run_distributed(settings: Settings, options: Options) -> None:
    problem = refusal(settings)
    if problem:
        raise click.ClickException(problem)
    supervisor = Supervisor()
    _install(supervisor.on_signal)
    if options.migrate:
        _run_once("migrations", ["db", "upgrade"])
    if options.seed_demo and not supervisor.stopping:
        _run_once("demo", ["seed-demo", "--if-empty"])
    if supervisor.stopping:  # Ctrl-C while migrating: start nothing
        return
    click.echo(f"\nOverture (distributed) at {settings.public_url}/")
    supervisor.start(commands(options))
    click.echo("Ctrl-C stops them all.\n")
    gone = supervisor.wait()
    supervisor.stop()
    if gone:
        name, code = gone
        raise click.ClickException(f"{name} exited with code {code}; stopped the others")
    click.echo("stopped web, worker and scheduler")
