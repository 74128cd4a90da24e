"""Triton's per-model statistics (``ModelStatistics``, what perf_analyzer reads), accumulated.

The gateway and the simulated pod both keep these: counts and summed durations since start,
per request kind and per batch size, turned into the message on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protos import grpc_service_pb2 as pb

__all__ = ["BatchSizeStats", "Duration", "Statistics"]


@dataclass(slots=True)
class Duration:
    """A count of events and their total duration in nanoseconds."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += max(0, ns)

    def add_s(self, seconds: float, count: int = 1) -> None:
        self.add(round(seconds * 1e9), count)

    def fill(self, target: pb.StatisticDuration) -> None:
        target.count = self.count
        target.ns = self.ns


@dataclass(slots=True)
class BatchSizeStats:
    """The executions of one batch size: merging, running and splitting them."""

    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)

    def add(self, infer_ns: int, input_ns: int = 0, output_ns: int = 0) -> None:
        self.compute_input.add(input_ns)
        self.compute_infer.add(infer_ns)
        self.compute_output.add(output_ns)


@dataclass(slots=True)
class Statistics:
    """Counts for one model: rows (inference_count), batches (execution_count), durations."""

    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    batches: dict[int, BatchSizeStats] = field(default_factory=dict)

    def batch_size(self, rows: int) -> BatchSizeStats:
        found = self.batches.get(rows)
        if found is None:
            found = self.batches[rows] = BatchSizeStats()
        return found

    def to_proto(self, name: str, version: str) -> pb.ModelStatistics:
        msg = pb.ModelStatistics(
            name=name,
            version=version,
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
