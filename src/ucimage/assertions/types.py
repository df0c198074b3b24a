"""The assertion types snapd knows: primary keys, authority, maximum format (§4.0)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AssertionType:
    name: str
    primary_key: tuple[str, ...]
    max_format: int = 0
    #: False for the self-signed types that must not carry authority-id
    has_authority: bool = True
    #: optional primary-key headers and their defaults (omitted from the text when default)
    optional_primary_key: dict[str, str] = field(default_factory=dict)
    #: the last primary-key header is a sequence number
    sequence_forming: bool = False
    #: has a ``timestamp`` header the signing key must be valid at
    has_timestamp: bool = False


_TYPES = [
    AssertionType("account", ("account-id",), has_timestamp=True),
    AssertionType("account-key", ("public-key-sha3-384",), max_format=1),
    AssertionType("model", ("series", "brand-id", "model"), has_timestamp=True),
    AssertionType("serial", ("brand-id", "model", "serial"), has_timestamp=True),
    AssertionType("snap-declaration", ("series", "snap-id"), max_format=6, has_timestamp=True),
    AssertionType(
        "snap-revision",
        ("snap-sha3-384", "provenance"),
        optional_primary_key={"provenance": "global-upload"},
        has_timestamp=True,
    ),
    AssertionType("snap-build", ("snap-sha3-384",), has_timestamp=True),
    AssertionType("snap-developer", ("snap-id", "publisher-id")),
    AssertionType("system-user", ("brand-id", "email"), max_format=2),
    AssertionType(
        "validation",
        ("series", "snap-id", "approved-snap-id", "approved-snap-revision"),
        has_timestamp=True,
    ),
    AssertionType(
        "validation-set",
        ("series", "account-id", "name", "sequence"),
        sequence_forming=True,
        has_timestamp=True,
    ),
    AssertionType("base-declaration", ("series",), has_timestamp=True),
    AssertionType("repair", ("brand-id", "repair-id"), sequence_forming=True, has_timestamp=True),
    AssertionType("store", ("store",), has_timestamp=True),
    AssertionType("preseed", ("series", "brand-id", "model", "system-label"), has_timestamp=True),
    AssertionType("account-key-request", ("public-key-sha3-384",), has_authority=False),
    AssertionType("serial-request", (), has_authority=False),
    AssertionType("device-session-request", ("brand-id", "model", "serial"), has_authority=False),
]

TYPES: dict[str, AssertionType] = {t.name: t for t in _TYPES}


def lookup(name: str) -> AssertionType | None:
    return TYPES.get(name)


def generic(name: str) -> AssertionType:
    """A stand-in for a type we do not know: decoded generically, no primary key."""
    return AssertionType(name, (), max_format=1 << 30)
