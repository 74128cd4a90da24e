"""EndpointSlices to endpoints, and the store's snapshots: KEP-1669 conditions, ports, merges."""

from __future__ import annotations

from typing import Any

from gateway.discovery.endpoints import Endpoint, routable, slice_endpoints
from gateway.discovery.store import SliceStore


def eps(*conditions: dict[str, Any] | None, ip: str = "10.0.0.{}") -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(conditions):
        e: dict[str, Any] = {"addresses": [ip.format(i + 1)]}
        if c is not None:
            e["conditions"] = c
        out.append(e)
    return out


def slice_(name: str, endpoints: list[dict[str, Any]] | None, ports: Any = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "resourceVersion": "7"},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports if ports is not None else [{"name": "grpc", "port": 8001}],
    }


def test_nil_ready_counts_as_ready_and_nil_serving_follows_ready() -> None:
    (e,) = slice_endpoints(slice_("s", eps(None)), "grpc")
    assert (e.address, e.ready, e.serving, e.terminating) == ("10.0.0.1:8001", True, True, False)
    (f,) = slice_endpoints(slice_("s", eps({"ready": False})), "grpc")
    assert (f.ready, f.serving) == (False, False)


def test_a_terminating_endpoint_is_never_ready_but_may_serve() -> None:
    (e,) = slice_endpoints(
        slice_("s", eps({"ready": True, "serving": True, "terminating": True})), "grpc"
    )
    assert (e.ready, e.serving, e.terminating) == (False, True, True)


def test_the_port_is_chosen_by_name_or_is_the_only_one() -> None:
    two = [{"name": "http", "port": 8000}, {"name": "grpc", "port": 8001}]
    assert slice_endpoints(slice_("s", eps(None), two), "grpc")[0].address == "10.0.0.1:8001"
    assert slice_endpoints(slice_("s", eps(None), two), None) == ()  # ambiguous: none
    assert slice_endpoints(slice_("s", eps(None), two), "metrics") == ()
    one = [{"port": 9000}]
    assert slice_endpoints(slice_("s", eps(None), one), None)[0].address == "10.0.0.1:9000"


def test_an_empty_slice_has_endpoints_null_and_gives_nothing() -> None:
    assert slice_endpoints(slice_("s", None), "grpc") == ()


def test_ipv6_addresses_are_bracketed() -> None:
    s = slice_("s", eps(None, ip="fd00::{}"))
    s["addressType"] = "IPv6"
    assert slice_endpoints(s, "grpc")[0].address == "[fd00::1]:8001"


def test_routable_prefers_ready_then_serving_terminating_only() -> None:
    ready = Endpoint("a", True, True, False)
    draining = Endpoint("b", False, True, True)
    stopped = Endpoint("c", False, False, True)
    starting = Endpoint("d", False, False, False)
    same = lambda e: e  # noqa: E731
    assert routable([ready, draining, stopped, starting], same) == [ready]
    assert routable([draining, stopped, starting], same) == [draining]
    assert routable([stopped, starting], same) == []


def test_the_store_merges_an_address_listed_twice_with_the_better_conditions() -> None:
    store = SliceStore("grpc")
    store.replace([slice_("old", eps({"ready": False})), slice_("new", eps({"ready": True}))], "10")
    snap, changed = store.snapshot()
    assert snap.endpoints["10.0.0.1:8001"].ready and changed == {"10.0.0.1:8001"}
    store.apply("DELETED", slice_("new", None))
    snap2, changed2 = store.snapshot()
    assert not snap2.endpoints["10.0.0.1:8001"].ready and changed2 == {"10.0.0.1:8001"}
    assert snap.endpoints["10.0.0.1:8001"].ready  # the old snapshot never changes


def test_a_list_replaces_everything_and_reports_only_what_changed() -> None:
    store = SliceStore("grpc")
    store.replace([slice_("a", eps(None, None))], "1")
    store.snapshot()
    store.replace([slice_("a", eps(None)), slice_("b", eps(None, ip="10.1.0.{}"))], "5")
    snap, changed = store.snapshot()
    assert set(snap.endpoints) == {"10.0.0.1:8001", "10.1.0.1:8001"}
    assert changed == {"10.0.0.2:8001", "10.1.0.1:8001"}
    assert snap.resource_version == "5" and snap.generation == 2


def test_events_and_bookmarks_keep_the_resource_version_current() -> None:
    store = SliceStore("grpc")
    store.replace([], "3")
    obj = slice_("a", eps(None))
    obj["metadata"]["resourceVersion"] = "4"
    store.apply("ADDED", obj)
    assert store.resource_version == "4"
    store.advance("9")
    assert store.resource_version == "9"
    store.advance("")
    assert store.resource_version == "9"


def test_no_change_gives_the_same_snapshot() -> None:
    store = SliceStore("grpc")
    store.replace([slice_("a", eps(None))], "1")
    first, _ = store.snapshot()
    store.apply(
        "MODIFIED", slice_("a", eps(None)) | {"metadata": {"name": "a", "resourceVersion": "1"}}
    )
    second, changed = store.snapshot()
    assert second is first and not changed
