"""``loadtest ab`` sides on a real Triton, parsed without one: ``triton``, ``triton:batched`` and
``gateway:triton``, and the model a Triton side sends to."""

from __future__ import annotations

import pytest

from loadtest.benches.ab_setups import Target, parse_setup
from loadtest.clients.payload import SimPayload


def test_triton_sends_to_sim_and_batched_to_tritons_batcher() -> None:
    plain, batched = parse_setup("triton"), parse_setup("triton:batched")
    assert (plain.kind, plain.triton, plain.model) == ("triton", True, "sim")
    assert (batched.kind, batched.triton, batched.model) == ("triton", True, "sim_batched")
    assert not plain.simulated and not batched.simulated


def test_a_gateway_can_stand_in_front_of_triton_instead_of_pods() -> None:
    setup = parse_setup("gateway:triton,nobatch,gateways=2")
    assert (setup.kind, setup.triton, setup.batching, setup.gateways) == ("gateway", True, False, 2)
    assert not setup.simulated
    assert parse_setup("gateway").simulated and parse_setup("pod").simulated


@pytest.mark.parametrize(
    "text",
    ["triton:F=3", "triton:c=1", "triton:max-batch=8", "gateway:triton,pods=2", "triton:batch"],
)
def test_tritons_device_is_its_repositorys(text: str) -> None:
    with pytest.raises(ValueError, match="bad option"):
        parse_setup(text)


def test_a_pod_cannot_be_batched_by_triton() -> None:
    with pytest.raises(ValueError, match="bad option"):
        parse_setup("pod:batched")
    with pytest.raises(ValueError, match="bad option"):
        parse_setup("pod:triton")


def test_a_triton_side_sends_to_its_model() -> None:
    payload = SimPayload(rows=3)
    side = Target("triton:batched", ("http://127.0.0.1:1",), model="sim_batched").side(
        "http-json", payload
    )
    assert (side.spec.payload.model, side.spec.payload.rows) == ("sim_batched", 3)
    assert Target("pod", ("http://127.0.0.1:1",)).side("http-json", payload).spec.payload is payload
