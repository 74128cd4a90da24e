"""``sim`` in Triton's Python backend: a simulated device, OUTPUT0 = 2 x INPUT0 (FP32 [-1, 16]).

One instance executes one batch at a time; a batch of n rows holds it for F + c * n
(``fixed_ms`` and ``per_row_ms`` in config.pbtxt's parameters), like simpod's ``sim``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """The model Triton's Python backend loads: one per instance."""

    def initialize(self, args: dict[str, str]) -> None:
        params = json.loads(args["model_config"]).get("parameters", {})
        self.fixed_s = float(params["fixed_ms"]["string_value"]) / 1000
        self.per_row_s = float(params["per_row_ms"]["string_value"]) / 1000

    def execute(self, requests: list[Any]) -> list[Any]:
        """Every request of the batch answered after one sleep for the batch's rows."""
        inputs = [pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy() for r in requests]
        rows = sum(int(x.shape[0]) for x in inputs)
        time.sleep(self.fixed_s + self.per_row_s * rows)
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", (2 * x).astype(np.float32))])
            for x in inputs
        ]
