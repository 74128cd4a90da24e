"""``loadtest stack`` (``make run``): simulated pods and the gateway in the foreground.

Starts the pods, then the gateway serving model ``sim`` from all of them, prints how to call
it, and waits. SIGINT (Ctrl-C), SIGTERM or SIGHUP stops the gateway first, then the pods, and
exits 0; if a process dies on its own, everything else is stopped and the exit status is 1.
No child is left running on any exit path this process survives.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, TextIO

from loadtest.stack.procs import GatewayProc, PodProc, Proc, start_gateway, start_pod
from loadtest.stack.simpod_args import SimPod

__all__ = ["StackConfig", "StackStopped", "curl_command", "run_stack", "tritonclient_snippet"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StackStopped(Exception):
    """A stop signal arrived."""


@dataclass(frozen=True, slots=True)
class StackConfig:
    """Ports and the simulated device cost. Pod i listens on base + 10·i (HTTP) and +1 (gRPC)."""

    pods: int = 2
    http_port: int = 8000  # the gateway's ports
    grpc_port: int = 8001
    metrics_port: int = 8002
    pod_base_port: int = 9000
    model: str = "sim"
    fixed_ms: float = 8.0  # pod F: device ms per batch
    per_row_ms: float = 0.25  # pod c: device ms per row
    max_batch: int = 32  # the pods' max batch size

    def pod_ports(self, index: int) -> tuple[int, int]:
        """(HTTP, gRPC) ports of pod ``index``."""
        http = self.pod_base_port + 10 * index
        return http, http + 1

    @property
    def pod(self) -> SimPod:
        """How each pod is started."""
        return SimPod(self.fixed_ms, self.per_row_ms, self.max_batch)

    def pod_args(self) -> list[str]:
        return self.pod.args()


def curl_command(http_port: int, model: str = "sim", input_name: str = "INPUT0") -> str:
    """A copy-paste curl of a JSON infer of one row of 16 floats."""
    body = {
        "inputs": [
            {"name": input_name, "datatype": "FP32", "shape": [1, 16], "data": list(range(16))}
        ]
    }
    return (
        f"curl -s -X POST http://localhost:{http_port}/v2/models/{model}/infer "
        f"-H 'Content-Type: application/json' -d '{json.dumps(body, separators=(',', ':'))}'"
    )


def tritonclient_snippet(
    http_port: int, model: str = "sim", input_name: str = "INPUT0", output_name: str = "OUTPUT0"
) -> str:
    """A short tritonclient (HTTP) program that calls the model."""
    return "\n".join(
        [
            "import numpy as np",
            "import tritonclient.http as httpclient",
            f'client = httpclient.InferenceServerClient("localhost:{http_port}")',
            "x = np.arange(16, dtype=np.float32).reshape(1, 16)",
            f'inp = httpclient.InferInput("{input_name}", [1, 16], "FP32")',
            "inp.set_data_from_numpy(x)",
            f'print(client.infer("{model}", [inp]).as_numpy("{output_name}"))',
        ]
    )


def _tensor_names(gateway: GatewayProc, model: str) -> tuple[str, str]:
    """The model's first input and output names, from its metadata (defaults if unreadable)."""
    try:
        with urllib.request.urlopen(f"{gateway.http_url}/v2/models/{model}", timeout=2.0) as r:
            meta: Any = json.loads(r.read())
        return str(meta["inputs"][0]["name"]), str(meta["outputs"][0]["name"])
    except (OSError, ValueError, LookupError, TypeError):
        return "INPUT0", "OUTPUT0"


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    for sig in _STOP_SIGNALS:  # a second Ctrl-C must not interrupt the clean stop
        signal.signal(sig, signal.SIG_IGN)
    raise StackStopped(signal.Signals(signum).name)


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """Turn the stop signals into StackStopped for the duration; restore the handlers after."""
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(procs: list[Proc], out: TextIO) -> None:
    """Stop the gateway first, then the pods (reverse start order), ignoring further signals."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    for proc in reversed(procs):
        code = proc.stop()
        print(f"stopped {proc.name} (pid {proc.pid}, exit {code})", file=out, flush=True)


def _banner(config: StackConfig, pods: list[PodProc], gateway: GatewayProc) -> str:
    input_name, output_name = _tensor_names(gateway, config.model)
    lines = [
        "",
        f"Stack ready: gateway serving '{config.model}' from {len(pods)} simulated pod(s)",
        f"  gateway  HTTP :{config.http_port}  gRPC :{config.grpc_port}  "
        f"metrics http://localhost:{config.metrics_port}/metrics",
    ]
    for i, pod in enumerate(pods):
        lines.append(f"  pod {i}    HTTP :{pod.http_port}  gRPC :{pod.grpc_port}  (pid {pod.pid})")
    lines += [
        f"  device cost per batch of n rows: {config.fixed_ms} ms + {config.per_row_ms} ms x n, "
        f"max batch {config.max_batch}",
        "",
        "Try it:",
        "  " + curl_command(config.http_port, config.model, input_name),
        "",
        "or with tritonclient:",
        *(
            "  " + line
            for line in tritonclient_snippet(
                config.http_port, config.model, input_name, output_name
            ).splitlines()
        ),
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def run_stack(config: StackConfig, out: TextIO = sys.stdout) -> int:
    """Run the stack until a stop signal (exit 0) or until a process dies (exit 1)."""
    procs: list[Proc] = []
    code = 0
    with _stop_signals():
        try:
            _start(config, procs, out)
            code = _watch(procs, out)
        except StackStopped as exc:
            print(f"\n{exc}: stopping ...", file=out, flush=True)
        except KeyboardInterrupt:
            print("\nstopping ...", file=out, flush=True)
        except Exception as exc:
            print(f"the stack failed: {exc}", file=out, flush=True)
            code = 1
        finally:
            _stop_all(procs, out)
    return code


def _start(config: StackConfig, procs: list[Proc], out: TextIO) -> None:
    """Start the pods, then the gateway, appending each to ``procs`` as soon as it runs."""
    pods: list[PodProc] = []
    for i in range(config.pods):
        http_port, grpc_port = config.pod_ports(i)
        print(f"starting pod {i} (HTTP :{http_port}, gRPC :{grpc_port}) ...", file=out, flush=True)
        pod = start_pod(config.pod_args(), http_port=http_port, grpc_port=grpc_port)
        procs.append(pod)
        pods.append(pod)
    print(f"starting the gateway (HTTP :{config.http_port}) ...", file=out, flush=True)
    model = {
        "name": config.model,
        "endpoints": [p.grpc_address for p in pods],
        "dynamic_batching": {"max_queue_delay_microseconds": 5000},
    }
    gateway = start_gateway(
        [model],
        http_port=config.http_port,
        grpc_port=config.grpc_port,
        metrics_port=config.metrics_port,
    )
    procs.append(gateway)
    print(_banner(config, pods, gateway), file=out, flush=True)


def _watch(procs: list[Proc], out: TextIO) -> int:
    """Wait; return 1 as soon as any process exits on its own."""
    while True:
        for proc in procs:
            if proc.popen.poll() is not None:
                print(
                    f"{proc.name} (pid {proc.pid}) exited with {proc.popen.returncode}",
                    file=out,
                    flush=True,
                )
                return 1
        time.sleep(0.5)
