"""Rootless disk image writer: partition tables, filesystems, raw content.

Build a :class:`DiskSpec` (or get one from a gadget layout with
:func:`ucimage.image.adapter.spec_from_layout`) and call :func:`write_disk`.
"""

from ucimage.image.determinism import derive_seed, seed_and_timestamp
from ucimage.image.spec import (
    ContentEntry,
    ContentError,
    DiskSpec,
    FilesystemSpec,
    ImageError,
    PartitionSpec,
    RawWrite,
    spec_to_json,
)
from ucimage.image.writer import WrittenDisk, WrittenPartition, write_disk

__all__ = [
    "ContentEntry",
    "ContentError",
    "DiskSpec",
    "FilesystemSpec",
    "ImageError",
    "PartitionSpec",
    "RawWrite",
    "WrittenDisk",
    "WrittenPartition",
    "derive_seed",
    "seed_and_timestamp",
    "spec_to_json",
    "write_disk",
]
