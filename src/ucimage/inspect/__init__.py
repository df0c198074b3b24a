"""Inspect an Ubuntu Core disk image without root or mounts.

Stable API (import these names from ``ucimage.inspect``):

``inspect_image(image, workdir, *, verify=False, trusted=(), checker=None, with_snaps=True)``
    returns an :class:`ImageReport`.
    Reads the partition table (own GPT/MBR parser, CRC-checked), probes each
    partition's filesystem by its superblock (ext2/3/4, vfat, squashfs), finds
    the seed (UC16/18 ``writable:/system-data/var/lib/snapd/seed``, UC20+
    ``ubuntu-seed:/snaps`` + ``/systems/<label>``), copies it under *workdir*
    (``debugfs`` / mtools; the caller deletes *workdir*), reads the boot
    environments (grubenv, u-boot env with CRC; lk envs as files and as the raw
    content of bare ``snapbootsel``/``snaprecoverysel`` partitions), and with ``verify`` checks
    every seed assertion against the trust database (built-in roots plus the
    *trusted* files), every asserted snap's SHA3-384 and size against its
    snap-revision, the model's required snaps, and that the boot environment
    is intact and names the seeded kernel/base (UC16/18) or recovery system
    (UC20+).  *trusted* also names publishers that are trusted roots (a
    self-hosted store's root account is not in the seed).  ``with_snaps=False``
    reads only the assertions (what ``--model`` needs).  *checker* replaces the
    trust database (tests).  Raises :class:`InspectError` subclasses (not a
    file, compressed, unreadable table, inconsistent seed); a damaged
    filesystem or table copy is a ``problems`` entry, not an error.

``ImageReport``: ``path, size, table`` (:class:`PartitionTable`), ``filesystems``,
``seed`` (:class:`Seed` or None: ``layout`` uc16|uc20, ``model`` assertion,
``snaps`` of :class:`SeedSnap` with the ``snap list`` columns, ``problems``),
``bootenvs`` (:class:`BootEnvFile`: ``partition, path, env, raw, name``),
``verify`` (:class:`VerifyReport`: ``ok``, ``checks``, ``failures``),
``volume`` (:class:`GadgetVolume` or None: the seeded gadget's volume and, per
partition, the structure it was made from, matched by offset, name, label).

``render_text(report)``, ``to_json(report)`` (stable dict: ``format, image,
volumes, partitions, filesystems, seed {model, snaps, snap-list, …}, bootenv [{partition,
path (null when raw), format, valid, problems, vars, raw, partition-name, details}],
verify {ok, checks, failures}, problems``), ``snap_list(seed)`` (the device's
``snap list`` table; ``unicode=False`` gives snap's ASCII marks), ``known_model(seed)``
(the bytes ``snap known model`` prints).

CLI: ``ucimage inspect IMAGE [--json | --model | --snap-list] [--verify] [--trusted FILE]...
[--unicode always|never|auto]``; exit 1 when ``--verify`` finds a failure (each named
on stderr).

Lower level: :func:`read_partition_table`, :func:`probe_filesystem`,
:func:`parse_grubenv`, :func:`parse_uboot_env`, :func:`parse_lk_env`, ``ExtReader``/``VfatReader``
(:mod:`ucimage.inspect.fsread`).
"""

from __future__ import annotations

from ucimage.inspect.bootenv import (
    BootEnv,
    parse_bootenv,
    parse_grubenv,
    parse_lk_env,
    parse_uboot_env,
)
from ucimage.inspect.errors import (
    FilesystemReadError,
    InspectError,
    PartitionTableError,
    SeedError,
)
from ucimage.inspect.filesystems import Filesystem, probe_filesystem
from ucimage.inspect.image import (
    BootEnvFile,
    GadgetStructure,
    GadgetVolume,
    ImageReport,
    PartitionFilesystem,
    inspect_image,
)
from ucimage.inspect.partitions import Partition, PartitionTable, read_partition_table
from ucimage.inspect.render import JSON_FORMAT, known_model, render_text, snap_list, to_json
from ucimage.inspect.seed import Seed, SeedSnap, tracking_channel
from ucimage.inspect.verify import Check, VerifyReport

__all__ = [
    "JSON_FORMAT",
    "BootEnv",
    "BootEnvFile",
    "Check",
    "Filesystem",
    "FilesystemReadError",
    "GadgetStructure",
    "GadgetVolume",
    "ImageReport",
    "InspectError",
    "Partition",
    "PartitionFilesystem",
    "PartitionTable",
    "PartitionTableError",
    "Seed",
    "SeedError",
    "SeedSnap",
    "VerifyReport",
    "inspect_image",
    "known_model",
    "parse_bootenv",
    "parse_grubenv",
    "parse_lk_env",
    "parse_uboot_env",
    "probe_filesystem",
    "read_partition_table",
    "render_text",
    "snap_list",
    "to_json",
    "tracking_channel",
]
