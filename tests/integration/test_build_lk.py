"""An lk (little kernel) UC18 image: the env and the kernel's boot image in their partitions."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from tests.build_snaps import LK_TAIL, MODEL_UC18, sign_model, snaps_uc18_lk
from tests.integration.test_build_images import build, extract, fsck_ok, sfdisk

pytestmark = pytest.mark.integration


def cstring(data: bytes, slot: int) -> bytes:
    """Independent reader: the NUL-terminated 256-byte field *slot* after the two header words."""
    return data[8 + 256 * slot : 8 + 256 * (slot + 1)].split(b"\0", 1)[0]


def test_uc18_lk_image(tmp_path: Path) -> None:
    snaps = snaps_uc18_lk(tmp_path / "snaps")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    out = tmp_path / "out"
    assert build(model, snaps, out) == 0
    image = out / "board.img"
    parts = sfdisk(image)["partitions"]
    assert [p["name"] for p in parts] == [
        "snapbootsel", "boot_a", "boot_b", "system-boot", "writable",
    ]  # fmt: skip
    sel = extract(image, parts[0]["start"], parts[0]["size"], tmp_path / "sel").read_bytes()
    size = 14860  # snapd's SnapBootSelect_v1
    assert sel[:8] == b"SBse\x01\x00\x01\x00"
    assert struct.unpack("<I", sel[size - 4 : size])[0] == zlib.crc32(sel[: size - 4])
    assert cstring(sel, 1) == b"core18_x1.snap" and cstring(sel, 3) == b"pc-kernel_x1.snap"
    assert [cstring(sel, i) for i in (9, 10, 11, 12)] == [
        b"boot_a", b"pc-kernel_x1.snap", b"boot_b", b"",
    ]  # fmt: skip
    assert sel[size : size + len(LK_TAIL)] == LK_TAIL
    boot_a = extract(image, parts[1]["start"], parts[1]["size"], tmp_path / "a").read_bytes()
    assert boot_a.startswith(b"BOOTIMG" * 10 + b"\0")  # the kernel's, not the gadget's
    boot_b = extract(image, parts[2]["start"], parts[2]["size"], tmp_path / "b").read_bytes()
    assert boot_b == bytes(len(boot_b))
    writable = extract(image, parts[4]["start"], parts[4]["size"], tmp_path / "w")
    fsck_ok(["e2fsck", "-fn", str(writable)])
