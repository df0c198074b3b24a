"""Snap blobs on disk, named by their SHA3-384 (hex).

Uploads stream into ``blobs/.incoming/`` and are renamed into place only
when complete and fsynced, so a killed server never leaves a half blob under
a digest name.  :meth:`BlobStore.recover` removes leftovers at start-up.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Incoming:
    """One upload being written: hashes and counts as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = path.open("wb")
        self._hash = hashlib.sha3_384()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._fh.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def finish(self) -> str:
        """Flush and fsync; return the hex digest."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming_dir = root / ".incoming"
        self.incoming_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha3_hex: str) -> Path:
        return self.root / sha3_hex[:2] / f"{sha3_hex}.snap"

    def new_incoming(self) -> Incoming:
        return Incoming(self.incoming_dir / f"{uuid.uuid4().hex}.part")

    def commit(self, incoming: Incoming, sha3_hex: str) -> Path:
        """Move a finished upload to its digest name (atomic, durable)."""
        target = self.path_for(sha3_hex)
        target.parent.mkdir(exist_ok=True)
        os.replace(incoming.path, target)
        fsync_dir(target.parent)
        return target

    def has(self, sha3_hex: str) -> bool:
        return self.path_for(sha3_hex).is_file()

    def remove(self, sha3_hex: str) -> None:
        self.path_for(sha3_hex).unlink(missing_ok=True)

    def recover(self, referenced: Iterable[str]) -> list[str]:
        """Drop interrupted uploads and blobs no revision refers to; return what went."""
        removed: list[str] = []
        keep = set(referenced)
        for leftover in self.incoming_dir.iterdir():
            leftover.unlink(missing_ok=True)
            removed.append(str(leftover))
        for sub in self.root.iterdir():
            if sub.name.startswith(".") or not sub.is_dir():
                continue
            for blob in sub.glob("*.snap"):
                if blob.stem not in keep:
                    blob.unlink(missing_ok=True)
                    removed.append(str(blob))
            if not any(sub.iterdir()):
                sub.rmdir()
        return removed
