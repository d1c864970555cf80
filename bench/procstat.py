"""CPU time and memory of a system's processes, read from /proc.

A system is a set of process trees (each rooted at a process the benchmark started)
plus, for Overture, the PostgreSQL backends connected to the bench database, the
PostgreSQL server's own processes and the Redis server. CPU is utime + stime of every
process, plus the CPU of children that exited and were waited for (cutime + cstime) for
the benchmark's own trees; a snapshot before and one after the load give the CPU the
system spent on it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces
    return text[text.rindex(")") + 2:].split()


def parents() -> dict[int, int]:
    out: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None:
                out[int(name)] = int(fields[1])
    return out


def tree(root: int, ppids: dict[int, int] | None = None) -> list[int]:
    """The process and all its descendants."""
    ppids = parents() if ppids is None else ppids
    children: dict[int, list[int]] = {}
    for pid, ppid in ppids.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in ppids or pid == root:
            out.append(pid)
            todo += children.get(pid, [])
    return out


def cpu_seconds(pid: int, with_children: bool) -> float:
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # after the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(a.decode("utf-8", "replace") for a in args if a)
    return text[:70]


@dataclass
class Memory:
    pid: int
    name: str
    rss: float  # MiB
    pss: float  # MiB


def memory(pid: int, name: str) -> Memory | None:
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                    values[parts[0]] = int(parts[1]) * 1024
    except OSError:
        return None
    return Memory(pid, name, values.get("Rss:", 0) / MIB, values.get("Pss:", 0) / MIB)


class Usage:
    """CPU of the named groups of processes between `start()` and `stop()`."""

    def __init__(self) -> None:
        self.groups: dict[str, tuple[list[int], list[int], bool]] = {}
        self.before: dict[str, dict[int, float]] = {}
        self.seconds: dict[str, float] = {}

    def add(self, group: str, roots: Iterable[int] = (), pids: Iterable[int] = (),
            with_children: bool = True) -> None:
        """`roots`: whole trees (their members looked up at each snapshot); `pids`: these
        processes only (`with_children` False for servers shared with other work, whose
        exited children are not ours)."""
        self.groups[group] = (list(roots), list(pids), with_children)

    def _members(self, group: str, ppids: dict[int, int]) -> list[int]:
        roots, pids, _ = self.groups[group]
        out = {p for r in roots for p in tree(r, ppids)}
        return sorted(out | set(pids))

    def _snapshot(self) -> dict[str, dict[int, float]]:
        ppids = parents()
        out: dict[str, dict[int, float]] = {}
        for group, (_, _, with_children) in self.groups.items():
            out[group] = {p: cpu_seconds(p, with_children) for p in self._members(group, ppids)}
        return out

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self) -> dict[str, float]:
        """CPU seconds per group. A process that started in between counts from 0. In a
        group with children, one that ended in between counts as 0 after (the parent that
        waited for it holds its whole time in cutime/cstime); elsewhere it is left out."""
        after = self._snapshot()
        for group, now in after.items():
            then = self.before.get(group, {})
            spent = sum(v - then.get(p, 0.0) for p, v in now.items())
            if self.groups[group][2]:  # an ended member's time is in its parent's
                spent -= sum(v for p, v in then.items() if p not in now)
            self.seconds[group] = spent
        return self.seconds

    def add_pids(self, group: str, pids: Iterable[int]) -> None:
        roots, known, with_children = self.groups[group]
        self.groups[group] = (roots, sorted(set(known) | set(pids)), with_children)


def tree_memory(root: int, label: str) -> list[Memory]:
    out = []
    for pid in tree(root):
        with contextlib.suppress(Exception):
            m = memory(pid, f"{label}: {command(pid)}")
            if m is not None:
                out.append(m)
    return out
