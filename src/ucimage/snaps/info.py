"""``meta/snap.yaml``: parse and validate it the way snapd does.

:func:`parse_snap_yaml` turns the YAML text into a frozen :class:`SnapInfo`;
every rule snapd applies to the fields image building relies on (name,
version, type, base, confinement, grade, architectures, epoch, apps) is
checked, and a violation raises :class:`InvalidSnapYamlError` whose message
names the field, as ``snap pack`` would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import yaml

from ucimage.naming import valid_snap_name
from ucimage.snaps.errors import InvalidSnapYamlError
from ucimage.yaml_unique import load_unique

SnapType = Literal["app", "base", "core", "gadget", "kernel", "snapd", "os"]
SNAP_TYPES: tuple[str, ...] = ("app", "base", "core", "gadget", "kernel", "snapd", "os")
CONFINEMENTS: tuple[str, ...] = ("strict", "devmode", "classic")
GRADES: tuple[str, ...] = ("stable", "devel")

# versions: 1..32 chars, first alphanumeric, last not one of ":.-"
_VERSION = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9:.+~-]*[A-Za-z0-9+~])?$")
_APP_NAME = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9])*$")
_ARCH = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PROVENANCE = re.compile(r"^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$")


def load_yaml_strict(text: str | bytes) -> Any:
    """``yaml.safe_load`` that also rejects duplicate (and unhashable) keys."""
    return load_unique(text)


def validate_snap_name(name: object, what: str = "snap name") -> str:
    """Return *name* if it is a valid snap name, else raise with snapd's wording."""
    if not isinstance(name, str) or not name:
        raise InvalidSnapYamlError(f"invalid {what}: cannot be empty")
    if len(name) < 2 or len(name) > 40:
        raise InvalidSnapYamlError(
            f"invalid {what}: {name!r} (must be between 2 and 40 characters long)"
        )
    if not valid_snap_name(name):
        raise InvalidSnapYamlError(
            f"invalid {what}: {name!r}",
            hint="use lowercase letters, digits and single hyphens; at least one letter; "
            "no hyphen at either end",
        )
    return name


def validate_version(version: object) -> str:
    if not isinstance(version, str) or not version:
        raise InvalidSnapYamlError("invalid snap version: cannot be empty")
    if len(version) > 32:
        raise InvalidSnapYamlError(
            f"invalid snap version {version!r}: cannot be longer than 32 characters"
        )
    if not _VERSION.match(version):
        raise InvalidSnapYamlError(
            f"invalid snap version {version!r}: must be a printable string of letters, digits "
            "and ':.+~-', starting with a letter or digit and not ending in ':', '.' or '-'"
        )
    return version


@dataclass(frozen=True)
class SnapInfo:
    """The validated content of ``meta/snap.yaml``."""

    name: str
    version: str
    type: SnapType = "app"
    base: str | None = None
    confinement: str = "strict"
    grade: str = "stable"
    architectures: tuple[str, ...] = ("all",)
    summary: str = ""
    title: str = ""
    description: str = ""
    epoch: str = "0"
    provenance: str | None = None
    apps: tuple[str, ...] = ()
    #: the whole parsed document, for fields this class does not model
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: the original YAML text (the store's ``snap-yaml`` field)
    text: str = field(default="", compare=False, repr=False)

    @property
    def arch_label(self) -> str:
        """The architecture part of ``snap pack``'s file name: the arch, ``multi`` or ``all``."""
        if len(self.architectures) == 1:
            return self.architectures[0]
        return "multi" if self.architectures else "all"

    def supports_arch(self, arch: str) -> bool:
        return "all" in self.architectures or arch in self.architectures

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "base": self.base,
            "confinement": self.confinement,
            "grade": self.grade,
            "architectures": list(self.architectures),
            "summary": self.summary,
            "title": self.title,
            "description": self.description,
            "epoch": self.epoch,
            "provenance": self.provenance,
            "apps": list(self.apps),
        }


def _raw_scalar(text: str | bytes, key: str) -> str | None:
    """The literal text of a top-level scalar, so ``version: 1.10`` stays "1.10" as in Go."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    for key_node, value_node in root.value:
        if getattr(key_node, "value", None) == key and isinstance(value_node, yaml.ScalarNode):
            return str(value_node.value)
    return None


def _optional_str(doc: Mapping[str, Any], key: str, limit: int | None = None) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSnapYamlError(f"invalid snap.yaml: {key!r} must be a string")
    if limit is not None and len(value) > limit:
        raise InvalidSnapYamlError(f"{key} can have up to {limit} codepoints, got {len(value)}")
    return value


def _epoch(value: object) -> str:
    if value is None:
        return "0"
    if isinstance(value, bool):
        raise InvalidSnapYamlError(f"invalid epoch {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise InvalidSnapYamlError(f"invalid epoch {value!r}: cannot be negative")
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"(0|[1-9][0-9]*)\*?", value):
        return value
    if isinstance(value, Mapping) and set(value) <= {"read", "write"}:
        for part in value.values():
            if not isinstance(part, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in part
            ):
                raise InvalidSnapYamlError(f"invalid epoch {value!r}")
        return str(dict(value))
    raise InvalidSnapYamlError(f"invalid epoch {value!r}")


def parse_snap_yaml(text: str | bytes) -> SnapInfo:
    """Parse and validate ``meta/snap.yaml``; raise :class:`InvalidSnapYamlError` if bad."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidSnapYamlError("invalid snap.yaml: not UTF-8 text") from exc
    try:
        doc = load_yaml_strict(text)
    except yaml.YAMLError as exc:
        raise InvalidSnapYamlError(f"cannot parse snap.yaml: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidSnapYamlError("invalid snap.yaml: the document must be a mapping")
    for key in doc:
        if not isinstance(key, str):
            raise InvalidSnapYamlError(f"invalid snap.yaml: key {key!r} is not a string")

    name = validate_snap_name(doc.get("name"))
    raw_version = doc.get("version")
    if raw_version is None:
        raise InvalidSnapYamlError("invalid snap version: cannot be empty")
    if isinstance(raw_version, int | float) and not isinstance(raw_version, bool):
        raw_version = _raw_scalar(text, "version") or str(raw_version)
    version = validate_version(raw_version)

    snap_type = doc.get("type", "app")
    if snap_type not in SNAP_TYPES:
        raise InvalidSnapYamlError(
            f"invalid snap type: {snap_type!r}", hint=f"use one of: {', '.join(SNAP_TYPES)}"
        )

    base = doc.get("base")
    if base is not None:
        if not isinstance(base, str):
            raise InvalidSnapYamlError(f"invalid base name: {base!r}")
        if snap_type in ("os", "snapd", "core"):
            raise InvalidSnapYamlError(f'cannot have "base" field on {snap_type!r} snap')
        if base != "none":
            validate_snap_name(base, "base name")
        if base == name:
            raise InvalidSnapYamlError(f"cannot have {name!r} as its own base")

    confinement = doc.get("confinement", "strict")
    if confinement not in CONFINEMENTS:
        raise InvalidSnapYamlError(
            f"invalid confinement type: {confinement!r}",
            hint=f"use one of: {', '.join(CONFINEMENTS)}",
        )
    grade = doc.get("grade", "stable")
    if grade not in GRADES:
        raise InvalidSnapYamlError(
            f"invalid grade: {grade!r}", hint=f"use one of: {', '.join(GRADES)}"
        )

    archs_value = doc.get("architectures", ["all"])
    if isinstance(archs_value, str):
        archs_value = [archs_value]
    if not isinstance(archs_value, list) or not archs_value:
        raise InvalidSnapYamlError("invalid architectures: must be a non-empty list of names")
    archs: list[str] = []
    for arch in archs_value:
        if not isinstance(arch, str) or not _ARCH.match(arch):
            raise InvalidSnapYamlError(f"invalid architecture name: {arch!r}")
        if arch in archs:
            raise InvalidSnapYamlError(f"duplicate architecture: {arch!r}")
        archs.append(arch)
    if "all" in archs and len(archs) > 1:
        raise InvalidSnapYamlError("invalid architectures: 'all' cannot be combined with others")

    apps_value = doc.get("apps") or {}
    if not isinstance(apps_value, dict):
        raise InvalidSnapYamlError("invalid snap.yaml: 'apps' must be a mapping")
    for app_name, app in apps_value.items():
        if not isinstance(app_name, str) or not _APP_NAME.match(app_name):
            raise InvalidSnapYamlError(f"invalid app name: {app_name!r}")
        if app is not None and not isinstance(app, dict):
            raise InvalidSnapYamlError(f"invalid app {app_name!r}: must be a mapping")

    provenance = doc.get("provenance")
    if provenance is not None and (
        not isinstance(provenance, str)
        or len(provenance) > 255
        or not _PROVENANCE.match(provenance)
    ):
        raise InvalidSnapYamlError(f"invalid provenance: {provenance!r}")

    return SnapInfo(
        name=name,
        version=version,
        type=cast(SnapType, snap_type),
        base=base,
        confinement=str(confinement),
        grade=str(grade),
        architectures=tuple(archs),
        summary=_optional_str(doc, "summary", 128),
        title=_optional_str(doc, "title", 40),
        description=_optional_str(doc, "description", 4096),
        epoch=_epoch(doc.get("epoch")),
        provenance=provenance,
        apps=tuple(apps_value),
        raw=doc,
        text=text,
    )
