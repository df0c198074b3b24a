"""Tiny test snaps and models for the image-build tests (owned by the build issue).

Snaps are squashfs files made with ``mksquashfs`` from a few files: a
``meta/snap.yaml`` plus what the snap type needs (kernel assets, a gadget tree
around a gadget.yaml from the shared test data).  Everything is deterministic
(fixed mtimes, ``-all-root``) so digests are stable between runs.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

from tests.conftest import TESTDATA

GADGETS = TESTDATA / "gadgets"

#: snap ids used in the test models (any 32-char string will do)
SNAP_IDS: dict[str, str] = {
    "snapd": "PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4",
    "core": "99T7MUlRhtI3U0QFgl5mXXESAiSwt776",
    "core18": "CSO04Jhav2yK0uz97cr0ipQRyqg0qQL6",
    "core20": "DLqre5XGLbDqg9jPtiAhRRjDuPVa5X1q",
    "pc": "UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH",
    "pc-kernel": "pYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza",
    "pi3": "Tt2CmDqGrWFiPAYrgQkzUkRumbCgjUyA",
    "pi2-kernel": "4wOF9vBHBBvoHNhRZ4i4SYz3Y5IDWxmx",
    "hello-world": "buPKUD3TKqCOgLEjjHx5kSiCpIs5cMuQ",
}


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def mksquashfs(tree: Path, out: Path) -> Path:
    """Pack *tree* into *out* deterministically."""
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            os.utime(
                os.path.join(root, name), (1_600_000_000, 1_600_000_000), follow_symlinks=False
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mksquashfs",
            str(tree),
            str(out),
            "-noappend",
            "-comp",
            "gzip",
            "-no-xattrs",
            "-all-root",
            "-no-progress",
            "-quiet",
            "-mkfs-time",
            "1600000000",
            "-all-time",
            "1600000000",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def uboot_env(size: int, values: dict[str, str]) -> bytes:
    """An independent u-boot env encoder (CRC + flag byte + sorted k=v NULs + 0xff)."""
    payload = b"".join(f"{k}={v}".encode() + b"\0" for k, v in sorted(values.items())) + b"\0"
    payload = payload.ljust(size - 5, b"\xff")
    return struct.pack("<I", zlib.crc32(payload)) + b"\0" + payload


#: lk env field order (snapd's lkenv structs, read from its documented C layout):
#: 256-byte NUL-terminated strings after a signature and a version word; the
#: ``*matrix`` entries are [rows][2] pairs (boot image partition label, value)
LK_V1_FIELDS: tuple[tuple[str, int], ...] = (
    ("snap_mode", 1), ("snap_core", 1), ("snap_try_core", 1), ("snap_kernel", 1),
    ("snap_try_kernel", 1), ("gadget_mode", 1), ("snap_gadget", 1), ("snap_try_gadget", 1),
    ("reboot_reason", 1), ("matrix", 4), ("bootimg_file_name", 1), ("gadget_matrix", 4),
    ("unused", 20), ("pairs", 20),
)  # fmt: skip
LK_V2_RUN_FIELDS: tuple[tuple[str, int], ...] = (
    ("kernel_status", 1), ("snap_kernel", 1), ("snap_try_kernel", 1), ("gadget_mode", 1),
    ("snap_gadget", 1), ("snap_try_gadget", 1), ("matrix", 4), ("bootimg_file_name", 1),
    ("gadget_matrix", 4), ("unused", 20), ("pairs", 20),
)  # fmt: skip
LK_V2_RECOVERY_FIELDS: tuple[tuple[str, int], ...] = (
    ("snapd_recovery_mode", 1), ("snapd_recovery_system", 1), ("matrix", 20),
    ("bootimg_file_name", 1), ("try_recovery_system", 1), ("recovery_system_status", 1),
    ("device_lock_state", 1), ("unused", 17), ("pairs", 20),
)  # fmt: skip


def lk_env(
    fields: tuple[tuple[str, int], ...],
    signature: bytes,
    version: int,
    values: dict[str, str],
    boot_partitions: list[str],
    *,
    size: int = 0,
    fill: bytes = b"\0",
) -> bytes:
    """An independent lk env encoder: fields, then a CRC32 of all before it.

    *fill* pads the result to *size* (a partition-sized file).
    """
    body = bytearray(signature + struct.pack("<I", version))
    for name, slots in fields:
        if name == "matrix":
            for i in range(slots // 2):
                label = boot_partitions[i] if i < len(boot_partitions) else ""
                body += label.encode().ljust(256, b"\0") + bytes(256)
        else:
            body += values.get(name, "").encode().ljust(256 * slots, b"\0")
    body += struct.pack("<I", zlib.crc32(bytes(body)))
    return bytes(body).ljust(size, fill)


def make_snap(
    workdir: Path,
    name: str,
    snap_type: str = "app",
    *,
    version: str = "1.0",
    base: str | None = None,
    gadget_yaml: str | None = None,
    bootloader: str = "grub",
    payload: int = 0,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Build ``<workdir>/<name>.snap``; *payload* adds that many pseudo-random bytes."""
    tree = workdir / f"{name}.tree"
    if tree.exists():
        shutil.rmtree(tree)
    lines = [f"name: {name}", f"version: '{version}'", f"type: {snap_type}"]
    if base:
        lines.append(f"base: {base}")
    if snap_type == "app":
        lines.append("apps:\n  hello:\n    command: bin/hello")
        _write(tree / "bin/hello", "#!/bin/sh\necho hello\n")
    _write(tree / "meta/snap.yaml", "\n".join(lines) + "\n")
    if snap_type == "kernel":
        _write(tree / "kernel.img", b"KERNEL" * 100)
        _write(tree / "initrd.img", b"INITRD" * 100)
        _write(tree / "dtbs/board.dtb", b"DTB")
    if snap_type == "gadget":
        assert gadget_yaml is not None
        _write(tree / "meta/gadget.yaml", (GADGETS / gadget_yaml).read_bytes())
        for blob in ("pc-boot.img", "pc-core.img"):
            _write(tree / blob, blob.encode().ljust(400, b"\0"))
        for blob in ("grubx64.efi", "shim.efi.signed", "mmx64.efi"):
            _write(tree / blob, f"fake {blob}\n")
        _write(tree / "grub.cfg", "# gadget grub.cfg\n")
        _write(tree / "boot-assets/config.txt", "# config\n")
        _write(tree / "boot-assets/cmdline.txt", "console=tty0\n")
        if bootloader == "grub":
            _write(tree / "grub.conf", "")
        elif bootloader == "u-boot":
            _write(tree / "uboot.conf", uboot_env(4096, {"bootcmd": "run snappy_boot"}))
    if payload:
        # incompressible but deterministic
        seed = name.encode()
        chunks = []
        block = zlib.compress(seed)
        import hashlib

        h = hashlib.shake_256(block)
        chunks.append(h.digest(payload))
        _write(tree / "payload.bin", b"".join(chunks))
    for rel, data in (extra or {}).items():
        _write(tree / rel, data)
    return mksquashfs(tree, workdir / f"{name}.snap")


def snaps_uc18(workdir: Path) -> list[Path]:
    return [
        make_snap(workdir, "snapd", "snapd"),
        make_snap(workdir, "core18", "base"),
        make_snap(workdir, "pc-kernel", "kernel"),
        make_snap(workdir, "pc", "gadget", base="core18", gadget_yaml="pc-amd64-uc18.yaml"),
        make_snap(workdir, "hello-world", "app", base="core18"),
    ]


def snaps_uc16(workdir: Path) -> list[Path]:
    return [
        make_snap(workdir, "core", "os"),
        make_snap(workdir, "pc-kernel", "kernel"),
        make_snap(workdir, "pc", "gadget", gadget_yaml="pc-amd64-uc16.yaml"),
    ]


def snaps_uc16_pi3(workdir: Path) -> list[Path]:
    return [
        make_snap(workdir, "core", "os"),
        make_snap(workdir, "pi2-kernel", "kernel"),
        make_snap(
            workdir, "pi3", "gadget", gadget_yaml="pi3-uc16-implicit-data.yaml", bootloader="u-boot"
        ),
    ]


def snaps_uc20(workdir: Path) -> list[Path]:
    return [
        make_snap(workdir, "snapd", "snapd"),
        make_snap(workdir, "core20", "base"),
        make_snap(workdir, "pc-kernel", "kernel"),
        make_snap(workdir, "pc", "gadget", base="core20", gadget_yaml="pc-amd64-uc20.yaml"),
        make_snap(workdir, "hello-world", "app", base="core20"),
    ]


SNAP_SIGN = TESTDATA / "assertions" / "snap-sign"
#: the self-signed testbrand account and key that sign our test models
TRUSTED_FILES = (
    SNAP_SIGN / "outputs" / "account-self.assert",
    SNAP_SIGN / "outputs" / "account-key-self.assert",
)

MODEL_UC16_PI3: dict[str, object] = {
    "model": "t16pi",
    "display-name": "Pi3 test",
    "architecture": "armhf",
    "gadget": "pi3",
    "kernel": "pi2-kernel",
}
MODEL_UC16_PC: dict[str, object] = {
    "model": "t16",
    "architecture": "amd64",
    "gadget": "pc",
    "kernel": "pc-kernel",
}
MODEL_UC18: dict[str, object] = {
    "model": "t18",
    "display-name": "Test UC18 (amd64)",
    "architecture": "amd64",
    "base": "core18",
    "gadget": "pc=18",
    "kernel": "pc-kernel=18",
    "required-snaps": ["hello-world"],
}


def model_uc20(grade: str = "dangerous") -> dict[str, object]:
    def entry(name: str, snap_type: str, channel: str = "latest/stable") -> dict[str, str]:
        return {"name": name, "type": snap_type, "default-channel": channel, "id": SNAP_IDS[name]}

    return {
        "model": f"t20-{grade}",
        "display-name": "Test UC20",
        "architecture": "amd64",
        "base": "core20",
        "grade": grade,
        "snaps": [
            entry("pc", "gadget", "20/stable"),
            entry("pc-kernel", "kernel", "20/stable"),
            entry("core20", "base"),
            entry("snapd", "snapd"),
            entry("hello-world", "app"),
        ],
    }


def sign_model(headers: dict[str, object], out: Path) -> Path:
    """Sign a model with the shared throwaway testkey1 as brand ``testbrand``."""
    import json

    from ucimage.assertions import PrivateKey, sign_json

    key = PrivateKey.from_pem((SNAP_SIGN / "keys" / "testkey1.private.pem").read_bytes())
    doc = {
        "type": "model",
        "authority-id": "testbrand",
        "brand-id": "testbrand",
        "series": "16",
        "timestamp": "2024-01-01T00:00:00+00:00",
        **headers,
    }
    assertion = sign_json(json.dumps(doc), key)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(assertion.encode())
    return out


def snaps_uc20_pi(workdir: Path, bootloader: str = "u-boot") -> list[Path]:
    """UC20 arm64 Raspberry Pi style: MBR, u-boot (boot.sel) or piboot, $kernel: dtbs."""
    gadget_yaml = {
        "u-boot": "pi-arm64-uc20-mbr-hybrid-types.yaml",
        "piboot": "pi-uc24-piboot.yaml",
    }[bootloader]
    kernel_yaml = "assets:\n  dtbs:\n    update: true\n    content:\n      - dtbs/\n"
    return [
        make_snap(workdir, "snapd", "snapd"),
        make_snap(workdir, "core20", "base"),
        make_snap(
            workdir,
            "pi-kernel",
            "kernel",
            extra={
                "meta/kernel.yaml": kernel_yaml.encode(),
                "dtbs/broadcom/bcm2711-rpi-4-b.dtb": b"DTB4",
                "dtbs/overlays/uart.dtbo": b"OVL",
            },
        ),
        make_snap(
            workdir,
            "pi",
            "gadget",
            base="core20",
            gadget_yaml=gadget_yaml,
            bootloader="none",
            extra={
                ("piboot.conf" if bootloader == "piboot" else "uboot.conf"): b"",
                "boot.sel": b"",
            },
        ),
    ]


#: a UC16/18 lk board: snapbootsel (the env) and two boot image partitions
LK_UC18_GADGET_YAML = """\
volumes:
  board:
    schema: gpt
    bootloader: lk
    structure:
      - name: snapbootsel
        size: 131072
        type: B214D5E4-D442-45E6-B8C6-01BDCD82D396
        role: system-boot-select
        content:
          - image: snapbootsel.bin
      - name: boot_a
        size: 1M
        type: 20117F86-E985-4357-B9EE-374BC1D8487D
        role: system-boot-image
        content:
          - image: boot.img
      - name: boot_b
        size: 1M
        type: 20117F86-E985-4357-B9EE-374BC1D8487D
        role: system-boot-image
      - name: system-boot
        size: 8M
        type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4
        filesystem: ext4
        role: system-boot
"""
#: what the lk gadget's files hold past the struct (snapd leaves it as it is)
LK_TAIL = b"\xee" * 1524


def snaps_uc18_lk(workdir: Path, conf: bytes | None = None) -> list[Path]:
    """UC18 with an lk gadget: ``lk.conf`` (*conf*, by default a v1 env naming
    boot_a/boot_b) also as ``snapbootsel.bin``; the kernel has boot.img."""
    workdir.mkdir(parents=True, exist_ok=True)
    gadget_yaml = workdir / "lk-gadget.yaml"
    gadget_yaml.write_text(LK_UC18_GADGET_YAML)
    if conf is None:
        conf = lk_env(LK_V1_FIELDS, b"SBse", 0x00010001, {}, ["boot_a", "boot_b"]) + LK_TAIL
    return [
        make_snap(workdir, "snapd", "snapd"),
        make_snap(workdir, "core18", "base"),
        make_snap(workdir, "pc-kernel", "kernel", extra={"boot.img": b"BOOTIMG" * 10}),
        make_snap(
            workdir, "pc", "gadget", base="core18", gadget_yaml=str(gadget_yaml),
            bootloader="none",
            # snapd lays the volume out at prepare-image time: every image: file must exist
            extra={"lk.conf": conf, "snapbootsel.bin": conf, "boot.img": b"placeholder"},
        ),
        make_snap(workdir, "hello-world", "app", base="core18"),
    ]  # fmt: skip


def snaps_uc20_lk(workdir: Path, conf: bytes | None = None) -> list[Path]:
    """UC20 lk (snapd's dragonboard-style test gadget): ``lk.conf`` is a v2 recovery env
    (*conf* as given, also as ``snaprecoverysel.bin``), ``blobs/snapbootsel.bin`` (the
    snapbootsel partitions' content) a v2 run env."""
    workdir.mkdir(parents=True, exist_ok=True)
    if conf is None:
        recovery = lk_env(LK_V2_RECOVERY_FIELDS, b"SRse", 0x00010010, {}, ["boot_ra", "boot_rb"])
        conf = recovery + LK_TAIL  # the gadget's file is longer than the struct
    else:
        recovery = conf
    blobs = ("sbc_1.0_8016.bin", "sbl1.mbn", "rpm.mbn", "tz.mbn", "hyp.mbn",
             "emmc_appsboot.mbn")  # fmt: skip
    extra = {f"blobs/{name}": name.encode() for name in blobs}
    run = lk_env(LK_V2_RUN_FIELDS, b"SBse", 0x00010010, {}, ["boot_a", "boot_b"])
    extra["blobs/snapbootsel.bin"] = run
    extra.update({"lk.conf": conf, "snaprecoverysel.bin": recovery})
    return [
        make_snap(workdir, "snapd", "snapd"),
        make_snap(workdir, "core20", "base"),
        make_snap(workdir, "pc-kernel", "kernel", extra={"boot.img": b"BOOTIMG" * 10}),
        make_snap(
            workdir, "pc", "gadget", base="core20",
            gadget_yaml="snapd-lk-uc20-explicit-offsets.yaml", bootloader="none", extra=extra,
        ),
        make_snap(workdir, "hello-world", "app", base="core20"),
    ]  # fmt: skip


def model_uc20_pi(grade: str = "dangerous") -> dict[str, object]:
    return {
        "model": f"t20-pi-{grade}",
        "architecture": "arm64",
        "base": "core20",
        "grade": grade,
        "snaps": [
            {"name": "pi", "type": "gadget", "default-channel": "20/stable", "id": "P" * 32},
            {"name": "pi-kernel", "type": "kernel", "default-channel": "20/stable", "id": "Q" * 32},
            {"name": "core20", "type": "base", "id": SNAP_IDS["core20"]},
            {"name": "snapd", "type": "snapd", "id": SNAP_IDS["snapd"]},
        ],
    }
