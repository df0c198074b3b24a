"""Bootloader environment files: grub's ``grubenv``, u-boot's env and lk's env.

This module owns the formats: the writers used by seeding and the scanners
:mod:`ucimage.inspect.bootenv` builds its problem reports on.

* :class:`GrubEnv` — exactly 1024 bytes: ``# GRUB Environment Block\\n``, then
  ``key=value\\n`` lines in insertion order, padded with ``#``.
* :class:`UbootEnv` — a fixed-size block: little-endian CRC32 (IEEE) of the
  payload, one flag byte when the "redundant" layout is used, then sorted
  ``key=value\\0`` entries, an extra ``\\0`` and 0xFF fill.  Used for
  ``uboot.env``, the UC20 ``boot.sel`` and ``piboot.conf``.  Setting a key to
  the empty string removes it, as u-boot's ``setenv`` does.
* :class:`LkEnv` — the little kernel's binary "boot select" struct
  (``snapbootsel.bin`` for UC16/18 and UC20 run mode, ``snaprecoverysel.bin``
  for the UC20 recovery system): a signature and a version word, fixed
  256-byte NUL-terminated string fields, boot image partition matrices, and a
  little-endian CRC32 (IEEE) of everything before it.  Bytes after the struct
  (the rest of a partition-sized file) are kept as they are.

All round-trip: :meth:`encode` then :meth:`decode` gives the same values.
"""

from __future__ import annotations

import struct
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from ucimage.errors import UcimageError

GRUBENV_SIZE = 1024
GRUBENV_HEADER = b"# GRUB Environment Block\n"
UBOOT_ENV_SIZE = 4096


class BootEnvError(UcimageError):
    """A bootloader environment cannot be encoded or decoded."""

    code = "boot-env"


@dataclass(frozen=True)
class EnvScan:
    """What a lenient read of an environment found: its variables and every problem."""

    values: dict[str, str]
    problems: tuple[str, ...] = ()
    #: u-boot only: the header layout whose CRC matched (None when none did)
    redundant: bool | None = None
    #: lk only: the struct is whole and of the right kind but its CRC32 does not
    #: match (then ``problems[0]`` says so)
    crc_mismatch: bool = False


def _check_pair(key: str, value: str, forbidden: str) -> None:
    if not key or "=" in key or any(c in key for c in forbidden):
        raise BootEnvError(f"invalid bootloader variable name {key!r}")
    if any(c in value for c in forbidden):
        raise BootEnvError(f"invalid value for bootloader variable {key!r}: {value!r}")


def _add_pair(raw: bytes, values: dict[str, str], problems: list[str], what: str) -> None:
    line = raw.decode("utf-8", "replace")
    key, sep, value = line.partition("=")
    if sep:
        values[key] = value
    else:
        problems.append(f"{what} without '=': {line!r}")


def _strict(scan: EnvScan, what: str) -> EnvScan:
    if scan.problems:
        raise BootEnvError(f"invalid {what}: {scan.problems[0]}")
    return scan


# ------------------------------------------------------------------ grubenv


def scan_grubenv(data: bytes) -> EnvScan:
    """Read a grubenv block, collecting problems instead of stopping at the first.

    Values are returned as stored (GRUB's backslash escapes are not undone).
    """
    problems = []
    if len(data) != GRUBENV_SIZE:
        problems.append(f"grubenv is {len(data)} bytes, GRUB needs exactly {GRUBENV_SIZE}")
    if not data.startswith(GRUBENV_HEADER):
        problems.append("grubenv does not start with '# GRUB Environment Block'")
        return EnvScan({}, tuple(problems))
    values: dict[str, str] = {}
    for raw in data[len(GRUBENV_HEADER) :].split(b"\n"):
        if not raw or raw.startswith(b"#"):
            continue
        _add_pair(raw, values, problems, "grubenv line")
    return EnvScan(values, tuple(problems))


class _EnvBlock(ABC):
    """An environment that encodes to (and decodes from) the bytes of one file."""

    @abstractmethod
    def encode(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def decode(cls, data: bytes) -> Self: ...

    def write(self, path: Path) -> None:
        path.write_bytes(self.encode())

    @classmethod
    def read(cls, path: Path) -> Self:
        return cls.decode(path.read_bytes())


class GrubEnv(_EnvBlock):
    """A grub environment block (insertion-ordered variables)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self.values: dict[str, str] = {}
        for key, value in (values or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        _check_pair(key, value, "\n")
        self.values[key] = value

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def encode(self) -> bytes:
        body = GRUBENV_HEADER + b"".join(f"{k}={v}\n".encode() for k, v in self.values.items())
        if len(body) > GRUBENV_SIZE:
            raise BootEnvError(
                f"grub environment needs {len(body)} bytes, more than the {GRUBENV_SIZE}-byte block"
            )
        return body.ljust(GRUBENV_SIZE, b"#")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        env = cls()
        env.values = _strict(scan_grubenv(data), "grub environment block").values
        return env


# ------------------------------------------------------------------ u-boot


def _uboot_entries(payload: bytes) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    problems: list[str] = []
    for raw in payload.split(b"\0"):
        # an empty entry ends the list; so does erased (0xFF) flash
        if not raw or raw[0] == 0xFF:
            return values, problems
        _add_pair(raw, values, problems, "u-boot env entry")
    problems.append("u-boot env has no terminating empty entry")
    return values, problems


def scan_uboot_env(data: bytes) -> EnvScan:
    """Read a u-boot env, finding the header layout (with or without flag byte) by its CRC."""
    if len(data) < 8:
        return EnvScan({}, ("u-boot env is too short",))
    stored = struct.unpack_from("<I", data, 0)[0]
    for header, redundant in ((5, True), (4, False)):
        if zlib.crc32(data[header:]) == stored:
            values, problems = _uboot_entries(data[header:])
            return EnvScan(values, tuple(problems), redundant)
    # no CRC matches: still show what it says, as the redundant layout snapd writes
    values, problems = _uboot_entries(data[5:])
    computed = zlib.crc32(data[5:])
    problems.insert(
        0, f"u-boot env CRC32 mismatch: stored {stored:08x}, payload has {computed:08x}"
    )
    return EnvScan(values, tuple(problems))


class UbootEnv(_EnvBlock):
    """A u-boot environment (variables kept sorted on encode)."""

    def __init__(
        self,
        values: Mapping[str, str] | None = None,
        *,
        size: int = UBOOT_ENV_SIZE,
        redundant: bool = True,
    ) -> None:
        self.size = size
        self.redundant = redundant
        self.values: dict[str, str] = {}
        for key, value in (values or {}).items():
            self[key] = value

    @property
    def header_size(self) -> int:
        return 5 if self.redundant else 4

    def __setitem__(self, key: str, value: str) -> None:
        _check_pair(key, value, "\0")
        if value == "":
            self.values.pop(key, None)
        else:
            self.values[key] = value

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def update(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self[key] = value

    def encode(self) -> bytes:
        payload = (
            b"".join(f"{k}={v}".encode() + b"\0" for k, v in sorted(self.values.items())) + b"\0"
        )
        room = self.size - self.header_size
        if len(payload) > room:
            raise BootEnvError(
                f"u-boot environment needs {len(payload)} bytes, more than the "
                f"{room} bytes a {self.size}-byte env holds"
            )
        payload = payload.ljust(room, b"\xff")
        header = struct.pack("<I", zlib.crc32(payload))
        if self.redundant:
            header += b"\0"
        return header + payload

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse an env, detecting the redundant (flag byte) layout by its CRC."""
        scan = _strict(scan_uboot_env(data), "u-boot environment")
        env = cls(size=len(data), redundant=bool(scan.redundant))
        env.values = scan.values
        return env


# ------------------------------------------------------------------ lk

#: every string field of the lk structs is this many bytes, NUL-terminated
LK_FIELD_SIZE = 256
#: ``'S' | 'B' << 8 | 's' << 16 | 'e' << 24`` (Snap Boot select)
LK_SIGNATURE = 0x65734253
#: ``'S' | 'R' << 8 | 's' << 16 | 'e' << 24`` (Snap Recovery select)
LK_RECOVERY_SIGNATURE = 0x65735253
LK_VERSION_V1 = 0x00010001
LK_VERSION_V2 = 0x00010010
#: the kernel snap's boot image when the env does not name another
LK_DEFAULT_BOOT_IMAGE = "boot.img"


@dataclass(frozen=True)
class LkLayout:
    """One version of the lk struct: its fields in order, each a number of 256-byte slots.

    A matrix field holds rows of (boot image partition label, value) pairs:
    the value is the kernel snap file (run) or the recovery system label.
    """

    name: str
    signature: int
    version: int
    fields: tuple[tuple[str, int], ...]
    #: the variables snapd reads and sets (the others stay as the gadget had them)
    variables: tuple[str, ...]
    #: the boot image matrix snapd assigns at image build time
    matrix: str = "bootimg_matrix"

    @property
    def size(self) -> int:
        """Signature + version + fields + CRC32."""
        return 8 + sum(slots for _, slots in self.fields) * LK_FIELD_SIZE + 4

    def offset(self, field: str) -> int:
        at = 8
        for name, slots in self.fields:
            if name == field:
                return at
            at += slots * LK_FIELD_SIZE
        raise KeyError(field)

    def slots(self, field: str) -> int:
        return dict(self.fields)[field]


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _strings(text: str) -> tuple[tuple[str, int], ...]:
    """One-slot string fields, named in struct order."""
    return tuple((name, 1) for name in _names(text))


#: v1 and v2-run end alike: A/B boot image matrix, image name, A/B gadget asset
#: matrix, then room for the future (20 unused strings, 10 key/value pairs)
_RUN_TAIL = (
    ("bootimg_matrix", 2 * 2),
    ("bootimg_file_name", 1),
    ("gadget_asset_matrix", 2 * 2),
    ("unused", 20),
    ("key_value_pairs", 10 * 2),
)

#: UC16/18 (snapd's ``SnapBootSelect_v1``)
LK_V1 = LkLayout(
    name="v1",
    signature=LK_SIGNATURE,
    version=LK_VERSION_V1,
    fields=(
        *_strings(
            "snap_mode snap_core snap_try_core snap_kernel snap_try_kernel "
            "gadget_mode snap_gadget snap_try_gadget reboot_reason"
        ),
        *_RUN_TAIL,
    ),
    variables=_names(
        "snap_mode snap_core snap_try_core snap_kernel snap_try_kernel "
        "snap_gadget snap_try_gadget reboot_reason bootimg_file_name"
    ),
)
#: UC20+ run mode (``SnapBootSelect_v2_run``), written on the device at install
LK_V2_RUN = LkLayout(
    name="v2-run",
    signature=LK_SIGNATURE,
    version=LK_VERSION_V2,
    fields=(
        *_strings(
            "kernel_status snap_kernel snap_try_kernel gadget_mode snap_gadget snap_try_gadget"
        ),
        *_RUN_TAIL,
    ),
    variables=_names(
        "kernel_status snap_kernel snap_try_kernel snap_gadget snap_try_gadget bootimg_file_name"
    ),
)
#: UC20+ recovery (``SnapBootSelect_v2_recovery``): up to 10 recovery systems
LK_V2_RECOVERY = LkLayout(
    name="v2-recovery",
    signature=LK_RECOVERY_SIGNATURE,
    version=LK_VERSION_V2,
    fields=(
        *_strings("snapd_recovery_mode snapd_recovery_system"),
        ("bootimg_matrix", 10 * 2),
        *_strings("bootimg_file_name try_recovery_system recovery_system_status device_lock_state"),
        ("unused", 17),
        ("key_value_pairs", 10 * 2),
    ),
    variables=_names(
        "snapd_recovery_mode snapd_recovery_system bootimg_file_name "
        "try_recovery_system recovery_system_status"
    ),
)
LK_LAYOUTS: tuple[LkLayout, ...] = (LK_V1, LK_V2_RUN, LK_V2_RECOVERY)


def _cstring(raw: bytes | bytearray) -> str:
    # like snapd: a field without a terminating NUL reads as empty
    end = raw.find(b"\0")
    return raw[:end].decode("utf-8", "replace") if end >= 0 else ""


def scan_lk_env(data: bytes, layout: LkLayout | None = None) -> tuple[LkLayout | None, EnvScan]:
    """Read an lk env; the layout is found by signature and version unless given."""
    if len(data) < 8:
        return None, EnvScan({}, (f"lk env is too short ({len(data)} bytes)",))
    signature, version = struct.unpack_from("<II", data, 0)
    if layout is None:
        for candidate in LK_LAYOUTS:
            if (candidate.signature, candidate.version) == (signature, version):
                layout = candidate
                break
        else:
            return None, EnvScan(
                {},
                (
                    f"not an lk env: signature 0x{signature:08X}, version 0x{version:08X} "
                    "(no known lk struct)",
                ),
            )
    elif (signature, version) != (layout.signature, layout.version):
        return layout, EnvScan(
            {},
            (
                f"not an lk {layout.name} env: expected signature 0x{layout.signature:08X} "
                f"version 0x{layout.version:08X}, got 0x{signature:08X} version 0x{version:08X}",
            ),
        )
    if len(data) < layout.size:
        return layout, EnvScan(
            {}, (f"lk {layout.name} env is {len(data)} bytes, the struct needs {layout.size}",)
        )
    problems = []
    body = data[: layout.size - 4]
    (stored,) = struct.unpack_from("<I", data, layout.size - 4)
    if zlib.crc32(body) != stored:
        problems.append(
            f"lk env CRC32 mismatch: stored {stored:08x}, struct has {zlib.crc32(body):08x}"
        )
    values = {
        name: _cstring(body[layout.offset(name) : layout.offset(name) + LK_FIELD_SIZE])
        for name in layout.variables
    }
    return layout, EnvScan(values, tuple(problems), crc_mismatch=bool(problems))


class LkEnv(_EnvBlock):
    """An lk boot select env: typed fields over the raw struct, so untouched bytes stay."""

    def __init__(self, layout: LkLayout, data: bytes | None = None) -> None:
        self.layout = layout
        if data is None:
            body = bytearray(layout.size - 4)
            struct.pack_into("<II", body, 0, layout.signature, layout.version)
            self._body = body
            self.tail = b""
        else:
            self._body = bytearray(data[: layout.size - 4])
            #: whatever follows the struct in the file (kept on encode)
            self.tail = data[layout.size :]

    @classmethod
    def decode(
        cls, data: bytes, layout: LkLayout | None = None, *, ignore_crc: bool = False
    ) -> Self:
        """Parse an env; with *ignore_crc* a CRC mismatch alone is accepted (the CRC is
        recomputed on :meth:`encode`), a wrong signature, version or size never is."""
        found, scan = scan_lk_env(data, layout)
        problems = scan.problems
        if ignore_crc and scan.crc_mismatch:
            problems = problems[1:]
        _strict(EnvScan(scan.values, problems), "lk environment")
        assert found is not None
        return cls(found, data)

    def encode(self) -> bytes:
        crc = struct.pack("<I", zlib.crc32(self._body))
        return bytes(self._body) + crc + self.tail

    @classmethod
    def read(cls, path: Path, layout: LkLayout | None = None) -> Self:
        return cls.decode(path.read_bytes(), layout)

    # -- variables

    def _field(self, name: str, slot: int = 0) -> int:
        if slot >= self.layout.slots(name):
            raise IndexError(f"{name} has {self.layout.slots(name)} slots")
        return self.layout.offset(name) + slot * LK_FIELD_SIZE

    def _get(self, name: str, slot: int = 0) -> str:
        at = self._field(name, slot)
        return _cstring(self._body[at : at + LK_FIELD_SIZE])

    def _set(self, name: str, value: str, slot: int = 0) -> None:
        raw = value.encode()
        if b"\0" in raw or len(raw) >= LK_FIELD_SIZE:
            raise BootEnvError(
                f"invalid value for lk variable {name!r}: {value!r} "
                f"(at most {LK_FIELD_SIZE - 1} bytes, no NUL)"
            )
        at = self._field(name, slot)
        # like snapd's copyString: the value and one NUL; later bytes stay
        self._body[at : at + len(raw) + 1] = raw + b"\0"

    def __getitem__(self, key: str) -> str:
        if key not in self.layout.variables:
            raise KeyError(key)
        return self._get(key)

    def __setitem__(self, key: str, value: str) -> None:
        if key not in self.layout.variables:
            raise BootEnvError(
                f"the lk {self.layout.name} env has no variable {key!r}",
                hint="it holds " + ", ".join(self.layout.variables),
            )
        self._set(key, value)

    def update(self, values: Mapping[str, str], *, ignore_unknown: bool = False) -> None:
        """Set several variables like snapd's ``lk.SetBootVars``: a variable that already
        reads as the value is left alone (so a field without a NUL, which reads as empty,
        keeps its bytes when set to ""); with *ignore_unknown* names the struct lacks are
        skipped (snapd sets the same boot variables on every bootloader, lk drops the rest)."""
        for key, value in values.items():
            if ignore_unknown and key not in self.layout.variables:
                continue
            if key in self.layout.variables and self._get(key) == value:
                continue
            self[key] = value

    @property
    def values(self) -> dict[str, str]:
        return {name: self._get(name) for name in self.layout.variables}

    # -- boot image partitions

    def boot_partitions(self) -> list[tuple[str, str]]:
        """The boot image matrix rows: (partition label, kernel file or recovery label)."""
        rows = self.layout.slots(self.layout.matrix) // 2
        return [
            (self._get(self.layout.matrix, 2 * i), self._get(self.layout.matrix, 2 * i + 1))
            for i in range(rows)
        ]

    def boot_image_name(self) -> str:
        return self._get("bootimg_file_name") or LK_DEFAULT_BOOT_IMAGE

    def find_free_boot_partition(self, reserved: Iterable[str], value: str) -> str:
        """The first labelled row holding *value* already or a value not in *reserved*."""
        taken = set(reserved)
        for label, current in self.boot_partitions():
            if not label:
                continue
            if current == value or current not in taken:
                return label
        raise BootEnvError(
            "cannot find free boot image partition",
            hint="the gadget's lk.conf must name the boot image partitions "
            f"in its {self.layout.matrix} (the gadget build fills them in)",
        )

    def set_boot_partition(self, label: str, value: str) -> None:
        for i, (row_label, _) in enumerate(self.boot_partitions()):
            if row_label == label:
                self._set(self.layout.matrix, value, 2 * i + 1)
                return
        raise BootEnvError(f"cannot find boot image partition {label}")
