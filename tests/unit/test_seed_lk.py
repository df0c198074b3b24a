"""lk (little kernel) boot select envs and the lk bootloader files of a seed.

The golden layout is derived from snapd's documented structs (``SnapBootSelect_v1``,
``_v2_run``, ``_v2_recovery``): little-endian signature and version words, 256-byte
NUL-terminated string fields in declaration order, (label, value) matrices, a CRC32
(IEEE) of everything before it.  ``tests/build_snaps.lk_env`` is an independent encoder.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.build_snaps import LK_V1_FIELDS, LK_V2_RECOVERY_FIELDS, lk_env
from tests.unit.test_seed_writer import UC18, UC20
from ucimage.seed.bootenv import (
    LK_V1,
    LK_V2_RECOVERY,
    LK_V2_RUN,
    BootEnvError,
    LkEnv,
    scan_lk_env,
)
from ucimage.seed.bootloader import (
    BootAssets,
    BootloaderError,
    KernelExtractor,
    boot16_vars,
    write_boot16,
    write_recovery20,
)


def v1_conf(parts: Sequence[str] = ("boot_a", "boot_b"), **values: str) -> bytes:
    return lk_env(LK_V1_FIELDS, b"SBse", 0x00010001, values, list(parts))


def recovery_conf(parts: Sequence[str] = ("boot_ra", "boot_rb"), **values: str) -> bytes:
    return lk_env(LK_V2_RECOVERY_FIELDS, b"SRse", 0x00010010, values, list(parts))


def field(data: bytes, index: int) -> bytes:
    """The 256-byte slot number *index* after the two header words."""
    return data[8 + 256 * index : 8 + 256 * (index + 1)]


# ------------------------------------------------------------------ golden layout


def test_struct_sizes_and_headers_follow_the_c_structs() -> None:
    # v1: 2 words + 9 strings + 2x2 matrix + name + 2x2 matrix + 20 unused + 10x2 pairs + crc
    assert LK_V1.size == 8 + (9 + 4 + 1 + 4 + 20 + 20) * 256 + 4 == 14860
    # v2 run: 6 strings instead of 9
    assert LK_V2_RUN.size == 8 + (6 + 4 + 1 + 4 + 20 + 20) * 256 + 4 == 14092
    # v2 recovery: 2 strings + 10x2 matrix + 4 strings + 17 unused + 10x2 pairs
    assert LK_V2_RECOVERY.size == 8 + (2 + 20 + 4 + 17 + 20) * 256 + 4 == 16140
    for layout, head in (
        (LK_V1, b"SBse\x01\x00\x01\x00"),
        (LK_V2_RUN, b"SBse\x10\x00\x01\x00"),
        (LK_V2_RECOVERY, b"SRse\x10\x00\x01\x00"),
    ):
        data = LkEnv(layout).encode()
        assert len(data) == layout.size
        assert data[:8] == head
        assert data[8:-4] == bytes(layout.size - 12)
        assert data[-4:] == struct.pack("<I", zlib.crc32(data[:-4]))


def test_v1_golden_bytes() -> None:
    env = LkEnv.decode(v1_conf())
    env.update({"snap_core": "core18_x1.snap", "snap_kernel": "k_x1.snap", "snap_mode": ""})
    env.set_boot_partition("boot_b", "k_x1.snap")
    data = env.encode()
    assert field(data, 0) == bytes(256)  # snap_mode
    assert field(data, 1) == b"core18_x1.snap".ljust(256, b"\0")  # snap_core
    assert field(data, 3) == b"k_x1.snap".ljust(256, b"\0")  # snap_kernel
    # bootimg_matrix at slot 9: [boot_a, ""], [boot_b, k_x1.snap]
    assert field(data, 9) == b"boot_a".ljust(256, b"\0")
    assert field(data, 10) == bytes(256)
    assert field(data, 11) == b"boot_b".ljust(256, b"\0")
    assert field(data, 12) == b"k_x1.snap".ljust(256, b"\0")
    assert data[-4:] == struct.pack("<I", zlib.crc32(data[:-4]))
    # the independent encoder agrees byte for byte (it leaves matrix values empty)
    expected = bytearray(
        lk_env(
            LK_V1_FIELDS,
            b"SBse",
            0x00010001,
            {"snap_core": "core18_x1.snap", "snap_kernel": "k_x1.snap"},
            ["boot_a", "boot_b"],
        )
    )
    expected[8 + 12 * 256 : 8 + 12 * 256 + 9] = b"k_x1.snap"
    expected[-4:] = struct.pack("<I", zlib.crc32(bytes(expected[:-4])))
    assert data == bytes(expected)


def test_v2_recovery_golden_bytes() -> None:
    env = LkEnv.decode(recovery_conf())
    env.update({"snapd_recovery_system": "20240101", "snapd_recovery_mode": "install"})
    env.set_boot_partition("boot_ra", "20240101")
    data = env.encode()
    assert field(data, 0) == b"install".ljust(256, b"\0")
    assert field(data, 1) == b"20240101".ljust(256, b"\0")
    assert field(data, 2) == b"boot_ra".ljust(256, b"\0")
    assert field(data, 3) == b"20240101".ljust(256, b"\0")
    assert field(data, 4) == b"boot_rb".ljust(256, b"\0")
    assert struct.unpack("<I", data[16136:16140])[0] == zlib.crc32(data[:16136])


def test_layout_is_found_by_signature_and_version() -> None:
    assert LkEnv.decode(v1_conf()).layout is LK_V1
    assert LkEnv.decode(recovery_conf()).layout is LK_V2_RECOVERY
    assert LkEnv.decode(LkEnv(LK_V2_RUN).encode()).layout is LK_V2_RUN


# ------------------------------------------------------------------ round trips and rules


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789.-", max_size=255)


@given(st.sampled_from(LK_V1.variables), names, st.binary(max_size=300))
def test_round_trip_keeps_tail(key: str, value: str, tail: bytes) -> None:
    env = LkEnv.decode(v1_conf() + tail)
    env[key] = value
    back = LkEnv.decode(env.encode())
    assert back[key] == value
    assert back.tail == tail
    assert back.encode() == env.encode()


def test_shorter_value_leaves_old_bytes_like_snapd() -> None:
    env = LkEnv(LK_V1)
    env["snap_kernel"] = "pc-kernel_123.snap"
    env["snap_kernel"] = "k"
    raw = field(env.encode(), 3)
    assert raw.startswith(b"k\0-kernel_123.snap\0")
    assert env["snap_kernel"] == "k"


def test_errors() -> None:
    data = bytearray(v1_conf())
    data[300] ^= 1
    with pytest.raises(BootEnvError, match="CRC32"):
        LkEnv.decode(bytes(data))
    with pytest.raises(BootEnvError, match="v2-recovery"):
        LkEnv.decode(v1_conf(), LK_V2_RECOVERY)
    with pytest.raises(BootEnvError, match="struct needs 14860"):
        LkEnv.decode(v1_conf()[:1000])
    with pytest.raises(BootEnvError, match="too short"):
        LkEnv.decode(b"")
    with pytest.raises(BootEnvError, match="not an lk env"):
        LkEnv.decode(b"\0" * 20000)
    env = LkEnv(LK_V1)
    with pytest.raises(BootEnvError, match="at most 255 bytes"):
        env["snap_core"] = "x" * 256
    with pytest.raises(BootEnvError, match="no variable 'snapd_recovery_mode'"):
        env["snapd_recovery_mode"] = "install"
    env.update({"snap_menuentry": "ignored"}, ignore_unknown=True)
    with pytest.raises(KeyError):
        env["snap_menuentry"]


def test_scan_reports_instead_of_raising() -> None:
    data = bytearray(recovery_conf(snapd_recovery_system="x"))
    data[-1] ^= 1
    layout, scan = scan_lk_env(bytes(data))
    assert layout is LK_V2_RECOVERY
    assert scan.values["snapd_recovery_system"] == "x"
    assert scan.problems and "CRC32" in scan.problems[0]


@given(st.binary(max_size=17000))
def test_fuzz_scan_never_crashes(data: bytes) -> None:
    scan_lk_env(data)


def test_free_boot_partition_follows_snapd() -> None:
    env = LkEnv.decode(v1_conf(("boot_a", "boot_b", "")))
    assert env.find_free_boot_partition([], "k_1.snap") == "boot_a"
    env.set_boot_partition("boot_a", "k_1.snap")
    # the installed kernel is reserved; the same value finds its own row again
    assert env.find_free_boot_partition(["k_1.snap"], "k_2.snap") == "boot_b"
    assert env.find_free_boot_partition(["k_1.snap"], "k_1.snap") == "boot_a"
    env.set_boot_partition("boot_b", "k_2.snap")
    with pytest.raises(BootEnvError, match="cannot find free boot image partition"):
        env.find_free_boot_partition(["k_1.snap", "k_2.snap"], "k_3.snap")
    with pytest.raises(BootEnvError, match="boot_c"):
        env.set_boot_partition("boot_c", "x")
    assert env.boot_image_name() == "boot.img"
    env["bootimg_file_name"] = "lk-boot.img"
    assert env.boot_image_name() == "lk-boot.img"


# ------------------------------------------------------------------ seed bootloader files


def lk_gadget(tmp_path: Path, conf: bytes) -> Path:
    g = tmp_path / "gadget"
    g.mkdir(exist_ok=True)
    (g / "lk.conf").write_bytes(conf)
    return g


def boot_image_extractor(calls: list[tuple[tuple[str, ...], Path]]) -> KernelExtractor:
    def extract(members: Sequence[str], dest: Path) -> None:
        calls.append((tuple(members), dest))
        dest.mkdir(parents=True, exist_ok=True)
        for member in members:
            (dest / member).write_bytes(b"BOOTIMG")

    return extract


def test_uc18_lk_writes_snapbootsel_and_boot_img(tmp_path: Path) -> None:
    tail = b"\xee" * 1524  # a partition-sized lk.conf keeps its tail, as snapd leaves it
    g = lk_gadget(tmp_path, v1_conf() + tail)
    calls: list[tuple[tuple[str, ...], Path]] = []
    boot = tmp_path / "boot"
    loader = write_boot16(
        boot, UC18, BootAssets(g, boot_image_extractor(calls)),
        core_file="core18_x1.snap", kernel_file="board-kernel_x1.snap",
    )  # fmt: skip
    assert loader == "lk"
    assert calls == [(("boot.img",), boot / "lk")]
    assert sorted(p.name for p in (boot / "lk").iterdir()) == ["boot.img", "snapbootsel.bin"]
    data = (boot / "lk/snapbootsel.bin").read_bytes()
    assert data.endswith(tail) and len(data) == LK_V1.size + len(tail)
    env = LkEnv.decode(data, LK_V1)
    assert env["snap_core"] == "core18_x1.snap"
    assert env["snap_kernel"] == "board-kernel_x1.snap"
    assert env["snap_mode"] == env["snap_try_core"] == env["snap_try_kernel"] == ""
    assert env.boot_partitions() == [("boot_a", "board-kernel_x1.snap"), ("boot_b", "")]
    # snap_menuentry has no field in the struct: dropped like snapd does
    assert "snap_menuentry" in boot16_vars(UC18, "c", "k")


def test_uc20_lk_writes_snaprecoverysel_and_boot_img(tmp_path: Path) -> None:
    g = lk_gadget(tmp_path, recovery_conf(bootimg_file_name="recovery.img"))
    calls: list[tuple[tuple[str, ...], Path]] = []
    seed = tmp_path / "seed"
    (seed / "systems/20240101").mkdir(parents=True)
    loader = write_recovery20(
        seed, UC20, BootAssets(g, boot_image_extractor(calls)),
        label="20240101", kernel_path="/snaps/board-kernel_1.snap", boot_flags=("factory",),
    )  # fmt: skip
    assert loader == "lk"
    assert calls == [(("recovery.img",), seed / "boot/lk")]
    env = LkEnv.read(seed / "boot/lk/snaprecoverysel.bin", LK_V2_RECOVERY)
    assert env["snapd_recovery_system"] == "20240101"
    assert env["snapd_recovery_mode"] == "install"
    assert env.boot_partitions()[:3] == [("boot_ra", "20240101"), ("boot_rb", ""), ("", "")]


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (b"", "too short"),
        (recovery_conf(), "not an lk v1 env"),
        (v1_conf(parts=()), "cannot find free boot image partition"),
    ],
)
def test_uc18_lk_gadget_errors(tmp_path: Path, conf: bytes, message: str) -> None:
    g = lk_gadget(tmp_path, conf)
    with pytest.raises(BootloaderError, match=message) as err:
        write_boot16(
            tmp_path / "boot", UC18, BootAssets(g, boot_image_extractor([])),
            core_file="c.snap", kernel_file="k.snap",
        )  # fmt: skip
    assert err.value.hint and "lk" in err.value.hint


def test_uc20_lk_needs_a_recovery_env(tmp_path: Path) -> None:
    g = lk_gadget(tmp_path, v1_conf())
    with pytest.raises(BootloaderError, match="v2-recovery"):
        write_recovery20(
            tmp_path / "seed", UC20, BootAssets(g, boot_image_extractor([])),
            label="x", kernel_path="/snaps/k.snap",
        )  # fmt: skip
