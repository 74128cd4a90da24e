"""The REST handlers' reading of Inference-Timeout-Ms: digits only, positive, in ms."""

from __future__ import annotations

import pytest

from gateway.errors import Code, InferError
from gateway.frontends.http_types import Request
from gateway.frontends.rest import _timeout_header


def timeout_of(value: str | None) -> float | None:
    headers = {} if value is None else {"inference-timeout-ms": value}
    return _timeout_header(Request("POST", "/v2/models/m/infer", headers, b""))


def test_a_timeout_in_milliseconds_is_read_in_seconds() -> None:
    assert timeout_of(None) is None
    assert timeout_of("250") == pytest.approx(0.25)
    assert timeout_of("1.5") == pytest.approx(0.0015)


@pytest.mark.parametrize("value", ["0", "-5", "1_0", "inf", "nan", "1e3", " 10", "+10", "0x10", ""])
def test_anything_but_a_positive_decimal_is_refused_naming_the_header(value: str) -> None:
    with pytest.raises(InferError) as refused:
        timeout_of(value)
    assert refused.value.code is Code.INVALID_ARGUMENT
    assert "Inference-Timeout-Ms" in refused.value.message
