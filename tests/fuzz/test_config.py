"""The config loaders on any document or file: a config, or a ConfigError whose message names
the field; and a config that loads can be served (gRPC's options, Triton's ModelConfig, the
autoscaler's arithmetic all take its values)."""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

import autoscaler.config as autoscaler_config
import gateway.config as gateway_config
from gateway.frontends.grpc_service import server_options
from gateway.models.spec import ModelSpec
from tests.fuzz.budget import fuzz
from tests.fuzz.strategies import documents, mutated, often, scalars

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "base" / "config"
INT32_MAX = 2**31 - 1
LOADERS = {"gateway": gateway_config, "autoscaler": autoscaler_config}

# Every section of each config, so that mutations reach every validator.
FULL_GATEWAY = {
    "server": {"http_port": 8000, "max_request_bytes": 1024, "grpc_keepalive_time_s": 30},
    "autoscaler": {"address": "127.0.0.1:8090", "report_interval_ms": 100},
    "models": [
        {
            "name": "a",
            "endpoints": ["127.0.0.1:9000", "[::1]:9001"],
            "max_batch_size": 8,
            "dynamic_batching": {
                "preferred_batch_size": [4, 8],
                "priority_levels": 2,
                "default_priority_level": 1,
                "default_queue_policy": {"max_queue_size": 10, "timeout_action": "DELAY"},
                "priority_queue_policy": {2: {"default_timeout_microseconds": 100}},
            },
            "outlier_detection": {"consecutive_failures": 3},
            "retry_budget": {"percent": 10},
            "per_try_timeout": {"factor": 2.0, "min_ms": 50},
        },
        {"name": "b", "discovery": {"service": "b-pods", "port_name": "grpc"}},
    ],
}
FULL_AUTOSCALER = {
    "leader_election": {"enabled": False, "lease_duration_s": 5},
    "kubernetes": {"namespace": "x", "request_timeout_s": 2},
    "missing_hold_s": 10,
    "actuation": "keda",
    "models": [
        {"name": "a", "scaling": {"mode": "capacity", "min_replicas": 0, "max_replicas": 3}},
        {"name": "b", "actuation": "patch", "scaling": {"target_per_pod": 4}},
    ],
}


def examples(kind: str) -> list[Any]:
    found = [yaml.safe_load((EXAMPLES / f"{kind}.yaml").read_text())]
    return [*found, FULL_GATEWAY if kind == "gateway" else FULL_AUTOSCALER]


def test_the_example_configs_load() -> None:
    for kind, loader in LOADERS.items():
        for doc in examples(kind):
            loader.parse_config(copy.deepcopy(doc))
        loader.load_config(EXAMPLES / f"{kind}.yaml")


# Values a mutation puts in place of a field's: for a number, mostly the edges of the integer
# and float types; else any documents.
numbers = st.sampled_from(
    [-1, 0, 1, 2**31 - 1, 2**31, 2**32, 2**63, 2**64, 0.5, 1e300, -1e-300, math.inf, math.nan]
)
edges = numbers | st.sampled_from(["", "x", True, None, [], {}])
values = edges | scalars | documents(max_leaves=6)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``doc`` (dict keys, list indices)."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += paths(value, (*prefix, i))
    return out


@st.composite
def mutations(draw: st.DrawFn, kind: str) -> Any:
    """An example config with values replaced, dropped, added, wrapped or repeated."""
    doc = copy.deepcopy(draw(st.sampled_from(examples(kind))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(doc)))
        if not path:
            continue
        *parents, last = path
        parent = doc
        for step in parents:
            parent = parent[step]
        op = draw(st.sampled_from(["replace"] * 3 + ["drop", "add", "wrap", "twice"]))
        if op == "replace":
            number = isinstance(parent[last], int | float) and not isinstance(parent[last], bool)
            # a copy: sampled_from hands out the same [] and {} each time, and a later "add"
            # would change them for every test case after this one (hypothesis calls it flaky)
            parent[last] = copy.deepcopy(draw(often(numbers, values) if number else values))
        elif op == "drop":
            del parent[last]
        elif op == "wrap":
            parent[last] = [parent[last]]
        elif op == "twice" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=4) | numbers)] = copy.deepcopy(draw(values))
    return doc


def load(kind: str, doc: Any) -> Any:
    """The config ``doc`` makes, or None where a ConfigError names what is wrong in it."""
    try:
        return LOADERS[kind].parse_config(doc)
    except (gateway_config.ConfigError, autoscaler_config.ConfigError) as exc:
        assert_names_a_field(str(exc), doc)
        return None


def assert_names_a_field(message: str, doc: Any) -> None:
    assert message.startswith("config: "), message
    where = message.removeprefix("config: ")
    if not isinstance(doc, dict):
        assert "top level must be a mapping" in where, message
        return
    fields = [str(key) for key in doc] + ["models", "(top level)"]
    assert any(where.startswith(field) for field in fields), message


def assert_servable(kind: str, config: Any) -> None:
    """What the processes make of a config at start and on their endpoints takes it."""
    if kind == "gateway":
        for option, value in server_options(config.server):
            assert 0 <= value <= INT32_MAX, (option, value)  # gRPC takes a C int
        for model in config.models:  # Triton's ModelConfig (the config endpoints): its ranges
            spec = ModelSpec("m", "", model.max_batch_size or 0, {}, {})
            spec.config(model.dynamic_batching)
    else:
        for model in config.models:  # the decider's arithmetic: ceil() of NaN raises
            for field in dataclasses.fields(model.scaling):
                value = getattr(model.scaling, field.name)
                if isinstance(value, float):
                    assert math.isfinite(value), (field.name, value)


@pytest.mark.parametrize("kind", sorted(LOADERS))
@fuzz(examples=500)
@given(doc=documents(scalars | edges, max_leaves=16))
def test_any_document_is_a_config_or_an_error_naming_a_field(kind: str, doc: Any) -> None:
    load(kind, doc)
    load(kind, {"models": [doc]})


@pytest.mark.parametrize("kind", sorted(LOADERS))
@fuzz(examples=800)
@given(data=st.data())
def test_a_mutated_example_is_a_servable_config_or_an_error_naming_a_field(
    kind: str, data: st.DataObject
) -> None:
    config = load(kind, data.draw(mutations(kind)))
    if config is not None:
        assert_servable(kind, config)


def yaml_texts() -> st.SearchStrategy[bytes]:
    """Config files: example configs' text mutated, YAML of any document, any bytes."""
    texts = [(EXAMPLES / f"{kind}.yaml").read_bytes() for kind in LOADERS]
    dumped = documents(max_leaves=10).map(lambda d: yaml.safe_dump(d).encode())
    return st.sampled_from(texts).flatmap(mutated) | dumped | st.binary(max_size=64)


@pytest.mark.parametrize("kind", sorted(LOADERS))
@fuzz(examples=300)
@example(text=b"models: [" * 2000)  # nested past the YAML parser's recursion: RecursionError
@example(text=b"models:\n  - name: \xff\n")  # not UTF-8: UnicodeDecodeError
@given(text=yaml_texts())
def test_any_file_is_a_config_or_a_config_error(kind: str, text: bytes) -> None:
    loader = LOADERS[kind]
    with tempfile.NamedTemporaryFile(suffix=".yaml") as file:
        file.write(text)
        file.flush()
        try:
            loader.load_config(file.name)
        except loader.ConfigError as exc:
            assert str(exc).startswith(f"{file.name}: "), exc
