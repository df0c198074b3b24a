"""Recognise the filesystem in a byte range by its superblock.

ext2/3/4 (superblock at +1024, magic 0xEF53), FAT12/16/32 (boot sector BPB) and
squashfs (``hsqs`` at +0).  Labels and UUIDs are reported the way ``blkid``
shows them.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

EXT_MAGIC = 0xEF53
SQUASHFS_MAGIC = b"hsqs"
SQUASHFS_COMPRESSION = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}

# ext feature bits that make a filesystem "ext4" rather than ext3/ext2
_EXT4_INCOMPAT = 0x0040 | 0x0080 | 0x0200 | 0x0400 | 0x1000 | 0x8000 | 0x10000
_EXT4_RO_COMPAT = 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0400
_EXT_HAS_JOURNAL = 0x0004


@dataclass(frozen=True)
class Filesystem:
    type: str
    label: str
    uuid: str
    #: bytes the filesystem says it spans
    size: int
    block_size: int
    #: type-specific facts (FAT variant, squashfs compression, ext features, …)
    details: dict[str, str | int] = field(default_factory=dict)


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _probe_ext(sb: bytes) -> Filesystem | None:
    if len(sb) < 1024 or struct.unpack_from("<H", sb, 0x38)[0] != EXT_MAGIC:
        return None
    blocks_lo = struct.unpack_from("<I", sb, 0x04)[0]
    log_block = struct.unpack_from("<I", sb, 0x18)[0]
    if log_block > 6:
        return None
    block_size = 1024 << log_block
    compat, incompat, ro_compat = struct.unpack_from("<III", sb, 0x5C)
    blocks = blocks_lo
    if incompat & 0x0080:  # 64bit
        blocks |= struct.unpack_from("<I", sb, 0x150)[0] << 32
    if incompat & _EXT4_INCOMPAT or ro_compat & _EXT4_RO_COMPAT:
        fstype = "ext4"
    elif compat & _EXT_HAS_JOURNAL:
        fstype = "ext3"
    else:
        fstype = "ext2"
    return Filesystem(
        type=fstype,
        label=_cstr(sb[0x78:0x88]),
        uuid=str(uuid.UUID(bytes=sb[0x68:0x78])),
        size=blocks * block_size,
        block_size=block_size,
        details={
            "feature-compat": compat,
            "feature-incompat": incompat,
            "feature-ro-compat": ro_compat,
        },
    )


def _probe_fat(bs: bytes) -> Filesystem | None:
    if len(bs) < 512 or bs[510:512] != b"\x55\xaa" or bs[0] not in (0xEB, 0xE9):
        return None
    bytes_per_sector, per_cluster, reserved, fats, root_entries, total16 = struct.unpack_from(
        "<HBHBHH", bs, 0x0B
    )
    fat_size16 = struct.unpack_from("<H", bs, 0x16)[0]
    total32 = struct.unpack_from("<I", bs, 0x20)[0]
    if bytes_per_sector not in (512, 1024, 2048, 4096) or per_cluster == 0 or fats == 0:
        return None
    if per_cluster & (per_cluster - 1):
        return None
    total = total16 or total32
    if fat_size16 == 0:
        variant = "FAT32"
        fat_size = struct.unpack_from("<I", bs, 0x24)[0]
        ext = 0x40
    else:
        fat_size = fat_size16
        ext = 0x24
        root_sectors = (root_entries * 32 + bytes_per_sector - 1) // bytes_per_sector
        data = total - (reserved + fats * fat_size + root_sectors)
        variant = "FAT12" if data // per_cluster < 4085 else "FAT16"
    label = ""
    volume_id = ""
    if bs[ext + 2] == 0x29:  # extended boot signature: serial and label follow
        serial = struct.unpack_from("<I", bs, ext + 3)[0]
        volume_id = f"{serial >> 16:04X}-{serial & 0xFFFF:04X}"
        label = bs[ext + 7 : ext + 18].decode("latin-1").rstrip(" ")
        if label == "NO NAME":
            label = ""
    return Filesystem(
        type="vfat",
        label=label,
        uuid=volume_id,
        size=total * bytes_per_sector,
        block_size=bytes_per_sector * per_cluster,
        details={"variant": variant, "sector-size": bytes_per_sector},
    )


def _probe_squashfs(sb: bytes) -> Filesystem | None:
    if len(sb) < 96 or sb[:4] != SQUASHFS_MAGIC:
        return None
    inodes, mkfs_time, block_size = struct.unpack_from("<III", sb, 4)
    compression = struct.unpack_from("<H", sb, 20)[0]
    major, minor = struct.unpack_from("<HH", sb, 28)
    bytes_used = struct.unpack_from("<Q", sb, 40)[0]
    return Filesystem(
        type="squashfs",
        label="",
        uuid="",
        size=bytes_used,
        block_size=block_size,
        details={
            "compression": SQUASHFS_COMPRESSION.get(compression, str(compression)),
            "version": f"{major}.{minor}",
            "inodes": inodes,
            "mkfs-time": mkfs_time,
        },
    )


def probe_filesystem(f: BinaryIO, offset: int, length: int) -> Filesystem | None:
    """The filesystem at *offset* of the open image *f*, or None if unknown."""
    if length < 512:
        return None
    f.seek(offset)
    head = f.read(min(length, 2048))
    for probe, data in (
        (_probe_squashfs, head),
        (_probe_ext, head[1024:2048]),
        (_probe_fat, head[:512]),
    ):
        found = probe(data)
        if found is not None:
            return found
    return None
