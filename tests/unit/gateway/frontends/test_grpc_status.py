"""gRPC status details: cut to fit a client's metadata limit, on a character boundary."""

from __future__ import annotations

from gateway.frontends.grpc_status import MAX_DETAIL_BYTES, status_detail


def wire_bytes(detail: str) -> int:
    """What ``detail`` takes as grpc-message: percent-encoded UTF-8, printable ASCII as is."""
    return sum(1 if 0x20 <= b <= 0x7E and b != ord("%") else 3 for b in detail.encode("utf-8"))


def test_a_detail_that_fits_is_sent_whole() -> None:
    message = "unknown model '" + "m" * 3000 + "'"
    assert status_detail(message) == message


def test_a_long_detail_is_cut_to_the_limit_and_says_how_much_was_cut() -> None:
    message = "unknown model '" + "m" * 20_000 + "'"
    detail = status_detail(message)
    assert wire_bytes(detail) <= MAX_DETAIL_BYTES
    kept, marker = detail.split("… ")
    assert message.startswith(kept)
    assert marker == f"({len(message) - len(kept)} characters cut)"


def test_percent_encoded_characters_count_three_bytes_for_each_of_theirs() -> None:
    message = "é€%😀" * 5000  # 2, 3, 1 and 4 UTF-8 bytes, each percent-encoded on the wire
    detail = status_detail(message)
    assert wire_bytes(detail) <= MAX_DETAIL_BYTES
    kept = detail.rpartition("… ")[0]
    assert message.startswith(kept)  # cut between characters, never inside one
    assert wire_bytes(kept) > MAX_DETAIL_BYTES - 64


def test_a_detail_exactly_at_the_limit_is_not_cut() -> None:
    message = "x" * MAX_DETAIL_BYTES
    assert status_detail(message) == message
    kept, _, marker = status_detail(message + "y").partition("… ")
    assert wire_bytes(kept + "… " + marker) <= MAX_DETAIL_BYTES
    assert marker == f"({MAX_DETAIL_BYTES + 1 - len(kept)} characters cut)"
