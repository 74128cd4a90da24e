"""Health, server and model metadata, model config and statistics through every official client."""

from __future__ import annotations

import numpy as np
from _compat import V2, Target, raw_http


async def test_server_live_and_ready(client: V2) -> None:
    assert await client.live()
    assert await client.ready()


async def test_model_ready(client: V2) -> None:
    assert await client.model_ready("sim")


async def test_unknown_model_not_ready(client: V2) -> None:
    # HTTP answers 4xx (false); Triton's gRPC answers ready=false or NOT_FOUND.
    exc = await client.error("is_model_ready", "no_such_model")
    if exc is None:
        assert not await client.model_ready("no_such_model")
    else:
        assert client.protocol == "grpc" and exc.status() == "StatusCode.NOT_FOUND", exc


async def test_server_metadata(client: V2) -> None:
    meta = await client.server_metadata()
    assert isinstance(meta.get("name"), str) and meta["name"], meta
    assert isinstance(meta.get("version"), str), meta
    assert "extensions" in meta and isinstance(meta["extensions"], list), meta
    assert all(isinstance(e, str) for e in meta["extensions"]), meta


async def test_model_metadata(client: V2) -> None:
    meta = await client.model_metadata("sim")
    assert meta["name"] == "sim"
    assert meta["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 16]}], meta
    assert meta["outputs"] == [{"name": "OUTPUT0", "datatype": "FP32", "shape": [-1, 16]}], meta


async def test_model_config(client: V2) -> None:
    cfg = await client.model_config("sim")
    assert cfg["name"] == "sim", cfg
    assert cfg["max_batch_size"] == 32, cfg
    inputs = [
        {"name": t["name"], "data_type": t["data_type"], "dims": t["dims"]} for t in cfg["input"]
    ]
    outputs = [
        {"name": t["name"], "data_type": t["data_type"], "dims": t["dims"]} for t in cfg["output"]
    ]
    # dims are numbers in Triton's JSON, not protobuf-JSON int64 strings (perf_analyzer reads them)
    assert inputs == [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [16]}], cfg
    assert outputs == [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [16]}], cfg


async def test_identity_model_metadata(client: V2) -> None:
    meta = await client.model_metadata("identity_int16")
    assert meta["inputs"] == [{"name": "INPUT0", "datatype": "INT16", "shape": [-1, -1]}], meta
    assert meta["outputs"] == [{"name": "OUTPUT0", "datatype": "INT16", "shape": [-1, -1]}], meta


async def test_statistics_grow_after_inference(client: V2) -> None:
    before = await client.stats("sim")
    rng = np.random.default_rng(5)
    rows = 0
    for batch in (1, 3, 5):
        x = rng.standard_normal((batch, 16)).astype(np.float32)
        await client.infer("sim", [("INPUT0", x, "FP32")], outputs=["OUTPUT0"])
        rows += batch
    after = await client.stats("sim")
    assert after["success"] >= before["success"] + 3, (before, after)
    assert after["inference_count"] >= before["inference_count"] + rows, (before, after)
    assert after["execution_count"] > before["execution_count"], (before, after)


async def test_statistics_listed_iff_real(client: V2) -> None:
    """perf_analyzer calls /stats when the ``statistics`` extension is listed (trap 5)."""
    meta = await client.server_metadata()
    if "statistics" in meta["extensions"]:
        stats = await client.stats("sim")
        assert set(stats) == {"inference_count", "execution_count", "success"}


def test_http_health_status_codes(target: Target) -> None:
    base = f"http://{target.http}"
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/sim/ready"):
        status, _, _ = raw_http("GET", base + path)
        assert status == 200, (path, status)
    status, _, _ = raw_http("GET", base + "/v2/models/no_such_model/ready")
    assert 400 <= status < 500, status


def test_http_all_models_stats(target: Target) -> None:
    """GET /v2/models/stats lists every model (Triton)."""
    import json

    status, _, body = raw_http("GET", f"http://{target.http}/v2/models/stats")
    assert status == 200, body
    names = {s["name"] for s in json.loads(body)["model_stats"]}
    assert "sim" in names, names


def test_http_versioned_paths(target: Target) -> None:
    """The optional /versions/V segment resolves to the same model."""
    import json

    base = f"http://{target.http}/v2/models/sim"
    status, _, body = raw_http("GET", base)
    assert status == 200, body
    versions = json.loads(body).get("versions") or ["1"]
    status, _, body = raw_http("GET", f"{base}/versions/{versions[0]}")
    assert status == 200, body
    assert json.loads(body)["name"] == "sim"
    status, _, _ = raw_http("GET", f"{base}/versions/{versions[0]}/ready")
    assert status == 200


async def test_statistics_version_is_a_number(client: V2) -> None:
    """perf_analyzer (no -x) picks the highest version among the stats entries with
    std::stoll(version): an empty version string aborts it ('terminate ... stoll')."""
    if client.protocol == "http":
        entries = [
            (s["name"], s.get("version"))
            for s in (await client.call("get_inference_statistics", "sim"))["model_stats"]
        ]
    else:
        msg = await client.call("get_inference_statistics", "sim", as_json=False)
        entries = [(s.name, s.version) for s in msg.model_stats]
    assert entries, "no statistics entries"
    for name, version in entries:
        assert isinstance(version, str) and version.isdigit(), (
            f"stats entry {name!r} has version {version!r}, not a decimal number"
        )


async def test_model_metadata_lists_versions(client: V2) -> None:
    """A served model has at least one version (Triton lists them; clients pick one)."""
    meta = await client.model_metadata("sim")
    versions = meta.get("versions")
    assert versions and all(str(v).isdigit() for v in versions), meta
