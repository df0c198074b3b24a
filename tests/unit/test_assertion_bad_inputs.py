"""Bad inputs, one table: each gives one clear line naming the problem, never a traceback."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TESTDATA
from ucimage.assertions import (
    Assertion,
    Database,
    PrivateKey,
    account,
    account_key,
    decode,
    decode_stream,
    sign,
    sign_json,
)
from ucimage.cli.main import main
from ucimage.errors import UcimageError

BRAND = "brand"
TS = "2024-01-01T00:00:00Z"


@dataclass
class Env:
    key: PrivateKey
    other: PrivateKey
    roots: list[Assertion]
    model: Assertion

    def db(self, *extra: Assertion) -> Database:
        db = Database(extra_trusted=self.roots)
        db.add_many(extra)
        return db

    def text(self) -> str:
        return self.model.encode().decode()


@pytest.fixture(scope="module")
def env() -> Env:
    key = PrivateKey.generate(bits=2048)
    other = PrivateKey.generate(bits=2048)
    roots = [
        account(key, BRAND, BRAND, timestamp=TS),
        account_key(key, BRAND, BRAND, key.public_key(), name="root", since=TS),
    ]
    model = sign(uc18(), b"", key)
    return Env(key, other, roots, model)


def uc18(**changes: Any) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "type": "model",
        "authority-id": BRAND,
        "brand-id": BRAND,
        "series": "16",
        "model": "m1",
        "architecture": "amd64",
        "base": "core18",
        "gadget": "pc=18",
        "kernel": "pc-kernel=18",
        "timestamp": TS,
    }
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


GADGET: dict[str, Any] = {"name": "pc", "type": "gadget", "id": "UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH"}
KERNEL: dict[str, Any] = {
    "name": "pc-kernel",
    "type": "kernel",
    "id": "pYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza",
}
CORE20: dict[str, Any] = {
    "name": "core20",
    "type": "base",
    "id": "DLqre5XGLbDqg9jPtiAhRRjDuPVa5X1q",
}


def uc20(snaps: list[dict[str, Any]] | None = None, **changes: Any) -> dict[str, Any]:
    headers = uc18(**{"gadget": None, "kernel": None, "base": "core20", **changes})
    headers["snaps"] = [GADGET, KERNEL, CORE20] if snaps is None else snaps
    return headers


def su(**changes: Any) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "type": "system-user",
        "authority-id": BRAND,
        "brand-id": BRAND,
        "email": "a@example.com",
        "username": "u",
        "models": ["m1"],
        "since": TS,
        "until": "2025-01-01T00:00:00Z",
    }
    headers.update({k.replace("_", "-"): v for k, v in changes.items()})
    return headers


Run = Callable[[Env], object]


def j(headers: dict[str, Any]) -> Run:
    """Sign these headers as JSON input."""
    return lambda e: sign_json(json.dumps(headers), e.key)


def raw_json(text: str) -> Run:
    return lambda e: sign_json(text, e.key)


def text(mutate: Callable[[str], str]) -> Run:
    """Decode a mutated copy of a valid signed model."""
    return lambda e: decode_stream(mutate(e.text()).encode())


def raw(data: bytes) -> Run:
    return lambda e: decode_stream(data)


def check(build: Callable[[Env], tuple[Database, Assertion]]) -> Run:
    def run(e: Env) -> object:
        db, a = build(e)
        db.check(a)
        return a

    return run


def _replace_sig(e: Env, sig: bytes) -> Assertion:
    return decode(e.model.content + b"\n\n" + sig)


def _sig_blob(e: Env) -> bytes:
    return base64.b64decode(e.model.signature.replace(b"\n", b""))


def _b64(blob: bytes) -> bytes:
    return base64.b64encode(blob) + b"\n"


def _signed_by_other(e: Env) -> tuple[Database, Assertion]:
    # the other key is registered, but for another account
    other_key = account_key(e.key, BRAND, "someone", e.other.public_key(), name="k", since=TS)
    someone = account(e.key, BRAND, "someone", timestamp=TS)
    model = sign(uc18(), b"", e.other)
    return e.db(someone, other_key), model


def _key_window(
    since: str, until: str | None, ts: str
) -> Callable[[Env], tuple[Database, Assertion]]:
    def build(e: Env) -> tuple[Database, Assertion]:
        key = account_key(
            e.key, BRAND, BRAND, e.other.public_key(), name="dev", since=since, until=until
        )
        model = sign(uc18(timestamp=ts), b"", e.other)
        return e.db(key), model

    return build


def _tampered(e: Env) -> tuple[Database, Assertion]:
    data = e.model.encode().replace(b"architecture: amd64", b"architecture: arm64")
    return e.db(), decode(data)


def _swapped_signature(e: Env) -> tuple[Database, Assertion]:
    other = sign(uc18(model="m2"), b"", e.key)
    return e.db(), decode(e.model.content + b"\n\n" + other.signature)


def _key_without_account(e: Env) -> tuple[Database, Assertion]:
    key = account_key(e.key, BRAND, "ghost", e.other.public_key(), name="g", since=TS)
    return e.db(), key


def _untrusted_account(e: Env) -> tuple[Database, Assertion]:
    # an account signed by a key that is registered but not a root
    dev_key = account_key(e.key, BRAND, "dev", e.other.public_key(), name="d", since=TS)
    dev = account(e.key, BRAND, "dev", timestamp=TS)
    acc = account(e.other, "dev", "victim", timestamp=TS)
    return e.db(dev, dev_key), acc


def _revision_without_declaration(e: Env) -> tuple[Database, Assertion]:
    rev = sign(
        {
            "type": "snap-revision",
            "authority-id": BRAND,
            "snap-sha3-384": "a" * 64,
            "snap-id": "x" * 32,
            "snap-size": "4096",
            "snap-revision": "1",
            "developer-id": BRAND,
            "timestamp": TS,
        },
        b"",
        e.key,
    )
    return e.db(), rev


def _format_too_high(e: Env) -> tuple[Database, Assertion]:
    # decodes (newer snapd may know format 1) but cannot be checked
    content = e.model.content.replace(b"type: model\n", b"type: model\nformat: 1\n")
    sig = e.key.sign(content)
    return e.db(), decode(content + b"\n\n" + sig.encode().encode() + b"\n")


def _unknown_type_bad_timestamp(e: Env) -> tuple[Database, Assertion]:
    content = (
        f"type: frobnicate\nauthority-id: {BRAND}\ntimestamp: yesterday\n"
        f"sign-key-sha3-384: {e.key.id}"
    ).encode()
    return e.db(), decode(content + b"\n\n" + e.key.sign(content).encode().encode())


def _missing_key(e: Env) -> tuple[Database, Assertion]:
    return Database(), e.model


CASES: list[tuple[str, Run, str]] = [
    # ---- the text format
    ("no-separator", lambda e: decode(b"type: model\nseries: 16"), "separator not found"),
    ("stream-no-separator", raw(b"type: model\nseries: 16"), "unexpected end of data"),
    ("bad-header-name", text(lambda t: t.replace("series:", "Series:", 1)), "invalid header name"),
    ("missing-colon", text(lambda t: t.replace("series: 16", "series 16", 1)), "missing ':'"),
    (
        "no-space-after-colon",
        text(lambda t: t.replace("series: 16", "series:16", 1)),
        "should have a space or newline",
    ),
    (
        "repeated-header",
        text(lambda t: t.replace("series: 16", "series: 16\nseries: 16", 1)),
        'repeated header: "series"',
    ),
    (
        "bare-multiline-intro",
        text(lambda t: t.replace("architecture: amd64", "architecture:", 1)),
        "nesting prefix after multiline introduction",
    ),
    (
        "body-length-mismatch",
        text(lambda t: t.replace("sign-key", "body-length: 5\nsign-key", 1)),
        "(wrong body-length?)",
    ),
    (
        "body-length-not-int",
        text(lambda t: t.replace("sign-key", "body-length: five\nsign-key", 1)),
        '"body-length" header is not an integer: five',
    ),
    (
        "body-length-prefix-zero",
        text(lambda t: t.replace("sign-key", "body-length: 00\nsign-key", 1)),
        "invalid prefix zeros",
    ),
    ("empty-signature", text(lambda t: t.split("\n\n")[0] + "\n\n"), "empty assertion signature"),
    (
        "sign-key-not-base64url",
        text(lambda t: t.replace("sign-key-sha3-384: ", "sign-key-sha3-384: +/", 1)),
        '"sign-key-sha3-384" header cannot be decoded',
    ),
    (
        "sign-key-short",
        raw(b"type: account\nsign-key-sha3-384: AAAA\n\nAcLB"),
        "does not have the expected bit length: 24",
    ),
    (
        "missing-type",
        text(lambda t: t.replace("type: model\n", "", 1)),
        '"type" header is mandatory',
    ),
    (
        "missing-authority",
        text(lambda t: t.replace("authority-id: brand\n", "", 1)),
        '"authority-id" header is mandatory',
    ),
    (
        "request-with-authority",
        raw(
            b"type: account-key-request\nauthority-id: x\npublic-key-sha3-384: "
            + b"A" * 64
            + b"\nsign-key-sha3-384: "
            + b"A" * 64
            + b"\n\nAcLB"
        ),
        '"account-key-request" assertion cannot have authority-id set',
    ),
    (
        "negative-revision",
        text(lambda t: t.replace("series:", "revision: -3\nseries:", 1)),
        "revision should be positive: -3",
    ),
    (
        "format-not-int",
        text(lambda t: t.replace("series:", "format: x\nseries:", 1)),
        '"format" header is not an integer: x',
    ),
    (
        "slash-in-primary-key",
        text(lambda t: t.replace("model: m1", "model: m/1", 1)),
        "\"model\" primary key header cannot contain '/'",
    ),
    (
        "empty-primary-key",
        text(lambda t: t.replace("model: m1", "model: ", 1)),
        '"model" header should not be empty',
    ),
    ("header-not-utf8", raw(b"type: model\nseries: \xff\n\nAcLB"), "header is not utf8"),
    (
        "body-not-utf8",
        raw(b"type: x\nbody-length: 1\nsign-key-sha3-384: " + b"A" * 64 + b"\n\n\xff\n\nAcLB"),
        "body is not utf8",
    ),
    (
        "two-blank-lines-in-stream",
        lambda e: decode_stream(e.model.encode() + b"\n\n" + e.model.encode()),
        "header entry missing ':' separator",
    ),
    (
        "stream-truncated-body",
        raw(b"type: x\nauthority-id: a\nbody-length: 100\n\nshort"),
        "unexpected EOF: body has 5 of its 100 bytes",
    ),
    (
        "headers-too-big",
        raw(b"type: x\nx: " + b"a" * (128 * 1024) + b"\n\nAcLB"),
        "header too big",
    ),
    (
        "body-too-big",
        raw(b"type: x\nbody-length: 3000000\n\n" + b"a" * 10),
        "body too big: 3000000 bytes",
    ),
    (
        "signature-too-big",
        lambda e: decode_stream(e.model.content + b"\n\n" + b"A" * (129 * 1024)),
        "signature too big",
    ),
    # ---- signatures and keys
    (
        "truncated-signature",
        check(lambda e: (e.db(), _replace_sig(e, e.model.signature[:200] + b"\n"))),
        "cannot decode signature",
    ),
    (
        "corrupted-signature-value",
        check(lambda e: (e.db(), _replace_sig(e, _b64(_sig_blob(e)[:-3] + b"\x00\x01\x02")))),
        "failed signature verification",
    ),
    (
        "signature-format-version",
        check(lambda e: (e.db(), _replace_sig(e, _b64(b"\x02" + _sig_blob(e)[1:])))),
        "unsupported signature format version: 2",
    ),
    (
        "signature-trailing-data",
        check(lambda e: (e.db(), _replace_sig(e, _b64(_sig_blob(e) + b"xx")))),
        "spurious trailing data",
    ),
    (
        "signature-not-base64",
        check(lambda e: (e.db(), _replace_sig(e, b"!!!notbase64!!!\n"))),
        "cannot decode signature",
    ),
    ("tampered-content", check(_tampered), "failed signature verification"),
    ("swapped-signature", check(_swapped_signature), "hash tag doesn't match"),
    ("signing-key-missing", check(_missing_key), "of brand not available"),
    ("wrong-key-authority-mismatch", check(_signed_by_other), "but expected it from: brand"),
    (
        "timestamp-before-key-since",
        check(_key_window("2025-01-01T00:00:00Z", None, TS)),
        'outside of signing key validity (key valid since "2025-01-01T00:00:00Z")',
    ),
    (
        "timestamp-after-key-until",
        check(_key_window("2020-01-01T00:00:00Z", "2023-01-01T00:00:00Z", TS)),
        "signed with expired public key",
    ),
    ("account-key-without-account", check(_key_without_account), "matching account assertion"),
    ("account-not-from-root", check(_untrusted_account), "not signed by a directly trusted"),
    (
        "revision-without-declaration",
        check(_revision_without_declaration),
        "does not have a matching snap-declaration assertion",
    ),
    ("format-too-high", check(_format_too_high), "has format 1 but 0 is latest supported"),
    (
        "unknown-type-bad-timestamp",
        check(_unknown_type_bad_timestamp),
        '"timestamp" header is not a RFC3339 date',
    ),
    # ---- model rules (through snap sign JSON)
    (
        "authority-not-brand",
        j(uc18(brand_id="other")),
        "authority-id and brand-id must match",
    ),
    ("missing-architecture", j(uc18(architecture=None)), '"architecture" header is mandatory'),
    ("missing-gadget", j(uc18(gadget=None)), '"gadget" header is mandatory'),
    ("missing-kernel", j(uc18(kernel=None)), '"kernel" header is mandatory'),
    ("missing-timestamp", j(uc18(timestamp=None)), '"timestamp" header is mandatory'),
    ("timestamp-lowercase-t", j(uc18(timestamp="2024-01-01t00:00:00Z")), "not a RFC3339 date"),
    ("timestamp-month-13", j(uc18(timestamp="2024-13-01T00:00:00Z")), "month out of range"),
    ("timestamp-no-zone", j(uc18(timestamp="2024-01-01T00:00:00")), 'as "Z07:00"'),
    (
        "gadget-track-with-risk",
        j(uc18(gadget="pc=18/stable")),
        '"gadget" channel selector must be a track name only',
    ),
    ("kernel-track-is-risk", j(uc18(kernel="pc-kernel=edge")), "must be a track name"),
    ("bad-gadget-name", j(uc18(gadget="PC")), 'invalid snap name in "gadget" header: PC'),
    (
        "bad-required-snap",
        j(uc18(required_snaps=["ok-snap", "Bad Snap"])),
        'invalid snap name in "required-snaps" header: Bad Snap',
    ),
    ("classic-with-kernel", j(uc18(classic="true", base=None)), "cannot specify a kernel"),
    ("classic-not-bool", j(uc18(classic="yes")), "\"classic\" header must be 'true' or 'false'"),
    ("grade-without-snaps", j(uc18(grade="signed")), "cannot specify a grade"),
    ("storage-safety-without-snaps", j(uc18(storage_safety="encrypted")), "storage-safety"),
    ("uc20-bad-grade", j(uc20(grade="insecure")), "must be secured|signed|dangerous"),
    (
        "uc20-secured-not-encrypted",
        j(uc20(grade="secured", storage_safety="prefer-encrypted")),
        'only "encrypted" is valid',
    ),
    ("uc20-bad-storage-safety", j(uc20(storage_safety="maybe")), "storage-safety for model"),
    (
        "uc20-entry-without-name",
        j(uc20([GADGET, KERNEL, CORE20, {"id": "A" * 32}])),
        '"name" of snap is mandatory',
    ),
    (
        "uc20-bad-type",
        j(uc20([GADGET, KERNEL, CORE20, {"name": "app", "id": "A" * 32, "type": "os"}])),
        '"type" of snap "app" must be one of must be one of app|base|gadget|kernel|core|snapd',
    ),
    (
        "uc20-duplicate-name",
        j(uc20([GADGET, KERNEL, CORE20, {**GADGET, "type": "app", "id": "B" * 32}])),
        'cannot list the same snap "pc" multiple times',
    ),
    ("uc20-no-kernel", j(uc20([GADGET, CORE20])), "must specify the model kernel"),
    (
        "uc20-essential-with-modes",
        j(uc20([{**GADGET, "modes": ["run"]}, KERNEL, CORE20])),
        "essential snaps are always available",
    ),
    (
        "uc20-channel-without-track",
        j(uc20([{**GADGET, "default-channel": "stable"}, KERNEL, CORE20])),
        "must specify a track",
    ),
    (
        "uc20-bad-channel-risk",
        j(uc20([{**GADGET, "default-channel": "20/sometimes"}, KERNEL, CORE20])),
        "invalid default channel for snap",
    ),
    (
        "uc20-base-wrong-type",
        j(uc20([GADGET, KERNEL, {**CORE20, "type": "app"}])),
        'boot base "core20" must specify type "base"',
    ),
    (
        "uc20-bad-mode",
        j(uc20([GADGET, KERNEL, CORE20, {"name": "app", "id": "A" * 32, "modes": ["Run"]}])),
        '"modes" of snap "app" contains an invalid element',
    ),
    (
        "uc20-separate-gadget",
        j({**uc20(), "gadget": "pc"}),
        'cannot specify separate "gadget" header',
    ),
    (
        "uc20-unknown-base-signed",
        j(uc20([GADGET, KERNEL], base="mybase")),
        "cannot specify not well-known base",
    ),
    (
        "uc20-classic-without-distribution",
        j(uc20(classic="true")),
        '"distribution" header is mandatory, see distribution ID in os-release spec',
    ),
    (
        "system-user-authority-string",
        j(uc18(system_user_authority="someone")),
        "must be '*' or a list of account ids",
    ),
    (
        "serial-authority-string",
        j(uc18(serial_authority="*")),
        '"serial-authority" header must be a list of account ids',
    ),
    (
        "uc20-essential-with-presence",
        j(uc20([GADGET, {**KERNEL, "presence": "optional"}, CORE20])),
        'cannot specify presence for snap "pc-kernel"',
    ),
    (
        "uc20-validation-set-without-mode",
        j(uc20(validation_sets=[{"name": "set"}])),
        '"mode" of validation-set "brand/set" is mandatory',
    ),
    (
        "uc20-validation-set-sequence-zero",
        j(uc20(validation_sets=[{"name": "set", "mode": "enforce", "sequence": "0"}])),
        "must be larger than 0 or left unspecified (meaning tracking latest)",
    ),
    (
        "uc20-distribution-not-classic",
        j(uc20(distribution="ubuntu")),
        "cannot specify distribution for model unless it is classic",
    ),
    (
        "classic-snap-outside-run-mode",
        j(
            uc20(
                [
                    *([GADGET, KERNEL, CORE20]),
                    {
                        "name": "tool",
                        "id": "T" * 32,
                        "classic": "true",
                        "modes": ["run", "ephemeral"],
                    },
                ],
                classic="true",
                distribution="ubuntu",
            )
        ),
        'classic snap "tool" not allowed outside of run mode: [run ephemeral]',
    ),
    # ---- JSON input
    ("json-number", j(uc18(series=16)), 'header "series": header values must be strings'),
    ("json-null", j({**uc18(), "store": None}), 'header "store"'),
    ("json-bool-nested", j(uc18(x_flags={"on": True})), 'header "x-flags"'),
    ("json-not-object", raw_json("[1, 2]"), "JSON input must be an object"),
    ("json-syntax", raw_json('{"type": "model",'), "cannot parse JSON input"),
    ("json-duplicate-key", raw_json('{"type": "model", "type": "account"}'), "duplicate key"),
    ("json-body-not-string", j(uc18(body=["x"])), "body if specified must be a string"),
    ("json-bad-name", j({**uc18(), "Bad_Name": "x"}), 'invalid header name: "Bad_Name"'),
    ("json-bad-map-key", j(uc18(x_map={"Key": "v"})), 'invalid map entry key: "Key"'),
    ("json-unknown-type", j({"type": "frobnicate"}), "invalid assertion type: frobnicate"),
    # ---- other types
    (
        "validation-set-authority",
        j(
            {
                "type": "validation-set",
                "authority-id": BRAND,
                "account-id": "other",
                "series": "16",
                "name": "set",
                "sequence": "1",
                "snaps": [{"name": "hello", "id": "A" * 32}],
                "timestamp": TS,
            }
        ),
        "authority-id and account-id must match",
    ),
    (
        "validation-set-missing-id",
        j(
            {
                "type": "validation-set",
                "authority-id": BRAND,
                "account-id": BRAND,
                "series": "16",
                "name": "set",
                "sequence": "1",
                "snaps": [{"name": "hello"}],
                "timestamp": TS,
            }
        ),
        '"id" of snap "hello" is mandatory',
    ),
    (
        "system-user-bad-email",
        j(
            {
                "type": "system-user",
                "authority-id": BRAND,
                "brand-id": BRAND,
                "email": "not an email",
                "username": "u",
                "models": ["m1"],
                "since": TS,
                "until": "2025-01-01T00:00:00Z",
            }
        ),
        '"email" header must be a RFC 5322 compliant email address',
    ),
    (
        "system-user-until-before-since",
        j(
            {
                "type": "system-user",
                "authority-id": BRAND,
                "brand-id": BRAND,
                "email": "a@example.com",
                "username": "u",
                "models": ["m1"],
                "since": TS,
                "until": "2023-01-01T00:00:00Z",
            }
        ),
        "'until' time cannot be before 'since' time",
    ),
    (
        "system-user-cleartext-password",
        j(su(password="hunter2")),
        '"password" header invalid: hashed password must be of the form "$integer-id$salt$hash"',
    ),
    (
        "system-user-md5-password",
        j(su(password="$1$salt$hash")),
        "only supports $id$ values of 6 (sha512crypt) or higher",
    ),
    (
        "system-user-rounds-out-of-bounds",
        j(su(password="$6$rounds=1$salt$hash")),
        '"password" header rounds parameter out of bounds: 1',
    ),
    (
        "system-user-force-change-without-password",
        j(su(force_password_change="true")),
        'cannot use "force-password-change" with an empty "password"',
    ),
    (
        "snap-revision-bad-digest",
        j(
            {
                "type": "snap-revision",
                "authority-id": BRAND,
                "snap-sha3-384": "short",
                "snap-id": "x" * 32,
                "snap-size": "1",
                "snap-revision": "1",
                "developer-id": BRAND,
                "timestamp": TS,
            }
        ),
        '"snap-sha3-384" header',
    ),
    (
        "snap-declaration-plugs-need-format",
        j(
            {
                "type": "snap-declaration",
                "authority-id": BRAND,
                "series": "16",
                "snap-id": "s" * 32,
                "snap-name": "modem",
                "publisher-id": BRAND,
                "plugs": {"network": {"allow-connection": {"slot-attributes": {"x": "$PLUG(x)"}}}},
                "format": "1",
                "timestamp": TS,
            }
        ),
        'cannot sign "snap-declaration" assertion with format set to 1 lower than min format 2',
    ),
    (
        "account-key-wrong-id",
        lambda e: sign(
            {
                "type": "account-key",
                "authority-id": BRAND,
                "account-id": BRAND,
                "public-key-sha3-384": e.other.id,
                "since": TS,
            },
            e.key.public_key().encode(),
            e.key,
        ),
        "public key does not match provided key id",
    ),
]


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("run", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(env: Env, run: Run, expected: str) -> None:
    with pytest.raises(UcimageError) as exc:
        run(env)
    message = exc.value.message
    assert expected in message
    assert "\n" not in message and message.strip() == message


def test_cli_prints_one_error_line(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.model"
    bad.write_bytes(env.model.encode().replace(b"amd64", b"arm64"))
    assert main(["verify", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out.count("\n") == 1
    assert out.startswith("model 16/brand/m1: error: ")
    assert "Traceback" not in out + err
    # JSON errors through `ucimage sign`: error + hint lines only
    keyring = tmp_path / "keys"
    from ucimage.assertions import Keyring

    Keyring(keyring).add("k", env.key)
    src = tmp_path / "in.json"
    src.write_text(json.dumps(uc18(timestamp=None)))
    assert main(["sign", "--keyring", str(keyring), "-k", "k", str(src)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == 'error: cannot assemble assertion model: "timestamp" header is mandatory'
    assert lines[1].startswith('hint: add "timestamp": ')
    assert len(lines) == 2


def test_vectors_dir_present() -> None:
    assert (TESTDATA / "assertions").is_dir()
