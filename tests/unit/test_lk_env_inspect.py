"""``ucimage inspect`` reads lk envs from bare partitions, where the lk bootloader reads them.

The images are assembled with our own disk writer (raw partitions and raw writes
only: no external tools) and the envs with the independent encoder of
``tests/build_snaps``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.build_snaps import LK_V1_FIELDS, LK_V2_RECOVERY_FIELDS, LK_V2_RUN_FIELDS, lk_env
from ucimage.image import DiskSpec, PartitionSpec, RawWrite
from ucimage.image.writer import write_disk
from ucimage.inspect import inspect_image, render_text, to_json
from ucimage.inspect.bootenv import (
    lk_select_kind,
    parse_lk_env,
    parse_raw_lk_env,
    starts_like_lk_env,
)
from ucimage.inspect.seed import Seed
from ucimage.inspect.verify import check_bootenvs

MiB = 1 << 20
#: the type snapd's lk gadgets give their env partitions, and the boot image one
LK_SELECT_TYPE = "B214D5E4-D442-45E6-B8C6-01BDCD82D396"
BOOTIMG_TYPE = "20117F86-E985-4357-B9EE-374BC1D8487D"


def v1_env(**values: str) -> bytes:
    data = bytearray(lk_env(LK_V1_FIELDS, b"SBse", 0x00010001, values, ["boot_a", "boot_b"]))
    # the kernel assigned to boot_a (matrix row 0 value: slot 10)
    kernel = values.get("snap_kernel", "").encode()
    data[8 + 10 * 256 : 8 + 10 * 256 + len(kernel)] = kernel
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    return bytes(data)


def recovery_env(**values: str) -> bytes:
    return lk_env(LK_V2_RECOVERY_FIELDS, b"SRse", 0x00010010, values, ["boot_ra", "boot_rb"])


def run_env() -> bytes:
    return lk_env(LK_V2_RUN_FIELDS, b"SBse", 0x00010010, {}, ["boot_a", "boot_b"])


def write_image(
    path: Path,
    parts: list[tuple[str, str, bytes | None]],
    *,
    schema: str = "gpt",
    size: int = 128 * 1024,
) -> Path:
    """One partition of *size* bytes per (name, type, content), from 1 MiB on."""
    specs = []
    writes = []
    for i, (name, ptype, content) in enumerate(parts):
        start = MiB + i * size
        specs.append(PartitionSpec(i + 1, start, size, ptype, name if schema == "gpt" else ""))
        if content is not None:
            writes.append(RawWrite(start, data=content, limit=size, what=name))
    spec = DiskSpec(
        path,
        MiB + len(parts) * size + MiB,
        schema="gpt" if schema == "gpt" else "mbr",
        partitions=tuple(specs),
        raw_writes=tuple(writes),
        seed=b"lk-test",
    )
    write_disk(spec, workdir=path.parent, sync=False)
    return path


UC18_ENV = {"snap_core": "core18_7.snap", "snap_kernel": "board-kernel_3.snap"}


def uc18_image(tmp_path: Path, env: bytes) -> Path:
    return write_image(
        tmp_path / "uc18.img",
        [
            ("snapbootsel", LK_SELECT_TYPE, env + b"\xee" * 100),
            ("snapbootselbak", LK_SELECT_TYPE, env),
            ("boot_a", BOOTIMG_TYPE, b"ANDROID!" + bytes(100)),
            ("boot_b", BOOTIMG_TYPE, None),
        ],
    )


def test_raw_v1_env_is_read_and_shown(tmp_path: Path) -> None:
    report = inspect_image(uc18_image(tmp_path, v1_env(**UC18_ENV)), tmp_path / "w")
    # only the select partitions: the boot image partitions are not envs
    assert [(b.partition, b.name, b.raw, b.path) for b in report.bootenvs] == [
        (1, "snapbootsel", True, ""),
        (2, "snapbootselbak", True, ""),
    ]
    env = report.bootenvs[0].env
    assert env.valid and env.problems == () and env.format == "lk"
    assert env.variables["snap_core"] == "core18_7.snap"
    assert env.variables["snap_kernel"] == "board-kernel_3.snap"
    assert env.variables["snap_mode"] == ""
    assert env.details == {"struct": "v1", "boot partitions": "boot_a=board-kernel_3.snap boot_b="}
    doc = to_json(report)
    first = doc["bootenv"][0]
    assert first == {
        "partition": 1,
        "path": None,
        "format": "lk",
        "valid": True,
        "problems": [],
        "vars": env.variables,
        "raw": True,
        "partition-name": "snapbootsel",
        "details": env.details,
    }
    text = render_text(report)
    assert "Boot environment:\n  partition 1 (raw snapbootsel) (lk)\n" in text
    assert "    snap_kernel=board-kernel_3.snap\n" in text
    assert "    (lk v1 struct; boot image partitions: boot_a=board-kernel_3.snap boot_b=)\n" in text
    assert "  partition 2 (raw snapbootselbak) (lk)\n" in text


def test_bad_crc_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    data = bytearray(v1_env(**UC18_ENV))
    data[8 + 1 * 256] = ord("k")  # snap_core: core18_7.snap -> kore18_7.snap
    report = inspect_image(uc18_image(tmp_path, bytes(data)), tmp_path / "w")
    env = report.bootenvs[0].env
    assert not env.valid
    assert env.problems[0].startswith("lk env CRC32 mismatch: stored ")
    # what the struct says is still shown
    assert env.variables["snap_core"] == "kore18_7.snap"
    doc = to_json(report)
    assert [e["valid"] for e in doc["bootenv"]] == [False, False]
    assert "partition 1 (raw snapbootsel) (lk)  [INVALID: lk env CRC32 mismatch" in render_text(
        report
    )


@pytest.mark.parametrize(
    ("content", "size", "problem"),
    [
        (bytes(64), 8192, "not an lk env: signature 0x00000000"),
        (None, 8192, "not an lk env"),  # never written: zeros
        (b"snapbootsel.bin", 8192, "not an lk env: signature 0x70616E73"),
        # a partition too small for the struct
        (v1_env()[:8192], 8192, "lk v1 env is 8192 bytes, the struct needs 14860"),
        # the end of the struct never written
        (v1_env()[:9000], 16384, "lk env CRC32 mismatch: stored 00000000"),
    ],
)
def test_named_partition_without_a_usable_env(
    tmp_path: Path, content: bytes | None, size: int, problem: str
) -> None:
    image = write_image(tmp_path / "x.img", [("snapbootsel", LK_SELECT_TYPE, content)], size=size)
    (found,) = inspect_image(image, tmp_path / "w").bootenvs
    assert found.raw and not found.env.valid
    assert found.env.problems[0].startswith(problem)


def test_uc20_envs_and_the_kind_snapd_reads_by_name(tmp_path: Path) -> None:
    image = write_image(
        tmp_path / "uc20.img",
        [
            ("snaprecoverysel", LK_SELECT_TYPE, recovery_env(snapd_recovery_system="20240101")),
            ("snaprecoveryselbak", LK_SELECT_TYPE, v1_env()),  # wrong struct for this partition
            ("snapbootsel", LK_SELECT_TYPE, run_env()),
            ("boot_ra", BOOTIMG_TYPE, None),
        ],
    )
    envs = inspect_image(image, tmp_path / "w").bootenvs
    assert [(b.name, b.env.details.get("struct"), b.env.valid) for b in envs] == [
        ("snaprecoverysel", "v2-recovery", True),
        ("snaprecoveryselbak", "v1", False),
        ("snapbootsel", "v2-run", True),
    ]
    assert envs[0].env.variables["snapd_recovery_system"] == "20240101"
    assert envs[1].env.problems == (
        "lk v1 env where snapd reads an lk v2-recovery env (an lk recovery select partition)",
    )


def test_found_by_signature_without_a_name(tmp_path: Path) -> None:
    """MBR has no partition names: an lk struct at the start of a bare partition is enough."""
    image = write_image(
        tmp_path / "mbr.img",
        [("", "da", b"\x00" * 512), ("", "da", recovery_env(snapd_recovery_mode="install"))],
        schema="mbr",
    )
    (found,) = inspect_image(image, tmp_path / "w").bootenvs
    assert found.partition == 2 and found.raw and found.name == ""
    assert found.where == "partition 2 (raw)"
    assert found.env.valid and found.env.variables["snapd_recovery_mode"] == "install"


def test_partition_kinds() -> None:
    assert lk_select_kind("snapbootsel") == lk_select_kind("snapbootselbak") == "boot"
    assert lk_select_kind("snaprecoverysel") == lk_select_kind("snaprecoveryselbak") == "recovery"
    assert lk_select_kind("whatever", "system-boot-select") == "boot"
    assert lk_select_kind("whatever", "bootselect") == "boot"
    assert lk_select_kind("whatever", "system-seed-select") == "recovery"
    assert lk_select_kind("boot_a", "system-boot-image") is None
    assert starts_like_lk_env(v1_env()) and starts_like_lk_env(run_env())
    assert starts_like_lk_env(recovery_env())
    assert not starts_like_lk_env(b"SBse\x01\x00\x01\x01") and not starts_like_lk_env(b"")
    # on a UC20+ seed the boot select partition holds a v2 run env, on UC16/18 a v1 one
    assert not parse_raw_lk_env(v1_env(), "boot", "uc20").valid
    assert parse_raw_lk_env(v1_env(), "boot", "uc16").valid
    assert not parse_raw_lk_env(run_env(), "boot", "uc16").valid
    assert parse_raw_lk_env(run_env(), "boot", None).valid


def fake_seed(layout: str) -> Seed:
    snaps = [
        SimpleNamespace(
            type="kernel", name="board-kernel", revision="3", file="board-kernel_3.snap"
        ),
        SimpleNamespace(type="base", name="core18", revision="7", file="core18_7.snap"),
    ]
    return cast(Seed, SimpleNamespace(layout=layout, snaps=snaps, system_label="20240101"))


def test_verify_uc16_checks_raw_values() -> None:
    good = parse_lk_env(v1_env(**UC18_ENV))
    checks = check_bootenvs(fake_seed("uc16"), [], raw=[("partition 1 (raw snapbootsel)", good)])
    assert [(c.subject, c.status) for c in checks] == [
        ("partition 1 (raw snapbootsel) snap_kernel", "ok"),
        ("partition 1 (raw snapbootsel) snap_core", "ok"),
    ]
    stale = parse_lk_env(v1_env(snap_core="core18_6.snap", snap_kernel="board-kernel_3.snap"))
    checks = check_bootenvs(fake_seed("uc16"), [], raw=[("p2", stale)])
    assert [(c.subject, c.status) for c in checks if c.failed] == [("p2 snap_core", "failed")]
    broken = bytearray(v1_env(**UC18_ENV))
    broken[-1] ^= 1
    checks = check_bootenvs(fake_seed("uc16"), [], raw=[("p3", parse_lk_env(bytes(broken)))])
    failed = [(c.subject, c.message[:22]) for c in checks if c.failed]
    # the broken env is reported, and then nothing names the kernel and base
    assert failed == [
        ("p3", "lk env CRC32 mismatch:"),
        ("snap_kernel", "no boot environment se"),
        ("snap_core", "no boot environment se"),
    ]


def test_verify_uc20_checks_raw_recovery_envs() -> None:
    seed_file = parse_lk_env(recovery_env(snapd_recovery_system="20240101"))
    gadget_bytes = parse_lk_env(recovery_env())  # the gadget's own, no system named
    broken = bytearray(run_env())
    broken[100] ^= 1
    checks = check_bootenvs(
        fake_seed("uc20"),
        [("partition 12:/boot/lk/snaprecoverysel.bin", seed_file)],
        raw=[("p8", gadget_bytes), ("p10", parse_lk_env(bytes(broken)))],
    )
    got: list[tuple[str, str]] = [(c.subject, c.status) for c in checks]
    # the build flashes the seed's env there: the gadget's blank one is a failure
    assert got == [
        ("partition 12:/boot/lk/snaprecoverysel.bin snapd_recovery_system", "ok"),
        ("p8", "ok"),
        ("p8 snapd_recovery_system", "failed"),
        ("p8 recovery boot image partition", "failed"),
        ("p10", "failed"),
    ]
    assert checks[2].message.startswith("is '', the seed has '20240101': the lk recovery")
    assert checks[3].message.startswith("no boot image partition is assigned to '20240101'")
    # named but not in the recovery matrix: the bootloader finds no kernel
    named = check_bootenvs(fake_seed("uc20"), [], raw=[("p8", seed_file)])
    assert [(c.subject, c.status) for c in named] == [
        ("p8", "ok"),
        ("p8 snapd_recovery_system", "ok"),
        ("p8 recovery boot image partition", "failed"),
    ]
    data = bytearray(recovery_env(snapd_recovery_system="20240101"))
    data[8 + 3 * 256 : 8 + 3 * 256 + 8] = b"20240101"  # matrix row 0 value: boot_ra
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    flashed = check_bootenvs(fake_seed("uc20"), [], raw=[("p8", parse_lk_env(bytes(data)))])
    assert [(c.subject, c.status, c.message) for c in flashed] == [
        ("p8", "ok", "intact lk env"),
        ("p8 snapd_recovery_system", "ok", "20240101"),
        ("p8 recovery boot image partition", "ok", "boot_ra"),
    ]


def test_fuzzed_raw_partitions_never_crash(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    good = v1_env(**UC18_ENV)
    for i in range(20):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randrange(1, len(data) + 1)]
        image = write_image(tmp_path / f"f{i}.img", [("snapbootsel", LK_SELECT_TYPE, bytes(data))])
        report: Any = inspect_image(image, tmp_path / "w")
        assert len(report.bootenvs) == 1


@given(
    st.binary(max_size=17000),
    st.sampled_from([None, "boot", "recovery"]),
    st.sampled_from([None, "uc16", "uc20"]),
)
def test_fuzz_parse_raw_never_crashes(data: bytes, kind: str | None, layout: str | None) -> None:
    env = parse_raw_lk_env(data, kind, layout)
    assert env.valid == (not env.problems)
