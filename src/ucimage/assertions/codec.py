"""Decoding and encoding assertions and streams, byte for byte as snapd (§1).

An assertion on the wire is ``HEADERS ["\\n\\n" BODY] "\\n\\n" SIGNATURE``; the
signed *content* is everything before the last blank line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ucimage.assertions import checks, rules
from ucimage.assertions.errors import AssertionFormatError
from ucimage.assertions.headers import append_entry, parse_headers, quote
from ucimage.assertions.types import AssertionType, generic, lookup

MAX_HEADERS_SIZE = 128 * 1024
MAX_BODY_SIZE = 2 * 1024 * 1024
MAX_SIGNATURE_SIZE = 128 * 1024

#: media type of assertion streams over HTTP
MEDIA_TYPE = "application/x.ubuntu.assertion"


@dataclass(frozen=True)
class Ref:
    """Names one assertion: its type and primary key (what the store serves under a URL)."""

    type: str
    primary_key: tuple[str, ...]

    @property
    def path(self) -> str:
        """``<type>/<pk1>/<pk2>…``, as in ``/v2/assertions/<path>``."""
        return "/".join((self.type, *self.primary_key))

    def __str__(self) -> str:
        return f"{self.type} {'/'.join(self.primary_key)}"


class Assertion:
    """One decoded, immutable assertion.  Build one with :func:`decode` or ``sign``."""

    __slots__ = ("_body", "_content", "_headers", "_signature", "_type")

    def __init__(
        self,
        headers: dict[str, Any],
        body: bytes,
        content: bytes,
        signature: bytes,
        atype: AssertionType,
    ) -> None:
        self._headers = headers
        self._body = body
        self._content = content
        self._signature = signature
        self._type = atype

    # ---- the parts
    @property
    def type(self) -> str:
        return self._type.name

    @property
    def type_info(self) -> AssertionType:
        return self._type

    @property
    def known_type(self) -> bool:
        return lookup(self._type.name) is not None

    @property
    def headers(self) -> dict[str, Any]:
        """The parsed headers (do not mutate: they are signed)."""
        return self._headers

    @property
    def body(self) -> bytes:
        return self._body

    @property
    def content(self) -> bytes:
        """The signed bytes: headers, plus ``\\n\\n`` and the body when there is one."""
        return self._content

    @property
    def signature(self) -> bytes:
        """The encoded signature text as on the wire (with its trailing ``\\n`` if any)."""
        return self._signature

    def header(self, name: str) -> Any:
        """A header's value, or None when absent."""
        return self._headers.get(name)

    # ---- derived
    @property
    def primary_key(self) -> tuple[str, ...]:
        atype = self._type
        values = []
        for name in atype.primary_key:
            value = self._headers.get(name, atype.optional_primary_key.get(name))
            values.append(str(value))
        return tuple(values)

    @property
    def ref(self) -> Ref:
        return Ref(self.type, self.primary_key)

    @property
    def sign_key_id(self) -> str:
        return str(self._headers.get("sign-key-sha3-384", ""))

    @property
    def authority_id(self) -> str | None:
        value = self._headers.get("authority-id")
        return value if isinstance(value, str) else None

    @property
    def revision(self) -> int:
        return int(self._headers.get("revision", "0"))

    @property
    def format(self) -> int:
        return int(self._headers.get("format", "0"))

    @property
    def timestamp(self) -> dt.datetime | None:
        value = self._headers.get("timestamp")
        if not isinstance(value, str):
            return None
        try:
            return checks.parse_rfc3339(value)
        except ValueError:
            return None

    def encode(self) -> bytes:
        """The exact bytes: content + ``\\n\\n`` + signature."""
        return self._content + b"\n\n" + self._signature

    def canonical_content(self) -> bytes:
        """The content re-built from the parsed headers in snapd's canonical order."""
        return assemble_content(self._type, self._headers, self._body)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Assertion) and self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.encode())

    def __repr__(self) -> str:
        return f"<Assertion {self.type} {'/'.join(self.primary_key)}>"

    def __str__(self) -> str:
        return f"{self.type} {'/'.join(self.primary_key)}"


# --------------------------------------------------------------------------- encoding


def assemble_content(atype: AssertionType, headers: Mapping[str, Any], body: bytes) -> bytes:
    """Headers in canonical order (§1.5) plus the body: the bytes that get signed."""
    out: list[str] = ["type: " + atype.name]
    done = {"type", "body-length", "sign-key-sha3-384"}
    fmt = headers.get("format")
    if fmt is not None and fmt != "0":
        append_entry(out, "format:", fmt, 0)
    done.add("format")
    if "authority-id" in headers:
        append_entry(out, "authority-id:", headers["authority-id"], 0)
    done.add("authority-id")
    rev = headers.get("revision")
    if rev is not None and rev != "0":
        append_entry(out, "revision:", rev, 0)
    done.add("revision")
    for name in atype.primary_key:
        done.add(name)
        if name not in headers:
            continue
        if atype.optional_primary_key.get(name) == headers[name]:
            continue
        append_entry(out, name + ":", headers[name], 0)
    for name in sorted((n for n in headers if n not in done), key=lambda n: n.encode()):
        append_entry(out, name + ":", headers[name], 0)
    if body:
        out.append(f"\nbody-length: {len(body)}")
    if "sign-key-sha3-384" in headers:
        append_entry(out, "sign-key-sha3-384:", headers["sign-key-sha3-384"], 0)
    text = "".join(out).encode("utf-8")
    if body:
        text += b"\n\n" + body
    return text


def encode_stream(assertions: Iterable[Assertion]) -> bytes:
    """Assertions separated by one blank line, each ending in ``\\n`` (snapd's Encoder)."""
    parts = []
    for a in assertions:
        data = a.encode()
        if not data.endswith(b"\n"):
            data += b"\n"
        parts.append(data)
    return b"\n".join(parts)


# --------------------------------------------------------------------------- decoding


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _parse_header_block(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_HEADERS_SIZE:
        raise AssertionFormatError(f"header too big: {len(raw)} bytes (max {MAX_HEADERS_SIZE})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AssertionFormatError("header is not utf8") from None
    return parse_headers(text)


def decode(data: bytes | str) -> Assertion:
    """Decode one assertion (a single file's bytes); raises :class:`AssertionFormatError`."""
    raw = _as_bytes(data)
    sep = raw.rfind(b"\n\n")
    if sep < 0:
        raise AssertionFormatError("assertion content/signature separator not found")
    content, signature = raw[:sep], raw[sep + 2 :]
    split = content.find(b"\n\n")
    if split < 0:
        head, body = content, b""
    else:
        head, body = content[:split], content[split + 2 :]
    headers = _parse_header_block(head)
    if len(body) > MAX_BODY_SIZE:
        raise AssertionFormatError(f"body too big: {len(body)} bytes (max {MAX_BODY_SIZE})")
    if len(signature) > MAX_SIGNATURE_SIZE:
        raise AssertionFormatError(f"signature too big: {len(signature)} bytes")
    return assemble(headers, body, content, signature)


def decode_stream(data: bytes | str) -> list[Assertion]:
    """Decode a stream the way snapd's ``asserts.Decoder`` does (§1.3).

    Each assertion is its headers, ``\n\n``, the body (``body-length`` bytes) and
    ``\n\n`` when it has one, then the signature up to the next ``\n\n`` (the
    separator from the next assertion) or the end.  So assertions are separated by
    exactly one blank line, and the stream may end right after a signature, after
    its ``\n``, or after one more blank line; any other blank line is an error (an
    empty header line), as it is for snapd.  An empty stream has no assertions.
    """
    raw = _as_bytes(data)
    out: list[Assertion] = []
    pos = 0
    while pos < len(raw):
        number = len(out) + 1
        try:
            a, pos = _decode_one(raw, pos)
        except AssertionFormatError as exc:
            if number == 1:
                raise
            raise AssertionFormatError(
                f"assertion {number} of the stream: {exc.message}", hint=exc.hint
            ) from None
        out.append(a)
    return out


def _decode_one(raw: bytes, pos: int) -> tuple[Assertion, int]:
    """One assertion of a stream at *pos*; returns it and where the next one starts."""
    hend = raw.find(b"\n\n", pos)
    if hend < 0 or hend + 2 - pos > MAX_HEADERS_SIZE:
        if len(raw) - pos > MAX_HEADERS_SIZE:
            raise AssertionFormatError(f"header too big (max {MAX_HEADERS_SIZE} bytes)")
        if not raw[pos:].strip(b"\n"):
            raise AssertionFormatError(
                "unexpected end of data: more than one blank line at the end of the stream"
            )
        raise AssertionFormatError(
            "content/signature separator not found (unexpected end of data after the headers)"
        )
    head = raw[pos:hend]
    if not head or head.startswith(b"\n"):
        raise AssertionFormatError(
            "header entry missing ':' separator: \"\" (more than one blank line between assertions)"
        )
    headers = _parse_header_block(head)
    try:
        length = checks.int_with_default(headers, "body-length", 0)
    except AssertionFormatError as exc:
        raise AssertionFormatError(f"assertion: {exc.message}") from None
    if length < 0:
        raise AssertionFormatError(f'assertion: "body-length" header is negative: {length}')
    if length > MAX_BODY_SIZE:
        raise AssertionFormatError(f"body too big: {length} bytes (max {MAX_BODY_SIZE})")
    cur = hend + 2
    body = raw[cur : cur + length]
    if len(body) < length:
        raise AssertionFormatError(
            f"unexpected EOF: body has {len(body)} of its {length} bytes (body-length)"
        )
    cur += length
    # what follows the body (or the headers) up to the next blank line
    sep = raw.find(b"\n\n", cur)
    after, nxt = (raw[cur : sep + 2], sep + 2) if sep >= 0 else (raw[cur:], len(raw))
    if after == b"\n\n":
        # the content/signature separator: the signature comes next
        content = raw[pos:cur]
        sep = raw.find(b"\n\n", nxt)
        signature, nxt = (raw[nxt : sep + 2], sep + 2) if sep >= 0 else (raw[nxt:], len(raw))
    elif length > 0:
        if not after.strip(b"\n"):
            raise AssertionFormatError("unexpected EOF: no signature after the body")
        raise AssertionFormatError(
            f"missing content/signature separator after the {length}-byte body (wrong body-length?)"
        )
    else:
        # no body: the blank line after the headers was the content/signature separator
        content, signature = head, after
    if signature.endswith(b"\n\n"):
        signature = signature[:-1]
    if len(signature) > MAX_SIGNATURE_SIZE:
        raise AssertionFormatError(f"signature too big (max {MAX_SIGNATURE_SIZE} bytes)")
    return assemble(headers, body, content, signature), nxt


def assemble(headers: dict[str, Any], body: bytes, content: bytes, signature: bytes) -> Assertion:
    """The common checks of every decoded assertion, then its type's rules (§1.2 step 3)."""
    try:
        length = checks.int_with_default(headers, "body-length", 0)
        if length != len(body):
            raise AssertionFormatError(
                f"assertion body length and declared body-length don't match: "
                f"{len(body)} != {length}"
            )
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise AssertionFormatError("body is not utf8") from None
        checks.digest_value(headers, "sign-key-sha3-384")
        tname = checks.not_empty_string(headers, "type")
    except AssertionFormatError as exc:
        raise _prefixed("assertion", exc) from None
    atype = lookup(tname) or generic(tname)
    known = lookup(tname) is not None
    try:
        if known and atype.has_authority:
            checks.not_empty_string(headers, "authority-id")
        elif known and "authority-id" in headers:
            raise AssertionFormatError(f"{quote(tname)} assertion cannot have authority-id set")
        fmt = checks.int_with_default(headers, "format", 0)
        if fmt < 0:
            raise AssertionFormatError(f"format should be positive: {fmt}")
    except AssertionFormatError as exc:
        raise _prefixed("assertion", exc) from None
    try:
        for name in atype.primary_key:
            if name in atype.optional_primary_key and name not in headers:
                continue
            checks.primary_key(headers, name)
    except AssertionFormatError as exc:
        raise _prefixed(f"assertion {tname}", exc) from None
    try:
        rev = checks.int_with_default(headers, "revision", 0)
        if rev < 0:
            raise AssertionFormatError(f"revision should be positive: {rev}")
    except AssertionFormatError as exc:
        raise _prefixed("assertion", exc) from None
    if not signature.strip():
        raise AssertionFormatError("empty assertion signature")
    if known:
        try:
            rules.validate(tname, headers, body, fmt)
        except AssertionFormatError as exc:
            raise _prefixed(f"assertion {tname}", exc) from None
    return Assertion(headers, body, content, signature, atype)


def _prefixed(prefix: str, exc: AssertionFormatError) -> AssertionFormatError:
    return AssertionFormatError(f"{prefix}: {exc.message}", hint=exc.hint)
