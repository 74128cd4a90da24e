"""One decoupled request on a pod's own gRPC ModelStreamInfer: a call per request, read response
by response until the pod says the request is done (Triton's ``triton_final_response``)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import grpc

from gateway.errors import Code, InferError

__all__ = [
    "EMPTY_FINAL",
    "FINAL",
    "PodStream",
    "StreamingPod",
    "ends_request",
    "is_empty_final",
]

# Triton's request parameter asking for an empty response carrying the final flag, and the
# response parameter each stream response of a decoupled model carries (true on the last).
EMPTY_FINAL = "triton_enable_empty_final_response"
FINAL = "triton_final_response"


def _final_flag(response: Any) -> bool | None:
    params = response.infer_response.parameters
    return bool(params[FINAL].bool_param) if FINAL in params else None


def ends_request(response: Any) -> bool:
    """Whether a pod's stream response is its request's last: it says ``triton_final_response``
    true, or it is an error without the flag (Triton's answer to a request refused before it
    ran: nothing follows it). An error with the flag false is one response among others."""
    flag = _final_flag(response)
    return flag if flag is not None else bool(response.error_message)


def is_empty_final(response: Any) -> bool:
    """The empty response a pod sends only because ``EMPTY_FINAL`` was asked: the final flag,
    no error and no outputs."""
    return (
        _final_flag(response) is True
        and not response.error_message
        and not response.infer_response.outputs
    )


class PodStream:
    """A ModelStreamInfer call carrying one request (its side of the stream closed once the
    request is written): ``read`` each response, ``cancel`` when done or leaving."""

    def __init__(self, call: Any, address: str) -> None:
        self._call = call
        self.address = address

    async def read(self) -> Any | None:
        """The pod's next response; None once the pod has closed the stream (done with the
        request); a broken call raises InferError naming the pod."""
        try:
            response = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            code = Code.from_grpc(exc.code())
            detail = exc.details() or exc.code().name
            raise InferError(code, f"pod {self.address}: {detail}") from None
        if response is grpc.aio.EOF:
            return None
        return response

    def cancel(self) -> None:
        """End the call (the pod stops the request, if it still runs); no-op once it is done."""
        self._call.cancel()


@runtime_checkable
class StreamingPod(Protocol):
    """A pod client that can open a ModelStreamInfer call (the gRPC one; v2 REST cannot)."""

    @property
    def address(self) -> str: ...

    async def stream_infer(
        self, request: Any, timeout_s: float, connect_timeout_s: float, trace: str | None = None
    ) -> PodStream: ...
