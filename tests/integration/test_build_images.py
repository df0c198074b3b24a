"""`ucimage snap MODEL` builds real images; each is checked with independent tools."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.build_snaps import (
    MODEL_UC16_PC,
    MODEL_UC16_PI3,
    MODEL_UC18,
    TRUSTED_FILES,
    model_uc20,
    model_uc20_pi,
    sign_model,
    snaps_uc16,
    snaps_uc16_pi3,
    snaps_uc18,
    snaps_uc20,
    snaps_uc20_pi,
)
from ucimage.cli.main import main

pytestmark = pytest.mark.integration

EPOCH = "1700000000"  # 2023-11-14
TRUST = [a for f in TRUSTED_FILES for a in ("--trusted", str(f))]


@dataclass(frozen=True)
class Fixtures:
    """Signed models and the snaps they name, built once per module."""

    uc18: list[Path]
    pi3: list[Path]
    uc20: list[Path]
    m18: Path
    mpi3: Path
    m20: Path
    m20signed: Path
    uc16: list[Path]
    m16: Path
    uc20pi: list[Path]
    m20pi: Path


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    base = tmp_path_factory.mktemp("build-fixtures")
    return Fixtures(
        uc18=snaps_uc18(base / "uc18"),
        pi3=snaps_uc16_pi3(base / "pi3"),
        uc20=snaps_uc20(base / "uc20"),
        m18=sign_model(MODEL_UC18, base / "uc18.model"),
        mpi3=sign_model(MODEL_UC16_PI3, base / "pi3.model"),
        m20=sign_model(model_uc20("dangerous"), base / "uc20.model"),
        m20signed=sign_model(model_uc20("signed"), base / "uc20s.model"),
        uc16=snaps_uc16(base / "uc16"),
        m16=sign_model(MODEL_UC16_PC, base / "uc16.model"),
        uc20pi=snaps_uc20_pi(base / "uc20pi", "u-boot"),
        m20pi=sign_model(model_uc20_pi("dangerous"), base / "uc20pi.model"),
    )


def build(model: Path, snaps: list[Path], out: Path, *extra: str) -> int:
    args = ["snap", str(model), *TRUST, "-O", str(out), "-q", *extra]
    for snap in snaps:
        args += ["--snap", str(snap)]
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        return main(args)
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]


def sfdisk(image: Path) -> dict[str, Any]:
    out = subprocess.run(["sfdisk", "--json", str(image)], check=True, capture_output=True)
    table: dict[str, Any] = json.loads(out.stdout)["partitiontable"]
    return table


def extract(image: Path, start: int, size: int, out: Path) -> Path:
    with open(image, "rb") as src, open(out, "wb") as dst:
        src.seek(start * 512)
        dst.write(src.read(size * 512))
    return out


def debugfs_ls(fs: Path, path: str) -> list[str]:
    out = subprocess.run(
        ["debugfs", "-R", f"ls -l {path}", str(fs)], check=True, capture_output=True, text=True
    ).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def debugfs_cat(fs: Path, path: str) -> bytes:
    return subprocess.run(
        ["debugfs", "-R", f"cat {path}", str(fs)], check=True, capture_output=True
    ).stdout


def mtools(cmd: str, fs: Path, *args: str) -> bytes:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    return subprocess.run(
        [cmd, "-i", str(fs), *args], check=True, capture_output=True, env=env
    ).stdout


def fsck_ok(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def parse_grubenv(data: bytes) -> dict[str, str]:
    """Independent reader: header, k=v lines, '#' padding, exactly 1024 bytes."""
    assert len(data) == 1024 and data.startswith(b"# GRUB Environment Block\n")
    lines = data.decode().split("\n")[1:]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def parse_ubootenv(data: bytes) -> dict[str, str]:
    """Independent reader: CRC32 LE + flag byte + NUL-separated pairs."""
    (crc,) = struct.unpack("<I", data[:4])
    assert zlib.crc32(data[5:]) == crc
    pairs = data[5:].split(b"\0\0", 1)[0].split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if p)


def test_uc18_pc_gpt_grub(fixtures: Fixtures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(fixtures.m18, fixtures.uc18, out) == 0
    image = out / "pc.img"
    table = sfdisk(image)
    parts = table["partitions"]
    assert table["label"] == "gpt"
    assert [p["name"] for p in parts] == ["BIOS Boot", "EFI System", "writable"]
    assert [p["start"] for p in parts[:3]] == [2048, 4096, 106496]
    # offset-write mbr+92 = BIOS Boot start sector
    assert struct.unpack("<I", image.read_bytes()[92:96])[0] == 2048
    esp = extract(image, parts[1]["start"], parts[1]["size"], tmp_path / "esp")
    fsck_ok(["fsck.vfat", "-n", str(esp)])
    assert b"grubenv" in mtools("mdir", esp, "-b", "::EFI/ubuntu")
    env = parse_grubenv(mtools("mtype", esp, "::EFI/ubuntu/grubenv"))
    assert env == {
        "snap_menuentry": "Test UC18 (amd64)",
        "snap_core": "core18_x1.snap",
        "snap_kernel": "pc-kernel_x1.snap",
        "snap_mode": "",
        "snap_try_core": "",
        "snap_try_kernel": "",
    }
    # gadget content wins over snapd's copy of grub.conf (ubuntu-image order)
    assert mtools("mtype", esp, "::EFI/ubuntu/grub.cfg") == b"# gadget grub.cfg\n"
    writable = extract(image, parts[2]["start"], parts[2]["size"], tmp_path / "w")
    fsck_ok(["e2fsck", "-fn", str(writable)])
    seed = "/system-data/var/lib/snapd/seed"
    assert set(debugfs_ls(writable, f"{seed}/snaps")) >= {
        "snapd_x1.snap",
        "core18_x1.snap",
        "pc-kernel_x1.snap",
        "pc_x1.snap",
        "hello-world_x1.snap",
    }
    assert "model" in debugfs_ls(writable, f"{seed}/assertions")
    seed_yaml = debugfs_cat(writable, f"{seed}/seed.yaml").decode()
    assert "- name: snapd\n  unasserted: true\n  file: snapd_x1.snap\n" in seed_yaml
    links = debugfs_ls(writable, "/system-data/var/lib/snapd/snaps")
    assert "core18_x1.snap" in links and "pc-kernel_x1.snap" in links
    assert (out / "snaps.manifest").read_text() == "core18 x1\npc-kernel x1\n"
    assert (out / "seed.manifest").read_text().splitlines() == sorted(
        ["core18 x1", "hello-world x1", "pc x1", "pc-kernel x1", "snapd x1"]
    )
    assert not list(out.glob(".*"))


def test_uc16_pi3_mbr_uboot(fixtures: Fixtures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(fixtures.mpi3, fixtures.pi3, out) == 0
    image = out / "pi3.img"
    table = sfdisk(image)
    assert table["label"] == "dos"
    parts = table["partitions"]
    assert parts[0]["start"] == 2048 and parts[0]["type"] == "c" and parts[0].get("bootable")
    assert parts[1]["type"] == "83"
    boot = extract(image, parts[0]["start"], parts[0]["size"], tmp_path / "boot")
    fsck_ok(["fsck.vfat", "-n", str(boot)])
    env = parse_ubootenv(mtools("mtype", boot, "::uboot.env"))
    assert env == {
        "bootcmd": "run snappy_boot",
        "snap_core": "core_x1.snap",
        "snap_kernel": "pi2-kernel_x1.snap",
        "snap_menuentry": "Pi3 test",
    }
    listing = mtools("mdir", boot, "-b", "-/", "::pi2-kernel_x1.snap").decode()
    assert "kernel.img" in listing and "initrd.img" in listing and "board.dtb" in listing
    assert mtools("mtype", boot, "::config.txt") == b"# config\n"  # gadget boot-assets/
    writable = extract(image, parts[1]["start"], parts[1]["size"], tmp_path / "w")
    fsck_ok(["e2fsck", "-fn", str(writable)])
    assert (out / "snaps.manifest").read_text() == "core x1\npi2-kernel x1\n"


def test_uc20_dangerous_seed_partition_only(fixtures: Fixtures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(fixtures.m20, fixtures.uc20, out) == 0
    image = out / "pc.img"
    table = sfdisk(image)
    parts = table["partitions"]
    assert [p["name"] for p in parts] == ["BIOS Boot", "ubuntu-seed"]
    # sized for the whole layout (volume end 2992 MiB + GPT), but sparse
    assert image.stat().st_size == 2992 * 2**20 + 67 * 512
    assert image.stat().st_blocks * 512 < 64 * 2**20
    seed = extract(image, parts[1]["start"], parts[1]["size"], tmp_path / "seed")
    fsck_ok(["fsck.vfat", "-n", str(seed)])
    label = "20231114"  # from SOURCE_DATE_EPOCH
    listing = mtools("mdir", seed, "-b", "-/", "::").decode()
    for name in ("model", "options.yaml", "grubenv", "snapd_1.0.snap", "pc-kernel_1.0.snap"):
        assert f"/systems/{label}/" in listing and name in listing
    assert "::/EFI/boot/grubx64.efi" in listing  # gadget's system-seed content
    env = parse_grubenv(mtools("mtype", seed, "::EFI/ubuntu/grubenv"))
    assert env == {"snapd_recovery_system": label, "snapd_recovery_mode": "install"}
    sysenv = parse_grubenv(mtools("mtype", seed, f"::systems/{label}/grubenv"))
    assert sysenv["snapd_recovery_kernel"] == f"/systems/{label}/snaps/pc-kernel_1.0.snap"
    options = mtools("mtype", seed, f"::systems/{label}/options.yaml").decode()
    assert "unasserted: hello-world_1.0.snap" in options
    assert not (out / "snaps.manifest").exists()
    assert not (out / "seed.manifest").exists()  # only unasserted snaps: nothing to pin


def test_uc20_factory_image_flag(fixtures: Fixtures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(fixtures.m20, fixtures.uc20, out, "--factory-image", "--seed-only") == 0
    env = parse_grubenv((out / "system-seed/EFI/ubuntu/grubenv").read_bytes())
    assert env["snapd_boot_flags"] == "factory"


def test_uc20_signed_refuses_local_snaps_before_any_work(
    fixtures: Fixtures, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    rc = build(fixtures.m20signed, fixtures.uc20, out)
    assert rc == 2
    err = capsys.readouterr().err
    assert "grade signed" in err
    assert not list(out.glob("*.img"))


def test_uc20_signed_refuses_a_default_channel_before_any_work(
    fixtures: Fixtures, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # snapd's seedwriter refuses -c for grades above dangerous, as it does --snap
    out = tmp_path / "out"
    args = ["snap", str(fixtures.m20signed), *TRUST, "-O", str(out), "-c", "edge"]
    assert main([*args, "--store", "http://127.0.0.1:9/"]) == 2
    err = capsys.readouterr().err
    assert (
        "cannot override channels, add devmode snaps, local snaps, or extra snaps with a "
        "model of grade higher than dangerous" in err
    )
    assert "grade signed" in err
    assert not out.exists() or not any(out.iterdir())


def test_unverified_model_refused_unless_allowed(
    fixtures: Fixtures, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["snap", str(fixtures.m18), "-O", str(tmp_path), "--seed-only"]
    for snap in fixtures.uc18:
        args += ["--snap", str(snap)]
    assert main(args) == 1
    assert "cannot verify the model assertion" in capsys.readouterr().err
    assert main([*args, "--allow-unverified", "-q"]) == 0


def test_reproducible_images_and_manifests(fixtures: Fixtures, tmp_path: Path) -> None:
    for name, model, snaps in (
        ("uc18", fixtures.m18, fixtures.uc18),
        ("uc20", fixtures.m20, fixtures.uc20),
    ):
        digests = []
        for run in ("a", "b"):
            out = tmp_path / name / run
            assert build(model, snaps, out) == 0
            digests.append(
                {
                    p.name: __import__("hashlib").sha256(p.read_bytes()).hexdigest()
                    for p in sorted(out.iterdir())
                }
            )
        assert digests[0] == digests[1], name


def test_explicit_seed_sets_every_id(fixtures: Fixtures, tmp_path: Path) -> None:
    """``--seed VALUE``: same value, same bytes; another value, other disk and fs ids."""
    images: dict[str, bytes] = {}
    for run, value in (("a", "alpha"), ("b", "alpha"), ("c", "beta")):
        out = tmp_path / run
        assert build(fixtures.m18, fixtures.uc18, out, "--seed", value) == 0
        images[run] = (out / "pc.img").read_bytes()
    assert images["a"] == images["b"]
    assert images["a"] != images["c"]
    ids = {run: sfdisk(tmp_path / run / "pc.img") for run in ("a", "c")}
    assert ids["a"]["id"] != ids["c"]["id"]
    uuids = {run: [p["uuid"] for p in ids[run]["partitions"]] for run in ids}
    assert not set(uuids["a"]) & set(uuids["c"])
    default = tmp_path / "default"
    assert build(fixtures.m18, fixtures.uc18, default) == 0
    assert sfdisk(default / "pc.img")["id"] not in (ids["a"]["id"], ids["c"]["id"])


def test_uc16_pc_gpt_grub_with_customizations(fixtures: Fixtures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\n")
    disk_info = tmp_path / "info"
    disk_info.write_text("Ubuntu Core 16 test\n")
    extra = (
        "--cloud-init",
        str(user_data),
        "--disable-console-conf",
        "--disk-info",
        str(disk_info),
    )
    assert build(fixtures.m16, fixtures.uc16, out, *extra, "--bmap", "--compress", "zstd") == 0
    image = out / "pc.img"
    parts = sfdisk(image)["partitions"]
    assert [p["name"] for p in parts] == ["BIOS Boot", "EFI System", "writable"]
    writable = extract(image, parts[2]["start"], parts[2]["size"], tmp_path / "w")
    fsck_ok(["e2fsck", "-fn", str(writable)])
    cloud = "/system-data/var/lib/cloud/seed/nocloud-net"
    assert debugfs_cat(writable, f"{cloud}/user-data") == b"#cloud-config\n"
    assert debugfs_cat(writable, f"{cloud}/meta-data") == b"instance-id: nocloud-static\n"
    assert "complete" in debugfs_ls(
        writable, "/system-data/_writable_defaults/var/lib/console-conf"
    )
    assert debugfs_cat(writable, "/.disk/info") == b"Ubuntu Core 16 test\n"
    esp = extract(image, parts[1]["start"], parts[1]["size"], tmp_path / "esp")
    env = parse_grubenv(mtools("mtype", esp, "::EFI/ubuntu/grubenv"))
    assert env["snap_core"] == "core_x1.snap" and "snap_menuentry" not in env
    assert (out / "snaps.manifest").read_text() == "core x1\npc-kernel x1\n"
    # bmap and zstd outputs, checked with their own tools
    subprocess.run(["zstd", "-t", "-q", str(out / "pc.img.zst")], check=True)
    unpacked = tmp_path / "unzstd.img"
    subprocess.run(["zstd", "-d", "-q", str(out / "pc.img.zst"), "-o", str(unpacked)], check=True)
    assert unpacked.read_bytes() == image.read_bytes()
    assert b"<bmap" in (out / "pc.img.bmap").read_bytes()


def test_uc20_pi_mbr_uboot(fixtures: Fixtures, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(fixtures.m20pi, fixtures.uc20pi, out) == 0
    image = out / "pi.img"
    table = sfdisk(image)
    assert table["label"] == "dos"
    parts = table["partitions"]
    assert len(parts) == 1 and parts[0]["type"] == "c"
    seed = extract(image, parts[0]["start"], parts[0]["size"], tmp_path / "seed")
    fsck_ok(["fsck.vfat", "-n", str(seed)])
    env = parse_ubootenv(mtools("mtype", seed, "::uboot/ubuntu/boot.sel"))
    assert env == {"snapd_recovery_mode": "install", "snapd_recovery_system": "20231114"}
    listing = mtools("mdir", seed, "-b", "-/", "::").decode()
    assert "::/systems/20231114/kernel/kernel.img" in listing
    assert "::/bcm2711-rpi-4-b.dtb" in listing  # $kernel:dtbs/dtbs/broadcom/ content
    assert "::/overlays/uart.dtbo" in listing


def test_uc18_gpt_4k_sectors(fixtures: Fixtures, tmp_path: Path) -> None:
    from tests.build_snaps import make_snap
    from tests.integration import test_image_writer as writer

    gadget = make_snap(
        tmp_path, "pc", "gadget", base="core18", gadget_yaml="ui-gpt-4k-sector.yaml",
        extra={"grub-cpc.cfg": b"# cpc\n"},
    )  # fmt: skip
    snaps = [s for s in fixtures.uc18 if s.stem != "pc"] + [gadget]
    out = tmp_path / "out"
    assert build(fixtures.m18, snaps, out, "--sector-size", "4096") == 0
    image = out / "pc.img"
    # fdisk reads the table with 4 KiB logical sectors (sfdisk here cannot)
    rows = writer.fdisk_rows(image, 4096)
    assert [(r[2], r[3]) for r in rows] == [
        (writer.BIOS_TYPE, "BIOS Boot"),
        (writer.ESP_TYPE, "EFI System"),
        (writer.LINUX_TYPE, "writable"),
    ]  # fmt: skip
    parts = {name: (int(start), int(size)) for start, size, _, name in rows}
    assert parts["BIOS Boot"][0] == 256  # 1 MiB in 4 KiB sectors
    assert struct.unpack("<I", image.read_bytes()[92:96])[0] == 256
    # read as 512-byte sectors fdisk finds no such GPT: the table really is 4 KiB-based
    as_512 = writer.sh("fdisk", "-b", "512", "-l", "-o", "Start,Sectors,Name", image, check=False)
    assert "writable" not in as_512.stdout
    start, size = parts["writable"]
    writable = tmp_path / "w"
    with open(image, "rb") as src:
        src.seek(start * 4096)
        writable.write_bytes(src.read(size * 4096))
    fsck_ok(["e2fsck", "-fn", str(writable)])
    start, size = parts["EFI System"]
    esp = tmp_path / "esp"
    with open(image, "rb") as src:
        src.seek(start * 4096)
        esp.write_bytes(src.read(size * 4096))
    fsck_ok(["fsck.vfat", "-n", str(esp)])
    assert mtools("mtype", esp, "::EFI/ubuntu/grub.cfg") == b"# cpc\n"


def test_image_size_option(
    fixtures: Fixtures, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "big"
    assert build(fixtures.m18, fixtures.uc18, out, "-i", "128M") == 0
    image = out / "pc.img"
    assert image.stat().st_size == 128 << 20
    parts = sfdisk(image)["partitions"]
    writable = parts[2]
    end = (writable["start"] + writable["size"]) * 512
    assert end > (128 << 20) - (1 << 20)  # writable grew to fill the image
    fsck_ok(
        ["e2fsck", "-fn", str(extract(image, writable["start"], writable["size"], tmp_path / "w"))]
    )
    small = tmp_path / "small"
    args = ["snap", str(fixtures.m18), *TRUST, "-O", str(small), "-i", "10M"]
    for snap in fixtures.uc18:
        args += ["--snap", str(snap)]
    assert main(args) == 0
    # said once, though the volumes are laid out in two steps
    assert (
        capsys.readouterr().out.count(
            "WARNING: ignoring image size smaller than minimum required size"
        )
        == 1
    )
    assert (small / "pc.img").stat().st_size > 10 << 20


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("nosuch:1G", "volume 'nosuch' does not exist in gadget.yaml"),
        ("9:1G", "volume index 9 is out of range"),
    ],
)
def test_image_size_for_no_volume_of_the_gadget_fails(
    fixtures: Fixtures, tmp_path: Path, capsys: pytest.CaptureFixture[str], size: str, message: str
) -> None:
    out = tmp_path / "out"
    assert build(fixtures.m18, fixtures.uc18, out, "-i", size) == 2
    assert message in capsys.readouterr().err
    assert not list(out.glob("*.img"))
    # --dry-run checks it too
    assert build(fixtures.m18, fixtures.uc18, out, "-i", size, "--dry-run") == 2
    assert message in capsys.readouterr().err


def test_uc20_multi_volume_one_image_per_volume(fixtures: Fixtures, tmp_path: Path) -> None:
    from tests.build_snaps import make_snap

    gadget = make_snap(
        tmp_path, "pi", "gadget", base="core20",
        gadget_yaml="snapd-multivolume-uc20-bare-volume.yaml", bootloader="none",
        extra={"uboot.conf": b"", "u-boot.imz": b"UBOOT" * 1000},
    )  # fmt: skip
    snaps = [s for s in fixtures.uc20pi if s.stem != "pi"] + [gadget]
    out = tmp_path / "out"
    assert build(fixtures.m20pi, snaps, out) == 0
    assert sorted(p.name for p in out.glob("*.img")) == [
        "frobinator-image.img",
        "u-boot-frobinator.img",
    ]
    main_image = out / "frobinator-image.img"
    parts = sfdisk(main_image)["partitions"]
    assert [p["name"] for p in parts] == ["ubuntu-seed"]  # boot/save/data made at install
    seed = extract(main_image, parts[0]["start"], parts[0]["size"], tmp_path / "seed")
    fsck_ok(["e2fsck", "-fn", str(seed)])
    assert "boot.sel" in debugfs_ls(seed, "/uboot/ubuntu")
    assert "20231114" in debugfs_ls(seed, "/systems")
    bare = (out / "u-boot-frobinator.img").read_bytes()
    assert bare[24576 : 24576 + 5000] == b"UBOOT" * 1000
