"""Disk images for the inspect tests, built with independent tools.

sfdisk writes the tables, mkfs.vfat + mtools and mkfs.ext4 -d the filesystems,
grub-editenv the grubenv; the seeds are hand-written trees holding the stub
store's real snaps and signed assertions (``shared/testdata/store/fixtures``),
so ``--verify`` has a full chain to check against the ``stubroot`` key.
The tests in this module check the images themselves with fsck/sfdisk, so a
broken fixture fails here first.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TESTDATA

pytestmark = pytest.mark.integration

STUB = TESTDATA / "store" / "fixtures"
STUB_ASSERTS = STUB / "asserts"
#: name -> (file, snap-id, channel) of the stub store's snaps
STUB_SNAPS: dict[str, tuple[str, str, str]] = {
    "snapd": ("snapd_4.snap", "PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4", "latest/stable"),
    "pc-kernel": ("pc-kernel_2.snap", "PCKERNELSTUBxxxxxxxxxxxxxxxxxxx1", "22/stable"),
    "core22": ("core22_3.snap", "amcUKQILKXHHTlmSa7NMdnXSx02dNeeT", "latest/stable"),
    "pc": ("pc_1.snap", "PCSTUBxxxxxxxxxxxxxxxxxxxxxxxxx1", "22/stable"),
    "hello-stub": ("hello-stub_7.snap", "HELLOSTUBxxxxxxxxxxxxxxxxxxxxxx1", "latest/edge"),
}
TRUSTED = [STUB_ASSERTS / "stubroot-root.account-key", STUB_ASSERTS / "stubroot.account"]
MIB = 1024 * 1024
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_TYPE = "21686148-6449-6E6F-744E-656564454649"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
SYSTEM_LABEL = "20261127"
ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}

# the table `snap list` prints on a device seeded from the UC16 fixture
UC16_SNAP_LIST = """\
Name        Version  Rev  Tracking       Publisher  Notes
core22      1.0      3    latest/stable  stubpub    base
hello-stub  1.0      7    latest/edge    stubpub    -
local-app   0.1      x1   -              -          -
pc          1.0      1    22/stable      stubpub    gadget
pc-kernel   1.0      2    22/stable      stubpub    kernel
snapd       1.0      4    latest/stable  stubpub    snapd
"""


def sh(*argv: str | Path, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        [str(a) for a in argv], input=stdin, env=ENV, capture_output=True, check=True
    ).stdout


def sfdisk_json(image: Path) -> dict[str, Any]:
    doc = json.loads(sh("sfdisk", "--json", image))
    table: dict[str, Any] = doc["partitiontable"]
    return table


def make_disk(image: Path, size: int, script: str, sector_size: int = 512) -> None:
    image.unlink(missing_ok=True)
    with open(image, "wb") as f:
        f.truncate(size)
    args: list[str | Path] = ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel"]
    if sector_size != 512:
        args += ["--sector-size", str(sector_size)]
    sh(*args, image, stdin=script.encode())


def put_vfat(image: Path, start: int, sectors: int, label: str, tree: Path | None) -> None:
    """FAT32 in sectors [start, start+sectors) holding a copy of *tree*."""
    sh(
        "mkfs.vfat", "-F", "32", "-S", "512", "-s", "1", "-n", label,
        f"--offset={start}", image, str(sectors // 2),
    )  # fmt: skip
    if tree is not None:
        entries = sorted(tree.iterdir())
        if entries:
            sh("mcopy", "-s", "-i", f"{image}@@{start * 512}", *entries, "::")


def put_ext4(image: Path, start: int, sectors: int, label: str, tree: Path) -> None:
    sh(
        "mkfs.ext4", "-q", "-F", "-b", "4096", "-L", label, "-d", tree,
        "-E", f"offset={start * 512},nodiscard", image, f"{sectors // 2}k",
    )  # fmt: skip


def grubenv(path: Path, **values: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sh("grub-editenv", path, "create")
    sh("grub-editenv", path, "set", *(f"{k}={v}" for k, v in values.items()))
    return path


def uboot_env(values: dict[str, str], size: int = 4096) -> bytes:
    payload = b"".join(f"{k}={v}".encode() + b"\0" for k, v in sorted(values.items())) + b"\0"
    payload = payload.ljust(size - 5, b"\xff")
    return struct.pack("<I", zlib.crc32(payload)) + b"\0" + payload


def make_local_snap(workdir: Path, name: str = "local-app", version: str = "0.1") -> Path:
    tree = workdir / f"{name}.tree"
    (tree / "meta").mkdir(parents=True, exist_ok=True)
    (tree / "meta" / "snap.yaml").write_text(
        f"name: {name}\nversion: '{version}'\nsummary: local\ndescription: local\n"
        "confinement: strict\nbase: core22\n"
    )
    out = workdir / f"{name}.snap"
    sh("mksquashfs", tree, out, "-noappend", "-comp", "xz", "-all-root", "-no-xattrs",
       "-no-progress", "-quiet", "-mkfs-time", "1600000000", "-all-time", "1600000000")  # fmt: skip
    return out


def stub_snap_assertions() -> bytes:
    """Declarations, revisions and the publisher account, as one stream."""
    files = [STUB_ASSERTS / "stubpublisher.account"]
    for name, (file, _, _) in STUB_SNAPS.items():
        files.append(STUB_ASSERTS / f"{name}.snap-declaration")
        files.append(STUB_ASSERTS / f"{file.removesuffix('.snap')}.snap-revision")
    return b"\n".join(f.read_bytes() for f in files)


def model_etc() -> bytes:
    files = ["stubroot-store.account-key", "stubbrand.account", "stubbrand.account-key"]
    return b"\n".join((STUB_ASSERTS / f).read_bytes() for f in files)


@dataclass(frozen=True)
class BuiltImage:
    path: Path
    layout: str
    #: partition number and byte offset of the partition that holds the seed
    seed_partition: int
    seed_offset: int


def build_uc16_image(
    workdir: Path,
    name: str = "uc16.img",
    mutate: Callable[[Path], None] | None = None,
    snap_kernel: str = "pc-kernel_2.snap",
) -> BuiltImage:
    """A UC16/18-style pc image: BIOS Boot, ESP (grubenv), writable (seed).

    *mutate* may change the seed directory before the filesystem is made.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    writable = workdir / "writable-tree"
    if writable.exists():
        shutil.rmtree(writable)
    seed = writable / "system-data/var/lib/snapd/seed"
    (seed / "snaps").mkdir(parents=True)
    (seed / "assertions").mkdir()
    lines = ["snaps:"]
    for sname, (file, snap_id, channel) in STUB_SNAPS.items():
        shutil.copyfile(STUB / "snaps" / file, seed / "snaps" / file)
        lines += [f"  - name: {sname}", f"    snap-id: {snap_id}", f"    channel: {channel}"]
        lines += [f"    file: {file}"]
    local = make_local_snap(workdir)
    shutil.copyfile(local, seed / "snaps" / "local-app_x1.snap")
    lines += ["  - name: local-app", "    unasserted: true", "    file: local-app_x1.snap"]
    (seed / "seed.yaml").write_text("\n".join(lines) + "\n")
    shutil.copyfile(STUB_ASSERTS / "stub-pc.model", seed / "assertions" / "model")
    for f in STUB_ASSERTS.iterdir():
        if f.name not in ("stub-pc.model", "vs1-1.validation-set") and not f.name.startswith(
            "stubroot-root"
        ):
            shutil.copyfile(f, seed / "assertions" / f.name)
    snaps_dir = writable / "system-data/var/lib/snapd/snaps"
    snaps_dir.mkdir(parents=True)
    for file in ("pc-kernel_2.snap", "core22_3.snap"):
        (snaps_dir / file).symlink_to(f"../seed/snaps/{file}")
    (writable / "system-data/boot").mkdir()
    if mutate is not None:
        mutate(seed)
    esp = workdir / "esp-tree"
    if esp.exists():
        shutil.rmtree(esp)
    grubenv(
        esp / "EFI/ubuntu/grubenv",
        snap_mode="",
        snap_core="core22_3.snap",
        snap_kernel=snap_kernel,
    )
    (esp / "EFI/ubuntu/grub.cfg").write_text("# test\n")
    image = workdir / name
    make_pc_disk(image, esp, writable)
    return BuiltImage(image, "uc16", 3, 73728 * 512)


def make_pc_disk(image: Path, esp: Path, writable: Path) -> None:
    """The UC16/18 pc layout: BIOS Boot, the ESP (vfat ``system-boot``), ext4 ``writable``."""
    make_disk(
        image,
        (4096 + 69632 + 32768 + 2048) * 512,
        "label: gpt\n"
        f'start=2048, size=2048, type={BIOS_TYPE}, name="BIOS Boot"\n'
        f'start=4096, size=69632, type={ESP_TYPE}, name="EFI System"\n'
        f'start=73728, size=32768, type={LINUX_TYPE}, name="writable"\n',
    )
    put_vfat(image, 4096, 69632, "system-boot", esp)
    put_ext4(image, 73728, 32768, "writable", writable)


def build_uc20_image(
    workdir: Path,
    name: str = "uc20.img",
    *,
    extra_labels: tuple[str, ...] = (),
    recovery_system: str = SYSTEM_LABEL,
    seed_fs: str = "vfat",
) -> BuiltImage:
    """A UC20+-style image: BIOS Boot and a vfat ubuntu-seed with snaps/ + systems/.

    *extra_labels* are more recovery systems (copies of the first);
    *recovery_system* is what the seed's grubenv tells the bootloader to start.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    tree = workdir / "seed-tree"
    if tree.exists():
        shutil.rmtree(tree)
    system = tree / "systems" / SYSTEM_LABEL
    (tree / "snaps").mkdir(parents=True)
    (system / "assertions").mkdir(parents=True)
    (system / "snaps").mkdir()
    for file, _, _ in STUB_SNAPS.values():
        shutil.copyfile(STUB / "snaps" / file, tree / "snaps" / file)
    shutil.copyfile(STUB_ASSERTS / "stub-pc.model", system / "model")
    (system / "assertions" / "model-etc").write_bytes(model_etc())
    (system / "assertions" / "snaps").write_bytes(stub_snap_assertions())
    local = make_local_snap(workdir)
    shutil.copyfile(local, system / "snaps" / "local-app_0.1.snap")
    (system / "options.yaml").write_text(
        "snaps:\n- name: local-app\n  unasserted: local-app_0.1.snap\n"
    )
    grubenv(
        system / "grubenv",
        snapd_recovery_kernel="/snaps/pc-kernel_2.snap",
        snapd_extra_cmdline_args="",
    )
    for label in extra_labels:
        shutil.copytree(system, tree / "systems" / label)
    grubenv(
        tree / "EFI/ubuntu/grubenv",
        snapd_recovery_system=recovery_system,
        snapd_recovery_mode="install",
    )
    image = workdir / name
    make_seed_disk(image, tree, seed_fs)
    return BuiltImage(image, "uc20", 2, 4096 * 512)


def make_seed_disk(image: Path, seed: Path, seed_fs: str = "vfat") -> None:
    """A UC20 pc-like disk with only BIOS Boot and ``ubuntu-seed`` (vfat, or ext4)."""
    make_disk(
        image,
        (4096 + 69632 + 2048) * 512,
        "label: gpt\n"
        f'start=2048, size=2048, type={BIOS_TYPE}, name="BIOS Boot"\n'
        f'start=4096, size=69632, type={ESP_TYPE}, name="ubuntu-seed"\n',
    )
    if seed_fs == "ext4":  # some gadgets (imx) make ubuntu-seed ext4
        put_ext4(image, 4096, 69632, "ubuntu-seed", seed)
    else:
        put_vfat(image, 4096, 69632, "ubuntu-seed", seed)


def build_mbr_uboot_image(workdir: Path, name: str = "pi.img") -> BuiltImage:
    """A pi-style MBR image: bootable FAT with uboot.env, ext4 writable with the seed."""
    uc16 = build_uc16_image(workdir / "uc16-parts")
    boot = workdir / "boot-tree"
    if boot.exists():
        shutil.rmtree(boot)
    boot.mkdir(parents=True)
    (boot / "uboot.env").write_bytes(
        uboot_env(
            {"snap_core": "core22_3.snap", "snap_kernel": "pc-kernel_2.snap", "snap_mode": ""}
        )
    )
    image = workdir / name
    make_disk(
        image,
        (2048 + 69632 + 32768 + 2048) * 512,
        "label: dos\nlabel-id: 0x1234abcd\n"
        "start=2048, size=69632, type=c, bootable\n"
        "start=71680, size=32768, type=83\n",
    )
    put_vfat(image, 2048, 69632, "system-boot", boot)
    # same writable filesystem as the GPT image, copied across
    with open(uc16.path, "rb") as src, open(image, "r+b") as dst:
        src.seek(uc16.seed_offset)
        dst.seek(71680 * 512)
        dst.write(src.read(32768 * 512))
    return BuiltImage(image, "uc16", 2, 71680 * 512)


def sparse_copy(src: Path, dest: Path) -> Path:
    """Copy an image keeping its holes (UC20 images are GBs, mostly holes)."""
    sh("cp", "--sparse=always", src, dest)
    return dest


def flip_byte_of_file(image: BuiltImage, fs_path: str, offset_in_file: int = 1000) -> None:
    """Change one byte of the file *fs_path* inside the image, in place."""
    part_off = image.seed_offset
    probe = sh("blkid", "-p", "-O", str(part_off), "-o", "export", image.path).decode()
    if "TYPE=ext4" in probe.split():
        out = sh("debugfs", "-R", f"blocks {fs_path}", f"{image.path}?offset={part_off}")
        first_block = int(out.split()[0])
        pos = part_off + first_block * 4096 + offset_in_file
    else:
        # vfat: find the file's bytes in the image (our snaps are unique)
        data = sh("mcopy", "-i", f"{image.path}@@{part_off}", f"::{fs_path}", "-")
        with open(image.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            start = m.find(data[:4096], part_off)
        assert start >= 0, fs_path
        pos = start + offset_in_file
    with open(image.path, "r+b") as img:
        img.seek(pos)
        old = img.read(1)
        img.seek(pos)
        img.write(bytes([old[0] ^ 0xFF]))


# --------------------------------------------------------------------------- checks of the fixtures


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltImage]:
    base = tmp_path_factory.mktemp("inspect-images")
    return {
        "uc16": build_uc16_image(base / "uc16"),
        "uc20": build_uc20_image(base / "uc20"),
        "mbr": build_mbr_uboot_image(base / "mbr"),
    }


@pytest.mark.parametrize("kind", ["uc16", "uc20", "mbr"])
def test_fixture_images_are_sound(images: dict[str, BuiltImage], kind: str) -> None:
    image = images[kind]
    sh("sfdisk", "--verify", image.path)
    if image.layout == "uc16":
        sh("e2fsck", "-fn", f"{image.path}?offset={image.seed_offset}")
    table = sfdisk_json(image.path)
    assert table["label"] == ("dos" if kind == "mbr" else "gpt")


def build_4k_image(workdir: Path, name: str = "4k.img") -> BuiltImage:
    """The UC16 layout with 4096-byte sectors, written by ucimage's own disk writer."""
    from ucimage.image import DiskSpec, FilesystemSpec, PartitionSpec, write_disk

    uc16 = build_uc16_image(workdir / "uc16-parts")  # for its staged trees
    esp, writable = workdir / "uc16-parts" / "esp-tree", workdir / "uc16-parts" / "writable-tree"
    assert uc16.path.exists()
    image = workdir / name
    spec = DiskSpec(
        path=image,
        size=120 * MIB,
        sector_size=4096,
        schema="gpt",
        seed=b"inspect-4k",
        partitions=(
            PartitionSpec(1, 1 * MIB, 1 * MIB, BIOS_TYPE, name="BIOS Boot"),
            PartitionSpec(
                2, 2 * MIB, 50 * MIB, ESP_TYPE, name="EFI System",
                filesystem=FilesystemSpec("vfat", label="system-boot", content=esp),
            ),
            PartitionSpec(
                3, 52 * MIB, 40 * MIB, LINUX_TYPE, name="writable",
                filesystem=FilesystemSpec("ext4", label="writable", content=writable),
            ),
        ),
    )  # fmt: skip
    (workdir / "write-work").mkdir(exist_ok=True)
    write_disk(spec, workdir=workdir / "write-work")
    return BuiltImage(image, "uc16", 3, 52 * MIB)
