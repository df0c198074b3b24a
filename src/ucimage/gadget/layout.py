"""The byte layout of a volume's disk image: the plan the disk writer carries out.

:func:`lay_out_volume` turns a validated :class:`~ucimage.gadget.model.Volume`
into a :class:`VolumeLayout`: every structure with its start and size in bytes,
partition number and type for the volume's schema, GPT name, filesystem label,
resolved content sources and ``offset-write`` target, plus the image size.

Rules (ubuntu-image's, see image-building.md §1.5 and §1.7):

* a partition starts at ``ceil(offset / sector)`` sectors and spans
  ``ceil(size / sector)`` sectors; bare structures and the ``mbr`` are written
  at their exact byte offset and get no partition entry;
* on UC20+ gadgets (a ``system-seed`` exists) the system-boot, system-save and
  system-data structures are created by snapd at install time: they are laid
  out (the image is sized for them) but ``in_image`` is False and they get no
  partition number;
* GPT partitions must start after the primary table (34 sectors of 512 bytes,
  6 of 4096) and end before the backup table (33 / 5 sectors);
* image size without ``image_size``: the volume end aligned to the sector size
  plus the partition-table size (GPT 67 sectors at 512, 11 at 4096; MBR one
  sector), as ubuntu-image computes it; with ``image_size``: exactly that
  (rounded up to a sector), which must hold the layout and the backup table;
* the implicit ``writable`` (UC16/18 single volume) gets ``system_data_size``
  bytes (default 8 MiB, ubuntu-image's size for an empty rootfs) or, with
  ``image_size``, grows to fill the image; an explicit system-data that is the
  last structure of a UC16/18 volume grows the same way (never shrinks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from ucimage.gadget.errors import GadgetError
from ucimage.gadget.model import (
    ROLE_SYSTEM_BOOT,
    ROLE_SYSTEM_DATA,
    ROLE_SYSTEM_SAVE,
    SCHEMA_GPT,
    SCHEMA_MBR,
    Content,
    Structure,
    Volume,
)
from ucimage.gadget.quantity import MiB, iec

SECTOR_SIZES = (512, 4096)
#: ubuntu-image's rootfs size for empty content (du × 1.5 + 8 MiB)
DEFAULT_SYSTEM_DATA_SIZE = 8 * MiB


def gpt_primary_sectors(sector_size: int) -> int:
    """Protective MBR + GPT header + partition entries (16 KiB of entries)."""
    return 1 + 1 + (32 if sector_size == 512 else 4)


def gpt_backup_sectors(sector_size: int) -> int:
    """Backup partition entries + backup GPT header at the end of the disk."""
    return 1 + (32 if sector_size == 512 else 4)


def align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def system_data_size_for_content(content_bytes: int, sector_size: int = 512) -> int:
    """ubuntu-image's rootfs size: content × 1.5 (rounded up) + 8 MiB, sector aligned."""
    return align_up(math.ceil(content_bytes * 3 / 2) + 8 * MiB, sector_size)


@dataclass(frozen=True)
class LaidOutContent:
    """One content entry with its source resolved.

    ``kind == "file"``: copy ``path`` (file, or directory when ``source`` ends
    in ``/``: its contents) to ``target`` inside the structure's filesystem.
    ``kind == "image"``: write the bytes of ``path`` at absolute byte ``start``
    of the image (``size`` bytes reserved; the file may be shorter).
    """

    kind: Literal["file", "image"]
    #: the source as written in gadget.yaml (``source`` or ``image``)
    source: str
    #: absolute resolved path; None for an unresolved ``$kernel:`` ref (no
    #: kernel dir given) or when the gadget dir is unknown
    path: Path | None
    #: filesystem content: target path inside the filesystem
    target: str | None = None
    unpack: bool = False
    #: ``$kernel:<asset>/<path>`` refs: the asset and the path in the kernel snap
    kernel_asset: str | None = None
    kernel_path: str | None = None
    #: image content: absolute byte offset in the image and reserved size
    #: (size None when the file size is unknown: no gadget dir)
    start: int | None = None
    size: int | None = None

    @property
    def is_kernel_ref(self) -> bool:
        return self.kernel_asset is not None

    @property
    def is_directory(self) -> bool:
        """A source ending in ``/`` copies the directory's contents (rsync-like)."""
        return self.kind == "file" and self.source.endswith("/")

    def to_json(self) -> dict[str, Any]:
        return _json_dict(self)


@dataclass(frozen=True)
class OffsetWrite:
    """Write ``value`` as a little-endian uint32 at absolute image byte ``at``."""

    at: int
    #: the structure's start in sectors (``LaidOutStructure.start // sector``)
    value: int

    def to_bytes(self) -> bytes:
        return self.value.to_bytes(4, "little")

    def to_json(self) -> dict[str, Any]:
        return _json_dict(self)


@dataclass(frozen=True)
class LaidOutStructure:
    """A structure placed in the image."""

    #: GPT partition name: the structure name, or ``writable`` for an unnamed
    #: system-data ("" for other unnamed structures)
    name: str
    #: absolute start in bytes (partitions: rounded up to a sector)
    start: int
    #: size in bytes as declared (or computed for the implicit writable);
    #: filesystems are made exactly this big
    size: int
    #: 1-based partition table entry; None for bare structures, the mbr,
    #: structures not written by the image build (``in_image`` False)
    partition_number: int | None
    #: partition type for this volume's schema: GUID (gpt) or two hex digits
    #: (mbr); None when not a partition
    partition_type: str | None
    #: role ("" → None)
    role: str | None
    #: ``ext4``, ``vfat``, ``vfat-16``, ``vfat-32`` or None
    filesystem: str | None
    #: filesystem label (explicit or implied by the role)
    label: str | None
    content: tuple[LaidOutContent, ...]
    offset_write: OffsetWrite | None
    #: index in gadget.yaml's structure list (``part<i>`` names)
    yaml_index: int = 0
    #: start in sectors (partitions: ``ceil(offset / sector)``)
    start_sector: int = 0
    #: ``ceil(size / sector)``
    size_sectors: int = 0
    #: MBR bootable flag (system-boot on an mbr volume)
    bootable: bool = False
    #: False for UC20+ system-boot/save/data: snapd creates them on first boot
    in_image: bool = True
    #: the ``writable`` structure ubuntu-image adds to UC16/18 gadgets
    implicit: bool = False
    #: structure name as in gadget.yaml ("" when unnamed)
    structure_name: str = ""
    #: ``type`` as written (e.g. ``83,0FC63DAF-…``)
    structure_type: str = ""
    #: ``id`` from gadget.yaml (informational)
    structure_id: str | None = None
    #: offset as computed by snapd before sector rounding
    gadget_offset: int = 0

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def is_partition(self) -> bool:
        return self.partition_type is not None

    @property
    def linux_filesystem(self) -> str | None:
        if self.filesystem in ("vfat-16", "vfat-32"):
            return "vfat"
        return self.filesystem

    def to_json(self) -> dict[str, Any]:
        return _json_dict(self)


@dataclass(frozen=True)
class VolumeLayout:
    """The plan for one volume's disk image."""

    name: str
    #: ``gpt`` or ``mbr``
    schema: Literal["gpt", "mbr"]
    #: 512 or 4096
    sector_size: int
    #: image file size in bytes (a sector multiple)
    size: int
    #: in disk order
    structures: tuple[LaidOutStructure, ...]
    bootloader: str | None = None
    #: ``id`` of the volume (informational)
    volume_id: str | None = None
    #: end of the last structure, aligned to the sector size
    content_end: int = 0

    @property
    def partitions(self) -> tuple[LaidOutStructure, ...]:
        """Structures with a partition table entry, by partition number."""
        return tuple(s for s in self.structures if s.partition_number is not None)

    @property
    def size_sectors(self) -> int:
        return self.size // self.sector_size

    def structure(self, name: str) -> LaidOutStructure:
        for s in self.structures:
            if s.name == name or s.structure_name == name:
                return s
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return _json_dict(self)


def _json_dict(obj: Any) -> dict[str, Any]:
    return {f.name: _json(getattr(obj, f.name)) for f in fields(obj)}


def _json(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple | list):
        return [_json(x) for x in obj]
    if hasattr(obj, "__dataclass_fields__"):
        return _json_dict(obj)
    return obj


def _skipped_at_build(s: Structure, seeded: bool) -> bool:
    # ubuntu-image's ShouldSkipStructure: snapd creates these at install time
    return seeded and (
        s.role in (ROLE_SYSTEM_BOOT, ROLE_SYSTEM_DATA, ROLE_SYSTEM_SAVE)
        or s.label == ROLE_SYSTEM_BOOT
    )


def _is_system_boot(s: Structure) -> bool:
    return s.role == ROLE_SYSTEM_BOOT or s.label == ROLE_SYSTEM_BOOT


def lay_out_volume(
    volume: Volume,
    *,
    sector_size: int = 512,
    image_size: int | None = None,
    system_data_size: int | None = None,
    gadget_dir: Path | None = None,
    kernel_dir: Path | None = None,
    seeded: bool | None = None,
) -> VolumeLayout:
    """Lay out *volume* for a disk image (see the module doc for the rules).

    ``gadget_dir`` (default: the directory the gadget was loaded from) resolves
    content sources; ``kernel_dir`` (an unpacked kernel snap) resolves
    ``$kernel:`` refs.  ``seeded`` (default: the volume set has a system-seed)
    selects the UC20+ build, where snapd creates boot/save/data at first boot.
    Raises :class:`GadgetError` when the volume cannot be laid out.
    """
    vol = volume.name
    if sector_size not in SECTOR_SIZES:
        raise GadgetError(
            f"invalid sector size {sector_size}: must be 512 or 4096",
            hint="pass --sector-size 512 or --sector-size 4096",
        )
    if {"schema", "size", "structure"} & set(volume.partial):
        raise GadgetError(
            f'volume "{vol}" is only partially defined (partial: {", ".join(volume.partial)}): '
            "no disk image can be laid out for it",
            hint="partial volumes are completed by an installer on the device",
        )
    if volume.schema not in (SCHEMA_GPT, SCHEMA_MBR):
        raise GadgetError(
            f'volume "{vol}" has schema "{volume.schema}": no disk image is made for it',
            hint="eMMC hardware partitions are written by the device's own tooling",
        )
    schema: Literal["gpt", "mbr"] = "gpt" if volume.schema == SCHEMA_GPT else "mbr"
    if gadget_dir is None:
        gadget_dir = volume.root
    if seeded is None:
        seeded = volume.seeded
    kernel_assets = _read_kernel_assets(kernel_dir) if kernel_dir is not None else None

    if schema == SCHEMA_GPT:
        first_usable = gpt_primary_sectors(sector_size) * sector_size
        backup = gpt_backup_sectors(sector_size) * sector_size
        table_size = first_usable + backup
    else:
        first_usable = 0
        backup = 0
        table_size = sector_size
    if image_size is not None:
        image_size = align_up(image_size, sector_size)

    laid: list[LaidOutStructure] = []
    number = 0
    previous_end = 0
    previous_name = ""
    for s in volume.structures:
        offset = s.offset if s.offset is not None else previous_end
        size = s.size
        if s.implicit:
            # after the last structure's sectors (its gadget end may be unaligned)
            offset = align_up(max(offset, previous_end), sector_size)
            size = max(system_data_size or DEFAULT_SYSTEM_DATA_SIZE, s.min_size)
        last = s is volume.structures[-1]
        if s.implicit or (last and s.role == ROLE_SYSTEM_DATA and not seeded):
            # ubuntu-image grows the rootfs to its content and to --image-size
            if system_data_size is not None:
                size = max(size, system_data_size)
            if image_size is not None:
                fill = (image_size - backup - align_up(offset, sector_size)) // sector_size
                size = max(size, fill * sector_size)
            if s.implicit or size != s.size:
                size = align_up(size, sector_size)
        partition = s.is_partition
        in_image = not _skipped_at_build(s, seeded)
        if partition:
            start_sector = -(-offset // sector_size)
            start = start_sector * sector_size
            span = align_up(size, sector_size)
        else:
            start_sector = offset // sector_size
            start = offset
            span = size
        where = f'volume "{vol}": structure {s.display_name}'
        if schema == SCHEMA_GPT and not s.is_mbr and size > 0 and start < first_usable:
            raise GadgetError(
                f'{where}: The structure "{s.name}" overlaps GPT header or GPT partition table'
                f" (it starts at byte {start}, the table ends at {first_usable}"
                f" with {sector_size}-byte sectors)",
                hint="move the structure past the primary GPT (offset ≥ "
                f"{first_usable}) or use schema: mbr",
            )
        if laid and start < previous_end:
            raise GadgetError(
                f'{where}: structure "{s.name}" overlaps with the preceding structure '
                f'"{previous_name}" once aligned to {sector_size}-byte sectors '
                f"(starts at {start}, preceding ends at {previous_end})",
                hint="align offsets and sizes to the sector size",
            )
        if in_image and partition:
            number += 1
        offset_write = None
        if s.offset_write is not None:
            # relative offsets may only name the first structure, which is at 0;
            # the value is where the structure's bytes really start (in sectors)
            offset_write = OffsetWrite(at=s.offset_write.offset, value=start // sector_size)
        name = s.name
        if not name and s.role == ROLE_SYSTEM_DATA:
            name = "writable"
        laid.append(
            LaidOutStructure(
                name=name,
                start=start,
                size=size,
                partition_number=number if (in_image and partition) else None,
                partition_type=s.type.for_schema(schema) if partition else None,
                role=s.role or None,
                filesystem=s.filesystem,
                label=s.label,
                content=_lay_out_content(s, start, size, gadget_dir, kernel_dir, kernel_assets),
                offset_write=offset_write,
                yaml_index=s.yaml_index,
                start_sector=start_sector,
                size_sectors=-(-size // sector_size),
                bootable=schema == SCHEMA_MBR and partition and _is_system_boot(s),
                in_image=in_image,
                implicit=s.implicit,
                structure_name=s.name,
                structure_type=s.type.raw,
                structure_id=s.id,
                gadget_offset=offset,
            )
        )
        previous_end = start + span
        previous_name = s.name

    content_end = align_up(
        max([0, *(x.start + align_up(x.size, sector_size) for x in laid)]), sector_size
    )
    needed = content_end + backup
    if image_size is None:
        size = align_up(max(volume.size, content_end), sector_size) + table_size
    else:
        if image_size < needed:
            raise GadgetError(
                f"image size smaller than minimum required size: vol:{vol} {image_size} < {needed}",
                hint=f"the layout of volume {vol!r} needs at least {needed} bytes "
                f"({iec(needed)}); drop --image-size or raise it",
            )
        size = image_size
    return VolumeLayout(
        name=vol,
        schema=schema,
        sector_size=sector_size,
        size=size,
        structures=tuple(laid),
        bootloader=volume.bootloader,
        volume_id=volume.id,
        content_end=content_end,
    )


def _read_kernel_assets(kernel_dir: Path) -> dict[str, tuple[str, ...]]:
    from ucimage.gadget.parse import load_yaml

    path = kernel_dir / "meta" / "kernel.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise GadgetError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GadgetError(f"cannot read {path}: not UTF-8 text") from None
    data = load_yaml(text, str(path))
    assets: dict[str, tuple[str, ...]] = {}
    raw = data.get("assets") if isinstance(data, dict) else None
    if isinstance(raw, dict):
        for name, asset in raw.items():
            content = asset.get("content") if isinstance(asset, dict) else None
            if isinstance(content, list):
                assets[str(name)] = tuple(str(c) for c in content)
            else:
                assets[str(name)] = ()
    return assets


def _inside(root: Path, relative: str, s: Structure) -> Path:
    """*relative* under *root*, refusing anything (e.g. a symlink) leading outside."""
    path = root / relative.lstrip("/")
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise GadgetError(
            f'volume "{s.volume_name}": structure {s.display_name}: content "{relative}" '
            f"resolves to {real}, outside the gadget {real_root}",
            hint="content must stay inside the gadget snap (check for symlinks)",
        )
    return path


def _lay_out_content(
    s: Structure,
    start: int,
    size: int,
    gadget_dir: Path | None,
    kernel_dir: Path | None,
    kernel_assets: dict[str, tuple[str, ...]] | None,
) -> tuple[LaidOutContent, ...]:
    if s.has_filesystem:
        return tuple(
            _resolve_file(s, i, c, gadget_dir, kernel_dir, kernel_assets)
            for i, c in enumerate(s.content)
        )
    out: list[LaidOutContent] = []
    previous_end = 0
    where = f'volume "{s.volume_name}": cannot lay out structure {s.display_name}'
    for c in s.content:
        assert c.image is not None
        path = _inside(gadget_dir, c.image, s) if gadget_dir is not None else None
        file_size: int | None = None
        if path is not None:
            try:
                file_size = path.stat().st_size
            except OSError as exc:
                raise GadgetError(
                    f'{where}: content "{c.image}": {exc.strerror}: {path}',
                    hint="image content files are relative to the gadget snap's root",
                ) from None
        relative = c.offset if c.offset is not None else previous_end
        actual = file_size
        if c.size is not None:
            if file_size is not None and c.size < file_size:
                raise GadgetError(
                    f'{where}: content "{c.image}" size {file_size} is larger than '
                    f"declared {c.size}"
                )
            actual = c.size
        if actual is not None:
            previous_end = relative + actual
            if previous_end > size:
                raise GadgetError(f'{where}: content "{c.image}" does not fit in the structure')
        out.append(
            LaidOutContent(
                kind="image", source=c.image, path=path, start=start + relative, size=actual
            )
        )
    ordered = sorted(out, key=lambda x: x.start or 0)
    end = start
    for i, item in enumerate(ordered):
        assert item.start is not None
        if item.start < end:
            raise GadgetError(
                f'{where}: content "{item.source}" overlaps with preceding image '
                f'"{ordered[i - 1].source}"'
            )
        end = item.start + (item.size or 0)
    return tuple(out)


def _resolve_file(
    s: Structure,
    index: int,
    c: Content,
    gadget_dir: Path | None,
    kernel_dir: Path | None,
    kernel_assets: dict[str, tuple[str, ...]] | None,
) -> LaidOutContent:
    assert c.source is not None
    ref = c.kernel_ref
    if ref is None:
        path = None
        if gadget_dir is not None:
            path = _inside(gadget_dir, c.source, s)
            if not path.exists():
                raise GadgetError(
                    f'invalid volume "{s.volume_name}": structure {s.display_name}, '
                    f"content {c}: source path does not exist: {path}",
                    hint="content sources are relative to the gadget snap's root",
                )
            if c.source.endswith("/") and not path.is_dir():
                raise GadgetError(
                    f'invalid volume "{s.volume_name}": structure {s.display_name}, '
                    f"content {c}: cannot specify trailing / for a source which is not "
                    "a directory"
                )
        return LaidOutContent(
            kind="file", source=c.source, path=path, target=c.target, unpack=c.unpack
        )
    asset, wanted = ref
    path = None
    if kernel_dir is not None and kernel_assets is not None:
        where = (
            f'volume "{s.volume_name}": cannot resolve content for structure '
            f"{s.display_name} at index {index}"
        )
        if asset not in kernel_assets:
            raise GadgetError(
                f'{where}: cannot find "{asset}" in kernel info from "{kernel_dir}"',
                hint="the kernel snap's meta/kernel.yaml must declare the asset",
            )
        found = any(
            wanted == k or wanted.startswith(k if k.endswith("/") else k + "/")
            for k in kernel_assets[asset]
        )
        if not found:
            raise GadgetError(
                f'{where}: cannot find wanted kernel content "{wanted}" in "{kernel_dir}"'
            )
        path = kernel_dir / wanted
    return LaidOutContent(
        kind="file",
        source=c.source,
        path=path,
        target=c.target,
        unpack=c.unpack,
        kernel_asset=asset,
        kernel_path=wanted,
    )
