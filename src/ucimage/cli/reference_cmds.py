"""``ucimage reference build``: the reference platform's snaps from Debian parts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's verbs to the ``ucimage`` parser."""
    p = subparsers.add_parser(
        "reference",
        help="the reference platform (pc, pc-kernel, core18, snapd snaps from Debian parts)",
        description="Build the reference platform: four bootable snaps made from Debian packages.",
    )
    sub = p.add_subparsers(dest="reference_verb", metavar="ACTION")
    b = sub.add_parser(
        "build",
        help="download Debian packages (cached) and pack the four reference snaps",
        description=(
            "Download Debian's kernel, busybox-static, grub-pc-bin and grub-efi-amd64-bin "
            "(cached under the XDG cache dir), build the initramfs and GRUB images, and pack "
            "the pc (gadget), pc-kernel (kernel), core18 (base) and snapd snaps into --out."
        ),
    )
    b.add_argument(
        "--out", type=Path, default=Path("reference-snaps"), metavar="DIR", help="output dir"
    )
    b.add_argument(
        "--push",
        metavar="STORE_URL",
        help="then push the snaps to this ucimage store and release them "
        "(pc, pc-kernel: 18/stable and latest/stable; core18, snapd: latest/stable)",
    )
    b.add_argument(
        "--token-file", metavar="FILE", help="store upload token (default: $UCIMAGE_STORE_TOKEN)"
    )
    b.add_argument(
        "--trusted",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="root assertions (e.g. a store's root.assert) the device trusts like snapd's "
        "built-in roots; carried in the snapd snap (repeatable)",
    )
    b.add_argument(
        "--apt-update",
        action="store_true",
        help="if apt knows none of the packages, run 'apt-get update' once (root) and retry",
    )
    b.add_argument("--dry-run", action="store_true", help="print the resolved plan and exit")
    b.set_defaults(func=handle_build)

    def no_action(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=no_action)


def handle_build(args: argparse.Namespace) -> int:
    # imported here, not at the top: keeps the parser (and start-up) cheap
    from ucimage.reference.build import build, plan_build

    plan = plan_build(args.out, apt_update=args.apt_update, trusted=tuple(args.trusted))
    if args.dry_run:
        print(json.dumps(plan.to_json(), indent=2))
        return 0
    result = build(plan, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    for name, path in result.snaps.items():
        print(f"{name}\t{path}")
    if args.push:
        from ucimage.reference.publish import push_reference_snaps
        from ucimage.store.admin import read_token

        push_reference_snaps(
            args.push,
            read_token(args.token_file),
            result.snaps,
            progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    return 0
