"""Read files from filesystems inside a disk image, without mounting.

* ext2/3/4 through ``debugfs`` on ``IMAGE?offset=BYTES`` (e2fsprogs opens the
  filesystem at that byte offset of the file; read-only by default);
* vfat through mtools on ``IMAGE@@OFFSET`` (``MTOOLS_SKIP_CHECK=1``).

Both kinds offer the same small interface: :meth:`exists`, :meth:`listdir`,
:meth:`read_bytes` (small files), :meth:`extract` (one file to a local path,
streamed by the tool) and :meth:`extract_tree` (a directory, recursively).
Paths are absolute inside the filesystem, ``/`` separated.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from ucimage.errors import CommandFailedError
from ucimage.inspect.errors import FilesystemReadError
from ucimage.run import run

_MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}
#: a file we read into memory with read_bytes must not be bigger than this
SMALL_FILE_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class DirEntry:
    name: str
    is_dir: bool
    size: int


class FilesystemReader(Protocol):
    description: str

    def exists(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[DirEntry]: ...

    def read_bytes(self, path: str) -> bytes: ...

    def extract(self, path: str, dest: Path) -> None: ...

    def extract_tree(self, path: str, dest: Path) -> None: ...


def _norm(path: str) -> str:
    p = str(PurePosixPath("/") / path.lstrip("/"))
    if any(part == ".." for part in PurePosixPath(p).parts):
        raise FilesystemReadError(f"refusing path with '..': {path!r}")
    return p


def _debugfs_quote(path: str) -> str:
    # debugfs splits its -R line itself and understands double quotes
    if any(c in path for c in ' \t"'):
        if '"' in path:
            raise FilesystemReadError(
                f"cannot pass a path with a double quote to debugfs: {path!r}"
            )
        return f'"{path}"'
    return path


def _plain_name(reader: ExtReader | VfatReader, special: str) -> str:
    """The image's path, or a symlink to it when the path contains *special*."""
    path = os.fspath(reader.image)
    if special not in path:
        return path
    reader._link_dir = tempfile.TemporaryDirectory(prefix="ucimage-img-")
    link = Path(reader._link_dir.name) / "image"
    link.symlink_to(reader.image.resolve())
    return os.fspath(link)


class ExtReader:
    """Read an ext2/3/4 filesystem at *offset* of *image* with ``debugfs``."""

    def __init__(self, image: str | os.PathLike[str], offset: int, description: str = "") -> None:
        self.image = Path(image)
        self.offset = offset
        self.description = description or f"ext4 at offset {offset}"
        self._link_dir: tempfile.TemporaryDirectory[str] | None = None
        # debugfs would take a '?' in the name for the start of its options
        self._device = f"{_plain_name(self, '?')}?offset={offset}"

    def _debugfs(self, request: str, path: str) -> bytes:
        try:
            proc = run(["debugfs", "-R", request, self._device])
        except CommandFailedError as exc:
            raise FilesystemReadError(
                f"cannot read {path} from {self.description}: {exc.message}",
                hint=f"look yourself: {command_hint(self)}",
            ) from exc
        errors = [
            line
            for line in proc.stderr.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith("debugfs ")
        ]
        if errors:
            detail = errors[0].strip()
            if "not found" in detail or "File not found" in detail:
                raise FileNotFoundError(f"{path}: not found in {self.description}")
            raise FilesystemReadError(
                f"cannot read {path} from {self.description}: {detail}",
                hint=f"the filesystem may be damaged or truncated; check it with "
                f"e2fsck -fn {shlex.quote(self._device)}",
            )
        return proc.stdout

    def _ls(self, path: str) -> list[tuple[int, DirEntry]]:
        out = self._debugfs(f"ls -p {_debugfs_quote(path)}", path)
        entries = []
        for line in out.decode("utf-8", "surrogateescape").splitlines():
            # /inode/mode/uid/gid/name/size/ ; names may contain '/'? no: not in ext4
            fields = line.split("/")
            if len(fields) < 7:
                continue
            mode = int(fields[2], 8)
            name = "/".join(fields[5:-2])
            size = int(fields[-2]) if fields[-2] else 0
            entries.append((mode, DirEntry(name, (mode & 0o170000) == 0o040000, size)))
        return entries

    def exists(self, path: str) -> bool:
        p = _norm(path)
        if p == "/":
            return True
        parent, name = str(PurePosixPath(p).parent), PurePosixPath(p).name
        try:
            return any(e.name == name for _, e in self._ls(parent))
        except FileNotFoundError:
            return False

    def listdir(self, path: str) -> list[DirEntry]:
        p = _norm(path)
        entries = [e for _, e in self._ls(p) if e.name not in (".", "..")]
        if not entries and not self.exists(p):
            raise FileNotFoundError(f"{p}: not found in {self.description}")
        return entries

    def read_bytes(self, path: str) -> bytes:
        p = _norm(path)
        with tempfile.TemporaryDirectory(prefix="ucimage-inspect-") as tmp:
            dest = Path(tmp) / "file"
            self.extract(p, dest)
            if dest.stat().st_size > SMALL_FILE_LIMIT:
                raise FilesystemReadError(f"{p} in {self.description} is too big to read whole")
            return dest.read_bytes()

    def extract(self, path: str, dest: Path) -> None:
        p = _norm(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._debugfs(f"dump {_debugfs_quote(p)} {_debugfs_quote(os.fspath(dest))}", p)
        if not dest.exists():
            raise FileNotFoundError(f"{p}: not found in {self.description}")

    def extract_tree(self, path: str, dest: Path) -> None:
        """Copy directory *path* to *dest* (which must not exist yet)."""
        p = _norm(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ucimage-rdump-", dir=dest.parent) as tmp:
            self._debugfs(f"rdump {_debugfs_quote(p)} {_debugfs_quote(tmp)}", p)
            got = Path(tmp) / PurePosixPath(p).name
            if not got.is_dir():
                raise FileNotFoundError(f"{p}: not a directory in {self.description}")
            got.rename(dest)


class VfatReader:
    """Read a FAT filesystem at *offset* of *image* with mtools."""

    def __init__(self, image: str | os.PathLike[str], offset: int, description: str = "") -> None:
        self.image = Path(image)
        self.offset = offset
        self.description = description or f"vfat at offset {offset}"
        self._link_dir: tempfile.TemporaryDirectory[str] | None = None
        # mtools splits the drive name at "@@"
        self._drive = f"{_plain_name(self, '@@')}@@{offset}"

    def _mtools(self, argv: list[str], path: str) -> bytes:
        try:
            return run(argv, env=_MTOOLS_ENV).stdout
        except CommandFailedError as exc:
            if "not found" in exc.stderr:
                raise FileNotFoundError(f"{path}: not found in {self.description}") from exc
            raise FilesystemReadError(
                f"cannot read {path} from {self.description}: {exc.message}",
                hint=f"look yourself: {command_hint(self)}",
            ) from exc

    def exists(self, path: str) -> bool:
        p = _norm(path)
        try:
            self._mtools(["mdir", "-b", "-i", self._drive, "::" + p], p)
        except FileNotFoundError:
            return False
        return True

    def listdir(self, path: str) -> list[DirEntry]:
        p = _norm(path)
        out = self._mtools(["mdir", "-b", "-a", "-i", self._drive, "::" + p], p)
        prefix = "::" + p.rstrip("/") + "/"
        entries = []
        for line in out.decode("utf-8", "replace").splitlines():
            if not line.startswith(prefix):
                continue  # mdir -b on a file prints the file itself
            rest = line[len(prefix) :]
            is_dir = rest.endswith("/")
            name = rest.rstrip("/")
            if name and "/" not in name:
                entries.append(DirEntry(name, is_dir, 0))
        return entries

    def read_bytes(self, path: str) -> bytes:
        p = _norm(path)
        data = self._mtools(["mcopy", "-n", "-i", self._drive, "::" + p, "-"], p)
        if len(data) > SMALL_FILE_LIMIT:
            raise FilesystemReadError(f"{p} in {self.description} is too big to read whole")
        return data

    def extract(self, path: str, dest: Path) -> None:
        p = _norm(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._mtools(["mcopy", "-n", "-o", "-i", self._drive, "::" + p, os.fspath(dest)], p)

    def extract_tree(self, path: str, dest: Path) -> None:
        p = _norm(path)
        dest.mkdir(parents=True)  # must not exist yet, like ExtReader's
        try:
            self._mtools(
                [
                    "mcopy",
                    "-s",
                    "-n",
                    "-o",
                    "-i",
                    self._drive,
                    "::" + p.rstrip("/") + "/*",
                    os.fspath(dest),
                ],
                p,
            )
        except FileNotFoundError:
            if not self.exists(p):
                raise  # an existing but empty directory makes the glob fail too


def reader_for(
    fstype: str, image: str | os.PathLike[str], offset: int, description: str = ""
) -> FilesystemReader | None:
    """A reader for a filesystem of *fstype*, or None when we cannot read it."""
    if fstype in ("ext2", "ext3", "ext4"):
        return ExtReader(image, offset, description)
    if fstype == "vfat":
        return VfatReader(image, offset, description)
    return None


def command_hint(reader: FilesystemReader) -> str:
    """How a user could read the filesystem by hand (for hints)."""
    if isinstance(reader, ExtReader):
        return f"debugfs {shlex.quote(reader._device)}"
    if isinstance(reader, VfatReader):
        return f"MTOOLS_SKIP_CHECK=1 mdir -i {shlex.quote(reader._drive)} ::"
    return ""
