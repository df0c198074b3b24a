"""``ucimage boot IMAGE``: boot a disk image in QEMU with a pass/fail verdict."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ucimage.boot.qemu import BootResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's verbs to the ``ucimage`` parser."""
    p = subparsers.add_parser(
        "boot",
        help="boot a disk image in QEMU (serial console, verdict, timeout)",
        description=(
            "Boot IMAGE in QEMU with its serial console on this terminal. Exits 0 when "
            "--expect is seen (or, without --expect, when the VM powers off cleanly); "
            "exits 1 on a known failure line (GRUB error, kernel panic, ...) or when "
            "--timeout passes, killing the VM. The image is not changed (-snapshot) "
            "unless --no-snapshot is given."
        ),
    )
    p.add_argument("image", type=Path, metavar="IMAGE", help="raw or qcow2 disk image")
    p.add_argument("--uefi", action="store_true", help="boot with UEFI firmware (OVMF)")
    p.add_argument(
        "--kvm",
        choices=("auto", "on", "off"),
        default="auto",
        help="hardware acceleration; auto uses KVM only when it really works, else TCG",
    )
    p.add_argument("--memory", type=int, default=512, metavar="MIB", help="guest RAM (512)")
    p.add_argument("--smp", type=int, default=1, metavar="N", help="guest CPUs (1)")
    p.add_argument(
        "--ssh-port",
        type=int,
        default=None,
        metavar="PORT",
        help="forward 127.0.0.1:PORT to the guest's port 22 (e.g. 8022)",
    )
    p.add_argument("--virtio", action="store_true", help="attach the disk as virtio-blk")
    p.add_argument("--log", type=Path, metavar="FILE", help="also write the console to FILE")
    p.add_argument(
        "--expect", metavar="REGEX", help="succeed as soon as a console line matches REGEX"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="fail and kill the VM after this long (180)",
    )
    p.add_argument(
        "--snapshot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="discard guest writes (default); --no-snapshot lets the guest change IMAGE",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="do not echo the console")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.add_argument(
        "--dry-run", action="store_true", help="print the resolved plan (QEMU command) and exit"
    )
    p.set_defaults(func=handle_boot)


def _report(result: BootResult) -> None:
    marks = ", ".join(f"{name} {t:.1f}s" for name, t in result.milestones)
    verdict = "PASS" if result.ok else "FAIL"
    print(f"ucimage boot: {verdict} after {result.elapsed:.1f}s: {result.reason}", file=sys.stderr)
    if marks:
        print(f"ucimage boot: milestones: {marks}", file=sys.stderr)


def handle_boot(args: argparse.Namespace) -> int:
    # imported here, not at the top: keeps the parser (and start-up) cheap
    from ucimage.boot.qemu import plan_boot, run_boot

    plan = plan_boot(
        args.image,
        uefi=args.uefi,
        kvm=args.kvm,
        memory_mib=args.memory,
        smp=args.smp,
        ssh_port=args.ssh_port,
        snapshot=args.snapshot,
        timeout=args.timeout,
        expect=args.expect,
        log=args.log,
        virtio=args.virtio,
    )
    if args.dry_run:
        print(json.dumps(plan.to_json(), indent=2))
        return 0
    print(f"ucimage boot: {plan.accel_reason}; firmware {plan.firmware}", file=sys.stderr)

    def echo(line: str) -> None:
        print(line, flush=True)

    result = run_boot(plan, on_line=None if args.quiet or args.json else echo)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    _report(result)
    return 0 if result.ok else 1
