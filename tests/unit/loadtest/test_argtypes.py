"""The loadtest CLI's argument types name what is wrong with a bad value."""

from __future__ import annotations

import argparse

import pytest

from loadtest.argtypes import COUNT, POSITIVE, POSITIVE_INT, choice_list, number_list


def test_bounds_are_strict_or_inclusive_as_named() -> None:
    assert COUNT("0") == 0
    assert POSITIVE_INT("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match=">= 1, got 0"):
        POSITIVE_INT("0")
    with pytest.raises(argparse.ArgumentTypeError, match="> 0, got 0"):
        POSITIVE("0")
    with pytest.raises(argparse.ArgumentTypeError, match="not a valid int: 'x'"):
        COUNT("x")


def test_number_list_sorts_and_checks_every_item() -> None:
    assert number_list(float, strict=True)("0.9, 0.5,,1") == (0.5, 0.9, 1.0)
    assert number_list(int, 1, strict=False, sort=False)("2,1") == (2, 1)
    with pytest.raises(argparse.ArgumentTypeError, match="> 0, got -1"):
        number_list(float, strict=True)("1,-1")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a list"):
        number_list(float, strict=True)(" , ")


def test_choice_list_keeps_order_and_names_the_choices() -> None:
    parse = choice_list(("batching", "none"))
    assert parse("none,batching") == ("none", "batching")
    with pytest.raises(argparse.ArgumentTypeError, match="choose from batching,none, got 'fast'"):
        parse("fast")
