"""Write a :class:`~ucimage.image.spec.DiskSpec` to a sparse image file.

Steps, each logged and timed: create the sparse file; build each filesystem in
place (ext4, vfat); write the partition table (after mkfs, so mkfs never sees a
table to complain about); write raw bytes (bare structures, ``image:`` content,
``offset-write`` values) without touching the table; flush; then the optional
``.bmap`` and zstd copy.  No root, no loop devices, no mounts.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ucimage.image import ext4, vfat
from ucimage.image.bmap import write_bmap
from ucimage.image.content import StagedTree, stage
from ucimage.image.determinism import derive_u32, derive_uuid
from ucimage.image.partition_table import TableEntry, gpt_usable_range, write_gpt, write_mbr
from ucimage.image.spec import DiskSpec, ImageError, PartitionSpec, RawWrite
from ucimage.run import run

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class WrittenPartition:
    number: int
    start: int
    size: int
    type: str
    name: str
    guid: uuid.UUID | None
    filesystem: str | None
    filesystem_id: str | None


@dataclass(frozen=True)
class WrittenDisk:
    """What :func:`write_disk` produced."""

    path: Path
    size: int
    allocated: int
    disk_id: str
    partitions: tuple[WrittenPartition, ...]
    bmap: Path | None = None
    compressed: Path | None = None
    steps: tuple[tuple[str, float], ...] = field(default_factory=tuple)


def partition_guid(spec: DiskSpec, part: PartitionSpec) -> uuid.UUID:
    return part.guid or derive_uuid(spec.seed, f"partition-{part.number}-guid")


def filesystem_uuid(spec: DiskSpec, part: PartitionSpec) -> uuid.UUID:
    if part.filesystem is not None and part.filesystem.uuid is not None:
        return part.filesystem.uuid
    return derive_uuid(spec.seed, f"partition-{part.number}-fs-uuid")


def vfat_volume_id(spec: DiskSpec, part: PartitionSpec) -> int:
    if part.filesystem is not None and part.filesystem.uuid is not None:
        return part.filesystem.uuid.int & 0xFFFFFFFF
    return derive_u32(spec.seed, f"partition-{part.number}-vfat-id")


def disk_guid(spec: DiskSpec) -> uuid.UUID:
    if isinstance(spec.disk_id, uuid.UUID):
        return spec.disk_id
    return derive_uuid(spec.seed, "disk-guid")


def mbr_signature(spec: DiskSpec) -> int:
    if isinstance(spec.disk_id, int):
        return spec.disk_id
    return derive_u32(spec.seed, "mbr-signature")


def check_spec(spec: DiskSpec) -> None:
    """Geometry checks that need no I/O; raise :class:`ImageError`."""
    ss = spec.sector_size
    if ss not in (512, 4096):
        raise ImageError(f"sector size {ss} is not 512 or 4096")
    if spec.size <= 0 or spec.size % ss:
        raise ImageError(f"image size {spec.size} is not a positive multiple of {ss}")
    numbers = [p.number for p in spec.partitions]
    if len(set(numbers)) != len(numbers):
        raise ImageError(f"partition numbers are not unique: {numbers}")
    ordered = sorted(spec.partitions, key=lambda p: p.start)
    for prev, part in zip([None, *ordered], ordered, strict=False):
        what = f'partition {part.number} ("{part.name}")'
        if part.start % ss:
            raise ImageError(f"{what} start {part.start} is not a multiple of sector size {ss}")
        if part.size <= 0 or part.start + part.size > spec.size:
            raise ImageError(
                f"{what} (start {part.start}, size {part.size}) does not fit in the "
                f"{spec.size}-byte image"
            )
        if prev is not None and prev.start + prev.size > part.start:
            raise ImageError(f'{what} overlaps partition {prev.number} ("{prev.name}")')
    for raw in spec.raw_writes:
        if raw.offset < 0 or raw.offset >= spec.size:
            raise ImageError(f"raw write {raw.what or raw.offset} lies outside the image")


@contextmanager
def _step(name: str, steps: list[tuple[str, float]]) -> Iterator[None]:
    start = time.monotonic()
    log.info("%s ...", name)
    yield
    took = time.monotonic() - start
    steps.append((name, took))
    log.info("%s: done in %.2fs", name, took)


def _write_sparse(fd: int, offset: int, raw: RawWrite) -> int:
    """Write *raw* at *offset*, skipping all-zero chunks (they are holes already)."""
    written = 0
    if raw.data is not None:
        os.pwrite(fd, raw.data, offset)
        return len(raw.data)
    assert raw.source is not None
    with open(raw.source, "rb") as src:
        while chunk := src.read(_CHUNK):
            if chunk.count(0) != len(chunk):
                os.pwrite(fd, chunk, offset + written)
            written += len(chunk)
    return written


def _raw_size(raw: RawWrite) -> int:
    if raw.data is not None:
        return len(raw.data)
    assert raw.source is not None
    try:
        return raw.source.stat().st_size
    except OSError as exc:
        raise ImageError(f"cannot read {raw.what or raw.source}: {exc}") from exc


def _table_areas(spec: DiskSpec) -> list[tuple[int, int, str]]:
    """Byte ranges raw content must leave alone: the MBR entries, the GPT areas."""
    areas = [(446, 512, "MBR partition table")]
    if spec.schema == "gpt":
        ss = spec.sector_size
        first, last = gpt_usable_range(spec.size // ss, ss)
        areas.append((ss, first * ss, "primary GPT"))
        areas.append(((last + 1) * ss, spec.size, "backup GPT"))
    return areas


def write_disk(
    spec: DiskSpec,
    *,
    workdir: Path | None = None,
    bmap: Path | None = None,
    zstd: Path | None = None,
    large_threshold: int | None = ext4.DEFAULT_LARGE_THRESHOLD,
    sync: bool = True,
) -> WrittenDisk:
    """Write the whole image described by *spec*; return what was written."""
    check_spec(spec)
    for raw in spec.raw_writes:
        size = _raw_size(raw)
        if raw.limit is not None and size > raw.limit:
            raise ImageError(
                f"{raw.what or 'raw content'} ({size} bytes) does not fit in {raw.limit} bytes"
            )
        if raw.offset + size > spec.size:
            raise ImageError(f"{raw.what or 'raw content'} runs past the end of the image")
        for start, end, table in _table_areas(spec):
            if raw.offset < end and raw.offset + size > start:
                raise ImageError(
                    f"{raw.what or 'raw content'} (bytes {raw.offset}-{raw.offset + size - 1}) "
                    f"overlaps the {table} (bytes {start}-{end - 1})",
                    hint="move the structure or shrink its content; the table is written first",
                )
    steps: list[tuple[str, float]] = []
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    # staging hard-links content; beside the image it is usually on the same
    # filesystem as the build tree (and not in a RAM-backed /tmp)
    staging_parent = workdir if workdir is not None else spec.path.parent
    with tempfile.TemporaryDirectory(prefix=".ucimage-disk-", dir=staging_parent) as tmp:
        tmpdir = Path(tmp)
        with _step(f"create sparse image {spec.path} ({spec.size} bytes)", steps):
            fd = os.open(spec.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.ftruncate(fd, spec.size)
            finally:
                os.close(fd)
        fs_ids = _make_filesystems(spec, tmpdir, large_threshold, steps)
        written_parts = [
            WrittenPartition(
                part.number, part.start, part.size, part.type, part.name,
                partition_guid(spec, part) if spec.schema == "gpt" else None,
                part.filesystem.kind if part.filesystem else None, fs_ids.get(part.number),
            )
            for part in spec.partitions
        ]  # fmt: skip
        with open(spec.path, "r+b", buffering=0) as image:
            fd = image.fileno()
            with _step(f"write {spec.schema} partition table", steps):
                disk_id = _write_table(fd, spec)
            if spec.raw_writes:
                with _step(f"write {len(spec.raw_writes)} raw content item(s)", steps):
                    for raw in spec.raw_writes:
                        _write_sparse(fd, raw.offset, raw)
            if sync:
                with _step("flush image to disk", steps):
                    os.fsync(fd)
    bmap_path = None
    if bmap is not None:
        with _step(f"write block map {bmap}", steps):
            write_bmap(spec.path, bmap)
        bmap_path = bmap
    zstd_path = None
    if zstd is not None:
        with _step(f"compress to {zstd}", steps):
            compress_zstd(spec.path, zstd)
        zstd_path = zstd
    allocated = os.stat(spec.path).st_blocks * 512
    return WrittenDisk(
        spec.path, spec.size, allocated, disk_id, tuple(written_parts), bmap_path, zstd_path,
        tuple(steps),
    )  # fmt: skip


def compress_zstd(image: Path, output: Path, level: int = 10) -> None:
    """zstd of the image; same input, same bytes (no timestamps, fixed level)."""
    run(["zstd", "-q", "-f", f"-{level}", "--no-progress", "-T2", image, "-o", output])


def _write_table(fd: int, spec: DiskSpec) -> str:
    ss = spec.sector_size
    entries = [
        TableEntry(
            number=p.number,
            first_lba=p.start // ss,
            sectors=(p.size + ss - 1) // ss,
            type=p.type,
            name=p.name,
            guid=partition_guid(spec, p) if spec.schema == "gpt" else None,
            bootable=p.bootable,
        )
        for p in spec.partitions
    ]
    total = spec.size // ss
    if spec.schema == "gpt":
        guid = disk_guid(spec)
        write_gpt(fd, total, ss, guid, entries)
        return str(guid)
    if spec.schema == "mbr":
        signature = mbr_signature(spec)
        write_mbr(fd, total, ss, signature, entries)
        return f"0x{signature:08x}"
    raise ImageError(f"unknown partition schema {spec.schema!r}")


#: filesystems made at once: each is its own byte range of the image, and most of
#: the work is in mke2fs/debugfs/mtools processes and kernel copies, so a vfat is
#: made while an ext4's data is placed (two cores; more would only queue)
PARALLEL_FILESYSTEMS = 2


def _make_filesystems(
    spec: DiskSpec, tmpdir: Path, large_threshold: int | None, steps: list[tuple[str, float]]
) -> dict[int, str]:
    """Make every partition's filesystem, several at once; return their ids by number.

    Steps are recorded in partition order whatever order they finish in, and the
    first failure (in partition order) is raised once all have stopped.
    """
    parts = [p for p in spec.partitions if p.filesystem is not None]

    def make(part: PartitionSpec) -> tuple[str, list[tuple[str, float]]]:
        assert part.filesystem is not None
        fs_dir = tmpdir / f"p{part.number}"
        fs_dir.mkdir()
        own: list[tuple[str, float]] = []
        with _step(f"make {part.filesystem.kind} on partition {part.number} ({part.name})", own):
            fs_id = _make_filesystem(spec, part, fs_dir, large_threshold)
        return fs_id, own

    if len(parts) < 2:
        results = [make(p) for p in parts]
    else:
        # leaving the with block waits for every maker, so nothing outlives the
        # staging directory even on an error or an interrupt
        with ThreadPoolExecutor(PARALLEL_FILESYSTEMS, thread_name_prefix="mkfs") as pool:
            futures = [pool.submit(make, p) for p in parts]
            for pending in wait(futures, return_when=FIRST_EXCEPTION).not_done:
                pending.cancel()  # after a failure, start no other
        results = [f.result() for f in futures]
    ids = {}
    for part, (fs_id, own) in zip(parts, results, strict=True):
        ids[part.number] = fs_id
        steps.extend(own)
    return ids


def _make_filesystem(
    spec: DiskSpec, part: PartitionSpec, fs_dir: Path, large_threshold: int | None
) -> str:
    fs = part.filesystem
    assert fs is not None
    content = fs.content
    has_content = isinstance(content, Path) or bool(content)
    staged: StagedTree | None = None
    if fs.kind == "ext4":
        if has_content:
            staged = stage(content, fs_dir / "root", large_threshold=large_threshold)
        fs_uuid = filesystem_uuid(spec, part)
        ext4.make_ext4(
            spec.path, part.start, part.size, label=fs.label, fs_uuid=fs_uuid,
            hash_seed=derive_uuid(spec.seed, f"partition-{part.number}-ext4-hash-seed"),
            timestamp=spec.timestamp, staged=staged, workdir=fs_dir,
        )  # fmt: skip
        result = str(fs_uuid)
    elif fs.kind in ("vfat", "vfat-16", "vfat-32"):
        if has_content:
            staged = stage(content, fs_dir / "root", large_threshold=large_threshold)
        volume_id = vfat_volume_id(spec, part)
        vfat.make_vfat(
            spec.path, part.start, part.size, kind=fs.kind, label=fs.label,
            volume_id=volume_id, sector_size=spec.sector_size, timestamp=spec.timestamp,
            staged=staged,
        )  # fmt: skip
        result = f"{volume_id >> 16:04X}-{volume_id & 0xFFFF:04X}"
    else:
        raise ImageError(f"unsupported filesystem {fs.kind!r} on partition {part.number}")
    if staged is not None:
        shutil.rmtree(staged.root, ignore_errors=True)
    return result
