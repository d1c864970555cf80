"""Where audit checkpoints go: outside the database, so its owner cannot rewrite them.

A sink keeps checkpoint records (`audit_seal` makes them). Two exist: the checkpoint
file, a ledger that is read back (each record chains to its last one), and the log,
a mirror that ships the same records wherever the logs go. An object store or syslog
sink is one more class with a `write`; one that can be read back can be a ledger.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from overture.platform.errors import ConfigError
from overture.platform.logging import get_logger

GENESIS_MAC = "0" * 64  # the `prev` of a ledger's first record
LOG_EVENT = "audit.checkpoint"

Write = Callable[[dict[str, Any]], None]


class CheckpointSink(Protocol):
    """Keeps checkpoint records somewhere the database's owner cannot reach."""

    def write(self, record: dict[str, Any]) -> None: ...


class CheckpointLedger(Protocol):
    """A sink that can be read back: the chain of records continues from its last one."""

    def appending(self) -> AbstractContextManager[tuple[str, Write]]:
        """Hold the ledger for one writer: yields its last record's MAC (GENESIS_MAC when
        empty) and the function that appends a record."""
        ...

    def lines(self) -> Iterator[tuple[int, str]]:
        """(line number, text) of every record, oldest first."""
        ...


class LogSink:
    """Each record as one structured log line (INFO, event `audit.checkpoint`)."""

    def __init__(self) -> None:
        self.log = get_logger("overture.audit.checkpoint")

    def write(self, record: dict[str, Any]) -> None:
        self.log.info(LOG_EVENT, **record)


class FileLedger:
    """An append-only file of JSON lines, each fsync'd before the next is written.
    An exclusive lock on it serialises writers (the scheduler, `overture audit
    checkpoint`), so two never chain to the same record."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def appending(self) -> Iterator[tuple[str, Write]]:
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        with os.fdopen(fd, "a+b") as file:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            if created:  # the file's name must survive a crash as well as its lines
                _fsync_directory(self.path.parent)
            prev = self._last_mac(file)

            def write(record: dict[str, Any]) -> None:
                file.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
                file.flush()
                os.fsync(file.fileno())

            yield prev, write

    def lines(self) -> Iterator[tuple[int, str]]:
        with self.path.open("rb") as file:
            for number, raw in enumerate(file, 1):
                if raw.strip():
                    yield number, raw.decode("utf-8", errors="replace")

    def _last_mac(self, file: BinaryIO) -> str:
        last = _last_line(file)
        if last is None:
            return GENESIS_MAC
        try:
            mac = json.loads(last).get("mac")
        except (ValueError, AttributeError):
            mac = None
        if not isinstance(mac, str):
            raise ConfigError(
                f"the audit checkpoint file {self.path} ends in a line that is not a "
                "checkpoint (a torn write, or it was edited): `overture audit verify` "
                "shows where; move the file aside to start a new one")
        return mac


def _last_line(file: BinaryIO, block: int = 8192) -> bytes | None:
    """The file's last line, read from its end; None when the file is empty."""
    end = file.seek(0, os.SEEK_END)
    if end == 0:
        return None
    tail, pos = b"", end
    while pos > 0 and tail.count(b"\n") < 2:
        step = min(block, pos)
        pos -= step
        file.seek(pos)
        tail = file.read(step) + tail
    if not tail.endswith(b"\n"):
        return b""  # an unfinished line: not a record
    return tail[:-1].rsplit(b"\n", 1)[-1]


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
