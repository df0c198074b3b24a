"""grubenv and u-boot env encoding, checked against independent decoders."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.build_snaps import uboot_env
from ucimage.seed.bootenv import BootEnvError, GrubEnv, UbootEnv

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=20)
values = st.text(
    alphabet=st.characters(blacklist_characters="\n\0", blacklist_categories=["Cs"]), max_size=30
)


def test_grubenv_layout_matches_snapd() -> None:
    env = GrubEnv({"snap_menuentry": "Test UC18 (amd64)", "snap_core": "core18_x1.snap"})
    env["snap_mode"] = ""
    data = env.encode()
    assert len(data) == 1024
    assert data.startswith(
        b"# GRUB Environment Block\nsnap_menuentry=Test UC18 (amd64)\n"
        b"snap_core=core18_x1.snap\nsnap_mode=\n#"
    )
    assert data.rstrip(b"#").endswith(b"snap_mode=\n")
    assert GrubEnv.decode(data).values == {
        "snap_menuentry": "Test UC18 (amd64)",
        "snap_core": "core18_x1.snap",
        "snap_mode": "",
    }


def test_grubenv_overflow_and_garbage() -> None:
    with pytest.raises(BootEnvError, match="1024-byte block"):
        GrubEnv({"k": "x" * 1100}).encode()
    with pytest.raises(BootEnvError):
        GrubEnv.decode(b"nope" * 256)
    with pytest.raises(BootEnvError):
        GrubEnv({"k": "a\nb"})


@given(st.dictionaries(keys, values, max_size=8))
def test_grubenv_round_trip(d: dict[str, str]) -> None:
    assert GrubEnv.decode(GrubEnv(d).encode()).values == d


def test_uboot_env_matches_independent_encoder() -> None:
    vals = {"snap_core": "core_x1.snap", "snap_kernel": "pi2-kernel_x1.snap", "bootcmd": "run x"}
    ours = UbootEnv(vals).encode()
    assert ours == uboot_env(4096, vals)
    crc = struct.unpack("<I", ours[:4])[0]
    assert crc == zlib.crc32(ours[5:])
    assert ours[4] == 0


def test_uboot_env_empty_value_unsets_and_sizes_are_kept() -> None:
    env = UbootEnv.decode(uboot_env(8192, {"a": "1", "snap_mode": "try"}))
    assert env.size == 8192 and env.redundant
    env.update({"snap_mode": "", "b": "2"})
    again = UbootEnv.decode(env.encode())
    assert again.values == {"a": "1", "b": "2"}
    assert len(env.encode()) == 8192


def test_uboot_env_non_redundant_layout_detected() -> None:
    env = UbootEnv({"x": "y"}, size=1024, redundant=False)
    data = env.encode()
    assert zlib.crc32(data[4:]) == struct.unpack("<I", data[:4])[0]
    back = UbootEnv.decode(data)
    assert not back.redundant and back.values == {"x": "y"}


def test_uboot_env_bad_crc_and_overflow() -> None:
    data = bytearray(UbootEnv({"a": "b"}).encode())
    data[10] ^= 0xFF
    with pytest.raises(BootEnvError, match="CRC"):
        UbootEnv.decode(bytes(data))
    with pytest.raises(BootEnvError, match="more than"):
        UbootEnv({"a": "x" * 5000}).encode()


@given(st.dictionaries(keys, values.filter(bool), max_size=8))
def test_uboot_round_trip(d: dict[str, str]) -> None:
    assert UbootEnv.decode(UbootEnv(d).encode()).values == d
