"""A batch on its way to a pod and back: the callers it answers (who may all leave before it
does) and the check of the pod's answer before it is split among them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.batching.merge import split_response
from gateway.errors import Code, InferError
from gateway.observe.request import RequestInfo
from protos import grpc_service_pb2 as pb
from protos import v2_grpc
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import CodecError, Tensor

__all__ = ["Flight", "Ticket", "answer_of", "bad_answer", "request_ids", "split_answer"]


@dataclass(slots=True, eq=False)
class Flight:
    """One try of a batch on one pod: its callers' futures, its per-try timeout and its call.

    When every caller has left (cancelled, disconnected), the call is cancelled: gRPC cancels
    the RPC, so the pod can drop the work, and the slot frees at once. A batch whose callers
    all left before its call began is never sent.
    """

    futures: list[asyncio.Future[list[Tensor]]]
    per_try_s: float | None = None
    cancel: Callable[[], object] | None = None  # cancels the call (or the task awaiting it)
    started: bool = False  # the call runs (a task cancelled before it starts never does)

    @property
    def abandoned(self) -> bool:
        return all(f.done() for f in self.futures)

    def caller_left(self) -> None:
        if self.started and self.cancel is not None and self.abandoned:
            self.cancel()


@dataclass(slots=True)
class Ticket:
    """The scheduler's half of a queued request: its body, its caller's future, its try."""

    body: InferRequestBody
    version: str
    future: asyncio.Future[list[Tensor]]
    queued_ns: int = 0  # time in the queue, once sent
    flight: Flight | None = field(default=None, repr=False)
    info: RequestInfo | None = field(default=None, repr=False)  # told where it went


def request_ids(batch: Sequence[Any]) -> list[str]:
    """The request ids of a batch's queued requests (for the log lines about them)."""
    return [p.payload.info.request_id for p in batch if p.payload.info is not None]


def answer_of(
    reply: Any,
    rows: Sequence[int],
    batched: bool,
    requested: Sequence[RequestedOutput] | None,
    address: str,
) -> list[list[Tensor]]:
    """Each request's outputs from the pod's gRPC answer to the batch (one request per entry of
    ``rows``); INTERNAL naming the pod and the fault when the answer is no ModelInferResponse
    (gRPC hands over None for one that does not parse), or fails ``split_answer``'s checks."""
    try:
        if not isinstance(reply, pb.ModelInferResponse):
            raise CodecError("the answer does not parse as a ModelInferResponse")
        return split_answer(v2_grpc.decode_response(reply).outputs, rows, batched, requested)
    except CodecError as exc:
        raise bad_answer(address, exc) from None


def bad_answer(address: str, exc: CodecError) -> InferError:
    return InferError(Code.INTERNAL, f"pod {address} sent a bad response: {exc}")


def split_answer(
    outputs: Sequence[Tensor],
    rows: Sequence[int],
    batched: bool,
    requested: Sequence[RequestedOutput] | None,
) -> list[list[Tensor]]:
    """Each request's outputs from the batch's decoded outputs, whatever the wire; a CodecError
    when they name no output (or one twice), miss a requested one, or their sizes do not match
    the batch."""
    names = {t.name for t in outputs}
    if not outputs or len(names) != len(outputs):
        raise CodecError(f"the answer has outputs {[t.name for t in outputs]}")
    missing = [o.name for o in requested or () if o.name not in names]
    if missing:
        raise CodecError(f"the answer lacks the requested outputs {missing}")
    return split_response(outputs, rows, batched)
