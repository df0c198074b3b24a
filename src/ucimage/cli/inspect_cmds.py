"""``ucimage inspect IMAGE``: what a device booted from IMAGE would report."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from ucimage.errors import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's verbs to the ``ucimage`` parser."""
    p = subparsers.add_parser(
        "inspect",
        help="show partitions, filesystems, seeded snaps, model and boot env of an image",
        description=(
            "Inspect an Ubuntu Core disk image without root or mounts: partition table "
            "(GPT/MBR), filesystems, the seeded snaps as 'snap list' shows them on the "
            "device, the model assertion, and the bootloader environment. With --verify, "
            "check every seed assertion against the trust database and every seeded "
            "snap's digest and size against its snap-revision."
        ),
    )
    p.add_argument("image", type=Path, metavar="IMAGE", help="disk image file (e.g. pc.img)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON document instead")
    out.add_argument(
        "--model",
        action="store_true",
        help="print only the model assertion, as 'snap known model' does on the device",
    )
    out.add_argument(
        "--snap-list",
        action="store_true",
        help="print only the 'snap list' table of the seeded snaps",
    )
    p.add_argument(
        "--unicode",
        choices=("always", "never", "auto"),
        default="always",
        help=(
            "publisher marks in the snap list: ✓/✪ (always, the default), **/* (never), "
            "or as snap decides (auto: Unicode only on a UTF-8 terminal)"
        ),
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="verify assertions and snap digests; exit 1 if anything fails",
    )
    p.add_argument(
        "--trusted",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help=(
            "extra trusted root assertions (account + account-key, e.g. a self-hosted "
            "store's root.assert) for --verify and publisher names; repeatable"
        ),
    )
    p.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    # imported here, not at the top: keeps the parser (and start-up) cheap
    from ucimage.inspect import inspect_image, known_model, render_text, snap_list, to_json

    for f in args.trusted:
        if not f.is_file():
            raise UsageError(f"--trusted file {str(f)!r} does not exist")
    with tempfile.TemporaryDirectory(prefix="ucimage-inspect-") as tmp:
        report = inspect_image(
            args.image,
            Path(tmp),
            verify=args.verify,
            trusted=args.trusted,
            # the model alone needs no snap copied out of the image
            with_snaps=args.verify or not args.model,
        )
        if args.model or args.snap_list:
            if report.seed is None:
                raise UsageError(f"{args.image} has no seed, so no model and no snaps")
            if args.model:
                sys.stdout.buffer.write(known_model(report.seed))
            else:
                sys.stdout.write(snap_list(report.seed, unicode=_unicode(args.unicode)))
            sys.stdout.flush()
        elif args.json:
            json.dump(to_json(report), sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(render_text(report))
    if report.verify is not None and not report.verify.ok:
        names = ", ".join(c.subject for c in report.verify.failures)
        print(f"error: verification failed: {names}", file=sys.stderr)
        return 1
    return 0


def _unicode(mode: str) -> bool:
    """snap's ``--unicode`` rule (cmd/snap/color.go ``canUnicode``)."""
    if mode != "auto":
        return mode == "always"
    if not sys.stdout.isatty():
        return False
    lang = next((v for k in ("LC_MESSAGES", "LC_ALL", "LANG") if (v := os.environ.get(k))), "")
    return "UTF-8" in lang.upper() or "UTF8" in lang.upper()
