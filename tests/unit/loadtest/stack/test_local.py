"""The static pods a load run starts for itself, and the commands a stack prints."""

from __future__ import annotations

import ast
import json
import shlex

from loadtest.stack.local import StackConfig, curl_command, tritonclient_snippet


def test_pods_get_the_device_cost() -> None:
    args = StackConfig(fixed_ms=8.0, per_row_ms=0.25, max_batch=32).pod_args()
    assert args == ["--fixed-ms", "8.0", "--per-row-ms", "0.25", "--max-batch", "32"]


def test_the_curl_sends_one_row_of_16_floats_as_json() -> None:
    words = shlex.split(curl_command(8000))
    assert "http://localhost:8000/v2/models/sim/infer" in words
    body = json.loads(words[words.index("-d") + 1])
    (tensor,) = body["inputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("INPUT0", "FP32", [1, 16])
    assert len(tensor["data"]) == 16


def test_the_tritonclient_snippet_is_valid_python() -> None:
    snippet = tritonclient_snippet(8000, "sim", "INPUT0", "OUTPUT0")
    ast.parse(snippet)
    assert "localhost:8000" in snippet
    assert 'as_numpy("OUTPUT0")' in snippet
