"""Header checks shared by the type rules, with snapd's error wording.

Every function raises :class:`AssertionFormatError` with a message like
``"timestamp" header is mandatory``; callers add the type prefix.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from ucimage.assertions.errors import AssertionFormatError
from ucimage.assertions.headers import go_repr, quote

_RFC3339_LAYOUT = "2006-01-02T15:04:05Z07:00"
_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)


def fail(message: str, hint: str | None = None) -> AssertionFormatError:
    return AssertionFormatError(message, hint=hint)


def _go_time_error(value: str) -> str:
    """Mimic Go's ``time.Parse(time.RFC3339, value)`` error text."""
    # walk the layout elements the way Go reports the first mismatch
    elements: list[tuple[str, str]] = [
        ("2006", r"\d{4}"),
        ("-", "-"),
        ("01", r"\d{2}"),
        ("-", "-"),
        ("02", r"\d{2}"),
        ("T", "T"),
        ("15", r"\d{2}"),
        (":", ":"),
        ("04", r"\d{2}"),
        (":", ":"),
        ("05", r"\d{2}(?:\.\d+)?"),
        ("Z07:00", r"(?:Z|[+-]\d{2}:\d{2})"),
    ]
    pos = 0
    prefix = f"parsing time {quote(value)} as {quote(_RFC3339_LAYOUT)}: "
    for elem, pattern in elements:
        m = re.compile(pattern).match(value, pos)
        if m is None:
            return prefix + f"cannot parse {quote(value[pos:])} as {quote(elem)}"
        pos = m.end()
    if pos != len(value):
        return f"parsing time {quote(value)}: extra text: {quote(value[pos:])}"
    return f"parsing time {quote(value)}: value out of range"


def parse_rfc3339(value: str) -> dt.datetime:
    """Strict RFC 3339 as Go's ``time.RFC3339`` parser accepts it; ValueError with Go's text."""
    m = _TS_RE.match(value)
    if m is None:
        raise ValueError(_go_time_error(value))
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or ""
    zone = m.group(8)
    if not 1 <= month <= 12:
        raise ValueError(f"parsing time {quote(value)}: month out of range")
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"parsing time {quote(value)}: hour/minute/second out of range")
    if zone == "Z":
        tz = dt.UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        hh, mm = int(zone[1:3]), int(zone[4:6])
        if hh > 23 or mm > 59:
            raise ValueError(f"parsing time {quote(value)}: time zone offset out of range")
        tz = dt.timezone(sign * dt.timedelta(hours=hh, minutes=mm))
    micro = int((frac + "000000")[:6]) if frac else 0
    try:
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        raise ValueError(f"parsing time {quote(value)}: day out of range") from None


def format_rfc3339(when: dt.datetime) -> str:
    """Seconds-precision UTC RFC 3339 (``2024-01-02T03:04:05Z``), as snap writes ``since``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exists(headers: Mapping[str, Any], name: str) -> Any:
    if name not in headers:
        raise fail(f"{quote(name)} header is mandatory")
    return headers[name]


def optional_string(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"{quote(name)} header must be a string")
    return value


def string(headers: Mapping[str, Any], name: str) -> str:
    value = exists(headers, name)
    if not isinstance(value, str):
        raise fail(f"{quote(name)} header must be a string")
    return value


def not_empty_string(headers: Mapping[str, Any], name: str) -> str:
    value = string(headers, name)
    if not value:
        raise fail(f"{quote(name)} header should not be empty")
    return value


def _atoi(value: str, what: str) -> int:
    """Go's strconv.Atoi plus snapd's no-prefix-zeros rule."""
    if not re.fullmatch(r"[+-]?\d+", value) or len(value) > 19:
        raise fail(f"{what} is not an integer: {value}")
    digits = value.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0":
        raise fail(f"{what} has invalid prefix zeros: {value}")
    return int(value)


def int_value(headers: Mapping[str, Any], name: str) -> int:
    value = exists(headers, name)
    if not isinstance(value, str):
        raise fail(f"{quote(name)} header is not an integer: {go_repr(value)}")
    return _atoi(value, f"{quote(name)} header")


def int_with_default(headers: Mapping[str, Any], name: str, default: int) -> int:
    if name not in headers:
        return default
    return int_value(headers, name)


def uint_value(headers: Mapping[str, Any], name: str) -> int:
    value = exists(headers, name)
    if not isinstance(value, str) or not re.fullmatch(r"\d+", value):
        raise fail(f"{quote(name)} header is not an unsigned integer: {value}")
    if len(value) > 1 and value[0] == "0":
        raise fail(f"{quote(name)} header has invalid prefix zeros: {value}")
    number = int(value)
    if number >= 1 << 64:
        raise fail(f"{quote(name)} header is out of range: {value}")
    return number


def digest_value(headers: Mapping[str, Any], name: str) -> bytes:
    """A ``*-sha3-384`` header: base64url without padding of 48 bytes."""
    value = not_empty_string(headers, name)
    return decode_digest(value, name)


def decode_digest(value: str, name: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", value) or len(value) % 4 == 1:
        raise fail(f"{quote(name)} header cannot be decoded: illegal base64 data")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise fail(f"{quote(name)} header cannot be decoded: {exc}") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != value:
        raise fail(f"{quote(name)} header cannot be decoded: non-canonical base64")
    if len(raw) != 48:
        raise fail(f"{quote(name)} header does not have the expected bit length: {len(raw) * 8}")
    return raw


def rfc3339(headers: Mapping[str, Any], name: str) -> dt.datetime:
    value = not_empty_string(headers, name)
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise fail(
            f"{quote(name)} header is not a RFC3339 date: {exc}",
            hint="write it like 2024-01-02T03:04:05Z",
        ) from None


def optional_rfc3339(headers: Mapping[str, Any], name: str) -> dt.datetime | None:
    if name not in headers:
        return None
    return rfc3339(headers, name)


def optional_bool(headers: Mapping[str, Any], name: str) -> bool:
    value = headers.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise fail(f"{quote(name)} header must be 'true' or 'false'")
    return bool(value == "true")


def string_list(
    headers: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None
) -> list[str]:
    """An optional list of strings (missing or empty is an empty list)."""
    value = headers.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(f"{quote(name)} header must be a list of strings")
    for item in value:
        if not isinstance(item, str):
            raise fail(f"{quote(name)} header must be a list of strings")
        if pattern is not None and not pattern.match(item):
            raise fail(f"{quote(name)} header contains an invalid element: {quote(item)}")
    return list(value)


def primary_key(headers: Mapping[str, Any], name: str) -> str:
    value = not_empty_string(headers, name)
    if "/" in value:
        raise fail(f"{quote(name)} primary key header cannot contain '/'")
    return value
