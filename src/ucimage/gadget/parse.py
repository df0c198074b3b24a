"""gadget.yaml → :class:`~ucimage.gadget.model.GadgetInfo`, with snapd's rules.

The steps follow snapd's ``InfoFromGadgetYaml`` + ``Validate``
(image-building.md §3):

1. YAML (safe loader, duplicate keys rejected; scalars keep their source text
   because snapd reads sizes and names as strings);
2. per volume: ``partial`` values, implicit values (schema, min-size, roles,
   labels, offsets with the 1 MiB rule), sorting by offset, per-structure
   rules, unique names, mbr/offset-write/overlap rules, bootloader;
3. across volumes: bootloader count, role consistency, reserved labels;
4. ubuntu-image's rules: content paths must not escape the gadget (``../``),
   and a single-volume gadget without system-data gets an implicit
   ``writable`` ext4 structure after the last one.

Problems are collected (per structure, then per volume, then across volumes)
so one run reports everything that is independently wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ucimage.gadget.errors import GadgetError
from ucimage.gadget.model import (
    BOOTLOADERS,
    FILESYSTEMS,
    IMPLICIT_SYSTEM_DATA_LABEL,
    IMPLICIT_SYSTEM_DATA_TYPE,
    NON_MBR_START_OFFSET,
    ROLE_LEGACY_BOOTIMG,
    ROLE_LEGACY_BOOTSELECT,
    ROLE_MBR,
    ROLE_SYSTEM_BOOT,
    ROLE_SYSTEM_BOOT_IMAGE,
    ROLE_SYSTEM_BOOT_SELECT,
    ROLE_SYSTEM_BOOT_STATE,
    ROLE_SYSTEM_DATA,
    ROLE_SYSTEM_SAVE,
    ROLE_SYSTEM_SEED,
    ROLE_SYSTEM_SEED_IMAGE,
    ROLE_SYSTEM_SEED_NULL,
    ROLE_SYSTEM_SEED_SELECT,
    SCHEMA_EMMC,
    SCHEMA_GPT,
    SCHEMA_MBR,
    SIZE_LBA48_POINTER,
    SIZE_MBR,
    Connection,
    Content,
    GadgetInfo,
    KernelCmdline,
    ModelContext,
    Ruleset,
    Structure,
    StructureType,
    Update,
    Volume,
)
from ucimage.gadget.quantity import (
    QuantityError,
    RelativeOffset,
    parse_offset,
    parse_relative_offset,
    parse_size,
)
from ucimage.yaml_unique import UniqueKeyLoader

VALID_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]+$")
VALID_TYPE_ID = re.compile(r"^[0-9A-F]{2}$")
VALID_GUID = re.compile(
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
VALID_SNAP_ID = re.compile(r"^[a-z0-9A-Z]{32}$")
VALID_ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*$")
PARTIAL_PROPERTIES = ("size", "filesystem", "schema", "structure")

_STRUCTURE_KEYS = {
    "name",
    "filesystem-label",
    "offset",
    "offset-write",
    "min-size",
    "size",
    "type",
    "role",
    "id",
    "filesystem",
    "content",
    "update",
}
_VOLUME_KEYS = {"schema", "bootloader", "id", "structure", "partial"}
_TOP_KEYS = {"volumes", "defaults", "connections", "kernel-cmdline"}
#: keys old gadgets carry that snapd no longer reads (silently accepted)
_LEGACY_TOP_KEYS = {"device-tree", "device-tree-origin", "format"}

_UBUNTU_SEED = "ubuntu-seed"
_UBUNTU_BOOT = "ubuntu-boot"
_UBUNTU_DATA = "ubuntu-data"
_UBUNTU_SAVE = "ubuntu-save"


# --------------------------------------------------------------------------- YAML


class YamlInt(int):
    """An int that remembers how the YAML wrote it (snapd reads the text)."""

    text: str

    def __new__(cls, value: int, text: str) -> YamlInt:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class YamlFloat(float):
    """A float that remembers how the YAML wrote it."""

    text: str

    def __new__(cls, value: float, text: str) -> YamlFloat:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class _Loader(UniqueKeyLoader):
    """Safe loader: duplicate keys are errors; numbers keep their text."""


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> YamlInt:
    return YamlInt(loader.construct_yaml_int(node), str(node.value))


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> YamlFloat:
    return YamlFloat(loader.construct_yaml_float(node), str(node.value))


def _construct_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    return str(node.value)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
# dates stay text, like everything snapd reads as a string
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)
_Loader.add_constructor("tag:yaml.org,2002:binary", _construct_text)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``line L, column C: problem (context at line L)`` without source snippets."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem is None:
        return " ".join(str(exc).split())
    where = ""
    if exc.problem_mark is not None:
        where = f"line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}: "
    context = ""
    if exc.context:
        context = f" ({exc.context}"
        if exc.context_mark is not None:
            context += f" at line {exc.context_mark.line + 1}"
        context += ")"
    return f"{where}{exc.problem}{context}"


def load_yaml(text: str, origin: str = "gadget.yaml") -> Any:
    """Parse *text* with the safe loader; :class:`GadgetError` on bad YAML."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        detail = _yaml_problem(exc)
        raise GadgetError(
            f"cannot parse gadget metadata: {detail}",
            hint=f"fix the YAML syntax of {origin}",
        ) from None
    except RecursionError:
        raise GadgetError("cannot parse gadget metadata: nesting too deep") from None


# ------------------------------------------------------------------ helpers


class _Invalid(Exception):
    """One problem, already worded; caught and collected by the parser."""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    return "a scalar"


def _text(value: object, key: str) -> str:
    """A YAML scalar read as a Go string field would read it."""
    if value is None:
        return ""
    if isinstance(value, YamlInt | YamlFloat):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _Invalid(f'cannot unmarshal {_kind(value)} into "{key}": a string is expected')


def _bool(value: object, key: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise _Invalid(f'cannot unmarshal {_kind(value)} into "{key}": true or false is expected')


def _mapping(value: object, what: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(f"{what} must be a mapping, not {_kind(value)}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(f"{what} must be a list, not {_kind(value)}")
    return value


def _quantity(fn: Any, value: object) -> int:
    try:
        result: int = fn(value)
    except QuantityError as exc:
        raise _Invalid(str(exc)) from None
    return result


def _structure_label(index: int, name: str) -> str:
    return f'#{index} ("{name}")' if name else f"#{index}"


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.hints: list[str] = []

    def add(self, message: str, hint: str | None = None) -> None:
        self.items.append(message)
        if hint:
            self.hints.append(hint)

    def raise_if_any(self) -> None:
        if self.items:
            raise GadgetError(
                self.items[0],
                problems=tuple(self.items),
                hint=self.hints[0] if self.hints else None,
            )


# ------------------------------------------------------------ raw structure


class _RawStructure:
    """A structure while implicit values are applied (mutable)."""

    def __init__(self, volume: str, yaml_index: int) -> None:
        self.volume = volume
        self.yaml_index = yaml_index
        self.name = ""
        self.label = ""
        self.offset: int | None = None
        self.explicit_offset = False
        self.offset_write: RelativeOffset | None = None
        self.min_size = 0
        self.size = 0
        self.type = ""
        self.role = ""
        self.id = ""
        self.filesystem = ""
        self.content: list[Content] = []
        self.edition = 0
        self.preserve: list[str] = []
        self.implicit_label = False

    @property
    def linux_filesystem(self) -> str:
        return "vfat" if self.filesystem in ("vfat-16", "vfat-32") else self.filesystem

    def has_label(self, label: str) -> bool:
        if self.linux_filesystem == "vfat":
            return self.label.lower() == label.lower()
        return self.label == label


def _parse_content(raw: object, where: str) -> Content:
    entry = _mapping(raw, where)
    offset = None
    size = None
    if entry.get("offset") is not None:
        offset = _quantity(parse_offset, entry["offset"])
    if entry.get("size") is not None:
        size = _quantity(parse_size, entry["size"]) or None
    source = _text(entry.get("source"), "source") or None
    target = _text(entry.get("target"), "target") or None
    image = _text(entry.get("image"), "image") or None
    return Content(
        source=source,
        target=target,
        unpack=_bool(entry.get("unpack"), "unpack"),
        image=image,
        offset=offset,
        size=size,
    )


def _parse_structure(volume: str, index: int, raw: object) -> _RawStructure:
    data = _mapping(raw, "structure entry")
    s = _RawStructure(volume, index)
    s.name = _text(data.get("name"), "name")
    s.label = _text(data.get("filesystem-label"), "filesystem-label")
    if data.get("offset") is not None:
        s.offset = _quantity(parse_offset, data["offset"])
        s.explicit_offset = True
    if data.get("offset-write") is not None:
        try:
            s.offset_write = parse_relative_offset(data["offset-write"])
        except QuantityError as exc:
            raise _Invalid(str(exc)) from None
    if data.get("min-size") is not None:
        s.min_size = _quantity(parse_size, data["min-size"])
    if data.get("size") is not None:
        s.size = _quantity(parse_size, data["size"])
    s.type = _text(data.get("type"), "type")
    s.role = _text(data.get("role"), "role")
    s.id = _text(data.get("id"), "id")
    s.filesystem = _text(data.get("filesystem"), "filesystem")
    for i, item in enumerate(_list(data.get("content"), '"content"')):
        try:
            s.content.append(_parse_content(item, f"content #{i}"))
        except _Invalid as exc:
            raise _Invalid(f"invalid content #{i}: {exc}") from None
    update = _mapping(data.get("update"), '"update"')
    if update.get("edition") is not None:
        text = _text(update["edition"], "edition")
        if not re.fullmatch(r"[0-9]+", text) or int(text) > 0xFFFFFFFF:
            raise _Invalid(f'"edition" must be a positive number, not "{text}"')
        s.edition = int(text)
    s.preserve = [_text(p, "preserve") for p in _list(update.get("preserve"), '"preserve"')]
    return s


# ------------------------------------------------------------- the parser


def parse_gadget_yaml(
    text: str | bytes,
    *,
    model: ModelContext | None = None,
    root: Path | None = None,
    origin: str = "gadget.yaml",
) -> GadgetInfo:
    """Parse and validate gadget.yaml *text*; :class:`GadgetError` if invalid."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GadgetError(
                f"cannot parse gadget metadata: {origin} is not UTF-8 text ({exc.reason} "
                f"at byte {exc.start})"
            ) from None
    data = load_yaml(text, origin)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise GadgetError(
            f"cannot parse gadget metadata: the document must be a mapping, not {_kind(data)}",
            hint="gadget.yaml starts with keys like volumes:, defaults:, connections:",
        )
    problems = _Problems()
    warnings: list[str] = []
    for key in data:
        if key not in _TOP_KEYS and key not in _LEGACY_TOP_KEYS:
            warnings.append(f"unknown top-level key {key!r} ignored")

    defaults = _parse_defaults(data.get("defaults"), problems)
    connections = _parse_connections(data.get("connections"), problems)
    kernel_cmdline = _parse_kernel_cmdline(data.get("kernel-cmdline"), problems)

    raw_volumes: dict[Any, Any] = {}
    try:
        raw_volumes = _mapping(data.get("volumes"), '"volumes"')
    except _Invalid as exc:
        problems.add(f"cannot parse gadget metadata: {exc}")
        problems.raise_if_any()

    # which rules (UC16/18 or UC20+): from the model, else from the roles used
    seed_roles = {
        _text_or_empty(st.get("role"))
        for v in raw_volumes.values()
        if isinstance(v, dict) and isinstance(v.get("structure"), list)
        for st in v["structure"]
        if isinstance(st, dict)
    }
    has_seed = ROLE_SYSTEM_SEED in seed_roles
    has_seed_null = ROLE_SYSTEM_SEED_NULL in seed_roles
    if model is not None:
        ruleset: Ruleset = model.ruleset
    else:
        ruleset = "uc20" if (has_seed or has_seed_null) else "uc16"

    if not raw_volumes:
        problems.raise_if_any()
        if model is not None and not model.classic:
            raise GadgetError(
                "bootloader not declared in any volume",
                hint="a gadget for a Core model must declare its volumes",
            )
        return GadgetInfo(
            volumes={},
            defaults=defaults,
            connections=connections,
            kernel_cmdline=kernel_cmdline,
            ruleset=ruleset,
            root=root,
            origin=origin,
            warnings=tuple(warnings),
        )

    # later stages need every volume valid; other sections' problems do not block
    volumes: dict[str, Volume] = {}
    bootloaders = 0
    before = len(problems.items)
    for raw_name, raw_volume in raw_volumes.items():
        name = _text_or_empty(raw_name)
        volume = _parse_volume(name, raw_volume, ruleset, root, problems, warnings)
        if volume is None:
            continue
        volumes[name] = volume
        if volume.bootloader is not None:
            if volume.bootloader == "piboot" and model is not None and not model.has_modes:
                problems.add("piboot bootloader valid only for UC20 onwards")
            bootloaders += 1
    if len(problems.items) > before:
        problems.raise_if_any()

    if bootloaders == 0:
        problems.add(
            "bootloader not declared in any volume",
            hint="add bootloader: grub (or u-boot, piboot, lk, android-boot) to the "
            "volume holding the boot partition",
        )
    elif bootloaders > 1:
        names = ", ".join(f'"{n}"' for n, v in volumes.items() if v.bootloader)
        problems.add(f"too many ({bootloaders}) bootloaders declared (volumes {names})")
    if len(problems.items) > before:
        problems.raise_if_any()

    classic_with_modes = _validate_roles(volumes, model, problems)
    _check_content_paths(volumes, problems)
    problems.raise_if_any()

    seeded = any(v.has_role(ROLE_SYSTEM_SEED) for v in volumes.values())
    volumes = _add_implicit_system_data(volumes, ruleset, seeded)
    volumes = {n: replace(v, seeded=seeded) for n, v in volumes.items()}
    return GadgetInfo(
        volumes=volumes,
        defaults=defaults,
        connections=connections,
        kernel_cmdline=kernel_cmdline,
        ruleset=ruleset,
        classic_with_modes=classic_with_modes,
        root=root,
        origin=origin,
        warnings=tuple(warnings),
    )


def _text_or_empty(value: object) -> str:
    try:
        return _text(value, "value")
    except _Invalid:
        return ""


def _parse_defaults(raw: object, problems: _Problems) -> dict[str, Any]:
    try:
        stanza = _mapping(raw, '"defaults"')
    except _Invalid as exc:
        problems.add(f"cannot parse gadget metadata: {exc}")
        return {}
    out: dict[str, Any] = {}
    for key, value in stanza.items():
        key_text = _text_or_empty(key)
        if key_text != "system" and not VALID_SNAP_ID.match(key_text):
            problems.add(f'default stanza not keyed by "system" or snap-id: {key_text}')
            continue
        if value is not None and not isinstance(value, dict):
            problems.add(
                f'default value of "{key_text}" must be a mapping of configuration, '
                f"not {_kind(value)}"
            )
            continue
        out[key_text] = _normalise(value or {})
    return out


def _normalise(value: Any) -> Any:
    # like snapd's metautil.NormalizeValue: plain JSON-able values, string keys
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, YamlInt):
        return int(value)
    if isinstance(value, YamlFloat):
        return float(value)
    return value


def _parse_snap_colon_name(value: object, what: str) -> tuple[str, str]:
    text = _text(value, what)
    parts = text.split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise _Invalid(
            f'in gadget connection {what}: expected "(<snap-id>|system):name" not "{text}"'
        )
    return parts[0], parts[1]


def _parse_connections(raw: object, problems: _Problems) -> tuple[Connection, ...]:
    out: list[Connection] = []
    try:
        entries = _list(raw, '"connections"')
    except _Invalid as exc:
        problems.add(f"cannot parse gadget metadata: {exc}")
        return ()
    for i, entry in enumerate(entries):
        try:
            data = _mapping(entry, f"connection #{i}")
            if data.get("plug") in (None, ""):
                raise _Invalid("gadget connection plug cannot be empty")
            plug_id, plug = _parse_snap_colon_name(data["plug"], "plug")
            if data.get("slot") in (None, ""):
                slot_id, slot = "system", plug
            else:
                slot_id, slot = _parse_snap_colon_name(data["slot"], "slot")
            out.append(Connection(plug_id, plug, slot_id, slot))
        except _Invalid as exc:
            problems.add(f"cannot parse gadget metadata: connection #{i}: {exc}")
    return tuple(out)


_DISALLOWED_KERNEL_ARGS = ("root", "nfsroot", "init")
_ALLOWED_SNAPD_KERNEL_ARGS = ("snapd_system_disk", "snapd.debug")


def _parse_kernel_cmdline(raw: object, problems: _Problems) -> KernelCmdline:
    try:
        stanza = _mapping(raw, '"kernel-cmdline"')
        lists = {
            key: tuple(_text(v, key) for v in _list(stanza.get(key), f'"kernel-cmdline.{key}"'))
            for key in ("allow", "append", "remove")
        }
    except _Invalid as exc:
        problems.add(f"cannot parse gadget metadata: {exc}")
        return KernelCmdline()
    for key in ("allow", "append", "remove"):
        for arg in lists[key]:
            error = _kernel_argument_error(arg, pattern=key != "append")
            if error:
                problems.add(f"cannot parse gadget metadata: kernel-cmdline.{key}: {error}")
    for arg in lists["append"]:
        param = arg.split("=", 1)[0]
        allowed = param in _ALLOWED_SNAPD_KERNEL_ARGS or (
            not param.startswith("snapd") and param not in _DISALLOWED_KERNEL_ARGS
        )
        if not allowed:
            problems.add(f"kernel parameter '{arg}' is not allowed")
    return KernelCmdline(allow=lists["allow"], append=lists["append"], remove=lists["remove"])


_SPACE = " \t\n\v\f\r"


def _split_kernel_arguments(text: str) -> list[tuple[str, str, bool]]:
    """``(param, value, quoted)`` per argument, quote-aware like snapd's kcmdline.Parse."""
    out: list[tuple[str, str, bool]] = []
    i = 0
    while i < len(text):
        if text[i] in _SPACE:
            i += 1
            continue
        start, in_quote = i, False
        while i < len(text) and (in_quote or text[i] not in _SPACE):
            if text[i] == '"':
                in_quote = not in_quote
            i += 1
        word = text[start:i]
        param, eq, value = word.partition("=")
        quoted = eq != "" and len(value) >= 2 and value[0] == value[-1] == '"'
        out.append((param, value[1:-1] if quoted else value, quoted))
    return out


def _kernel_argument_error(arg: str, *, pattern: bool) -> str:
    parsed = _split_kernel_arguments(arg)
    if len(parsed) != 1:
        return f'"{arg}" is not a unique kernel argument'
    _param, value, quoted = parsed[0]
    if pattern and not quoted and value != "*" and any(c in value for c in "*?[]\\{}"):
        return f'"{value}" contains globbing characters and is not quoted'
    return ""


# ------------------------------------------------------------------ volumes


def _parse_volume(
    name: str,
    raw: object,
    ruleset: Ruleset,
    root: Path | None,
    problems: _Problems,
    warnings: list[str],
) -> Volume | None:
    prefix = f'invalid volume "{name}"'
    if raw is None or raw == {}:
        problems.add(f'volume "{name}" stanza is empty')
        return None
    try:
        data = _mapping(raw, "volume")
        schema = _text(data.get("schema"), "schema")
        bootloader = _text(data.get("bootloader"), "bootloader")
        volume_id = _text(data.get("id"), "id")
        partial = [_text(p, "partial") for p in _list(data.get("partial"), '"partial"')]
        raw_structures = _list(data.get("structure"), '"structure"')
    except _Invalid as exc:
        problems.add(f"{prefix}: {exc}")
        return None
    for key in data:
        if key not in _VOLUME_KEYS:
            warnings.append(f'volume "{name}": unknown key {key!r} ignored')

    seen: set[str] = set()
    for p in partial:
        if p not in PARTIAL_PROPERTIES:
            problems.add(f'{prefix}: "{p}" is not a valid partial value')
            return None
        if p in seen:
            problems.add(f'{prefix}: partial value "{p}" is repeated')
            return None
        seen.add(p)
    partial_schema = "schema" in partial
    partial_size = "size" in partial
    if partial_schema:
        if schema:
            problems.add(
                f'{prefix}: partial schema is set but schema is still specified as "{schema}"'
            )
            return None
    elif not schema:
        schema = SCHEMA_GPT

    # parse every structure, collecting problems
    structures: list[_RawStructure] = []
    failed = False
    for i, item in enumerate(raw_structures):
        try:
            structures.append(_parse_structure(name, i, item))
        except _Invalid as exc:
            st_name = _text_or_empty(item.get("name")) if isinstance(item, dict) else ""
            problems.add(f"{prefix}: invalid structure {_structure_label(i, st_name)}: {exc}")
            failed = True
        if isinstance(item, dict):
            for key in item:
                if key not in _STRUCTURE_KEYS:
                    warnings.append(f'volume "{name}" structure #{i}: unknown key {key!r} ignored')
    if failed:
        return None

    # implicit values (snapd setImplicitForVolume)
    known: dict[str, str] = {}  # label → fs, for uniqueness
    for s in structures:
        if s.label and not _set_known_label(s.label, s.linux_filesystem, known):
            problems.add(
                f"{prefix}: invalid structure {_structure_label(s.yaml_index, s.name)}: "
                f'filesystem label "{s.label}" is not unique'
            )
            return None
    previous_end: int | None = 0
    for s in structures:
        if s.min_size == 0:
            s.min_size = s.size
        error = _set_implicit_structure(s, ruleset, known)
        if error:
            problems.add(
                f"{prefix}: invalid structure {_structure_label(s.yaml_index, s.name)}: {error}"
            )
            return None
        if s.offset is None and schema == SCHEMA_EMMC:
            s.offset = 0  # each eMMC hardware partition is a device of its own
        elif s.offset is None and previous_end is not None:
            if s.role != ROLE_MBR and previous_end < NON_MBR_START_OFFSET:
                s.offset = NON_MBR_START_OFFSET
            else:
                s.offset = previous_end
        fixed = s.size == s.min_size and not (partial_size and s.size == 0)
        previous_end = s.offset + s.size if (s.offset is not None and fixed) else None

    structures = _order_by_offset(structures)

    # validateVolume
    if not VALID_VOLUME_NAME.match(name):
        problems.add(
            f"{prefix}: invalid name",
            hint="volume names are 2+ letters, digits and dashes, starting with a letter or digit",
        )
        return None
    if not partial_schema and schema not in (SCHEMA_GPT, SCHEMA_MBR, SCHEMA_EMMC):
        problems.add(f'{prefix}: invalid schema "{schema}"', hint="use gpt or mbr")
        return None
    if bootloader and bootloader not in BOOTLOADERS:
        problems.add(
            "bootloader must be one of grub, u-boot, android-boot, piboot or lk "
            f'(volume "{name}" has "{bootloader}")'
        )
        return None

    if schema == SCHEMA_EMMC:
        # eMMC hardware partitions (snapd 2.66+): no table, no bootloader
        for key, value in (("id", volume_id), ("bootloader", bootloader), ("partial", partial)):
            if value:
                what = '"partial" content' if key == "partial" else f'"{key}"'
                problems.add(f"{prefix}: cannot set {what} for eMMC schemas")
                return None

    before = len(problems.items)
    names: set[str] = set()
    for idx, s in enumerate(structures):
        label = _structure_label(idx, s.name)
        error = _validate_structure(s, schema, partial)
        if error:
            problems.add(f"{prefix}: invalid structure {label}: {error}")
            continue
        if schema == SCHEMA_GPT and s.offset is not None:
            start, end = s.offset, s.offset + s.min_size
            if start < 512 * 34 and end > 4096:
                warnings.append(
                    f'volume "{name}": invalid structure: GPT header or GPT partition table '
                    f'overlapped with structure "{s.name}"'
                )
            elif start < 4096 * 6 and end > 512:
                warnings.append(
                    f'volume "{name}": GPT header or GPT partition table might be overlapped '
                    f'with structure "{s.name}"'
                )
        if s.name:
            if s.name in names:
                problems.add(f'{prefix}: structure name "{s.name}" is not unique')
            names.add(s.name)
    if len(problems.items) > before:
        return None

    error = _validate_cross_structure(structures)
    if error:
        problems.add(f"{prefix}: {error}")
        return None

    return Volume(
        name=name,
        schema=None if partial_schema else schema,
        bootloader=bootloader or None,
        id=volume_id or None,
        partial=tuple(partial),
        structures=tuple(_freeze(s) for s in structures),
        root=root,
    )


def _set_known_label(label: str, fs: str, known: dict[str, str]) -> bool:
    # vfat labels clash case-insensitively with any label; others exactly
    lower = label.lower()
    for other, other_fs in known.items():
        if other == label:
            return False
        if (fs == "vfat" or other_fs == "vfat") and other.lower() == lower:
            return False
    known[label] = fs
    return True


def _set_implicit_structure(s: _RawStructure, ruleset: Ruleset, known: dict[str, str]) -> str:
    if s.role == "" and s.type == ROLE_MBR:
        s.role = ROLE_MBR
        return ""
    if ruleset == "uc16" and s.role == "" and s.label == ROLE_SYSTEM_BOOT:
        s.role = ROLE_SYSTEM_BOOT
        return ""
    if s.label:
        return ""
    implicit = ""
    if ruleset == "uc16":
        if s.role == ROLE_SYSTEM_DATA:
            implicit = IMPLICIT_SYSTEM_DATA_LABEL
    else:
        implicit = {
            ROLE_SYSTEM_DATA: _UBUNTU_DATA,
            ROLE_SYSTEM_SEED: _UBUNTU_SEED,
            ROLE_SYSTEM_SEED_NULL: _UBUNTU_SEED,
            ROLE_SYSTEM_BOOT: _UBUNTU_BOOT,
            ROLE_SYSTEM_SAVE: _UBUNTU_SAVE,
        }.get(s.role, "")
    if implicit:
        if not _set_known_label(implicit, s.linux_filesystem, known):
            return (
                f'filesystem label "{implicit}" is implied by {s.role} role but was '
                "already set elsewhere"
            )
        s.label = implicit
        s.implicit_label = True
    return ""


def _order_by_offset(structures: list[_RawStructure]) -> list[_RawStructure]:
    # runs start at each structure with a known offset; sort runs by that
    runs: list[list[_RawStructure]] = []
    for s in structures:
        if s.offset is not None or not runs:
            runs.append([])
        runs[-1].append(s)
    runs.sort(key=lambda run: run[0].offset or 0)
    return [s for run in runs for s in run]


def _validate_structure(s: _RawStructure, schema: str, partial: list[str]) -> str:
    emmc = schema == SCHEMA_EMMC
    if emmc:
        for i, c in enumerate(s.content):
            if c.source is not None or c.target is not None:
                return f"invalid content #{i}: cannot use non-image content for hardware partitions"
            if c.image is None:
                return f"invalid content #{i}: missing image file name"
            if c.offset is not None or c.size is not None:
                return f"invalid content #{i}: cannot specify size or offset for content"
    if not ("size" in partial and s.size == 0):
        if s.size == 0 and not emmc:
            return "missing size"
        if s.min_size > s.size and s.size != 0:
            return f"min-size ({s.min_size}) is bigger than size ({s.size})"
    if not (emmc and s.type == ""):
        error = _validate_type(s.type, schema, partial)
        if error:
            return f'invalid type "{s.type}": {error}'
    error = _validate_role(s)
    if error:
        what = f'role "{s.role}"' if s.role else f'implicit role "{s.type}"'
        return f"invalid {what}: {error}"
    if s.filesystem and s.filesystem not in (*FILESYSTEMS, "none"):
        return f'invalid filesystem "{s.filesystem}"'
    has_fs = s.filesystem not in ("", "none") or (
        s.type not in ("bare", ROLE_MBR) and "filesystem" in partial
    )
    for i, c in enumerate(s.content):
        error = _validate_content(c, has_fs)
        if error:
            return f"invalid content #{i}: {error}"
    if not has_fs and s.preserve:
        return "preserving files during update is not supported for non-filesystem structures"
    seen: set[str] = set()
    for p in s.preserve:
        if p in seen:
            return f'duplicate "preserve" entry "{p}"'
        seen.add(p)
    return ""


def _validate_type(t: str, schema: str, partial: list[str]) -> str:
    if t == "":
        return "type is not specified"
    if t in ("bare", ROLE_MBR):
        return ""
    is_gpt = is_mbr = is_hybrid = False
    if "," not in t:
        if VALID_TYPE_ID.match(t):
            is_mbr = True
        elif VALID_GUID.match(t):
            is_gpt = True
        else:
            return "invalid format"
    else:
        is_hybrid = True
        code, guid = t.split(",", 1)
        if not (VALID_TYPE_ID.match(code) and len(guid) == 36 and VALID_GUID.match(guid)):
            return "invalid format of hybrid type"
    if "schema" in partial:
        if not is_hybrid:
            return "both MBR type and GUID structure type needs to be defined on partial schemas"
        return ""
    if schema != SCHEMA_GPT and is_gpt:
        return f'GUID structure type with non-GPT schema "{schema}"'
    if schema != SCHEMA_MBR and is_mbr:
        return f'MBR structure type with non-MBR schema "{schema}"'
    return ""


_NON_MBR_ROLES = (
    ROLE_SYSTEM_DATA,
    ROLE_SYSTEM_SEED,
    ROLE_SYSTEM_SEED_NULL,
    ROLE_SYSTEM_SAVE,
    ROLE_SYSTEM_BOOT,
    ROLE_SYSTEM_BOOT_IMAGE,
    ROLE_SYSTEM_BOOT_SELECT,
    ROLE_SYSTEM_SEED_SELECT,
    ROLE_SYSTEM_SEED_IMAGE,
    ROLE_SYSTEM_BOOT_STATE,
    ROLE_LEGACY_BOOTIMG,
    ROLE_LEGACY_BOOTSELECT,
    "",
)


def _validate_role(s: _RawStructure) -> str:
    if s.type == "bare" and s.role not in ("", ROLE_MBR):
        return 'conflicting type: "bare"'
    role = s.role
    if s.type == ROLE_MBR:
        if role not in ("", ROLE_MBR):
            return 'conflicting legacy type: "mbr"'
        role = ROLE_MBR
    if role == ROLE_MBR:
        if s.size > SIZE_MBR:
            return f"mbr structures cannot be larger than {SIZE_MBR} bytes"
        if s.offset is not None and s.offset != 0:
            return "mbr structure must start at offset 0"
        if s.id:
            return "mbr structure must not specify partition ID"
        if s.filesystem not in ("", "none"):
            return "mbr structures must not specify a file system"
        return ""
    if role not in _NON_MBR_ROLES:
        return "unsupported role"
    return ""


def _validate_content(c: Content, has_fs: bool) -> str:
    if has_fs:
        if c.image is not None or c.offset is not None or c.size is not None:
            return "cannot use image content for non-bare file system"
        if c.source is None:
            return "missing source"
        if c.target is None:
            return "missing target"
        if c.source.startswith("$kernel:"):
            return _validate_kernel_ref(c.source)
        return ""
    if c.source is not None or c.target is not None:
        return "cannot use non-image content for bare file system"
    if c.image is None:
        return "missing image file name"
    return ""


def _validate_kernel_ref(ref: str) -> str:
    asset, sep, content = ref[len("$kernel:") :].partition("/")
    prefix = f'cannot use kernel reference "{ref}"'
    if not sep:
        return f'{prefix}: invalid asset and content in kernel ref "{ref}"'
    if not asset or not content:
        return f'{prefix}: missing asset name or content in kernel ref "{ref}"'
    plain = content[:-1] if content.endswith("/") else content
    if _clean(plain) != plain or ".." in content or plain == "/":
        return f'{prefix}: invalid content in kernel ref "{ref}"'
    if not VALID_ASSET_NAME.match(asset):
        return f'{prefix}: invalid asset name in kernel ref "{ref}"'
    return ""


def _clean(path: str) -> str:
    # Go's filepath.Clean, enough to tell whether a path is already clean
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part == ".." and rooted:
            continue
        else:
            parts.append(part)
    out = ("/" if rooted else "") + "/".join(parts)
    return out or "."


def _min_size(structures: list[_RawStructure]) -> int:
    end = 0
    for s in structures:
        end = s.offset + s.min_size if s.offset is not None else end + s.min_size
    return end


def _validate_cross_structure(structures: list[_RawStructure]) -> str:
    previous_end = 0
    volume_min = _min_size(structures)
    for i, s in enumerate(structures):
        if (s.role == ROLE_MBR or (s.role == "" and s.type == ROLE_MBR)) and s.offset != 0:
            return f'structure "{s.name}" has "mbr" role and must start at offset 0'
        if s.offset_write is not None:
            error = _validate_offset_write(s, structures[0], volume_min)
            if error:
                return error
        if s.offset is not None:
            if s.offset < previous_end:
                return (
                    f'structure "{s.name}" overlaps with the preceding structure '
                    f'"{structures[i - 1].name}"'
                )
            previous_end = s.offset + s.size
        else:
            previous_end += s.size
    return ""


def _validate_offset_write(s: _RawStructure, first: _RawStructure, volume_min: int) -> str:
    ow = s.offset_write
    assert ow is not None
    if ow.relative_to:
        if ow.relative_to != first.name:
            return f'structure "{s.name}" refers to an unexpected structure "{ow.relative_to}"'
        if first.offset != 0:
            return (
                f'structure "{s.name}" refers to structure "{ow.relative_to}", which does '
                "not have 0 offset"
            )
        if ow.offset + SIZE_LBA48_POINTER > first.min_size:
            return (
                f'structure "{s.name}" wants to write offset of {SIZE_LBA48_POINTER} bytes '
                f'to {ow.offset}, outside of referred structure "{ow.relative_to}"'
            )
    elif ow.offset + SIZE_LBA48_POINTER > volume_min:
        return (
            f'structure "{s.name}" wants to write offset of {SIZE_LBA48_POINTER} bytes to '
            f"{ow.offset}, outside of volume of min size {volume_min}"
        )
    return ""


def _parse_type(t: str) -> StructureType:
    if t == "":
        return StructureType(raw="", kind="none")
    if t == "bare":
        return StructureType(raw=t, kind="bare")
    if t == ROLE_MBR:
        return StructureType(raw=t, kind="mbr")
    if "," in t:
        code, guid = t.split(",", 1)
        return StructureType(raw=t, kind="hybrid", mbr_id=code, guid=guid.upper())
    if VALID_TYPE_ID.match(t):
        return StructureType(raw=t, kind="mbr-id", mbr_id=t)
    return StructureType(raw=t, kind="guid", guid=t.upper())


def _freeze(s: _RawStructure, *, implicit: bool = False) -> Structure:
    return Structure(
        volume_name=s.volume,
        yaml_index=s.yaml_index,
        name=s.name,
        label=s.label or None,
        offset=s.offset,
        offset_write=s.offset_write,
        size=s.size,
        min_size=s.min_size,
        type=_parse_type(s.type),
        role=s.role,
        id=s.id or None,
        filesystem=s.filesystem if s.filesystem not in ("", "none") else None,
        content=tuple(s.content),
        update=Update(edition=s.edition, preserve=tuple(s.preserve)),
        explicit_offset=s.explicit_offset,
        implicit_label=s.implicit_label,
        implicit=implicit,
    )


# ---------------------------------------------------------- cross volumes


def _iter_structures(volumes: Mapping[str, Volume]) -> Iterator[tuple[str, int, Structure]]:
    for name, v in volumes.items():
        for idx, s in enumerate(v.structures):
            yield name, idx, s


def _where(volume: str, s: Structure) -> str:
    return f'volume "{volume}" structure {s.display_name}'


def _validate_roles(
    volumes: Mapping[str, Volume], model: ModelContext | None, problems: _Problems
) -> bool:
    """snapd's ruleValidateVolumes; returns whether this is classic with modes."""
    unique_roles = (
        ROLE_SYSTEM_SEED,
        ROLE_SYSTEM_SEED_NULL,
        ROLE_SYSTEM_BOOT,
        ROLE_SYSTEM_DATA,
        ROLE_SYSTEM_SAVE,
    )
    roles: dict[str, tuple[str, Structure]] = {}
    across = " across volumes" if len(volumes) != 1 else ""
    for vname, _idx, s in _iter_structures(volumes):
        if s.role in unique_roles:
            if s.role in roles:
                other_vol, other = roles[s.role]
                problems.add(
                    f"cannot have more than one partition with {s.role} role{across} "
                    f"({_where(other_vol, other)} and {_where(vname, s)})"
                )
                return False
            roles[s.role] = (vname, s)
    if ROLE_SYSTEM_SEED in roles and ROLE_SYSTEM_SEED_NULL in roles:
        problems.add(
            f"cannot have more than one partition with system-seed/system-seed-null role{across}"
        )
        return False

    if model is not None:
        has_modes = model.has_modes
        classic_with_modes = model.classic and model.has_modes
    else:
        has_modes = ROLE_SYSTEM_SEED in roles
        classic_with_modes = False
        if ROLE_SYSTEM_SEED_NULL in roles:
            has_modes = classic_with_modes = True

    before = len(problems.items)
    reserved = (
        (_UBUNTU_BOOT, _UBUNTU_SEED, _UBUNTU_DATA, _UBUNTU_SAVE)
        if has_modes
        else (_UBUNTU_SEED, _UBUNTU_DATA)
    )
    for vname, idx, s in _iter_structures(volumes):
        if s.role or s.label is None:
            continue
        for label in reserved:
            if s.has_label(label):
                problems.add(
                    f'invalid volume "{vname}": invalid structure '
                    f'{_structure_label(idx, s.name)}: label "{s.label}" is reserved',
                    hint="labels ubuntu-seed/-boot/-data/-save belong to the structures "
                    "with the matching role",
                )
                break
    if len(problems.items) > before:
        return classic_with_modes

    def check_labels(*pairs: tuple[str, str]) -> None:
        for role, want in pairs:
            vname, s = roles[role]
            if s.label is not None and not s.has_label(want):
                problems.add(
                    f'{role} structure must have an implicit label or "{want}", not '
                    f'"{s.label}" ({_where(vname, s)})'
                )

    if classic_with_modes:
        if ROLE_SYSTEM_BOOT not in roles or ROLE_SYSTEM_DATA not in roles:
            problems.add("system-boot and system-data roles are needed on classic")
            return True
        pairs = [(ROLE_SYSTEM_BOOT, _UBUNTU_BOOT), (ROLE_SYSTEM_DATA, _UBUNTU_DATA)]
        for role, label in (
            (ROLE_SYSTEM_SEED, _UBUNTU_SEED),
            (ROLE_SYSTEM_SEED_NULL, _UBUNTU_SEED),
            (ROLE_SYSTEM_SAVE, _UBUNTU_SAVE),
        ):
            if role in roles:
                pairs.append((role, label))
        check_labels(*pairs)
        boot_volume = roles[ROLE_SYSTEM_BOOT][0]
        for role in (ROLE_SYSTEM_SEED, ROLE_SYSTEM_SEED_NULL, ROLE_SYSTEM_SAVE):
            if role in roles and roles[role][0] != boot_volume:
                problems.add(f"system-boot and {role} are expected to share the same volume")
        return True

    seed, data = roles.get(ROLE_SYSTEM_SEED), roles.get(ROLE_SYSTEM_DATA)
    if seed is None and data is None:
        if has_modes:
            problems.add(
                "model requires system-seed partition, but no system-seed or system-data "
                "partition found"
            )
            return False
    elif seed is not None and data is None:
        problems.add(
            "the system-seed role requires system-data to be defined",
            hint="add a structure with role: system-data to the volume of system-seed",
        )
        return False
    elif seed is None and data is not None:
        if has_modes:
            problems.add("model requires system-seed structure, but none was found")
            return False
        check_labels((ROLE_SYSTEM_DATA, IMPLICIT_SYSTEM_DATA_LABEL))
    else:
        if not has_modes:
            problems.add("model does not support the system-seed role")
            return False
        check_labels((ROLE_SYSTEM_DATA, _UBUNTU_DATA), (ROLE_SYSTEM_SEED, _UBUNTU_SEED))
    if ROLE_SYSTEM_SAVE in roles:
        if not has_modes:
            problems.add("model does not support the system-save role")
            return False
        check_labels((ROLE_SYSTEM_SAVE, _UBUNTU_SAVE))
    if has_modes and seed is not None:
        for role in (ROLE_SYSTEM_BOOT, ROLE_SYSTEM_DATA, ROLE_SYSTEM_SAVE):
            if role in roles and roles[role][0] != seed[0]:
                problems.add(
                    "system-boot, system-data, and system-save are expected to share the "
                    f'same volume as system-seed ({role} is in volume "{roles[role][0]}", '
                    f'system-seed in "{seed[0]}")'
                )
                break
    return False


def _escapes(path: str) -> bool:
    return ".." in path.replace("\\", "/").split("/")


def _check_content_paths(volumes: Mapping[str, Volume], problems: _Problems) -> None:
    """ubuntu-image's rule: content may not reach outside the gadget (``../``)."""
    hint = "content paths are relative to the gadget snap's root and must stay inside it"
    for vname, _idx, s in _iter_structures(volumes):
        for c in s.content:
            where = f'volume "{vname}" structure {s.display_name}'
            if c.source is not None and c.kernel_ref is None and _escapes(c.source):
                problems.add(
                    f'{where}: filesystem content source "{c.source}" contains "../". '
                    "This is disallowed for security purposes",
                    hint=hint,
                )
            if c.target is not None and _escapes(c.target):
                problems.add(
                    f'{where}: filesystem content target "{c.target}" contains "../". '
                    "This is disallowed for security purposes",
                    hint=hint,
                )
            if c.image is not None and _escapes(c.image):
                problems.add(
                    f'{where}: content image "{c.image}" contains "../". '
                    "This is disallowed for security purposes",
                    hint=hint,
                )


def _add_implicit_system_data(
    volumes: dict[str, Volume], ruleset: Ruleset, seeded: bool
) -> dict[str, Volume]:
    """ubuntu-image appends ``writable`` to single-volume gadgets without system-data."""
    if len(volumes) != 1 or seeded or ruleset != "uc16":
        return volumes
    ((name, volume),) = volumes.items()
    if volume.schema not in (SCHEMA_GPT, SCHEMA_MBR) or volume.has_role(ROLE_SYSTEM_DATA):
        return volumes
    if any(s.offset is None for s in volume.structures):
        return volumes  # farthest offset unknown: ubuntu-image adds nothing
    farthest = max(
        (s.offset + s.size for s in volume.structures if s.offset is not None), default=0
    )
    writable = Structure(
        volume_name=name,
        yaml_index=len(volume.structures),
        name="",
        label=IMPLICIT_SYSTEM_DATA_LABEL,
        offset=farthest,
        offset_write=None,
        size=0,
        min_size=0,
        type=_parse_type(IMPLICIT_SYSTEM_DATA_TYPE),
        role=ROLE_SYSTEM_DATA,
        id=None,
        filesystem="ext4",
        content=(),
        explicit_offset=False,
        implicit_label=True,
        implicit=True,
    )
    return {name: replace(volume, structures=(*volume.structures, writable))}
