"""grubenv and u-boot env parsing."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ucimage.inspect.bootenv import parse_bootenv, parse_grubenv, parse_lk_env, parse_uboot_env
from ucimage.seed.bootenv import LK_V2_RECOVERY, LkEnv


def grubenv(**values: str) -> bytes:
    body = b"# GRUB Environment Block\n" + b"".join(
        f"{k}={v}\n".encode() for k, v in values.items()
    )
    return body.ljust(1024, b"#")


def uboot(values: dict[str, str], size: int = 4096, redundant: bool = True) -> bytes:
    payload = b"".join(f"{k}={v}".encode() + b"\0" for k, v in sorted(values.items())) + b"\0"
    header = 5 if redundant else 4
    payload = payload.ljust(size - header, b"\xff")
    flag = b"\0" if redundant else b""
    return struct.pack("<I", zlib.crc32(payload)) + flag + payload


def test_grubenv() -> None:
    env = parse_grubenv(grubenv(snap_mode="", snap_core="core18_1.snap", snap_kernel="k_2.snap"))
    assert env.valid and env.problems == ()
    assert env.variables == {
        "snap_mode": "",
        "snap_core": "core18_1.snap",
        "snap_kernel": "k_2.snap",
    }


def test_grubenv_wrong_size_and_header() -> None:
    env = parse_grubenv(grubenv(a="b")[:1000])
    assert not env.valid and "1000 bytes" in env.problems[0]
    assert env.variables == {"a": "b"}
    env = parse_grubenv(b"x" * 1024)
    assert not env.valid and env.variables == {}


@pytest.mark.parametrize("redundant", [True, False])
def test_uboot_env(redundant: bool) -> None:
    env = parse_uboot_env(uboot({"snap_core": "core_1.snap", "snap_mode": ""}, redundant=redundant))
    assert env.valid and env.redundant is redundant
    assert env.variables == {"snap_core": "core_1.snap", "snap_mode": ""}


def test_uboot_env_crc_mismatch_is_reported() -> None:
    data = bytearray(uboot({"snap_core": "core_1.snap"}))
    data[10] ^= 0x20
    env = parse_uboot_env(bytes(data))
    assert not env.valid
    assert "CRC32 mismatch" in env.problems[0]
    assert "snap_core" in "".join(env.variables) or env.variables


def test_unknown_format() -> None:
    with pytest.raises(ValueError):
        parse_bootenv("efivars", b"")


def test_lk_env() -> None:
    env = LkEnv(LK_V2_RECOVERY)
    env.update({"snapd_recovery_system": "20240101", "snapd_recovery_mode": "install"})
    data = env.encode()
    found = parse_bootenv("lk", data)
    assert found.valid and found.format == "lk" and found.size == 16140
    assert found.variables["snapd_recovery_system"] == "20240101"
    assert found.details == {"struct": "v2-recovery", "boot partitions": ""}
    broken = parse_lk_env(data[:-1] + bytes([data[-1] ^ 1]))
    assert not broken.valid and "CRC32 mismatch" in broken.problems[0]
    assert not parse_lk_env(b"junk" * 10).valid


@given(st.binary(max_size=2048))
def test_fuzz_never_crashes(data: bytes) -> None:
    parse_uboot_env(data)
    parse_grubenv(data)
    parse_lk_env(data)
