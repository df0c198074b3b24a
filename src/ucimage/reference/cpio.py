"""A reproducible ``newc`` cpio writer for initramfs images.

Written here rather than run through ``cpio`` so every header field is ours:
entries sorted by path, owned by root, one fixed mtime, inode numbers counted
from 1. The kernel unpacks exactly this format (``070701``).
"""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass
from pathlib import Path

NEWC_MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class CpioEntry:
    """One archive member: a directory, a regular file or a symlink."""

    path: str  # relative, no leading slash
    mode: int  # full st_mode (type and permission bits)
    data: bytes = b""  # file contents, or the symlink target


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(entry_name: bytes, ino: int, mode: int, nlink: int, mtime: int, size: int) -> bytes:
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0, len(entry_name) + 1, 0)
    return NEWC_MAGIC + b"".join(f"{v:08X}".encode() for v in fields)


def write_newc(entries: list[CpioEntry], mtime: int) -> bytes:
    """The uncompressed newc archive of *entries* (sorted by path) plus trailer."""
    out = bytearray()
    for ino, entry in enumerate(sorted(entries, key=lambda e: e.path), start=1):
        name = entry.path.encode()
        nlink = 2 if stat.S_ISDIR(entry.mode) else 1
        size = 0 if stat.S_ISDIR(entry.mode) else len(entry.data)
        head = _header(name, ino, entry.mode, nlink, mtime, size)
        out += head + name + b"\0"
        out += _pad4(len(head) + len(name) + 1)
        if size:
            out += entry.data + _pad4(size)
    head = _header(TRAILER.encode(), 0, 0, 1, 0, 0)
    out += head + TRAILER.encode() + b"\0"
    out += _pad4(len(head) + len(TRAILER) + 1)
    return bytes(out)


def entries_from_tree(root: Path) -> list[CpioEntry]:
    """Entries for everything under *root* (dirs, files, symlinks), modes kept."""
    entries: list[CpioEntry] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            entries.append(CpioEntry(rel, stat.S_IFLNK | 0o777, str(path.readlink()).encode()))
        elif stat.S_ISDIR(st.st_mode):
            entries.append(CpioEntry(rel, stat.S_IFDIR | 0o755))
        elif stat.S_ISREG(st.st_mode):
            perm = 0o755 if st.st_mode & 0o111 else 0o644
            entries.append(CpioEntry(rel, stat.S_IFREG | perm, path.read_bytes()))
    return entries


def gzip_initramfs(tree: Path, mtime: int) -> bytes:
    """*tree* as a gzip-compressed newc archive, byte-identical for identical input."""
    return gzip.compress(write_newc(entries_from_tree(tree), mtime), compresslevel=9, mtime=0)
