"""Fuzzing the decoder: random and mutated input never raises anything but our errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TESTDATA
from ucimage.assertions import (
    AssertionFormatError,
    AssertionNotFoundError,
    AssertionVerifyError,
    Database,
    PrivateKey,
    assemble_content,
    canonical_difference,
    decode,
    decode_stream,
    prerequisites,
    sign,
    sign_json,
)
from ucimage.assertions.crypto import PublicKey, Signature
from ucimage.assertions.headers import parse_headers
from ucimage.assertions.types import generic
from ucimage.errors import UcimageError

VECTORS = TESTDATA / "assertions"
SEEDS = [
    (VECTORS / name).read_bytes()
    for name in (
        "canonical-root.account",
        "snapd-tests/valid-for-testing-pc-20.model",
        "snapd-tests/test-snapd-remodel-auto-import.assert",
        "snap-sign/outputs/model-with-body-multiline.assert",
        "ubuntu-core-docs/serial.assert",
        "ubuntu-core-docs/snap-declaration-modem-manager.assert",
    )
]
DB = Database()
DB.add_stream((VECTORS / "canonical" / "canonical-store.account-key").read_bytes())
DB.add_stream((VECTORS / "snapd-tests" / "test-snapd.account").read_bytes())
DB.add_stream((VECTORS / "snapd-tests" / "test-snapd-phelps-test-key.account-key").read_bytes())

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _decode_everything(data: bytes) -> None:
    """Decode as a stream and as one assertion, then check what decoded."""
    try:
        for a in decode_stream(data):
            # whatever decodes re-encodes to bytes that decode to the same thing
            assert decode(a.encode()).headers == a.headers
            canonical_difference(a)
            prerequisites(a)
            try:
                DB.check(a)
            except AssertionVerifyError:
                pass
            try:
                DB.chain(a)
            except AssertionNotFoundError:
                pass
    except AssertionFormatError:
        pass
    try:
        decode(data)
    except AssertionFormatError:
        pass


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _decode_everything(data)


@FUZZ
@given(st.text(alphabet=st.sampled_from("ab:- \n=/\t\u00e9x0"), max_size=400))
def test_random_header_like_text(text: str) -> None:
    _decode_everything(text.encode())


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] = draw(st.sampled_from(b"\n :-aZ0+/=\xff\x00 "))
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 20))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(max_size=12)) or b"\n"
        elif kind == "truncate":
            del data[pos:]
        elif kind == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 80))]
    return bytes(data)


@settings(FUZZ, max_examples=1000)
@given(mutated())
def test_mutated_vectors(data: bytes) -> None:
    _decode_everything(data)


@FUZZ
@given(st.binary(max_size=600))
def test_signature_and_key_blobs(blob: bytes) -> None:
    import base64

    text = base64.b64encode(b"\x01" + blob)
    for parser in (Signature.decode, PublicKey.decode):
        try:
            parser(text)
        except UcimageError:
            pass


NAMES = st.sampled_from(["a", "b", "series", "x-y", "name2", "k9", "snaps", "zz-top"])
LEAVES = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r"), max_size=30
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(NAMES, inner, min_size=1, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(st.dictionaries(NAMES, VALUES, max_size=6))
def test_header_writer_and_reader_agree(headers: dict[str, Any]) -> None:
    headers.pop("type", None)
    headers.pop("body-length", None)
    headers.pop("sign-key-sha3-384", None)
    content = assemble_content(generic("thing"), headers, b"")
    parsed = parse_headers(content.decode())
    assert parsed.pop("type") == "thing"
    assert parsed == headers


def test_fuzz_seeds_decode() -> None:
    for data in SEEDS:
        assert decode_stream(data)
    assert isinstance(DB, Database)
    assert dt.datetime.now(dt.UTC).year >= 2024
    assert Path(VECTORS).is_dir()


SIGNING_KEY = PrivateKey.generate(bits=1024)
EXTRA_NAMES = st.sampled_from(["x-a", "x-b2", "zeta", "aardvark", "x-map", "note"])


@settings(FUZZ, max_examples=100)
@given(st.dictionaries(EXTRA_NAMES, VALUES, max_size=4), st.text(max_size=40))
def test_sign_then_decode_round_trip(extra: dict[str, Any], body: str) -> None:
    """Whatever sign() accepts decodes back to the same headers, in canonical order."""
    headers = {
        "type": "model",
        "authority-id": "b1",
        "brand-id": "b1",
        "series": "16",
        "model": "m",
        "architecture": "amd64",
        "gadget": "pc",
        "kernel": "pc-kernel",
        "timestamp": "2024-01-01T00:00:00Z",
        **extra,
    }
    try:
        a = sign(headers, body, SIGNING_KEY)
    except AssertionFormatError:
        return
    again = decode(a.encode())
    assert again.headers == a.headers
    assert again.body == body.encode()
    assert a.canonical_content() == a.content
    Signature.decode(a.signature)
    SIGNING_KEY.public_key().verify(a.content, Signature.decode(a.signature))


JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
JSON_KEYS = st.sampled_from(
    ["authority-id", "brand-id", "series", "model", "timestamp", "snaps", "grade", "body",
     "revision", "format", "account-id", "sign-key-sha3-384", "Bad_Name", "x"]
)  # fmt: skip


@settings(FUZZ, max_examples=300)
@given(
    st.sampled_from(
        [
            "model",
            "account",
            "account-key",
            "system-user",
            "validation-set",
            "snap-revision",
            "serial",
            "store",
            "nope",
            7,
        ]
    ),
    st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=6),
)
def test_sign_json_only_raises_our_errors(type_: Any, extra: dict[str, Any]) -> None:
    import json

    try:
        sign_json(json.dumps({"type": type_, **extra}), SIGNING_KEY)
    except AssertionFormatError as exc:
        assert "\n" not in exc.message
