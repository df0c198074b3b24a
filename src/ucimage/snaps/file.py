"""Read a ``.snap`` (a squashfs image) without root or mounts, via ``unsquashfs``."""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import List  # noqa: UP035 - 'list' is shadowed by SnapFile.list

from ucimage.errors import CommandFailedError
from ucimage.run import run
from ucimage.snaps.digest import digest_file
from ucimage.snaps.errors import InvalidSnapYamlError, NotASnapError, SnapFileNotFoundError
from ucimage.snaps.info import SnapInfo, parse_snap_yaml

#: little-endian squashfs superblock magic ("hsqs")
SQUASHFS_MAGIC = b"hsqs"


def is_squashfs(path: str | os.PathLike[str]) -> bool:
    try:
        with Path(path).open("rb") as fh:
            return fh.read(4) == SQUASHFS_MAGIC
    except OSError:
        return False


def _inner(path: str) -> str:
    """Normalise a path inside the snap to ``a/b`` (no leading slash, no ``..``)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise SnapFileNotFoundError(f"invalid path inside a snap: {path!r}")
    return "/".join(parts)


class SnapFile:
    """A ``.snap`` file on disk.

    Everything is read lazily and cached; the file is never mounted.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise NotASnapError(f"cannot read snap {str(self.path)!r}: no such file")
        if not is_squashfs(self.path):
            raise NotASnapError(
                f"cannot read snap {str(self.path)!r}: not a squashfs image",
                hint="a .snap is a squashfs file made by 'snap pack' or 'ucimage pack'",
            )

    def __repr__(self) -> str:
        return f"SnapFile({str(self.path)!r})"

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @cached_property
    def _digests(self) -> tuple[str, str, int]:
        return digest_file(self.path)

    @property
    def sha3_384_hex(self) -> str:
        """SHA3-384 of the whole file, hex (what the refresh API carries)."""
        return self._digests[0]

    @property
    def sha3_384_b64url(self) -> str:
        """SHA3-384 of the whole file, base64url (the snap-revision primary key)."""
        return self._digests[1]

    def read_file(self, path: str) -> bytes:
        """The bytes of the regular file *path* inside the snap."""
        inner = _inner(path)
        try:
            proc = run(["unsquashfs", "-no-progress", "-cat", self.path, inner])
        except CommandFailedError as exc:
            raise SnapFileNotFoundError(
                f"cannot read {inner!r} from snap {str(self.path)!r}: "
                f"{exc.stderr or 'unsquashfs failed'}"
            ) from exc
        return proc.stdout

    def read_file_or_none(self, path: str) -> bytes | None:
        try:
            return self.read_file(path)
        except SnapFileNotFoundError:
            return None

    @cached_property
    def info(self) -> SnapInfo:
        """The validated ``meta/snap.yaml``."""
        data = self.read_file_or_none("meta/snap.yaml")
        if data is None:
            raise InvalidSnapYamlError(
                f"snap {str(self.path)!r} has no meta/snap.yaml", hint="is this really a snap?"
            )
        return parse_snap_yaml(data)

    @cached_property
    def gadget_yaml(self) -> bytes | None:
        """Raw ``meta/gadget.yaml`` (gadget snaps), or None."""
        return self.read_file_or_none("meta/gadget.yaml")

    def list(self) -> list[str]:
        """Every path in the snap (``a/b``, no leading slash), directories included."""
        out = run(["unsquashfs", "-no-progress", "-d", "", "-l", self.path])
        paths: list[str] = []
        for line in out.stdout.decode("utf-8", "surrogateescape").splitlines():
            entry = line.lstrip("/")
            if entry:
                paths.append(entry)
        return paths

    def list_long(self) -> List[tuple[str, str, int]]:  # noqa: UP006
        """``(mode, path, size)`` for every entry (from ``unsquashfs -lln``)."""
        out = run(["unsquashfs", "-no-progress", "-d", "", "-lln", self.path])
        entries: List[tuple[str, str, int]] = []  # noqa: UP006
        pattern = re.compile(r"^(\S+) (\S+)\s+(\d+) \S+ \S+ /?(.*?)(?: -> .*)?$")
        for line in out.stdout.decode("utf-8", "surrogateescape").splitlines():
            m = pattern.match(line)
            if m and m.group(4):
                entries.append((m.group(1), m.group(4), int(m.group(3))))
        return entries

    def extract(
        self,
        dest: str | os.PathLike[str],
        paths: List[str] | None = None,  # noqa: UP006
    ) -> Path:
        """Extract the snap (or only *paths*, files or directories) under *dest*."""
        dest_path = Path(dest)
        dest_path.parent.mkdir(parents=True, exist_ok=True)
        argv: List[str | os.PathLike[str]] = [  # noqa: UP006
            "unsquashfs",
            "-no-progress",
            "-no-xattrs",
            "-f",
            "-d",
            dest_path,
            self.path,
        ]
        if paths:
            argv.extend(_inner(p) for p in paths)
        try:
            run(argv)
        except CommandFailedError as exc:
            raise SnapFileNotFoundError(
                f"cannot extract from snap {str(self.path)!r}: {exc.stderr or exc.message}"
            ) from exc
        if paths:
            missing = [p for p in paths if not (dest_path / _inner(p)).exists()]
            if missing:
                raise SnapFileNotFoundError(
                    f"cannot extract from snap {str(self.path)!r}: not found: {', '.join(missing)}"
                )
        return dest_path
