"""``identity_<datatype>`` in Triton's Python backend: OUTPUT0 = INPUT0, any datatype
``as_numpy()`` can carry (not BF16). Every identity model's model.py links to this one."""

from __future__ import annotations

from typing import Any

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Each request answered with its own input, unchanged."""

    def execute(self, requests: list[Any]) -> list[Any]:
        out = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
        return out
