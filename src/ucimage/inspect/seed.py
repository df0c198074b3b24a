"""Find and read the seed in an image: what a device seeds on first boot.

Two layouts (``docs/image-building.md`` §1.3, §1.4):

* UC16/18: in the ``writable`` ext4 partition, ``system-data/var/lib/snapd/seed/``
  with ``seed.yaml``, ``snaps/*.snap`` and ``assertions/*`` (the model among them);
* UC20+: the ``ubuntu-seed`` partition (vfat, sometimes ext4) with ``snaps/``
  (asserted snaps) and ``systems/<label>/`` holding ``model``, ``assertions/``
  (``model-etc``, ``snaps``), ``options.yaml`` and ``snaps/`` (unasserted ones).

The seed is copied out of the image into a work directory (``debugfs rdump`` /
``mcopy -s``) and read there; the snaps are streamed to disk, never held in
memory.  Each snap is matched with its assertions the way snapd does: UC16/18 by
the file's SHA3-384 digest, UC20+ by the snap-id in the model and the
declaration.  What does not match is recorded in ``problems`` here and failed by
:mod:`ucimage.inspect.verify`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ucimage.assertions import Assertion, decode_stream
from ucimage.errors import UcimageError
from ucimage.inspect.errors import SeedError
from ucimage.inspect.fsread import FilesystemReader
from ucimage.snaps import SnapError, SnapFile, digest_file, load_yaml_strict

SEED16_DIR = "/system-data/var/lib/snapd/seed"
RISKS = ("stable", "candidate", "beta", "edge")
_SNAP_NAME = re.compile(r"^[a-z0-9](?:-?[a-z0-9])*$")
_REV_FROM_FILE = re.compile(r"^(?P<name>[^_]+)_(?P<rev>x?\d+)\.snap$")


@dataclass(frozen=True)
class SeedSnap:
    """One seeded snap, with the columns ``snap list`` shows on the device."""

    name: str
    version: str
    revision: str
    tracking: str
    publisher: str
    notes: str
    type: str
    snap_id: str
    #: path of the snap inside the seed's filesystem
    file: str
    size: int
    sha3_384: str
    unasserted: bool
    publisher_id: str = ""
    publisher_validation: str = ""
    channel: str = ""
    #: the extracted copy (valid while the inspection's work directory exists)
    local_path: Path = field(default=Path(), compare=False, repr=False)
    declaration: Assertion | None = field(default=None, compare=False, repr=False)
    revision_assertion: Assertion | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Seed:
    layout: str  # "uc16" (seed.yaml) or "uc20" (systems/<label>)
    partition: int
    #: directory of the seed (UC16/18) or of the system (UC20+) in its filesystem
    directory: str
    system_label: str
    model: Assertion
    #: every assertion the seed holds (model included), with the file it came from
    assertions: tuple[tuple[str, Assertion], ...]
    snaps: tuple[SeedSnap, ...]
    problems: tuple[str, ...]
    #: the other recovery systems of a UC20+ seed
    other_systems: tuple[str, ...] = ()


def tracking_channel(channel: str) -> str:
    """A seed channel as ``snap list`` shows it: full ``track/risk``, branch elided."""
    if not channel:
        return "-"
    parts = channel.split("/")
    if len(parts) == 1:
        full = f"latest/{channel}" if channel in RISKS else f"{channel}/stable"
    elif len(parts) == 2 and parts[0] in RISKS:
        full = f"latest/{channel}"
    else:
        full = channel
    if full.count("/") == 2:
        return full[: full.rindex("/") + 1] + "…"
    return full


def resolve_pinned(track: str, channel: str) -> str:
    """snapd's ``channel.ResolvePinned``: a model's ``name=track`` pins the track.

    On a pinned-track conflict snapd's seeding falls back to the track itself.
    """
    if not track:
        return channel
    if not channel:
        return track
    if channel.split("/", 1)[0] in RISKS:
        return f"{track}/{channel}"
    if channel != track and not channel.startswith(track + "/"):
        return track
    return channel


def model_pinned_tracks(model: Assertion) -> dict[str, str]:
    """``{snap: track}`` from UC16/18 model headers like ``kernel: pc-kernel=18``."""
    pinned: dict[str, str] = {}
    for header in ("gadget", "kernel"):
        value = model.header(header)
        if isinstance(value, str) and "=" in value:
            name, track = value.split("=", 1)
            pinned[name] = track
    return pinned


def notes_for(snap_type: str, *, devmode: bool, classic: bool, private: bool) -> str:
    """The Notes column (snapd ``cmd/snap/notes.go`` order)."""
    notes = []
    if snap_type == "os":
        notes.append("core")
    elif snap_type and snap_type != "app":
        notes.append(snap_type)
    if devmode:
        notes.append("devmode")
    if classic:
        notes.append("classic")
    if private:
        notes.append("private")
    return ",".join(notes) or "-"


def _decode_file(path: Path, problems: list[str], label: str) -> list[Assertion]:
    try:
        return decode_stream(path.read_bytes())
    except UcimageError as exc:
        problems.append(f"cannot decode assertions in {label}: {exc.message}")
        return []


class _Index:
    """The seed's assertions, indexed the way we look them up."""

    def __init__(
        self, items: Iterable[tuple[str, Assertion]], trusted: Sequence[Assertion] = ()
    ) -> None:
        self.items = list(items)
        self.declarations: dict[str, Assertion] = {}
        self.declarations_by_name: dict[str, Assertion] = {}
        self.revisions_by_digest: dict[str, Assertion] = {}
        self.revisions_by_id: dict[str, list[Assertion]] = {}
        self.accounts: dict[str, Assertion] = {}
        for _, a in self.items:
            if a.type == "snap-declaration":
                self.declarations[str(a.header("snap-id"))] = a
                self.declarations_by_name[str(a.header("snap-name"))] = a
            elif a.type == "snap-revision":
                self.revisions_by_digest[str(a.header("snap-sha3-384"))] = a
                self.revisions_by_id.setdefault(str(a.header("snap-id")), []).append(a)
            elif a.type == "account":
                self.accounts[str(a.header("account-id"))] = a
        # a root's account is compiled into snapd, not shipped in the seed
        for a in trusted:
            if a.type == "account":
                self.accounts.setdefault(str(a.header("account-id")), a)

    def models(self) -> list[Assertion]:
        return [a for _, a in self.items if a.type == "model"]


@dataclass
class _Candidate:
    """A seeded snap before its columns are worked out."""

    name: str
    local_path: Path
    fs_path: str
    channel: str
    snap_id: str = ""
    unasserted: bool = False
    devmode: bool = False
    classic: bool = False
    private: bool = False
    file_revision: str = ""
    model_type: str = ""


def _check_file_name(file: object, where: str, name: str) -> str:
    """A seed file name: a plain ``*.snap`` name, no directories."""
    if (
        not isinstance(file, str)
        or not file.endswith(".snap")
        or "/" in file
        or file.startswith(".")
        or len(file.encode()) > 255
        or any(ord(c) < 0x20 for c in file)
    ):
        raise SeedError(f"{where}: bad file name {file!r} for snap {name}")
    return file


def _snap_row(c: _Candidate, index: _Index, problems: list[str], by_digest: bool) -> SeedSnap:
    size = c.local_path.stat().st_size if c.local_path.exists() else 0
    _, digest, _ = digest_file(c.local_path) if c.local_path.exists() else ("", "", 0)
    version, snap_type, confinement = "-", c.model_type, "strict"
    try:
        info = SnapFile(c.local_path).info
        version, snap_type, confinement = info.version, info.type, info.confinement
        if info.name != c.name:
            problems.append(f"snap {c.name}: {c.fs_path} says its name is {info.name!r}")
    except SnapError as exc:
        problems.append(f"snap {c.name}: cannot read {c.fs_path}: {exc.message}")
    decl: Assertion | None = None
    rev: Assertion | None = None
    revision = c.file_revision or "x1"
    publisher, publisher_id, validation = "-", "", ""
    if not c.unasserted:
        if by_digest:
            rev = index.revisions_by_digest.get(digest)
        if rev is None:
            # by snap-id: the revision the file name or the only assertion names
            candidates = index.revisions_by_id.get(c.snap_id, [])
            named = [r for r in candidates if str(r.header("snap-revision")) == c.file_revision]
            pool = named or candidates
            rev = pool[0] if pool else None
            if by_digest:
                problems.append(
                    f"snap {c.name}: no snap-revision assertion matches the digest of {c.fs_path}"
                )
        if rev is not None:
            revision = str(rev.header("snap-revision"))
            c.snap_id = c.snap_id or str(rev.header("snap-id"))
        decl = index.declarations.get(c.snap_id) or index.declarations_by_name.get(c.name)
        if decl is None:
            problems.append(f"snap {c.name}: no snap-declaration in the seed")
        else:
            publisher_id = str(decl.header("publisher-id"))
            account = index.accounts.get(publisher_id)
            if account is None:
                publisher = publisher_id
                problems.append(
                    f"publisher {publisher_id}: no account assertion in the seed or the trusted "
                    "roots (a store's root account is not seeded: pass its root.assert with "
                    "--trusted)"
                )
            else:
                publisher = str(account.header("username") or publisher_id)
                validation = str(account.header("validation") or "")
                if validation == "verified":
                    publisher += "✓"
                elif validation == "starred":
                    publisher += "✪"
    devmode = c.devmode or confinement == "devmode"
    classic = confinement == "classic"
    return SeedSnap(
        name=c.name,
        version=version,
        revision=revision,
        tracking=tracking_channel("" if c.unasserted else c.channel),
        publisher=publisher,
        notes=notes_for(snap_type, devmode=devmode, classic=classic, private=c.private),
        type=snap_type,
        snap_id=c.snap_id,
        file=c.fs_path,
        size=size,
        sha3_384=digest,
        unasserted=c.unasserted,
        publisher_id=publisher_id,
        publisher_validation=validation,
        channel=c.channel,
        local_path=c.local_path,
        declaration=decl,
        revision_assertion=rev,
    )


def model_snap_names(model: Assertion) -> list[tuple[str, str, str]]:
    """``(name, type, presence)`` of the snaps a model asks for, both header styles."""
    out: list[tuple[str, str, str]] = []
    snaps = model.header("snaps")
    if isinstance(snaps, list):
        for entry in snaps:
            if isinstance(entry, dict) and "name" in entry:
                out.append(
                    (
                        str(entry["name"]),
                        str(entry.get("type", "app")),
                        str(entry.get("presence", "required")),
                    )
                )
        return out
    for header, snap_type in (("gadget", "gadget"), ("kernel", "kernel"), ("base", "base")):
        value = model.header(header)
        if isinstance(value, str) and value:
            out.append((value.split("=", 1)[0], snap_type, "required"))
    if model.header("base") is None and model.header("classic") != "true":
        out.append(("core", "core", "required"))
    required = model.header("required-snaps")
    if isinstance(required, list):
        out.extend((str(n), "app", "required") for n in required)
    return out


def _model_channels(model: Assertion) -> dict[str, str]:
    channels: dict[str, str] = {}
    snaps = model.header("snaps")
    if isinstance(snaps, list):
        for entry in snaps:
            if isinstance(entry, dict) and "name" in entry:
                channels[str(entry["name"])] = str(entry.get("default-channel", "latest/stable"))
    return channels


def _check_model_snaps(model: Assertion, snaps: Iterable[SeedSnap], problems: list[str]) -> None:
    names = {s.name for s in snaps}
    for name, _, presence in model_snap_names(model):
        if presence != "optional" and name not in names:
            problems.append(f"the model requires snap {name} but the seed does not hold it")


def _one_model(models: list[Assertion], where: str, problems: list[str]) -> Assertion:
    if len(models) != 1:
        why = "".join(f"; {p}" for p in problems if p.startswith("cannot decode"))
        raise SeedError(
            f"{where} must hold exactly one model assertion, found {len(models)}{why}",
            hint="the seed is incomplete or was assembled by hand",
        )
    return models[0]


def _load_yaml(path: Path, what: str) -> Any:
    try:
        return load_yaml_strict(path.read_bytes())
    except UcimageError as exc:
        raise SeedError(f"cannot parse {what}: {exc.message}") from exc
    except (yaml.YAMLError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise SeedError(f"cannot parse {what}: {detail}") from exc


def read_seed16(
    reader: FilesystemReader,
    partition: int,
    workdir: Path,
    trusted: Sequence[Assertion] = (),
    with_snaps: bool = True,
) -> Seed:
    """Read a UC16/18 seed from the writable filesystem *reader*."""
    local = workdir / "seed"
    if with_snaps:
        reader.extract_tree(SEED16_DIR, local)
    else:
        # the model and seed.yaml only: no need to copy the snaps out
        reader.extract(f"{SEED16_DIR}/seed.yaml", local / "seed.yaml")
        reader.extract_tree(f"{SEED16_DIR}/assertions", local / "assertions")
    problems: list[str] = []
    seed_yaml = local / "seed.yaml"
    if not seed_yaml.is_file():
        raise SeedError(f"{SEED16_DIR}/seed.yaml is missing")
    doc = _load_yaml(seed_yaml, f"{SEED16_DIR}/seed.yaml")
    entries = doc.get("snaps") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise SeedError(f"{SEED16_DIR}/seed.yaml has no 'snaps' list")
    items: list[tuple[str, Assertion]] = []
    adir = local / "assertions"
    for f in sorted(adir.iterdir()) if adir.is_dir() else []:
        label = f"{SEED16_DIR}/assertions/{f.name}"
        items.extend((label, a) for a in _decode_file(f, problems, label))
    index = _Index(items, trusted)
    model = _one_model(index.models(), f"{SEED16_DIR}/assertions", problems)
    pinned = model_pinned_tracks(model)
    rows = []
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("file"):
            raise SeedError(f"{SEED16_DIR}/seed.yaml: every snap needs a name and a file")
        name, file = entry["name"], entry["file"]
        if not isinstance(name, str) or not _SNAP_NAME.match(name):
            raise SeedError(f"{SEED16_DIR}/seed.yaml: bad snap name {name!r}")
        if name in seen:
            raise SeedError(f"{SEED16_DIR}/seed.yaml lists snap {name} twice")
        seen.add(name)
        _check_file_name(file, f"{SEED16_DIR}/seed.yaml", name)
        m = _REV_FROM_FILE.match(file)
        candidate = _Candidate(
            name=name,
            local_path=local / "snaps" / file,
            fs_path=f"{SEED16_DIR}/snaps/{file}",
            channel=str(entry.get("channel") or ""),
            snap_id=str(entry.get("snap-id") or ""),
            unasserted=bool(entry.get("unasserted")),
            devmode=bool(entry.get("devmode")),
            classic=bool(entry.get("classic")),
            private=bool(entry.get("private")),
            file_revision=m.group("rev") if m else "",
        )
        if not with_snaps:
            continue
        if not candidate.local_path.is_file():
            problems.append(f"snap {name}: {candidate.fs_path} is missing")
        elif not candidate.unasserted:
            # seeding resolves the channel against the model's pinned track (seed16.go)
            candidate.channel = resolve_pinned(pinned.get(name, ""), candidate.channel)
            candidate.channel = candidate.channel or "stable"
        rows.append(_snap_row(candidate, index, problems, by_digest=True))
    if with_snaps:
        _check_model_snaps(model, rows, problems)
    return Seed(
        layout="uc16",
        partition=partition,
        directory=SEED16_DIR,
        system_label="",
        model=model,
        assertions=tuple(items),
        snaps=tuple(sorted(rows, key=lambda s: s.name)),
        problems=tuple(dict.fromkeys(problems)),
    )


def _pick_system(reader: FilesystemReader, labels: list[str], problems: list[str]) -> str:
    """The recovery system the bootloader would start, else the newest one."""
    from ucimage.inspect.bootenv import RECOVERY_BOOTENV_PATHS, parse_bootenv

    for path, fmt in RECOVERY_BOOTENV_PATHS:
        try:
            env = parse_bootenv(fmt, reader.read_bytes(path))
        except (FileNotFoundError, UcimageError):
            continue
        wanted = env.variables.get("snapd_recovery_system", "")
        if wanted in labels:
            return wanted
        if wanted:
            problems.append(f"{path} names recovery system {wanted!r}, which is not in the seed")
    return sorted(labels)[-1]


def read_seed20(
    reader: FilesystemReader,
    partition: int,
    workdir: Path,
    trusted: Sequence[Assertion] = (),
    with_snaps: bool = True,
) -> Seed:
    """Read a UC20+ seed from the ubuntu-seed filesystem *reader*."""
    problems: list[str] = []
    labels = sorted(e.name for e in reader.listdir("/systems") if e.is_dir)
    if not labels:
        raise SeedError("the seed has no recovery system under /systems")
    label = _pick_system(reader, labels, problems)
    sysdir = f"/systems/{label}"
    local = workdir / "system"
    reader.extract_tree(sysdir, local)
    items: list[tuple[str, Assertion]] = []
    model_file = local / "model"
    if not model_file.is_file():
        raise SeedError(f"{sysdir}/model is missing")
    model_items = _decode_file(model_file, problems, f"{sysdir}/model")
    model = _one_model([a for a in model_items if a.type == "model"], f"{sysdir}/model", problems)
    if len(model_items) != 1:
        problems.append(f"{sysdir}/model must contain exactly the model assertion")
    items.extend((f"{sysdir}/model", a) for a in model_items)
    adir = local / "assertions"
    for f in sorted(adir.iterdir()) if adir.is_dir() else []:
        where = f"{sysdir}/assertions/{f.name}"
        for a in _decode_file(f, problems, where):
            if a.type == "model":
                problems.append(f"{where} holds a model assertion; only {sysdir}/model may")
            items.append((where, a))
    index = _Index(items, trusted)
    options: list[dict[str, Any]] = []
    if (local / "options.yaml").is_file():
        doc = _load_yaml(local / "options.yaml", f"{sysdir}/options.yaml")
        raw = doc.get("snaps") if isinstance(doc, dict) else None
        options = [o for o in raw or [] if isinstance(o, dict)]
    by_name = {str(o.get("name")): o for o in options}
    channels = _model_channels(model)
    types = {name: stype for name, stype, _ in model_snap_names(model)}
    candidates: list[_Candidate] = []
    for decl in index.declarations.values():
        name = str(decl.header("snap-name"))
        snap_id = str(decl.header("snap-id"))
        revs = index.revisions_by_id.get(snap_id, [])
        if not revs:
            problems.append(f"snap {name}: snap-declaration without a snap-revision in the seed")
            continue
        rev = str(revs[0].header("snap-revision"))
        file = f"{name}_{rev}.snap"
        opt = by_name.get(name, {})
        candidates.append(
            _Candidate(
                name=name,
                local_path=workdir / "snaps" / file,
                fs_path=f"/snaps/{file}",
                channel=str(opt.get("channel") or channels.get(name, "latest/stable")),
                snap_id=snap_id,
                file_revision=rev,
                model_type=types.get(name, ""),
            )
        )
    for opt in options:
        unasserted = opt.get("unasserted")
        if not unasserted:
            continue
        opt_name = opt.get("name")
        if not isinstance(opt_name, str) or not _SNAP_NAME.match(opt_name):
            raise SeedError(f"{sysdir}/options.yaml: bad snap name {opt_name!r}")
        file = _check_file_name(unasserted, f"{sysdir}/options.yaml", opt_name)
        candidates.append(
            _Candidate(
                name=opt_name,
                local_path=local / "snaps" / file,
                fs_path=f"{sysdir}/snaps/{file}",
                channel="",
                snap_id=str(opt.get("id") or ""),
                unasserted=True,
                model_type=types.get(opt_name, ""),
            )
        )
    rows = []
    for c in candidates if with_snaps else []:
        if not c.unasserted:
            try:
                reader.extract(c.fs_path, c.local_path)
            except FileNotFoundError:
                problems.append(f"snap {c.name}: {c.fs_path} is missing")
        elif not c.local_path.is_file():
            problems.append(f"snap {c.name}: {c.fs_path} is missing")
        rows.append(_snap_row(c, index, problems, by_digest=False))
    if with_snaps:
        _check_model_snaps(model, rows, problems)
    return Seed(
        layout="uc20",
        partition=partition,
        directory=sysdir,
        system_label=label,
        model=model,
        assertions=tuple(items),
        snaps=tuple(sorted(rows, key=lambda s: s.name)),
        problems=tuple(dict.fromkeys(problems)),
        other_systems=tuple(x for x in labels if x != label),
    )


def detect_layout(reader: FilesystemReader) -> str | None:
    """``uc16`` or ``uc20`` when *reader*'s filesystem holds a seed, else None."""
    if reader.exists(f"{SEED16_DIR}/seed.yaml"):
        return "uc16"
    if reader.exists("/systems") and reader.exists("/snaps"):
        return "uc20"
    return None


def read_seed(
    reader: FilesystemReader,
    partition: int,
    workdir: Path,
    trusted: Sequence[Assertion] = (),
    with_snaps: bool = True,
) -> Seed | None:
    """The seed on *reader*'s filesystem, or None.

    *trusted* are the trusted roots (their accounts name the publishers of the
    snaps they publish, as on a device where they are built in).  Without
    *with_snaps* only the model and assertions are read (``snaps`` is empty).
    """
    layout = detect_layout(reader)
    if layout == "uc16":
        return read_seed16(reader, partition, workdir, trusted, with_snaps)
    if layout == "uc20":
        return read_seed20(reader, partition, workdir, trusted, with_snaps)
    return None
