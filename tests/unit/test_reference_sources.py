"""The reference platform: sources in reference/, cpio writer, apt helpers, console parser."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import lzma
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from ucimage.reference.build import (
    SNAP_NAMES,
    ReferenceBuildError,
    find_modules,
    module_bytes,
    read_module_list,
    repo_reference_dir,
)
from ucimage.reference.chain import model_json_text, read_seed_manifest
from ucimage.reference.console import ConsoleParseError, parse_device_report
from ucimage.reference.cpio import CpioEntry, gzip_initramfs, write_newc
from ucimage.reference.debian import DebianPackage, _first_stanza
from ucimage.reference.demo import Demo
from ucimage.run import which
from ucimage.snaps import parse_snap_yaml

REFERENCE = REPO / "reference"


def test_repo_reference_dir_is_found() -> None:
    assert repo_reference_dir() == REFERENCE


@pytest.mark.parametrize("name", SNAP_NAMES)
def test_snap_yaml_is_valid_with_a_version(name: str) -> None:
    text = (REFERENCE / name / "meta" / "snap.yaml").read_text().replace("@VERSION@", "1.0")
    info = parse_snap_yaml(text.encode())
    assert info.name == name
    expected = {"pc": "gadget", "pc-kernel": "kernel", "core18": "base", "snapd": "snapd"}
    assert info.type == expected[name]


def test_gadget_yaml_is_the_uc18_pc_layout(testdata: Path) -> None:
    ours = yaml.safe_load((REFERENCE / "pc" / "meta" / "gadget.yaml").read_text())
    upstream = yaml.safe_load((testdata / "gadgets" / "pc-amd64-uc18.yaml").read_text())
    ours_s = ours["volumes"]["pc"]["structure"]
    up_s = upstream["volumes"]["pc"]["structure"]
    keys = ("name", "type", "size", "offset", "offset-write", "filesystem", "filesystem-label")
    assert [{k: s.get(k) for k in keys} for s in ours_s] == [
        {k: s.get(k) for k in keys} for s in up_s
    ]
    # no shim: GRUB itself is the removable-media loader
    targets = {c["target"]: c["source"] for c in ours_s[2]["content"]}
    assert targets == {
        "EFI/boot/grubx64.efi": "grubx64.efi",
        "EFI/boot/bootx64.efi": "grubx64.efi",
        "EFI/ubuntu/grub.cfg": "grub.cfg",
    }
    assert (REFERENCE / "pc" / "grub.conf").is_file(), "snapd's grub bootloader marker"


def test_grub_cfg_boots_the_kernel_snap_through_loopback() -> None:
    cfg = (REFERENCE / "pc" / "grub.cfg").read_text()
    assert "loopback loop ($writable)/system-data/var/lib/snapd/snaps/$snap_kernel" in cfg
    assert "linux (loop)/kernel.img" in cfg and "initrd (loop)/initrd.img" in cfg
    assert "load_env" in cfg and "snap_core=$snap_core" in cfg


def test_module_list_loads_crc32c_before_ext4() -> None:
    modules = read_module_list(REFERENCE / "pc-kernel" / "modules.list")
    assert modules.index("crypto/crc32c_generic.ko") < modules.index("fs/ext4/ext4.ko")
    assert modules.index("drivers/virtio/virtio_ring.ko") < modules.index(
        "drivers/virtio/virtio.ko"
    )
    assert not any("pclmul" in m or "intel" in m for m in modules)


@pytest.mark.parametrize("script", ["pc-kernel/initramfs/init", "core18/sbin/init"])
def test_init_scripts_are_valid_shell(script: str) -> None:
    path = REFERENCE / script
    assert path.stat().st_mode & stat.S_IXUSR
    shell = which("busybox") or which("sh")
    assert shell is not None
    argv = [shell, "sh", "-n", str(path)] if shell.endswith("busybox") else [shell, "-n", str(path)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_newc_archive_lists_with_cpio(tmp_path: Path) -> None:
    entries = [
        CpioEntry("bin", stat.S_IFDIR | 0o755),
        CpioEntry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
        CpioEntry("init", stat.S_IFREG | 0o755, b"#!/bin/sh\necho hi\n"),
        CpioEntry("a/b/c.ko", stat.S_IFREG | 0o644, b"x" * 1001),
    ]
    data = write_newc(entries, mtime=1704067200)
    assert data.startswith(b"070701") and len(data) % 4 == 0
    cpio = which("cpio")
    if cpio is None:
        pytest.skip("cpio not installed")
    proc = subprocess.run([cpio, "-itv", "--quiet"], input=data, capture_output=True, check=True)
    listing = proc.stdout.decode()
    assert "a/b/c.ko" in listing and "bin/sh -> busybox" in listing
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run([cpio, "-idm", "--quiet"], input=data, cwd=out, check=True)
    assert (out / "a" / "b" / "c.ko").read_bytes() == b"x" * 1001
    assert (out / "bin" / "sh").readlink() == Path("busybox")


def test_initramfs_is_reproducible(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "bin").mkdir(parents=True)
    (tree / "init").write_text("#!/bin/sh\n")
    (tree / "init").chmod(0o755)
    first = gzip_initramfs(tree, 0)
    (tree / "init").touch()
    assert gzip_initramfs(tree, 0) == first
    assert gzip.decompress(first).startswith(b"070701")


def test_deb_names_quote_the_epoch() -> None:
    pkg = DebianPackage("busybox-static", "1:1.35.0-4+deb12u1+b1", "amd64")
    assert pkg.deb_name == "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
    assert pkg.upstream_version == "1.35.0-4+deb12u1+b1"


def test_first_stanza() -> None:
    text = "Package: a\nVersion: 1\nDepends: b (>= 2), c\n\nPackage: a\nVersion: 0\n"
    assert _first_stanza(text) == {"Package": "a", "Version": "1", "Depends": "b (>= 2), c"}


CONSOLE = """\
Welcome to GRUB!
ucimage-reference: base init started
ucimage-reference: $ snap list
Name       Version    Rev  Tracking       Publisher  Notes
core18     1.35.0     3    latest/stable  brand✓     base
pc         18-1       1    18/stable      brand✓     gadget
ucimage-reference: $ snap known model
type: model
authority-id: brand
brand-id: brand
model: ref

AcLBsig
ucimage-reference: $ end
UCIMAGE-REFERENCE-BOOTED model=brand/ref base=core18_3.snap kernel=pc-kernel_2.snap
"""


def test_parse_device_report() -> None:
    report = parse_device_report(CONSOLE)
    assert report.model_id == "brand/ref"
    assert [r.name for r in report.snaps] == ["core18", "pc"]
    assert report.snap("pc").tracking == "18/stable"
    assert report.snap("core18").publisher == "brand✓"
    assert report.model_text.startswith("type: model\n") and report.model_text.endswith("AcLBsig\n")


@pytest.mark.parametrize(
    ("console", "message"),
    [
        (CONSOLE.replace("UCIMAGE-REFERENCE-BOOTED", "X"), "no UCIMAGE-REFERENCE-BOOTED"),
        (CONSOLE + "UCIMAGE-REFERENCE-FAIL: base: no seed\n", "reported a failure"),
        (CONSOLE.replace("$ snap list", "$ other"), "lacks"),
        (CONSOLE.replace("Rev  Tracking", "Rev Tracking X"), "not a snap list"),
    ],
)
def test_parse_device_report_rejects_incomplete(console: str, message: str) -> None:
    with pytest.raises(ConsoleParseError, match=message):
        parse_device_report(console)


def test_model_template_fills_brand_and_time() -> None:
    text = model_json_text("acme", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    doc = json.loads(text)
    assert doc["brand-id"] == doc["authority-id"] == "acme"
    assert doc["timestamp"] == "2026-01-02T03:04:05Z"
    assert doc["base"] == "core18" and doc["gadget"] == "pc=18" and doc["kernel"] == "pc-kernel=18"
    assert "@" not in text


def test_read_seed_manifest(tmp_path: Path) -> None:
    path = tmp_path / "seed.manifest"
    path.write_text("# comment\nacme/set=3\ncore18 2\npc 1\n\nsnapd x1\n")
    assert read_seed_manifest(path) == {"core18": "2", "pc": "1", "snapd": "x1"}


def test_demo_checks_the_device_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo = Demo(tmp_path, uefi=False)
    demo.paths.image_dir.mkdir(parents=True)
    demo.paths.seed_manifest.write_text("core18 3\npc 1\n")
    model = CONSOLE.split("$ snap known model\n", 1)[1].split("ucimage-reference: $ end")[0]
    demo.paths.model.write_text(model)
    log = tmp_path / "console.log"
    log.write_text(CONSOLE)
    assert demo.show_device(log)
    out = capsys.readouterr().out
    assert "device$ snap list" in out and "match seed.manifest" in out
    demo.paths.seed_manifest.write_text("core18 4\npc 1\n")
    assert not demo.show_device(log)
    assert "DIFFER" in capsys.readouterr().out
    log.write_text("nothing")
    assert not demo.show_device(log)


def test_find_modules_handles_compressed_and_builtin(tmp_path: Path) -> None:
    release = "9.9.9-test"
    image = tmp_path / "image"
    mods = tmp_path / "modules"  # Ubuntu ships modules in a second package
    kdir = mods / "lib" / "modules" / release / "kernel"
    (kdir / "fs" / "squashfs").mkdir(parents=True)
    (kdir / "fs" / "squashfs" / "squashfs.ko.xz").write_bytes(lzma.compress(b"\x7fELF squashfs"))
    (kdir / "drivers" / "block").mkdir(parents=True)
    (kdir / "drivers" / "block" / "loop.ko").write_bytes(b"\x7fELF loop")
    builtin = image / "lib" / "modules" / release / "modules.builtin"
    builtin.parent.mkdir(parents=True)
    builtin.write_text("kernel/fs/ext4/ext4.ko\n")
    wanted = ("fs/ext4/ext4.ko", "fs/squashfs/squashfs.ko", "drivers/block/loop.ko")
    found = find_modules([image, mods], release, wanted)
    assert [(m.name, m.path is None, m.compression) for m in found] == [
        ("fs/ext4/ext4.ko", True, ""),
        ("fs/squashfs/squashfs.ko", False, "xz"),
        ("drivers/block/loop.ko", False, ""),
    ]
    assert module_bytes(found[1]) == b"\x7fELF squashfs"
    assert module_bytes(found[2]) == b"\x7fELF loop"
    with pytest.raises(ReferenceBuildError, match=r"neither a file nor a built-in for: x/y\.ko"):
        find_modules([image, mods], release, ("x/y.ko",))
