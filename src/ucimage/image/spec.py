"""The disk writer's input: a complete, immutable description of one image file.

A :class:`DiskSpec` says everything the writer needs and nothing about gadgets:
where each partition starts, its type, name and GUID, which filesystem to make
with what content, and which raw bytes go where.  :func:`ucimage.image.adapter.spec_from_layout`
turns a gadget volume layout into one; tests and other callers can build them
directly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from ucimage.errors import UcimageError

Schema = Literal["gpt", "mbr"]
FilesystemKind = Literal["ext4", "vfat", "vfat-16", "vfat-32"]

FILESYSTEM_KINDS: tuple[str, ...] = ("ext4", "vfat", "vfat-16", "vfat-32")


class ImageError(UcimageError):
    """The disk spec cannot be written as asked (bad geometry, content, tools)."""

    code = "image"


class ContentError(ImageError):
    """Filesystem or bare content cannot be resolved or does not fit."""

    code = "image-content"


@dataclass(frozen=True)
class ContentEntry:
    """One ``source``/``target`` pair of filesystem content, source already resolved.

    ``contents_only`` is the trailing ``/`` on a directory source (copy what is in
    it, rsync-like); ``into_directory`` is the trailing ``/`` on the target (put the
    source inside that directory under its own name).
    """

    source: Path
    target: PurePosixPath
    contents_only: bool = False
    into_directory: bool = False


@dataclass(frozen=True)
class FilesystemSpec:
    """A filesystem to build in place inside a partition.

    ``content`` is either a staging directory (its whole tree becomes the
    filesystem root) or ordered :class:`ContentEntry` items (later ones win).
    ``uuid`` ``None`` means: derive it from the disk seed.
    """

    kind: FilesystemKind
    label: str | None = None
    uuid: uuid.UUID | None = None
    content: Path | tuple[ContentEntry, ...] = ()


@dataclass(frozen=True)
class PartitionSpec:
    """One partition table entry (and optionally the filesystem inside it).

    ``start`` and ``size`` are in bytes; ``start`` must be sector aligned, the
    entry covers ``ceil(size / sector)`` sectors.  ``type`` is a GPT type GUID
    for ``gpt`` or two hex digits for ``mbr``.
    """

    number: int
    start: int
    size: int
    type: str
    name: str = ""
    guid: uuid.UUID | None = None
    bootable: bool = False
    filesystem: FilesystemSpec | None = None


@dataclass(frozen=True)
class RawWrite:
    """Bytes written at an absolute offset of the image, after the table.

    Exactly one of ``data`` and ``source`` is set.  ``limit`` (bytes) is the room
    the bytes may take, e.g. a bare structure's size; ``what`` names the write in
    errors ("image pc-core.img of structure BIOS Boot").
    """

    offset: int
    data: bytes | None = None
    source: Path | None = None
    limit: int | None = None
    what: str = ""

    def __post_init__(self) -> None:
        if (self.data is None) == (self.source is None):
            raise ImageError("a raw write needs exactly one of data and source")


@dataclass(frozen=True)
class DiskSpec:
    """A whole image file: geometry, table, filesystems and raw bytes.

    ``seed`` drives every otherwise random value not given explicitly (disk and
    partition GUIDs, filesystem UUIDs, ext4 hash seed, vfat volume id);
    ``timestamp`` (seconds since the epoch) is every time stored in the image.
    """

    path: Path
    size: int
    sector_size: int = 512
    schema: Schema = "gpt"
    disk_id: uuid.UUID | int | None = None
    partitions: tuple[PartitionSpec, ...] = ()
    raw_writes: tuple[RawWrite, ...] = ()
    seed: bytes = b""
    timestamp: int = 0
    name: str = field(default="disk")


def spec_to_json(spec: DiskSpec) -> dict[str, object]:
    """The spec as plain JSON data (for ``--dry-run``); content as paths."""

    def fs_json(fs: FilesystemSpec | None) -> dict[str, object] | None:
        if fs is None:
            return None
        content: object
        if isinstance(fs.content, Path):
            content = str(fs.content)
        else:
            content = [
                {
                    "source": str(e.source) + ("/" if e.contents_only else ""),
                    "target": str(e.target) + ("/" if e.into_directory else ""),
                }
                for e in fs.content
            ]
        return {
            "kind": fs.kind,
            "label": fs.label,
            "uuid": str(fs.uuid) if fs.uuid else None,
            "content": content,
        }

    return {
        "path": str(spec.path),
        "name": spec.name,
        "size": spec.size,
        "sector_size": spec.sector_size,
        "schema": spec.schema,
        "disk_id": str(spec.disk_id) if spec.disk_id is not None else None,
        "seed": spec.seed.hex(),
        "timestamp": spec.timestamp,
        "partitions": [
            {
                "number": p.number,
                "start": p.start,
                "size": p.size,
                "type": p.type,
                "name": p.name,
                "guid": str(p.guid) if p.guid else None,
                "bootable": p.bootable,
                "filesystem": fs_json(p.filesystem),
            }
            for p in spec.partitions
        ],
        "raw_writes": [
            {
                "offset": r.offset,
                "what": r.what,
                "source": str(r.source) if r.source else None,
                "data": r.data.hex() if r.data is not None else None,
                "limit": r.limit,
            }
            for r in spec.raw_writes
        ],
    }
