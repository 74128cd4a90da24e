"""What the forwarding shell sends on, and what it hands back to the local pods."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import ModelSettings
from gateway.errors import Code, InferError
from gateway.routing.forward import (
    FORWARD_SLOTS,
    NO_OWNER,
    Forwarder,
    forward_settings,
    handed_back_error,
)
from protos.infer import InferRequestBody


def test_the_forwarding_settings_send_each_request_at_once_by_the_gateways_name() -> None:
    model = ModelSettings.model_validate(
        {
            "name": "sim",
            "pod_model": "resnet",
            "endpoints": ["10.0.0.9:8001"],
            "dynamic_batching": {"max_queue_delay_microseconds": 5000, "priority_levels": 2},
        }
    )
    s = forward_settings(model, ["10.0.0.1:8000"])
    assert (s.endpoints, s.target_model, s.backend_protocol) == (["10.0.0.1:8000"], "sim", "http")
    assert s.max_inflight_per_pod == FORWARD_SLOTS and s.per_try_timeout.factor == 0
    assert s.dynamic_batching is not None and s.dynamic_batching.priority_levels == 2
    assert s.dynamic_batching.max_queue_delay_microseconds == 0


def test_only_a_request_no_owner_took_goes_back_to_the_local_pods() -> None:
    assert handed_back_error(InferError(Code.UNAVAILABLE, "x", reason=NO_OWNER))
    assert handed_back_error(InferError(Code.UNAVAILABLE, "cannot connect", unsent=True))
    assert handed_back_error(InferError(Code.UNAVAILABLE, "connection reset", lost=True))
    assert not handed_back_error(InferError(Code.UNAVAILABLE, "pod 10.0.0.1:8000: 503"))
    assert not handed_back_error(InferError(Code.RESOURCE_EXHAUSTED, "overloaded"))


async def test_a_stopped_forwarder_answers_at_once_and_never_holds_a_request() -> None:
    forwarder = Forwarder(ModelSettings(name="sim"), probe_interval_s=1.0, rng=None)
    forwarder.start()
    await forwarder.stop()
    with pytest.raises(InferError) as err:
        # bounded: a stopped scheduler that still queued would hold it forever
        await asyncio.wait_for(forwarder.submit(InferRequestBody([]), 1, float("inf")), 10)
    assert err.value.code is Code.UNAVAILABLE
