"""``repeat_decoupled`` in Triton's Python backend: a decoupled model (0..n responses a request).

INPUT0 (INT32 [1]) = n: n responses, OUTPUT0 = [i] for i = 0 .. n-1, one every ``delay_ms``
(config.pbtxt's parameters), then the final flag on its own; n < 0 is answered with one error
response (and the final flag). Each request runs on a thread of its own, so the responses of
requests sent together interleave.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """The model Triton's Python backend loads: execute() starts a sender per request."""

    def initialize(self, args: dict[str, str]) -> None:
        params = json.loads(args["model_config"]).get("parameters", {})
        self.delay_s = float(params["delay_ms"]["string_value"]) / 1000
        self.threads: set[threading.Thread] = set()
        self.lock = threading.Lock()

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            count = int(pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()[0])
            thread = threading.Thread(
                target=self._answer, args=(request.get_response_sender(), count), daemon=True
            )
            with self.lock:
                self.threads.add(thread)
            thread.start()
        return None

    def _answer(self, sender: Any, count: int) -> None:
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        try:
            if count < 0:
                error = pb_utils.TritonError(f"count must be non-negative, got {count}")
                sender.send(pb_utils.InferenceResponse(error=error), flags=final)
                return
            for i in range(count):
                time.sleep(self.delay_s)
                out = pb_utils.Tensor("OUTPUT0", np.array([i], dtype=np.int32))
                sender.send(pb_utils.InferenceResponse([out]))
            sender.send(flags=final)
        finally:
            with self.lock:
                self.threads.discard(threading.current_thread())

    def finalize(self) -> None:
        with self.lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(timeout=5)
