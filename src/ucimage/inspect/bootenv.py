"""Parse bootloader environments: GRUB's grubenv, u-boot env and lk env files.

The formats are read by :mod:`ucimage.seed.bootenv` (which also writes them);
this module turns what it finds, problems included, into a :class:`BootEnv`.

* grubenv: exactly 1024 bytes, ``# GRUB Environment Block\\n``, ``key=value\\n``
  lines, padded with ``#``.
* u-boot env (``uboot.env``, ``boot.sel``, ``piboot.conf``): little-endian
  CRC32 of the payload, then (redundant format) one flag byte, then
  ``key=value\\0`` entries ending with an empty one, padding 0xFF.  The header
  form is found by which CRC matches.
* lk env (``boot/lk/snaprecoverysel.bin`` on a UC20+ ubuntu-seed): snapd's
  binary boot select struct, found by its signature and version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ucimage.seed.bootenv import LkEnv, scan_grubenv, scan_lk_env, scan_uboot_env

#: where bootloader environments live, relative to a partition's root
BOOTENV_PATHS: tuple[tuple[str, str], ...] = (
    ("/EFI/ubuntu/grubenv", "grubenv"),
    ("/boot/grub/grubenv", "grubenv"),
    ("/system-data/boot/grub/grubenv", "grubenv"),
    ("/grubenv", "grubenv"),
    ("/uboot.env", "uboot"),
    ("/uboot/ubuntu/boot.sel", "uboot"),
    ("/piboot/ubuntu/piboot.conf", "uboot"),
    ("/boot/lk/snaprecoverysel.bin", "lk"),
)
#: the UC20+ recovery bootloader's env on ubuntu-seed: it names the system to start
RECOVERY_BOOTENV_PATHS: tuple[tuple[str, str], ...] = (
    ("/EFI/ubuntu/grubenv", "grubenv"),
    ("/uboot/ubuntu/boot.sel", "uboot"),
    ("/piboot/ubuntu/piboot.conf", "uboot"),
    ("/boot/lk/snaprecoverysel.bin", "lk"),
)


@dataclass(frozen=True)
class BootEnv:
    """One environment file and what it says."""

    format: str  # "grubenv", "uboot" or "lk"
    variables: dict[str, str]
    valid: bool
    problems: tuple[str, ...] = ()
    size: int = 0
    #: u-boot only: whether the redundant-env flag byte is present
    redundant: bool | None = None
    details: dict[str, str] = field(default_factory=dict)


def parse_grubenv(data: bytes) -> BootEnv:
    scan = scan_grubenv(data)
    # GRUB escapes '\\' and newlines with a backslash
    variables = {k: v.replace("\\n", "\n").replace("\\\\", "\\") for k, v in scan.values.items()}
    return BootEnv("grubenv", variables, not scan.problems, scan.problems, len(data))


def parse_uboot_env(data: bytes) -> BootEnv:
    scan = scan_uboot_env(data)
    details = {"flags": str(data[4])} if scan.redundant else {}
    return BootEnv(
        "uboot",
        scan.values,
        not scan.problems,
        scan.problems,
        len(data),
        scan.redundant,
        details,
    )


def parse_lk_env(data: bytes) -> BootEnv:
    layout, scan = scan_lk_env(data)
    details: dict[str, str] = {}
    if layout is not None:
        details["struct"] = layout.name
        if len(data) >= layout.size:
            rows = LkEnv(layout, data).boot_partitions()
            details["boot partitions"] = " ".join(
                f"{label}={value}" for label, value in rows if label
            )
    return BootEnv("lk", scan.values, not scan.problems, scan.problems, len(data), None, details)


def parse_bootenv(fmt: str, data: bytes) -> BootEnv:
    if fmt == "grubenv":
        return parse_grubenv(data)
    if fmt == "uboot":
        return parse_uboot_env(data)
    if fmt == "lk":
        return parse_lk_env(data)
    raise ValueError(f"unknown boot environment format {fmt!r}")
