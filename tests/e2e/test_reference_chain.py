"""The full chain on the reference platform: sign → store push → ucimage snap → ucimage boot.

Every step is the real ``ucimage`` CLI (ucimage.reference.chain). A boot passes
only if the device printed the marker and its ``snap list`` and
``snap known model`` agree with the signed model, the snaps pushed and
``seed.manifest``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ucimage.reference.chain import (
    BRAND,
    STORE_AUTHORITY,
    ChainPaths,
    Ucimage,
    prepare_image,
    read_seed_manifest,
)
from ucimage.reference.console import EXPECT, DeviceReport, parse_device_report, parse_snap_list
from ucimage.reference.publish import CHANNELS
from ucimage.run import run, run_text
from ucimage.snaps import SnapFile

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_TIMEOUT = 240.0
NOTES = {"base": "base", "gadget": "gadget", "kernel": "kernel", "snapd": "snapd"}


class Built:
    def __init__(self, paths: ChainPaths, snaps: dict[str, Path], ucimage: Ucimage) -> None:
        self.paths = paths
        self.snaps = snaps
        self.ucimage = ucimage


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    paths = ChainPaths(tmp_path_factory.mktemp("chain"))
    ucimage = Ucimage(cache_dir=paths.cache)
    snaps = prepare_image(ucimage, paths)
    return Built(paths, snaps, ucimage)


def _boot(built: Built, image: Path, log: Path, *extra: str) -> tuple[int, str]:
    """``ucimage boot`` as a user runs it; returns (exit status, stderr)."""
    argv = built.ucimage.argv(
        [
            "boot",
            image,
            "--expect",
            EXPECT,
            "--timeout",
            str(BOOT_TIMEOUT),
            "--log",
            log,
            "--quiet",
            *extra,
        ]
    )
    proc = run(argv, env=built.ucimage.env, check=False, timeout=BOOT_TIMEOUT + 60)
    return proc.returncode, proc.stderr.decode()


def _check_device(built: Built, report: DeviceReport) -> None:
    model = built.paths.model.read_bytes().decode()
    assert report.model_text.strip() == model.strip()
    assert report.model_id == f"{BRAND}/ucimage-reference-pc"
    assert report.snap_model == {
        "brand": "Reference Brand✓",
        "model": "ucimage reference PC (Ubuntu Core 18 style) (ucimage-reference-pc)",
        "serial": "- (device not registered yet)",
    }
    manifest = read_seed_manifest(built.paths.seed_manifest)
    assert {row.name: row.rev for row in report.snaps} == manifest
    assert sorted(manifest) == sorted(CHANNELS)
    for name, snap in built.snaps.items():
        row = report.snap(name)
        info = SnapFile(snap).info
        assert row.version == info.version
        assert row.notes == NOTES[info.type]
        # the store's root is not in the seed: the device knows it the way snapd
        # knows Canonical's, from its snapd snap (reference build --trusted)
        assert row.publisher == STORE_AUTHORITY + "✓"
    assert report.snap("pc").tracking == "18/stable"  # gadget: pc=18
    assert report.snap("pc-kernel").tracking == "18/stable"
    assert report.snap("core18").tracking == "latest/stable"
    # what the device says and what ucimage inspect reads from the file agree
    root = built.paths.store / "root.assert"
    table = run_text(
        built.ucimage.argv(["inspect", built.paths.image, "--snap-list", "--trusted", root])
    )
    assert parse_snap_list(table.strip().splitlines()) == report.snaps


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_signed_pushed_built_image_boots(built: Built, tmp_path: Path, firmware: str) -> None:
    log = tmp_path / "console.log"
    before = built.paths.image.stat().st_mtime_ns
    extra = ("--uefi",) if firmware == "uefi" else ()
    status, err = _boot(built, built.paths.image, log, *extra)
    assert status == 0, err + log.read_text()[-3000:]
    assert "PASS" in err
    _check_device(built, parse_device_report(log.read_text()))
    assert built.paths.image.stat().st_mtime_ns == before, "-snapshot keeps the image"


def _file_offset_in_image(image: Path, path_in_fs: str) -> int:
    """Byte offset in *image* of the first block of *path_in_fs* on the writable partition."""
    table = json.loads(run_text(["sfdisk", "--json", image]))["partitiontable"]
    part = next(p for p in table["partitions"] if p.get("name") == "writable")
    offset: int = part["start"] * table.get("sectorsize", 512)
    fs = f"{image}?offset={offset}"
    blocks = run_text(["debugfs", "-R", f"blocks {path_in_fs}", fs]).split()
    block_size = int(
        re.search(r"Block size:\s+(\d+)", run_text(["dumpe2fs", "-h", fs])).group(1)  # type: ignore[union-attr]
    )
    return offset + int(blocks[0]) * block_size


def test_corrupted_kernel_snap_fails_with_reason(built: Built, tmp_path: Path) -> None:
    image = tmp_path / "pc.img"
    shutil.copyfile(built.paths.image, image)
    kernel = f"pc-kernel_{read_seed_manifest(built.paths.seed_manifest)['pc-kernel']}.snap"
    at = _file_offset_in_image(image, f"/system-data/var/lib/snapd/seed/snaps/{kernel}")
    with image.open("r+b") as f:
        f.seek(at)
        assert f.read(4) == b"hsqs", "expected the squashfs superblock of the kernel snap"
        f.seek(at)
        f.write(b"\0" * 4096)
    log = tmp_path / "console.log"
    status, err = _boot(built, image, log, "--timeout", "90")
    assert status == 1
    assert "FAIL" in err and "unknown filesystem" in err, err
    elapsed = float(re.search(r"FAIL after ([\d.]+)s", err).group(1))  # type: ignore[union-attr]
    assert elapsed < 90, "caught from the console, before the timeout"


def test_seed_holds_the_brand_chain_from_the_store(built: Built) -> None:
    """ucimage snap got the brand's account and account-key from the store (no
    --assertion files) and seeded them beside the model, as snap prepare-image does."""
    image = built.paths.image
    table = json.loads(run_text(["sfdisk", "--json", image]))["partitiontable"]
    part = next(p for p in table["partitions"] if p.get("name") == "writable")
    fs = f"{image}?offset={part['start'] * table.get('sectorsize', 512)}"
    listing = run_text(["debugfs", "-R", "ls -l /system-data/var/lib/snapd/seed/assertions", fs])
    names = {line.split()[-1] for line in listing.splitlines() if line.strip()}
    assert "model" in names
    assert f"{BRAND}.account" in names
    assert any(n.endswith(".account-key") for n in names)
    assert f"{STORE_AUTHORITY}.account" not in names  # a trusted root is not seeded
