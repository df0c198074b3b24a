"""Parse bootloader environments: GRUB's grubenv, u-boot env and lk env files.

The formats are read by :mod:`ucimage.seed.bootenv` (which also writes them);
this module turns what it finds, problems included, into a :class:`BootEnv`.

* grubenv: exactly 1024 bytes, ``# GRUB Environment Block\\n``, ``key=value\\n``
  lines, padded with ``#``.
* u-boot env (``uboot.env``, ``boot.sel``, ``piboot.conf``): little-endian
  CRC32 of the payload, then (redundant format) one flag byte, then
  ``key=value\\0`` entries ending with an empty one, padding 0xFF.  The header
  form is found by which CRC matches.
* lk env: snapd's binary boot select struct, found by its signature and
  version.  As a file: ``boot/lk/snaprecoverysel.bin`` on a UC20+ ubuntu-seed.
  As the raw content of a bare partition, where the lk bootloader reads it
  (:func:`lk_select_kind`, :func:`parse_raw_lk_env`): the UC16/18 env
  ``snapbootsel.bin`` that ubuntu-image puts in the ``system-boot-select``
  partitions, and on UC20+ the gadget's run (``snapbootsel``) and recovery
  (``snaprecoverysel``) envs.  Such a partition is known by its GPT name
  (snapd's ``lk.partLabelForRole``: ``snapbootsel``, ``snaprecoverysel``, and
  the backups with ``bak`` appended), by the role of the gadget structure it was
  made from, or by an lk signature at its start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ucimage.seed.bootenv import (
    LK_LAYOUTS,
    LK_V1,
    LK_V2_RECOVERY,
    LK_V2_RUN,
    LkEnv,
    LkLayout,
    scan_grubenv,
    scan_lk_env,
    scan_uboot_env,
)

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


# ------------------------------------------------------------------ raw lk partitions

#: snapd's partition labels for the lk envs (``lk.partLabelForRole``, backup + "bak")
LK_PARTITION_NAMES: dict[str, str] = {
    "snapbootsel": "boot",
    "snapbootselbak": "boot",
    "snaprecoverysel": "recovery",
    "snaprecoveryselbak": "recovery",
}
#: gadget structure roles of the partitions holding an lk env
LK_SELECT_ROLES: dict[str, str] = {
    "system-boot-select": "boot",
    "bootselect": "boot",
    "system-seed-select": "recovery",
}
#: how much of a raw partition is read: enough for the biggest struct (v2 recovery)
LK_RAW_READ = 16384


def lk_select_kind(name: str, role: str = "") -> str | None:
    """``"boot"`` or ``"recovery"`` when a partition holds an lk env by its name or role."""
    return LK_SELECT_ROLES.get(role) or LK_PARTITION_NAMES.get(name)


def starts_like_lk_env(data: bytes) -> bool:
    """The signature and version words of one of the lk structs."""
    head = data[:8]
    return any(
        head == layout.signature.to_bytes(4, "little") + layout.version.to_bytes(4, "little")
        for layout in LK_LAYOUTS
    )


def expected_lk_layouts(kind: str | None, seed_layout: str | None) -> tuple[LkLayout, ...]:
    """The structs snapd reads from an lk partition of *kind* (``lk.newenv`` by role):
    the UC16/18 boot select is v1, the UC20+ run one v2-run, the recovery one v2-recovery."""
    if kind == "recovery":
        return (LK_V2_RECOVERY,)
    if kind == "boot":
        if seed_layout == "uc16":
            return (LK_V1,)
        if seed_layout == "uc20":
            return (LK_V2_RUN,)
        return (LK_V1, LK_V2_RUN)
    return LK_LAYOUTS


def parse_raw_lk_env(data: bytes, kind: str | None, seed_layout: str | None) -> BootEnv:
    """An lk env read from the start of a bare partition; a struct of another kind than
    snapd reads there (e.g. a v1 env in ``snaprecoverysel``) is a problem too."""
    env = parse_lk_env(data)
    found = env.details.get("struct")
    expected = expected_lk_layouts(kind, seed_layout)
    if found is None or any(layout.name == found for layout in expected):
        return env
    names = " or ".join(layout.name for layout in expected)
    where = f"an lk {kind} select partition" if kind else "this partition"
    problem = f"lk {found} env where snapd reads an lk {names} env ({where})"
    return BootEnv(
        env.format,
        env.variables,
        False,
        (*env.problems, problem),
        env.size,
        env.redundant,
        env.details,
    )
