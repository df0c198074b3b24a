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
    p.add_argument("directory", metavar="DIR", help="snap tree with meta/snap.yaml")
    p.add_argument("target", metavar="TARGET_DIR", nargs="?", help="output directory")
    p.add_argument("-o", "--output", metavar="DIR", help="output directory (default: .)")
    p.add_argument("--filename", help="output file name instead of NAME_VERSION_ARCH.snap")
    p.set_defaults(func=cmd_pack)

    p = subparsers.add_parser(
        "download",
        help="download a snap and its assertions like 'snap download'",
        description="Resolve NAME in the store, download NAME_REV.snap (resuming a .partial "
        "file), check its size and SHA3-384, fetch its assertions into NAME_REV.assert and "
        "verify them against the trusted roots (Canonical's plus --trusted files).",
    )
    p.add_argument("name", metavar="NAME", help="snap name")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--channel", help="track/risk/branch (default: latest/stable)")
    which.add_argument("--revision", type=int, help="an exact revision")
    p.add_argument("--cohort", help="cohort key")
    p.add_argument("--target-directory", metavar="DIR", default=".", help="where to write")
    p.add_argument(
        "--store", metavar="URL", help="store URL (default: UBUNTU_STORE_URL, SNAPPY_FORCE_API_URL)"
    )
    p.add_argument(
        "--trusted",
        metavar="FILE",
        action="append",
        default=[],
        help="extra trusted root assertions (e.g. a ucimage store's root.assert); repeatable",
    )
    p.add_argument("--no-cache", action="store_true", help="do not use the download cache")
    p.set_defaults(func=cmd_download)


def cmd_pack(args: argparse.Namespace) -> int:
    from ucimage.snaps import pack

    out = pack(args.directory, args.output or args.target, filename=args.filename)
    print(f"built: {out}", file=sys.stdout)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ucimage.assertions import load_assertion_files
    from ucimage.store.client import SnapRequest, StoreClient

    trusted = load_assertion_files(args.trusted) if args.trusted else []
    request = SnapRequest(
        args.name, channel=args.channel, revision=args.revision, cohort_key=args.cohort
    )
    target = Path(args.target_directory)
    with StoreClient(args.store, use_cache=not args.no_cache) as client:
        (resolved,) = client.resolve([request])
        print(f"Fetching snap {resolved.name!r} revision {resolved.revision}", file=sys.stderr)
        (fetched,) = client.fetch([resolved], target, trusted=trusted)
    assert_path = target / f"{resolved.name}_{resolved.revision}.assert"
    assert_path.write_bytes(fetched.assertion_stream())
    print(f"{fetched.path}")
    print(f"{assert_path}")
    return 0
