"""The layout of a model's pod slots over the gateway replicas that share them."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.routing.shares import SlotShares, fallback_share, layout, owners


def every(replicas: list[str], pods: list[str], slots: int) -> dict[str, dict[str, int]]:
    return {r: layout(replicas, r, pods, slots) for r in replicas}


def test_two_replicas_on_one_pod_take_one_slot_each() -> None:
    assert every(["a", "b"], ["p:1"], 2) == {"a": {"p:1": 1}, "b": {"p:1": 1}}


def test_as_many_pods_as_replicas_gives_each_replica_whole_pods() -> None:
    assert every(["b", "a"], ["q:1", "p:1"], 2) == {"a": {"p:1": 2}, "b": {"q:1": 2}}


def test_three_pods_two_replicas_split_one_pod() -> None:
    shares = every(["a", "b"], ["p0", "p1", "p2"], 2)
    assert shares == {"a": {"p0": 2, "p1": 1}, "b": {"p1": 1, "p2": 2}}


def test_more_replicas_than_slots_still_gives_each_one() -> None:
    shares = every(["a", "b", "c"], ["p"], 2)
    assert all(s == {"p": 1} for s in shares.values())


def test_a_replica_missing_from_the_list_counts_itself() -> None:
    assert layout(["a"], "b", ["p"], 2) == {"p": 1}
    assert layout([], "a", ["p"], 2) == {"p": 2}
    assert layout(["a", "b"], "a", [], 2) == {}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    n=st.integers(1, 8),
    pods=st.lists(st.text("abcdef:0123", min_size=1, max_size=6), min_size=1, max_size=8),
    slots=st.integers(1, 6),
)
def test_no_pod_gets_more_than_its_slots_and_every_replica_some(
    n: int, pods: list[str], slots: int
) -> None:
    replicas = [f"gw-{i}" for i in range(n)]
    shares = every(replicas, pods, slots)
    per_pod: Counter[str] = Counter()
    for share in shares.values():
        per_pod.update(share)
    distinct = len(set(pods))
    totals = [sum(s.values()) for s in shares.values()]
    assert min(totals) >= 1
    if n <= distinct * slots:
        assert all(v <= slots for v in per_pod.values())
        assert sum(totals) == distinct * slots  # every slot is someone's
        assert max(totals) - min(totals) <= 1  # an even split
    else:
        assert totals == [1] * n


def test_the_share_is_cached_until_its_inputs_change() -> None:
    shares = SlotShares()
    assert not shares.active
    assert shares.set_replicas("a", ["b", "a"])
    assert not shares.set_replicas("a", ["a", "b"])
    assert shares.active
    first = shares.limits(["p"], 2)
    assert first == {"p": 1} and shares.limits(["p"], 2) is first
    assert shares.limits(["p", "q"], 2) == {"p": 2}
    assert fallback_share(2, 2) == 1 and fallback_share(3, 2) == 1 and fallback_share(2, 5) == 2


def test_fewer_pods_than_replicas_with_addresses_gives_each_pod_one_owner() -> None:
    peers = {"c": "10.0.0.3:8000", "a": "10.0.0.1:8000", "b": "10.0.0.2:8000"}
    assert owners(peers, ["q", "p"]) == {"p": "a", "q": "b"}
    assert owners({"a": "x:1", "b": "y:1"}, ["p"]) == {"p": "a"}


def test_owners_need_their_addresses_and_fewer_pods_than_replicas() -> None:
    assert owners({"a": "", "b": "y:1"}, ["p"]) is None  # the owner cannot be reached
    assert owners({"a": "x:1", "b": ""}, ["p"]) == {"p": "a"}  # a forwarder needs none
    assert owners({"a": "x:1", "b": "y:1"}, ["p", "q"]) is None  # whole pods each already
    assert owners({"a": "x:1", "b": "y:1"}, []) is None


def shares_of(me: str, peers: dict[str, str]) -> SlotShares:
    shares = SlotShares()
    shares.set_replicas(me, peers)
    return shares


def test_an_owner_holds_its_pod_whole_and_the_others_forward_to_the_owners() -> None:
    peers = {"a": "x:1", "b": "y:1", "c": "z:1"}
    a, b, c = (shares_of(me, peers) for me in ("a", "b", "c"))
    pods = ["p", "q"]
    assert (a.limits(pods, 2), b.limits(pods, 2), c.limits(pods, 2)) == ({"p": 2}, {"q": 2}, {})
    assert (a.forward_to(pods), b.forward_to(pods)) == ((), ())
    assert sorted(c.forward_to(pods)) == ["x:1", "y:1"]


def test_a_forwarder_that_cannot_forward_still_has_a_fallback_share() -> None:
    class Pod:
        def __init__(self, address: str) -> None:
            self.address, self.slots = address, 2

    shares = shares_of("b", {"a": "x:1", "b": "y:1"})
    assert shares.limits(["p"], 2) == {}
    assert shares.of_view([Pod("p")], ["p"]) == {"p": 1}


def test_ids_without_addresses_split_the_slots_as_before() -> None:
    shares = SlotShares()
    shares.set_replicas("b", ["a", "b"])
    assert shares.limits(["p"], 2) == {"p": 1}
    assert shares.forward_to(["p"]) == ()
    assert shares.set_replicas("b", {"a": "x:1", "b": "y:1"})  # addresses are a change
    assert shares.limits(["p"], 2) == {} and shares.forward_to(["p"]) == ("x:1",)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abcdef"), st.sampled_from(["", "h:1", "h:2"]), min_size=1),
    st.lists(st.sampled_from(["p0", "p1", "p2", "p3"]), unique=True),
    st.integers(1, 4),
)
def test_no_pod_is_given_more_slots_than_it_has_and_every_replica_has_a_path(
    peers: dict[str, str], pods: list[str], slots: int
) -> None:
    held: Counter[str] = Counter()
    for me in peers:
        shares = shares_of(me, peers)
        limits = shares.limits(pods, slots)
        held.update(limits)
        if pods:
            assert limits or shares.forward_to(pods) or len(peers) > len(pods) * slots
    if owners(peers, pods) is not None:
        assert all(held[p] == slots for p in pods)  # each owned whole, by one replica
