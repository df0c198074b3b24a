"""Inspect a whole image: table, filesystems, seed, boot environments, verify."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ucimage.assertions import builtin_trusted, configured_trusted, load_assertion_files
from ucimage.errors import UcimageError
from ucimage.inspect.bootenv import (
    BOOTENV_PATHS,
    LK_RAW_READ,
    BootEnv,
    lk_select_kind,
    parse_bootenv,
    parse_raw_lk_env,
    starts_like_lk_env,
)
from ucimage.inspect.errors import FilesystemReadError, InspectError
from ucimage.inspect.filesystems import Filesystem, probe_filesystem
from ucimage.inspect.fsread import FilesystemReader, reader_for
from ucimage.inspect.partitions import Partition, PartitionTable, read_partition_table
from ucimage.inspect.seed import Seed, read_seed
from ucimage.inspect.verify import (
    AssertionChecker,
    VerifyReport,
    check_bootenvs,
    database_checker,
    verify_seed,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionFilesystem:
    partition: int
    filesystem: Filesystem


@dataclass(frozen=True)
class BootEnvFile:
    """A boot environment: a file in a partition's filesystem, or (``raw``) the
    content of a bare partition (an lk env; ``path`` is then empty)."""

    partition: int
    path: str
    env: BootEnv
    raw: bool = False
    #: the partition's GPT name ("" for MBR or an unnamed entry)
    name: str = ""

    @property
    def where(self) -> str:
        if self.raw:
            return (
                f"partition {self.partition} (raw {self.name})"
                if self.name
                else (f"partition {self.partition} (raw)")
            )
        return f"partition {self.partition}:{self.path}"


@dataclass(frozen=True)
class GadgetStructure:
    """The gadget.yaml structure a partition was made from."""

    partition: int
    name: str
    role: str
    filesystem: str
    label: str


@dataclass(frozen=True)
class GadgetVolume:
    """The gadget volume the image is, as the seeded gadget snap describes it."""

    name: str
    bootloader: str
    schema: str
    gadget: str
    structures: tuple[GadgetStructure, ...]


@dataclass(frozen=True)
class ImageReport:
    path: Path
    size: int
    table: PartitionTable
    filesystems: tuple[PartitionFilesystem, ...]
    seed: Seed | None
    bootenvs: tuple[BootEnvFile, ...]
    verify: VerifyReport | None
    problems: tuple[str, ...]
    volume: GadgetVolume | None = None


def _readers(
    image: Path, table: PartitionTable, filesystems: Sequence[PartitionFilesystem]
) -> list[tuple[int, Filesystem, FilesystemReader]]:
    parts = {p.number: p for p in table.partitions}
    out = []
    for pf in filesystems:
        offset = parts[pf.partition].offset if pf.partition else 0
        desc = f"partition {pf.partition} ({pf.filesystem.type}"
        desc += f" {pf.filesystem.label!r})" if pf.filesystem.label else ")"
        reader = reader_for(pf.filesystem.type, image, offset, desc)
        if reader is not None:
            out.append((pf.partition, pf.filesystem, reader))
    return out


def _bootenvs(
    readers: Sequence[tuple[int, Filesystem, FilesystemReader]],
    seed: Seed | None,
    names: dict[int, str],
) -> list[BootEnvFile]:
    found = []
    for number, _, reader in readers:
        paths = list(BOOTENV_PATHS)
        if seed is not None and seed.partition == number and seed.layout == "uc20":
            paths.append((f"{seed.directory}/grubenv", "grubenv"))
        for path, fmt in paths:
            try:
                data = reader.read_bytes(path)
            except FileNotFoundError:
                continue
            except UcimageError as exc:
                log.debug("cannot read %s: %s", path, exc)
                continue
            found.append(
                BootEnvFile(number, path, parse_bootenv(fmt, data), name=names.get(number, ""))
            )
    return found


def _raw_bootenvs(
    image: Path,
    table: PartitionTable,
    filesystems: Sequence[PartitionFilesystem],
    seed: Seed | None,
    volume: GadgetVolume | None,
) -> list[BootEnvFile]:
    """lk envs stored as the content of bare partitions, where the lk bootloader reads them.

    A partition without a filesystem is read when its GPT name or the role of its
    gadget structure says it holds an lk env, or when it starts with an lk signature.
    """
    with_fs = {pf.partition for pf in filesystems}
    roles = {s.partition: s.role for s in volume.structures} if volume else {}
    seed_layout = seed.layout if seed else None
    found = []
    with open(image, "rb") as f:
        for p in table.partitions:
            if p.number in with_fs or p.offset >= table.image_size:
                continue
            f.seek(p.offset)
            data = f.read(min(p.size_bytes, LK_RAW_READ, table.image_size - p.offset))
            kind = lk_select_kind(p.name, roles.get(p.number, ""))
            if kind is None and not starts_like_lk_env(data):
                continue
            env = parse_raw_lk_env(data, kind, seed_layout)
            found.append(BootEnvFile(p.number, "", env, raw=True, name=p.name))
    return found


def match_gadget_volume(
    seed: Seed, table: PartitionTable, filesystems: Sequence[PartitionFilesystem]
) -> tuple[GadgetVolume | None, list[str]]:
    """Which gadget volume and structures the partitions are (by offset, name, label)."""
    from ucimage.gadget import load_gadget

    gadget = next((s for s in seed.snaps if s.type == "gadget"), None)
    if gadget is None or not gadget.local_path.is_file():
        return None, []
    try:
        info = load_gadget(gadget.local_path)
    except UcimageError as exc:
        return None, [f"cannot read the gadget.yaml of {gadget.name}: {exc.message}"]
    labels = {pf.partition: pf.filesystem.label for pf in filesystems}
    fs_types = {pf.partition: pf.filesystem.type for pf in filesystems}
    best: GadgetVolume | None = None
    best_score = -1
    best_differences: list[str] = []
    for volume in info.volumes.values():
        structs = [st for st in volume.structures if st.is_partition]
        matched: list[GadgetStructure] = []
        differences: list[str] = []
        for p in table.partitions:
            found = next(
                (
                    st
                    for st in structs
                    if st.offset == p.offset and (not p.name or not st.name or st.name == p.name)
                ),
                None,
            )
            if found is None and p.name:
                found = next((st for st in structs if st.name == p.name), None)
            if found is None and labels.get(p.number):
                found = next((st for st in structs if st.label == labels[p.number]), None)
            if found is not None:
                matched.append(
                    GadgetStructure(
                        p.number, found.name, found.role, found.filesystem or "", found.label or ""
                    )
                )
                differences.extend(
                    _structure_differences(p, found, table.scheme, fs_types.get(p.number), labels)
                )
        if len(matched) > best_score:
            best_score = len(matched)
            best_differences = differences
            best = GadgetVolume(
                volume.name,
                volume.bootloader or "",
                volume.schema or table.scheme,
                gadget.name,
                tuple(matched),
            )
    problems = list(best_differences)
    if best is not None and best_score < len(table.partitions):
        problems.append(
            f"only {best_score} of {len(table.partitions)} partitions match a structure of "
            f"gadget volume {best.name!r}"
        )
    return best, problems


def _structure_differences(
    p: Partition,
    st: Any,
    scheme: str,
    fs_type: str | None,
    labels: dict[int, str],
) -> list[str]:
    """Where partition *p* differs from the gadget structure *st* it was made from."""
    where = f"partition {p.number} ({st.name or st.role or 'unnamed'})"
    out = []
    if st.offset is not None and st.offset != p.offset:
        out.append(f"{where} starts at byte {p.offset}, gadget.yaml says {st.offset}")
    if st.min_size and p.size_bytes < st.min_size:
        out.append(f"{where} is {p.size_bytes} bytes, gadget.yaml needs at least {st.min_size}")
    want_type = st.type.for_schema(scheme)
    if want_type is not None:
        same = (
            int(want_type, 16) == int(p.type, 16)
            if scheme == "mbr"
            else want_type.upper() == p.type.upper()
        )
        if not same:
            out.append(f"{where} has type {p.type}, gadget.yaml says {want_type}")
    if st.filesystem:
        want_fs = "vfat" if st.filesystem.startswith("vfat") else st.filesystem
        if fs_type != want_fs:
            out.append(f"{where} holds {fs_type or 'no filesystem'}, gadget.yaml says {want_fs}")
        elif st.label and labels.get(p.number, "").casefold() != st.label.casefold():
            out.append(
                f"{where} has label {labels.get(p.number, '')!r}, gadget.yaml says {st.label!r}"
            )
    return out


#: magic numbers of the compressed forms images travel in, and how to unpack them
_COMPRESSED = (
    (b"\x28\xb5\x2f\xfd", "zstd", "zstd -d"),
    (b"\xfd7zXZ\x00", "xz", "xz -dk"),
    (b"\x1f\x8b", "gzip", "gunzip -k"),
    (b"BZh", "bzip2", "bunzip2 -k"),
)


def _refuse_compressed(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, name, command in _COMPRESSED:
        if head.startswith(magic):
            raise InspectError(
                f"{path} is {name}-compressed, not a disk image",
                hint=f"decompress it first: {command} {path}",
            )


def inspect_image(
    image: str | os.PathLike[str],
    workdir: Path,
    *,
    verify: bool = False,
    trusted: Sequence[Path] = (),
    checker: AssertionChecker | None = None,
    with_snaps: bool = True,
) -> ImageReport:
    """Inspect *image*; seed files are copied under *workdir* (the caller removes it).

    ``with_snaps=False`` skips copying and reading the seeded snaps (enough
    for the model and the boot environment; not allowed with *verify*).
    """
    if verify and not with_snaps:
        raise ValueError("verify needs the snaps")
    path = Path(image)
    if not path.is_file():
        raise InspectError(f"image {os.fspath(path)!r} does not exist or is not a file")
    started = time.monotonic()
    _refuse_compressed(path)
    table = read_partition_table(path)
    problems = list(table.problems)
    filesystems: list[PartitionFilesystem] = []
    with open(path, "rb") as f:
        if table.scheme == "none":
            fs = probe_filesystem(f, 0, table.image_size)
            if fs is not None:
                filesystems.append(PartitionFilesystem(0, fs))
        for p in table.partitions:
            if p.offset + 512 > table.image_size:
                problems.append(f"partition {p.number} starts beyond the end of the image")
                continue
            if p.offset + p.size_bytes > table.image_size:
                problems.append(f"partition {p.number} ends beyond the end of the image")
            fs = probe_filesystem(f, p.offset, p.size_bytes)
            if fs is None:
                continue
            if fs.size > p.size_bytes:
                problems.append(
                    f"partition {p.number}: the {fs.type} filesystem ({fs.size} bytes) is "
                    f"bigger than its partition ({p.size_bytes} bytes)"
                )
            filesystems.append(PartitionFilesystem(p.number, fs))
    log.debug("table and filesystems read in %.2fs", time.monotonic() - started)
    readers = _readers(path, table, filesystems)
    roots = [*builtin_trusted(), *configured_trusted(), *load_assertion_files(trusted)]
    seed: Seed | None = None
    # the seed partition: writable (UC16/18) or ubuntu-seed (UC20+); try labelled ones first
    preferred = sorted(readers, key=lambda r: r[1].label not in ("writable", "ubuntu-seed"))
    for number, _, reader in preferred:
        try:
            seed = read_seed(reader, number, workdir / f"p{number}", roots, with_snaps)
        except FilesystemReadError as exc:
            # a damaged or truncated filesystem: say so, show the rest
            problems.append(f"cannot read the seed: {exc.message}")
            continue
        if seed is not None:
            break
    log.debug("seed read in %.2fs", time.monotonic() - started)
    if seed is None:
        problems.append("no seed found (neither system-data/var/lib/snapd/seed nor systems/)")
    bootenvs = _bootenvs(readers, seed, {p.number: p.name for p in table.partitions})
    volume: GadgetVolume | None = None
    if seed is not None:
        volume, volume_problems = match_gadget_volume(seed, table, filesystems)
        problems.extend(volume_problems)
    bootenvs.extend(_raw_bootenvs(path, table, filesystems, seed, volume))
    report: VerifyReport | None = None
    if verify:
        if seed is None:
            raise InspectError(
                "nothing to verify: the image has no seed",
                hint="is this an Ubuntu Core image built by ucimage snap or ubuntu-image?",
            )
        report = verify_seed(seed, checker or database_checker(trusted, seed))
        envs = [(b.where, b.env) for b in bootenvs if not b.raw]
        raw = [(b.where, b.env) for b in bootenvs if b.raw]
        report = VerifyReport(report.checks + tuple(check_bootenvs(seed, envs, raw=raw)))
        log.debug("verified in %.2fs", time.monotonic() - started)
    return ImageReport(
        path=path,
        size=table.image_size,
        table=table,
        filesystems=tuple(filesystems),
        seed=seed,
        bootenvs=tuple(bootenvs),
        verify=report,
        problems=tuple(problems),
        volume=volume,
    )
