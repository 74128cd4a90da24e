"""When to send the batch in hand: Triton's dynamic-batcher rules plus the batch cost model. Pure.

Asked only when a pod slot is free. Sends at once when the batch is full, or when waiting longer
would break the earliest deadline. A slot whose pod's devices are all busy (the slot of the
batch that waits on the pod) is filled just in time: the batch keeps gathering rows until
``send_lead_s`` before it should leave to reach a device as it frees (``timeline``), since it
could not start sooner anyway.
Once a device is free (or about to be), Triton's rules apply: a preferred size goes, and so
does a batch whose oldest request waited max_queue_delay. Otherwise it waits, but only while
waiting can pay off: with a fitted cost ``F + c·n`` and the arrival rate, the batch in hand
already keeps up with the load once it has ``n*`` rows, where ``n* / (F + c·n*)`` per device,
over every device, serves the arrivals at the target utilisation; a batch that size goes now
(an idle device at low load gets single requests at once, with no added delay), a smaller one
waits for the rows expected to arrive. A lone request whose pod holds nothing goes at once
whatever the load: a closed-loop caller alone (one request at a time) keeps a pod near
``target_utilisation`` and would otherwise wait out max_queue_delay for a second row that
cannot come.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.batching.cost_model import BatchCost
from gateway.config import DynamicBatchingSettings

__all__ = [
    "ALL_SEND_REASONS",
    "SEND_REASONS",
    "STREAM",
    "UNBATCHED",
    "BatchingPolicy",
    "Decision",
    "LoadView",
    "decide",
    "rows_to_keep_up",
]

# Why a batch goes (Decision.reason), in decide's order; with the two sends decide is not asked
# about, the labels of gateway_batch_sends_total.
SEND_REASONS = ("full", "deadline", "preferred", "max_queue_delay", "idle_pod", "cost_model")
UNBATCHED = "unbatched"  # a model that is not batched: a request per batch
STREAM = "stream"  # a decoupled model's request, relayed on a stream of its own
ALL_SEND_REASONS = (*SEND_REASONS, UNBATCHED, STREAM)


@dataclass(frozen=True, slots=True)
class BatchingPolicy:
    """The dynamic batcher's knobs (Triton's names), in rows and seconds."""

    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_s: float = 0.0
    target_utilisation: float = 0.85
    use_cost_model: bool = True
    send_lead_s: float = 0.0005  # a batch for a busy pod goes this much before it must

    @classmethod
    def of(cls, batching: DynamicBatchingSettings | None, max_batch_size: int) -> BatchingPolicy:
        """The policy for a model's batching config and its pods' max batch size: one request
        per batch, sent at once, when either is off."""
        if batching is None or max_batch_size <= 0:
            return cls(max_batch_size=max(1, max_batch_size), use_cost_model=False)
        b, limit = batching, max_batch_size
        return cls(
            max_batch_size=limit,
            preferred_batch_sizes=tuple(sorted(s for s in b.preferred_batch_size if s <= limit)),
            max_queue_delay_s=b.max_queue_delay_microseconds / 1e6,
            target_utilisation=b.target_utilisation,
            use_cost_model=b.cost_model,
        )


@dataclass(frozen=True, slots=True)
class LoadView:
    """What the policy knows of the model's load: arrivals, the fit, and the pods' devices."""

    arrival_rows_per_s: float
    cost: BatchCost | None
    devices: int  # batches all ready pods run at once


@dataclass(frozen=True, slots=True)
class Decision:
    """Send ``rows`` rows now (rows > 0, with the reason), or wait until ``wait_until``."""

    rows: int = 0
    reason: str = ""
    wait_until: float = math.inf


def rows_to_keep_up(policy: BatchingPolicy, load: LoadView) -> int:
    """The smallest batch with which the devices serve the arrivals at the target utilisation."""
    cost = load.cost
    if cost is None or load.devices <= 0:
        return policy.max_batch_size
    lam = load.arrival_rows_per_s
    capacity = load.devices * policy.target_utilisation - lam * cost.per_row_s
    if capacity <= 0:
        return policy.max_batch_size
    return max(1, min(policy.max_batch_size, math.ceil(lam * cost.fixed_s / capacity)))


def decide(
    policy: BatchingPolicy,
    load: LoadView,
    *,
    now: float,
    batch_rows: int,
    oldest_enqueued: float,
    earliest_deadline: float,
    preferred: Sequence[int] | None = None,
    send_at: float | None = None,
    alone: bool = False,
) -> Decision:
    """Whether to send the batch in hand (``batch_rows`` rows) now, and how many rows of it.

    ``send_at``: when the batch should leave to start on its pod's next free device (None:
    now, a device is idle). ``alone``: the batch is a lone request, the only one queued, and
    its pod holds nothing: the cost model never holds it back (rows that arrive meanwhile
    gather for the pod's next slot, as they would anyway).
    """
    if batch_rows <= 0:
        return Decision()
    if batch_rows >= policy.max_batch_size:
        return Decision(policy.max_batch_size, "full")
    service = load.cost.seconds(batch_rows) if load.cost else 0.0
    latest_send = earliest_deadline - service
    if now >= latest_send:
        return Decision(batch_rows, "deadline")
    if send_at is not None and now < send_at - policy.send_lead_s:
        return Decision(wait_until=min(send_at - policy.send_lead_s, latest_send))
    sizes = policy.preferred_batch_sizes if preferred is None else preferred
    fitting = [s for s in sizes if s <= batch_rows]
    if fitting:
        return Decision(max(fitting), "preferred")
    delay_end = oldest_enqueued + policy.max_queue_delay_s
    if now >= delay_end:
        return Decision(batch_rows, "max_queue_delay")
    wait_until = min(delay_end, latest_send)
    if policy.use_cost_model and alone:
        return Decision(batch_rows, "idle_pod")
    if policy.use_cost_model and load.cost is not None:
        target = rows_to_keep_up(policy, load)
        if batch_rows >= target:
            return Decision(batch_rows, "cost_model")
        lam = load.arrival_rows_per_s
        if lam > 0:
            wait_until = min(wait_until, now + (target - batch_rows) / lam)
    return Decision(wait_until=wait_until)
