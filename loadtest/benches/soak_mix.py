"""The soak's request mix, pure: its lanes and their shares, the pick of each request's lane,
how an answer counts, and the tally of outcomes per interval.

A lane is one kind of request: a good one on a protocol (``http-json``, ``http-binary``,
``grpc``, ``grpc-stream``), a bad one (an unknown input name or a wrong datatype over HTTP and
gRPC, a malformed JSON body over HTTP: each must be refused with HTTP 400 / INVALID_ARGUMENT),
or a client that disconnects mid-request (closes its HTTP connection, cancels its gRPC call or
stream after sending). Lanes are picked by smooth weighted round-robin, so at every point of a
run each lane has had its share of the requests, to within a request or two.

Outcomes: a good request is ``ok``, ``rejected`` (429 / RESOURCE_EXHAUSTED: shed, explicitly),
``lost`` (never answered: a timeout, a broken connection, never sent, still out at the end) or
``failed`` (answered with another error, or a wrong answer). A bad request is ``expected``
(400 / INVALID_ARGUMENT), ``rejected``, or ``wrong`` (anything else, no answer included). A
disconnect is ``cut`` (the client left before the answer), ``answered_first`` (the answer beat
the cut) or ``error`` (it could not even send).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from loadtest.clients.base import CLIENT_KINDS

__all__ = [
    "BAD_VARIANTS",
    "CATEGORIES",
    "DISCONNECT_WIRES",
    "OUTCOMES",
    "Category",
    "Lane",
    "LanePicker",
    "Tally",
    "classify",
    "interval_of",
    "mix_lanes",
]

Category = Literal["good", "bad", "disconnect"]
CATEGORIES: tuple[Category, ...] = ("good", "bad", "disconnect")

# Each bad request: (what is wrong with it, the wire it goes on).
BAD_VARIANTS = (
    ("unknown-input", "http-json"),
    ("unknown-input", "grpc"),
    ("wrong-datatype", "http-json"),
    ("wrong-datatype", "grpc"),
    ("malformed-json", "http-json"),
)
DISCONNECT_WIRES = ("http-json", "grpc", "grpc-stream")
# Each category's outcomes, in the order reports show them.
OUTCOMES: dict[Category, tuple[str, ...]] = {
    "good": ("ok", "rejected", "lost", "failed"),
    "bad": ("expected", "rejected", "wrong"),
    "disconnect": ("cut", "answered_first", "error"),
}

_REJECTED = frozenset({"http 429", "grpc RESOURCE_EXHAUSTED"})
_REFUSED = frozenset({"http 400", "grpc INVALID_ARGUMENT"})
_NO_ANSWER = frozenset(
    {
        "timeout",
        "unfinished",
        "overflow",
        "grpc DEADLINE_EXCEEDED",
        "grpc UNAVAILABLE",
        "grpc CANCELLED",
        "grpc-stream closed",
    }
)


@dataclass(frozen=True, slots=True)
class Lane:
    """One kind of request of the mix: ``name`` in reports, its category, its wire (a client
    kind) and, for a bad one, what is wrong with it."""

    name: str
    category: Category
    wire: str
    variant: str = ""


def _good(wire: str) -> Lane:
    return Lane(wire, "good", wire)


def mix_lanes(
    protocols: Mapping[str, float], bad_share: float, disconnect_share: float
) -> tuple[tuple[Lane, float], ...]:
    """Every lane with its share of all requests (they sum to 1): the good ones split
    ``1 - bad_share - disconnect_share`` by the ``protocols`` weights; the bad and the
    disconnecting ones split their shares evenly over their variants."""
    if any(kind not in CLIENT_KINDS for kind in protocols):
        raise ValueError(f"protocols must be among {CLIENT_KINDS}, got {sorted(protocols)}")
    if any(w < 0 for w in protocols.values()) or not sum(protocols.values()) > 0:
        raise ValueError("protocol weights must be >= 0 and not all 0")
    if bad_share < 0 or disconnect_share < 0 or bad_share + disconnect_share >= 1:
        raise ValueError("the bad and disconnect shares must be >= 0 and leave some good load")
    good = 1.0 - bad_share - disconnect_share
    total = sum(protocols.values())
    lanes = [(_good(k), good * w / total) for k, w in protocols.items() if w > 0]
    for variant, wire in BAD_VARIANTS if bad_share > 0 else ():
        lanes.append((Lane(f"bad {variant} {wire}", "bad", wire, variant), bad_share / 5))
    for wire in DISCONNECT_WIRES if disconnect_share > 0 else ():
        lanes.append((Lane(f"disconnect {wire}", "disconnect", wire), disconnect_share / 3))
    return tuple(lanes)


class LanePicker:
    """Smooth weighted round-robin (nginx's): each ``next()`` is the index of the lane whose
    credit is highest, after every lane gains its weight and the pick pays the total. The credits
    stay bounded, so a lane's count never drifts from its share: for the soak's mixes it stays
    within two requests of it at every point of the run."""

    def __init__(self, weights: Iterable[float], start: int = 0) -> None:
        self._weights = list(weights)
        if not self._weights or min(self._weights) < 0 or not sum(self._weights) > 0:
            raise ValueError("weights must be >= 0, at least one > 0")
        self._total = sum(self._weights)
        self._credit = [0.0] * len(self._weights)
        for _ in range(start):  # a different phase per generator process
            self.next()

    def next(self) -> int:
        credit = self._credit
        for i, w in enumerate(self._weights):
            credit[i] += w
        best = max(range(len(credit)), key=credit.__getitem__)
        credit[best] -= self._total
        return best


def _lost(kind: str) -> bool:
    """Whether an error of ``kind`` means no answer came (rather than an error answer)."""
    if kind in _NO_ANSWER:
        return True
    wire, _, what = kind.partition(" ")
    return wire == "http" and not what.isdigit()  # a connection error, not a status


def classify(category: Category, kind: str | None) -> str:
    """The outcome of a good or bad request whose error was of ``kind`` (None: it succeeded)."""
    if category == "good":
        if kind is None:
            return "ok"
        if kind in _REJECTED:
            return "rejected"
        return "lost" if _lost(kind) else "failed"
    if category == "bad":
        if kind in _REFUSED:
            return "expected"
        return "rejected" if kind in _REJECTED else "wrong"
    raise ValueError("a disconnect's outcome is cut, answered_first or error")


def interval_of(t_ns: int, opens_ns: int, interval_ns: int, intervals: int) -> int:
    """The interval a request sent at ``t_ns`` counts in: -1 before the window opens (the
    warm-up), then ``(t - opens) // interval``, the last one taking what comes after it."""
    if t_ns < opens_ns:
        return -1
    return min((t_ns - opens_ns) // interval_ns, intervals - 1)


@dataclass(slots=True)
class Tally:
    """Outcomes by (interval, lane name, outcome), and error kinds by (lane name, kind)."""

    counts: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    kinds: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, interval: int, lane: str, outcome: str, kind: str | None = None) -> None:
        self.counts[(interval, lane, outcome)] += 1
        if kind is not None:
            self.kinds[(lane, kind)] += 1

    @classmethod
    def merge(cls, tallies: Iterable[Tally]) -> Tally:
        out = cls()
        for t in tallies:
            out.counts.update(t.counts)
            out.kinds.update(t.kinds)
        return out

    def outcomes(self, interval: int | None = None, lane: str | None = None) -> Counter[str]:
        """Outcome counts of one interval (None: all) and one lane (None: all)."""
        out: Counter[str] = Counter()
        for (i, name, outcome), n in self.counts.items():
            if (interval is None or i == interval) and (lane is None or name == lane):
                out[outcome] += n
        return out

    def lane_outcomes(self, interval: int, lanes: Iterable[Lane]) -> dict[str, dict[str, int]]:
        """Interval ``interval``'s outcomes of each of ``lanes``, by lane name."""
        return {lane.name: dict(self.outcomes(interval, lane.name)) for lane in lanes}

    def by_category(
        self, lanes: Iterable[Lane], interval: int | None = None
    ) -> dict[Category, Counter[str]]:
        """Outcome counts of one interval (None: all), summed over each category's lanes."""
        category = {lane.name: lane.category for lane in lanes}
        out: dict[Category, Counter[str]] = {c: Counter() for c in CATEGORIES}
        for (i, name, outcome), n in self.counts.items():
            if (interval is None or i == interval) and name in category:
                out[category[name]][outcome] += n
        return out
