"""Verbs ``pack`` (like ``snap pack``) and ``download`` (like ``snap download``)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's verbs to the ``ucimage`` parser."""
    p = subparsers.add_parser(
        "pack",
        help="pack a directory into a .snap like 'snap pack'",
        description="Pack DIR (with meta/snap.yaml) into NAME_VERSION_ARCH.snap with "
        "mksquashfs (xz, no fragments, root-owned); reproducible under SOURCE_DATE_EPOCH.",
    )
    p.add_argument("directory", metavar="DIR")
    p.add_argument("target", metavar="TARGET_DIR", nargs="?", help="output directory")
    p.add_argument("-o", "--output", metavar="DIR", help="output directory (default: .)")
    p.add_argument("--filename", help="output file name instead of NAME_VERSION_ARCH.snap")
    p.set_defaults(func=cmd_pack)


def cmd_pack(args: argparse.Namespace) -> int:
    from ucimage.snaps import pack

    out = pack(args.directory, args.output or args.target, filename=args.filename)
    print(f"built: {out}", file=sys.stdout)
    return 0
