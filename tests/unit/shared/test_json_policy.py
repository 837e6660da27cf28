"""The JSON policy's depth scan: brackets in strings and escapes do not count, and it matches
what a real parser sees."""

from __future__ import annotations

import json

import pytest

from shared import BadRequestError
from shared._json_policy import check_json_depth, json_depth


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("[[[{{{", 0),
        ([], 1),
        ({"a": [1, {"b": "[[[["}]}, 3),
        (["\\", [[]]], 3),
        (['\\"[[', []], 2),
        ([[[[[]]]]], 5),
        ({"k": '}]"{['}, 1),
    ],
)
def test_the_scan_measures_the_depth_a_parser_sees(value: object, depth: int) -> None:
    assert json_depth(json.dumps(value).encode()) == depth


def test_a_body_one_level_past_the_limit_is_refused_and_one_at_it_accepted() -> None:
    check_json_depth(b"[" * 64 + b"]" * 64)
    with pytest.raises(BadRequestError, match="65 levels"):
        check_json_depth(b"[" * 65 + b"]" * 65)


def test_many_shallow_brackets_are_accepted() -> None:
    check_json_depth(json.dumps([[{"a": [1]}] for _ in range(10_000)]).encode())
