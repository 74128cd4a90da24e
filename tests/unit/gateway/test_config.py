"""Config files are validated at load; every error names the field and the reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway.config import ConfigError, load_config, parse_config


def test_minimal_config_gets_tritons_default_ports(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text("models:\n  - name: sim\n    endpoints: ['127.0.0.1:9001']\n")
    config = load_config(path)
    assert (config.server.http_port, config.server.grpc_port, config.server.metrics_port) == (
        8000,
        8001,
        8002,
    )
    model = config.model("sim")
    assert model is not None and model.target_model == "sim"
    assert model.endpoints == ["127.0.0.1:9001"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "models: Field required"),
        ({"models": []}, "models: List should have at least 1 item"),
        ({"models": [{"name": "a", "endpoints": ["nohost"]}]}, "models.0.endpoints"),
        ({"models": [{"name": "a", "endpoints": ["h:99999"]}]}, "is not host:port"),
        ({"models": [{"name": "a"}, {"name": "a"}]}, "'a' appears more than once"),
        ({"models": [{"name": "a", "colour": 1}]}, "models.0.colour: Extra inputs"),
        ({"models": [{"name": "a/b"}]}, "models.0.name"),
        ({"models": [{"name": "a", "default_timeout_ms": 0}]}, "models.0.default_timeout_ms"),
        ({"server": {"http_port": "x"}, "models": [{"name": "a"}]}, "server.http_port"),
        ([1, 2], "top level must be a mapping"),
    ],
)
def test_bad_config_names_field_and_reason(doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(doc, "gw.yaml")


def test_unreadable_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_config_is_frozen() -> None:
    config = parse_config({"models": [{"name": "a"}]})
    with pytest.raises(Exception, match="frozen"):
        config.models[0].name = "b"  # type: ignore[misc]


def test_the_documented_configs_load() -> None:
    """docs/configuration.md's reference and the README's minimal config are valid configs."""
    root = Path(__file__).resolve().parents[3]
    for doc in ("docs/configuration.md", "README.md"):
        text = (root / doc).read_text()
        blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "models:" in b]
        assert blocks, doc
        config = parse_config(yaml.safe_load(blocks[0]))
        assert config.models[0].name == "sim", doc
