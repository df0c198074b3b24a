"""The disk writer checked with independent tools.

sfdisk/fdisk for the tables, e2fsck/dumpe2fs/debugfs for ext4, fsck.vfat/mdir
for vfat, raw bytes for bare content and offset-write, sha256 for determinism,
bmaptool and zstd for the optional outputs, setpriv for the rootless run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from ucimage.image import (
    ContentEntry,
    ContentError,
    DiskSpec,
    FilesystemSpec,
    ImageError,
    PartitionSpec,
    RawWrite,
    write_disk,
)
from ucimage.image.ext4 import BASE_FEATURES, EXT4_FEATURES, quote

pytestmark = pytest.mark.integration

MiB = 1 << 20
BIOS_TYPE = "21686148-6449-6E6F-744E-656564454649"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
TOOLS_ENV = {
    **os.environ,
    "MTOOLS_SKIP_CHECK": "1",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin",
}


# ---- helpers shared with test_image_gadgets.py ------------------------------------------


def sh(*argv: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [os.fspath(a) for a in argv], capture_output=True, text=True, check=check, env=TOOLS_ENV
    )


def sfdisk_json(image: Path) -> dict[str, Any]:
    table: dict[str, Any] = json.loads(sh("sfdisk", "--json", image).stdout)["partitiontable"]
    return table


def fdisk_rows(image: Path, sector_size: int) -> list[list[str]]:
    """Start, sectors, type, name per partition, as fdisk reads them (any sector size)."""
    out = sh("fdisk", "-b", str(sector_size), "-l", "-o", "Start,Sectors,Type-UUID,Name", image)
    lines = out.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.strip().startswith("Start"))
    return [line.split(None, 3) for line in lines[head + 1 :] if line.strip()]


def fs_device(image: Path, offset: int) -> str:
    return f"{image}?offset={offset}"


def e2fsck_clean(image: Path, offset: int) -> None:
    proc = sh("e2fsck", "-fn", fs_device(image, offset), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def dumpe2fs(image: Path, offset: int) -> dict[str, str]:
    out = sh("dumpe2fs", "-h", fs_device(image, offset)).stdout
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def debugfs_ls(image: Path, offset: int, path: str) -> list[tuple[int, int, int, str]]:
    """(mode, uid, gid, name) of each entry of *path*."""
    out = sh("debugfs", "-R", f"ls -l {quote(path)}", fs_device(image, offset)).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 9 or not parts[0].isdigit():
            continue
        name = line.split(None, 8)[8] if len(parts) >= 9 else ""
        name = " ".join(parts[8:])
        rows.append((int(parts[1], 8), int(parts[3]), int(parts[4]), name))
    return rows


def debugfs_owners(image: Path, offset: int) -> set[tuple[int, int]]:
    """(uid, gid) of every inode reached from the root, via ``debugfs rdump``-free walk."""
    owners: set[tuple[int, int]] = set()
    todo = ["/"]
    while todo:
        path = todo.pop()
        for mode, uid, gid, name in debugfs_ls(image, offset, path):
            if name in (".", ".."):
                owners.add((uid, gid))
                continue
            owners.add((uid, gid))
            if (mode & 0o170000) == 0o040000:
                todo.append(f"{path.rstrip('/')}/{name}")
    return owners


def debugfs_cat(image: Path, offset: int, path: str, tmp: Path) -> bytes:
    out = tmp / "dumped"
    sh("debugfs", "-R", f"dump {quote(path)} {out}", fs_device(image, offset))
    data = out.read_bytes()
    out.unlink()
    return data


def extract(image: Path, offset: int, size: int, out: Path) -> None:
    """Copy a partition out of the image, keeping holes (fast on sparse images)."""
    with open(image, "rb") as src, open(out, "wb") as dst:
        fd = src.fileno()
        pos, end = offset, offset + size
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            if data >= end:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
            src.seek(data)
            dst.seek(data - offset)
            remaining = hole - data
            while remaining:
                chunk = src.read(min(remaining, 4 * MiB))
                dst.write(chunk)
                remaining -= len(chunk)
            pos = hole
        dst.truncate(size)


def vfat_check(image: Path, offset: int, size: int, tmp: Path) -> None:
    part = tmp / "vfat.part"
    extract(image, offset, size, part)
    proc = sh("fsck.vfat", "-n", part, check=False)
    part.unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr


def mdir(image: Path, offset: int, path: str = "::/") -> str:
    return sh("mdir", "-i", f"{image}@@{offset}", path).stdout


def mtype(image: Path, offset: int, path: str) -> bytes:
    proc = subprocess.run(
        ["mcopy", "-n", "-i", f"{image}@@{offset}", path, "-"],
        capture_output=True,
        check=True,
        env=TOOLS_ENV,
    )
    return proc.stdout


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def read_at(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


# ---- a pc-like disk ---------------------------------------------------------------------


def content_paths(root: Path) -> dict[str, Path]:
    names = {"esp": "esp", "data": "data", "boot": "pc-boot.img", "core": "pc-core.img"}
    paths = {key: root / name for key, name in names.items()}
    paths["kernel"] = paths["data"] / "system-data/var/lib/snapd/seed/snaps/pc-kernel_1.snap"
    return paths


def make_content(root: Path) -> dict[str, Path]:
    esp = root / "esp"
    (esp / "EFI" / "boot").mkdir(parents=True)
    (esp / "EFI" / "boot" / "grubx64.efi").write_bytes(os.urandom(70_000))
    (esp / "grub.cfg").write_text("set default=0\n")
    data = root / "data"
    snaps = data / "system-data" / "var" / "lib" / "snapd"
    (snaps / "seed" / "snaps").mkdir(parents=True)
    (snaps / "snaps").mkdir(parents=True)
    kernel = snaps / "seed" / "snaps" / "pc-kernel_1.snap"
    kernel.write_bytes(os.urandom(5 * MiB + 123))  # above the large-file threshold
    os.link(kernel, snaps / "snaps" / "pc-kernel_1.snap")
    (snaps / "seed" / "seed.yaml").write_text("snaps: []\n")
    (data / 'odd name "quoted"').write_text("x")
    os.symlink("seed/seed.yaml", snaps / "seed.link")
    boot = root / "pc-boot.img"
    boot.write_bytes(os.urandom(440))
    core = root / "pc-core.img"
    core.write_bytes(os.urandom(100_000))
    return {"esp": esp, "data": data, "boot": boot, "core": core, "kernel": kernel}


def pc_spec(root: Path, image: Path, content: dict[str, Path], *, seed: bytes = b"s1",
            timestamp: int = 1_700_000_000) -> DiskSpec:  # fmt: skip
    return DiskSpec(
        path=image,
        size=80 * MiB,
        sector_size=512,
        schema="gpt",
        seed=seed,
        timestamp=timestamp,
        partitions=(
            PartitionSpec(1, 1 * MiB, 1 * MiB, BIOS_TYPE, "BIOS Boot"),
            PartitionSpec(
                2, 2 * MiB, 34 * MiB, ESP_TYPE, "EFI System",
                filesystem=FilesystemSpec(
                    "vfat", "system-boot",
                    content=(
                        ContentEntry(content["esp"], PurePosixPath("/"), contents_only=True),
                        ContentEntry(content["esp"] / "grub.cfg", PurePosixPath("/EFI/ubuntu"),
                                     into_directory=True),
                    ),
                ),
            ),
            PartitionSpec(
                3, 36 * MiB, 40 * MiB, LINUX_TYPE, "writable",
                filesystem=FilesystemSpec("ext4", "writable", content=content["data"]),
            ),
        ),
        raw_writes=(
            RawWrite(0, source=content["boot"], limit=446, what="mbr"),
            RawWrite(1 * MiB, source=content["core"], limit=1 * MiB, what="core"),
            RawWrite(92, data=struct.pack("<I", 2048), what="offset-write"),
        ),
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], Path]:
    root = tmp_path_factory.mktemp("pc")
    content = make_content(root)
    image = root / "pc.img"
    write_disk(pc_spec(root, image, content), bmap=root / "pc.bmap", zstd=root / "pc.img.zst")
    return image, content, root


def test_gpt_table_matches_sfdisk(built: tuple[Path, dict[str, Path], Path]) -> None:
    image, _, _ = built
    sh("sfdisk", "--verify", image)
    table = sfdisk_json(image)
    assert table["label"] == "gpt"
    parts = [(p["start"], p["size"], p["type"], p["name"]) for p in table["partitions"]]
    assert parts == [
        (2048, 2048, BIOS_TYPE, "BIOS Boot"),
        (4096, 34 * 2048, ESP_TYPE, "EFI System"),
        (36 * 2048, 40 * 2048, LINUX_TYPE, "writable"),
    ]
    assert table["lastlba"] == 80 * 2048 - 34
    assert len({p["uuid"] for p in table["partitions"]} | {table["id"]}) == 4


def test_raw_bytes_and_offset_write(built: tuple[Path, dict[str, Path], Path]) -> None:
    image, content, _ = built
    head = read_at(image, 0, 512)
    boot = content["boot"].read_bytes()
    assert head[:92] + head[96:440] == boot[:92] + boot[96:]
    assert struct.unpack_from("<I", head, 92)[0] == 2048
    assert head[510:] == b"\x55\xaa" and head[450] == 0xEE  # protective MBR survived
    assert read_at(image, MiB, 100_000) == content["core"].read_bytes()


def test_ext4_checks(built: tuple[Path, dict[str, Path], Path], tmp_path: Path) -> None:
    image, content, _ = built
    offset = 36 * MiB
    e2fsck_clean(image, offset)
    info = dumpe2fs(image, offset)
    assert info["Filesystem volume name"] == "writable"
    features = set(info["Filesystem features"].split())
    assert features == set(EXT4_FEATURES.split(",")) | set(BASE_FEATURES.split(","))
    assert not features & {"metadata_csum_seed", "orphan_file"}
    assert info["Block size"] == "4096"
    assert debugfs_owners(image, offset) == {(0, 0)}
    kernel = content["kernel"].read_bytes()
    for path in (
        "/system-data/var/lib/snapd/seed/snaps/pc-kernel_1.snap",
        "/system-data/var/lib/snapd/snaps/pc-kernel_1.snap",
    ):
        assert debugfs_cat(image, offset, path, tmp_path) == kernel
    stat = sh("debugfs", "-R", "stat /system-data/var/lib/snapd/snaps/pc-kernel_1.snap",
              fs_device(image, offset)).stdout  # fmt: skip
    assert "Links: 2" in stat
    for field in ("ctime", "atime", "mtime", "crtime"):  # every time is the timestamp
        assert f"{field}: 0x6553f100:00000000" in stat
    assert debugfs_cat(image, offset, '/odd name "quoted"', tmp_path) == b"x"
    if shutil.which("grub-fstest"):  # GRUB 2.06's own ext2 driver reads the placed extents
        grub = "(loop0,gpt3)/system-data/var/lib/snapd/snaps/pc-kernel_1.snap"
        sh("grub-fstest", image, "cmp", grub, content["kernel"])
    link = sh("debugfs", "-R", "stat /system-data/var/lib/snapd/seed.link",
              fs_device(image, offset)).stdout  # fmt: skip
    assert "Type: symlink" in link and 'Fast link dest: "seed/seed.yaml"' in link


def test_vfat_checks(built: tuple[Path, dict[str, Path], Path], tmp_path: Path) -> None:
    image, content, _ = built
    offset = 2 * MiB
    vfat_check(image, offset, 34 * MiB, tmp_path)
    listing = mdir(image, offset)
    assert "Volume in drive : is system-boot" in listing
    assert (
        mtype(image, offset, "::/EFI/boot/grubx64.efi")
        == (content["esp"] / "EFI" / "boot" / "grubx64.efi").read_bytes()
    )
    assert mtype(image, offset, "::/EFI/ubuntu/grub.cfg") == b"set default=0\n"
    assert mtype(image, offset, "::/grub.cfg") == b"set default=0\n"
    assert "2023-11-14" in mdir(image, offset, "::/EFI/boot")  # SOURCE_DATE_EPOCH 1700000000


def test_image_is_sparse(built: tuple[Path, dict[str, Path], Path]) -> None:
    image, _, _ = built
    assert os.stat(image).st_blocks * 512 < 30 * MiB


def test_bmap_and_zstd(built: tuple[Path, dict[str, Path], Path], tmp_path: Path) -> None:
    image, _, root = built
    copy = tmp_path / "copy.img"
    sh("bmaptool", "copy", "--bmap", root / "pc.bmap", image, copy)
    assert sha256(copy) == sha256(image)
    text = (root / "pc.bmap").read_text()
    assert '<bmap version="2.0">' in text and "<ChecksumType> sha256 </ChecksumType>" in text
    unpacked = tmp_path / "unpacked.img"
    sh("zstd", "-q", "-d", root / "pc.img.zst", "-o", unpacked)
    assert sha256(unpacked) == sha256(image)


def test_same_seed_same_bytes_other_seed_differs(
    built: tuple[Path, dict[str, Path], Path], tmp_path: Path
) -> None:
    image, content, root = built
    again = tmp_path / "again.img"
    write_disk(pc_spec(root, again, content))
    assert sha256(again) == sha256(image)
    other = tmp_path / "other.img"
    write_disk(pc_spec(root, other, content, seed=b"s2"))
    assert sha256(other) != sha256(image)
    ids = {p["uuid"] for p in sfdisk_json(other)["partitions"]}
    assert not ids & {p["uuid"] for p in sfdisk_json(image)["partitions"]}
    assert (
        dumpe2fs(other, 36 * MiB)["Filesystem UUID"] != dumpe2fs(image, 36 * MiB)["Filesystem UUID"]
    )


def test_mbr_disk_bootable_and_4k_gpt(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "config.txt").write_text("arm_64bit=1\n")
    mbr = tmp_path / "mbr.img"
    write_disk(
        DiskSpec(
            path=mbr, size=64 * MiB, schema="mbr", seed=b"m", timestamp=0,
            partitions=(
                PartitionSpec(1, 1 * MiB, 40 * MiB, "0C", bootable=True,
                              filesystem=FilesystemSpec("vfat", "system-boot", content=files)),
                PartitionSpec(2, 41 * MiB, 20 * MiB, "83",
                              filesystem=FilesystemSpec("ext4", "writable")),
            ),
        )
    )  # fmt: skip
    table = sfdisk_json(mbr)
    assert table["label"] == "dos"
    assert [(p["start"], p["size"], p["type"], p.get("bootable", False))
            for p in table["partitions"]] == [
        (2048, 40 * 2048, "c", True), (41 * 2048, 20 * 2048, "83", False)
    ]  # fmt: skip
    assert mtype(mbr, MiB, "::/config.txt") == b"arm_64bit=1\n"
    e2fsck_clean(mbr, 41 * MiB)

    gpt4k = tmp_path / "gpt4k.img"
    write_disk(
        DiskSpec(
            path=gpt4k, size=64 * MiB, sector_size=4096, seed=b"k", timestamp=0,
            partitions=(
                PartitionSpec(1, 1 * MiB, 40 * MiB, ESP_TYPE, "system-boot",
                              filesystem=FilesystemSpec("vfat", "system-boot", content=files)),
                PartitionSpec(2, 41 * MiB, 20 * MiB, LINUX_TYPE, "writable",
                              filesystem=FilesystemSpec("ext4", "writable", content=files)),
            ),
        )
    )  # fmt: skip
    rows = fdisk_rows(gpt4k, 4096)
    assert [r[:3] for r in rows] == [
        ["256", str(40 * 256), ESP_TYPE], [str(41 * 256), str(20 * 256), LINUX_TYPE]
    ]  # fmt: skip
    assert mtype(gpt4k, MiB, "::/config.txt") == b"arm_64bit=1\n"
    assert read_at(gpt4k, MiB + 11, 2) == struct.pack("<H", 4096)  # FAT bytes per sector
    e2fsck_clean(gpt4k, 41 * MiB)


def test_errors_are_clear(tmp_path: Path) -> None:
    image = tmp_path / "bad.img"
    with pytest.raises(ImageError, match="overlaps GPT header"):
        write_disk(DiskSpec(path=image, size=8 * MiB, partitions=(
            PartitionSpec(1, 512, MiB, LINUX_TYPE, "early"),)))  # fmt: skip
    with pytest.raises(ImageError, match="overlaps partition 1"):
        write_disk(DiskSpec(path=image, size=8 * MiB, partitions=(
            PartitionSpec(1, MiB, 2 * MiB, LINUX_TYPE, "a"),
            PartitionSpec(2, 2 * MiB, MiB, LINUX_TYPE, "b"),)))  # fmt: skip
    blob = tmp_path / "blob"
    blob.write_bytes(b"x" * 500)
    with pytest.raises(ImageError, match="does not fit in 446 bytes"):
        write_disk(DiskSpec(path=image, size=8 * MiB, raw_writes=(
            RawWrite(0, source=blob, limit=446, what="mbr"),)))  # fmt: skip
    with pytest.raises(ImageError, match="at most 4 partitions"):
        write_disk(DiskSpec(path=image, size=16 * MiB, schema="mbr", partitions=tuple(
            PartitionSpec(i, i * MiB, MiB, "83") for i in range(1, 6))))  # fmt: skip
    with pytest.raises(ImageError, match="too small for an ext4"):
        write_disk(DiskSpec(path=image, size=8 * MiB, partitions=(
            PartitionSpec(1, MiB, 64 * 1024, LINUX_TYPE, "tiny",
                          filesystem=FilesystemSpec("ext4")),)))  # fmt: skip


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory uid 65534 can reach and write (pytest's tmp dirs are 0700)."""
    work = Path(tempfile.mkdtemp(prefix="ucimage-nobody-"))
    os.chmod(work, 0o755)
    os.chown(work, 65534, 65534)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


UNPRIVILEGED_SCRIPT = """
import sys
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from tests.integration.test_image_writer import content_paths, pc_spec
from ucimage.image import write_disk
root = Path(sys.argv[3])
out = Path(sys.argv[4])
write_disk(pc_spec(root, out / "pc.img", content_paths(root)), workdir=out)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_unprivileged_build_is_root_owned_and_identical(nobody_dir: Path) -> None:
    """uid 65534 builds the same root-owned bytes as root, from content owned by uid 1000."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed")
    content_root = nobody_dir / "content"
    content_root.mkdir()
    content = make_content(content_root)
    sh("chmod", "-R", "a+rX", content_root)
    # neither the builder (65534) nor root owns the content: 0:0 in the image can only
    # come from the writer rewriting every inode's owner
    sh("chown", "-R", "1000:1000", content_root)
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in content_root.rglob("*")}
    assert owners == {(1000, 1000)}
    out = nobody_dir / "out"
    out.mkdir()
    os.chown(out, 65534, 65534)
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
         UNPRIVILEGED_SCRIPT, str(repo / "src"), str(repo), str(content_root), str(out)],
        capture_output=True, text=True, env={**TOOLS_ENV, "HOME": str(out)}, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    image = out / "pc.img"
    assert os.stat(image).st_uid == 65534
    offset = 36 * MiB
    e2fsck_clean(image, offset)
    assert debugfs_owners(image, offset) == {(0, 0)}
    sh("sfdisk", "--verify", image)
    assert "Volume in drive : is system-boot" in mdir(image, 2 * MiB)
    as_root = nobody_dir / "root.img"
    write_disk(pc_spec(content_root, as_root, content))
    assert sha256(as_root) == sha256(image)


def test_vfat_refuses_symlinks(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    os.symlink("/etc/passwd", files / "passwd")
    spec = DiskSpec(
        path=tmp_path / "x.img",
        size=48 * MiB,
        partitions=(
            PartitionSpec(1, MiB, 40 * MiB, ESP_TYPE, "boot",
                          filesystem=FilesystemSpec("vfat", content=files)),
        ),
    )  # fmt: skip
    with pytest.raises(ContentError, match="cannot put symlink /passwd on vfat"):
        write_disk(spec)


@pytest.mark.parametrize(("sector", "size_mib"), [(512, 60), (4096, 60), (512, 20)])
def test_vfat_large_files_placed_directly(tmp_path: Path, sector: int, size_mib: int) -> None:
    """Large files go in as mcopy placeholders, then get clusters and data from us."""
    files = tmp_path / "files"
    (files / "snaps" / "deep").mkdir(parents=True)
    big = files / "snaps" / "A Long Name pc-kernel_1.snap"
    big.write_bytes(os.urandom(6 * MiB + 17))
    os.link(big, files / "snaps" / "deep" / "linked.snap")
    (files / "snaps" / "exact.bin").write_bytes(os.urandom(4 * MiB))
    (files / "small.txt").write_text("small")
    spec = DiskSpec(
        path=tmp_path / "x.img",
        size=(size_mib + 2) * MiB,
        sector_size=sector,
        seed=b"v",
        timestamp=1_700_000_000,
        partitions=(
            PartitionSpec(1, MiB, size_mib * MiB, ESP_TYPE, "seed",
                          filesystem=FilesystemSpec("vfat", "ubuntu-seed", content=files)),
        ),
    )  # fmt: skip
    write_disk(spec)
    image = tmp_path / "x.img"
    vfat_check(image, MiB, size_mib * MiB, tmp_path)
    for rel in ("snaps/A Long Name pc-kernel_1.snap", "snaps/deep/linked.snap",
                "snaps/exact.bin", "small.txt"):  # fmt: skip
        assert mtype(image, MiB, f"::/{rel}") == (files / rel).read_bytes(), rel
    first = sha256(image)
    write_disk(spec)
    assert sha256(image) == first


@pytest.mark.parametrize(
    ("timestamp", "date"),
    [(0, "1980-01-01"), (15032385535, "2107-12-31")],  # after 2107 they wrapped round
)
def test_vfat_times_outside_fat_dates_are_clamped(
    tmp_path: Path, timestamp: int, date: str
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "f.txt").write_text("x")
    spec = DiskSpec(
        path=tmp_path / "x.img", size=48 * MiB, seed=b"t", timestamp=timestamp,
        partitions=(PartitionSpec(1, MiB, 40 * MiB, ESP_TYPE, "boot",
                                  filesystem=FilesystemSpec("vfat", content=files)),),
    )  # fmt: skip
    write_disk(spec)
    listing = mdir(tmp_path / "x.img", MiB)
    assert date in listing, listing


@pytest.mark.parametrize(
    ("offset", "size", "table"),
    [(0, 447, "MBR partition table"), (1024, 10, "primary GPT"), (40 * MiB - 512, 4, "backup GPT")],
)
def test_raw_content_may_not_overwrite_tables(
    tmp_path: Path, offset: int, size: int, table: str
) -> None:
    spec = DiskSpec(
        path=tmp_path / "x.img", size=40 * MiB, raw_writes=(RawWrite(offset, data=b"x" * size),)
    )
    with pytest.raises(ImageError, match=f"overlaps the {table}"):
        write_disk(spec)
