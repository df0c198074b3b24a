"""``ucimage snap MODEL``: build Ubuntu Core images (ubuntu-image's command line).

Thin: parses flags into :class:`ucimage.build.options.BuildOptions` and runs
:class:`ucimage.build.pipeline.ImageBuild`.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Any

from ucimage import __version__
from ucimage.build.options import (
    STEP_NAMES,
    BuildOptions,
    ImageSize,
    ignored_on_resume,
    parse_image_size,
    parse_revision,
    parse_snap_arg,
    parse_step,
)
from ucimage.errors import UcimageError, UsageError

#: ubuntu-image's snap options ucimage does not implement: (flag, takes a value, why);
#: named so that a ported script gets a clear error (and ``--comp`` is not taken as an
#: abbreviation of ``--compress``)
UNSUPPORTED_UBUNTU_IMAGE_OPTIONS: tuple[tuple[str, bool, str], ...] = (
    ("--comp", True, "snap components are not supported yet"),
    ("--sequence", True, "pinning validation-set sequences is not supported yet"),
    ("--preseed", False, "preseeding runs snapd in a chroot with mounts, which needs root"),
    ("--preseed-sign-key", True, "preseeding is not supported (it needs root)"),
    ("--apparmor-features-dir", True, "preseeding is not supported (it needs root)"),
    ("--sysfs-overlay", True, "preseeding is not supported (it needs root)"),
)


def _path_or_unset(text: str) -> Path | None:
    # ubuntu-image (go-flags) takes an empty value as "not given": `-w "$WORKDIR"` with
    # WORKDIR unset must not make the current directory the workdir
    return Path(text) if text else None


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
    img.add_argument(
        "-O", "--output-dir", type=_path_or_unset, help="where images and manifests go"
    )
    img.add_argument(
        "-w",
        "--workdir",
        type=_path_or_unset,
        help="keep intermediate files here (for --resume)",
    )
    img.add_argument("-i", "--image-size", metavar="SIZE|VOL:SIZE,...", help="image size")
    img.add_argument(
        "--sector-size", type=int, default=512, choices=(512, 4096), help="default 512"
    )
    img.add_argument(
        "--disk-info", type=_path_or_unset, metavar="FILE", help="copied to .disk/info"
    )
    img.add_argument(
        "--cloud-init",
        type=_path_or_unset,
        metavar="USER-DATA",
        help="cloud-init user-data (UC16/18)",
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
    img.add_argument(
        "--allow-snapd-kernel-mismatch",
        action="store_true",
        help="accepted for ubuntu-image compatibility: ucimage does not compare the "
        "kernel's snap-bootstrap with snapd",
    )
    unsupported = p.add_argument_group(
        "ubuntu-image options ucimage does not support (they fail, saying why)"
    )
    for flag, takes_value, why in UNSUPPORTED_UBUNTU_IMAGE_OPTIONS:
        if takes_value:
            unsupported.add_argument(flag, action="append", metavar="X", help=why)
        else:
            unsupported.add_argument(flag, action="store_true", help=why)
    run = p.add_argument_group("steps")
    run.add_argument("--dry-run", action="store_true", help="print the plan as JSON and exit")
    steps = run.add_mutually_exclusive_group()
    step_help = (
        " STEP is one of: "
        + ", ".join(STEP_NAMES)
        + "; ubuntu-image's state names (prepare_image … generate_snap_manifest) work too"
    )
    steps.add_argument("-u", "--until", metavar="STEP", help="stop before STEP." + step_help)
    steps.add_argument("-t", "--thru", metavar="STEP", help="stop after STEP." + step_help)
    run.add_argument("-r", "--resume", action="store_true", help="continue a build in --workdir")
    run.add_argument("--json", action="store_true", help="progress as JSON lines on stdout")
    talk = run.add_mutually_exclusive_group()
    talk.add_argument("-d", "--debug", action="store_true", help="debug output and timings")
    talk.add_argument("-v", "--verbose", action="store_true", help="more output")
    talk.add_argument("-q", "--quiet", action="store_true", help="only errors")
    run.add_argument("--version", action="version", version=f"ucimage {__version__}")
    p.set_defaults(func=handle_snap)


def _step(flag: str, text: str | None, quiet: bool) -> str | None:
    if not text:
        return None
    step = parse_step(flag, text)
    if step != text and not quiet:
        where = "before" if flag == "--until" else "after"
        print(
            f"note: ubuntu-image's state {text} for {flag}: ucimage stops {where} its step {step}",
            file=sys.stderr,
        )
    return step


def options_from_args(args: argparse.Namespace) -> BuildOptions:
    for flag, _, why in UNSUPPORTED_UBUNTU_IMAGE_OPTIONS:
        if getattr(args, flag[2:].replace("-", "_")):
            raise UsageError(
                f"ubuntu-image's {flag} is not supported by ucimage: {why}",
                hint=f"drop {flag} (and its value) from the command line",
            )
    verbosity = 2 if args.debug else 1 if args.verbose else -1 if args.quiet else 0
    return BuildOptions(
        model=args.model,
        snaps=tuple(parse_snap_arg(s) for s in args.snap),
        channel=args.channel or None,  # -c "" is no channel, as in ubuntu-image
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
        until=_step("--until", args.until, args.quiet),
        thru=_step("--thru", args.thru, args.quiet),
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
    try:
        build = _prepare_build(args)
    except UcimageError as exc:
        # the build reports its own errors as events; one found before it starts too,
        # so a --json reader always gets an "error" event
        if getattr(args, "json", False):
            from ucimage.build.runner import Progress

            Progress(json_events=True).emit(
                "error", message=exc.message, hint=exc.hint, code=exc.code
            )
        raise
    return int(build.run())


def _prepare_build(args: argparse.Namespace) -> Any:
    from ucimage.build.pipeline import ImageBuild

    opts = options_from_args(args)
    if opts.model is None and not opts.resume:
        raise UsageError("missing the model assertion argument", hint="ucimage snap MODEL")
    if os.environ.get("UBUNTU_IMAGE_PRESERVE_UNPACK") and opts.verbosity >= 0:
        print(
            "WARNING: UBUNTU_IMAGE_PRESERVE_UNPACK is ubuntu-image's and has no effect: "
            "with -w DIR the unpacked gadget stays in DIR/unpack/gadget",
            file=sys.stderr,
        )
    if opts.resume and opts.model is None and opts.verbosity >= 0:
        ignored = ignored_on_resume(opts)
        if ignored:
            print(
                "WARNING: --resume without the model continues the saved build with its "
                f"own options; ignored: {', '.join(ignored)} (give the model to use this "
                "command line's options instead)",
                file=sys.stderr,
            )
    try:
        return ImageBuild(opts)  # makes the output and work directories
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            from ucimage.build.pipeline import _os_error

            raise _os_error(exc) from exc
        where = exc.filename or opts.workdir or opts.output_dir or "."
        raise UsageError(
            f"cannot make the directory {str(where)!r}: {exc.strerror or exc}",
            hint="-O/--output-dir and -w/--workdir must be directories you can write to",
        ) from exc
