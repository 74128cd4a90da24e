"""Per-model inference statistics in Triton's ModelStatistics shape (what perf_analyzer reads)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from protos.statistics import Statistics

__all__ = ["ModelStats"]


@dataclass(slots=True)
class ModelStats(Statistics):
    """Counts and summed durations since start: requests, batches sent, rows, per batch size."""

    def record_batch(
        self, rows: int, requests: int, compute_ns: int, input_ns: int = 0, output_ns: int = 0
    ) -> None:
        """A batch the pods answered: merging it (input), the pod's call (infer), splitting
        the answer (output). Counts are per request, as Triton's (perf_analyzer checks they
        agree)."""
        self.execution_count += 1
        self.inference_count += rows
        self.compute_input.add(input_ns, requests)
        self.compute_infer.add(compute_ns, requests)
        self.compute_output.add(output_ns, requests)
        self.batch_size(rows).add(compute_ns)
        self.last_inference_ms = time.time_ns() // 1_000_000

    def record_request(self, ok: bool, total_ns: int) -> None:
        """One request's end: its whole time in the gateway."""
        (self.success if ok else self.fail).add(total_ns)

    def record_queued(self, queue_ns: int) -> None:
        """A request answered by a pod: the time it waited in the gateway's queue."""
        self.queue.add(queue_ns)
