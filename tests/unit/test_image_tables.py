"""Partition tables, seeds, spec checks and block maps at the byte level.

(The integration tests check the same tables with sfdisk/fdisk.)
"""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from pathlib import Path

import pytest

from ucimage.image import DiskSpec, ImageError, PartitionSpec, RawWrite
from ucimage.image.bmap import data_ranges, write_bmap
from ucimage.image.determinism import derive_seed, derive_u32, derive_uuid, seed_and_timestamp
from ucimage.image.partition_table import TableEntry, write_gpt, write_mbr
from ucimage.image.writer import check_spec

MiB = 1 << 20
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def image(tmp_path: Path, size: int) -> int:
    fd = os.open(tmp_path / "disk.img", os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    os.ftruncate(fd, size)
    return fd


def header_ok(raw: bytes) -> dict[str, int]:
    fields = struct.unpack_from("<8sIIIIQQQQ16sQIII", raw)
    sig, rev, size, crc = fields[:4]
    assert sig == b"EFI PART" and rev == 0x10000 and size == 92
    zeroed = raw[:16] + b"\0\0\0\0" + raw[20:92]
    assert zlib.crc32(zeroed) == crc
    return {
        "my": fields[5], "alt": fields[6], "first": fields[7], "last": fields[8],
        "entries": fields[10], "count": fields[11], "esize": fields[12], "ecrc": fields[13],
    }  # fmt: skip


@pytest.mark.parametrize("sector", [512, 4096])
def test_gpt_bytes(tmp_path: Path, sector: int) -> None:
    size = 32 * MiB
    fd = image(tmp_path, size)
    total = size // sector
    part_guid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    entry = TableEntry(1, MiB // sector, 8 * MiB // sector, LINUX, "writable", part_guid)
    write_gpt(fd, total, sector, uuid.UUID(int=1), [entry])
    data = os.pread(fd, size, 0)
    os.close(fd)
    assert data[510:512] == b"\x55\xaa" and data[450] == 0xEE
    assert struct.unpack_from("<II", data, 454) == (1, total - 1)
    primary = header_ok(data[sector : sector + 92])
    backup = header_ok(data[(total - 1) * sector : (total - 1) * sector + 92])
    entries_sectors = 16384 // sector
    assert primary["my"] == 1 and primary["alt"] == total - 1 and primary["entries"] == 2
    assert backup["my"] == total - 1 and backup["alt"] == 1
    assert backup["entries"] == total - 1 - entries_sectors
    assert primary["first"] == 2 + entries_sectors
    assert primary["last"] == total - 2 - entries_sectors
    table = data[2 * sector : 2 * sector + 16384]
    assert zlib.crc32(table) == primary["ecrc"] == backup["ecrc"]
    assert data[backup["entries"] * sector : backup["entries"] * sector + 16384] == table
    assert uuid.UUID(bytes_le=table[:16]) == uuid.UUID(LINUX)
    assert uuid.UUID(bytes_le=table[16:32]) == part_guid
    assert struct.unpack_from("<QQ", table, 32) == (MiB // sector, 9 * MiB // sector - 1)
    assert table[56:72].decode("utf-16-le") == "writable"


def test_gpt_keeps_boot_code(tmp_path: Path) -> None:
    fd = image(tmp_path, 8 * MiB)
    os.pwrite(fd, b"\xaa" * 440, 0)
    write_gpt(fd, 8 * MiB // 512, 512, uuid.UUID(int=1), [])
    assert os.pread(fd, 440, 0) == b"\xaa" * 440
    os.close(fd)


def test_mbr_bytes(tmp_path: Path) -> None:
    fd = image(tmp_path, 64 * MiB)
    entries = [TableEntry(1, 2048, 2048, "0C", bootable=True), TableEntry(2, 4096, 8192, "83")]
    write_mbr(fd, 64 * MiB // 512, 512, 0xDEADBEEF, entries)
    mbr = os.pread(fd, 512, 0)
    os.close(fd)
    assert struct.unpack_from("<I", mbr, 440)[0] == 0xDEADBEEF
    assert mbr[446] == 0x80 and mbr[446 + 4] == 0x0C
    assert struct.unpack_from("<II", mbr, 446 + 8) == (2048, 2048)
    assert mbr[462] == 0 and mbr[462 + 4] == 0x83
    assert struct.unpack_from("<II", mbr, 462 + 8) == (4096, 8192)
    assert mbr[478:510] == b"\0" * 32 and mbr[510:] == b"\x55\xaa"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (TableEntry(1, 10, 10, LINUX, "early"), "overlaps GPT header"),
        (TableEntry(1, 2048, 10**9, LINUX, "huge"), "overlaps GPT header"),
        (TableEntry(1, 2048, 10, "83", "x"), "is not a GUID"),
        (TableEntry(1, 2048, 10, LINUX, "n" * 37), "longer than 36"),
        (TableEntry(200, 2048, 10, LINUX, "x"), "not 1-128"),
    ],
)
def test_gpt_errors(tmp_path: Path, entry: TableEntry, message: str) -> None:
    fd = image(tmp_path, 8 * MiB)
    with pytest.raises(ImageError, match=message):
        write_gpt(fd, 8 * MiB // 512, 512, uuid.UUID(int=1), [entry])
    os.close(fd)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (TableEntry(1, 2048, 10, LINUX), "not two hex digits"),
        (TableEntry(1, 2048, 10, "ZZ"), "not two hex digits"),
        (TableEntry(5, 2048, 10, "83"), "not 1-4"),
        (TableEntry(1, 0, 10, "83"), "overlaps the MBR"),
    ],
)
def test_mbr_errors(tmp_path: Path, entry: TableEntry, message: str) -> None:
    fd = image(tmp_path, 8 * MiB)
    with pytest.raises(ImageError, match=message):
        write_mbr(fd, 8 * MiB // 512, 512, 1, [entry])
    os.close(fd)


def test_seeds() -> None:
    a = derive_seed("pc", epoch=1)
    assert a == derive_seed("pc", epoch=1)
    assert len({a, derive_seed("pc", epoch=2), derive_seed("other", epoch=1)}) == 3
    assert derive_seed("pc", explicit="x") != derive_seed("pc", explicit="y")
    assert derive_uuid(a, "disk").version == 4
    assert derive_uuid(a, "disk") != derive_uuid(a, "partition-1-guid")
    assert derive_u32(a, "x") == derive_u32(a, "x") != 0


def test_seed_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert seed_and_timestamp("pc") == (derive_seed("pc", epoch=1_700_000_000), 1_700_000_000)
    assert seed_and_timestamp("pc", explicit="s")[0] == derive_seed("pc", explicit="s")
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert seed_and_timestamp("pc")[0] != seed_and_timestamp("pc")[0]  # random without SDE


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (DiskSpec(Path("x"), 1000), "not a positive multiple"),
        (DiskSpec(Path("x"), 4096, sector_size=1024), "sector size 1024"),
        (
            DiskSpec(Path("x"), 8 * MiB, partitions=(PartitionSpec(1, 1000, 512, LINUX),)),
            "not a multiple of sector size",
        ),
        (
            DiskSpec(Path("x"), 8 * MiB, partitions=(PartitionSpec(1, MiB, 8 * MiB, LINUX),)),
            "does not fit",
        ),
        (
            DiskSpec(
                Path("x"),
                8 * MiB,
                partitions=(
                    PartitionSpec(1, MiB, MiB, LINUX),
                    PartitionSpec(1, 2 * MiB, MiB, LINUX),
                ),
            ),
            "not unique",
        ),
        (
            DiskSpec(Path("x"), 8 * MiB, raw_writes=(RawWrite(9 * MiB, data=b"x"),)),
            "outside the image",
        ),
    ],
)
def test_check_spec(spec: DiskSpec, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        check_spec(spec)


def test_raw_write_needs_one_source() -> None:
    with pytest.raises(ImageError, match="exactly one"):
        RawWrite(0)
    with pytest.raises(ImageError, match="exactly one"):
        RawWrite(0, data=b"x", source=Path("y"))


def test_bmap_ranges(tmp_path: Path) -> None:
    path = tmp_path / "sparse.img"
    with open(path, "wb") as f:
        f.truncate(10 * MiB)
        f.seek(0)
        f.write(b"a")
        f.seek(4 * MiB + 5000)
        f.write(b"b" * 10000)
    fd = os.open(path, os.O_RDONLY)
    ranges = data_ranges(fd, 10 * MiB)
    os.close(fd)
    # filesystems allocate at least a block; the data must be covered, holes not mapped
    assert ranges[0][0] == 0
    assert any(a <= (4 * MiB + 5000) // 4096 and b >= (4 * MiB + 14999) // 4096 for a, b in ranges)
    assert sum(b - a + 1 for a, b in ranges) < 100
    bmap = tmp_path / "sparse.bmap"
    write_bmap(path, bmap)
    text = bmap.read_text()
    assert "<ImageSize> 10485760 </ImageSize>" in text
    assert f"<BlocksCount> {10 * MiB // 4096} </BlocksCount>" in text
