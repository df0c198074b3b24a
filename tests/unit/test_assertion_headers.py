"""The header reader and writer (§1.4): exact layout, lenient inputs, errors."""

from __future__ import annotations

from typing import Any

import pytest

from ucimage.assertions import AssertionFormatError
from ucimage.assertions.headers import append_entry, parse_headers


def write(headers: dict[str, Any]) -> str:
    out: list[str] = []
    for name, value in headers.items():
        append_entry(out, name + ":", value, 0)
    return "".join(out)[1:]


def test_writer_layout() -> None:
    text = write(
        {
            "a": "x",
            "empty": "",
            "multi": "one\n\n  three\n",
            "list": ["p", "q\nr"],
            "maps": [{"z": "1", "a": "2"}],
            "nested": {"k": {"deep": ["v"]}},
            "gone": [],
            "gone-too": {},
        }
    )
    assert text == (
        "a: x\n"
        "empty: \n"
        "multi:\n    one\n    \n      three\n    \n"
        "list:\n  - p\n  -\n      q\n      r\n"
        "maps:\n  -\n    a: 2\n    z: 1\n"
        "nested:\n  k:\n    deep:\n      - v"
    )
    parsed = parse_headers(text)
    assert parsed == {
        "a": "x",
        "empty": "",
        "multi": "one\n\n  three\n",
        "list": ["p", "q\nr"],
        "maps": [{"a": "2", "z": "1"}],
        "nested": {"k": {"deep": ["v"]}},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a single-line value in multi-line form
        ("name:\n    value", {"name": "value"}),
        # map keys and headers out of order
        ("z: 1\na: 2", {"z": "1", "a": "2"}),
        ("m:\n  z: 1\n  a: 2", {"m": {"z": "1", "a": "2"}}),
        # not YAML: these are plain strings
        ("series: 16", {"series": "16"}),
        ("system-user-authority: *", {"system-user-authority": "*"}),
        ("v:  two spaces ", {"v": " two spaces "}),
        ("v: a: b", {"v": "a: b"}),
        ("v: - x", {"v": "- x"}),
    ],
)
def test_lenient_reader(text: str, expected: dict[str, Any]) -> None:
    assert parse_headers(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "header entry missing ':' separator: \"\""),
        ("name", "header entry missing ':' separator: \"name\""),
        ("Name: x", 'invalid header name: "Name"'),
        ("a--b: x", 'invalid header name: "a--b"'),
        ("trailing-: x", 'invalid header name: "trailing-"'),
        ("name:x", "should have a space or newline (for multiline) before value"),
        ("name:", 'expected 4 chars nesting prefix after multiline introduction "name:"'),
        ("name:\n  ", "expected 4 chars nesting prefix"),
        ("a: 1\na: 2", 'repeated header: "a"'),
        ("m:\n  K: v", 'invalid map entry key: "K"'),
        ("m:\n  k: v\n  k: w", 'repeated map entry: "k"'),
        ("m:\n  k v", "map entry missing ':' separator"),
        ("l:\n  -x", "should have a space or newline"),
        ("a: 1\n\nb: 2", "header entry missing ':' separator"),
    ],
)
def test_reader_errors(text: str, message: str) -> None:
    with pytest.raises(AssertionFormatError) as exc:
        parse_headers(text)
    assert message in exc.value.message
