"""CPU time over a measurement window: of a started process, of a pid, or of this process."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from loadtest.stack.procs import cpu_seconds

__all__ = ["THIS_PROCESS", "CpuSource", "CpuWindow", "PidCpu", "ThisProcess"]


class CpuSource(Protocol):
    """A process whose CPU time can be read (``procs.Proc``, ``PidCpu``, ``THIS_PROCESS``)."""

    def cpu_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class PidCpu:
    """A process under test known only by its pid (a server this run did not start)."""

    pid: int

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


class ThisProcess:
    """The calling process (all its threads), read with ``time.process_time``."""

    def cpu_seconds(self) -> float:
        return time.process_time()


THIS_PROCESS = ThisProcess()


def _lenient(source: CpuSource) -> float | None:
    """The source's CPU seconds, or None once it cannot be read (the process has gone)."""
    try:
        return source.cpu_seconds()
    except (OSError, ValueError, IndexError):
        return None


class CpuWindow:
    """A ``WindowProbe``: the CPU seconds each process used between ``start`` and ``stop``.

    ``seconds`` holds them once stopped. ``lap`` instead gives what each used since the previous
    lap (the first one sets the baseline), None for a process that cannot be read.
    """

    def __init__(self, procs: Mapping[str, CpuSource]) -> None:
        self.procs = procs
        self.seconds: dict[str, float] = {}
        self._before: dict[str, float] = {}
        self._lap: dict[str, float | None] = {}

    def start(self) -> None:
        self._before = {name: p.cpu_seconds() for name, p in self.procs.items()}

    def stop(self) -> None:
        self.seconds = {
            name: p.cpu_seconds() - self._before[name] for name, p in self.procs.items()
        }

    def lap(self) -> dict[str, float | None]:
        now = {name: _lenient(p) for name, p in self.procs.items()}
        used: dict[str, float | None] = {}
        for name, now_s in now.items():
            before = self._lap.get(name)
            used[name] = None if now_s is None or before is None else now_s - before
        self._lap = now
        return used
