"""Parse bootloader environments: GRUB's grubenv and u-boot env files.

* grubenv: exactly 1024 bytes, ``# GRUB Environment Block\\n``, ``key=value\\n``
  lines, padded with ``#``.
* u-boot env (``uboot.env``, ``boot.sel``, ``piboot.conf``): little-endian
  CRC32 of the payload, then (redundant format) one flag byte, then
  ``key=value\\0`` entries ending with an empty one, padding 0xFF.  The header
  form is found by which CRC matches.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

GRUBENV_HEADER = b"# GRUB Environment Block\n"
GRUBENV_SIZE = 1024

#: where bootloader environments live, relative to a partition's root
BOOTENV_PATHS: tuple[tuple[str, str], ...] = (
    ("/EFI/ubuntu/grubenv", "grubenv"),
    ("/boot/grub/grubenv", "grubenv"),
    ("/system-data/boot/grub/grubenv", "grubenv"),
    ("/grubenv", "grubenv"),
    ("/uboot.env", "uboot"),
    ("/uboot/ubuntu/boot.sel", "uboot"),
    ("/piboot/ubuntu/piboot.conf", "uboot"),
)


@dataclass(frozen=True)
class BootEnv:
    """One environment file and what it says."""

    format: str  # "grubenv" or "uboot"
    variables: dict[str, str]
    valid: bool
    problems: tuple[str, ...] = ()
    size: int = 0
    #: u-boot only: whether the redundant-env flag byte is present
    redundant: bool | None = None
    details: dict[str, str] = field(default_factory=dict)


def parse_grubenv(data: bytes) -> BootEnv:
    problems = []
    if len(data) != GRUBENV_SIZE:
        problems.append(f"grubenv is {len(data)} bytes, GRUB needs exactly {GRUBENV_SIZE}")
    if not data.startswith(GRUBENV_HEADER):
        problems.append("grubenv does not start with '# GRUB Environment Block'")
        return BootEnv("grubenv", {}, False, tuple(problems), len(data))
    variables: dict[str, str] = {}
    for raw in data[len(GRUBENV_HEADER) :].split(b"\n"):
        if not raw or raw.startswith(b"#"):
            continue
        line = raw.decode("utf-8", "replace")
        key, sep, value = line.partition("=")
        if not sep:
            problems.append(f"grubenv line without '=': {line!r}")
            continue
        # GRUB escapes '\\' and newlines with a backslash
        variables[key] = value.replace("\\n", "\n").replace("\\\\", "\\")
    return BootEnv("grubenv", variables, not problems, tuple(problems), len(data))


def _uboot_entries(payload: bytes) -> tuple[dict[str, str], list[str]]:
    variables: dict[str, str] = {}
    problems: list[str] = []
    end = payload.find(b"\0\0")
    body = payload[: end if end >= 0 else len(payload)]
    if end < 0:
        problems.append("u-boot env has no terminating empty entry")
    if body:
        for raw in body.split(b"\0"):
            line = raw.decode("utf-8", "replace")
            key, sep, value = line.partition("=")
            if not sep:
                problems.append(f"u-boot env entry without '=': {line!r}")
                continue
            variables[key] = value
    return variables, problems


def parse_uboot_env(data: bytes) -> BootEnv:
    if len(data) < 8:
        return BootEnv("uboot", {}, False, ("u-boot env is too short",), len(data))
    stored = struct.unpack_from("<I", data, 0)[0]
    for header, redundant in ((5, True), (4, False)):
        if zlib.crc32(data[header:]) == stored:
            variables, problems = _uboot_entries(data[header:])
            details = {"flags": str(data[4])} if redundant else {}
            return BootEnv(
                "uboot", variables, not problems, tuple(problems), len(data), redundant, details
            )
    # no CRC matches: still show what it says, as the redundant layout snapd writes
    variables, problems = _uboot_entries(data[5:])
    computed = zlib.crc32(data[5:])
    problems.insert(
        0,
        f"u-boot env CRC32 mismatch: stored {stored:08x}, payload has {computed:08x}",
    )
    return BootEnv("uboot", variables, False, tuple(problems), len(data), None)


def parse_bootenv(fmt: str, data: bytes) -> BootEnv:
    if fmt == "grubenv":
        return parse_grubenv(data)
    if fmt == "uboot":
        return parse_uboot_env(data)
    raise ValueError(f"unknown boot environment format {fmt!r}")
