"""Per-model inference statistics, reported as Triton's ``ModelStatistics``."""

from __future__ import annotations

from dataclasses import dataclass, field

from protos import grpc_service_pb2 as pb

__all__ = ["Duration", "ModelStats"]


@dataclass(slots=True)
class Duration:
    """A count of events and their total duration in nanoseconds."""

    count: int = 0
    ns: int = 0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.ns += max(0, round(seconds * 1e9))

    def fill(self, target: pb.StatisticDuration) -> None:
        target.count = self.count
        target.ns = self.ns


@dataclass(slots=True)
class _BatchStats:
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


@dataclass(slots=True)
class ModelStats:
    """Counts for one model: rows (inference_count), batches (execution_count), durations."""

    name: str
    version: str
    last_inference_ms: int = 0
    inference_count: int = 0
    execution_count: int = 0
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    batches: dict[int, _BatchStats] = field(default_factory=dict)

    def record_success(
        self, rows: int, queue_s: float, compute_s: float, total_s: float, wall_ms: int
    ) -> None:
        """A batch of ``rows`` that waited ``queue_s``, ran ``compute_s`` and answered."""
        self.last_inference_ms = wall_ms
        self.inference_count += rows
        self.execution_count += 1
        self.success.add(total_s)
        self.queue.add(queue_s)
        self.compute_input.add(0.0)
        self.compute_infer.add(compute_s)
        self.compute_output.add(0.0)
        batch = self.batches.setdefault(rows, _BatchStats())
        batch.compute_input.add(0.0)
        batch.compute_infer.add(compute_s)
        batch.compute_output.add(0.0)

    def record_failure(self, total_s: float, wall_ms: int) -> None:
        """A request that failed after ``total_s``."""
        self.last_inference_ms = wall_ms
        self.fail.add(total_s)

    def to_proto(self) -> pb.ModelStatistics:
        msg = pb.ModelStatistics(
            name=self.name,
            version=self.version,
            last_inference=self.last_inference_ms,
            inference_count=self.inference_count,
            execution_count=self.execution_count,
        )
        stats = msg.inference_stats
        self.success.fill(stats.success)
        self.fail.fill(stats.fail)
        self.queue.fill(stats.queue)
        self.compute_input.fill(stats.compute_input)
        self.compute_infer.fill(stats.compute_infer)
        self.compute_output.fill(stats.compute_output)
        stats.cache_hit.SetInParent()
        stats.cache_miss.SetInParent()
        for size in sorted(self.batches):
            batch = self.batches[size]
            entry = msg.batch_stats.add(batch_size=size)
            batch.compute_input.fill(entry.compute_input)
            batch.compute_infer.fill(entry.compute_infer)
            batch.compute_output.fill(entry.compute_output)
        return msg
