"""Our GPT/MBR reader against ``sfdisk --json`` on tables sfdisk wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_inspect_images import (
    BIOS_TYPE,
    ESP_TYPE,
    LINUX_TYPE,
    make_disk,
    sfdisk_json,
    sh,
)
from ucimage.inspect.errors import PartitionTableError
from ucimage.inspect.filesystems import probe_filesystem
from ucimage.inspect.partitions import PartitionTable, read_partition_table

pytestmark = pytest.mark.integration

GPT_SCRIPT = (
    "label: gpt\n"
    f'start=2048, size=2048, type={BIOS_TYPE}, name="BIOS Boot"\n'
    f'start=4096, size=8192, type={ESP_TYPE}, name="EFI System"\n'
    f'start=12288, size=20000, type={LINUX_TYPE}, name="writable", attrs="RequiredPartition"\n'
)


def compare_with_sfdisk(table: PartitionTable, image: Path) -> None:
    ref: dict[str, Any] = sfdisk_json(image)
    assert table.scheme == ("gpt" if ref["label"] == "gpt" else "mbr")
    assert table.sector_size == ref["sectorsize"]
    assert table.disk_id.lower() == ref["id"].lower()
    if table.scheme == "gpt":
        assert table.first_lba == ref["firstlba"]
        assert table.last_lba == ref["lastlba"]
    ours = {p.number: p for p in table.partitions}
    assert len(ours) == len(ref["partitions"])
    for rp in ref["partitions"]:
        number = int(rp["node"].removeprefix(str(image)))
        p = ours[number]
        assert (p.start, p.size) == (rp["start"], rp["size"])
        assert p.type.lower() == rp["type"].lower()
        if table.scheme == "gpt":
            assert p.uuid == rp["uuid"]
            assert p.name == rp.get("name", "")
        else:
            assert p.bootable == rp.get("bootable", False)


def test_gpt_matches_sfdisk(tmp_path: Path) -> None:
    image = tmp_path / "gpt.img"
    make_disk(image, 40 * 1024 * 1024, GPT_SCRIPT)
    table = read_partition_table(image)
    compare_with_sfdisk(table, image)
    assert table.problems == ()
    assert [p.name for p in table.partitions] == ["BIOS Boot", "EFI System", "writable"]
    assert table.partitions[2].attributes & 1  # RequiredPartition is bit 0


def test_mbr_with_logical_partitions_matches_sfdisk(tmp_path: Path) -> None:
    image = tmp_path / "mbr.img"
    make_disk(
        image,
        64 * 1024 * 1024,
        "label: dos\nlabel-id: 0xdeadbeef\n"
        "start=2048, size=8192, type=c, bootable\n"
        "start=10240, size=20480, type=83\n"
        "start=30720, size=60000, type=5\n"
        "start=32768, size=8192, type=83\n"
        "start=43008, size=8192, type=82\n",
    )
    table = read_partition_table(image)
    compare_with_sfdisk(table, image)
    assert table.disk_id == "0xdeadbeef"
    assert [p.number for p in table.partitions] == [1, 2, 3, 5, 6]
    assert table.partitions[0].bootable
    assert table.partitions[0].uuid == "deadbeef-01"


def _corrupt(image: Path, offset: int) -> None:
    with open(image, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def test_damaged_primary_gpt_header_falls_back_to_backup(tmp_path: Path) -> None:
    image = tmp_path / "gpt.img"
    make_disk(image, 40 * 1024 * 1024, GPT_SCRIPT)
    good = read_partition_table(image)
    _corrupt(image, 512 + 40)  # inside the header: CRC must catch it
    table = read_partition_table(image)
    assert table.partitions == good.partitions
    assert any("primary: GPT header CRC32 mismatch" in p for p in table.problems)
    assert "using the backup GPT" in table.problems


def test_damaged_entries_are_reported(tmp_path: Path) -> None:
    image = tmp_path / "gpt.img"
    make_disk(image, 40 * 1024 * 1024, GPT_SCRIPT)
    _corrupt(image, 1024 + 128 + 60)  # name of entry 2 in the primary array
    table = read_partition_table(image)
    assert any("primary: GPT partition entries CRC32 mismatch" in p for p in table.problems)
    assert table.partitions[1].name == "EFI System"  # from the intact backup


def test_both_gpt_copies_damaged_is_an_error(tmp_path: Path) -> None:
    image = tmp_path / "gpt.img"
    size = 40 * 1024 * 1024
    make_disk(image, size, GPT_SCRIPT)
    _corrupt(image, 512 + 40)
    _corrupt(image, size - 512 + 40)
    with pytest.raises(PartitionTableError, match="cannot read the GPT"):
        read_partition_table(image)


def test_truncated_image_reports_missing_backup(tmp_path: Path) -> None:
    image = tmp_path / "gpt.img"
    make_disk(image, 40 * 1024 * 1024, GPT_SCRIPT)
    with open(image, "r+b") as f:
        f.truncate(30 * 1024 * 1024)
    table = read_partition_table(image)
    assert len(table.partitions) == 3
    assert any("past the end of the image" in p for p in table.problems)


def test_filesystems_are_probed_like_blkid(tmp_path: Path) -> None:
    image = tmp_path / "gpt.img"
    make_disk(image, 40 * 1024 * 1024, GPT_SCRIPT)
    sh("mkfs.vfat", "-F", "32", "-S", "512", "-s", "1", "-n", "system-boot",
       "-i", "1234ABCD", "--offset=4096", image, "4096")  # fmt: skip
    root = tmp_path / "root"
    root.mkdir()
    sh("mkfs.ext4", "-q", "-F", "-L", "writable", "-U", "d5ea3b4d-7e8c-4b4e-9d6a-1c3c3a0f7d10",
       "-d", root, "-E", f"offset={12288 * 512}", image, "10000k")  # fmt: skip
    table = read_partition_table(image)
    with open(image, "rb") as f:
        esp = probe_filesystem(f, table.partitions[1].offset, table.partitions[1].size_bytes)
        data = probe_filesystem(f, table.partitions[2].offset, table.partitions[2].size_bytes)
        bios = probe_filesystem(f, table.partitions[0].offset, table.partitions[0].size_bytes)
    assert esp is not None and data is not None and bios is None
    assert (esp.type, esp.label, esp.uuid) == ("vfat", "system-boot", "1234-ABCD")
    assert esp.details["variant"] == "FAT32"
    assert esp.size == 4096 * 1024
    assert (data.type, data.label) == ("ext4", "writable")
    assert data.uuid == "d5ea3b4d-7e8c-4b4e-9d6a-1c3c3a0f7d10"
    assert data.size == 10000 * 1024
    # blkid agrees (it reads the same superblocks)
    out = sh("blkid", "-p", "-O", str(12288 * 512), "-o", "export", image).decode()
    assert "LABEL=writable" in out and "TYPE=ext4" in out


def test_squashfs_is_probed(testdata: Path) -> None:
    snap = testdata / "store" / "fixtures" / "snaps" / "pc_1.snap"
    with open(snap, "rb") as f:
        fs = probe_filesystem(f, 0, snap.stat().st_size)
    assert fs is not None and fs.type == "squashfs"
    listing = sh("unsquashfs", "-s", snap).decode()
    assert f"Filesystem size {fs.size} bytes" in listing.replace(",", "") or str(fs.size) in listing
