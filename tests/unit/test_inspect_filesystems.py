"""Superblock probes on synthetic and random bytes."""

from __future__ import annotations

import io
import struct
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from ucimage.inspect.filesystems import probe_filesystem


def probe(data: bytes):  # type: ignore[no-untyped-def]
    return probe_filesystem(io.BytesIO(data), 0, len(data))


def ext_superblock(label: bytes, fs_uuid: uuid.UUID, blocks: int, log_block: int = 2) -> bytes:
    sb = bytearray(1024)
    struct.pack_into("<I", sb, 0x04, blocks)
    struct.pack_into("<I", sb, 0x18, log_block)
    struct.pack_into("<H", sb, 0x38, 0xEF53)
    struct.pack_into("<III", sb, 0x5C, 0x4, 0x40 | 0x200, 0)  # journal; extents, flex_bg
    sb[0x68:0x78] = fs_uuid.bytes
    sb[0x78 : 0x78 + len(label)] = label
    return bytes(1024) + bytes(sb)


def test_ext4() -> None:
    u = uuid.UUID("0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9")
    fs = probe(ext_superblock(b"writable", u, 2048))
    assert fs is not None
    assert (fs.type, fs.label, fs.uuid, fs.size, fs.block_size) == (
        "ext4", "writable", str(u), 2048 * 4096, 4096,
    )  # fmt: skip


def test_ext2_without_features() -> None:
    data = bytearray(ext_superblock(b"", uuid.UUID(int=1), 100, 0))
    struct.pack_into("<III", data, 1024 + 0x5C, 0, 0, 0)
    fs = probe(bytes(data))
    assert fs is not None and fs.type == "ext2" and fs.block_size == 1024


def test_fat16_boot_sector() -> None:
    bs = bytearray(512)
    bs[0] = 0xEB
    struct.pack_into("<HBHBHHBH", bs, 0x0B, 512, 4, 4, 2, 512, 40960, 0xF8, 40)
    bs[0x26] = 0x29
    struct.pack_into("<I", bs, 0x27, 0xDEADBEEF)
    bs[0x2B:0x36] = b"SYSTEM-BOOT"
    bs[510:512] = b"\x55\xaa"
    fs = probe(bytes(bs) + bytes(2048))
    assert fs is not None
    assert (fs.type, fs.label, fs.uuid, fs.details["variant"]) == (
        "vfat", "SYSTEM-BOOT", "DEAD-BEEF", "FAT16",
    )  # fmt: skip
    assert fs.size == 40960 * 512


def test_unknown_and_tiny() -> None:
    assert probe(bytes(4096)) is None
    assert probe(b"hsqs") is None


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=4096), st.sampled_from([b"", b"hsqs", b"\xeb"]))
def test_random_bytes_never_crash(data: bytes, prefix: bytes) -> None:
    blob = prefix + data
    probe(blob)
    if len(blob) > 1100:
        patched = bytearray(blob)
        struct.pack_into("<H", patched, 1024 + 0x38, 0xEF53)
        probe(bytes(patched))
