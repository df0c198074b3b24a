"""Per-type header rules (``docs/assertions.md`` §4), with snapd's error wording.

Each validator raises :class:`AssertionFormatError` with an unprefixed message;
the decoder adds ``assertion TYPE: `` and the signer ``cannot assemble assertion TYPE: ``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ucimage.assertions import checks
from ucimage.assertions.checks import fail
from ucimage.assertions.crypto import PublicKey
from ucimage.assertions.errors import AssertionFormatError
from ucimage.assertions.headers import quote
from ucimage.naming import SNAP_NAME_RE, valid_snap_name

Headers = Mapping[str, Any]

ACCOUNT_ID_RE = re.compile(r"^(?:[a-z0-9A-Z]{32}|[-a-z0-9]{2,28})$")
KEY_NAME_RE = SNAP_NAME_RE
MODEL_RE = re.compile(r"^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$")
SNAP_ID_RE = re.compile(r"^[a-z0-9A-Z]{32}$")
MODE_RE = re.compile(r"^[a-z][-a-z]+$")
VSET_NAME_RE = re.compile(r"^[a-z0-9](?:-?[a-z0-9])*$")
DISTRIBUTION_RE = re.compile(r"^[a-z0-9._-]*$")
PROVENANCE_RE = re.compile(r"^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$")
USERNAME_RE = re.compile(r"^[a-z0-9][-a-z0-9._]*$")
RISKS = ("stable", "candidate", "beta", "edge")
SNAP_TYPES = ("app", "base", "gadget", "kernel", "core", "snapd")

#: snap ids of the well-known snaps (snapd ``snap/naming/wellknown.go``)
WELL_KNOWN_SNAP_IDS = {
    "core": "99T7MUlRhtI3U0QFgl5mXXESAiSwt776",
    "snapd": "PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4",
    "core18": "CSO04Jhav2yK0uz97cr0ipQRyqg0qQL6",
    "core20": "DLqre5XGLbDqg9jPtiAhRRjDuPVa5X1q",
    "core22": "amcUKQILKXHHTlmSa7NMdnXSx02dNeeT",
    "core24": "dwTAh7MZZ01zyriOZErqd1JynQLiOGvM",
}


def check_snap_name(name: str) -> None:
    if not valid_snap_name(name):
        raise fail(f"invalid snap name: {quote(name)}")


def parse_channel(channel: str) -> tuple[str, str, str]:
    """(track, risk, branch) of a channel, as snapd's ``ParseVerbatim``; ValueError if bad."""
    if not channel:
        raise ValueError("channel name cannot be empty")
    parts = channel.split("/")
    if any(not p for p in parts):
        raise ValueError(f"invalid channel name: {channel}")
    if len(parts) > 3:
        raise ValueError(f"channel name has too many components: {channel}")
    track = risk = branch = ""
    if len(parts) == 1:
        if parts[0] in RISKS:
            risk = parts[0]
        else:
            track = parts[0]
    elif len(parts) == 2:
        if parts[0] in RISKS:
            risk, branch = parts
        else:
            track, risk = parts
    else:
        track, risk, branch = parts
    if risk and risk not in RISKS:
        raise ValueError(f"invalid risk in channel name: {channel}")
    return track, risk, branch


def _account_ids(headers: Headers, name: str) -> list[str]:
    value = headers.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(f"{quote(name)} header must be a list of account ids")
    for item in value:
        if not ACCOUNT_ID_RE.match(item):
            raise fail(f"{quote(name)} header must be a list of account ids")
    return list(value)


def _public_key_body(body: bytes, what: str = "public key") -> PublicKey:
    if not body:
        raise fail("expected public key, not empty body")
    try:
        return PublicKey.decode(body)
    except AssertionFormatError as exc:
        raise fail(exc.message.replace("public key", what, 1)) from None


def _check_until(headers: Headers) -> None:
    since = checks.rfc3339(headers, "since")
    until = checks.optional_rfc3339(headers, "until")
    if until is not None and until < since:
        raise fail("'until' time cannot be before 'since' time")


# --------------------------------------------------------------------------- accounts and keys


def _account(h: Headers, body: bytes, fmt: int) -> None:
    checks.not_empty_string(h, "display-name")
    checks.not_empty_string(h, "validation")
    checks.optional_string(h, "username")
    checks.rfc3339(h, "timestamp")


def _key_name(h: Headers, required: bool) -> None:
    if "name" not in h and not required:
        return
    name = checks.not_empty_string(h, "name")
    if not KEY_NAME_RE.match(name):
        raise fail(f'"name" header contains invalid characters: {quote(name)}')


def _account_key(h: Headers, body: bytes, fmt: int) -> None:
    checks.not_empty_string(h, "account-id")
    _key_name(h, required=False)
    _check_until(h)
    key = _public_key_body(body)
    if key.id != h["public-key-sha3-384"]:
        raise fail("public key does not match provided key id")
    if "constraints" in h:
        if fmt < 1:
            raise fail('"constraints" header is only supported with format 1 or greater')
        _constraints(h["constraints"])


def _constraints(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise fail('"constraints" header must be a non-empty list of maps')
    for entry in value:
        if not isinstance(entry, dict):
            raise fail('"constraints" header must be a non-empty list of maps')
        headers = entry.get("headers")
        if not isinstance(headers, dict):
            raise fail('"headers" constraint is mandatory in "constraints" entries')
        typ = headers.get("type")
        if not isinstance(typ, str) or not re.fullmatch(r"[a-z](?:-?[a-z0-9])*", typ):
            raise fail('"type" of "headers" constraint must be an exact assertion type name')
        for key, pattern in headers.items():
            if isinstance(pattern, str):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise fail(f"cannot compile constraint for {quote(key)}: {exc}") from None


def _account_key_request(h: Headers, body: bytes, fmt: int) -> None:
    checks.not_empty_string(h, "account-id")
    _key_name(h, required=True)
    _check_until(h)
    key = _public_key_body(body)
    if key.id != h["public-key-sha3-384"]:
        raise fail("public key does not match provided key id")


# --------------------------------------------------------------------------- model


def _check_track_header(h: Headers, name: str, required: bool) -> None:
    if required:
        value = checks.not_empty_string(h, name)
    else:
        opt = checks.optional_string(h, name)
        if not opt:
            return
        value = opt
    snap, eq, track = value.partition("=")
    if eq:
        if "/" in track:
            raise fail(f"{quote(name)} channel selector must be a track name only")
        if not track or track in RISKS:
            raise fail(f"{quote(name)} channel selector must be a track name")
    if not valid_snap_name(snap):
        raise fail(f"invalid snap name in {quote(name)} header: {snap}")


def _model(h: Headers, body: bytes, fmt: int) -> None:
    brand = h["brand-id"]
    if h.get("authority-id") != brand:
        raise fail(
            "authority-id and brand-id must match, model assertions are expected to be "
            f"signed by the brand: {quote(str(h.get('authority-id')))} != {quote(brand)}"
        )
    model = h["model"]
    if any(c.isupper() for c in model):
        raise fail('"model" header cannot contain uppercase letters')
    if not MODEL_RE.match(model):
        raise fail(f'"model" header contains invalid characters: {quote(model)}')
    classic = checks.optional_bool(h, "classic")
    extended = "snaps" in h
    if extended:
        for name in ("gadget", "kernel", "required-snaps"):
            if name in h:
                raise fail(
                    f"cannot specify separate {quote(name)} header once using the "
                    "extended snaps header"
                )
    else:
        if "grade" in h:
            raise fail("cannot specify a grade for model without the extended snaps header")
        if "storage-safety" in h:
            raise fail("cannot specify storage-safety for model without the extended snaps header")
        if "distribution" in h:
            raise fail(
                "cannot specify distribution for model unless it is classic and has an "
                "extended snaps header"
            )
    if classic and not extended:
        if "kernel" in h:
            raise fail("cannot specify a kernel with a non-extended classic model")
        if "base" in h:
            raise fail("cannot specify a base with a non-extended classic model")
    if classic and extended:
        os_release = "see distribution ID in os-release spec"
        if not h.get("distribution"):
            raise fail(f'"distribution" header is mandatory, {os_release}')
        dist = checks.not_empty_string(h, "distribution")
        if not DISTRIBUTION_RE.match(dist):
            raise fail(
                f'"distribution" header contains invalid characters: {quote(dist)}, {os_release}'
            )
    if "distribution" in h and not classic:
        raise fail(
            "cannot specify distribution for model unless it is classic and has an extended "
            "snaps header"
        )
    if not classic or extended:
        checks.not_empty_string(h, "architecture")
    else:
        checks.optional_string(h, "architecture")
    base = checks.optional_string(h, "base")
    if base is not None and not valid_snap_name(base):
        raise fail(f'invalid snap name in "base" header: {base}')
    checks.optional_string(h, "display-name")
    checks.optional_string(h, "store")
    if extended:
        if base is None:
            raise fail('"base" header is mandatory')
        _model_snaps(h, classic, base)
    else:
        _check_track_header(h, "gadget", required=not classic)
        _check_track_header(h, "kernel", required=not classic)
        for snap in checks.string_list(h, "required-snaps"):
            if not valid_snap_name(snap):
                raise fail(f'invalid snap name in "required-snaps" header: {snap}')
    _account_ids(h, "serial-authority")
    sua = h.get("system-user-authority")
    if isinstance(sua, str):
        if sua != "*":
            raise fail("\"system-user-authority\" header must be '*' or a list of account ids")
    else:
        try:
            _account_ids(h, "system-user-authority")
        except AssertionFormatError:
            raise fail(
                "\"system-user-authority\" header must be '*' or a list of account ids"
            ) from None
    _account_ids(h, "preseed-authority")
    _model_validation_sets(h)
    checks.rfc3339(h, "timestamp")


def _model_snaps(h: Headers, classic: bool, base: str) -> None:
    grade = h.get("grade", "signed")
    if grade not in ("secured", "signed", "dangerous"):
        raise fail(f"grade for model must be secured|signed|dangerous, not {quote(str(grade))}")
    safety = h.get("storage-safety")
    if safety is not None:
        if safety not in ("encrypted", "prefer-encrypted", "prefer-unencrypted"):
            raise fail(
                "storage-safety for model must be encrypted|prefer-encrypted|"
                f"prefer-unencrypted, not {quote(str(safety))}"
            )
        if grade == "secured" and safety != "encrypted":
            raise fail(
                'secured grade model must not have storage-safety overridden, only "encrypted" '
                "is valid"
            )
    entries = h["snaps"]
    if not isinstance(entries, list):
        raise fail('"snaps" header must be a list of maps')
    names: set[str] = set()
    ids: dict[str, str] = {}
    by_type: dict[str, str] = {}
    has_base_entry = False
    for entry in entries:
        name = _snap_entry_name(entry, names)
        snap_id = entry.get("id")
        if snap_id is None:
            if grade != "dangerous":
                raise fail(f'"id" of snap {quote(name)} is mandatory for {grade} grade model')
        elif not isinstance(snap_id, str):
            raise fail(f'"id" of snap {quote(name)} must be a string')
        elif not SNAP_ID_RE.match(snap_id):
            raise fail(f'"id" of snap {quote(name)} contains invalid characters: {quote(snap_id)}')
        else:
            if snap_id in ids:
                raise fail(
                    f"cannot specify the same snap id {quote(snap_id)} multiple times, "
                    f"specified for snaps {quote(ids[snap_id])} and {quote(name)}"
                )
            ids[snap_id] = name
        stype = entry.get("type", "app")
        if not isinstance(stype, str):
            raise fail(f'"type" of snap {quote(name)} must be a string')
        if stype not in SNAP_TYPES:
            # sic: snapd says "must be one of" twice
            raise fail(
                f'"type" of snap {quote(name)} must be one of must be one of {"|".join(SNAP_TYPES)}'
            )
        essential = stype in ("snapd", "kernel", "gadget") or name == base
        if name == base:
            has_base_entry = True
            if stype != "base":
                raise fail(f'boot base {quote(base)} must specify type "base", not {quote(stype)}')
        if stype in ("snapd", "kernel", "gadget"):
            if stype in by_type:
                raise fail(
                    f"cannot specify multiple {stype} snaps: {quote(by_type[stype])} and "
                    f"{quote(name)}"
                )
            by_type[stype] = name
        modes = entry.get("modes")
        if modes is not None:
            if not isinstance(modes, list) or not all(isinstance(m, str) for m in modes):
                raise fail(f'"modes" of snap {quote(name)} must be a list of strings')
            for mode in modes:
                if not MODE_RE.match(mode):
                    raise fail(
                        f'"modes" of snap {quote(name)} contains an invalid element: {quote(mode)}'
                    )
        if essential and modes:
            raise fail(
                f"essential snaps are always available, cannot specify modes of snap {quote(name)}"
            )
        presence = entry.get("presence")
        if presence is not None:
            if not isinstance(presence, str):
                raise fail(f'"presence" of snap {quote(name)} must be a string')
            if presence not in ("required", "optional"):
                raise fail(
                    f'"presence" of snap {quote(name)} must be one of must be one of '
                    "required|optional"
                )
            if essential:
                raise fail(
                    "essential snaps are always available, cannot specify presence for snap "
                    f"{quote(name)}"
                )
        channel = entry.get("default-channel")
        if channel is not None:
            if not isinstance(channel, str):
                raise fail(f'"default-channel" of snap {quote(name)} must be a string')
            try:
                track, _, _ = parse_channel(channel)
            except ValueError as exc:
                raise fail(f"invalid default channel for snap {quote(name)}: {exc}") from None
            if not track:
                raise fail(
                    f"default channel for snap {quote(name)} must specify a track",
                    hint="write it as TRACK/RISK, e.g. latest/stable",
                )
        if "classic" in entry:
            value = entry["classic"]
            if value not in ("true", "false"):
                raise fail(f"\"classic\" of snap {quote(name)} must be 'true' or 'false'")
            if value == "true":
                if not classic:
                    raise fail(f"snap {quote(name)} cannot be classic in non-classic model")
                if stype != "app":
                    raise fail(
                        f"snap {quote(name)} cannot be classic with type {quote(stype)} "
                        "instead of app"
                    )
                if modes is not None and modes != ["run"]:
                    raise fail(
                        f"classic snap {quote(name)} not allowed outside of run mode: "
                        f"[{' '.join(modes)}]"
                    )
        components = entry.get("components")
        if components is not None and not isinstance(components, dict):
            raise fail(f'"components" of snap {quote(name)} must be a map')
    if not classic:
        if "kernel" not in by_type:
            raise fail('one "snaps" header entry must specify the model kernel')
        if "gadget" not in by_type:
            raise fail('one "snaps" header entry must specify the model gadget')
    elif "kernel" in by_type and "gadget" not in by_type:
        raise fail("cannot specify a kernel in an extended classic model without a model gadget")
    if not has_base_entry and base not in WELL_KNOWN_SNAP_IDS and grade != "dangerous":
        raise fail(
            f"cannot specify not well-known base {quote(base)} without a corresponding "
            '"snaps" header entry'
        )


def _model_validation_sets(h: Headers) -> None:
    value = h.get("validation-sets")
    if value is None:
        return
    if not isinstance(value, list):
        raise fail('"validation-sets" must be a list of validation sets')
    seen: set[str] = set()
    for entry in value:
        if not isinstance(entry, dict):
            raise fail('entry in "validation-sets" is not a valid validation-set')
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise fail('"name" of validation-set is mandatory')
        if not VSET_NAME_RE.match(name):
            raise fail(f'"name" of validation-set contains invalid characters: {quote(name)}')
        account = entry.get("account-id", h.get("brand-id"))
        if not isinstance(account, str):
            raise fail(f'"account-id" of validation-set {quote(name)} must be a string')
        if not ACCOUNT_ID_RE.match(account):
            raise fail(
                f'"account-id" of validation-set {quote(name)} contains invalid characters: '
                f"{quote(account)}"
            )
        what = f'validation-set "{account}/{name}"'
        seq = entry.get("sequence")
        if seq is not None:
            if not isinstance(seq, str) or not re.fullmatch(r"[+-]?[0-9]+", seq):
                raise fail(f'"sequence" of {what} is not an integer: {seq}')
            if int(seq) <= 0 or seq.startswith("+"):
                raise fail(
                    f'"sequence" of {what} must be larger than 0 or left unspecified '
                    "(meaning tracking latest)"
                )
        mode = entry.get("mode")
        if mode is None:
            raise fail(f'"mode" of {what} is mandatory')
        if mode not in ("enforce", "prefer-enforce"):
            raise fail(f'"mode" of {what} must be prefer-enforce|enforce, not {quote(str(mode))}')
        key = f"{account}/{name}"
        if key in seen:
            raise fail(f"cannot add validation set {quote(key)} twice")
        seen.add(key)


# --------------------------------------------------------------------------- devices


def _serial(h: Headers, body: bytes, fmt: int) -> None:
    brand = h["brand-id"]
    if not ACCOUNT_ID_RE.match(brand):
        raise fail(f'"brand-id" header contains invalid characters: {quote(brand)}')
    model = h["model"]
    if any(c.isupper() for c in model):
        raise fail('"model" header cannot contain uppercase letters')
    if not MODEL_RE.match(model):
        raise fail(f'"model" header contains invalid characters: {quote(model)}')
    _device_key(h)
    checks.rfc3339(h, "timestamp")


def _device_key(h: Headers) -> PublicKey:
    text = checks.not_empty_string(h, "device-key")
    try:
        key = PublicKey.decode(text)
    except AssertionFormatError as exc:
        raise fail(exc.message.replace("public key", "device key", 1)) from None
    if key.id != checks.not_empty_string(h, "device-key-sha3-384"):
        raise fail("device key does not match provided key id")
    return key


def _serial_request(h: Headers, body: bytes, fmt: int) -> None:
    checks.not_empty_string(h, "brand-id")
    checks.not_empty_string(h, "model")
    checks.not_empty_string(h, "request-id")
    checks.optional_string(h, "serial")
    text = checks.not_empty_string(h, "device-key")
    try:
        key = PublicKey.decode(text)
    except AssertionFormatError as exc:
        raise fail(exc.message.replace("public key", "device key", 1)) from None
    if key.id != h.get("sign-key-sha3-384"):
        raise fail("device key does not match included signing key id")


def _device_session_request(h: Headers, body: bytes, fmt: int) -> None:
    checks.not_empty_string(h, "nonce")
    checks.rfc3339(h, "timestamp")


# --------------------------------------------------------------------------- snaps


def _snap_declaration(h: Headers, body: bytes, fmt: int) -> None:
    checks.string(h, "snap-name")
    checks.not_empty_string(h, "publisher-id")
    checks.rfc3339(h, "timestamp")
    checks.string_list(h, "refresh-control")
    checks.string_list(h, "auto-aliases")
    for name in ("plugs", "slots"):
        if name in h and not isinstance(h[name], dict):
            raise fail(f"{quote(name)} header must be a map")
    aliases = h.get("aliases")
    if aliases is not None:
        if not isinstance(aliases, list):
            raise fail('"aliases" header must be a list of alias maps')
        for alias in aliases:
            if not isinstance(alias, dict):
                raise fail('"aliases" header must be a list of alias maps')
            for key in ("name", "target"):
                if not isinstance(alias.get(key), str) or not alias[key]:
                    raise fail(f'"{key}" in "aliases" item is mandatory')
    authorities = h.get("revision-authority")
    if authorities is not None:
        if not isinstance(authorities, list):
            raise fail('"revision-authority" header must be a list of maps')
        for ra in authorities:
            if not isinstance(ra, dict):
                raise fail('"revision-authority" header must be a list of maps')
            account = ra.get("account-id")
            if not isinstance(account, str) or not ACCOUNT_ID_RE.match(account):
                raise fail('"account-id" in "revision-authority" item is mandatory')
            prov = ra.get("provenance")
            if not isinstance(prov, list) or not prov or not all(isinstance(p, str) for p in prov):
                raise fail('"provenance" in "revision-authority" item must be a non-empty list')
            low = _ra_int(ra, "min-revision", 1)
            high = _ra_int(ra, "max-revision", 0)
            if high and high < low:
                raise fail(
                    f'optional "max-revision" in "revision-authority" item must be >= '
                    f'"min-revision": {high}'
                )


def _ra_int(ra: dict[str, Any], name: str, default: int) -> int:
    if name not in ra:
        return default
    value = ra[name]
    if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]*", value):
        raise fail(f'optional {quote(name)} in "revision-authority" item must be >= 1')
    return int(value)


def _snap_revision(h: Headers, body: bytes, fmt: int) -> None:
    checks.digest_value(h, "snap-sha3-384")
    prov = h.get("provenance")
    if prov is not None and (not isinstance(prov, str) or not PROVENANCE_RE.match(prov)):
        raise fail(f'"provenance" header contains invalid characters: {quote(str(prov))}')
    checks.not_empty_string(h, "snap-id")
    checks.uint_value(h, "snap-size")
    rev = checks.int_value(h, "snap-revision")
    if rev < 1:
        raise fail(f'"snap-revision" header must be >=1: {rev}')
    checks.not_empty_string(h, "developer-id")
    checks.rfc3339(h, "timestamp")
    integrity = h.get("integrity")
    if integrity is not None:
        if not isinstance(integrity, dict):
            raise fail('"integrity" header must be a map')
        checks.digest_value(integrity, "sha3-384")
        checks.uint_value(integrity, "size")


def _snap_build(h: Headers, body: bytes, fmt: int) -> None:
    checks.digest_value(h, "snap-sha3-384")
    checks.not_empty_string(h, "snap-id")
    checks.not_empty_string(h, "grade")
    checks.uint_value(h, "snap-size")
    checks.rfc3339(h, "timestamp")


def _snap_developer(h: Headers, body: bytes, fmt: int) -> None:
    value = h.get("developers")
    if value is not None and not isinstance(value, list):
        raise fail('"developers" must be a list of developer maps')


def _validation(h: Headers, body: bytes, fmt: int) -> None:
    rev = checks.int_value(h, "approved-snap-revision")
    if rev < 1:
        raise fail(f'"approved-snap-revision" header must be >=1: {rev}')
    checks.optional_bool(h, "revoked")
    checks.rfc3339(h, "timestamp")


def _snap_entry_name(entry: object, seen: set[str]) -> str:
    """The name of one ``snaps`` entry (model or validation set): a map, a valid
    snap name, listed once (added to *seen*)."""
    if not isinstance(entry, dict):
        raise fail('"snaps" header must be a list of maps')
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise fail('"name" of snap is mandatory')
    if not valid_snap_name(name):
        raise fail(f"invalid snap name {quote(name)}")
    if name in seen:
        raise fail(f"cannot list the same snap {quote(name)} multiple times")
    seen.add(name)
    return name


def _validation_set(h: Headers, body: bytes, fmt: int) -> None:
    account = h["account-id"]
    if h.get("authority-id") != account:
        raise fail(
            "authority-id and account-id must match, validation-set assertions are expected "
            f"to be signed by the issuer account: {quote(str(h.get('authority-id')))} != "
            f"{quote(account)}"
        )
    name = h["name"]
    if not VSET_NAME_RE.match(name):
        raise fail(f'"name" header contains invalid characters: {quote(name)}')
    seq = checks.int_value(h, "sequence")
    if seq < 1:
        raise fail(f'"sequence" must be >=1: {seq}')
    snaps = checks.exists(h, "snaps")
    if not isinstance(snaps, list):
        raise fail('"snaps" header must be a list of maps')
    names: set[str] = set()
    ids: dict[str, str] = {}
    for entry in snaps:
        sname = _snap_entry_name(entry, names)
        sid = entry.get("id")
        if sid is None:
            raise fail(f'"id" of snap {quote(sname)} is mandatory')
        if not isinstance(sid, str):
            raise fail(f'"id" of snap {quote(sname)} must be a string')
        if not SNAP_ID_RE.match(sid):
            raise fail(f'"id" of snap {quote(sname)} contains invalid characters: {quote(sid)}')
        if sid in ids:
            raise fail(
                f"cannot specify the same snap id {quote(sid)} multiple times, specified for "
                f"snaps {quote(ids[sid])} and {quote(sname)}"
            )
        ids[sid] = sname
        presence = entry.get("presence", "required")
        if not isinstance(presence, str):
            raise fail(f'"presence" of snap {quote(sname)} must be a string')
        if presence not in ("required", "optional", "invalid"):
            raise fail(
                f'"presence" of snap {quote(sname)} must be one of must be one of '
                "required|optional|invalid"
            )
        rev = entry.get("revision")
        if rev is not None:
            if not isinstance(rev, str) or not re.fullmatch(r"[+-]?[0-9]+", rev):
                raise fail(f'"revision" of snap {quote(sname)} is not an integer: {rev}')
            if int(rev) < 1:
                raise fail(f'"revision" of snap {quote(sname)} must be >=1: {int(rev)}')
            if presence == "invalid":
                raise fail(
                    f"cannot specify revision of snap {quote(sname)} at the same time as "
                    "stating its presence is invalid"
                )
    checks.rfc3339(h, "timestamp")


# --------------------------------------------------------------------------- users, stores


_EMAIL_RE = re.compile(
    r"^(?:[^<>@\s]*\s*<)?[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?>?$"
)


def _check_crypt(password: str) -> None:
    """crypt(3) form ``$id$[rounds=N$]salt$hash`` with id >= 6 (sha512crypt)."""
    parts = password.split("$")
    if not password.startswith("$") or len(parts) < 4:
        raise fail(
            '"password" header invalid: hashed password must be of the form '
            '"$integer-id$salt$hash", see crypt(3)'
        )
    if not re.fullmatch(r"[0-9]+", parts[1]):
        raise fail(f'"password" header must start with "$integer-id$", got {quote(parts[1])}')
    if int(parts[1]) < 6:
        raise fail('"password" header only supports $id$ values of 6 (sha512crypt) or higher')
    i = 2
    if parts[i].startswith("rounds="):
        value = parts[i][len("rounds=") :]
        if not re.fullmatch(r"[0-9]+", value):
            raise fail(f'"password" header has invalid number of rounds: {value}')
        if not 5000 <= int(value) <= 999999999:
            raise fail(f'"password" header rounds parameter out of bounds: {int(value)}')
        i += 1
    if i + 1 >= len(parts):
        raise fail('"password" header invalid: missing hash field')
    valid = re.compile(r"[a-zA-Z0-9./]+")
    if not valid.fullmatch(parts[i]):
        raise fail(f'"password" header has invalid chars in salt {quote(parts[i])}')
    if not valid.fullmatch(parts[i + 1]):
        raise fail(f'"password" header has invalid chars in hash {quote(parts[i + 1])}')


def _system_user(h: Headers, body: bytes, fmt: int) -> None:
    email = h["email"]
    if not _EMAIL_RE.match(email) or email.count("<") != email.count(">"):
        why = "mail: missing @ in addr-spec" if "@" not in email else "mail: invalid address"
        raise fail(f'"email" header must be a RFC 5322 compliant email address: {why}')
    checks.string_list(h, "series")
    models = checks.string_list(h, "models")
    serials = checks.string_list(h, "serials")
    if serials and fmt < 1:
        raise fail('the "serials" header is only supported for format 1 or greater')
    if serials and len(models) != 1:
        raise fail(
            'in the presence of the "serials" header "models" must specify exactly one model'
        )
    checks.optional_string(h, "name")
    username = checks.not_empty_string(h, "username")
    if not USERNAME_RE.match(username):
        raise fail(f'"username" header contains invalid characters: {quote(username)}')
    password = checks.optional_string(h, "password")
    if password:
        _check_crypt(password)
    if checks.optional_bool(h, "force-password-change") and not password:
        raise fail('cannot use "force-password-change" with an empty "password"')
    if not isinstance(h.get("ssh-keys", []), list):
        raise fail('"ssh-keys" header must be a list of strings')
    checks.string_list(h, "ssh-keys")
    since = checks.rfc3339(h, "since")
    until = checks.rfc3339(h, "until")
    if until < since:
        raise fail("'until' time cannot be before 'since' time")
    if not models and (until - since).days > 366:
        raise fail(
            "'until' time cannot be more than 365 days in the future when no models are specified"
        )
    presence = h.get("user-presence")
    if presence is not None:
        if fmt < 2:
            raise fail('the "user-presence" header is only supported for format 2 or greater')
        if presence != "until-expiration":
            raise fail(
                'invalid "user-presence" header, only explicit valid value is '
                f'"until-expiration": {quote(str(presence))}'
            )


def _store(h: Headers, body: bytes, fmt: int) -> None:
    checks.not_empty_string(h, "operator-id")
    url = checks.optional_string(h, "url")
    if url:
        m = re.fullmatch(r"(https?)://([^/?#]+)([^?#]*)", url)
        if m is None:
            raise fail(
                f'"url" header must be an absolute http(s) URL without query or fragment: {url}'
            )
    checks.string_list(h, "friendly-stores")
    checks.optional_string(h, "location")
    checks.rfc3339(h, "timestamp")


def _timestamp_only(h: Headers, body: bytes, fmt: int) -> None:
    checks.rfc3339(h, "timestamp")


VALIDATORS: dict[str, Callable[[Headers, bytes, int], None]] = {
    "account": _account,
    "account-key": _account_key,
    "account-key-request": _account_key_request,
    "model": _model,
    "serial": _serial,
    "serial-request": _serial_request,
    "device-session-request": _device_session_request,
    "snap-declaration": _snap_declaration,
    "snap-revision": _snap_revision,
    "snap-build": _snap_build,
    "snap-developer": _snap_developer,
    "system-user": _system_user,
    "validation": _validation,
    "validation-set": _validation_set,
    "base-declaration": _timestamp_only,
    "repair": _timestamp_only,
    "store": _store,
    "preseed": _timestamp_only,
}


def validate(tname: str, headers: Headers, body: bytes, fmt: int) -> None:
    validator = VALIDATORS.get(tname)
    if validator is not None:
        validator(headers, body, fmt)


def min_format(tname: str, headers: Headers) -> int:
    """The lowest format that covers the features *headers* use (for signing)."""
    if tname == "system-user":
        if "user-presence" in headers:
            return 2
        if headers.get("serials"):
            return 1
    if tname == "account-key" and "constraints" in headers:
        return 1
    if tname == "snap-declaration" and ("plugs" in headers or "slots" in headers):
        # plug/slot rules need format 1; $-attribute constraints 2, device scope 3
        needed = 1
        for rules in (headers.get("plugs"), headers.get("slots")):
            if _walk_has(rules, lambda k, v: isinstance(v, str) and v.startswith("$")):
                needed = max(needed, 2)
            if _walk_has(rules, lambda k, v: k in ("on-store", "on-brand", "on-model")):
                needed = max(needed, 3)
        return needed
    return 0


def _walk_has(value: Any, pred: Callable[[str | None, Any], bool], key: str | None = None) -> bool:
    if pred(key, value):
        return True
    if isinstance(value, dict):
        return any(_walk_has(v, pred, k) for k, v in value.items())
    if isinstance(value, list):
        return any(_walk_has(v, pred, key) for v in value)
    return False
