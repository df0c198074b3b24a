"""Core assertion API: vectors round-trip, chains verify, snap sign parity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import TESTDATA
from ucimage.assertions import (
    Assertion,
    AssertionFormatError,
    AssertionNotFoundError,
    AssertionVerifyError,
    Database,
    PrivateKey,
    PublicKey,
    decode,
    decode_stream,
    encode_stream,
    prerequisites,
    sign,
    sign_json,
)
from ucimage.assertions.crypto import Signature

VECTORS = TESTDATA / "assertions"
SNAP_SIGN = VECTORS / "snap-sign"
SUFFIXES = {".assert", ".model", ".account", ".account-key", ".account-key-request"}
ALL_FILES = sorted(p for p in VECTORS.rglob("*") if p.suffix in SUFFIXES)
#: snap sign accepted this one; snapd's decoder (and ours) rejects it
INVALID = {"odd-invalid-header-name.assert"}
VALID_FILES = [p for p in ALL_FILES if p.name not in INVALID]
ROOT_ID = "-CvQKAwRQ5h3Ffn10FILJoEZUXOv6km9FwA80-Rcj-f-6jadQ89VRswHNiEB9Lxk"
MODELS_ID = "9tydnLa6MTJ-jaQTFUXEwHl1yRx7ZS4K5cyFDhYDcPzhS7uyEkDxdUjg9g08BtNn"
TESTKEY1_ID = "7CuZk6mTBm00ORwXvDRH8_CTLgL970-Wqxtw4UT3m5UntguXNEJgdh-g-7nUi2DC"


def _id(p: Path) -> str:
    return str(p.relative_to(VECTORS))


def test_vectors_exist() -> None:
    assert len(VALID_FILES) >= 35


@pytest.mark.parametrize("path", VALID_FILES, ids=_id)
def test_round_trip_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    assertions = decode_stream(data)
    assert assertions
    assert encode_stream(assertions) == data
    for a in assertions:
        # canonical order: re-assembling the parsed headers gives the signed bytes
        assert a.canonical_content() == a.content
        assert decode(a.encode()).encode() == a.encode()
    if len(assertions) == 1:
        assert decode(data).encode() == data


def test_invalid_header_name_vector_is_rejected() -> None:
    data = (SNAP_SIGN / "outputs" / "odd-invalid-header-name.assert").read_bytes()
    with pytest.raises(AssertionFormatError, match='invalid header name: "Bad_Name"'):
        decode(data)


def test_assertion_accessors() -> None:
    a = decode((VECTORS / "snapcore-models" / "ubuntu-core-20-amd64.model").read_bytes())
    assert isinstance(a, Assertion)
    assert a.type == "model"
    assert a.primary_key == ("16", "canonical", "ubuntu-core-20-amd64")
    assert a.authority_id == "canonical"
    assert a.sign_key_id == MODELS_ID
    assert a.timestamp == dt.datetime(2019, 11, 14, 7, 13, 24, tzinfo=dt.UTC)
    assert a.header("grade") == "signed"
    assert a.header("nope") is None
    snaps = a.headers["snaps"]
    assert snaps[0] == {
        "default-channel": "20/stable",
        "id": "UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH",
        "name": "pc",
        "type": "gadget",
    }
    assert a.ref.path == "model/16/canonical/ubuntu-core-20-amd64"
    assert a.signature.startswith(b"AcL")
    assert a.content + b"\n\n" + a.signature == a.encode()


def test_multiline_and_nested_headers() -> None:
    a = decode((SNAP_SIGN / "outputs" / "model-with-body-multiline.assert").read_bytes())
    assert a.headers["display-name"] == "line one\nline two\n\n  indented line four"
    assert a.headers["x-custom-map"] == {
        "alpha": {"nested": ["a", "b\nc"]},
        "empty-value": "",
        "zeta": "last",
    }
    assert a.body == b"free text body\nsecond line\n"
    assert a.revision == 2


def test_root_key_id() -> None:
    a = decode((VECTORS / "canonical-root.account-key").read_bytes())
    key = PublicKey.decode(a.body)
    assert key.id == ROOT_ID == a.headers["public-key-sha3-384"]
    assert key.bits == 8192
    assert key.encode().encode() == a.body


@pytest.fixture(scope="module")
def testkey1() -> PrivateKey:
    return PrivateKey.from_pem((SNAP_SIGN / "keys" / "testkey1.private.pem").read_bytes())


def test_testkey1_matches_export(testkey1: PrivateKey) -> None:
    assert testkey1.id == TESTKEY1_ID
    exported = (SNAP_SIGN / "keys" / "testkey1.export-key.txt").read_text()
    assert testkey1.public_key().encode() + "\n" == exported
    assert testkey1.public_key().fingerprint.hex().upper() == (
        "5EC4DC086710B6F591A25BB83BFD1998D573AA60"
    )


def _canonical_chain_files() -> list[Path]:
    return [p for p in VALID_FILES if "snap-sign" not in p.parts]


def test_chains_verify_to_canonical_root() -> None:
    db = Database()
    everything = [a for p in _canonical_chain_files() for a in decode_stream(p.read_bytes())]
    for a in everything:
        try:
            db.add(a)
        except AssertionVerifyError:
            pass  # the same model name in several vectors
    verified = failed = 0
    for a in everything:
        if a.sign_key_id == MODELS_ID:
            with pytest.raises(AssertionVerifyError) as exc:
                db.check(a)
            assert exc.value.message == f"account-key {MODELS_ID} of canonical not available"
            assert "\n" not in exc.value.message
            failed += 1
        elif a.type == "snap-revision":
            # the docs' snap-revision comes without its snap-declaration
            with pytest.raises(AssertionVerifyError, match="snap-declaration"):
                db.check(a)
            db.check_signature(a)  # signed by the store key, which chains to the root
        else:
            db.check(a)
            verified += 1
    assert failed == 7
    assert verified >= 19


@pytest.mark.parametrize(
    "path",
    [p for p in (SNAP_SIGN / "outputs").glob("*.assert") if p.name not in INVALID],
    ids=lambda p: p.stem,
)
def test_snap_sign_outputs_verify_and_reproduce(path: Path, testkey1: PrivateKey) -> None:
    root = decode_stream((SNAP_SIGN / "outputs" / "account-key-self.assert").read_bytes())
    db = Database(extra_trusted=root)
    db.add_stream((SNAP_SIGN / "outputs" / "account-self.assert").read_bytes())
    a = decode(path.read_bytes())
    db.check(a)
    created = Signature.decode(a.signature).created
    mine = sign_json(
        (SNAP_SIGN / "inputs" / f"{path.stem}.json").read_bytes(),
        testkey1,
        when=created,
        style="gnupg",
    )
    assert mine.encode() == a.encode()
    # and snapd's own signer style: same content, different but valid signature
    plain = sign_json((SNAP_SIGN / "inputs" / f"{path.stem}.json").read_bytes(), testkey1)
    assert plain.content == a.content
    db.check(plain)


NEG_INPUTS = sorted((SNAP_SIGN / "inputs").glob("neg-*.json"))


@pytest.mark.parametrize("path", NEG_INPUTS, ids=lambda p: p.stem)
def test_snap_sign_error_wording(path: Path, testkey1: PrivateKey) -> None:
    expected = (SNAP_SIGN / "errors" / f"{path.stem}.stderr.txt").read_text().strip()
    with pytest.raises(AssertionFormatError) as exc:
        sign_json(path.read_bytes(), testkey1)
    assert f"error: {exc.value.message}" == expected


def test_self_signed_key_is_not_trusted_by_default() -> None:
    db = Database()
    db.add_stream((SNAP_SIGN / "outputs" / "account-key-self.assert").read_bytes())
    model = decode((SNAP_SIGN / "outputs" / "model-uc18.assert").read_bytes())
    with pytest.raises(AssertionVerifyError, match="self-signed but not a trusted root"):
        db.check(model)


def test_sign_generated_key_and_find() -> None:
    key = PrivateKey.generate(bits=2048)
    headers = {
        "type": "account",
        "authority-id": "brand",
        "account-id": "brand",
        "display-name": "Brand",
        "validation": "unproven",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    account = sign(headers, b"", key)
    key_headers = {
        "type": "account-key",
        "authority-id": "brand",
        "account-id": "brand",
        "name": "root",
        "public-key-sha3-384": key.id,
        "since": "2020-01-01T00:00:00Z",
    }
    account_key = sign(key_headers, key.public_key().encode(), key)
    db = Database(trusted=[account, account_key])
    model = sign(
        {
            "type": "model",
            "authority-id": "brand",
            "brand-id": "brand",
            "series": "16",
            "model": "m",
            "architecture": "amd64",
            "gadget": "pc=18",
            "kernel": "pc-kernel=18",
            "base": "core18",
            "timestamp": "2024-01-01T00:00:00Z",
        },
        b"",
        key,
    )
    db.add(model)
    db.check(model)
    assert db.find("model", series="16", brand_id="brand", model="m") == model
    with pytest.raises(AssertionNotFoundError):
        db.find("model", series="16", brand_id="brand", model="other")
    assert [str(r) for r in prerequisites(model)] == [f"account-key {key.id}"]
    assert db.chain(model) == []  # the trusted roots are not part of the chain
    assert db.verify_all() == [(model, None)]


def test_prerequisites_of_snap_revision() -> None:
    a = decode((VECTORS / "ubuntu-core-docs" / "snap-revision.assert").read_bytes())
    assert [r.type for r in prerequisites(a)] == ["snap-declaration", "account", "account-key"]


def test_snapd_style_signature_layout_matches_the_store(testkey1: PrivateKey) -> None:
    """Our default signatures are laid out like those of snapd's Go signer (the store)."""
    import base64

    store_signed = decode((VECTORS / "snapd-tests" / "test-snapd.account").read_bytes())
    theirs = Signature.decode(store_signed.signature)
    assert theirs.unhashed == b""
    key = testkey1
    ours_sig = key.sign(b"content", when=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    assert (ours_sig.sig_type, ours_sig.pk_algo, ours_sig.hash_algo) == (0, 1, 10)
    assert ours_sig.unhashed == b""
    assert len(ours_sig.hashed) == len(theirs.hashed) == 6
    assert ours_sig.hashed[:2] == theirs.hashed[:2] == b"\x05\x02"
    ours_blob = base64.b64decode(ours_sig.encode().replace("\n", ""))
    theirs_blob = base64.b64decode(store_signed.signature.replace(b"\n", b""))
    # version, packet tag and length, v4 header: all but the time, hash tag and value
    assert ours_blob[:8] == theirs_blob[:8]
    assert ours_blob[:4] == bytes.fromhex("01c2c152")
    assert ours_sig.created == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    key.public_key().verify(b"content", ours_sig)
    with pytest.raises(AssertionVerifyError):
        key.public_key().verify(b"contenT", ours_sig)
