"""The partition-table reader on tables built byte by byte here, and fuzzed."""

from __future__ import annotations

import io
import struct
import uuid
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ucimage.inspect.errors import PartitionTableError
from ucimage.inspect.partitions import read_partition_table_from

ESP = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
LINUX = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
DISK = uuid.UUID("11111111-2222-3333-4444-555555555555")


def gpt_image(
    sectors: int, parts: list[tuple[uuid.UUID, int, int, str]], ss: int = 512
) -> bytearray:
    """A disk of *sectors* sectors with a protective MBR and both GPT copies."""
    img = bytearray(sectors * ss)
    entry_sectors = 16384 // ss
    entries = bytearray(128 * 128)
    for i, (ptype, first, last, name) in enumerate(parts):
        part_guid = uuid.UUID(int=i + 1)
        struct.pack_into(
            "<16s16sQQQ72s",
            entries,
            i * 128,
            ptype.bytes_le,
            part_guid.bytes_le,
            first,
            last,
            0,
            name.encode("utf-16-le"),
        )
    entries_crc = zlib.crc32(entries)
    last_lba = sectors - 1
    first_usable = 2 + entry_sectors
    last_usable = last_lba - 1 - entry_sectors

    def header(my: int, alt: int, entries_lba: int) -> bytes:
        h = bytearray(92)
        struct.pack_into(
            "<8sIIIIQQQQ16sQIII",
            h,
            0,
            b"EFI PART",
            0x10000,
            92,
            0,
            0,
            my,
            alt,
            first_usable,
            last_usable,
            DISK.bytes_le,
            entries_lba,
            128,
            128,
            entries_crc,
        )
        struct.pack_into("<I", h, 16, zlib.crc32(h))
        return bytes(h)

    # protective MBR
    struct.pack_into(
        "<B3sB3sII",
        img,
        446,
        0,
        b"\0\x02\0",
        0xEE,
        b"\xff\xff\xff",
        1,
        min(sectors - 1, 0xFFFFFFFF),
    )
    img[510:512] = b"\x55\xaa"
    img[ss : ss + 92] = header(1, last_lba, 2)
    img[2 * ss : 2 * ss + len(entries)] = entries
    backup_entries = last_lba - entry_sectors
    img[backup_entries * ss : backup_entries * ss + len(entries)] = entries
    img[last_lba * ss : last_lba * ss + 92] = header(last_lba, 1, backup_entries)
    return img


def read(img: bytes | bytearray):  # type: ignore[no-untyped-def]
    return read_partition_table_from(io.BytesIO(bytes(img)), len(img))


@pytest.mark.parametrize("ss", [512, 4096])
def test_gpt_any_sector_size(ss: int) -> None:
    img = gpt_image(4096, [(ESP, 256, 511, "EFI System"), (LINUX, 512, 4000, "writable")], ss)
    table = read(img)
    assert table.scheme == "gpt"
    assert table.sector_size == ss
    assert table.disk_id == str(DISK).upper()
    assert [(p.number, p.start, p.size, p.name) for p in table.partitions] == [
        (1, 256, 256, "EFI System"),
        (2, 512, 3489, "writable"),
    ]
    assert table.partitions[1].offset == 512 * ss
    assert table.partitions[0].type == str(ESP).upper()
    assert table.problems == ()


def test_gpt_empty_slots_keep_numbers() -> None:
    parts = [(ESP, 256, 511, "a"), (uuid.UUID(int=0), 0, 0, ""), (LINUX, 700, 800, "c")]
    img = gpt_image(4096, parts)
    assert [p.number for p in read(img).partitions] == [1, 3]


def test_gpt_entry_ending_before_start_is_rejected() -> None:
    img = gpt_image(4096, [(ESP, 600, 500, "bad")])
    with pytest.raises(PartitionTableError, match=r"ends .* before it starts"):
        read(img)


def test_protective_mbr_without_gpt() -> None:
    img = gpt_image(4096, [(ESP, 256, 511, "a")])
    img[512:520] = b"\0" * 8
    img[-512:-504] = b"\0" * 8
    with pytest.raises(PartitionTableError, match="protective MBR found but no GPT header"):
        read(img)


def test_hybrid_mbr_is_reported() -> None:
    img = gpt_image(4096, [(ESP, 256, 511, "a")])
    struct.pack_into("<B3sB3sII", img, 462, 0x80, b"\0", 0x0C, b"\0", 256, 256)
    assert "hybrid MBR" in read(img).problems[0]


def test_mbr_partitions() -> None:
    img = bytearray(8192 * 512)
    struct.pack_into("<I", img, 440, 0xCAFEF00D)
    struct.pack_into("<B3sB3sII", img, 446, 0x80, b"\0\0\0", 0x0C, b"\0\0\0", 2048, 2048)
    struct.pack_into("<B3sB3sII", img, 462, 0, b"\0\0\0", 0x83, b"\0\0\0", 4096, 4096)
    img[510:512] = b"\x55\xaa"
    table = read(img)
    assert table.scheme == "mbr" and table.disk_id == "0xcafef00d"
    assert [(p.number, p.type, p.bootable, p.uuid) for p in table.partitions] == [
        (1, "c", True, "cafef00d-01"),
        (2, "83", False, "cafef00d-02"),
    ]


def test_no_table_and_too_small() -> None:
    assert read(bytes(4096)).scheme == "none"
    with pytest.raises(PartitionTableError, match="too small"):
        read(b"x" * 100)


def test_extended_chain_loop_is_an_error() -> None:
    img = bytearray(8192 * 512)
    struct.pack_into("<B3sB3sII", img, 446, 0, b"\0\0\0", 0x05, b"\0\0\0", 2048, 4096)
    img[510:512] = b"\x55\xaa"
    ebr = 2048 * 512
    struct.pack_into("<B3sB3sII", img, ebr + 446, 0, b"\0\0\0", 0x83, b"\0\0\0", 1, 100)
    struct.pack_into("<B3sB3sII", img, ebr + 462, 0, b"\0\0\0", 0x05, b"\0\0\0", 0, 100)
    img[ebr + 510 : ebr + 512] = b"\x55\xaa"
    with pytest.raises(PartitionTableError, match="broken chain"):
        read(img)


BASE = bytes(gpt_image(256, [(ESP, 40, 100, "EFI System"), (LINUX, 101, 200, "writable")]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(0, 255)), max_size=8))
def test_fuzzed_tables_never_crash(edits: list[tuple[int, int]]) -> None:
    img = bytearray(BASE)
    for pos, value in edits:
        img[pos] = value
    try:
        table = read(img)
    except PartitionTableError:
        return
    for p in table.partitions:
        assert p.size >= 1


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=512, max_size=4096))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        read(data)
    except PartitionTableError:
        pass
