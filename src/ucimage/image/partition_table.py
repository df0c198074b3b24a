"""GPT and MBR partition tables, written in Python straight into the image file.

GPT: protective MBR, primary header + 128 entries at LBA 1, backup entries and
header at the end of the disk (UEFI 2.x layout, CRC32 like every other tool).
MBR: four primary entries, a disk signature at byte 440, the bootable flag.
Only the table bytes are written (bytes 440-511 of LBA 0 and the GPT areas), so
boot code in bytes 0-439 survives.  ``sfdisk --json`` is the independent check.
"""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from dataclasses import dataclass

from ucimage.image.spec import ImageError

GPT_ENTRY_COUNT = 128
GPT_ENTRY_SIZE = 128
GPT_NAME_UNITS = 36
MBR_PRIMARY_COUNT = 4
_GPT_REVISION = 0x00010000
_GPT_HEADER_SIZE = 92


@dataclass(frozen=True)
class TableEntry:
    """A partition in sector units, as the table stores it."""

    number: int
    first_lba: int
    sectors: int
    type: str
    name: str = ""
    guid: uuid.UUID | None = None
    bootable: bool = False

    @property
    def last_lba(self) -> int:
        return self.first_lba + self.sectors - 1


def gpt_entry_sectors(sector_size: int) -> int:
    return (GPT_ENTRY_COUNT * GPT_ENTRY_SIZE + sector_size - 1) // sector_size


def gpt_usable_range(total_sectors: int, sector_size: int) -> tuple[int, int]:
    """First and last LBA a GPT partition may use."""
    entries = gpt_entry_sectors(sector_size)
    return 2 + entries, total_sectors - 2 - entries


def _chs(lba: int) -> bytes:
    heads, sectors = 255, 63
    if lba >= 1024 * heads * sectors:
        return bytes((0xFE, 0xFF, 0xFF))
    cyl, rest = divmod(lba, heads * sectors)
    head, sec = divmod(rest, sectors)
    return bytes((head, (sec + 1) | ((cyl >> 2) & 0xC0), cyl & 0xFF))


def _mbr_entry(status: int, type_id: int, first: int, sectors: int) -> bytes:
    return (
        bytes((status,))
        + _chs(first)
        + bytes((type_id,))
        + _chs(first + sectors - 1)
        + struct.pack("<II", first, sectors)
    )


def _check_mbr_sector_range(entry: TableEntry) -> None:
    if entry.first_lba > 0xFFFFFFFF or entry.sectors > 0xFFFFFFFF:
        raise ImageError(
            f"partition {entry.number} ({entry.name or 'unnamed'}) lies beyond what MBR "
            "can address",
            hint="use schema: gpt for disks over 2 TiB",
        )


def write_mbr(
    fd: int, total_sectors: int, sector_size: int, signature: int, entries: list[TableEntry]
) -> None:
    """An MBR (DOS) table: up to four primary partitions."""
    if len(entries) > MBR_PRIMARY_COUNT:
        raise ImageError(
            f"an MBR table holds at most {MBR_PRIMARY_COUNT} partitions, {len(entries)} asked",
            hint="use schema: gpt or fewer partition structures",
        )
    slots = [b"\0" * 16] * MBR_PRIMARY_COUNT
    for entry in entries:
        if not 1 <= entry.number <= MBR_PRIMARY_COUNT:
            raise ImageError(f"MBR partition number {entry.number} is not 1-4")
        _check_mbr_sector_range(entry)
        if entry.first_lba < 1 or entry.last_lba >= total_sectors:
            raise ImageError(
                f"partition {entry.number} ({entry.name or 'unnamed'}) "
                "overlaps the MBR or runs past the end of the disk"
            )
        try:
            type_id = int(entry.type, 16)
        except ValueError:
            raise ImageError(f"MBR partition type {entry.type!r} is not two hex digits") from None
        if len(entry.type) != 2:
            raise ImageError(f"MBR partition type {entry.type!r} is not two hex digits")
        status = 0x80 if entry.bootable else 0x00
        slots[entry.number - 1] = _mbr_entry(status, type_id, entry.first_lba, entry.sectors)
    block = struct.pack("<I", signature & 0xFFFFFFFF) + b"\0\0" + b"".join(slots) + b"\x55\xaa"
    os.pwrite(fd, block, 440)


def _gpt_entry(entry: TableEntry) -> bytes:
    try:
        type_guid = uuid.UUID(entry.type)
    except ValueError:
        raise ImageError(f"GPT partition type {entry.type!r} is not a GUID") from None
    name = entry.name.encode("utf-16-le")
    if len(name) > GPT_NAME_UNITS * 2:
        raise ImageError(
            f"partition name {entry.name!r} is longer than {GPT_NAME_UNITS} UTF-16 units"
        )
    guid = entry.guid or uuid.UUID(int=0)
    return (
        type_guid.bytes_le
        + guid.bytes_le
        + struct.pack("<QQQ", entry.first_lba, entry.last_lba, 0)
        + name.ljust(GPT_NAME_UNITS * 2, b"\0")
    )


def _gpt_header(
    my_lba: int,
    alternate_lba: int,
    first: int,
    last: int,
    disk_guid: uuid.UUID,
    entries_lba: int,
    entries_crc: int,
) -> bytes:
    def pack(crc: int) -> bytes:
        return struct.pack(
            "<8sIIIIQQQQ16sQIII",
            b"EFI PART", _GPT_REVISION, _GPT_HEADER_SIZE, crc, 0,
            my_lba, alternate_lba, first, last, disk_guid.bytes_le,
            entries_lba, GPT_ENTRY_COUNT, GPT_ENTRY_SIZE, entries_crc,
        )  # fmt: skip

    return pack(zlib.crc32(pack(0)))


def write_gpt(
    fd: int, total_sectors: int, sector_size: int, disk_guid: uuid.UUID, entries: list[TableEntry]
) -> None:
    """Protective MBR, primary GPT at LBA 1, backup GPT at the end of the disk."""
    entry_sectors = gpt_entry_sectors(sector_size)
    first_usable, last_usable = gpt_usable_range(total_sectors, sector_size)
    if last_usable < first_usable:
        raise ImageError(f"a disk of {total_sectors} sectors is too small for a GPT")
    table = bytearray(GPT_ENTRY_COUNT * GPT_ENTRY_SIZE)
    for entry in entries:
        if not 1 <= entry.number <= GPT_ENTRY_COUNT:
            raise ImageError(f"GPT partition number {entry.number} is not 1-{GPT_ENTRY_COUNT}")
        if entry.first_lba < first_usable or entry.last_lba > last_usable:
            raise ImageError(
                f'The structure "{entry.name}" overlaps GPT header or GPT partition table',
                hint=f"GPT partitions must lie within sectors {first_usable}-{last_usable}",
            )
        pos = (entry.number - 1) * GPT_ENTRY_SIZE
        table[pos : pos + GPT_ENTRY_SIZE] = _gpt_entry(entry)
    entries_crc = zlib.crc32(table)
    last_lba = total_sectors - 1
    protective = _mbr_entry(0x00, 0xEE, 1, min(last_lba, 0xFFFFFFFF))
    os.pwrite(fd, b"\0" * 6 + protective + b"\0" * 48 + b"\x55\xaa", 440)
    primary = _gpt_header(1, last_lba, first_usable, last_usable, disk_guid, 2, entries_crc)
    backup_entries_lba = last_lba - entry_sectors
    backup = _gpt_header(
        last_lba, 1, first_usable, last_usable, disk_guid, backup_entries_lba, entries_crc
    )
    os.pwrite(fd, primary.ljust(sector_size, b"\0"), sector_size)
    os.pwrite(fd, bytes(table), 2 * sector_size)
    os.pwrite(fd, bytes(table), backup_entries_lba * sector_size)
    os.pwrite(fd, backup.ljust(sector_size, b"\0"), last_lba * sector_size)
