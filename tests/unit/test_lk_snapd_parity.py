"""The lk envs and boot image files we prepare, checked against snapd's source.

Read (never copied) from canonical/snapd at bee548f7 (2026-08-21); the behaviour
also holds in Debian's snapd 2.57.6, the ``snap prepare-image`` the integration
oracle (tests/integration/test_lk_snapd_oracle.py) runs.  What was checked, and where:

Structs (``bootloader/lkenv/lkenv_v1.go`` ``SnapBootSelect_v1``, ``lkenv_v2.go``
``SnapBootSelect_v2_run`` and ``SnapBootSelect_v2_recovery``; read and written with
``encoding/binary`` little-endian in ``Env.LoadEnv``/``Env.Save``):
  * v1: Signature, Version (uint32 each), Snap_mode, Snap_core, Snap_try_core,
    Snap_kernel, Snap_try_kernel, Gadget_mode, Snap_gadget, Snap_try_gadget,
    Reboot_reason ([256]byte each), Bootimg_matrix [2][2][256], Bootimg_file_name,
    Gadget_asset_matrix [2][2][256], Unused_key_01..20, Key_value_pairs [10][2][256],
    Crc32 (uint32).
  * v2 run: Signature, Version, Kernel_status, Snap_kernel, Snap_try_kernel,
    Gadget_mode, Snap_gadget, Snap_try_gadget, Bootimg_matrix [2][2][256],
    Bootimg_file_name, Gadget_asset_matrix [2][2][256], Unused_key_01..20,
    Key_value_pairs [10][2][256], Crc32.
  * v2 recovery: Signature, Version, Snapd_recovery_mode, Snapd_recovery_system,
    Bootimg_matrix [10][2][256] (``SNAP_RECOVERY_BOOTIMG_PART_NUM``),
    Bootimg_file_name, Try_recovery_system, Recovery_system_status,
    Device_lock_state, Unused_key_01..17, Key_value_pairs [10][2][256], Crc32.
  * Magic: ``SNAP_BOOTSELECT_SIGNATURE`` = 'S'|'B'<<8|'s'<<16|'e'<<24 (v1, v2 run),
    ``SNAP_BOOTSELECT_RECOVERY_SIGNATURE`` = 'S'|'R'<<8|'s'<<16|'e'<<24 (v2 recovery);
    ``SNAP_BOOTSELECT_VERSION_V1`` 0x00010001, ``_V2`` 0x00010010 (``lkenv.go``,
    ``Version.Number``/``Version.Signature``).
  * CRC: ``crc32.ChecksumIEEE`` of every byte before the Crc32 field (``Env.Save``,
    checked in ``Env.LoadEnv`` after the version and signature).
  * Variables each struct gets/sets (the ``get``/``set`` switches): v1 snap_mode,
    snap_kernel, snap_try_kernel, snap_core, snap_try_core, snap_gadget,
    snap_try_gadget, reboot_reason, bootimg_file_name; v2 run kernel_status,
    snap_kernel, snap_try_kernel, snap_gadget, snap_try_gadget, bootimg_file_name;
    v2 recovery snapd_recovery_mode, snapd_recovery_system, bootimg_file_name,
    try_recovery_system, recovery_system_status (not device_lock_state, gadget_mode).
    Any other name is ignored on set (so snap_menuentry, snapd_boot_flags are dropped).
  * Strings: ``cToGoString`` reads up to the first NUL, and a field with no NUL
    reads as ""; ``copyString`` writes the value and one NUL, later bytes stay.
    Deliberate difference: a value of 256 bytes or more is truncated by snapd,
    refused by us (no snap file name or system label gets near it).
  * Saving writes the struct over the start of the file (``Env.saveEnv``: O_WRONLY,
    no truncation): the bytes after it stay.

Boot image partitions (``lkenv.go``):
  * ``findFreeBootPartition``: rows with an empty label are skipped; a row already
    holding the value wins; rows holding a reserved value are skipped; otherwise the
    first labelled row is taken even if it holds another value.
  * ``FindFreeKernelBootPartition`` (UC16/18, ``lk.ExtractKernelAssets``): reserved
    is the env's current snap_kernel when set; the value is the kernel snap's file
    name (``snap.PlaceInfo.Filename``, ``<name>_<rev>.snap``).
  * ``FindFreeRecoverySystemBootPartition`` (UC20+,
    ``lk.ExtractRecoveryKernelAssets``): reserved are all values of labelled rows
    (``assignedBootPartValues``); the value is the recovery system label
    (``filepath.Base`` of the system dir).
  * ``setBootPart``: the value goes to the first row with that label.
  * ``GetBootImageName``: bootimg_file_name, or ``boot.img`` when empty.

Prepare-image flow (``boot/makebootable.go``, ``bootloader/lk.go``):
  * UC16/18 ``makeBootable16``: ``InstallBootConfig`` copies the gadget's
    ``lk.conf`` to ``<image>/boot/lk/snapbootsel.bin`` (``lk.envBackstore``: the
    ``snapbootsel`` label + ".bin" at prepare-image time); ``ExtractKernelAssets``
    loads it (v1; an invalid env fails, the backup ``snapbootselbak.bin`` does not
    exist), unpacks the kernel's boot image into ``boot/lk/`` under its own name
    (not the partition label), records the kernel in the matrix and saves; then
    ``SetBootVars`` sets snap_mode, snap_try_core, snap_try_kernel to "",
    snap_core, snap_kernel (and snap_menuentry, dropped), writing only variables
    whose value changes (``lk.SetBootVars``' dirty check).
  * UC20+ ``makeBootable20`` → ``configureBootloader`` with the recovery role
    (v2 recovery, ``snaprecoverysel``): ``InstallBootConfig`` copies ``lk.conf`` to
    ``<seed>/boot/lk/snaprecoverysel.bin`` (the seed is the boot root,
    ``image.imageSeeder.setModesDirs``); ``SetBootVars`` sets snapd_recovery_mode
    "install", snapd_recovery_system the label (and snapd_boot_flags, dropped).  A
    failed load is tolerated at prepare-image time when the error is "not exist" —
    which the missing backup makes it — so an lk.conf whose only fault is its CRC
    is saved with a fresh one (checked with the real snap prepare-image).  Then
    ``MakeRecoverySystemBootable`` → ``ExtractRecoveryKernelAssets`` loads it again,
    picks the partition for the label, unpacks the boot image into
    ``<seed>/boot/lk/`` and saves.
  * Backups: ``Env.Save`` writes the backup only if it exists; at prepare-image
    time none does, so only snapbootsel.bin / snaprecoverysel.bin are written.

Raw partitions: snapd's image code writes none; ubuntu-image's
``handleLkBootloader`` copies ``<prepare>/image/boot/lk/*`` over the gadget's files
so that bare ``image:`` content of the same name (snapbootsel.bin, boot.img) gets
them — our build does the same for UC16/18 (tests/integration/test_build_lk.py).
For UC20+ that directory is not where snapd writes (``<prepare>/system-seed/boot/lk``)
and nothing else puts the prepared recovery env or boot image into the
``system-seed-select``/``system-seed-image`` partitions at build time.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.build_snaps import LK_V1_FIELDS, LK_V2_RECOVERY_FIELDS, LK_V2_RUN_FIELDS, lk_env
from tests.unit.test_seed_writer import UC18, UC20
from ucimage.seed.bootenv import (
    LK_V1,
    LK_V2_RECOVERY,
    LK_V2_RUN,
    BootEnvError,
    LkEnv,
    LkLayout,
    scan_lk_env,
)
from ucimage.seed.bootloader import (
    BootAssets,
    BootloaderError,
    KernelExtractor,
    write_boot16,
    write_recovery20,
)

#: the Go struct fields, in declaration order, as (name, number of 256-byte slots)
SNAPD_V1 = [
    *[(n, 1) for n in ("Snap_mode", "Snap_core", "Snap_try_core", "Snap_kernel")],
    *[(n, 1) for n in ("Snap_try_kernel", "Gadget_mode", "Snap_gadget", "Snap_try_gadget")],
    ("Reboot_reason", 1), ("Bootimg_matrix", 2 * 2), ("Bootimg_file_name", 1),
    ("Gadget_asset_matrix", 2 * 2), *[(f"Unused_key_{i:02}", 1) for i in range(1, 21)],
    ("Key_value_pairs", 10 * 2),
]  # fmt: skip
SNAPD_V2_RUN = [
    *[(n, 1) for n in ("Kernel_status", "Snap_kernel", "Snap_try_kernel")],
    *[(n, 1) for n in ("Gadget_mode", "Snap_gadget", "Snap_try_gadget")],
    ("Bootimg_matrix", 2 * 2), ("Bootimg_file_name", 1), ("Gadget_asset_matrix", 2 * 2),
    *[(f"Unused_key_{i:02}", 1) for i in range(1, 21)], ("Key_value_pairs", 10 * 2),
]  # fmt: skip
SNAPD_V2_RECOVERY = [
    ("Snapd_recovery_mode", 1), ("Snapd_recovery_system", 1), ("Bootimg_matrix", 10 * 2),
    ("Bootimg_file_name", 1), ("Try_recovery_system", 1), ("Recovery_system_status", 1),
    ("Device_lock_state", 1), *[(f"Unused_key_{i:02}", 1) for i in range(1, 18)],
    ("Key_value_pairs", 10 * 2),
]  # fmt: skip
#: the names each struct's get/set switch knows
SNAPD_VARIABLES = {
    "v1": {
        "snap_mode", "snap_kernel", "snap_try_kernel", "snap_core", "snap_try_core",
        "snap_gadget", "snap_try_gadget", "reboot_reason", "bootimg_file_name",
    },
    "v2-run": {
        "kernel_status", "snap_kernel", "snap_try_kernel", "snap_gadget", "snap_try_gadget",
        "bootimg_file_name",
    },
    "v2-recovery": {
        "snapd_recovery_mode", "snapd_recovery_system", "bootimg_file_name",
        "try_recovery_system", "recovery_system_status",
    },
}  # fmt: skip
SIGNATURE = 0x53 | 0x42 << 8 | 0x73 << 16 | 0x65 << 24
RECOVERY_SIGNATURE = 0x53 | 0x52 << 8 | 0x73 << 16 | 0x65 << 24


def slot_offsets(fields: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Byte offset of every field: two uint32 words, then 256-byte slots."""
    out = {}
    at = 8
    for name, slots in fields:
        out[name.lower()] = at
        at += slots * 256
    out["crc32"] = at
    return out


@pytest.mark.parametrize(
    ("layout", "snapd", "signature", "version"),
    [
        (LK_V1, SNAPD_V1, SIGNATURE, 0x00010001),
        (LK_V2_RUN, SNAPD_V2_RUN, SIGNATURE, 0x00010010),
        (LK_V2_RECOVERY, SNAPD_V2_RECOVERY, RECOVERY_SIGNATURE, 0x00010010),
    ],
)
def test_struct_layout_matches_snapd(
    layout: LkLayout, snapd: list[tuple[str, int]], signature: int, version: int
) -> None:
    offsets = slot_offsets(snapd)
    assert layout.size == offsets["crc32"] + 4
    assert (layout.signature, layout.version) == (signature, version)
    for name in layout.variables:
        assert layout.offset(name) == offsets[name], name
    matrix = layout.matrix
    assert layout.offset(matrix) == offsets["bootimg_matrix"]
    assert layout.slots(matrix) == dict((n.lower(), s) for n, s in snapd)["bootimg_matrix"]
    assert set(layout.variables) == SNAPD_VARIABLES[layout.name]
    head = LkEnv(layout).encode()[:8]
    assert head == struct.pack("<II", signature, version)


def test_crc_is_ieee_over_everything_before_it() -> None:
    env = LkEnv(LK_V2_RUN)
    env["snap_kernel"] = "k_1.snap"
    data = env.encode()
    assert struct.unpack_from("<I", data, LK_V2_RUN.size - 4)[0] == zlib.crc32(data[:-4])


def test_cstring_without_nul_reads_empty_like_ctogostring() -> None:
    data = bytearray(LkEnv(LK_V1).encode())
    at = LK_V1.offset("snap_core")
    data[at : at + 256] = b"c" * 256
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    assert LkEnv.decode(bytes(data))["snap_core"] == ""
    assert scan_lk_env(bytes(data))[1].values["snap_core"] == ""


def test_update_writes_only_changed_variables_like_setbootvars() -> None:
    """A field without NUL reads as "": setting it to "" leaves its bytes (snapd's dirty
    check); the old code wrote a NUL over its first byte."""
    data = bytearray(LkEnv(LK_V1).encode())
    mode = LK_V1.offset("snap_mode")
    data[mode : mode + 256] = b"A" * 256
    env = LkEnv(LK_V1, bytes(data))
    env.update(
        {"snap_mode": "", "snap_core": "core18_1.snap", "snap_menuentry": "x"}, ignore_unknown=True
    )
    out = env.encode()
    assert out[mode : mode + 256] == b"A" * 256
    assert env["snap_core"] == "core18_1.snap"
    # a changed value is written with copyString's NUL: "try" over "AAA…" reads "try"
    env.update({"snap_mode": "try"})
    assert env.encode()[mode : mode + 5] == b"try\0A"


# ------------------------------------------------------------------ boot image partitions


def v1_conf(
    parts: Sequence[str] = ("boot_a", "boot_b"), matrix: Sequence[str] = (), **values: str
) -> bytes:
    data = bytearray(lk_env(LK_V1_FIELDS, b"SBse", 0x00010001, values, list(parts)))
    base = LK_V1.offset("bootimg_matrix")
    for row, value in enumerate(matrix):
        at = base + (2 * row + 1) * 256
        data[at : at + len(value)] = value.encode()
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    return bytes(data)


def recovery_conf(
    parts: Sequence[str] = ("boot_ra", "boot_rb"), matrix: Sequence[str] = (), **values: str
) -> bytes:
    data = bytearray(lk_env(LK_V2_RECOVERY_FIELDS, b"SRse", 0x00010010, values, list(parts)))
    base = LK_V2_RECOVERY.offset("bootimg_matrix")
    for row, value in enumerate(matrix):
        at = base + (2 * row + 1) * 256
        data[at : at + len(value)] = value.encode()
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    return bytes(data)


def test_find_free_boot_partition_rules() -> None:
    env = LkEnv.decode(recovery_conf(("", "r1", "r2", "r3"), ("x", "old", "new", "")))
    # the unlabelled first row is skipped even though its value is not reserved
    assert env.find_free_boot_partition([], "y") == "r1"
    # rows are taken in order: the first holding the value (even if reserved) or an
    # unreserved value, which counts as free even when set
    assert env.find_free_boot_partition(["old", "new"], "new") == "r2"
    assert env.find_free_boot_partition(["old", "new"], "y") == "r3"
    assert env.find_free_boot_partition(["old"], "y") == "r2"
    full = LkEnv.decode(recovery_conf(("r1",), ("old",)))
    with pytest.raises(BootEnvError, match="cannot find free boot image partition"):
        full.find_free_boot_partition(["old"], "z")


def gadget(tmp_path: Path, conf: bytes) -> Path:
    g = tmp_path / "gadget"
    g.mkdir(exist_ok=True)
    (g / "lk.conf").write_bytes(conf)
    return g


def extractor(calls: list[tuple[str, ...]]) -> KernelExtractor:
    def extract(members: Sequence[str], dest: Path) -> None:
        calls.append(tuple(members))
        dest.mkdir(parents=True, exist_ok=True)
        for m in members:
            (dest / m).write_bytes(b"IMG")

    return extract


def boot16(tmp_path: Path, conf: bytes, kernel: str = "k_2.snap") -> LkEnv:
    calls: list[tuple[str, ...]] = []
    write_boot16(
        tmp_path / "boot", UC18, BootAssets(gadget(tmp_path, conf), extractor(calls)),
        core_file="core18_1.snap", kernel_file=kernel,
    )  # fmt: skip
    return LkEnv.read(tmp_path / "boot/lk/snapbootsel.bin", LK_V1)


def test_uc18_reserves_the_gadget_envs_snap_kernel(tmp_path: Path) -> None:
    env = boot16(tmp_path, v1_conf(matrix=("k_1.snap",), snap_kernel="k_1.snap"))
    assert env.boot_partitions() == [("boot_a", "k_1.snap"), ("boot_b", "k_2.snap")]
    assert env["snap_kernel"] == "k_2.snap"


def test_uc18_same_kernel_keeps_its_row(tmp_path: Path) -> None:
    # reserved as the installed kernel, but the same value: its row is found again
    env = boot16(tmp_path, v1_conf(matrix=("k_2.snap",), snap_kernel="k_2.snap"))
    assert env.boot_partitions() == [("boot_a", "k_2.snap"), ("boot_b", "")]


def test_uc18_unreserved_value_is_overwritten(tmp_path: Path) -> None:
    # boot_a holds a kernel the env does not name as installed: it is free
    env = boot16(tmp_path, v1_conf(matrix=("stale_1.snap",)))
    assert env.boot_partitions() == [("boot_a", "k_2.snap"), ("boot_b", "")]


def test_uc18_sets_the_variables_snapd_sets(tmp_path: Path) -> None:
    conf = v1_conf(snap_mode="try", snap_try_core="c_9.snap", snap_try_kernel="k_9.snap",
                   reboot_reason="keep", snap_gadget="g_1.snap")  # fmt: skip
    env = boot16(tmp_path, conf)
    assert env.values == {
        "snap_mode": "", "snap_core": "core18_1.snap", "snap_try_core": "",
        "snap_kernel": "k_2.snap", "snap_try_kernel": "",
        # not set by makeBootable16: as the gadget had them
        "snap_gadget": "g_1.snap", "snap_try_gadget": "", "reboot_reason": "keep",
        "bootimg_file_name": "",
    }  # fmt: skip


def test_uc18_boot_image_file_keeps_its_name(tmp_path: Path) -> None:
    calls: list[tuple[str, ...]] = []
    write_boot16(
        tmp_path / "boot", UC18,
        BootAssets(gadget(tmp_path, v1_conf(bootimg_file_name="lk-boot.img")), extractor(calls)),
        core_file="c_1.snap", kernel_file="k_1.snap",
    )  # fmt: skip
    assert calls == [("lk-boot.img",)]
    assert sorted(p.name for p in (tmp_path / "boot/lk").iterdir()) == [
        "lk-boot.img",
        "snapbootsel.bin",
    ]


def test_uc18_lk_conf_with_bad_crc_fails_like_snapd(tmp_path: Path) -> None:
    conf = bytearray(v1_conf())
    conf[-1] ^= 1
    with pytest.raises(BootloaderError, match="CRC32 mismatch"):
        boot16(tmp_path, bytes(conf))


def recovery(tmp_path: Path, conf: bytes, label: str = "20240101") -> LkEnv:
    seed = tmp_path / "seed"
    (seed / "systems" / label).mkdir(parents=True, exist_ok=True)
    write_recovery20(
        seed, UC20, BootAssets(gadget(tmp_path, conf), extractor([])),
        label=label, kernel_path="/snaps/k_1.snap", boot_flags=("factory",),
    )  # fmt: skip
    return LkEnv.read(seed / "boot/lk/snaprecoverysel.bin", LK_V2_RECOVERY)


def test_uc20_reserves_every_assigned_recovery_system(tmp_path: Path) -> None:
    conf = recovery_conf(("boot_ra", "boot_rb", "boot_rc"), ("20230101", "", "20220101"))
    env = recovery(tmp_path, conf)
    assert env.boot_partitions()[:3] == [
        ("boot_ra", "20230101"), ("boot_rb", "20240101"), ("boot_rc", "20220101"),
    ]  # fmt: skip
    assert env["snapd_recovery_mode"] == "install"
    assert env["snapd_recovery_system"] == "20240101"


def test_uc20_all_assigned_is_an_error(tmp_path: Path) -> None:
    conf = recovery_conf(("boot_ra",), ("20230101",))
    with pytest.raises(BootloaderError, match="cannot find free boot image partition"):
        recovery(tmp_path, conf)


def test_uc20_lk_conf_with_bad_crc_is_rewritten_like_snapd(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """snap prepare-image accepts it (SetBootVars tolerates the failed load and saves
    a fresh CRC); the old code refused the gadget."""
    good = recovery_conf(try_recovery_system="keep")
    bad = bytearray(good + b"\xee" * 10)
    bad[LK_V2_RECOVERY.size - 1] ^= 1
    with caplog.at_level(logging.WARNING, logger="ucimage.seed.bootloader"):
        env = recovery(tmp_path, bytes(bad))
    assert "wrong CRC32" in caplog.text
    assert env["try_recovery_system"] == "keep"
    assert env.tail == b"\xee" * 10
    # the same bytes as from the intact gadget file
    again = recovery(tmp_path / "again", good + b"\xee" * 10)
    assert env.encode() == again.encode()


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (v1_conf(), "not an lk v2-recovery env"),
        (LkEnv(LK_V2_RUN).encode(), "not an lk v2-recovery env"),
        (recovery_conf()[:9000], "struct needs 16140"),
    ],
)
def test_uc20_other_lk_conf_faults_still_fail(tmp_path: Path, conf: bytes, message: str) -> None:
    with pytest.raises(BootloaderError, match=message):
        recovery(tmp_path, conf)


def test_v2_run_fields_of_the_independent_encoder() -> None:
    data = lk_env(LK_V2_RUN_FIELDS, b"SBse", 0x00010010, {"snap_kernel": "k_1.snap"}, ["boot_a"])
    env = LkEnv.decode(data)
    assert env.layout is LK_V2_RUN and env["snap_kernel"] == "k_1.snap"
    assert env.boot_partitions() == [("boot_a", ""), ("", "")]
