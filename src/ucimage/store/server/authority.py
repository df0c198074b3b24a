"""The store's signing authority: its root and store keys, and assertion indexing.

Assertion encoding, signing and decoding come from :mod:`ucimage.assertions`;
this module only decides *what* the store signs.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ucimage.assertions import (
    Assertion,
    PrivateKey,
    decode,
    decode_stream,
    encode_stream,
    sign,
)
from ucimage.assertions.types import lookup
from ucimage.store.errors import StoreSetupError

ROOT_KEY_FILE = "keys/root.pem"
STORE_KEY_FILE = "keys/store.pem"


def sign_assertion(headers: Mapping[str, Any], body: bytes, key: PrivateKey) -> Assertion:
    """Sign with :func:`ucimage.assertions.sign` (fills ``sign-key-sha3-384``)."""
    return sign(dict(headers), body, key)


@dataclass(frozen=True)
class IndexedAssertion:
    type: str
    primary_key: tuple[str, ...]
    revision: int
    format: int
    sequence_key: tuple[str, ...] | None
    sequence: int | None
    content: bytes


def primary_key_names(type_name: str) -> tuple[str, ...] | None:
    atype = lookup(type_name)
    return None if atype is None or not atype.primary_key else atype.primary_key


def index_assertion(content: bytes | Assertion) -> IndexedAssertion:
    """How the store files an assertion: type, full primary key, revision, format."""
    a = content if isinstance(content, Assertion) else decode(content)
    pk = a.primary_key
    seq_key: tuple[str, ...] | None = None
    seq: int | None = None
    if a.type_info.sequence_forming and pk:
        seq_key, seq = pk[:-1], int(pk[-1])
    return IndexedAssertion(a.type, pk, a.revision, a.format, seq_key, seq, a.encode())


def split_stream(content: bytes) -> list[Assertion]:
    return decode_stream(content)


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def account_key(
    authority_id: str, account_id: str, name: str, key: PrivateKey, signer: PrivateKey, since: str
) -> Assertion:
    return sign_assertion(
        {
            "type": "account-key",
            "authority-id": authority_id,
            "account-id": account_id,
            "name": name,
            "public-key-sha3-384": key.id,
            "since": since,
        },
        key.public_key().encode().encode("ascii"),
        signer,
    )


def create_authority(root: Path, authority_id: str, *, key_bits: int = 4096) -> list[bytes]:
    """Make the root and store keys; write ``root.assert``; return every assertion made."""
    root_key = PrivateKey.generate(key_bits)
    store_key = PrivateKey.generate(key_bits)
    since = _now()
    account = sign_assertion(
        {
            "type": "account",
            "authority-id": authority_id,
            "account-id": authority_id,
            "display-name": f"{authority_id} (ucimage store)",
            "username": authority_id,
            "validation": "verified",
            "timestamp": since,
        },
        b"",
        root_key,
    )
    root_ak = account_key(authority_id, authority_id, "root", root_key, root_key, since)
    store_ak = account_key(authority_id, authority_id, "store", store_key, root_key, since)
    _write_private(root / ROOT_KEY_FILE, root_key.to_pem())
    _write_private(root / STORE_KEY_FILE, store_key.to_pem())
    (root / "root.assert").write_bytes(encode_stream([account, root_ak]))
    return [account.encode(), root_ak.encode(), store_ak.encode()]


class Authority:
    """The keys of an open store."""

    def __init__(self, authority_id: str, root_key: PrivateKey, store_key: PrivateKey) -> None:
        self.authority_id = authority_id
        self.root_key = root_key
        self.store_key = store_key

    @classmethod
    def load(cls, root: Path) -> Authority:
        import json

        try:
            config = json.loads((root / "store.json").read_text())
            root_key = PrivateKey.from_pem((root / ROOT_KEY_FILE).read_bytes())
            store_key = PrivateKey.from_pem((root / STORE_KEY_FILE).read_bytes())
        except (OSError, ValueError, KeyError) as exc:
            raise StoreSetupError(f"cannot load the keys of store {str(root)!r}: {exc}") from exc
        return cls(config["authority-id"], root_key, store_key)

    def sign_store_assertion(self, type_name: str, headers: Mapping[str, Any]) -> bytes:
        """Sign a snap-declaration / snap-revision with the store key."""
        full = {"type": type_name, "authority-id": self.authority_id, **headers}
        return sign_assertion(full, b"", self.store_key).encode()

    def sign_as_root(self, headers: Mapping[str, Any], body: bytes = b"") -> bytes:
        """Sign an account / account-key for a publisher with the root key."""
        full = {"authority-id": self.authority_id, **headers}
        return sign_assertion(full, body, self.root_key).encode()
