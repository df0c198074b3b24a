"""Bootloader configuration and environment for a freshly seeded image.

The bootloader is named by a marker file at the gadget root (``grub.conf``,
``uboot.conf``, ``piboot.conf``, ``lk.conf``, ``androidboot.conf``).

UC16/18 (:func:`write_boot16`) writes into a boot directory whose sub-folder
(``grub/``, ``uboot/`` …) the build copies to the system-boot partition:
grub gets the gadget's ``grub.conf`` as ``grub.cfg`` plus a ``grubenv``;
u-boot gets ``uboot.env`` (the gadget's ``uboot.conf`` with the boot variables
set) and the kernel's assets extracted to ``<kernel>_<rev>.snap/``; lk gets
``snapbootsel.bin`` (the gadget's binary ``lk.conf`` with the boot variables and
the kernel assigned to a free boot partition) and the kernel's ``boot.img``.

UC20+ (:func:`write_recovery20`) writes the recovery bootloader files into the
seed tree: grub ``EFI/ubuntu/{grub.cfg,grubenv}`` and ``systems/<label>/grubenv``;
u-boot ``uboot/ubuntu/boot.sel`` and ``systems/<label>/kernel/``; piboot
``piboot/ubuntu/piboot.conf``, ``systems/<label>/kernel/``, ``config.txt`` and
``cmdline.txt``; lk ``boot/lk/snaprecoverysel.bin`` (the recovery system
assigned to a free recovery boot partition) and ``boot/lk/boot.img``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ucimage.errors import UcimageError
from ucimage.seed.bootenv import (
    LK_V1,
    LK_V2_RECOVERY,
    BootEnvError,
    GrubEnv,
    LkEnv,
    LkLayout,
    UbootEnv,
    scan_lk_env,
)
from ucimage.seed.model import ModelInfo

log = logging.getLogger(__name__)

MARKERS: dict[str, str] = {
    "grub.conf": "grub",
    "uboot.conf": "u-boot",
    "piboot.conf": "piboot",
    "lk.conf": "lk",
    "androidboot.conf": "android-boot",
}

#: kernel files a u-boot/piboot device boots from
KERNEL_ASSETS: tuple[str, ...] = ("kernel.img", "initrd.img", "dtbs")

#: ``extract(members, dest)``: unpack these paths of the kernel snap into dest
KernelExtractor = Callable[[Sequence[str], Path], None]


class BootloaderError(UcimageError):
    """The gadget's bootloader cannot be set up."""

    code = "bootloader"


@dataclass(frozen=True)
class BootAssets:
    """What the bootloader writers read: the unpacked gadget and a kernel extractor."""

    gadget_dir: Path
    extract_kernel: KernelExtractor

    def bootloader(self) -> str:
        found = [name for marker, name in MARKERS.items() if (self.gadget_dir / marker).exists()]
        if not found:
            raise BootloaderError(
                "the gadget has no bootloader marker file",
                hint="a gadget snap needs one of " + ", ".join(MARKERS) + " at its root",
            )
        if len(found) > 1:
            raise BootloaderError(f"the gadget has several bootloader markers: {found}")
        return found[0]


def boot16_vars(model: ModelInfo, core_file: str, kernel_file: str) -> dict[str, str]:
    """UC16/18 boot variables, in the order snapd writes them to grubenv."""
    values: dict[str, str] = {}
    if model.display_name:
        values["snap_menuentry"] = model.display_name
    values.update(
        snap_core=core_file,
        snap_kernel=kernel_file,
        snap_mode="",
        snap_try_core="",
        snap_try_kernel="",
    )
    return values


def write_boot16(
    boot_dir: Path,
    model: ModelInfo,
    assets: BootAssets,
    *,
    core_file: str,
    kernel_file: str,
) -> str:
    """Write UC16/18 bootloader files under *boot_dir*; returns the bootloader name."""
    loader = assets.bootloader()
    values = boot16_vars(model, core_file, kernel_file)
    gadget = assets.gadget_dir
    if loader == "grub":
        out = boot_dir / "grub"
        out.mkdir(parents=True, exist_ok=True)
        (out / "grub.cfg").write_bytes((gadget / "grub.conf").read_bytes())
        GrubEnv(values).write(out / "grubenv")
    elif loader == "u-boot":
        out = boot_dir / "uboot"
        out.mkdir(parents=True, exist_ok=True)
        env = _uboot_from_gadget(gadget / "uboot.conf")
        env.update(values)
        env.write(out / "uboot.env")
        assets.extract_kernel(KERNEL_ASSETS, out / kernel_file)
    elif loader == "lk":
        out = boot_dir / "lk"
        out.mkdir(parents=True, exist_ok=True)
        lk = _lk_from_gadget(gadget, LK_V1)
        # the kernel's boot image goes to a boot partition the gadget named
        installed = [lk["snap_kernel"]] if lk["snap_kernel"] else []
        _lk_boot_image(lk, assets, out, reserved=installed, value=kernel_file)
        lk.update(values, ignore_unknown=True)
        lk.write(out / "snapbootsel.bin")
    elif loader == "android-boot":
        out = boot_dir / "androidboot"
        out.mkdir(parents=True, exist_ok=True)
        current = _read_plain_env(gadget / "androidboot.conf")
        current.update(values)
        text = "".join(f"{k}={v}\n" for k, v in current.items())
        (out / "androidboot.env").write_text(text)
    else:
        raise BootloaderError(
            f"the {loader} bootloader is not supported for UC16/18 images yet",
            hint="use a grub, u-boot, lk or android-boot gadget",
        )
    return loader


def _uboot_from_gadget(conf: Path) -> UbootEnv:
    data = conf.read_bytes()
    if not data:
        return UbootEnv()
    return UbootEnv.decode(data)


def _lk_from_gadget(gadget: Path, layout: LkLayout, *, ignore_crc: bool = False) -> LkEnv:
    """The gadget's ``lk.conf``: an lk env (with the boot partition names) to start from.

    *ignore_crc*: accept a stale CRC32 (rewritten on save), as snapd does for the UC20+
    recovery env: its ``lk.SetBootVars`` tolerates a failed load at prepare-image time
    (the missing ``snaprecoveryselbak.bin`` backup makes the error "not exist") and saves
    the struct it read with a fresh CRC.  UC16/18 extracts the kernel first, and
    ``lk.ExtractKernelAssets`` fails on the same CRC.
    """
    data = (gadget / "lk.conf").read_bytes()
    try:
        env = LkEnv.decode(data, layout, ignore_crc=ignore_crc)
    except BootEnvError as exc:
        raise BootloaderError(
            f"cannot use the gadget's lk.conf: {exc.message}",
            hint=f"an lk gadget ships lk.conf as a binary lk {layout.name} env whose boot "
            "image matrix names the boot partitions (snapd cannot use it either)",
        ) from None
    _, scan = scan_lk_env(data, layout)
    if scan.crc_mismatch:
        log.warning("the gadget's lk.conf has a wrong CRC32 (%s); rewritten", scan.problems[0])
    return env


def _lk_boot_image(
    env: LkEnv, assets: BootAssets, out: Path, *, reserved: Sequence[str], value: str
) -> None:
    """Extract the kernel's boot image into *out* and record *value* for a free partition."""
    try:
        partition = env.find_free_boot_partition(reserved, value)
    except BootEnvError as exc:
        raise BootloaderError(exc.message, hint=exc.hint) from None
    assets.extract_kernel((env.boot_image_name(),), out)
    env.set_boot_partition(partition, value)


def _read_plain_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


def _piboot_layout(kernel_dir: Path) -> None:
    """The Pi firmware loads device trees from os_prefix: broadcom/*.dtb and overlays/."""
    dtbs = kernel_dir / "dtbs"
    broadcom = dtbs / "broadcom"
    if broadcom.is_dir():
        for item in sorted(broadcom.iterdir()):
            item.rename(kernel_dir / item.name)
    overlays = dtbs / "overlays"
    if overlays.is_dir():
        overlays.rename(kernel_dir / "overlays")
        (kernel_dir / "overlays" / "README").touch()


def _cmdline_file(gadget: Path, name: str) -> str:
    path = gadget / name
    if not path.is_file():
        return ""
    words: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.append(line)
    return " ".join(words)


def write_recovery20(
    seed_root: Path,
    model: ModelInfo,
    assets: BootAssets,
    *,
    label: str,
    kernel_path: str,
    boot_flags: Sequence[str] = (),
) -> str:
    """Write the UC20+ recovery bootloader files into the seed tree."""
    loader = assets.bootloader()
    gadget = assets.gadget_dir
    system = seed_root / "systems" / label
    recovery: dict[str, str] = {}
    if boot_flags:
        recovery["snapd_boot_flags"] = ",".join(boot_flags)
    recovery["snapd_recovery_system"] = label
    recovery["snapd_recovery_mode"] = "install"
    if loader == "grub":
        efi = seed_root / "EFI/ubuntu"
        efi.mkdir(parents=True, exist_ok=True)
        (efi / "grub.cfg").write_text(RECOVERY_GRUB_CFG)
        GrubEnv(recovery).write(efi / "grubenv")
        GrubEnv(
            {
                "snapd_recovery_kernel": kernel_path,
                "snapd_extra_cmdline_args": _cmdline_file(gadget, "cmdline.extra"),
                "snapd_full_cmdline_args": _cmdline_file(gadget, "cmdline.full"),
            }
        ).write(system / "grubenv")
    elif loader == "u-boot":
        if (gadget / "uboot.conf").stat().st_size:
            raise BootloaderError("non-empty uboot.env not supported on UC20+ yet")
        out = seed_root / "uboot/ubuntu"
        out.mkdir(parents=True, exist_ok=True)
        UbootEnv(recovery).write(out / "boot.sel")
        assets.extract_kernel(KERNEL_ASSETS, system / "kernel")
    elif loader == "piboot":
        out = seed_root / "piboot/ubuntu"
        out.mkdir(parents=True, exist_ok=True)
        UbootEnv(recovery).write(out / "piboot.conf")
        kernel_dir = system / "kernel"
        assets.extract_kernel(KERNEL_ASSETS, kernel_dir)
        _piboot_layout(kernel_dir)
        config = seed_root / "config.txt"
        cmdline = seed_root / "cmdline.txt"
        if not config.is_file() or not cmdline.is_file():
            raise BootloaderError(
                "a piboot gadget must put config.txt and cmdline.txt on the seed partition"
            )
        text = config.read_text()
        if text and not text.endswith("\n"):
            text += "\n"
        config.write_text(text + f"\nos_prefix=/systems/{label}/kernel/\n")
        recovery_args = f"snapd_recovery_mode=install snapd_recovery_system={label}"
        args = f"{cmdline.read_text().strip()} {recovery_args}"
        (kernel_dir / "cmdline.txt").write_text(args.strip() + "\n")
    elif loader == "lk":
        # snapd: <seed>/boot/lk/snaprecoverysel.bin (no boot flags in the struct) and
        # the kernel's boot image beside it, for the system-seed-image partitions
        out = seed_root / "boot/lk"
        out.mkdir(parents=True, exist_ok=True)
        env = _lk_from_gadget(gadget, LK_V2_RECOVERY, ignore_crc=True)
        env.update(recovery, ignore_unknown=True)
        assigned = [value for _, value in env.boot_partitions() if value]
        _lk_boot_image(env, assets, out, reserved=assigned, value=label)
        env.write(out / "snaprecoverysel.bin")
    else:
        raise BootloaderError(
            f"the {loader} bootloader is not supported for UC20+ images yet",
            hint="use a grub, u-boot, piboot or lk gadget",
        )
    return loader


#: our recovery grub menu: boots the chosen recovery system's kernel snap with
#: the mode and label from EFI/ubuntu/grubenv (same variables snapd uses)
RECOVERY_GRUB_CFG = """\
# Snapd-Boot-Config-Edition: 1
# Recovery menu written by ucimage.

set default=0
set timeout=3
set timeout_style=hidden

if [ -e /EFI/ubuntu/grubenv ]; then
    load_env --file /EFI/ubuntu/grubenv snapd_recovery_mode snapd_recovery_system
fi
if [ -z "$snapd_recovery_mode" ]; then
    set snapd_recovery_mode=install
fi

set base_args="panic=-1"
set grub_binary="none"
if [ "$grub_cpu" = "x86_64" ]; then
    set base_args="console=ttyS0 console=tty1 panic=-1"
    set grub_binary="grubx64.efi"
elif [ "$grub_cpu" = "arm64" ]; then
    set grub_binary="grubaa64.efi"
fi

search --no-floppy --set=boot_fs --label ubuntu-boot
if [ "$snapd_recovery_mode" = "run" ]; then
    set default="run"
elif [ -n "$snapd_recovery_system" ]; then
    set default="$snapd_recovery_mode-$snapd_recovery_system"
fi
if [ -n "$boot_fs" ]; then
    menuentry "Run mode" --id=run {
        chainloader ($boot_fs)/EFI/boot/$grub_binary
    }
fi

for system in /systems/*; do
    regexp --set 1:system "/([a-z0-9](-?[a-z0-9])*)\\$" "$system"
    if [ -z "$system" ]; then
        continue
    fi
    if [ -z "$snapd_recovery_system" ]; then
        set default="$snapd_recovery_mode-$system"
    fi
    set snapd_recovery_kernel=
    set snapd_extra_cmdline_args=
    set snapd_full_cmdline_args=
    load_env --file /systems/$system/grubenv snapd_recovery_kernel \\
        snapd_extra_cmdline_args snapd_full_cmdline_args
    set args="$base_args $snapd_extra_cmdline_args"
    if [ -n "$snapd_full_cmdline_args" ]; then
        set args="$snapd_full_cmdline_args"
    fi
    for mode in install recover factory-reset; do
        menuentry "$mode using $system" --id=$mode-$system $snapd_recovery_kernel $mode $system {
            loopback loop $2
            chainloader (loop)/kernel.efi snapd_recovery_mode=$3 snapd_recovery_system=$4 $args
        }
    done
done

menuentry "UEFI firmware settings" --id=uefi-firmware {
    fwsetup
}
"""
