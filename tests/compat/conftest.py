"""Fixtures of the compatibility suite: simulated pods and gateways as separate processes.

This run must never import a project proto module (protos.*, gateway.*, loadtest.simpod.*):
tritonclient registers the same ``inference.*`` protobuf names (see README.md).
``loadtest.stack.procs`` is proto-free and only starts processes.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _compat import CLIENT_KINDS, SHORT_TIMEOUT_MS, V2, Target
from _data import DATATYPES

from loadtest.stack import procs

FORBIDDEN_PREFIXES = ("protos.", "gateway", "loadtest.simpod")

# A pod of small cost: F = 1 ms, c = 0.05 ms per row.
POD_ARGS = ["--fixed-ms", "1", "--per-row-ms", "0.05", "--max-batch", "32", "--identity-models"]
IDENTITY_MODELS = [f"identity_{dt.lower()}" for dt in DATATYPES]


def forbidden_modules() -> list[str]:
    return sorted(
        m for m in sys.modules if m == "protos" or any(m.startswith(p) for p in FORBIDDEN_PREFIXES)
    )


@pytest.fixture(scope="session", autouse=True)
def _no_project_protos() -> Iterator[None]:
    assert not forbidden_modules(), f"project modules imported: {forbidden_modules()}"
    yield
    assert not forbidden_modules(), f"project modules imported: {forbidden_modules()}"


def _stop_all(stack: list[procs.Proc]) -> None:
    for proc in reversed(stack):
        proc.stop()


@pytest.fixture(scope="session")
def sim_pod() -> Iterator[procs.PodProc]:
    """A healthy pod serving ``sim`` and every ``identity_<dt>`` model."""
    pod = procs.start_pod(POD_ARGS)
    yield pod
    pod.stop()


@pytest.fixture(scope="session")
def gateway(sim_pod: procs.PodProc) -> Iterator[procs.GatewayProc]:
    """The gateway in front of ``sim_pod``: ``sim`` plus the identity models."""
    models: list[dict[str, Any]] = [{"name": "sim", "endpoints": [sim_pod.grpc_address]}]
    models += [{"name": m, "endpoints": [sim_pod.grpc_address]} for m in IDENTITY_MODELS]
    gw = procs.start_gateway(models)
    yield gw
    gw.stop()


def gateway_target(gw: procs.GatewayProc) -> Target:
    return Target("gateway", gw.http_url.removeprefix("http://"), gw.grpc_address)


def pod_target(pod: procs.PodProc) -> Target:
    return Target("pod", pod.http_url.removeprefix("http://"), pod.grpc_address)


@pytest.fixture(scope="session")
def gw_target(gateway: procs.GatewayProc) -> Target:
    return gateway_target(gateway)


@pytest.fixture(scope="session")
def pod_direct(sim_pod: procs.PodProc) -> Target:
    return pod_target(sim_pod)


@pytest.fixture(params=["gateway", "pod"])
def target(request: pytest.FixtureRequest) -> Target:
    """The gateway, or the pod reached directly (tells who is at fault when a test fails)."""
    if request.param == "gateway":
        return request.getfixturevalue("gw_target")  # type: ignore[no-any-return]
    return request.getfixturevalue("pod_direct")  # type: ignore[no-any-return]


@pytest.fixture(params=CLIENT_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(kind: str, target: Target) -> AsyncIterator[V2]:
    """Each official client against the gateway and against the pod directly."""
    c = V2(kind, target)
    yield c
    await c.close()


@pytest.fixture
async def gw_client(kind: str, gw_target: Target) -> AsyncIterator[V2]:
    """Each official client against the gateway only."""
    c = V2(kind, gw_target)
    yield c
    await c.close()


# ---------------------------------------------------------------------------------------------
# The error stack: pods and models that fail in each way the spec names
# ---------------------------------------------------------------------------------------------

MAX_REQUEST_BYTES = 1024  # one 16-float row fits; 32 rows (2 KiB of tensor data) do not


class ErrorStack:
    def __init__(
        self, gw: procs.GatewayProc, failing_pod: procs.PodProc, starting_pod: procs.PodProc
    ) -> None:
        self.gateway = gw
        self.target = gateway_target(gw)
        self.failing_pod = failing_pod
        self.failing_target = pod_target(failing_pod)
        self.starting_pod = starting_pod


@pytest.fixture(scope="session")
def error_stack(sim_pod: procs.PodProc) -> Iterator[ErrorStack]:
    """A second gateway (small body limit) with models that cannot be served:

    - ``sim``: healthy, behind ``max_request_bytes`` = 1024;
    - ``failing_<client kind>``: a pod with ``--error-rate 1.0`` (one model per client kind, so
      one client's failures cannot get the pod ejected before another client's test);
    - ``dead``: its only endpoint is a port where nothing listens;
    - ``starting``: a pod still in its 3600 s start-up (live, never ready).
    """
    stack: list[procs.Proc] = []
    try:
        failing = procs.start_pod([*POD_ARGS, "--error-rate", "1.0"])
        stack.append(failing)
        starting = procs.start_pod([*POD_ARGS, "--startup-s", "3600"], wait_ready=False)
        stack.append(starting)
        models: list[dict[str, Any]] = [{"name": "sim", "endpoints": [sim_pod.grpc_address]}]
        models += [
            {"name": f"failing_{k}", "endpoints": [failing.grpc_address], "pod_model": "sim"}
            for k in CLIENT_KINDS
        ]
        models += [
            {
                "name": "dead",
                "endpoints": [f"127.0.0.1:{procs.free_port()}"],
                "pod_model": "sim",
                "default_timeout_ms": SHORT_TIMEOUT_MS,
            },
            {
                "name": "starting",
                "endpoints": [starting.grpc_address],
                "pod_model": "sim",
                "default_timeout_ms": SHORT_TIMEOUT_MS,
            },
        ]
        gw = procs.start_gateway(
            models, extra={"server": {"max_request_bytes": MAX_REQUEST_BYTES}}, wait_models=False
        )
        stack.append(gw)
        for name in ["sim"] + [f"failing_{k}" for k in CLIENT_KINDS]:
            procs.wait_http(f"{gw.http_url}/v2/models/{name}/ready", proc=gw.popen)
        yield ErrorStack(gw, failing, starting)
    finally:
        _stop_all(stack)
