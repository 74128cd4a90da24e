"""The request the load generators send to the ``sim`` model, and the check of its answer.

The simulated pod's model doubles its input, so a response is right when its one output has the
input's shape and datatype and holds exactly ``2 * input``. The input values are multiples of
1/4, exactly representable in FP32 and in JSON, so the check is exact on every wire.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protos.infer import InferRequestBody, InferResponseBody
from protos.tensors import Tensor, from_numpy

__all__ = ["AnswerError", "SimPayload"]


class AnswerError(AssertionError):
    """A response that is not twice the request's input."""


@dataclass(frozen=True, slots=True)
class SimPayload:
    """A request of ``rows`` rows of ``width`` FP32 values for ``model``, seeded by ``seed``."""

    model: str = "sim"
    input_name: str = "INPUT0"
    output_name: str | None = None  # None: the response's first output
    rows: int = 1
    width: int = 16
    seed: int = 0

    def array(self) -> np.ndarray:
        """The input values: multiples of 1/4 in [-8, 8), different for each seed."""
        n = self.rows * self.width
        values = (np.arange(n, dtype=np.int64) * 7 + self.seed * 13) % 64 - 32
        return (values.astype(np.float32) / 4).reshape(self.rows, self.width)

    def tensor(self) -> Tensor:
        return from_numpy(self.input_name, "FP32", self.array())

    def request(self, *, binary_output: bool = False) -> InferRequestBody:
        """The decoded request; ``binary_output`` asks for every output as binary data."""
        params = {"binary_data_output": True} if binary_output else {}
        return InferRequestBody([self.tensor()], parameters=params)

    def expected(self) -> bytes:
        """The raw bytes of the right answer."""
        return (self.array() * np.float32(2)).astype("<f4").tobytes()

    def check(self, response: InferResponseBody) -> None:
        """Raise AnswerError unless ``response`` holds exactly twice the input."""
        outs = [o for o in response.outputs if self.output_name in (None, o.name)]
        if not outs:
            raise AnswerError(f"no output named {self.output_name!r} in the response")
        out = outs[0]
        if out.datatype != "FP32" or list(out.shape) != [self.rows, self.width]:
            raise AnswerError(
                f"output '{out.name}' is {out.datatype}{list(out.shape)}, "
                f"expected FP32{[self.rows, self.width]}"
            )
        if out.data != self.expected():
            got = np.frombuffer(out.data, dtype="<f4")[:4]
            want = np.frombuffer(self.expected(), dtype="<f4")[:4]
            raise AnswerError(f"output is not 2x the input: got {got}..., want {want}...")
