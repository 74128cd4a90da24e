"""A process's resident memory and open file descriptors, and the TCP connections a server
port holds, read from Linux ``/proc``.

``parse_vm_rss`` (the ``VmRSS`` line of ``/proc/PID/status``) and ``parse_tcp_states`` (the
rows of ``/proc/net/tcp``) are pure; ``read_proc`` and ``established_on`` do the I/O.
CPU time is ``probes.cpu``'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ESTABLISHED",
    "ProcStats",
    "count_fds",
    "established_on",
    "parse_tcp_states",
    "parse_vm_rss",
    "read_proc",
    "rss_bytes",
]

_UNITS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "b": 1}
ESTABLISHED = 0x01  # the kernel's TCP_ESTABLISHED; CLOSE_WAIT (the peer left) is 0x08
_TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


@dataclass(frozen=True, slots=True)
class ProcStats:
    """One reading of a process: resident set size (bytes) and open file descriptors."""

    rss_bytes: int
    fds: int


def parse_vm_rss(status: str) -> int:
    """The resident set size in bytes from the text of ``/proc/PID/status``.

    Raises ValueError when there is no ``VmRSS`` line (a zombie has none).
    """
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "VmRSS":
            amount, _, unit = value.strip().partition(" ")
            factor = _UNITS.get(unit.strip().lower())
            if factor is None:
                raise ValueError(f"unknown VmRSS unit in {line!r}")
            return int(amount) * factor
    raise ValueError("no VmRSS line (the process has no memory: a zombie?)")


def rss_bytes(pid: int) -> int:
    """Process ``pid``'s resident set size (``VmRSS``), bytes."""
    return parse_vm_rss(Path(f"/proc/{pid}/status").read_text())


def count_fds(pid: int) -> int:
    """How many file descriptors process ``pid`` has open (entries of ``/proc/PID/fd``)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def read_proc(pid: int) -> ProcStats | None:
    """RSS and open fds of ``pid``; None when it cannot be read (gone, or not ours)."""
    try:
        return ProcStats(rss_bytes(pid), count_fds(pid))
    except (OSError, ValueError):
        return None


def parse_tcp_states(table: str) -> list[tuple[int, int]]:
    """(local port, state) of each socket row of a ``/proc/net/tcp`` or ``tcp6`` table."""
    rows = []
    for line in table.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 4:
            continue
        _, _, port = cols[1].rpartition(":")
        rows.append((int(port, 16), int(cols[3], 16)))
    return rows


def established_on(port: int) -> int | None:
    """How many established connections the server listening on ``port`` holds (this host's
    network namespace, IPv4 and IPv6); None when the tables cannot be read."""
    try:
        tables = [Path(name).read_text() for name in _TCP_TABLES if Path(name).exists()]
    except OSError:
        return None
    if not tables:
        return None
    rows = (row for table in tables for row in parse_tcp_states(table))
    return sum(1 for local, state in rows if local == port and state == ESTABLISHED)
