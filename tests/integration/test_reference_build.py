"""ucimage reference build: real Debian packages (cached), grub-mkimage, mksquashfs."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from ucimage.cli.main import main
from ucimage.reference.build import (
    CORE_IMG_REST_LBA,
    ReferenceBuildError,
    ReferenceSnaps,
    build,
    plan_build,
)
from ucimage.reference.chain import ChainError, ChainPaths, Ucimage, init_store, store_server
from ucimage.reference.debian import DebianPackageError, resolve
from ucimage.reference.publish import push_reference_snaps
from ucimage.run import which
from ucimage.snaps import SnapFile

pytestmark = pytest.mark.integration

TOOLS = ("apt-get", "dpkg-deb", "grub-mkimage", "mksquashfs", "unsquashfs", "cpio")


@pytest.fixture(scope="module")
def snaps(tmp_path_factory: pytest.TempPathFactory) -> ReferenceSnaps:
    missing = [t for t in TOOLS if which(t) is None]
    if missing:
        pytest.fail(f"needs {', '.join(missing)}: run 'make deps'")
    return build(plan_build(tmp_path_factory.mktemp("ref")))


def test_four_snaps_with_the_right_types(snaps: ReferenceSnaps) -> None:
    types = {name: SnapFile(path).info.type for name, path in snaps.snaps.items()}
    assert types == {"pc": "gadget", "pc-kernel": "kernel", "core18": "base", "snapd": "snapd"}
    for step in ("fetch", "unpack", "stage", "pack"):
        assert step in snaps.timings


def test_gadget_has_patched_grub_images(snaps: ReferenceSnaps) -> None:
    gadget = SnapFile(snaps.snaps["pc"])
    files = set(gadget.list())
    assert {"pc-boot.img", "pc-core.img", "grubx64.efi", "grub.cfg", "grub.conf"} <= files
    boot = gadget.read_file("pc-boot.img")
    assert len(boot) == 440 and boot[0x66:0x68] == b"\x90\x90"
    core = gadget.read_file("pc-core.img")
    assert int.from_bytes(core[500:508], "little") == CORE_IMG_REST_LBA
    efi = gadget.read_file("grubx64.efi")
    assert efi[:2] == b"MZ"


def test_kernel_snap_has_kernel_and_our_initramfs(snaps: ReferenceSnaps, tmp_path: Path) -> None:
    kernel = SnapFile(snaps.snaps["pc-kernel"])
    assert kernel.read_file("kernel.img")[0x202:0x206] == b"HdrS"  # a bzImage
    initrd = gzip.decompress(kernel.read_file("initrd.img"))
    listing = subprocess.run(
        ["cpio", "-it", "--quiet"], input=initrd, capture_output=True, check=True
    ).stdout.decode()
    names = set(listing.split())
    assert {"init", "bin/busybox", "lib/modules/load.list", "lib/modules/fs/ext4/ext4.ko"} <= names
    # GRUB 2.06's squash4 reads xz but not zstd
    out = subprocess.run(
        ["unsquashfs", "-s", str(snaps.snaps["pc-kernel"])], capture_output=True, text=True
    ).stdout
    assert "Compression xz" in out


def test_base_has_busybox_and_init(snaps: ReferenceSnaps) -> None:
    base = SnapFile(snaps.snaps["core18"])
    files = set(base.list())
    for needed in ("sbin/init", "bin/busybox", "bin/sh", "writable", "dev", "proc", "sys"):
        assert needed in files
    assert base.read_file("sbin/init").startswith(b"#!/bin/sh")


def test_build_is_reproducible(snaps: ReferenceSnaps, tmp_path: Path) -> None:
    again = build(plan_build(tmp_path / "again"))
    for name, path in snaps.snaps.items():
        assert SnapFile(again.snaps[name]).sha3_384_hex == SnapFile(path).sha3_384_hex, name


def test_cli_dry_run_prints_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["reference", "build", "--out", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"kernel_release"' in out and "linux-image-" in out
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"


def test_unknown_package_is_a_clear_error() -> None:
    with pytest.raises(DebianPackageError, match="no installable version"):
        resolve("ucimage-no-such-package")


def test_trusted_file_must_be_an_assertion(tmp_path: Path) -> None:
    bogus = tmp_path / "root.assert"
    bogus.write_text("not an assertion\n")
    with pytest.raises(ReferenceBuildError, match="not an assertion file"):
        plan_build(tmp_path / "out", trusted=(bogus,))
    with pytest.raises(ReferenceBuildError, match="cannot read"):
        plan_build(tmp_path / "out", trusted=(tmp_path / "missing.assert",))


def test_push_reference_snaps_releases_to_uc18_channels(
    snaps: ReferenceSnaps, tmp_path: Path
) -> None:
    paths = ChainPaths(tmp_path)
    ucimage = Ucimage(cache_dir=paths.cache)
    init_store(ucimage, paths)
    token = (paths.store / "upload-token").read_text().strip()
    with store_server(ucimage, paths.store) as url:
        revisions = push_reference_snaps(url, token, snaps.snaps)
        assert revisions == {"pc": 1, "pc-kernel": 1, "core18": 1, "snapd": 1}
        # pushing the same (reproducible) snaps again adds no revision
        assert push_reference_snaps(url, token, snaps.snaps) == revisions
        listing = json.loads(ucimage("store", "list", "--store", url, "--json"))
    text = json.dumps(listing)
    for name in ("pc", "pc-kernel", "core18", "snapd"):
        assert f'"{name}"' in text
    assert "18/stable" in text and "latest/stable" in text


def test_store_server_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    with (
        pytest.raises(ChainError, match="store server did not start"),
        store_server(Ucimage(), tmp_path / "not-a-store", timeout=30),
    ):
        pass
