"""The header block of an assertion: a YAML look-alike with strings, lists and maps only.

Reading and writing follow ``docs/assertions.md`` §1.4 exactly; this is *not*
YAML (``series: 16`` is the string ``"16"``, ``*`` is a plain string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ucimage.assertions.errors import AssertionFormatError

#: a header value: a string, or a list / map of header values
HeaderValue = str | list[Any] | dict[str, Any]

NAME_RE = re.compile(r"^[a-z](?:-?[a-z0-9])*$")

_SCALARS_ONLY = (
    "header values must be strings or nested lists or maps with strings as the only scalars"
)


def valid_name(name: str) -> bool:
    return NAME_RE.match(name) is not None


def _q(value: str) -> str:
    """Go's %q for the strings we quote in messages."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


quote = _q


# --------------------------------------------------------------------------- reading


def parse_headers(text: str) -> dict[str, Any]:
    """Parse a header block (no trailing newline, already valid UTF-8)."""
    lines = text.split("\n")
    result: dict[str, Any] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        colon = line.find(":")
        if colon < 0:
            raise AssertionFormatError(f"header entry missing ':' separator: {_q(line)}")
        name = line[:colon]
        if not valid_name(name):
            raise AssertionFormatError(f"invalid header name: {_q(name)}")
        value, i = _parse_entry(line[: colon + 1], i, lines, 0)
        if name in result:
            raise AssertionFormatError(f"repeated header: {_q(name)}")
        result[name] = value
    return result


def _parse_entry(intro: str, first: int, lines: list[str], base: int) -> tuple[Any, int]:
    entry = lines[first]
    rest = entry[len(intro) :]
    if rest:
        if rest[0] != " ":
            raise AssertionFormatError(
                f"header entry should have a space or newline (for multiline) before value: "
                f"{_q(entry)}"
            )
        return rest[1:], first + 1
    nxt = first + 1
    if nxt < len(lines):
        line = lines[nxt]
        inner = " " * (base + 2)
        if line.startswith(inner + "-"):
            return _parse_list(nxt, lines, base)
        if line.startswith(inner) and len(line) > len(inner) and line[len(inner)] != " ":
            return _parse_map(nxt, lines, base)
    return _parse_multiline(intro, nxt, lines, base)


def _parse_multiline(intro: str, first: int, lines: list[str], base: int) -> tuple[str, int]:
    prefix = " " * (base + 4)
    i = first
    parts: list[str] = []
    while i < len(lines) and lines[i].startswith(prefix):
        parts.append(lines[i][len(prefix) :])
        i += 1
    if not parts:
        raise AssertionFormatError(
            f"expected {len(prefix)} chars nesting prefix after multiline introduction {_q(intro)}"
        )
    return "\n".join(parts), i


def _parse_list(first: int, lines: list[str], base: int) -> tuple[list[Any], int]:
    prefix = " " * (base + 2) + "-"
    i = first
    items: list[Any] = []
    while i < len(lines) and lines[i].startswith(prefix):
        value, i = _parse_entry(prefix, i, lines, base + 2)
        items.append(value)
    return items, i


def _parse_map(first: int, lines: list[str], base: int) -> tuple[dict[str, Any], int]:
    prefix = " " * (base + 2)
    i = first
    result: dict[str, Any] = {}
    while i < len(lines):
        line = lines[i]
        if not line.startswith(prefix) or len(line) == len(prefix) or line[len(prefix)] == " ":
            break
        if line[len(prefix)] == "-":
            raise AssertionFormatError(f"map entry cannot start with '-': {_q(line)}")
        colon = line.find(":", len(prefix))
        if colon < 0:
            raise AssertionFormatError(f"map entry missing ':' separator: {_q(line)}")
        key = line[len(prefix) : colon]
        if not valid_name(key):
            raise AssertionFormatError(f"invalid map entry key: {_q(key)}")
        value, i = _parse_entry(line[: colon + 1], i, lines, base + 2)
        if key in result:
            raise AssertionFormatError(f"repeated map entry: {_q(key)}")
        result[key] = value
    return result, i


# --------------------------------------------------------------------------- writing


def go_repr(value: Any) -> str:
    """How Go's ``%v`` shows a JSON-decoded value (for snap-compatible messages)."""
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value).replace("inf", "+Inf")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(go_repr(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_repr(value[k])}" for k in sorted(value)) + "]"
    return repr(value)


def check_value(name: str, value: Any, *, check_names: bool = True) -> None:
    """Raise unless *value* is a string or nested lists/maps of strings."""
    if isinstance(value, str):
        return
    if isinstance(value, list):
        for item in value:
            _check_nested(name, value, item, check_names)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or (check_names and not valid_name(key)):
                raise AssertionFormatError(
                    f"header {_q(name)}: invalid map entry key: {_q(str(key))}",
                    hint="keys are lowercase letters and digits with single inner hyphens",
                )
            _check_nested(name, value, item, check_names)
        return
    raise AssertionFormatError(f"header {_q(name)}: {_SCALARS_ONLY}: {go_repr(value)}")


def _check_nested(name: str, top: Any, value: Any, check_names: bool) -> None:
    if isinstance(value, str | list | Mapping):
        check_value(name, value, check_names=check_names)
        return
    raise AssertionFormatError(f"header {_q(name)}: {_SCALARS_ONLY}: {go_repr(value)}")


def prune(value: Any) -> Any:
    """Drop empty lists and maps (the writer omits them), recursively; None if empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        items = [p for p in (prune(v) for v in value) if p is not None]
        return items or None
    if isinstance(value, Mapping):
        entries = {k: p for k, p in ((k, prune(v)) for k, v in value.items()) if p is not None}
        return entries or None
    return value


def append_entry(out: list[str], intro: str, value: Any, base: int) -> None:
    """Append the text of one entry (each piece starts with a newline)."""
    if isinstance(value, str):
        if "\n" not in value:
            out.append(f"\n{intro} {value}")
        else:
            pad = " " * (base + 4)
            out.append(f"\n{intro}\n{pad}" + value.replace("\n", "\n" + pad))
        return
    if isinstance(value, list):
        if not value:
            return
        out.append("\n" + intro)
        for item in value:
            append_entry(out, " " * base + "  -", item, base + 2)
        return
    if isinstance(value, Mapping):
        if not value:
            return
        out.append("\n" + intro)
        for key in sorted(value, key=lambda k: k.encode()):
            append_entry(out, " " * base + "  " + key + ":", value[key], base + 2)
        return
    raise AssertionFormatError(f"{_SCALARS_ONLY}: {go_repr(value)}")
