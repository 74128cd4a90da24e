"""How a simulated pod is started: its device cost and limits, as ``simpod`` command-line flags."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QUIET", "SimPod"]

QUIET = ["--log-level", "WARNING"]


@dataclass(frozen=True, slots=True)
class SimPod:
    """A simulated pod: a batch of n rows takes ``fixed_ms + per_row_ms * n`` device ms on one
    of ``devices``, at most ``max_batch`` rows; it reports ready ``startup_s`` after it starts.

    The defaults are a pod that costs nothing (F = c = 0).
    """

    fixed_ms: float = 0.0
    per_row_ms: float = 0.0
    max_batch: int = 32
    devices: int = 1
    startup_s: float = 0.0

    @property
    def limit_rows_s(self) -> float:
        """The most rows/s it can serve: full batches on every device, back to back."""
        batch_s = (self.fixed_ms + self.per_row_ms * self.max_batch) / 1000
        return self.devices * self.max_batch / batch_s if batch_s > 0 else float("inf")

    def args(self, *, quiet: bool = False) -> list[str]:
        """``simpod``'s flags for this pod; ``quiet``: it logs warnings and worse only."""
        args = ["--fixed-ms", str(self.fixed_ms), "--per-row-ms", str(self.per_row_ms)]
        args += ["--max-batch", str(self.max_batch)]
        if self.devices != 1:
            args += ["--devices", str(self.devices)]
        if self.startup_s:
            args += ["--startup-s", str(self.startup_s)]
        return args + (QUIET if quiet else [])
