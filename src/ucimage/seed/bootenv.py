"""Bootloader environment files: grub's ``grubenv`` and u-boot's env format.

* :class:`GrubEnv` — exactly 1024 bytes: ``# GRUB Environment Block\\n``, then
  ``key=value\\n`` lines in insertion order, padded with ``#``.
* :class:`UbootEnv` — a fixed-size block: little-endian CRC32 (IEEE) of the
  payload, one flag byte when the "redundant" layout is used, then sorted
  ``key=value\\0`` entries, an extra ``\\0`` and 0xFF fill.  Used for
  ``uboot.env``, the UC20 ``boot.sel`` and ``piboot.conf``.  Setting a key to
  the empty string removes it, as u-boot's ``setenv`` does.

Both round-trip: :meth:`encode` then :meth:`decode` gives the same mapping.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

from ucimage.errors import UcimageError

GRUBENV_SIZE = 1024
GRUBENV_HEADER = b"# GRUB Environment Block\n"
UBOOT_ENV_SIZE = 4096


class BootEnvError(UcimageError):
    """A bootloader environment cannot be encoded or decoded."""

    code = "boot-env"


def _check_pair(key: str, value: str, forbidden: str) -> None:
    if not key or "=" in key or any(c in key for c in forbidden):
        raise BootEnvError(f"invalid bootloader variable name {key!r}")
    if any(c in value for c in forbidden):
        raise BootEnvError(f"invalid value for bootloader variable {key!r}: {value!r}")


class GrubEnv:
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
    def decode(cls, data: bytes) -> GrubEnv:
        if len(data) != GRUBENV_SIZE or not data.startswith(GRUBENV_HEADER):
            raise BootEnvError(
                f"not a grub environment block ({len(data)} bytes, "
                f"header {data[: len(GRUBENV_HEADER)]!r})"
            )
        env = cls()
        for line in data[len(GRUBENV_HEADER) :].split(b"\n"):
            if not line or line.startswith(b"#"):
                continue
            key, sep, value = line.decode("utf-8", "replace").partition("=")
            if not sep:
                raise BootEnvError(f"malformed grub environment line {line!r}")
            env.values[key] = value
        return env

    def write(self, path: Path) -> None:
        path.write_bytes(self.encode())

    @classmethod
    def read(cls, path: Path) -> GrubEnv:
        return cls.decode(path.read_bytes())


class UbootEnv:
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
    def decode(cls, data: bytes) -> UbootEnv:
        """Parse an env, detecting the redundant (flag byte) layout by its CRC."""
        if len(data) < 6:
            raise BootEnvError(f"u-boot environment too short ({len(data)} bytes)")
        (crc,) = struct.unpack("<I", data[:4])
        if zlib.crc32(data[5:]) == crc:
            redundant, start = True, 5
        elif zlib.crc32(data[4:]) == crc:
            redundant, start = False, 4
        else:
            raise BootEnvError("u-boot environment has a bad CRC")
        env = cls(size=len(data), redundant=redundant)
        for entry in data[start:].split(b"\0"):
            if not entry or entry[0] == 0xFF:
                break
            key, sep, value = entry.decode("utf-8", "replace").partition("=")
            if not sep:
                raise BootEnvError(f"malformed u-boot environment entry {entry!r}")
            env.values[key] = value
        return env

    def write(self, path: Path) -> None:
        path.write_bytes(self.encode())

    @classmethod
    def read(cls, path: Path) -> UbootEnv:
        return cls.decode(path.read_bytes())
