"""From a gadget :class:`~ucimage.gadget.VolumeLayout` to a :class:`DiskSpec`.

The layout says where everything goes; this adapter decides what the writer
does with it (ubuntu-image's rules, image-building.md §1.5-1.6):

* a partition entry for every structure with a partition number (UC20+
  boot/save/data have none: snapd creates them at install), type already split
  by schema, GPT name, MBR bootable flag; GUIDs derived from the seed (snapd
  ignores the gadget's ``id``);
* a filesystem on every such partition that declares one, with the gadget's
  content (``source``/``target``, ``$kernel:`` refs) or, for structures whose
  content the build makes (system-data, system-seed), a staging directory;
* bare content (``image:``) and the ``mbr`` blob at their offsets, bounded by the
  structure; ``offset-write`` values as little-endian uint32 start sectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from ucimage.gadget import LaidOutContent, LaidOutStructure, VolumeLayout
from ucimage.image.content import (
    load_kernel_assets,
    resolve_filesystem_content,
    resolve_image,
)
from ucimage.image.determinism import seed_and_timestamp
from ucimage.image.spec import (
    ContentEntry,
    ContentError,
    DiskSpec,
    FilesystemKind,
    FilesystemSpec,
    PartitionSpec,
    RawWrite,
)
from ucimage.image.writer import WrittenDisk, write_disk


class ContentResolver(Protocol):
    """Where the bytes of a structure's content come from."""

    def filesystem_content(
        self, structure: LaidOutStructure
    ) -> Path | tuple[ContentEntry, ...]: ...

    def image_file(self, structure: LaidOutStructure, content: LaidOutContent) -> Path: ...


def describe(structure: LaidOutStructure) -> str:
    name = structure.structure_name or structure.name or f"#{structure.yaml_index}"
    return f' of structure "{name}"'


@dataclass
class GadgetContentResolver:
    """Resolves content from an unpacked gadget (and kernel) snap.

    ``staged`` maps a role or structure name to a directory the build prepared
    (``system-data`` → the writable tree, ``system-seed`` → the seed); its tree
    is copied after the structure's gadget content (so it wins on conflicts).
    """

    gadget_dir: Path
    kernel_dir: Path | None = None
    staged: Mapping[str, Path] = field(default_factory=dict)
    _assets: dict[str, tuple[str, ...]] | None = field(default=None, init=False)

    def _kernel_assets(self) -> dict[str, tuple[str, ...]] | None:
        if self._assets is None and self.kernel_dir is not None:
            self._assets = load_kernel_assets(self.kernel_dir)
        return self._assets

    def filesystem_content(self, structure: LaidOutStructure) -> Path | tuple[ContentEntry, ...]:
        pairs = [(c.source, c.target or "") for c in structure.content if c.kind == "file"]
        entries = resolve_filesystem_content(
            pairs,
            self.gadget_dir,
            kernel_dir=self.kernel_dir,
            kernel_assets=self._kernel_assets(),
            what=describe(structure),
        )
        for key in (structure.structure_name, structure.name, structure.role):
            if key and key in self.staged:
                # the build's tree goes on top of the gadget's own content
                staged = ContentEntry(self.staged[key], PurePosixPath("/"), contents_only=True)
                return (*entries, staged)
        return entries

    def image_file(self, structure: LaidOutStructure, content: LaidOutContent) -> Path:
        return resolve_image(content.source, self.gadget_dir, what=describe(structure))


def spec_from_layout(
    layout: VolumeLayout,
    resolver: ContentResolver,
    *,
    path: Path,
    seed: bytes,
    timestamp: int,
) -> DiskSpec:
    """The writer's spec for one laid-out volume."""
    partitions: list[PartitionSpec] = []
    raw: list[RawWrite] = []
    for s in layout.structures:
        if not s.in_image:
            continue
        if s.partition_number is not None:
            assert s.partition_type is not None
            fs = None
            if s.filesystem is not None:
                fs = FilesystemSpec(
                    kind=_kind(s.filesystem),
                    label=s.label or None,
                    content=resolver.filesystem_content(s),
                )
            partitions.append(
                PartitionSpec(
                    number=s.partition_number,
                    start=s.start,
                    size=s.size,
                    type=s.partition_type,
                    name=s.name,
                    bootable=s.bootable,
                    filesystem=fs,
                )
            )
        if s.filesystem is None:
            for c in s.content:
                if c.kind != "image":
                    continue
                start = c.start if c.start is not None else s.start
                raw.append(
                    RawWrite(
                        offset=start,
                        source=resolver.image_file(s, c),
                        limit=s.start + s.size - start,
                        what=f'image "{c.source}"{describe(s)}',
                    )
                )
    for s in layout.structures:
        if s.offset_write is not None:
            raw.append(
                RawWrite(
                    offset=s.offset_write.at,
                    data=s.offset_write.to_bytes(),
                    what=f"offset-write{describe(s)}",
                )
            )
    return DiskSpec(
        path=path,
        size=layout.size,
        sector_size=layout.sector_size,
        schema=layout.schema,
        partitions=tuple(partitions),
        raw_writes=tuple(raw),
        seed=seed,
        timestamp=timestamp,
        name=layout.name,
    )


def _kind(filesystem: str) -> FilesystemKind:
    if filesystem == "ext4":
        return "ext4"
    if filesystem == "vfat":
        return "vfat"
    if filesystem == "vfat-16":
        return "vfat-16"
    if filesystem == "vfat-32":
        return "vfat-32"
    raise ContentError(f"unsupported filesystem {filesystem!r}")


def write_volume_images(
    layouts: list[VolumeLayout],
    resolver: ContentResolver,
    out_dir: Path,
    *,
    explicit_seed: str | None = None,
    bmap: bool = False,
    zstd: bool = False,
    workdir: Path | None = None,
) -> list[WrittenDisk]:
    """One ``<volume>.img`` per layout (ubuntu-image's names), seeded per volume.

    The seed comes from ``explicit_seed`` (``--seed``) or ``SOURCE_DATE_EPOCH``
    and the volume name (see :func:`ucimage.image.determinism.seed_and_timestamp`).
    """
    written = []
    for layout in layouts:
        seed, timestamp = seed_and_timestamp(layout.name, explicit=explicit_seed)
        image = out_dir / f"{layout.name}.img"
        spec = spec_from_layout(layout, resolver, path=image, seed=seed, timestamp=timestamp)
        written.append(
            write_disk(
                spec,
                workdir=workdir,
                bmap=image.with_suffix(".bmap") if bmap else None,
                zstd=image.with_name(image.name + ".zst") if zstd else None,
            )
        )
    return written
