"""``ucimage snap MODEL``: build Ubuntu Core images (ubuntu-image's command line).

Thin: parses flags into :class:`ucimage.build.options.BuildOptions` and runs
:class:`ucimage.build.pipeline.ImageBuild`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ucimage.build.options import (
    STEP_NAMES,
    BuildOptions,
    ImageSize,
    parse_image_size,
    parse_revision,
    parse_snap_arg,
)
from ucimage.errors import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's verbs to the ``ucimage`` parser."""
    p = subparsers.add_parser(
        "snap",
        help="build Ubuntu Core disk images from a model assertion (like ubuntu-image snap)",
        description=(
            "Build the disk images, seed.manifest and snaps.manifest for a model "
            "assertion, rootless and reproducible (SOURCE_DATE_EPOCH). Snaps come from "
            "the store (with cache), local .snap files, or both."
        ),
    )
    p.add_argument(
        "model", nargs="?", type=Path, help="model assertion file (optional with --resume)"
    )
    snap = p.add_argument_group("snaps")
    snap.add_argument(
        "--snap",
        action="append",
        default=[],
        metavar="NAME[=CHANNEL]|PATH.snap",
        help="extra or overriding snap (repeatable)",
    )
    snap.add_argument("-c", "--channel", help="default channel for the snaps")
    snap.add_argument(
        "--revision", action="append", default=[], metavar="NAME:REV", help="pin a snap revision"
    )
    snap.add_argument("--validation", choices=("ignore", "enforce"), help="validation-set handling")
    snap.add_argument(
        "--store", metavar="URL", help="store to fetch from (default: the Snap Store)"
    )
    snap.add_argument(
        "--trusted",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="extra trusted root assertions (account/account-key) for verification",
    )
    snap.add_argument(
        "--assertion",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="extra assertions (e.g. the brand's account-key) to verify the model",
    )
    snap.add_argument("--offline", action="store_true", help="use only the cache and local files")
    snap.add_argument(
        "--allow-unverified",
        action="store_true",
        help="build even if the model's signature chain cannot be verified",
    )
    img = p.add_argument_group("image")
    img.add_argument("-O", "--output-dir", type=Path, help="where images and manifests go")
    img.add_argument(
        "-w", "--workdir", type=Path, help="keep intermediate files here (for --resume)"
    )
    img.add_argument("-i", "--image-size", metavar="SIZE|VOL:SIZE,...", help="image size")
    img.add_argument(
        "--sector-size", type=int, default=512, choices=(512, 4096), help="default 512"
    )
    img.add_argument("--disk-info", type=Path, metavar="FILE", help="copied to .disk/info")
    img.add_argument(
        "--cloud-init", type=Path, metavar="USER-DATA", help="cloud-init user-data (UC16/18)"
    )
    img.add_argument("--disable-console-conf", action="store_true", help="(UC16/18)")
    img.add_argument(
        "--factory-image", action="store_true", help="set the factory boot flag (UC20+)"
    )
    img.add_argument(
        "--seed-only",
        action="store_true",
        help="write only the seed tree (no disk images), like snap prepare-image",
    )
    img.add_argument(
        "--seed",
        dest="image_seed",
        metavar="VALUE",
        help=(
            "derive disk and partition GUIDs, filesystem UUIDs, ext4 hash seeds and vfat ids "
            "from VALUE (default: from SOURCE_DATE_EPOCH and the volume name)"
        ),
    )
    img.add_argument("--bmap", action="store_true", help="also write <volume>.img.bmap")
    img.add_argument("--compress", choices=("zstd",), help="compress the images")
    run = p.add_argument_group("steps")
    run.add_argument("--dry-run", action="store_true", help="print the plan as JSON and exit")
    steps = run.add_mutually_exclusive_group()
    steps.add_argument("-u", "--until", choices=STEP_NAMES, metavar="STEP", help="stop before STEP")
    steps.add_argument("-t", "--thru", choices=STEP_NAMES, metavar="STEP", help="stop after STEP")
    run.add_argument("-r", "--resume", action="store_true", help="continue a build in --workdir")
    run.add_argument("--json", action="store_true", help="progress as JSON lines on stdout")
    talk = run.add_mutually_exclusive_group()
    talk.add_argument("-d", "--debug", action="store_true", help="debug output and timings")
    talk.add_argument("-v", "--verbose", action="store_true", help="more output")
    talk.add_argument("-q", "--quiet", action="store_true", help="only errors")
    p.set_defaults(func=handle_snap)


def options_from_args(args: argparse.Namespace) -> BuildOptions:
    verbosity = 2 if args.debug else 1 if args.verbose else -1 if args.quiet else 0
    return BuildOptions(
        model=args.model,
        snaps=tuple(parse_snap_arg(s) for s in args.snap),
        channel=args.channel,
        revisions=tuple(parse_revision(r) for r in args.revision),
        output_dir=args.output_dir,
        workdir=args.workdir,
        image_size=parse_image_size(args.image_size) if args.image_size else ImageSize(),
        sector_size=args.sector_size,
        disk_info=args.disk_info,
        cloud_init=args.cloud_init,
        disable_console_conf=args.disable_console_conf,
        validation=args.validation,
        factory_image=args.factory_image,
        dry_run=args.dry_run,
        until=args.until,
        thru=args.thru,
        resume=args.resume,
        store=args.store,
        trusted=tuple(args.trusted),
        assertions=tuple(args.assertion),
        offline=args.offline,
        allow_unverified=args.allow_unverified,
        seed_only=args.seed_only,
        image_seed=args.image_seed,
        bmap=args.bmap,
        compress=args.compress,
        json=args.json,
        verbosity=verbosity,
    )


def handle_snap(args: argparse.Namespace) -> int:
    from ucimage.build.pipeline import ImageBuild

    opts = options_from_args(args)
    if opts.model is None and not opts.resume:
        raise UsageError("missing the model assertion argument", hint="ucimage snap MODEL")
    return ImageBuild(opts).run()
