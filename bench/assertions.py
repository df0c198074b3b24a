"""Benchmark: decoding, verifying and signing assertions.

Decodes every test vector, checks the Canonical-rooted chains, and signs models
with an RSA-4096 key; prints per-operation times.  No targets in issue 2; the
figures show the costs a build or a store pays per assertion.
Run: ``.venv/bin/python bench/assertions.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ucimage.assertions import (  # noqa: E402
    AssertionVerifyError,
    Database,
    PrivateKey,
    decode_stream,
    sign,
)
from ucimage.assertions.crypto import pkcs1_sha512_valid  # noqa: E402

VECTORS = REPO.parent / "shared" / "testdata" / "assertions"
SUFFIXES = {".assert", ".model", ".account", ".account-key", ".account-key-request"}


def timed(label: str, count: int, fn: object) -> None:
    assert callable(fn)
    start = time.perf_counter()
    for _ in range(count):
        fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<44} {elapsed / count * 1e3:8.3f} ms/op  ({count} ops)")


def main() -> int:
    blobs = []
    for path in sorted(VECTORS.rglob("*")):
        if path.suffix in SUFFIXES and "odd-invalid" not in path.name:
            blobs.append(path.read_bytes())
    total = sum(len(b) for b in blobs)
    print(f"{len(blobs)} vector files, {total} bytes")

    def decode_all() -> None:
        for blob in blobs:
            decode_stream(blob)

    timed("decode all vectors", 50, decode_all)
    assertions = [a for blob in blobs for a in decode_stream(blob)]

    def verify_all() -> None:
        # as in a fresh process: no signature verified before (the check is memoized)
        pkcs1_sha512_valid.cache_clear()
        db = Database()
        for a in assertions:
            try:
                db.add(a)
            except AssertionVerifyError:
                pass
        for a in assertions:
            try:
                db.check(a)
            except AssertionVerifyError:
                pass

    timed("fresh database, add + check all", 10, verify_all)
    sigs = pkcs1_sha512_valid.cache_info().currsize
    print(f"{'  (of which distinct RSA verifications)':<44} {sigs:8d}")
    start = time.perf_counter()
    key = PrivateKey.generate(4096)
    print(f"{'generate RSA-4096 key':<44} {(time.perf_counter() - start) * 1e3:8.3f} ms")
    headers = {
        "type": "model",
        "authority-id": "bench",
        "brand-id": "bench",
        "series": "16",
        "model": "m",
        "architecture": "amd64",
        "gadget": "pc=18",
        "kernel": "pc-kernel=18",
        "base": "core18",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    timed("sign a model (RSA-4096)", 20, lambda: sign(headers, b"", key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
