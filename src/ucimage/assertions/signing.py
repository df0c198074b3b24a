"""Signing: headers (or ``snap sign`` JSON) in, a signed :class:`Assertion` out (§2.8)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from ucimage.assertions import checks, rules
from ucimage.assertions.codec import Assertion, assemble_content, decode
from ucimage.assertions.crypto import PrivateKey, PublicKey
from ucimage.assertions.errors import AssertionFormatError, AssertionVerifyError
from ucimage.assertions.headers import check_value, prune, quote, valid_name
from ucimage.assertions.types import lookup

_NAME_HINT = (
    "header names are lowercase letters and digits with single inner hyphens, e.g. brand-id"
)


def sign(
    headers: Mapping[str, Any],
    body: bytes | str = b"",
    key: PrivateKey | None = None,
    *,
    when: dt.datetime | None = None,
    style: str = "snapd",
) -> Assertion:
    """Sign *headers* and *body* with *key*, as ``snap sign`` does, but stricter.

    ``type``, ``body-length`` and ``sign-key-sha3-384`` are filled in (supplied
    values are overwritten); nothing else is: a model needs its ``timestamp``.
    Header values must be strings, lists or maps; empty lists/maps are dropped.
    *when* is the signature creation time (default now); *style* ``"gnupg"``
    reproduces the subpackets GnuPG writes for ``snap sign``.  Raises
    :class:`AssertionFormatError` with snapd's wording.
    """
    if key is None:
        raise TypeError("sign() needs a key")
    for name, value in headers.items():
        check_value(str(name), value)
    if "type" not in headers:
        raise AssertionFormatError("missing assertion type header")
    tname = headers["type"]
    if not isinstance(tname, str):
        raise AssertionFormatError('"type" header must be a string')
    atype = lookup(tname)
    if atype is None:
        raise AssertionFormatError(f"invalid assertion type: {tname}")
    for name in headers:
        if not valid_name(name):
            raise AssertionFormatError(f"invalid header name: {quote(name)}", hint=_NAME_HINT)
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise AssertionFormatError("assertion body is not valid UTF-8") from None

    work: dict[str, Any] = {}
    for name, value in headers.items():
        if name in ("type", "body-length", "sign-key-sha3-384"):
            continue
        pruned = prune(value)
        if pruned is not None:
            work[name] = pruned

    if atype.has_authority:
        checks.not_empty_string(work, "authority-id")
    elif "authority-id" in work:
        raise AssertionFormatError(f"{quote(tname)} assertion cannot have authority-id set")
    fmt = checks.int_with_default(work, "format", 0)
    if fmt > atype.max_format:
        raise AssertionFormatError(
            f"cannot sign {quote(tname)} assertion with format {fmt} higher than max supported "
            f"format {atype.max_format}"
        )
    if fmt < 0:
        raise AssertionFormatError(f"format should be positive: {fmt}")
    needed = rules.min_format(tname, work)
    if fmt < needed:
        raise AssertionFormatError(
            f"cannot sign {quote(tname)} assertion with format set to {fmt} lower than min "
            f"format {needed} covering included features",
            hint=f'add "format": "{needed}"',
        )
    rev = checks.int_with_default(work, "revision", 0)
    if rev < 0:
        raise AssertionFormatError(f"revision should be positive: {rev}")
    for name in atype.primary_key:
        if name in atype.optional_primary_key and name not in work:
            continue
        checks.primary_key(work, name)

    work["type"] = tname
    if body:
        work["body-length"] = str(len(body))
    work["sign-key-sha3-384"] = key.id
    try:
        rules.validate(tname, work, body, fmt)
    except AssertionFormatError as exc:
        hint = exc.hint
        if '"timestamp" header is mandatory' in exc.message:
            now = checks.format_rfc3339(dt.datetime.now(dt.UTC))
            hint = f'add "timestamp": "{now}" (signing never fills it in)'
        raise AssertionFormatError(
            f"cannot assemble assertion {tname}: {exc.message}", hint=hint
        ) from None
    content = assemble_content(atype, work, body)
    signature = key.sign(content, when=when, style=style)
    try:
        key.public_key().verify(content, signature)
    except AssertionVerifyError:
        raise AssertionFormatError(
            "the new signature does not verify: the private key is corrupted"
        ) from None
    return decode(content + b"\n\n" + signature.encode().encode("ascii") + b"\n")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise AssertionFormatError(
                f"duplicate key {quote(name)} in JSON input",
                hint="snap sign silently keeps the last one; say what you mean once",
            )
        result[name] = value
    return result


def headers_from_json(data: bytes | str) -> tuple[dict[str, Any], bytes]:
    """Parse ``snap sign`` JSON input into (headers, body)."""
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise AssertionFormatError(
            f"cannot parse JSON input: {exc}",
            hint="the input is a JSON object of headers (YAML is not accepted)",
        ) from None
    except RecursionError:
        raise AssertionFormatError("cannot parse JSON input: nested too deeply") from None
    if not isinstance(obj, dict):
        raise AssertionFormatError("JSON input must be an object of headers")
    body = b""
    if "body" in obj:
        value = obj.pop("body")
        if not isinstance(value, str):
            raise AssertionFormatError("body if specified must be a string")
        body = value.encode("utf-8")
    return obj, body


def sign_json(
    data: bytes | str,
    key: PrivateKey,
    *,
    when: dt.datetime | None = None,
    style: str = "snapd",
) -> Assertion:
    """``snap sign``: a JSON object of headers (plus optional ``body``) in, assertion out."""
    headers, body = headers_from_json(data)
    return sign(headers, body, key, when=when, style=style)


def account_key_request(
    key: PrivateKey,
    account_id: str,
    name: str,
    *,
    since: dt.datetime | None = None,
    when: dt.datetime | None = None,
) -> Assertion:
    """What ``snap export-key --account=ID NAME`` prints: a self-signed account-key-request."""
    start = since or dt.datetime.now(dt.UTC)
    headers = {
        "type": "account-key-request",
        "account-id": account_id,
        "name": name,
        "public-key-sha3-384": key.id,
        "since": checks.format_rfc3339(start),
    }
    return sign(headers, key.public_key().encode().encode(), key, when=when)


def account_key(
    authority_key: PrivateKey,
    authority_id: str,
    account_id: str,
    public_key: PublicKey,
    *,
    name: str | None = None,
    since: str | None = None,
    until: str | None = None,
    revision: int = 0,
    when: dt.datetime | None = None,
) -> Assertion:
    """An account-key for *public_key* of *account_id*, signed by *authority_key*.

    A self-signed one (authority key == the key, authority == account) is how a
    brand or self-hosted store becomes a root of its own (use it with ``--trusted``).
    """
    headers: dict[str, Any] = {
        "type": "account-key",
        "authority-id": authority_id,
        "account-id": account_id,
        "public-key-sha3-384": public_key.id,
        "since": since or checks.format_rfc3339(dt.datetime.now(dt.UTC)),
    }
    if name:
        headers["name"] = name
    if until:
        headers["until"] = until
    if revision:
        headers["revision"] = str(revision)
    return sign(headers, public_key.encode().encode(), authority_key, when=when)


def account(
    authority_key: PrivateKey,
    authority_id: str,
    account_id: str,
    *,
    display_name: str | None = None,
    username: str | None = None,
    validation: str = "unproven",
    timestamp: str | None = None,
    revision: int = 0,
    when: dt.datetime | None = None,
) -> Assertion:
    """An account assertion for *account_id*, signed by *authority_key*."""
    headers: dict[str, Any] = {
        "type": "account",
        "authority-id": authority_id,
        "account-id": account_id,
        "display-name": display_name or account_id,
        "validation": validation,
        "timestamp": timestamp or checks.format_rfc3339(dt.datetime.now(dt.UTC)),
    }
    if username:
        headers["username"] = username
    if revision:
        headers["revision"] = str(revision)
    return sign(headers, b"", authority_key, when=when)
