"""Helpers for the compatibility suite: one async facade over the four official clients.

The facade only forwards to ``tritonclient.http``, ``tritonclient.http.aio``,
``tritonclient.grpc`` and ``tritonclient.grpc.aio`` and normalises what they return (dicts vs
protobuf messages, HTTP status strings vs gRPC status codes), so one test body can exercise all
four clients. Nothing here may import a project proto module (see README.md); the test data
is in ``_data.py``.
"""

from __future__ import annotations

import inspect
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.grpc
import tritonclient.grpc.aio
import tritonclient.grpc.model_config_pb2 as mc
import tritonclient.http
import tritonclient.http.aio
from tritonclient.utils import InferenceServerException

__all__ = [
    "CLIENT_KINDS",
    "HTTP_STATUS",
    "SHORT_TIMEOUT_MS",
    "V2",
    "Target",
    "assert_error",
    "json_error_body",
    "raw_http",
]

# default_timeout_ms of the error stack's models that have no ready pod
SHORT_TIMEOUT_MS = 500

CLIENT_KINDS = ["http", "http_aio", "grpc", "grpc_aio"]

# gRPC status name -> the HTTP status Triton maps it to.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
    "UNAVAILABLE": 503,
    "RESOURCE_EXHAUSTED": 413,
    "INTERNAL": 500,
}


@dataclass(frozen=True)
class Target:
    """A v2 server under test: the gateway or a simulated pod, reached directly."""

    name: str
    http: str  # host:port, no scheme (tritonclient's convention)
    grpc: str  # host:port


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def assert_error(exc: BaseException | None, protocol: str, status: str, *words: str) -> str:
    """Check that ``exc`` carries gRPC ``status`` (or its HTTP equivalent) and that its message
    contains at least one of ``words`` (case-insensitive). Returns the message."""
    assert exc is not None, f"expected an error with status {status}, the call succeeded"
    assert isinstance(exc, InferenceServerException), f"not a server error: {exc!r}"
    got = exc.status()
    want = str(HTTP_STATUS[status]) if protocol == "http" else f"StatusCode.{status}"
    message = exc.message() or ""
    assert got == want, f"expected status {want}, got {got}: {message!r}"
    if words:
        lowered = message.lower()
        assert any(w.lower() in lowered for w in words), (
            f"error message {message!r} names none of {words}"
        )
    return message


def raw_http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP request (for what tritonclient cannot send, e.g. malformed JSON)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# ---------------------------------------------------------------------------------------------
# The client facade
# ---------------------------------------------------------------------------------------------


class Result:
    """An inference result, the same for HTTP and gRPC."""

    def __init__(self, raw: Any, protocol: str) -> None:
        self.raw = raw
        self.protocol = protocol

    def as_numpy(self, name: str) -> np.ndarray:
        arr = self.raw.as_numpy(name)
        assert arr is not None, f"output {name} missing from the response: {self.response()}"
        return arr

    def response(self) -> Any:
        return self.raw.get_response()

    @property
    def id(self) -> str:
        resp = self.response()
        return str(resp.get("id", "")) if self.protocol == "http" else resp.id

    @property
    def output_names(self) -> list[str]:
        resp = self.response()
        if self.protocol == "http":
            return [o["name"] for o in resp.get("outputs", [])]
        return [o.name for o in resp.outputs]


class V2:
    """One of the four official clients behind one async interface."""

    def __init__(self, kind: str, target: Target) -> None:
        self.kind = kind
        self.target = target
        self.protocol = "http" if kind.startswith("http") else "grpc"
        self.mod: Any = tritonclient.http if self.protocol == "http" else tritonclient.grpc
        if kind == "http":
            self.raw: Any = tritonclient.http.InferenceServerClient(
                target.http, connection_timeout=10, network_timeout=60
            )
        elif kind == "http_aio":
            self.raw = tritonclient.http.aio.InferenceServerClient(target.http, conn_timeout=60)
        elif kind == "grpc":
            self.raw = tritonclient.grpc.InferenceServerClient(target.grpc)
        elif kind == "grpc_aio":
            self.raw = tritonclient.grpc.aio.InferenceServerClient(target.grpc)
        else:
            raise ValueError(kind)

    async def close(self) -> None:
        res = self.raw.close()
        if inspect.isawaitable(res):
            await res

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        res = getattr(self.raw, method)(*args, **kwargs)
        if inspect.isawaitable(res):
            res = await res
        return res

    async def error(
        self, method: str, *args: Any, **kwargs: Any
    ) -> InferenceServerException | None:
        """Call ``method``; return the server error it raised, or None."""
        try:
            await self.call(method, *args, **kwargs)
        except InferenceServerException as exc:
            return exc
        return None

    # -- health and metadata -----------------------------------------------------------------

    async def live(self) -> bool:
        return bool(await self.call("is_server_live"))

    async def ready(self) -> bool:
        return bool(await self.call("is_server_ready"))

    async def model_ready(self, model: str) -> bool:
        return bool(await self.call("is_model_ready", model))

    async def server_metadata(self) -> dict[str, Any]:
        if self.protocol == "http":
            return dict(await self.call("get_server_metadata"))
        msg = await self.call("get_server_metadata", as_json=False)
        return {"name": msg.name, "version": msg.version, "extensions": list(msg.extensions)}

    async def model_metadata(self, model: str) -> dict[str, Any]:
        if self.protocol == "http":
            return dict(await self.call("get_model_metadata", model))
        msg = await self.call("get_model_metadata", model, as_json=False)

        def tensors(items: Any) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in items]

        return {
            "name": msg.name,
            "versions": list(msg.versions),
            "platform": msg.platform,
            "inputs": tensors(msg.inputs),
            "outputs": tensors(msg.outputs),
        }

    async def model_config(self, model: str) -> dict[str, Any]:
        """The config as Triton's HTTP /config prints it (snake_case, TYPE_* names)."""
        if self.protocol == "http":
            cfg = dict(await self.call("get_model_config", model))
            # Triton's HTTP /config answers the config itself; some servers wrap it.
            return dict(cfg["config"]) if "config" in cfg and "name" not in cfg else cfg
        msg = await self.call("get_model_config", model, as_json=False)
        assert msg.HasField("config"), "ModelConfigResponse.config is not set"
        config = msg.config

        def tensors(items: Any) -> list[dict[str, Any]]:
            return [
                {
                    "name": t.name,
                    "data_type": mc.DataType.Name(t.data_type),
                    "dims": list(t.dims),
                }
                for t in items
            ]

        return {
            "name": config.name,
            "max_batch_size": config.max_batch_size,
            "input": tensors(config.input),
            "output": tensors(config.output),
        }

    async def stats(self, model: str) -> dict[str, int]:
        """inference_count, execution_count and success count of ``model`` (all versions)."""
        if self.protocol == "http":
            doc = await self.call("get_inference_statistics", model)
            entries = [
                {
                    "name": s["name"],
                    "inference_count": int(s.get("inference_count", 0)),
                    "execution_count": int(s.get("execution_count", 0)),
                    "success": int(s.get("inference_stats", {}).get("success", {}).get("count", 0)),
                }
                for s in doc["model_stats"]
            ]
        else:
            msg = await self.call("get_inference_statistics", model, as_json=False)
            entries = [
                {
                    "name": s.name,
                    "inference_count": s.inference_count,
                    "execution_count": s.execution_count,
                    "success": s.inference_stats.success.count,
                }
                for s in msg.model_stats
            ]
        mine = [e for e in entries if e["name"] == model]
        assert mine, f"no statistics entry for {model}: {entries}"
        return {
            k: sum(e[k] for e in mine) for k in ("inference_count", "execution_count", "success")
        }

    # -- inference -----------------------------------------------------------------------------

    def make_inputs(
        self,
        tensors: list[tuple[str, np.ndarray, str]],
        *,
        binary_in: bool = True,
        shapes: dict[str, list[int]] | None = None,
    ) -> list[Any]:
        inputs = []
        for name, arr, dt in tensors:
            inp = self.mod.InferInput(name, list(arr.shape), dt)
            if self.protocol == "http":
                inp.set_data_from_numpy(arr, binary_data=binary_in)
            else:
                inp.set_data_from_numpy(arr)
            if shapes and name in shapes:
                inp.set_shape(shapes[name])  # deliberately inconsistent with the data
            inputs.append(inp)
        return inputs

    def make_outputs(self, names: list[str] | None, *, binary_out: bool = True) -> list[Any] | None:
        if names is None:
            return None
        if self.protocol == "http":
            return [self.mod.InferRequestedOutput(n, binary_data=binary_out) for n in names]
        return [self.mod.InferRequestedOutput(n) for n in names]

    async def infer(
        self,
        model: str,
        tensors: list[tuple[str, np.ndarray, str]],
        *,
        outputs: list[str] | None = None,
        binary_in: bool = True,
        binary_out: bool = True,
        request_id: str = "",
        shapes: dict[str, list[int]] | None = None,
    ) -> Result:
        inputs = self.make_inputs(tensors, binary_in=binary_in, shapes=shapes)
        outs = self.make_outputs(outputs, binary_out=binary_out)
        raw = await self.call("infer", model, inputs, outputs=outs, request_id=request_id)
        return Result(raw, self.protocol)

    async def infer_error(
        self, model: str, tensors: list[tuple[str, np.ndarray, str]], **kw: Any
    ) -> InferenceServerException | None:
        try:
            await self.infer(model, tensors, **kw)
        except InferenceServerException as exc:
            return exc
        return None


def json_error_body(body: bytes) -> str:
    """The message of a v2 HTTP error body ``{"error": "..."}``."""
    doc = json.loads(body)
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str), (
        f"not a v2 error body: {body!r}"
    )
    return str(doc["error"])
