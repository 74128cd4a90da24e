"""What an A/B side targets: a running server by address, or a pod or gateway this run starts.

Spec text (``loadtest ab --a SPEC --b SPEC``):

- ``http://HOST:PORT`` — a running server's HTTP; ``HOST:PORT`` or ``grpc://HOST:PORT`` — its gRPC.
- ``pod[:OPTIONS]`` — a simulated pod, sent to directly.
- ``gateway[:OPTIONS]`` — a gateway in front of simulated pods; ``gateway`` batches like
  ``gateway:batch`` (``dynamic_batching`` with a ``max_queue_delay``), ``gateway:nobatch`` sends
  one request per batch (the gateway config of ``loadtest goodput``, ``gateway_model``).

OPTIONS, comma-separated: ``batch``, ``nobatch``, ``pods=N`` and ``gateways=N`` (gateway:
N replicas in front of the same pods, the load spread evenly over them), ``F=MS`` and ``c=MS``
(the pod's device ms per batch and per row), ``max-batch=N``, ``backend=http`` (gateway: batches
to the pods' REST API with binary tensors, ``backend_protocol: http``; ``backend=grpc``, the
default, over gRPC), ``trace=RATIO`` (gateway:
tracing on, ``0 <= RATIO <= 1`` of requests sampled, spans exported over OTLP/gRPC to a
loopback collector this run starts, one per traced gateway side, whose span count the report
gives). Self-started sides with the same pod options share their pods, so ``--a pod --b
gateway`` compares one pod direct and through a gateway in front of that very pod, ``--a gateway
--b gateway:gateways=2`` one gateway with two replicas in front of the same pod, and ``--a
gateway --b gateway:trace=1`` tracing off and on.

A real Triton (``stack.triton``, one per run, serving the repository's ``sim`` and
``sim_batched``): ``triton`` sends to its ``sim`` directly (Triton's batcher off),
``triton:batched`` to ``sim_batched`` (Triton's own dynamic batcher), and ``gateway:triton``
puts the gateway in front of its ``sim`` instead of simulated pods (``--a gateway:triton --b
triton:batched``: the gateway's batching against Triton's). The device is the repository's: no
``F``, ``c``, ``max-batch`` or ``pods`` with Triton.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loadtest.benches.ab import Side
from loadtest.benches.goodput import BACKEND_PROTOCOLS, GoodputConfig, backend_model
from loadtest.benches.goodput_triton import bench_repository
from loadtest.clients.base import ClientSpec, is_grpc
from loadtest.clients.payload import SimPayload
from loadtest.probes.cpu import CpuSource, PidCpu
from loadtest.stack.gateways import Gateways, start_gateways
from loadtest.stack.otlp_sink import OtlpSink
from loadtest.stack.otlp_thread import SinkThread
from loadtest.stack.procs import PodProc, Served, running, start_pod
from loadtest.stack.simpod_args import SimPod
from loadtest.stack.triton import TritonProc, start_triton

__all__ = [
    "Setup",
    "Target",
    "gateway_extra",
    "launched",
    "parse_pids",
    "parse_setup",
    "side_model",
]

SELF_STARTED = ("pod", "gateway", "triton")
EXPORT_DELAY_MS = 1000  # a traced side's gateways send their spans this often
# pod, pods, batching, gateways, trace, in front of Triton, backend protocol
GatewayKey = tuple[SimPod, int, bool, int, float | None, bool, str]


@dataclass(frozen=True, slots=True)
class Setup:
    """One side's target, parsed: ``kind`` is ``url``, ``pod`` or ``gateway``."""

    kind: str  # url, pod, gateway or triton
    text: str
    address: str = ""  # url: http://host:port, or host:port for gRPC
    pod: SimPod = field(default_factory=SimPod)
    pods: int = 1
    batching: bool = True
    gateways: int = 1  # gateway: replicas in front of the same pods
    trace: float | None = None  # gateway: tracing on, this share of requests sampled
    triton: bool = False  # gateway: in front of a real Triton (kind triton: always)
    model: str = "sim"  # the model sent to (triton:batched: Triton's batcher's)
    backend: str = "grpc"  # gateway: the protocol its batches go to the pods in

    @property
    def simulated(self) -> bool:
        """Whether the side needs simulated pods."""
        return self.kind in ("pod", "gateway") and not self.triton


def _option(setup: Setup, option: str) -> Setup:
    name, _, value = option.partition("=")
    try:
        if option == "triton" and setup.kind == "gateway":
            return replace(setup, triton=True)
        if option == "batched" and setup.kind == "triton":
            return replace(setup, model="sim_batched")
        if setup.triton and name in ("pods", "F", "c", "max-batch"):
            raise ValueError(option)  # Triton's device is its model repository's
        if option in ("batch", "nobatch") and setup.kind == "gateway":
            return replace(setup, batching=option == "batch")
        if name == "pods" and value and setup.kind == "gateway" and int(value) >= 1:
            return replace(setup, pods=int(value))
        if name == "gateways" and value and setup.kind == "gateway" and int(value) >= 1:
            return replace(setup, gateways=int(value))
        if name == "backend" and value in BACKEND_PROTOCOLS and setup.kind == "gateway":
            return replace(setup, backend=value)
        if name == "trace" and value and setup.kind == "gateway" and 0 <= float(value) <= 1:
            return replace(setup, trace=float(value))
        if name == "F" and value and float(value) >= 0:
            return replace(setup, pod=replace(setup.pod, fixed_ms=float(value)))
        if name == "c" and value and float(value) >= 0:
            return replace(setup, pod=replace(setup.pod, per_row_ms=float(value)))
        if name == "max-batch" and value and int(value) >= 1:
            return replace(setup, pod=replace(setup.pod, max_batch=int(value)))
    except ValueError:
        pass
    raise ValueError(f"bad option {option!r} for {setup.kind} in {setup.text!r}")


def parse_setup(text: str, pod: SimPod | None = None, gateways: int = 1) -> Setup:
    """Parse a side's spec (see the module doc); ``pod`` gives the pod options' defaults,
    ``gateways`` the replicas of a gateway side that names none."""
    text = text.strip()
    kind, _, options = text.partition(":")
    if kind in SELF_STARTED:
        setup = Setup(kind, text, pod=pod or SimPod(), triton=kind == "triton")
        if kind == "gateway":
            setup = replace(setup, gateways=gateways)
        for option in (o.strip() for o in options.split(",") if o.strip()):
            setup = _option(setup, option)
        return setup
    address = text.removeprefix("grpc://")
    host, _, port = address.removeprefix("http://").rpartition(":")
    if not host or not port.isdigit() or "/" in host:
        raise ValueError(
            "expected http://HOST:PORT, HOST:PORT, pod[:options], gateway[:options] or "
            f"triton[:batched]; "
            f"got {text!r}"
        )
    return Setup("url", text, address=address)


def parse_pids(text: str) -> dict[str, CpuSource]:
    """``NAME=PID,PID,…`` (a bare PID is named ``pidPID``): a running server's processes."""
    watched: dict[str, CpuSource] = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        name, _, pid = item.rpartition("=")
        if not pid.isdigit():
            raise ValueError(f"expected NAME=PID or PID, got {item!r}")
        watched[name or f"pid{pid}"] = PidCpu(int(pid))
    return watched


@dataclass(frozen=True, slots=True)
class Target:
    """A server to send to, started or given: its addresses and its processes under test.

    Several addresses (gateway replicas): the load is spread evenly over them. ``sink``: the
    collector its gateways send their spans to (a traced gateway side).
    """

    label: str
    http_urls: tuple[str, ...] = ()
    grpc_addresses: tuple[str, ...] = ()
    watched: Mapping[str, CpuSource] = field(default_factory=dict)
    sink: OtlpSink | None = None
    model: str | None = None  # the model sent to, when not the payload's

    def addresses(self, kind: str) -> tuple[str, ...]:
        addresses = self.grpc_addresses if is_grpc(kind) else self.http_urls
        if not addresses:
            wanted = "a gRPC HOST:PORT" if is_grpc(kind) else "an http:// URL"
            raise ValueError(f"{kind} needs {wanted}; {self.label!r} is not one")
        return addresses

    def side(
        self,
        kind: str,
        payload: SimPayload,
        *,
        verify_every: int = 16,
        timeout_s: float = 30.0,
        label: str | None = None,
    ) -> Side:
        first, *more = self.addresses(kind)
        payload = payload if self.model is None else replace(payload, model=self.model)
        spec = ClientSpec(kind, first, payload, verify_every=verify_every, timeout_s=timeout_s)
        return Side(label or self.label, spec, self.watched, tuple(more))


def _url_target(setup: Setup, watched: Mapping[str, CpuSource]) -> Target:
    if setup.address.startswith("http://"):
        return Target(setup.text, http_urls=(setup.address,), watched=watched)
    return Target(setup.text, grpc_addresses=(setup.address,), watched=watched)


def _pod_names(pods: Sequence[PodProc]) -> dict[str, CpuSource]:
    if len(pods) == 1:
        return {"pod": pods[0]}
    return {f"pod{i}": p for i, p in enumerate(pods)}


def gateway_extra(setup: Setup, otlp_endpoint: str | None) -> dict[str, Any]:
    """A gateway side's config beside its ``models``: a ``tracing:`` section sending to
    ``otlp_endpoint`` when the side is traced, else nothing (tracing off, the default)."""
    if setup.trace is None:
        return {}
    if otlp_endpoint is None:
        raise ValueError(f"{setup.text!r} is traced: it needs a collector's endpoint")
    tracing = {
        "enabled": True,
        "sample_ratio": setup.trace,
        "otlp_endpoint": otlp_endpoint,
        "insecure": True,
        "export_delay_ms": EXPORT_DELAY_MS,
    }
    return {"tracing": tracing}


def _triton(stack: contextlib.ExitStack) -> TritonProc:
    """One Triton serving the repository's ``sim`` and ``sim_batched``, stopped on exit."""
    repository = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ab-triton-")))
    triton = start_triton(bench_repository(repository), stdout=subprocess.DEVNULL)
    stack.enter_context(running(triton))
    return triton


def _triton_target(setup: Setup, triton: TritonProc) -> Target:
    watched: dict[str, CpuSource] = {"triton": triton}
    addresses = ((triton.http_url,), (triton.grpc_address,))
    return Target(setup.text, *addresses, watched, model=setup.model)


def side_model(setup: Setup, config: GoodputConfig, servers: Sequence[Served]) -> dict[str, Any]:
    """A gateway side's model config in front of ``servers``: batching or not, and its batches
    to their gRPC or (``backend=http``) to their REST API."""
    return backend_model(config, "batching" if setup.batching else "none", servers, setup.backend)


@contextlib.contextmanager
def launched(
    setups: Sequence[Setup],
    *,
    max_queue_delay_us: int = 5000,
    pids: Sequence[Mapping[str, CpuSource]] = (),
) -> Iterator[list[Target]]:
    """Start what ``setups`` need (pods shared between setups with the same pod options, one
    gateway, or set of replicas, per distinct config, a loopback OTLP collector for each
    traced one, and one Triton for the sides that need it) and yield a ``Target`` per setup;
    stop them all on exit, the collectors last, so that the spans the gateways send as they stop
    are counted.

    ``pids[i]``: the processes under test of setup i when it is a running server.
    """
    model_config = GoodputConfig(max_queue_delay_us=max_queue_delay_us)
    with contextlib.ExitStack() as stack:
        pod_count: dict[SimPod, int] = {}
        for s in setups:
            if s.simulated:
                pod_count[s.pod] = max(pod_count.get(s.pod, 0), s.pods)
        traced = any(s.trace is not None for s in setups)
        sinks = stack.enter_context(SinkThread()) if traced else None  # stopped last
        triton = _triton(stack) if any(s.triton for s in setups) else None
        pods: dict[SimPod, list[PodProc]] = {}
        for params, n in pod_count.items():
            pods[params] = []
            for _ in range(n):
                pod = start_pod(params.args(quiet=True))
                stack.enter_context(running(pod))
                pods[params].append(pod)
        gateways: dict[GatewayKey, Gateways] = {}
        collectors: dict[GatewayKey, OtlpSink] = {}
        targets: list[Target] = []
        for i, s in enumerate(setups):
            if s.kind == "url":
                targets.append(_url_target(s, pids[i] if i < len(pids) else {}))
                continue
            if s.kind == "triton":
                assert triton is not None
                targets.append(_triton_target(s, triton))
                continue
            mine = [] if s.triton else pods[s.pod][: s.pods]
            if s.kind == "pod":
                p = mine[0]
                targets.append(Target(s.text, (p.http_url,), (p.grpc_address,), _pod_names(mine)))
                continue
            key = (s.pod, s.pods, s.batching, s.gateways, s.trace, s.triton, s.backend)
            if key not in gateways:
                served: Sequence[Served] = [triton] if s.triton and triton else mine
                model = side_model(s, model_config, served)
                if sinks is not None and s.trace is not None:
                    collectors[key] = sinks.sink()
                endpoint = collectors[key].endpoint if key in collectors else None
                extra = gateway_extra(s, endpoint)
                gateways[key] = start_gateways(s.gateways, [model], extra=extra)
                stack.callback(gateways[key].stop)
            gw = gateways[key]
            watched: dict[str, CpuSource] = {**gw.named(), **_pod_names(mine)}
            if s.triton and triton is not None:
                watched["triton"] = triton
            http, grpc = gw.addresses("http-json"), gw.addresses("grpc")
            targets.append(Target(s.text, http, grpc, watched, collectors.get(key)))
        yield targets
