"""Per-model inference statistics in Triton's ModelStatistics shape (what perf_analyzer reads)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from protos import grpc_service_pb2 as pb

__all__ = ["ModelStats"]


@dataclass(slots=True)
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns

    def into(self, target: Any) -> None:
        target.count = self.count
        target.ns = self.ns


@dataclass(slots=True)
class ModelStats:
    """Counts and summed durations since start: requests, batches sent, rows, per batch size."""

    inference_count: int = 0  # rows answered
    execution_count: int = 0  # batches sent to pods
    last_inference_ms: int = 0
    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    queue: _Duration = field(default_factory=_Duration)
    compute_input: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    compute_output: _Duration = field(default_factory=_Duration)
    batches: dict[int, _Duration] = field(default_factory=dict)

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
        self.batches.setdefault(rows, _Duration()).add(compute_ns)
        self.last_inference_ms = time.time_ns() // 1_000_000

    def record_request(self, ok: bool, total_ns: int, queue_ns: int) -> None:
        """One request's end: its whole time in the gateway and its time queued."""
        (self.success if ok else self.fail).add(total_ns)
        if ok:
            self.queue.add(queue_ns)

    def to_proto(self, name: str, version: str = "") -> Any:
        msg = pb.ModelStatistics(
            name=name,
            version=version,
            last_inference=self.last_inference_ms,
            inference_count=self.inference_count,
            execution_count=self.execution_count,
        )
        stats = msg.inference_stats
        self.success.into(stats.success)
        self.fail.into(stats.fail)
        self.queue.into(stats.queue)
        self.compute_input.into(stats.compute_input)
        self.compute_infer.into(stats.compute_infer)
        self.compute_output.into(stats.compute_output)
        for size in sorted(self.batches):
            entry = msg.batch_stats.add(batch_size=size)
            self.batches[size].into(entry.compute_infer)
            entry.compute_input.count = entry.compute_output.count = entry.compute_infer.count
        return msg
