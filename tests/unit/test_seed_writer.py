"""Seed writers on plain files (no squashfs needed): layout, names, YAML, boot files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from tests.build_snaps import uboot_env
from ucimage.seed.bootenv import GrubEnv, UbootEnv
from ucimage.seed.bootloader import BootAssets, BootloaderError, KernelExtractor
from ucimage.seed.model import ModelInfo
from ucimage.seed.writer import (
    Customizations,
    SeedAssertion,
    SeedError,
    SeedSnap,
    system_label,
    write_seed16,
    write_seed20,
)

UC18 = ModelInfo.from_headers(
    {"brand-id": "b", "model": "m", "display-name": "My Device", "base": "core18",
     "gadget": "pc=18", "kernel": "pc-kernel=18"}
)  # fmt: skip
UC20 = ModelInfo.from_headers(
    {"brand-id": "b", "model": "m", "base": "core20", "grade": "dangerous",
     "snaps": [{"name": "pc", "type": "gadget", "default-channel": "20/stable", "id": "G" * 32},
               {"name": "pc-kernel", "type": "kernel", "default-channel": "20/stable",
                "id": "K" * 32},
               {"name": "core20", "type": "base", "id": "B" * 32},
               {"name": "snapd", "type": "snapd", "id": "S" * 32}]}
)  # fmt: skip


def gadget(tmp_path: Path, marker: str, content: bytes = b"") -> Path:
    g = tmp_path / "gadget"
    g.mkdir(exist_ok=True)
    (g / marker).write_bytes(content)
    return g


def extractor(calls: list[tuple[tuple[str, ...], Path]]) -> KernelExtractor:
    def extract(members: Sequence[str], dest: Path) -> None:
        calls.append((tuple(members), dest))
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "kernel.img").write_text("k")

    return extract


def snap_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "src" / f"{name}.snap"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(name.encode() * 10)
    return path


def uc18_snaps(tmp_path: Path) -> list[SeedSnap]:
    rev = SeedAssertion("snap-revision", ("abc",), b"type: snap-revision\n")
    return [
        SeedSnap("snapd", "snapd", snap_file(tmp_path, "snapd"), "1", revision=5,
                 snap_id="S" * 32, channel="stable", assertions=(rev,)),
        SeedSnap("pc-kernel", "kernel", snap_file(tmp_path, "pc-kernel"), "1"),
        SeedSnap("core18", "base", snap_file(tmp_path, "core18"), "1", revision=7,
                 snap_id="B" * 32, channel="stable"),
        SeedSnap("pc", "gadget", snap_file(tmp_path, "pc"), "1"),
    ]  # fmt: skip


def test_seed16_grub(tmp_path: Path) -> None:
    root, boot = tmp_path / "root", tmp_path / "boot"
    g = gadget(tmp_path, "grub.conf", b"menu\n")
    assets = BootAssets(g, extractor([]))
    result = write_seed16(root, boot, UC18, b"MODEL", [], uc18_snaps(tmp_path), assets)
    seed = root / "var/lib/snapd/seed"
    assert (seed / "seed.yaml").read_text() == (
        "snaps:\n"
        f"- name: snapd\n  snap-id: {'S' * 32}\n  channel: stable\n  file: snapd_5.snap\n"
        "- name: pc-kernel\n  unasserted: true\n  file: pc-kernel_x1.snap\n"
        f"- name: core18\n  snap-id: {'B' * 32}\n  channel: stable\n  file: core18_7.snap\n"
        "- name: pc\n  unasserted: true\n  file: pc_x1.snap\n"
    )
    assert (seed / "assertions/model").read_bytes() == b"MODEL"
    assert (seed / "assertions/abc.snap-revision").exists()
    assert os.readlink(root / "var/lib/snapd/snaps/core18_7.snap") == "../seed/snaps/core18_7.snap"
    # hard links: the bytes are not copied
    assert (
        os.stat(seed / "snaps/snapd_5.snap").st_ino == os.stat(tmp_path / "src/snapd.snap").st_ino
    )
    assert (boot / "grub/grub.cfg").read_bytes() == b"menu\n"
    env = GrubEnv.read(boot / "grub/grubenv").values
    assert list(env) == ["snap_menuentry", "snap_core", "snap_kernel", "snap_mode",
                         "snap_try_core", "snap_try_kernel"]  # fmt: skip
    assert env["snap_core"] == "core18_7.snap" and env["snap_kernel"] == "pc-kernel_x1.snap"
    assert result.boot_snaps == {"core18": "7", "pc-kernel": "x1"}


def test_seed16_uboot_and_customizations(tmp_path: Path) -> None:
    calls: list[tuple[tuple[str, ...], Path]] = []
    g = gadget(tmp_path, "uboot.conf", uboot_env(8192, {"bootcmd": "x"}))
    (g / "cloud.conf").write_text("datasource: x\n")
    user_data = tmp_path / "ud"
    user_data.write_text("#cloud-config\n")
    custom = Customizations(cloud_init_user_data=user_data, disable_console_conf=True)
    root, boot = tmp_path / "root", tmp_path / "boot"
    write_seed16(root, boot, UC18, b"M", [], uc18_snaps(tmp_path),
                 BootAssets(g, extractor(calls)), custom)  # fmt: skip
    env = UbootEnv.read(boot / "uboot/uboot.env")
    assert env.size == 8192
    assert env.values == {
        "bootcmd": "x",
        "snap_core": "core18_7.snap",
        "snap_kernel": "pc-kernel_x1.snap",
        "snap_menuentry": "My Device",
    }
    assert calls == [(("kernel.img", "initrd.img", "dtbs"), boot / "uboot/pc-kernel_x1.snap")]
    nocloud = root / "var/lib/cloud/seed/nocloud-net"
    assert (nocloud / "meta-data").read_text() == "instance-id: nocloud-static\n"
    assert (nocloud / "user-data").read_text() == "#cloud-config\n"
    assert (root / "_writable_defaults/var/lib/console-conf/complete").exists()
    assert (root / "etc/cloud/cloud.cfg").read_text() == "datasource: x\n"


def test_seed16_rejects_boot_flags_and_missing_marker(tmp_path: Path) -> None:
    g = tmp_path / "empty"
    g.mkdir()
    with pytest.raises(BootloaderError, match="marker"):
        write_seed16(tmp_path / "r", tmp_path / "b", UC18, b"M", [], uc18_snaps(tmp_path),
                     BootAssets(g, extractor([])))  # fmt: skip
    with pytest.raises(SeedError, match="boot flags"):
        write_seed16(tmp_path / "r2", tmp_path / "b2", UC18, b"M", [], uc18_snaps(tmp_path),
                     BootAssets(g, extractor([])),
                     Customizations(boot_flags=("factory",)))  # fmt: skip


def test_seed20_grub(tmp_path: Path) -> None:
    g = gadget(tmp_path, "grub.conf")
    (g / "cmdline.extra").write_text("# comment\nquiet\nsplash\n")
    snaps = [
        SeedSnap("snapd", "snapd", snap_file(tmp_path, "snapd"), "2.6", revision=10,
                 snap_id="S" * 32, channel="latest/stable"),
        SeedSnap("pc-kernel", "kernel", snap_file(tmp_path, "pc-kernel"), "5.4"),
        SeedSnap("core20", "base", snap_file(tmp_path, "core20"), "20", revision=3,
                 snap_id="B" * 32, channel="latest/edge"),
        SeedSnap("pc", "gadget", snap_file(tmp_path, "pc"), "20-1", revision=4,
                 snap_id="G" * 32, channel="20/stable"),
        SeedSnap("extra", "app", snap_file(tmp_path, "extra"), "1", revision=1,
                 snap_id="E" * 32, channel="beta"),
    ]  # fmt: skip
    seed = tmp_path / "seed"
    label = system_label(1700000000)
    assert label == "20231114"
    assets = BootAssets(g, extractor([]))
    result = write_seed20(seed, UC20, b"MODEL", [], snaps, assets, label)
    system = seed / "systems" / label
    assert (system / "model").read_bytes() == b"MODEL"
    assert sorted(p.name for p in (seed / "snaps").iterdir()) == [
        "core20_3.snap", "extra_1.snap", "pc_4.snap", "snapd_10.snap"]  # fmt: skip
    assert (system / "snaps/pc-kernel_5.4.snap").exists()
    options = yaml.safe_load((system / "options.yaml").read_text())
    assert options == {"snaps": [
        {"name": "pc-kernel", "id": "K" * 32, "unasserted": "pc-kernel_5.4.snap"},
        {"name": "core20", "id": "B" * 32, "channel": "latest/edge"},
        {"name": "extra", "id": "E" * 32, "channel": "beta"},
    ]}  # fmt: skip
    assert GrubEnv.read(seed / "EFI/ubuntu/grubenv").values == {
        "snapd_recovery_system": label, "snapd_recovery_mode": "install"}  # fmt: skip
    sysenv = GrubEnv.read(system / "grubenv").values
    assert sysenv["snapd_recovery_kernel"] == f"/systems/{label}/snaps/pc-kernel_5.4.snap"
    assert sysenv["snapd_extra_cmdline_args"] == "quiet splash"
    assert (seed / "EFI/ubuntu/grub.cfg").read_text().startswith("# Snapd-Boot-Config-Edition: 1")
    assert result.revisions == {"snapd": "10", "core20": "3", "pc": "4", "extra": "1"}
    with pytest.raises(SeedError, match="already exists"):
        write_seed20(seed, UC20, b"M", [], snaps, BootAssets(g, extractor([])), label)


def test_seed20_uboot_boot_sel_and_refusals(tmp_path: Path) -> None:
    calls: list[tuple[tuple[str, ...], Path]] = []
    g = gadget(tmp_path, "uboot.conf")
    kinds = (("snapd", "snapd"), ("pc-kernel", "kernel"), ("core20", "base"), ("pc", "gadget"))
    snaps = [SeedSnap(n, t, snap_file(tmp_path, n), "1") for n, t in kinds]
    seed = tmp_path / "seed"
    write_seed20(seed, UC20, b"M", [], snaps, BootAssets(g, extractor(calls)), "x1",
                 Customizations(boot_flags=("factory",)))  # fmt: skip
    env = UbootEnv.read(seed / "uboot/ubuntu/boot.sel")
    assert env.values == {"snapd_boot_flags": "factory", "snapd_recovery_mode": "install",
                          "snapd_recovery_system": "x1"}  # fmt: skip
    assert calls[0][1] == seed / "systems/x1/kernel"
    with pytest.raises(SeedError, match="cloud-init"):
        write_seed20(tmp_path / "s2", UC20, b"M", [], snaps, BootAssets(g, extractor([])), "x",
                     Customizations(cloud_init_user_data=tmp_path))  # fmt: skip
    (g / "uboot.conf").write_bytes(b"x")
    with pytest.raises(BootloaderError, match="non-empty"):
        write_seed20(tmp_path / "s3", UC20, b"M", [], snaps, BootAssets(g, extractor([])), "x")
