"""The pure core of the simulated pod: batch cost, device assignment and the model computations.

Nothing here does I/O or reads a clock: callers pass ``now`` (seconds on the event loop's
monotonic clock), so the timing logic is tested with plain numbers.

A batch of ``n`` rows costs ``F + c*n`` milliseconds of device time. ``DevicePool`` keeps, per
device, the absolute time at which it becomes free; a batch that arrives at ``now`` goes to the
device free earliest and starts at ``max(now, free_at)``. Because every start and end is derived
from the previous absolute end (never from when a sleep actually woke up), back-to-back batches
sustain exactly ``1000 * n / (F + c*n)`` rows per second per device, with no drift.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DevicePool",
    "Faults",
    "Outcome",
    "Slot",
    "batch_cost_s",
    "capacity_rows_per_s",
    "choose_outcome",
    "double_fp32",
    "identity",
]


def batch_cost_s(rows: int, fixed_ms: float, per_row_ms: float) -> float:
    """Device seconds for a batch of ``rows`` rows: ``(F + c*rows) / 1000``."""
    if rows < 0:
        raise ValueError(f"rows must be non-negative, got {rows}")
    return (fixed_ms + per_row_ms * rows) / 1000.0


def capacity_rows_per_s(batch: int, fixed_ms: float, per_row_ms: float, devices: int = 1) -> float:
    """The pod's physical limit: rows per second with every device running batches of ``batch``
    (infinite when a batch costs nothing)."""
    cost = batch_cost_s(batch, fixed_ms, per_row_ms)
    return devices * batch / cost if cost > 0 else math.inf


@dataclass(frozen=True, slots=True)
class Slot:
    """A batch's reservation: which device, and when it starts and ends (loop-clock seconds)."""

    device: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


class DevicePool:
    """``devices`` simulated devices, each running one batch at a time; batches wait FIFO."""

    def __init__(self, devices: int) -> None:
        if devices < 1:
            raise ValueError(f"devices must be at least 1, got {devices}")
        self._free_at: list[float] = [float("-inf")] * devices
        self._busy_s: list[float] = [0.0] * devices

    @property
    def devices(self) -> int:
        return len(self._free_at)

    def free_at(self, device: int) -> float:
        """When ``device`` finishes everything reserved on it so far."""
        return self._free_at[device]

    def busy_s(self, device: int) -> float:
        """Device seconds reserved on ``device`` so far (less released reservations)."""
        return self._busy_s[device]

    def reserve(self, now: float, cost_s: float) -> Slot:
        """Book ``cost_s`` of device time for a batch that arrives at ``now``.

        The device free earliest takes it (lowest index on ties); it starts when both the batch
        has arrived and the device is free. Later arrivals never start before earlier ones.
        """
        if cost_s < 0:
            raise ValueError(f"cost must be non-negative, got {cost_s}")
        device = min(range(len(self._free_at)), key=self._free_at.__getitem__)
        start = max(now, self._free_at[device])
        end = start + cost_s
        self._free_at[device] = end
        self._busy_s[device] += cost_s
        return Slot(device, start, end)

    def release(self, slot: Slot, now: float) -> bool:
        """Give back a reservation whose batch was cancelled before it started.

        Only the last reservation on a device can be given back (later ones keep their times,
        so FIFO order holds); a batch already running keeps its device until it ends, as a
        real GPU would. Returns whether the time was given back.
        """
        if now >= slot.start or self._free_at[slot.device] != slot.end:
            return False
        self._free_at[slot.device] = slot.start
        self._busy_s[slot.device] -= slot.duration
        return True

    def running(self, now: float) -> int:
        """Devices busy at ``now`` (running or with work queued)."""
        return sum(1 for t in self._free_at if t > now)


def double_fp32(data: bytes) -> bytes:
    """The demo model: FP32 little-endian values, each multiplied by two."""
    values = np.frombuffer(data, dtype="<f4")
    return (values * np.float32(2)).astype("<f4").tobytes()


def identity(data: bytes) -> bytes:
    """The identity models: the input bytes unchanged."""
    return bytes(data)


class Outcome(enum.Enum):
    """What failure injection decides for one batch."""

    OK = "ok"
    ERROR = "error"  # runs on the device, then fails with INTERNAL
    STALL = "stall"  # never runs and never answers, until the client gives up
    CRASH = "crash"  # the process exits half-way through the batch


@dataclass(frozen=True, slots=True)
class Faults:
    """Failure injection rates, each a probability per batch in [0, 1]."""

    error_rate: float = 0.0
    stall_rate: float = 0.0
    crash_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("error_rate", "stall_rate", "crash_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


def choose_outcome(faults: Faults, rng: random.Random) -> Outcome:
    """Draw one batch's fate: crash, else stall, else error, each with its own probability."""
    if faults.crash_rate and rng.random() < faults.crash_rate:
        return Outcome.CRASH
    if faults.stall_rate and rng.random() < faults.stall_rate:
        return Outcome.STALL
    if faults.error_rate and rng.random() < faults.error_rate:
        return Outcome.ERROR
    return Outcome.OK
