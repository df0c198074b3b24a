"""Assertions: codec, OpenPGP keys and signatures, types and rules, trust database.

snapd-compatible in both directions (spec: ``shared/docs/assertions.md``).  The
stable API, re-exported here:

Codec (:mod:`.codec`)
    ``Assertion``: immutable; ``.type``, ``.headers`` (dict; values are ``str``,
    ``list`` or ``dict``, never ints), ``.body: bytes``, ``.signature: bytes`` (the
    encoded signature text as on the wire), ``.content`` (the signed bytes),
    ``.header(name)`` (None if absent), ``.primary_key`` (tuple of str, optional
    defaults filled in), ``.ref`` (:class:`Ref`: type + primary key, ``.path`` for
    ``/v2/assertions/<path>``), ``.sign_key_id``, ``.authority_id``, ``.revision``,
    ``.format``, ``.timestamp`` (aware datetime or None), ``.encode() -> bytes``
    (exactly the bytes decoded), ``.canonical_content()``.

    ``decode(data) -> Assertion`` (one assertion), ``decode_stream(data) -> list``,
    ``encode_stream(list) -> bytes`` (one blank line between, each ends in ``\\n``).
    ``MEDIA_TYPE`` is the HTTP media type of streams.

Keys (:mod:`.crypto`)
    ``PrivateKey.generate(bits=4096)``, ``.public_key()``, ``.id``,
    ``.to_pem(passphrase=None)`` / ``PrivateKey.from_pem(data, passphrase=None)``
    (our key file format: PKCS#8 PEM, encrypted when there is a passphrase).
    ``PublicKey``: ``.id`` (the sha3-384 key id), ``.encode()`` (the v1 base64
    text of an account-key body, no trailing newline), ``PublicKey.decode(text)``.
    ``key_id(public_key_text)`` is a shortcut.

Signing (:mod:`.signing`)
    ``sign(headers, body, key, *, when=None) -> Assertion``: fills ``type``,
    ``body-length`` and ``sign-key-sha3-384``; checks names, value kinds, format,
    revision, primary keys and the type's rules first (snapd's wording).
    ``sign_json(text, key, *, when=None)`` is ``snap sign`` (JSON object, ``body`` key).
    Minting helpers: ``account(authority_key, authority_id, account_id, ...)``,
    ``account_key(authority_key, authority_id, account_id, public_key, name=..., since=...)``
    (self-signed: a root of one's own), ``account_key_request(key, account_id, name)``.

Keyring (:mod:`.keyring`)
    ``Keyring(directory=None)`` (``--keyring`` / ``$UCIMAGE_KEYRING`` / XDG data dir):
    ``.create(name, bits=4096, passphrase=None)``, ``.add(name, key, passphrase)``,
    ``.load(name, passphrase)``, ``.public_key(name)``, ``.list()``, ``.delete(name)``.
    Files are 0600 in a 0700 directory.  ``load_foreign_key(data, passphrase)``
    reads gpg secret-key exports and PEM files.

Trust (:mod:`.database`)
    ``Database(trusted=None, *, extra_trusted=(), now=None)``: ``trusted`` defaults
    to the built-in Canonical root plus ``*.assert`` in ``trusted_config_dir()``.
    ``.add(a)`` / ``.add_many(it)`` / ``.add_stream(bytes)`` add to the pool
    unchecked (highest revision wins); ``.check(a)`` verifies *a* and its chain
    (raises ``AssertionVerifyError``, e.g. ``account-key 9tyd… of canonical not
    available``); ``.check_signature(a)`` (key chain and signature only, no
    prerequisites); ``.find(type, **primary_key)`` (``brand_id=`` for ``brand-id``;
    raises ``AssertionNotFoundError``); ``.get(ref)``; ``.select(type, **headers)``;
    ``.verify_all() -> [(assertion, error or None)]``; ``.chain(a)`` (what *a*
    needs, dependencies first, trusted roots excluded: for seeds and bundles).
    ``prerequisites(a) -> list[Ref]``: what to fetch to check *a* (e.g. a
    snap-revision needs its snap-declaration, the developer account and its
    signing account-key).  ``builtin_trusted()``, ``load_assertion_files(paths)``.
    ``verify_files(paths, trusted_files=..., canonical=False) -> [VerifyResult]`` is
    ``ucimage verify``; ``canonical_difference(a)`` names the first non-canonical line.

Errors (:mod:`.errors`), all ``ucimage.errors.UcimageError``
    ``AssertionFormatError`` (bad text or rules), ``AssertionVerifyError``
    (signature, key, chain; ``AssertionRevisionError`` is one),
    ``AssertionNotFoundError``, ``KeyringError``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ucimage.assertions.codec import (
    MEDIA_TYPE,
    Assertion,
    Ref,
    assemble_content,
    decode,
    decode_stream,
    encode_stream,
)
from ucimage.assertions.crypto import PrivateKey, PublicKey, Signature, sha3_384_digest
from ucimage.assertions.database import (
    Database,
    builtin_trusted,
    configured_trusted,
    load_assertion_files,
    prerequisites,
    trusted_config_dir,
)
from ucimage.assertions.errors import (
    AssertionFormatError,
    AssertionNotFoundError,
    AssertionRevisionError,
    AssertionVerifyError,
    KeyringError,
)

if TYPE_CHECKING:
    from ucimage.assertions.keyring import Keyring, keyring_dir
    from ucimage.assertions.openpgp import load_foreign_key
    from ucimage.assertions.signing import (
        account,
        account_key,
        account_key_request,
        headers_from_json,
        sign,
        sign_json,
    )
    from ucimage.assertions.verify import VerifyResult, canonical_difference, verify_files

#: names whose modules load when first asked for: checking signatures (ucimage snap,
#: inspect) never needs keys, signing or file verification
_LAZY = {
    "Keyring": "keyring",
    "keyring_dir": "keyring",
    "load_foreign_key": "openpgp",
    "account": "signing",
    "account_key": "signing",
    "account_key_request": "signing",
    "headers_from_json": "signing",
    "sign": "signing",
    "sign_json": "signing",
    "VerifyResult": "verify",
    "canonical_difference": "verify",
    "verify_files": "verify",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def key_id(public_key_text: str | bytes) -> str:
    """The sha3-384 key id of a v1-encoded public key (an account-key body)."""
    return PublicKey.decode(public_key_text).id


__all__ = [
    "MEDIA_TYPE",
    "Assertion",
    "AssertionFormatError",
    "AssertionNotFoundError",
    "AssertionRevisionError",
    "AssertionVerifyError",
    "Database",
    "Keyring",
    "KeyringError",
    "PrivateKey",
    "PublicKey",
    "Ref",
    "Signature",
    "VerifyResult",
    "account",
    "account_key",
    "account_key_request",
    "assemble_content",
    "builtin_trusted",
    "canonical_difference",
    "configured_trusted",
    "decode",
    "decode_stream",
    "encode_stream",
    "headers_from_json",
    "key_id",
    "keyring_dir",
    "load_assertion_files",
    "load_foreign_key",
    "prerequisites",
    "sha3_384_digest",
    "sign",
    "sign_json",
    "trusted_config_dir",
    "verify_files",
]
