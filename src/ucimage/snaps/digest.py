"""SHA3-384 digests of snap files, streamed in constant memory."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

#: read size while hashing; large enough to keep hashlib busy, small enough for constant memory
CHUNK = 1 << 20


def b64url(raw: bytes) -> str:
    """Base64url without padding: how assertions spell digests and key ids."""
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def hex_to_b64url(hex_digest: str) -> str:
    """Convert a store's hex SHA3-384 (refresh API) into the assertion form."""
    return b64url(bytes.fromhex(hex_digest))


def b64url_to_hex(b64: str) -> str:
    """Convert an assertion's base64url SHA3-384 into hex."""
    return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()


def digest_file(path: str | os.PathLike[str]) -> tuple[str, str, int]:
    """``(hex, base64url, size)`` of the SHA3-384 of the whole file at *path*."""
    hasher = hashlib.sha3_384()
    size = 0
    with Path(path).open("rb") as fh:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            hasher.update(view[:n])
            size += n
    raw = hasher.digest()
    return raw.hex(), b64url(raw), size
