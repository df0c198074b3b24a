"""Read MBR and GPT partition tables from a disk image file.

Pure Python, no tools: the protective or classic MBR at LBA 0, the GPT header at
LBA 1 (and its backup at the last LBA) with both CRC32 checks, the partition
entry array, and MBR extended/logical partitions.  Numbers follow the kernel
and ``sfdisk``: GPT entries are numbered by their slot in the array (empty slots
are skipped but keep their number), MBR primaries are 1-4 and logicals 5+.
"""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from ucimage.inspect.errors import PartitionTableError

GPT_SIGNATURE = b"EFI PART"
MBR_SIGNATURE = b"\x55\xaa"
PROTECTIVE_TYPE = 0xEE
EXTENDED_TYPES = frozenset({0x05, 0x0F, 0x85})
#: sector sizes we try, in order, when looking for a GPT header
SECTOR_SIZES = (512, 4096)

Scheme = Literal["gpt", "mbr", "none"]


@dataclass(frozen=True)
class Partition:
    """One partition; ``start`` and ``size`` are in sectors of the table."""

    number: int
    start: int
    size: int
    sector_size: int
    #: GPT type GUID (upper case) or MBR type as two lower-case hex digits
    type: str
    #: GPT partition GUID, or for MBR ``<disk-id>-<NN>`` as blkid's PARTUUID
    uuid: str
    name: str = ""
    attributes: int = 0
    bootable: bool = False

    @property
    def offset(self) -> int:
        """Byte offset of the partition in the image."""
        return self.start * self.sector_size

    @property
    def size_bytes(self) -> int:
        return self.size * self.sector_size

    @property
    def end(self) -> int:
        """Last sector (inclusive), as sfdisk prints it."""
        return self.start + self.size - 1


@dataclass(frozen=True)
class PartitionTable:
    scheme: Scheme
    sector_size: int
    #: GPT disk GUID, or MBR disk signature as ``0x%08x`` (sfdisk's ``id``)
    disk_id: str
    image_size: int
    partitions: tuple[Partition, ...] = ()
    first_lba: int | None = None
    last_lba: int | None = None
    #: non-fatal findings (backup GPT damaged, hybrid MBR, …)
    problems: tuple[str, ...] = field(default_factory=tuple)


def _guid(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=raw)).upper()


def _read_at(f: BinaryIO, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


@dataclass(frozen=True)
class _MbrEntry:
    bootable: bool
    type: int
    start: int
    size: int


def _mbr_entries(sector: bytes) -> list[_MbrEntry]:
    entries = []
    for i in range(4):
        raw = sector[446 + 16 * i : 446 + 16 * (i + 1)]
        status, ptype = raw[0], raw[4]
        start, size = struct.unpack_from("<II", raw, 8)
        entries.append(_MbrEntry(status == 0x80, ptype, start, size))
    return entries


@dataclass(frozen=True)
class _GptHeader:
    my_lba: int
    alternate_lba: int
    first_usable: int
    last_usable: int
    disk_guid: str
    entries_lba: int
    entry_count: int
    entry_size: int
    entries_crc: int


def _parse_gpt_header(raw: bytes, where: str) -> _GptHeader:
    if raw[:8] != GPT_SIGNATURE:
        raise PartitionTableError(f"{where}: no GPT signature")
    header_size = struct.unpack_from("<I", raw, 12)[0]
    if not 92 <= header_size <= len(raw):
        raise PartitionTableError(f"{where}: bad GPT header size {header_size}")
    stored_crc = struct.unpack_from("<I", raw, 16)[0]
    zeroed = raw[:16] + b"\0\0\0\0" + raw[20:header_size]
    if zlib.crc32(zeroed) != stored_crc:
        raise PartitionTableError(f"{where}: GPT header CRC32 mismatch")
    my_lba, alternate, first, last = struct.unpack_from("<QQQQ", raw, 24)
    disk_guid = _guid(raw[56:72])
    entries_lba, count, entry_size, entries_crc = struct.unpack_from("<QIII", raw, 72)
    if entry_size < 128 or entry_size % 8 or entry_size > 4096:
        raise PartitionTableError(f"{where}: bad GPT entry size {entry_size}")
    if count > 4096:
        raise PartitionTableError(f"{where}: implausible GPT entry count {count}")
    return _GptHeader(
        my_lba, alternate, first, last, disk_guid, entries_lba, count, entry_size, entries_crc
    )


def _read_gpt_entries(
    f: BinaryIO, header: _GptHeader, sector_size: int, where: str
) -> list[Partition]:
    length = header.entry_count * header.entry_size
    raw = _read_at(f, header.entries_lba * sector_size, length)
    if len(raw) != length:
        raise PartitionTableError(f"{where}: GPT partition entries run past the end of the image")
    if zlib.crc32(raw) != header.entries_crc:
        raise PartitionTableError(f"{where}: GPT partition entries CRC32 mismatch")
    parts = []
    for i in range(header.entry_count):
        entry = raw[i * header.entry_size : (i + 1) * header.entry_size]
        if entry[:16] == b"\0" * 16:
            continue
        first, last, attrs = struct.unpack_from("<QQQ", entry, 32)
        name = entry[56:128].decode("utf-16-le", "replace").split("\0", 1)[0]
        if last < first:
            raise PartitionTableError(
                f"{where}: GPT entry {i + 1} ends (LBA {last}) before it starts (LBA {first})"
            )
        parts.append(
            Partition(
                number=i + 1,
                start=first,
                size=last - first + 1,
                sector_size=sector_size,
                type=_guid(entry[:16]),
                uuid=_guid(entry[16:32]),
                name=name,
                attributes=attrs,
            )
        )
    return parts


def _logical_partitions(
    f: BinaryIO, extended_start: int, sector_size: int, disk_id: str, image_size: int
) -> list[Partition]:
    parts: list[Partition] = []
    ebr_lba = extended_start
    seen: set[int] = set()
    number = 5
    while True:
        if ebr_lba in seen or ebr_lba * sector_size + 512 > image_size:
            raise PartitionTableError(f"broken chain of extended boot records at LBA {ebr_lba}")
        seen.add(ebr_lba)
        sector = _read_at(f, ebr_lba * sector_size, 512)
        if sector[510:512] != MBR_SIGNATURE:
            raise PartitionTableError(f"extended boot record at LBA {ebr_lba} has no 55AA")
        first, second = _mbr_entries(sector)[:2]
        if first.type and first.size:
            parts.append(
                Partition(
                    number=number,
                    start=ebr_lba + first.start,
                    size=first.size,
                    sector_size=sector_size,
                    type=f"{first.type:x}",
                    uuid=f"{disk_id[2:]}-{number:02x}",
                    bootable=first.bootable,
                )
            )
            number += 1
        if not (second.type in EXTENDED_TYPES and second.size):
            return parts
        ebr_lba = extended_start + second.start


def _read_mbr_table(
    f: BinaryIO, sector0: bytes, image_size: int, problems: list[str]
) -> PartitionTable:
    sector_size = 512
    disk_id = f"0x{struct.unpack_from('<I', sector0, 440)[0]:08x}"
    parts: list[Partition] = []
    for i, entry in enumerate(_mbr_entries(sector0)):
        if entry.type == 0 or entry.size == 0:
            continue
        number = i + 1
        parts.append(
            Partition(
                number=number,
                start=entry.start,
                size=entry.size,
                sector_size=sector_size,
                type=f"{entry.type:x}",
                uuid=f"{disk_id[2:]}-{number:02x}",
                bootable=entry.bootable,
            )
        )
        if entry.type in EXTENDED_TYPES:
            parts.extend(_logical_partitions(f, entry.start, sector_size, disk_id, image_size))
    return PartitionTable(
        scheme="mbr",
        sector_size=sector_size,
        disk_id=disk_id,
        image_size=image_size,
        partitions=tuple(parts),
        problems=tuple(problems),
    )


def _read_gpt_table(
    f: BinaryIO, sector_size: int, image_size: int, problems: list[str]
) -> PartitionTable:
    last_sector = image_size // sector_size - 1
    primary: _GptHeader | None = None
    parts: list[Partition] | None = None
    errors: list[str] = []
    try:
        primary = _parse_gpt_header(_read_at(f, sector_size, sector_size), "primary")
        parts = _read_gpt_entries(f, primary, sector_size, "primary")
    except PartitionTableError as exc:
        errors.append(str(exc))
    backup_lba = primary.alternate_lba if primary is not None else last_sector
    backup: _GptHeader | None = None
    backup_parts: list[Partition] | None = None
    try:
        if backup_lba > last_sector:
            raise PartitionTableError(
                f"backup: GPT header expected at LBA {backup_lba}, past the end of the image"
            )
        backup = _parse_gpt_header(_read_at(f, backup_lba * sector_size, sector_size), "backup")
        backup_parts = _read_gpt_entries(f, backup, sector_size, "backup")
    except PartitionTableError as exc:
        errors.append(str(exc))
    if primary is None or parts is None:
        if backup is None or backup_parts is None:
            raise PartitionTableError(
                "cannot read the GPT: " + "; ".join(errors),
                hint="the image may be truncated or not a disk image",
            )
        problems.extend(errors)
        problems.append("using the backup GPT")
        header, parts = backup, backup_parts
    else:
        problems.extend(errors)
        header = primary
        if primary.my_lba != 1:
            problems.append(f"primary GPT header says it is at LBA {primary.my_lba}, not 1")
        if backup_lba != last_sector:
            problems.append(
                f"backup GPT header at LBA {backup_lba}, not at the last LBA {last_sector}"
            )
        if backup_parts is not None and backup_parts != parts:
            problems.append("primary and backup GPT partition entries differ")
    for p in parts:
        if p.start < header.first_usable or p.end > header.last_usable:
            problems.append(f"partition {p.number} lies outside the usable LBA range")
    return PartitionTable(
        scheme="gpt",
        sector_size=sector_size,
        disk_id=header.disk_guid,
        image_size=image_size,
        partitions=tuple(parts),
        first_lba=header.first_usable,
        last_lba=header.last_usable,
        problems=tuple(problems),
    )


def read_partition_table_from(f: BinaryIO, image_size: int) -> PartitionTable:
    """Read the partition table of the open image *f* of *image_size* bytes."""
    if image_size < 512:
        raise PartitionTableError(f"image is too small ({image_size} bytes) to hold a disk")
    sector0 = _read_at(f, 0, 512)
    problems: list[str] = []
    if sector0[510:512] != MBR_SIGNATURE:
        # no MBR at all; a GPT without a protective MBR is still readable
        for sector_size in SECTOR_SIZES:
            if _read_at(f, sector_size, 8) == GPT_SIGNATURE:
                problems.append("GPT without a protective MBR (no 55AA at LBA 0)")
                return _read_gpt_table(f, sector_size, image_size, problems)
        return PartitionTable("none", 512, "", image_size, problems=("no partition table",))
    entries = _mbr_entries(sector0)
    protective = [e for e in entries if e.type == PROTECTIVE_TYPE]
    if protective:
        others = [e for e in entries if e.type not in (0, PROTECTIVE_TYPE)]
        if others:
            problems.append("hybrid MBR: the protective MBR also lists partitions")
        for sector_size in SECTOR_SIZES:
            if image_size >= 2 * sector_size and _read_at(f, sector_size, 8) == GPT_SIGNATURE:
                return _read_gpt_table(f, sector_size, image_size, problems)
        # primary header lost: the backup may still be at the end
        for sector_size in SECTOR_SIZES:
            last = image_size // sector_size - 1
            if _read_at(f, last * sector_size, 8) == GPT_SIGNATURE:
                return _read_gpt_table(f, sector_size, image_size, problems)
        raise PartitionTableError(
            "protective MBR found but no GPT header at LBA 1 or at the end of the image",
            hint="the GPT was overwritten or the image is truncated",
        )
    return _read_mbr_table(f, sector0, image_size, problems)


def read_partition_table(path: str | os.PathLike[str]) -> PartitionTable:
    """Read the partition table of the disk image at *path*."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return read_partition_table_from(f, size)
    except OSError as exc:
        raise PartitionTableError(f"cannot read image {os.fspath(path)!r}: {exc.strerror}") from exc
