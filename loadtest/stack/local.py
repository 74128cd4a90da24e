"""The pods a load run starts for itself (``loadtest trace`` without ``--target``), and the
commands a stack prints for calling its model."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from loadtest.stack.procs import GatewayProc
from loadtest.stack.simpod_args import SimPod

__all__ = ["StackConfig", "curl_command", "tensor_names", "tritonclient_snippet"]


@dataclass(frozen=True, slots=True)
class StackConfig:
    """Static simulated pods behind a gateway (or several replicas of it), and their cost."""

    pods: int = 2
    gateways: int = 1  # replicas in front of the same pods, the load spread evenly over them
    model: str = "sim"
    fixed_ms: float = 8.0  # pod F: device ms per batch
    per_row_ms: float = 0.25  # pod c: device ms per row
    max_batch: int = 32  # the pods' max batch size

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


def tensor_names(gateway: GatewayProc, model: str) -> tuple[str, str]:
    """The model's first input and output names, from its metadata (defaults if unreadable)."""
    try:
        with urllib.request.urlopen(f"{gateway.http_url}/v2/models/{model}", timeout=2.0) as r:
            meta: Any = json.loads(r.read())
        return str(meta["inputs"][0]["name"]), str(meta["outputs"][0]["name"])
    except (OSError, ValueError, LookupError, TypeError):
        return "INPUT0", "OUTPUT0"
