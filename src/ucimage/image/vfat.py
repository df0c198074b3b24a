"""vfat built in place inside an image file with dosfstools and mtools.

``mkfs.vfat --offset`` with an explicit size (without it the FAT would run to
the end of the image), ``--invariant`` plus ``-i`` for a fixed volume id and
times; then ``mmd``/``mcopy`` with ``-i IMAGE@@OFFSET``, one call per directory
in sorted order (``mcopy -s`` follows readdir order, which is not stable), with
``SOURCE_DATE_EPOCH`` as every file time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from ucimage.image.content import StagedTree
from ucimage.image.fat import place_files
from ucimage.image.spec import ContentError, ImageError
from ucimage.run import run

_ARGS_PER_CALL = 200
T = TypeVar("T")


#: FAT dates start in 1980; mtools turns earlier times into 2098
FAT_EPOCH = 315_532_800
#: and end in 2107 (2107-12-31T23:59:58Z); later ones wrap round (2446 became 2062)
FAT_LAST = 4_354_819_198


def fat_time(timestamp: int) -> int:
    """*timestamp* within the dates FAT can hold."""
    return min(max(timestamp, FAT_EPOCH), FAT_LAST)


def mtools_env(timestamp: int) -> dict[str, str]:
    return {
        "MTOOLS_SKIP_CHECK": "1",
        "MTOOLSRC": "/dev/null",
        "SOURCE_DATE_EPOCH": str(fat_time(timestamp)),
        "TZ": "UTC",
    }


def mtools_image(image: Path, offset: int) -> str:
    return f"{os.fspath(image)}@@{offset}"


FAT32_MIN_CLUSTERS = 65525
FAT16_MIN_CLUSTERS = 4085


def fat_bits_for(size: int, fat_sector: int, kind: str) -> int:
    """FAT width for one-sector clusters.

    The FAT type is defined by the cluster count, and readers (mtools, Linux,
    firmware) go by it: a "FAT32" with fewer than 65525 clusters is read as
    FAT16 and looks corrupt.  So a vfat too small for FAT32 (under ~33 MiB with
    512-byte sectors, ~260 MiB with 4096) becomes FAT16, or FAT12 below that.
    """
    sectors = size // fat_sector
    fat32_clusters = sectors - 32 - 2 * -(-(sectors + 2) * 4 // fat_sector)
    if kind != "vfat-16" and fat32_clusters >= FAT32_MIN_CLUSTERS:
        return 32
    fat16_clusters = sectors - 4 - 2 * -(-(sectors + 2) * 2 // fat_sector) - 32
    if fat16_clusters >= FAT16_MIN_CLUSTERS + 16:
        return 16
    return 12


def make_vfat(
    image: Path, offset: int, size: int, *, kind: str, label: str | None, volume_id: int,
    sector_size: int, timestamp: int, staged: StagedTree | None,
) -> None:  # fmt: skip
    """Make a FAT filesystem at *offset* (bytes) of *size* bytes and copy content."""
    fat_sector = max(512, sector_size)
    if offset % fat_sector:
        raise ImageError(f"vfat offset {offset} is not a multiple of the sector size {fat_sector}")
    fat_bits = str(fat_bits_for(size, fat_sector, kind))
    argv: list[str | os.PathLike[str]] = ["mkfs.vfat", "-F", fat_bits, "-S", str(fat_sector)]
    argv += ["-s", "1", "--invariant", "-i", f"{volume_id:08X}"]
    if label:
        argv += ["-n", label]
    argv += [f"--offset={offset // fat_sector}", image, str(size // 1024)]
    run(argv, env={"TZ": "UTC", "SOURCE_DATE_EPOCH": str(fat_time(timestamp))})
    if staged is None:
        return
    target = mtools_image(image, offset)
    env = mtools_env(timestamp)
    paths = staged.walk()
    dirs = [p for p in paths if (staged.root / p.lstrip("/")).is_dir()]
    for chunk in _chunks([f"::{d}" for d in dirs]):
        run(["mmd", "-i", target, *chunk], env=env)
    by_dir: dict[str, list[Path]] = {}
    for p in paths:
        local = staged.root / p.lstrip("/")
        if local.is_dir():
            continue
        if local.is_symlink():
            # mcopy would follow it, possibly out of the gadget: refuse instead
            raise ContentError(
                f"cannot put symlink {p} on vfat (-> {os.readlink(local)})",
                hint="vfat has no symlinks; ship the file itself in the gadget",
            )
        parent = p.rsplit("/", 1)[0] or ""
        by_dir.setdefault(parent, []).append(local)
    for parent, files in by_dir.items():
        for group in _chunks(files):
            run(["mcopy", "-o", "-i", target, *group, f"::{parent}/"], env=env)
    # mcopy copied large files as empty placeholders; give them clusters and data
    placed = [
        (path, item.source, item.size) for item in staged.large_files() for path in item.paths
    ]
    if placed:
        place_files(image, offset, placed)


def _chunks(items: list[T]) -> list[list[T]]:
    return [items[i : i + _ARGS_PER_CALL] for i in range(0, len(items), _ARGS_PER_CALL)]
