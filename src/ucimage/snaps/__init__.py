"""Snaps: read, digest and pack ``.snap`` files (squashfs), rootless.

Stable API (other packages import these names from ``ucimage.snaps``):

``SnapFile(path)``
    A ``.snap`` on disk, read with ``unsquashfs`` (no mounts, no root).
    Raises :class:`NotASnapError` if the file is missing or not squashfs.

    * ``.info`` -> :class:`SnapInfo` (validated ``meta/snap.yaml``; raises
      :class:`InvalidSnapYamlError`)
    * ``.gadget_yaml`` -> ``bytes | None`` (raw ``meta/gadget.yaml``)
    * ``.read_file(path) -> bytes`` (raises :class:`SnapFileNotFoundError`),
      ``.read_file_or_none(path)``
    * ``.list() -> list[str]`` (``a/b`` paths, directories included),
      ``.list_long() -> list[(mode, path, size)]``
    * ``.extract(dest, paths=None) -> Path``
    * ``.size``, ``.sha3_384_hex``, ``.sha3_384_b64url`` (streamed, computed once)

``SnapInfo``
    Frozen dataclass: ``name, version, type`` (app|base|core|gadget|kernel|snapd|os,
    default app), ``base, confinement`` (strict|devmode|classic), ``grade``
    (stable|devel), ``architectures`` (tuple, default ``("all",)``), ``summary,
    title, description, epoch, provenance, apps`` (names), ``raw`` (whole
    document), ``text`` (YAML text); ``.arch_label``, ``.supports_arch(arch)``,
    ``.to_json()``.

``parse_snap_yaml(text) -> SnapInfo``, ``validate_snap_name(name)``,
``validate_version(version)``, ``load_yaml_strict(text)`` (safe, duplicate keys rejected).

``digest_file(path) -> (hex, b64url, size)``: SHA3-384 of a whole file in constant memory;
``hex_to_b64url``, ``b64url_to_hex``.

``pack(src_dir, out_dir=None) -> Path``: like ``snap pack`` (``mksquashfs -noappend -comp xz
-no-fragments -all-root -no-xattrs``), output ``NAME_VERSION_ARCH.snap``, reproducible under
``SOURCE_DATE_EPOCH``; refuses an invalid snap.yaml or an unusable directory with a
:class:`SnapError` before writing anything.

Errors: :class:`SnapError` (base, a :class:`ucimage.errors.UcimageError`),
:class:`InvalidSnapYamlError`, :class:`NotASnapError`, :class:`SnapFileNotFoundError`.
"""

from __future__ import annotations

from ucimage.snaps.digest import b64url, b64url_to_hex, digest_file, hex_to_b64url
from ucimage.snaps.errors import (
    InvalidSnapYamlError,
    NotASnapError,
    SnapError,
    SnapFileNotFoundError,
)
from ucimage.snaps.file import SnapFile, is_squashfs
from ucimage.snaps.info import (
    SNAP_TYPES,
    SnapInfo,
    SnapType,
    load_yaml_strict,
    parse_snap_yaml,
    validate_snap_name,
    validate_version,
)
from ucimage.snaps.pack import pack, snap_file_name

__all__ = [
    "SNAP_TYPES",
    "InvalidSnapYamlError",
    "NotASnapError",
    "SnapError",
    "SnapFile",
    "SnapFileNotFoundError",
    "SnapInfo",
    "SnapType",
    "b64url",
    "b64url_to_hex",
    "digest_file",
    "hex_to_b64url",
    "is_squashfs",
    "load_yaml_strict",
    "pack",
    "parse_snap_yaml",
    "snap_file_name",
    "validate_snap_name",
    "validate_version",
]
