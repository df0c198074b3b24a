"""The options of ``ucimage snap`` and their validation.

:class:`BuildOptions` holds every flag after parsing; :func:`validate_options`
checks everything that can be checked without the network (files exist,
``--snap``/``--revision``/``--image-size`` syntax, mutually exclusive flags),
so a bad command line fails before anything is downloaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ucimage.errors import UsageError

#: the build steps, in order (names for --until/--thru and the state file)
STEP_NAMES: tuple[str, ...] = (
    "verify_model",
    "resolve_snaps",
    "fetch_snaps",
    "load_gadget",
    "compute_plan",
    "write_seed",
    "populate_volumes",
    "build_volumes",
    "write_manifests",
)
#: the steps a --seed-only build leaves out
VOLUME_STEPS = ("populate_volumes", "build_volumes")

#: ``ubuntu-image snap``'s state names (internal/statemachine/snap.go), in order, each
#: with the first and the last ucimage step that do that state's work, so scripts that
#: pass them to --until/--thru keep working (see :func:`parse_step`)
UBUNTU_IMAGE_STATES: tuple[tuple[str, str, str], ...] = (
    # snapd's image.Prepare: fetch, check the gadget, write the seed and boot files
    ("prepare_image", "verify_model", "write_seed"),
    ("load_gadget_yaml", "load_gadget", "load_gadget"),
    ("set_artifact_names", "compute_plan", "compute_plan"),
    ("populate_rootfs_contents", "write_seed", "write_seed"),
    ("generate_disk_info", "write_seed", "write_seed"),
    ("calculate_rootfs_size", "populate_volumes", "populate_volumes"),
    ("populate_bootfs_contents", "populate_volumes", "populate_volumes"),
    ("populate_prepare_partitions", "build_volumes", "build_volumes"),
    ("make_disk", "build_volumes", "build_volumes"),
    ("generate_snap_manifest", "write_manifests", "write_manifests"),
)

_SIZE_RE = re.compile(r"^([0-9]+)([MG]?)$")
_SNAP_NAME_RE = re.compile(r"^[a-z0-9](?:-?[a-z0-9])*$")


@dataclass(frozen=True)
class SnapRequest:
    """One ``--snap`` argument: a store snap (optionally with a channel) or a local file."""

    name: str | None = None
    channel: str | None = None
    path: Path | None = None

    @property
    def local(self) -> bool:
        return self.path is not None

    def to_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "channel": self.channel,
            "path": str(self.path) if self.path else None,
        }


@dataclass(frozen=True)
class ImageSize:
    """``--image-size``: one size for every volume, or per volume (name or index)."""

    default: int | None = None
    per_volume: tuple[tuple[str, int], ...] = ()

    def for_volume(self, name: str, index: int) -> int | None:
        for key, size in self.per_volume:
            if key in (name, str(index)):
                return size
        return self.default

    def check_volumes(self, names: Sequence[str]) -> None:
        """Fail, as ubuntu-image does, on a per-volume size for no volume of the gadget
        (*names*: every volume, in gadget.yaml order, which the indexes count)."""
        for key, _ in self.per_volume:
            if key in names:
                continue
            if key.isdigit():
                if int(key) < len(names):
                    continue
                raise UsageError(
                    f"--image-size: volume index {key} is out of range",
                    hint=f"the gadget has {len(names)} volume(s): "
                    + ", ".join(f"{i}={n}" for i, n in enumerate(names)),
                )
            raise UsageError(
                f"--image-size: volume {key!r} does not exist in gadget.yaml",
                hint="volumes: " + ", ".join(names),
            )


@dataclass(frozen=True)
class BuildOptions:
    """Everything ``ucimage snap`` was asked to do."""

    model: Path | None = None
    snaps: tuple[SnapRequest, ...] = ()
    channel: str | None = None
    revisions: tuple[tuple[str, int], ...] = ()
    output_dir: Path | None = None
    workdir: Path | None = None
    image_size: ImageSize = field(default_factory=ImageSize)
    sector_size: int = 512
    disk_info: Path | None = None
    cloud_init: Path | None = None
    disable_console_conf: bool = False
    validation: str | None = None
    factory_image: bool = False
    dry_run: bool = False
    until: str | None = None
    thru: str | None = None
    resume: bool = False
    store: str | None = None
    trusted: tuple[Path, ...] = ()
    assertions: tuple[Path, ...] = ()
    offline: bool = False
    allow_unverified: bool = False
    seed_only: bool = False
    #: ``--seed``: the value every GUID, UUID and filesystem id of the images derives from
    image_seed: str | None = None
    bmap: bool = False
    compress: str | None = None
    json: bool = False
    verbosity: int = 0  # -1 quiet, 0 normal, 1 verbose, 2 debug

    def revision_of(self, name: str) -> int | None:
        for snap, rev in self.revisions:
            if snap == name:
                return rev
        return None


def parse_size(text: str, what: str = "--image-size") -> int:
    """Bytes, or a decimal number with ``M`` (MiB) or ``G`` (GiB), as ubuntu-image reads sizes."""
    match = _SIZE_RE.match(text.strip())
    if not match:
        raise UsageError(
            f"cannot parse {what} {text!r}",
            hint="use bytes or a number with M or G (e.g. 4G), or VOLUME:SIZE,…",
        )
    number, suffix = int(match.group(1)), match.group(2)
    return number * {"": 1, "M": 1 << 20, "G": 1 << 30}[suffix]


def parse_image_size(text: str) -> ImageSize:
    if ":" not in text:
        return ImageSize(default=parse_size(text))
    pairs = []
    for item in text.split(","):
        volume, sep, size = item.partition(":")
        if not sep or not volume:
            raise UsageError(
                f"cannot parse --image-size {text!r}",
                hint="the multi-volume form is VOLUME:SIZE,VOLUME:SIZE (name or 0-based index)",
            )
        if volume.isdigit():
            volume = str(int(volume))  # an index, as ubuntu-image reads it ("01" is 1)
        pairs.append((volume, parse_size(size)))
    return ImageSize(per_volume=tuple(pairs))


def parse_step(flag: str, text: str) -> str:
    """The ucimage step for ``--until``/``--thru`` *text*: one of ours, or one of
    ubuntu-image's state names.  ``--until STATE`` stops before the first step that
    does the work of STATE or a later state (nothing of STATE is done);
    ``--thru STATE`` stops after the last step that does the work of STATE and the
    states before it (everything ubuntu-image would have done is done)."""
    if text in STEP_NAMES:
        return text
    states = [state for state, _, _ in UBUNTU_IMAGE_STATES]
    if text not in states:
        raise _unknown_step(flag, text)
    index = states.index(text)
    if flag in ("-u", "--until"):
        return min((first for _, first, _ in UBUNTU_IMAGE_STATES[index:]), key=STEP_NAMES.index)
    return max((last for _, _, last in UBUNTU_IMAGE_STATES[: index + 1]), key=STEP_NAMES.index)


def _unknown_step(flag: str, text: str) -> UsageError:
    states = ", ".join(state for state, _, _ in UBUNTU_IMAGE_STATES)
    return UsageError(
        f"unknown step {text!r} for {flag}",
        hint=f"steps: {', '.join(STEP_NAMES)} (ubuntu-image's state names work too: {states})",
    )


def parse_snap_arg(text: str) -> SnapRequest:
    if text.endswith(".snap"):
        return SnapRequest(path=Path(text))
    if text.count("=") > 1:
        raise UsageError(f"Invalid syntax passed to --snap: {text}", hint="use NAME=CHANNEL")
    name, sep, channel = text.partition("=")
    if not _SNAP_NAME_RE.match(name) or len(name) > 40:
        raise UsageError(
            f"invalid snap name {name!r} passed to --snap",
            hint="give a store name, NAME=CHANNEL, or a path ending in .snap",
        )
    if sep and not channel:
        raise UsageError(f"empty channel in --snap {text!r}")
    return SnapRequest(name=name, channel=channel or None)


def parse_revision(text: str) -> tuple[str, int]:
    name, sep, rev = text.partition(":")
    if not sep or not _SNAP_NAME_RE.match(name) or not rev.isdigit() or int(rev) < 1:
        raise UsageError(
            f"cannot parse --revision {text!r}",
            hint="use NAME:REVISION with a positive revision number, e.g. core18:2128",
        )
    return name, int(rev)


def _must_be_file(path: Path | None, flag: str) -> None:
    if path is None:
        return
    try:
        ok = path.is_file() and os.access(path, os.R_OK)
    except OSError:
        ok = False
    if not ok:
        raise UsageError(f"{flag} file {str(path)!r} does not exist or cannot be read")


def _must_be_directory(path: Path | None, flag: str) -> None:
    """*path* is a directory, or can be made one (no file in the way)."""
    if path is None:
        return
    full = path.absolute()
    for candidate in (full, *full.parents):
        if candidate.exists():
            if not candidate.is_dir():
                where = "" if candidate == full else f" ({candidate} is a file)"
                raise UsageError(
                    f"{flag} {str(path)!r} is not a directory{where}",
                    hint="give a directory (it is made if missing)",
                )
            return


#: what a build replaces wholesale in its workdir (ubuntu-image never deletes there)
#: what a build writes over in its workdir (see :mod:`ucimage.build.pipeline`)
_REPLACED_IN_WORKDIR = (
    "root", "boot", "unpack", "assertions", "model.assert", "plan.json", "volumes.json",
)  # fmt: skip


def _shown(workdir: Path, name: str) -> str:
    return name + "/" if (workdir / name).is_dir() else name


def _workdir_is_free_or_ours(workdir: Path | None) -> None:
    """Refuse a -w directory holding files or directories a build replaces (``root/``,
    ``boot/``, ``unpack/`` …) that no ucimage build made: the build would delete them."""
    from ucimage.build.runner import STATE_FILE

    if workdir is None or not workdir.is_dir() or (workdir / STATE_FILE).exists():
        return
    if (workdir / "ubuntu-image.json").exists():
        raise UsageError(
            f"-w/--workdir {str(workdir)!r} is an ubuntu-image workdir (ubuntu-image.json): "
            "ucimage can neither resume nor reuse it",
            hint="give a new directory (or remove that one) and build again without --resume",
        )
    theirs = [name for name in _REPLACED_IN_WORKDIR if (workdir / name).exists()]
    if theirs:
        raise UsageError(
            f"-w/--workdir {str(workdir)!r} holds {', '.join(_shown(workdir, n) for n in theirs)} "
            "that no ucimage build made; the build would replace them",
            hint="give a new or empty directory, or the workdir of an earlier ucimage build",
        )


def _check_channels(opts: BuildOptions) -> None:
    """-c and --snap NAME=CHANNEL follow snapd's channel syntax (its messages too)."""
    from ucimage.assertions.rules import parse_channel

    wanted = [("global default option channel", opts.channel)]
    wanted += [(f"option channel for snap {r.name!r}", r.channel) for r in opts.snaps]
    for what, channel in wanted:
        if channel is None:
            continue
        try:
            parse_channel(channel)
        except ValueError as exc:
            raise UsageError(
                f"cannot use {what}: {exc}",
                hint="a channel is [TRACK/]RISK[/BRANCH] with RISK stable, candidate, beta "
                "or edge, or a TRACK alone (e.g. 18, edge, 22/stable, latest/edge/fix-1)",
            ) from None


def validate_options(opts: BuildOptions) -> None:
    """Everything checkable without the model's content or the network."""
    if opts.until and opts.thru:
        raise UsageError("--until and --thru cannot be used together")
    for flag, step in (("--until", opts.until), ("--thru", opts.thru)):
        if step is not None and step not in STEP_NAMES:
            raise _unknown_step(flag, step)
        if step in VOLUME_STEPS and opts.seed_only:
            # the build would never reach it and run to the end instead
            raise UsageError(
                f"{flag} {step}: a --seed-only build has no such step",
                hint="its steps: " + ", ".join(s for s in STEP_NAMES if s not in VOLUME_STEPS),
            )
    if opts.resume:
        if opts.workdir is None:
            raise UsageError("--resume requires --workdir")
    elif opts.model is None:
        raise UsageError("missing the model assertion argument", hint="ucimage snap MODEL")
    _must_be_file(opts.model, "model assertion")
    _must_be_directory(opts.output_dir, "-O/--output-dir")
    _must_be_directory(opts.workdir, "-w/--workdir")
    _workdir_is_free_or_ours(opts.workdir)
    _must_be_file(opts.disk_info, "--disk-info")
    _must_be_file(opts.cloud_init, "--cloud-init")
    for path in (*opts.trusted, *opts.assertions):
        _must_be_file(path, "assertion")
    seen: set[str] = set()
    for req in opts.snaps:
        if req.path is not None:
            _must_be_file(req.path, "--snap")
        elif req.name in seen:
            raise UsageError(f"snap {req.name!r} given twice with --snap")
        elif req.name:
            seen.add(req.name)
    _check_channels(opts)
    names = [name for name, _ in opts.revisions]
    if len(set(names)) != len(names):
        raise UsageError("a snap is given more than one --revision")
    if opts.sector_size not in (512, 4096):
        raise UsageError(f"invalid --sector-size {opts.sector_size}", hint="use 512 or 4096")
    if opts.validation not in (None, "ignore", "enforce"):
        raise UsageError(f"invalid --validation {opts.validation!r}", hint="ignore or enforce")
    if opts.compress not in (None, "zstd"):
        raise UsageError(f"unsupported --compress {opts.compress!r}", hint="only zstd")
    _check_source_date_epoch()


#: the last second an ext4 inode can hold (2446-05-10T22:38:55Z)
LAST_EPOCH = 15032385535


def _check_source_date_epoch() -> None:
    """A set ``SOURCE_DATE_EPOCH`` is every time in the image: a malformed one fails the
    build (as reproducible-builds.org asks) rather than being ignored or crashing late."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return
    text = value.strip()
    if not text:
        return  # set but empty: as unset
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses
    if not (text.isascii() and text.isdigit()) or int(text) > LAST_EPOCH:
        raise UsageError(
            f"SOURCE_DATE_EPOCH={value!r} is not a time an image can hold",
            hint=f"seconds since 1970-01-01 UTC, at most {LAST_EPOCH} (2446-05-10, the "
            "last ext4 time), or unset it",
        )


def options_to_json(opts: BuildOptions) -> dict[str, Any]:
    """The options as JSON (saved in the workdir so --resume continues the same build)."""

    def path(p: Path | None) -> str | None:
        return str(p.absolute()) if p is not None else None

    return {
        "model": path(opts.model),
        "snaps": [{"name": s.name, "channel": s.channel, "path": path(s.path)} for s in opts.snaps],
        "channel": opts.channel,
        "revisions": [list(r) for r in opts.revisions],
        "output_dir": path(opts.output_dir),
        "image_size": {
            "default": opts.image_size.default,
            "per_volume": [list(p) for p in opts.image_size.per_volume],
        },
        "sector_size": opts.sector_size,
        "disk_info": path(opts.disk_info),
        "cloud_init": path(opts.cloud_init),
        "disable_console_conf": opts.disable_console_conf,
        "validation": opts.validation,
        "factory_image": opts.factory_image,
        "store": opts.store,
        "trusted": [path(p) for p in opts.trusted],
        "assertions": [path(p) for p in opts.assertions],
        "offline": opts.offline,
        "allow_unverified": opts.allow_unverified,
        "seed_only": opts.seed_only,
        "image_seed": opts.image_seed,
        "bmap": opts.bmap,
        "compress": opts.compress,
    }


#: the flag of each option a model-less --resume takes from the saved build, not from
#: its own command line (see :func:`resumed_options`)
_SAVED_ON_RESUME: dict[str, str] = {
    "snaps": "--snap",
    "channel": "--channel",
    "revisions": "--revision",
    "image_size": "--image-size",
    "sector_size": "--sector-size",
    "disk_info": "--disk-info",
    "cloud_init": "--cloud-init",
    "disable_console_conf": "--disable-console-conf",
    "validation": "--validation",
    "factory_image": "--factory-image",
    "store": "--store",
    "trusted": "--trusted",
    "assertions": "--assertion",
    "allow_unverified": "--allow-unverified",
    "seed_only": "--seed-only",
    "image_seed": "--seed",
    "bmap": "--bmap",
    "compress": "--compress",
}


def ignored_on_resume(cli: BuildOptions) -> list[str]:
    """The flags on a model-less ``--resume`` command line that the saved build's own
    options override (so the user can be told they have no effect)."""
    unset = BuildOptions()
    return [
        flag
        for name, flag in _SAVED_ON_RESUME.items()
        if getattr(cli, name) != getattr(unset, name)
    ]


def resumed_options(saved: dict[str, Any], cli: BuildOptions) -> BuildOptions:
    """The saved build's options, with what may change between runs taken from *cli*."""

    def path(p: str | None) -> Path | None:
        return Path(p) if p else None

    size = saved.get("image_size") or {}
    return BuildOptions(
        model=path(saved.get("model")),
        snaps=tuple(
            SnapRequest(name=s["name"], channel=s["channel"], path=path(s["path"]))
            for s in saved.get("snaps", [])
        ),
        channel=saved.get("channel"),
        revisions=tuple((str(n), int(r)) for n, r in saved.get("revisions", [])),
        output_dir=cli.output_dir or path(saved.get("output_dir")),
        workdir=cli.workdir,
        image_size=ImageSize(
            default=size.get("default"),
            per_volume=tuple((str(k), int(v)) for k, v in size.get("per_volume", [])),
        ),
        sector_size=int(saved.get("sector_size", 512)),
        disk_info=path(saved.get("disk_info")),
        cloud_init=path(saved.get("cloud_init")),
        disable_console_conf=bool(saved.get("disable_console_conf")),
        validation=saved.get("validation"),
        factory_image=bool(saved.get("factory_image")),
        dry_run=cli.dry_run,
        until=cli.until,
        thru=cli.thru,
        resume=True,
        store=saved.get("store"),
        trusted=tuple(Path(p) for p in saved.get("trusted", [])),
        assertions=tuple(Path(p) for p in saved.get("assertions", [])),
        offline=bool(saved.get("offline")) or cli.offline,
        allow_unverified=bool(saved.get("allow_unverified")),
        seed_only=bool(saved.get("seed_only")),
        image_seed=saved.get("image_seed"),
        bmap=bool(saved.get("bmap")),
        compress=saved.get("compress"),
        json=cli.json,
        verbosity=cli.verbosity,
    )
