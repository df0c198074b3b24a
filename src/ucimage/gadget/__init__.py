"""Gadget snaps: gadget.yaml parsed and validated with snapd's rules, and laid out.

Public API (stable; fields are only ever added, never renamed):

``load_gadget(path, *, model=None) -> GadgetInfo``
    *path* is a gadget.yaml, an unpacked gadget snap directory (reads
    ``meta/gadget.yaml``) or a ``.snap``.  Parses with PyYAML's safe loader
    (duplicate keys rejected), applies snapd's implicit values (schema gpt,
    min-size = size, implicit offsets with the 1 MiB rule, roles from legacy
    ``type: mbr`` / ``filesystem-label: system-boot``, implicit labels), sorts
    structures by offset, validates every rule and appends ubuntu-image's
    implicit ``writable`` system-data to single-volume UC16/18 gadgets.
    Raises :class:`GadgetError` (a :class:`~ucimage.errors.UcimageError`)
    whose message uses snapd's wording and names the volume and structure;
    ``GadgetError.problems`` lists every problem found.
    ``model`` (:class:`ModelContext`) says what the model assertion would;
    without it the ruleset is inferred (a system-seed means UC20+).

``GadgetInfo``
    ``volumes: dict[str, Volume]`` (YAML order), ``defaults``, ``connections``
    (tuple of :class:`Connection`), ``kernel_cmdline``, ``ruleset``
    (``"uc16"``/``"uc20"``), ``root`` (gadget dir or None), ``warnings``.

``Volume``
    ``name``, ``schema`` (``gpt``/``mbr``/``emmc``), ``bootloader``, ``id``,
    ``partial``, ``structures`` (tuple of :class:`Structure`, sorted by offset),
    ``root``, ``seeded``; ``size``/``min_size`` (end of the last structure),
    ``produces_image`` (False for eMMC volumes).

``Structure``
    ``name``, ``label``, ``offset``, ``offset_write``
    (:class:`~ucimage.gadget.quantity.RelativeOffset`), ``size``, ``min_size``,
    ``type`` (:class:`StructureType`: ``kind``, ``mbr_id``, ``guid``,
    ``for_schema(schema)``), ``role`` ("" if none), ``id``, ``filesystem``
    (None if none), ``content`` (tuple of :class:`Content`), ``update``,
    ``yaml_index``, ``implicit`` (the appended writable) and helpers
    ``is_partition``, ``has_filesystem``, ``display_name``.

``lay_out_volume(volume, *, sector_size=512, image_size=None,
system_data_size=None, gadget_dir=None, kernel_dir=None, seeded=None) -> VolumeLayout``
    The exact byte plan of one disk image (rules in :mod:`ucimage.gadget.layout`).
    ``image_size`` must hold the layout plus the backup GPT; ``system_data_size``
    sizes the implicit writable (see :func:`system_data_size_for_content`);
    ``gadget_dir`` defaults to ``volume.root``; ``seeded`` to ``volume.seeded``.
    Raises :class:`GadgetError` (also for eMMC and partial volumes).

``VolumeLayout(name, schema ('gpt'|'mbr'), sector_size, size, structures, ...)``
    ``structures``: tuple of :class:`LaidOutStructure` in disk order;
    ``partitions`` those with a partition number; ``to_json()``.

``LaidOutStructure(name, start, size, partition_number, partition_type, role,
filesystem, label, content, offset_write, ...)``
    ``name`` is the GPT partition name (``writable`` for an unnamed
    system-data); ``start``/``size`` in bytes (partitions start on a sector
    boundary; filesystems are made exactly ``size`` bytes); ``partition_number``
    None for bare structures, the mbr and structures snapd creates at install
    (``in_image`` False: UC20+ boot/save/data); ``partition_type`` the GUID
    (gpt) or two hex digits (mbr), hybrid types split by schema; ``bootable``
    (MBR system-boot); ``content``: tuple of :class:`LaidOutContent` (``kind``
    ``file`` → ``path`` to ``target``; ``image`` → ``path`` at absolute
    ``start``; ``$kernel:`` refs carry ``kernel_asset``/``kernel_path`` and a
    ``path`` once a kernel dir is given); ``offset_write``:
    :class:`OffsetWrite` (``at`` byte, LE32 ``value`` = start sector).
"""

from ucimage.gadget.errors import GadgetError
from ucimage.gadget.layout import (
    DEFAULT_SYSTEM_DATA_SIZE,
    LaidOutContent,
    LaidOutStructure,
    OffsetWrite,
    VolumeLayout,
    lay_out_volume,
    system_data_size_for_content,
)
from ucimage.gadget.load import load_gadget
from ucimage.gadget.model import (
    Connection,
    Content,
    GadgetInfo,
    KernelCmdline,
    ModelContext,
    Structure,
    StructureType,
    Update,
    Volume,
)
from ucimage.gadget.parse import parse_gadget_yaml
from ucimage.gadget.quantity import RelativeOffset

__all__ = [
    "DEFAULT_SYSTEM_DATA_SIZE",
    "Connection",
    "Content",
    "GadgetError",
    "GadgetInfo",
    "KernelCmdline",
    "LaidOutContent",
    "LaidOutStructure",
    "ModelContext",
    "OffsetWrite",
    "RelativeOffset",
    "Structure",
    "StructureType",
    "Update",
    "Volume",
    "VolumeLayout",
    "lay_out_volume",
    "load_gadget",
    "parse_gadget_yaml",
    "system_data_size_for_content",
]
