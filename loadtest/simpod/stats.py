"""Per-model inference statistics, reported as Triton's ``ModelStatistics``."""

from __future__ import annotations

from dataclasses import dataclass

from protos import grpc_service_pb2 as pb
from protos.statistics import Statistics

__all__ = ["ModelStats"]


@dataclass(slots=True)
class ModelStats(Statistics):
    """Counts for one model: rows (inference_count), batches (execution_count), durations."""

    name: str = ""
    version: str = ""

    def record_success(
        self, rows: int, queue_s: float, compute_s: float, total_s: float, wall_ms: int
    ) -> None:
        """A batch of ``rows`` that waited ``queue_s``, ran ``compute_s`` and answered."""
        self.last_inference_ms = wall_ms
        self.inference_count += rows
        self.execution_count += 1
        self.success.add_s(total_s)
        self.queue.add_s(queue_s)
        self.compute_input.add(0)
        self.compute_infer.add_s(compute_s)
        self.compute_output.add(0)
        self.batch_size(rows).add(round(compute_s * 1e9))

    def record_failure(self, total_s: float, wall_ms: int) -> None:
        """A request that failed after ``total_s``."""
        self.last_inference_ms = wall_ms
        self.fail.add_s(total_s)

    def message(self) -> pb.ModelStatistics:
        return self.to_proto(self.name, self.version)
