"""The route table: literal paths before patterns, patterns in the order added, each segment
of the raw path decoded once after splitting."""

from __future__ import annotations

from gateway.frontends.http_router import Router
from gateway.frontends.http_types import Request, Response


async def a(_: Request) -> Response:
    return Response(200, b"a")


async def b(_: Request) -> Response:
    return Response(200, b"b")


def router() -> Router:
    r = Router()
    r.add("GET", "/v2/models/stats", a)
    r.add("POST", "/v2/models/{model}/infer", b)
    r.add("GET", "/v2/models/{model}", a)
    r.add("GET", "/v2/models/{model}/versions/{version}", b)
    return r


def test_literals_win_over_patterns() -> None:
    assert router().resolve("GET", "/v2/models/stats") == (a, {})


def test_a_pattern_names_its_segments() -> None:
    assert router().resolve("GET", "/v2/models/m/versions/2") == (b, {"model": "m", "version": "2"})


def test_each_segment_is_decoded_once_after_splitting() -> None:
    r = router()
    assert r.resolve("POST", "/v2/models/%2573im/infer") == (b, {"model": "%73im"})
    assert r.resolve("POST", "/v2/models/a%2Fb/infer") == (b, {"model": "a/b"})
    assert r.resolve("GET", "/v2/models/%73tats") == (a, {})  # an unreserved letter, encoded


def test_an_empty_segment_matches_no_parameter() -> None:
    assert router().resolve("POST", "/v2/models//infer") == 404


def test_unknown_paths_are_404_and_other_methods_405() -> None:
    r = router()
    assert r.resolve("GET", "/v2/nothing") == 404
    assert r.resolve("DELETE", "/v2/models/m") == 405
    assert r.resolve("POST", "/v2/models/stats") == 405


def test_get_routes_answer_head() -> None:
    assert router().resolve("HEAD", "/v2/models/m") == (a, {"model": "m"})
