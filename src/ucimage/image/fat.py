"""Placing large files' data on a FAT filesystem ourselves.

mcopy writes file data one cluster at a time (512-byte clusters on a gadget's
vfat: ~4x slower than a copy), so large files are first copied as empty
placeholders by mcopy (which makes the directory entry, long name and times)
and then finished here: free clusters are taken from the FAT in ascending
order, the chain is written to every FAT copy, the directory entry gets its
first cluster and size, FSInfo its free count, and the data goes straight to
the clusters with ``copy_file_range``.  ``fsck.vfat -n`` and byte compares of
``mcopy`` read-backs check it.
"""

from __future__ import annotations

import array
import itertools
import mmap
import os
import struct
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ucimage.image.ext4 import Writeback, copy_range
from ucimage.image.spec import ImageError

_DIR_ENTRY = 32
_ATTR_LFN = 0x0F
_ATTR_DIR = 0x10
_ATTR_VOLUME_ID = 0x08


@dataclass(frozen=True)
class FatGeometry:
    offset: int
    bytes_per_sector: int
    sectors_per_cluster: int
    reserved: int
    fats: int
    fat_sectors: int
    root_entries: int
    total_sectors: int
    root_cluster: int
    fsinfo_sector: int
    bits: int

    @property
    def cluster_size(self) -> int:
        return self.bytes_per_sector * self.sectors_per_cluster

    @property
    def fat_start(self) -> int:
        return self.offset + self.reserved * self.bytes_per_sector

    @property
    def root_dir_start(self) -> int:
        return self.fat_start + self.fats * self.fat_sectors * self.bytes_per_sector

    @property
    def data_start(self) -> int:
        return self.root_dir_start + self.root_entries * _DIR_ENTRY

    @property
    def clusters(self) -> int:
        data = self.total_sectors * self.bytes_per_sector - (self.data_start - self.offset)
        return data // self.cluster_size

    def cluster_offset(self, cluster: int) -> int:
        return self.data_start + (cluster - 2) * self.cluster_size


def read_geometry(fd: int, offset: int) -> FatGeometry:
    boot = os.pread(fd, 512, offset)
    bps, spc, reserved, fats, root_entries, total16 = struct.unpack_from("<HBHBHH", boot, 11)
    fat16_size = struct.unpack_from("<H", boot, 22)[0]
    total32 = struct.unpack_from("<I", boot, 32)[0]
    fat32_size, _, _, root_cluster, fsinfo = struct.unpack_from("<IHHIH", boot, 36)
    fat_sectors = fat16_size or fat32_size
    geometry = FatGeometry(
        offset, bps, spc, reserved, fats, fat_sectors, root_entries,
        total16 or total32, root_cluster if not fat16_size else 0,
        fsinfo if not fat16_size else 0, 0,
    )  # fmt: skip
    clusters = geometry.clusters
    bits = 12 if clusters < 4085 else 16 if clusters < 65525 else 32
    return replace(geometry, bits=bits)


class FatWriter:
    """Just enough FAT16/FAT32 to give placeholder files their clusters."""

    def __init__(self, fd: int, offset: int) -> None:
        self.fd = fd
        self.g = read_geometry(fd, offset)
        if self.g.bits == 12:
            raise ImageError("FAT12 is not supported for direct data placement")
        size = self.g.fat_sectors * self.g.bytes_per_sector
        # the first FAT, mapped: only the pages we touch use memory, whatever its size
        delta = self.g.fat_start % mmap.ALLOCATIONGRANULARITY
        self._map = mmap.mmap(fd, size + delta, offset=self.g.fat_start - delta)
        self.fat = memoryview(self._map)[delta : delta + size]
        self._next_free = 2

    def close(self) -> None:
        self.fat.release()
        self._map.close()

    def entry(self, cluster: int) -> int:
        if self.g.bits == 16:
            return int(struct.unpack_from("<H", self.fat, cluster * 2)[0])
        return int(struct.unpack_from("<I", self.fat, cluster * 4)[0]) & 0x0FFFFFFF

    def set_entry(self, cluster: int, value: int) -> None:
        if self.g.bits == 16:
            struct.pack_into("<H", self.fat, cluster * 2, value)
        else:
            old = struct.unpack_from("<I", self.fat, cluster * 4)[0] & 0xF0000000
            struct.pack_into("<I", self.fat, cluster * 4, old | value)

    def end_of_chain(self) -> int:
        return 0xFFFF if self.g.bits == 16 else 0x0FFFFFFF

    def chain(self, first: int) -> list[int]:
        clusters: list[int] = []
        cluster = first
        limit = 0xFFF8 if self.g.bits == 16 else 0x0FFFFFF8
        while 2 <= cluster < limit and len(clusters) <= self.g.clusters:
            clusters.append(cluster)
            cluster = self.entry(cluster)
        return clusters

    def allocate(self, count: int) -> list[tuple[int, int]]:
        """Chain the *count* lowest free clusters; return them as (first, length) runs."""
        width = self.g.bits // 8
        last = self.g.clusters + 1
        cluster = self._next_free
        while cluster <= last and self.entry(cluster) != 0:
            cluster += 1
        end = cluster + count
        run = self.fat[cluster * width : end * width].tobytes()
        if end - 1 <= last and run.count(0) == count * width:
            # one contiguous run (the usual case after mkfs): build the chain in one go
            chain = array.array("H" if width == 2 else "I", range(cluster + 1, end))
            chain.append(self.end_of_chain())
            if sys.byteorder != "little":
                chain.byteswap()
            self.fat[cluster * width : end * width] = chain.tobytes()
            self._next_free = end
            return [(cluster, count)]
        found: list[int] = []
        while len(found) < count and cluster <= last:
            if self.entry(cluster) == 0:
                found.append(cluster)
            cluster += 1
        if len(found) < count:
            size = self.g.total_sectors * self.g.bytes_per_sector
            raise ImageError(
                f"the content does not fit in the {size}-byte vfat filesystem",
                hint="make the structure bigger or the content smaller",
            )
        self._next_free = cluster
        for here, there in itertools.pairwise(found):
            self.set_entry(here, there)
        self.set_entry(found[-1], self.end_of_chain())
        runs: list[tuple[int, int]] = []
        for c in found:
            if runs and runs[-1][0] + runs[-1][1] == c:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((c, 1))
        return runs

    # ---- directories ------------------------------------------------------------------

    def _dir_slots(self, cluster: int) -> list[int]:
        """Absolute offsets of every entry slot of a directory (0 = FAT16 root)."""
        if cluster == 0:
            start = self.g.root_dir_start
            return [start + i * _DIR_ENTRY for i in range(self.g.root_entries)]
        per_cluster = self.g.cluster_size // _DIR_ENTRY
        return [
            self.g.cluster_offset(c) + i * _DIR_ENTRY
            for c in self.chain(cluster)
            for i in range(per_cluster)
        ]

    def _entries(self, cluster: int) -> list[tuple[str, str, int, bytes]]:
        """(long name, short name, slot offset, raw entry) of a directory."""
        result = []
        lfn: dict[int, str] = {}
        for slot in self._dir_slots(cluster):
            raw = os.pread(self.fd, _DIR_ENTRY, slot)
            if raw[0] == 0:
                break
            if raw[0] == 0xE5:
                lfn = {}
                continue
            if raw[11] == _ATTR_LFN:
                chars = raw[1:11] + raw[14:26] + raw[28:32]
                text = chars.decode("utf-16-le", "replace").split("\0", 1)[0]
                lfn[raw[0] & 0x1F] = text
                continue
            long_name = "".join(lfn[k] for k in sorted(lfn))
            lfn = {}
            if raw[11] & _ATTR_VOLUME_ID:
                continue  # the volume label is not a file
            result.append((long_name, _short_name(raw), slot, raw))
        return result

    def find(self, path: str) -> tuple[int, bytes]:
        """Slot offset and raw entry of *path* ('/'-rooted)."""
        cluster = self.g.root_cluster
        parts = [p for p in path.split("/") if p]
        for depth, part in enumerate(parts):
            wanted = part.casefold()
            for long_name, short_name, slot, raw in self._entries(cluster):
                if wanted in (long_name.casefold(), short_name.casefold()):
                    if depth == len(parts) - 1:
                        return slot, raw
                    if not raw[11] & _ATTR_DIR:
                        break
                    high = struct.unpack_from("<H", raw, 20)[0] if self.g.bits == 32 else 0
                    cluster = (high << 16) | struct.unpack_from("<H", raw, 26)[0]
                    break
            else:
                break
        raise ImageError(f"cannot find {path} on the vfat filesystem just written")

    def give_clusters(self, slot: int, raw: bytes, first: int, size: int) -> None:
        if struct.unpack_from("<I", raw, 28)[0] != 0 or struct.unpack_from("<H", raw, 26)[0]:
            raise ImageError("vfat placeholder is not empty")
        entry = bytearray(raw)
        struct.pack_into("<H", entry, 20, first >> 16 if self.g.bits == 32 else 0)
        struct.pack_into("<H", entry, 26, first & 0xFFFF)
        struct.pack_into("<I", entry, 28, size)
        os.pwrite(self.fd, bytes(entry), slot)

    def flush(self, allocated: int) -> None:
        size = len(self.fat)
        for n in range(1, self.g.fats):  # the first FAT is the mapping itself
            for pos in range(0, size, 1 << 20):
                chunk = self.fat[pos : min(pos + (1 << 20), size)]
                os.pwrite(self.fd, chunk, self.g.fat_start + n * size + pos)
        if self.g.bits == 32 and self.g.fsinfo_sector:
            at = self.g.offset + self.g.fsinfo_sector * self.g.bytes_per_sector
            free, _ = struct.unpack_from("<II", os.pread(self.fd, 8, at + 488))
            if free != 0xFFFFFFFF:
                free -= allocated
            os.pwrite(self.fd, struct.pack("<II", free, self._next_free), at + 488)


def _short_name(raw: bytes) -> str:
    base = bytearray(raw[0:8])
    if base[0] == 0x05:
        base[0] = 0xE5
    name = base.decode("latin-1").rstrip()
    ext = raw[8:11].decode("latin-1").rstrip()
    if raw[12] & 0x08:
        name = name.lower()
    if raw[12] & 0x10:
        ext = ext.lower()
    return f"{name}.{ext}" if ext else name


def place_files(image: Path, offset: int, files: list[tuple[str, Path, int]]) -> None:
    """Give each empty placeholder ``(path, source, size)`` its clusters and data."""
    fd = os.open(image, os.O_RDWR)
    fat = None
    try:
        fat = FatWriter(fd, offset)
        plan = []
        allocated = 0
        for path, source, size in files:
            slot, raw = fat.find(path)
            count = -(-size // fat.g.cluster_size)
            runs = fat.allocate(count) if count else []
            allocated += count
            fat.give_clusters(slot, raw, runs[0][0] if runs else 0, size)
            plan.append((source, size, runs))
        fat.flush(allocated)
        with Writeback(fd) as writeback:
            for source, size, runs in plan:
                _copy_to_clusters(fd, fat.g, source, size, runs, writeback)
    finally:
        if fat is not None:
            fat.close()
        os.close(fd)


def _copy_to_clusters(
    fd: int,
    g: FatGeometry,
    source: Path,
    size: int,
    runs: list[tuple[int, int]],
    writeback: Writeback,
) -> None:
    src = os.open(source, os.O_RDONLY)
    try:
        if os.fstat(src).st_size != size:
            raise ImageError(f"{source} changed size while the image was built")
        done = 0
        for first, length in runs:
            count = min(length * g.cluster_size, size - done)
            copy_range(src, fd, count, done, g.cluster_offset(first), writeback)
            done += count
    finally:
        os.close(src)
