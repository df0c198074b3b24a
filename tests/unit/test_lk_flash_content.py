"""UC20+ lk: which file each bare partition of the image gets (the disk spec, no disk written).

The seed writer prepares ``<seed>/boot/lk/snaprecoverysel.bin`` and the recovery
kernel's ``boot.img``; the build flashes them into the raw partitions: by name for
``image:`` content, and the boot image into the recovery boot image partition the
env's recovery matrix assigns to the seed's system when the gadget gives it none.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.build_snaps import LK_V2_RECOVERY_FIELDS, lk_env
from ucimage.build.volumes import disk_spec
from ucimage.gadget import lay_out_volume, load_gadget

from ..conftest import TESTDATA

LABEL = "20240101"
GADGET_YAML = (TESTDATA / "gadgets" / "snapd-lk-uc20-explicit-offsets.yaml").read_text()
BLOBS = ("sbc_1.0_8016.bin", "sbl1.mbn", "rpm.mbn", "tz.mbn", "hyp.mbn", "emmc_appsboot.mbn")


def recovery_env(system: str, assigned: dict[str, str]) -> bytes:
    """A v2 recovery env naming *system*, rows boot_ra/boot_rb holding *assigned* values."""
    values = {"snapd_recovery_mode": "install", "snapd_recovery_system": system}
    rows = ["boot_ra", "boot_rb"]
    data = bytearray(lk_env(LK_V2_RECOVERY_FIELDS, b"SRse", 0x00010010, values, rows))
    for row, label in enumerate(rows):
        value = assigned.get(label, "").encode()
        at = 8 + (3 + 2 * row) * 256  # after mode and system: (label, value) pairs
        data[at : at + len(value)] = value
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    return bytes(data)


def fake_build(
    tmp_path: Path,
    *,
    yaml: str = GADGET_YAML,
    env: bytes | None = None,
    uc20: bool = True,
    bootloader: str = "lk",
) -> Any:
    gadget = tmp_path / "gadget"
    (gadget / "meta").mkdir(parents=True)
    (gadget / "meta" / "gadget.yaml").write_text(yaml)
    (gadget / "blobs").mkdir()
    for name in BLOBS:
        (gadget / "blobs" / name).write_bytes(name.encode())
    (gadget / "blobs" / "snapbootsel.bin").write_bytes(b"gadget run env")
    (gadget / "snaprecoverysel.bin").write_bytes(b"gadget blank env")
    (gadget / "boot.img").write_bytes(b"gadget boot image")
    (gadget / "blobs" / "recovery.img").write_bytes(b"gadget recovery image")
    lk = tmp_path / "work" / "root" / "boot" / "lk"
    lk.mkdir(parents=True)
    (lk / "snaprecoverysel.bin").write_bytes(
        env if env is not None else recovery_env(LABEL, {"boot_ra": LABEL})
    )
    (lk / "boot.img").write_bytes(b"BOOTIMG" * 10)
    return SimpleNamespace(
        info=SimpleNamespace(uc20=uc20),
        opts=SimpleNamespace(image_seed="test"),
        state=SimpleNamespace(results={"write_seed": {"bootloader": bootloader, "label": LABEL}}),
        workdir=tmp_path / "work",
        root_dir=lambda: tmp_path / "work" / "root",
        boot_dir=lambda: tmp_path / "work" / "boot",
        gadget_dir=lambda: gadget,
    )


def sources(tmp_path: Path, build: Any) -> dict[str, tuple[str, int | None]]:
    """Each raw write's structure start → (file relative to tmp_path, limit)."""
    gadget = build.gadget_dir()
    layout = lay_out_volume(load_gadget(gadget).volumes["dragonboard"], gadget_dir=gadget)
    by_start = {s.start: s.name for s in layout.structures}
    spec = disk_spec(cast(Any, build), layout, tmp_path / "disk.img", None)
    got: dict[str, tuple[str, int | None]] = {}
    for w in spec.raw_writes:
        assert w.source is not None and w.offset in by_start
        name = by_start[w.offset]
        assert name not in got, f"two writes into {name}"
        got[name] = (str(w.source.relative_to(tmp_path)), w.limit)
    return got


SEED_ENV = "work/root/boot/lk/snaprecoverysel.bin"
SEED_BOOT_IMG = "work/root/boot/lk/boot.img"


def test_seed_files_go_to_the_raw_partitions(tmp_path: Path) -> None:
    got = sources(tmp_path, fake_build(tmp_path))
    assert {name: src for name, (src, _) in got.items()} == {
        "cdt": "gadget/blobs/sbc_1.0_8016.bin",
        "sbl1": "gadget/blobs/sbl1.mbn",
        "rpm": "gadget/blobs/rpm.mbn",
        "tz": "gadget/blobs/tz.mbn",
        "hyp": "gadget/blobs/hyp.mbn",
        "aboot": "gadget/blobs/emmc_appsboot.mbn",
        "snaprecoverysel": SEED_ENV,
        "snaprecoveryselbak": SEED_ENV,
        # a path with a directory is the gadget's own, as in ubuntu-image
        "snapbootsel": "gadget/blobs/snapbootsel.bin",
        "snapbootselbak": "gadget/blobs/snapbootsel.bin",
        # assigned to the seed's system by the env; boot_rb, boot_a, boot_b stay empty
        "boot_ra": SEED_BOOT_IMG,
    }
    assert got["boot_ra"][1] == 31457280  # the partition is the room the image may take


def test_the_partition_the_env_assigns_gets_the_boot_image(tmp_path: Path) -> None:
    env = recovery_env(LABEL, {"boot_ra": "20230101", "boot_rb": LABEL})
    got = sources(tmp_path, fake_build(tmp_path, env=env))
    assert got["boot_rb"][0] == SEED_BOOT_IMG
    assert "boot_ra" not in got


@pytest.mark.parametrize(
    "env",
    [
        recovery_env(LABEL, {}),  # no partition assigned to the system
        recovery_env("", {"boot_ra": ""}),  # no system named
    ],
)
def test_nothing_is_invented_without_an_assignment(tmp_path: Path, env: bytes) -> None:
    got = sources(tmp_path, fake_build(tmp_path, env=env))
    assert not {"boot_ra", "boot_rb", "boot_a", "boot_b"} & set(got)
    assert got["snaprecoverysel"][0] == SEED_ENV


def with_boot_ra_content(image: str) -> str:
    role = "        role: system-seed-image\n"
    yaml = GADGET_YAML.replace(role, f"{role}        content:\n            - image: {image}\n", 1)
    assert yaml != GADGET_YAML
    return yaml


def test_gadget_content_for_the_recovery_boot_partition_is_kept(tmp_path: Path) -> None:
    own = with_boot_ra_content("blobs/recovery.img")
    got = sources(tmp_path, fake_build(tmp_path, yaml=own))
    assert got["boot_ra"][0] == "gadget/blobs/recovery.img"
    # named like the prepared file: the prepared one, once
    named = with_boot_ra_content("boot.img")
    (tmp_path / "b").mkdir()
    got = sources(tmp_path / "b", fake_build(tmp_path / "b", yaml=named))
    assert got["boot_ra"][0] == SEED_BOOT_IMG


def test_only_an_lk_seed_is_flashed(tmp_path: Path) -> None:
    got = sources(tmp_path, fake_build(tmp_path, bootloader="grub"))
    assert got["snaprecoverysel"][0] == "gadget/snaprecoverysel.bin"
    assert "boot_ra" not in got
