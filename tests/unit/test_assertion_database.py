"""Database semantics: revisions, trusted roots, prerequisites and chains (a store's view)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from ucimage.assertions import (
    Assertion,
    AssertionFormatError,
    AssertionNotFoundError,
    AssertionRevisionError,
    AssertionVerifyError,
    Database,
    PrivateKey,
    Ref,
    account,
    account_key,
    prerequisites,
    sha3_384_digest,
    sign,
)

TS = "2024-01-01T00:00:00Z"
ROOT = "acme-root"


class Store:
    """A self-rooted store: a root key (trusted), a store key, a publisher."""

    def __init__(self) -> None:
        self.root_key = PrivateKey.generate(bits=2048)
        self.store_key = PrivateKey.generate(bits=2048)
        self.roots = [
            account(self.root_key, ROOT, ROOT, timestamp=TS),
            account_key(self.root_key, ROOT, ROOT, self.root_key.public_key(), name="root",
                        since=TS),
        ]  # fmt: skip
        self.store_account_key = account_key(
            self.root_key, ROOT, ROOT, self.store_key.public_key(), name="store", since=TS
        )
        self.publisher = account(self.store_key, ROOT, "publisher", timestamp=TS)

    def declaration(self, snap_id: str, name: str, **extra: Any) -> Assertion:
        headers = {
            "type": "snap-declaration",
            "authority-id": ROOT,
            "series": "16",
            "snap-id": snap_id,
            "snap-name": name,
            "publisher-id": "publisher",
            "timestamp": TS,
            **extra,
        }
        return sign(headers, b"", self.store_key)

    def revision(self, snap_id: str, data: bytes, revision: int = 1, **extra: Any) -> Assertion:
        headers = {
            "type": "snap-revision",
            "authority-id": ROOT,
            "snap-sha3-384": sha3_384_digest(data),
            "snap-id": snap_id,
            "snap-size": str(len(data)),
            "snap-revision": str(revision),
            "developer-id": "publisher",
            "timestamp": TS,
            **extra,
        }
        return sign(headers, b"", self.store_key)


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    yield Store()


SNAP_ID = "a" * 32


def test_snap_revision_chain(store: Store) -> None:
    decl = store.declaration(SNAP_ID, "hello")
    rev = store.revision(SNAP_ID, b"squashfs bytes")
    assert [str(r) for r in prerequisites(rev)] == [
        f"snap-declaration 16/{SNAP_ID}",
        "account publisher",
        f"account-key {store.store_key.id}",
    ]
    db = Database(trusted=store.roots)
    db.add_many([rev, decl, store.publisher, store.store_account_key])
    db.check(rev)
    # dependencies first, the trusted roots left out
    assert db.chain(rev) == [store.store_account_key, store.publisher, decl]
    assert db.find("snap-revision", snap_sha3_384=sha3_384_digest(b"squashfs bytes")) == rev
    assert rev.primary_key == (sha3_384_digest(b"squashfs bytes"), "global-upload")
    assert rev.ref.path.endswith("/global-upload")
    assert db.select("snap-declaration", snap_name="hello") == [decl]
    assert hashlib.sha3_384(b"x").digest()  # the digest is plain SHA3-384 of the file


def test_missing_link_is_named(store: Store) -> None:
    rev = store.revision(SNAP_ID, b"other bytes")
    db = Database(trusted=store.roots)
    db.add_many([rev, store.store_account_key, store.publisher])
    with pytest.raises(AssertionVerifyError) as exc:
        db.check(rev)
    assert exc.value.message == (
        f'snap-revision assertion for snap id "{SNAP_ID}" does not have a matching '
        "snap-declaration assertion"
    )
    with pytest.raises(AssertionNotFoundError, match=f"snap-declaration 16/{SNAP_ID} needed by"):
        db.chain(rev)


def test_store_key_must_belong_to_a_trusted_account(store: Store) -> None:
    # a declaration signed by a key of a non-root account is refused
    other = PrivateKey.generate(bits=2048)
    key_of_publisher = account_key(
        store.root_key, ROOT, "publisher", other.public_key(), name="pub", since=TS
    )
    decl = sign(
        {
            "type": "snap-declaration",
            "authority-id": "publisher",
            "series": "16",
            "snap-id": "b" * 32,
            "snap-name": "sneaky",
            "publisher-id": "publisher",
            "timestamp": TS,
        },
        b"",
        other,
    )
    db = Database(trusted=store.roots)
    db.add_many([store.publisher, store.store_account_key, key_of_publisher, decl])
    with pytest.raises(AssertionVerifyError, match="not signed by a directly trusted authority"):
        db.check(decl)


def test_revisions(store: Store) -> None:
    db = Database(trusted=store.roots)
    first = account(store.store_key, ROOT, "dev", timestamp=TS)
    second = account(store.store_key, ROOT, "dev", timestamp=TS, revision=1, display_name="Dev")
    db.add(first)
    db.add(first)  # the same bytes again: no-op
    db.add(second)
    assert db.find("account", account_id="dev") == second
    with pytest.raises(AssertionRevisionError, match="revision 0 is older than current"):
        db.add(first)
    # the trusted roots cannot be replaced
    with pytest.raises(AssertionVerifyError, match="would replace a trusted"):
        db.add(account(store.root_key, ROOT, ROOT, timestamp="2025-01-01T00:00:00Z"))
    db.add(store.roots[0])  # but adding the identical root is fine
    assert db.is_trusted_account(ROOT) and not db.is_trusted_account("dev")


def test_find_errors(store: Store) -> None:
    db = Database(trusted=store.roots)
    with pytest.raises(AssertionNotFoundError, match="primary key header 'model' not given"):
        db.find("model", series="16", brand_id="x")
    with pytest.raises(AssertionNotFoundError, match="unknown assertion type"):
        db.find("nonsense", x="y")
    with pytest.raises(AssertionNotFoundError, match="model 16/x/y not found"):
        db.find("model", series="16", brand_id="x", model="y")
    assert db.get(Ref("account", (ROOT,))) == store.roots[0]


def test_provenance_needs_revision_authority(store: Store) -> None:
    delegate = PrivateKey.generate(bits=2048)
    delegate_account = account(store.store_key, ROOT, "delegate", timestamp=TS)
    delegate_key = account_key(
        store.root_key, ROOT, "delegate", delegate.public_key(), name="d", since=TS
    )
    snap_id = "c" * 32
    authorised = store.declaration(
        snap_id,
        "delegated",
        **{
            "revision-authority": [
                {"account-id": "delegate", "provenance": ["lab"], "min-revision": "1"}
            ]
        },
    )
    rev_headers = {
        "type": "snap-revision",
        "authority-id": "delegate",
        "snap-sha3-384": sha3_384_digest(b"lab build"),
        "provenance": "lab",
        "snap-id": snap_id,
        "snap-size": "9",
        "snap-revision": "3",
        "developer-id": "publisher",
        "timestamp": TS,
    }
    rev = sign(rev_headers, b"", delegate)
    assert rev.primary_key[1] == "lab"
    db = Database(trusted=store.roots)
    db.add_many([store.store_account_key, store.publisher, delegate_account, delegate_key])
    db.add_many([authorised, rev])
    db.check(rev)
    # another provenance is not authorised
    other = sign({**rev_headers, "provenance": "elsewhere"}, b"", delegate)
    db.add(other)
    with pytest.raises(AssertionVerifyError, match="is not signed by an authorized authority"):
        db.check(other)


def test_unknown_types_are_kept_apart(store: Store) -> None:
    from ucimage.assertions import decode

    def thing(n: int) -> Assertion:
        content = (
            f"type: frobnicate\nauthority-id: {ROOT}\nnumber: {n}\n"
            f"sign-key-sha3-384: {store.root_key.id}"
        ).encode()
        sig = store.root_key.sign(content).encode().encode()
        return decode(content + b"\n\n" + sig + b"\n")

    db = Database(trusted=store.roots)
    one, two = thing(1), thing(2)
    assert one.primary_key == () and not one.known_type
    db.add(one)
    db.add(two)
    assert len(db) == 2
    db.check(one)  # generic: signature and key chain only


def test_serial_request_and_serial(store: Store) -> None:
    """A device signs its serial-request with its own key; the brand issues the serial."""
    device = PrivateKey.generate(bits=2048)
    device_key = device.public_key().encode()
    request = sign(
        {
            "type": "serial-request",
            "brand-id": ROOT,
            "model": "widget",
            "request-id": "REQ-1",
            "device-key": device_key,
        },
        b"",
        device,
    )
    assert request.authority_id is None and request.primary_key == ()
    db = Database(trusted=store.roots)
    db.check(request)
    # a request whose device-key is not the signing key is refused up front
    with pytest.raises(AssertionFormatError, match="device key does not match included signing"):
        sign(
            {
                "type": "serial-request",
                "brand-id": ROOT,
                "model": "widget",
                "request-id": "REQ-1",
                "device-key": PrivateKey.generate(bits=1024).public_key().encode(),
            },
            b"",
            device,
        )
    serial = sign(
        {
            "type": "serial",
            "authority-id": ROOT,
            "brand-id": ROOT,
            "model": "widget",
            "serial": "0001",
            "device-key": device_key,
            "device-key-sha3-384": device.id,
            "timestamp": TS,
        },
        b"",
        store.root_key,
    )
    assert serial.headers["device-key"] == device_key
    db.check(serial)
    # a serial from another authority needs the model's serial-authority
    other_key = PrivateKey.generate(bits=1024)
    publisher_key = account_key(
        store.root_key, ROOT, "publisher", other_key.public_key(), name="serials", since=TS
    )
    other = sign(
        {
            "type": "serial",
            "authority-id": "publisher",
            "brand-id": ROOT,
            "model": "widget",
            "serial": "0002",
            "device-key": device_key,
            "device-key-sha3-384": device.id,
            "timestamp": TS,
        },
        b"",
        other_key,
    )
    db.add_many([store.publisher, store.store_account_key, publisher_key])
    with pytest.raises(AssertionVerifyError, match="without model assertion with serial-authority"):
        db.check(other)
