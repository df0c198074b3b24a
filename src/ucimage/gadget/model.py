"""Typed, validated, immutable gadget.yaml objects.

Produced by :func:`ucimage.gadget.parse.parse_gadget_yaml`; never built by hand
elsewhere.  Field names follow gadget.yaml (``filesystem-label`` → ``label``,
``min-size`` → ``min_size``); values are already normalised: sizes in bytes,
implicit offsets, roles and labels applied, structures sorted by offset as
snapd does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ucimage.gadget.quantity import RelativeOffset

# roles (snapd gadget.go)
ROLE_MBR = "mbr"
ROLE_SYSTEM_BOOT = "system-boot"
ROLE_SYSTEM_DATA = "system-data"
ROLE_SYSTEM_SEED = "system-seed"
ROLE_SYSTEM_SEED_NULL = "system-seed-null"
ROLE_SYSTEM_SAVE = "system-save"
ROLE_SYSTEM_BOOT_IMAGE = "system-boot-image"
ROLE_SYSTEM_SEED_IMAGE = "system-seed-image"
ROLE_SYSTEM_BOOT_SELECT = "system-boot-select"
ROLE_SYSTEM_SEED_SELECT = "system-seed-select"
ROLE_SYSTEM_BOOT_STATE = "system-boot-state"
ROLE_LEGACY_BOOTIMG = "bootimg"
ROLE_LEGACY_BOOTSELECT = "bootselect"

#: every role a structure may declare ("" = no role)
ROLES: tuple[str, ...] = (
    ROLE_MBR,
    ROLE_SYSTEM_BOOT,
    ROLE_SYSTEM_DATA,
    ROLE_SYSTEM_SEED,
    ROLE_SYSTEM_SEED_NULL,
    ROLE_SYSTEM_SAVE,
    ROLE_SYSTEM_BOOT_IMAGE,
    ROLE_SYSTEM_SEED_IMAGE,
    ROLE_SYSTEM_BOOT_SELECT,
    ROLE_SYSTEM_SEED_SELECT,
    ROLE_SYSTEM_BOOT_STATE,
    ROLE_LEGACY_BOOTIMG,
    ROLE_LEGACY_BOOTSELECT,
)

SCHEMA_GPT = "gpt"
SCHEMA_MBR = "mbr"
SCHEMA_EMMC = "emmc"

BOOTLOADERS: tuple[str, ...] = ("grub", "u-boot", "android-boot", "lk", "piboot")
FILESYSTEMS: tuple[str, ...] = ("ext4", "vfat", "vfat-16", "vfat-32")

#: the MBR boot code area (the partition table starts at byte 446)
SIZE_MBR = 446
#: the little-endian 32-bit LBA ``offset-write`` stores
SIZE_LBA48_POINTER = 4
#: where a non-mbr structure without an explicit offset starts at the earliest
NON_MBR_START_OFFSET = 1 << 20

#: label and type of the ext4 ``writable`` structure ubuntu-image appends to
#: single-volume UC16/18 gadgets that declare no system-data
IMPLICIT_SYSTEM_DATA_LABEL = "writable"
IMPLICIT_SYSTEM_DATA_TYPE = "83,0FC63DAF-8483-4772-8E79-3D69D8477DE4"

Ruleset = Literal["uc16", "uc20"]


@dataclass(frozen=True)
class ModelContext:
    """What snapd would know from the model assertion (optional).

    Without one, :func:`ucimage.gadget.load_gadget` infers it like
    ubuntu-image: a gadget with a ``system-seed``/``system-seed-null`` role is a
    UC20+ ("has modes") gadget, anything else follows the UC16/18 rules.
    """

    #: the model is classic (``classic: true``)
    classic: bool = False
    #: the model has a ``grade`` (UC20+ or classic with modes)
    has_modes: bool = False

    @property
    def ruleset(self) -> Ruleset:
        return "uc20" if self.has_modes else "uc16"


@dataclass(frozen=True)
class StructureType:
    """A structure ``type`` in one of its forms.

    ``kind`` is ``bare`` (not a partition), ``mbr`` (legacy spelling of the mbr
    role), ``mbr-id`` (two upper-case hex digits), ``guid``, ``hybrid``
    (``XX,GUID``) or ``none`` (no type; only on eMMC volumes).
    """

    raw: str
    kind: Literal["bare", "mbr", "mbr-id", "guid", "hybrid", "none"]
    #: the two-hex-digit MBR partition type (mbr-id and hybrid)
    mbr_id: str | None = None
    #: the GPT partition type GUID, upper case (guid and hybrid)
    guid: str | None = None

    def for_schema(self, schema: str) -> str | None:
        """The partition type to write in a *schema* table (None: not a partition)."""
        if schema == SCHEMA_GPT:
            return self.guid
        if schema == SCHEMA_MBR:
            return self.mbr_id
        return None

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True)
class Content:
    """One ``content`` entry.

    Filesystem structures use ``source``/``target`` (``unpack``); bare and
    filesystem-less structures use ``image`` with an optional ``offset`` (within
    the structure) and ``size``.
    """

    source: str | None = None
    target: str | None = None
    unpack: bool = False
    image: str | None = None
    offset: int | None = None
    size: int | None = None

    @property
    def kind(self) -> Literal["file", "image"]:
        return "image" if self.image is not None else "file"

    @property
    def kernel_ref(self) -> tuple[str, str] | None:
        """``(asset, path)`` of a ``$kernel:<asset>/<path>`` source, else None."""
        if self.source is None or not self.source.startswith("$kernel:"):
            return None
        asset, _, path = self.source[len("$kernel:") :].partition("/")
        return asset, path

    def __str__(self) -> str:
        if self.image is not None:
            return f"image:{self.image}"
        return f"source:{self.source}"

    def to_json(self) -> dict[str, object]:
        if self.image is not None:
            return {"image": self.image, "offset": self.offset, "size": self.size}
        return {"source": self.source, "target": self.target, "unpack": self.unpack}


@dataclass(frozen=True)
class Update:
    """A structure's ``update`` stanza (used by gadget refreshes, not by builds)."""

    edition: int = 0
    preserve: tuple[str, ...] = ()


@dataclass(frozen=True)
class Structure:
    """One ``structure`` entry of a volume, implicit values applied."""

    volume_name: str
    #: index in the YAML list (the implicit writable gets ``len(structure)``)
    yaml_index: int
    #: ``name`` ("" when absent); the GPT partition name
    name: str
    #: ``filesystem-label`` (None when absent and not implied by the role)
    label: str | None
    #: start offset in bytes; None only after a variable-size structure
    offset: int | None
    #: ``offset-write``
    offset_write: RelativeOffset | None
    size: int
    #: ``min-size``, defaulting to ``size``
    min_size: int
    type: StructureType
    #: role ("" for none); legacy ``type: mbr`` and (UC16/18)
    #: ``filesystem-label: system-boot`` are turned into roles
    role: str
    #: ``id``: GPT partition UUID (informational; the writer derives its own)
    id: str | None
    #: ``ext4``, ``vfat``, ``vfat-16``, ``vfat-32``, or None (``none``/absent)
    filesystem: str | None
    content: tuple[Content, ...]
    update: Update = field(default_factory=Update)
    #: whether ``offset`` was written in the YAML (False: implicit)
    explicit_offset: bool = True
    #: whether ``filesystem-label`` was implied by the role
    implicit_label: bool = False
    #: the ``writable`` system-data ubuntu-image appends (no YAML entry); its
    #: size is decided when the image is laid out
    implicit: bool = False

    @property
    def display_name(self) -> str:
        """``#i ("name")`` as snapd prints a structure."""
        if self.name:
            return f'#{self.yaml_index} ("{self.name}")'
        return f"#{self.yaml_index}"

    @property
    def is_mbr(self) -> bool:
        return self.role == ROLE_MBR

    @property
    def is_partition(self) -> bool:
        """True when the structure gets an entry in the partition table."""
        return self.type.kind not in ("bare", "mbr", "none") and self.role != ROLE_MBR

    @property
    def has_filesystem(self) -> bool:
        return self.filesystem is not None

    @property
    def linux_filesystem(self) -> str | None:
        """``ext4`` or ``vfat`` (vfat-16/vfat-32 are both ``vfat``)."""
        if self.filesystem in ("vfat-16", "vfat-32"):
            return "vfat"
        return self.filesystem

    @property
    def is_fixed_size(self) -> bool:
        return self.size == self.min_size and not self.implicit

    def has_label(self, label: str) -> bool:
        """Label comparison as snapd does it (case-insensitive on vfat)."""
        if self.label is None:
            return False
        if self.linux_filesystem == "vfat":
            return self.label.lower() == label.lower()
        return self.label == label

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "yaml-index": self.yaml_index,
            "filesystem-label": self.label,
            "offset": self.offset,
            "offset-write": str(self.offset_write) if self.offset_write else None,
            "size": self.size,
            "min-size": self.min_size,
            "type": self.type.raw,
            "role": self.role or None,
            "id": self.id,
            "filesystem": self.filesystem,
            "content": [c.to_json() for c in self.content],
            "update": {"edition": self.update.edition, "preserve": list(self.update.preserve)},
            "implicit": self.implicit,
        }


@dataclass(frozen=True)
class Volume:
    """A volume: one disk (image) of the device."""

    name: str
    #: ``gpt`` (default), ``mbr`` or ``emmc``; None only for partial schemas
    schema: str | None
    bootloader: str | None
    #: ``id``: disk id (2 hex digits or a GUID), informational
    id: str | None
    #: ``partial`` properties (classic/installer gadgets)
    partial: tuple[str, ...]
    #: structures sorted by offset, like snapd
    structures: tuple[Structure, ...]
    #: root of the unpacked gadget, for resolving content (None if unknown)
    root: Path | None = None
    #: the gadget has a system-seed (UC20+ build: snapd makes boot/save/data)
    seeded: bool = False

    @property
    def size(self) -> int:
        """End of the last structure, using ``size`` (snapd's ``Volume.Size``)."""
        return self._end(use_min=False)

    @property
    def min_size(self) -> int:
        """End of the last structure, using ``min-size`` (``Volume.MinSize``)."""
        return self._end(use_min=True)

    def _end(self, *, use_min: bool) -> int:
        end = 0
        for s in self.structures:
            size = s.min_size if use_min else s.size
            end = s.offset + size if s.offset is not None else end + size
        return end

    @property
    def produces_image(self) -> bool:
        """eMMC hardware partitions get no disk image (ubuntu-image skips them)."""
        return self.schema != SCHEMA_EMMC

    def structure(self, name: str) -> Structure:
        """The structure called *name* (KeyError if none)."""
        for s in self.structures:
            if s.name == name:
                return s
        raise KeyError(name)

    def has_role(self, role: str) -> bool:
        return any(s.role == role for s in self.structures)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "schema": self.schema,
            "bootloader": self.bootloader,
            "id": self.id,
            "partial": list(self.partial),
            "structure": [s.to_json() for s in self.structures],
        }


@dataclass(frozen=True)
class Connection:
    """A ``connections`` entry; a missing slot means ``system:<plug>``."""

    plug_snap_id: str
    plug: str
    slot_snap_id: str
    slot: str

    def to_json(self) -> dict[str, str]:
        return {
            "plug": f"{self.plug_snap_id}:{self.plug}",
            "slot": f"{self.slot_snap_id}:{self.slot}",
        }


@dataclass(frozen=True)
class KernelCmdline:
    """The ``kernel-cmdline`` stanza."""

    allow: tuple[str, ...] = ()
    append: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class GadgetInfo:
    """A parsed and validated gadget.yaml."""

    #: volume name → volume, in YAML order
    volumes: dict[str, Volume]
    #: ``defaults``: "system" or a snap id → configuration tree
    defaults: dict[str, Any] = field(default_factory=dict)
    connections: tuple[Connection, ...] = ()
    kernel_cmdline: KernelCmdline = field(default_factory=KernelCmdline)
    #: rules applied: ``uc16`` (UC16/18, no modes) or ``uc20`` (has modes)
    ruleset: Ruleset = "uc16"
    #: classic model with modes (a ``system-seed-null`` gadget)
    classic_with_modes: bool = False
    #: root of the unpacked gadget (content sources resolve against it);
    #: None when only a gadget.yaml (outside ``meta/``) or a .snap was given
    root: Path | None = None
    #: where the gadget.yaml came from (for messages)
    origin: str = "gadget.yaml"
    #: warnings snapd/ubuntu-image would print (e.g. GPT header overlap)
    warnings: tuple[str, ...] = ()

    __hash__ = None  # type: ignore[assignment]  # holds dicts

    @property
    def has_modes(self) -> bool:
        return self.ruleset == "uc20"

    def volume(self, name: str) -> Volume:
        return self.volumes[name]

    def to_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "ruleset": self.ruleset,
            "volumes": {name: v.to_json() for name, v in self.volumes.items()},
            "defaults": self.defaults,
            "connections": [c.to_json() for c in self.connections],
            "kernel-cmdline": {
                "allow": list(self.kernel_cmdline.allow),
                "append": list(self.kernel_cmdline.append),
                "remove": list(self.kernel_cmdline.remove),
            },
            "warnings": list(self.warnings),
        }
