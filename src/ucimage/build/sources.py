"""Where the seed's snaps come from: local ``.snap`` files and the store client.

:func:`resolve` turns the planned snaps into concrete revisions (one store
refresh for all store snaps; local files need nothing) and :func:`fetch`
brings every file and its assertions into reach, checking that each snap is
what the model expects (name, type, base).  A clear error names every snap
that cannot be had.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ucimage.build.plan import PlannedSnap
from ucimage.errors import UcimageError, UsageError

if TYPE_CHECKING:
    from ucimage.build.pipeline import ImageBuild


class SnapSourceError(UcimageError):
    code = "snap-source"


#: snap.yaml type → the model's word for it
_TYPE_ALIASES = {"os": "core"}


_RESOLVED_FIELDS = (
    "name",
    "snap_id",
    "revision",
    "url",
    "sha3_384",
    "size",
    "version",
    "type",
    "base",
    "channel",
)


#: offline builds point the client here, so nothing can leave the machine
_NOWHERE = "http://127.0.0.1:9/"


def store_client(build: ImageBuild) -> Any:
    """The build's store client (pointing nowhere when offline), for a ``with`` block.

    One per build (:meth:`ImageBuild.store_client`): leaving the block keeps it open
    for the next step, the build closes it when it ends.
    """

    def make() -> Any:
        from ucimage.store.client import StoreClient

        url = _NOWHERE if build.opts.offline else build.opts.store
        # as snapd's tooling store for a model: its store header picks the (brand) store
        return StoreClient(
            url=url, arch=build.info.architecture or None, store_id=build.info.store or ""
        )

    return contextlib.nullcontext(build.store_client(make))


_client = store_client


def _resolution_cache(build: ImageBuild) -> Path:
    """Where resolutions are remembered for --offline (per store and architecture)."""
    from ucimage.run import cache_home

    key = hashlib.sha256(
        f"{build.opts.store or os.environ.get('UBUNTU_STORE_URL', '')}|"
        f"{build.info.architecture}".encode()
    ).hexdigest()[:16]
    return cache_home() / "resolved" / f"{key}.json"


def _request_key(p: PlannedSnap) -> str:
    return f"{p.name}|{p.channel or ''}|{p.revision or ''}"


def _remember(build: ImageBuild, wanted: list[PlannedSnap], records: dict[str, Any]) -> None:
    path = _resolution_cache(build)
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        known = {}
    for p in wanted:
        if p.name in records:
            known[_request_key(p)] = records[p.name]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _offline_records(build: ImageBuild, wanted: list[PlannedSnap]) -> dict[str, Any]:
    """Resolve from what an earlier online build remembered, if the files are cached."""
    from ucimage.run import cache_home

    path = _resolution_cache(build)
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    records: dict[str, Any] = {}
    missing = []
    for p in wanted:
        record = known.get(_request_key(p))
        cached = record and (cache_home() / "snaps" / f"{record['sha3_384']}.snap").is_file()
        if record and cached:
            records[p.name] = record
        else:
            missing.append(f"{p.name} ({p.channel or 'stable'})")
    if missing:
        raise SnapSourceError(
            f"cannot get these snaps offline: {', '.join(missing)}",
            hint="pass them as local files with --snap PATH.snap, or build once online "
            "to fill the cache",
        )
    return records


def resolve(build: ImageBuild, planned: list[PlannedSnap]) -> list[PlannedSnap]:
    """One store refresh for every store snap; local snaps are already resolved."""
    from ucimage.build import validation

    if validation.enforced_sets(build):
        from ucimage.build.trust import trusted_database

        with _client(build) as client:
            rules = validation.fetch_rules(
                build, client, trusted_database(build.opts.trusted, build.opts.assertions)
            )
        planned = validation.apply_rules(rules, planned)
    wanted = [p for p in planned if p.source == "store"]
    if not wanted:
        return planned
    names = ", ".join(f"{p.name} ({p.channel or 'stable'})" for p in wanted)
    if build.opts.offline:
        records = _offline_records(build, wanted)
    else:
        from ucimage.store.client import SnapRequest

        requests = [SnapRequest(p.name, channel=p.channel, revision=p.revision) for p in wanted]
        with _client(build) as client:
            try:
                resolved = client.resolve(
                    requests, ignore_validation=build.opts.validation != "enforce"
                )
            except UcimageError as exc:
                raise SnapSourceError(
                    f"cannot resolve snaps {names}: {exc.message}", hint=exc.hint
                ) from exc
        records = {r.name: {f: getattr(r, f) for f in _RESOLVED_FIELDS} for r in resolved}
        _remember(build, wanted, records)
    build.state.results["store_resolved"] = records
    out = []
    for p in planned:
        r = records.get(p.name)
        if r is None:
            out.append(p)
        else:
            out.append(replace(p, revision=r["revision"], snap_id=r["snap_id"]))
    return out


def _fetch_store(build: ImageBuild, snaps: list[PlannedSnap]) -> dict[str, dict[str, Any]]:
    from ucimage.build.trust import trusted_database
    from ucimage.store.client import ResolvedSnap

    records = build.state.results.get("store_resolved", {})
    resolved = []
    for snap in snaps:
        fields = dict(records[snap.name])
        resolved.append(ResolvedSnap(**fields))
    db = trusted_database(build.opts.trusted, build.opts.assertions)
    with _client(build) as client:
        try:
            fetched = client.fetch(resolved, None, db=db)
        except UcimageError as exc:
            raise SnapSourceError(f"cannot fetch snaps: {exc.message}", hint=exc.hint) from exc
    adir = build.workdir / "assertions"
    adir.mkdir(exist_ok=True)
    planned = {p.name: p for p in snaps}
    out: dict[str, dict[str, Any]] = {}
    for f in fetched:
        r = f.resolved
        saved = []
        for a in f.assertions:
            path = adir / (",".join(a.primary_key) + "." + a.type)
            path.write_bytes(a.encode())
            saved.append({"type": a.type, "primary_key": list(a.primary_key), "file": str(path)})
        out[r.name] = {
            "name": r.name,
            "path": str(f.path),
            "revision": r.revision,
            "snap_id": r.snap_id,
            "channel": planned[r.name].channel,
            "assertions": saved,
            "version": r.version,
            "type": _TYPE_ALIASES.get(r.type, r.type),
            "base": r.base,
        }
    return out


def _assert_local_snaps(
    build: ImageBuild, entries: list[dict[str, Any]], channels: dict[str, str | None]
) -> None:
    """Like snapd: a local file the store knows (by digest) becomes an asserted snap.

    Only with an explicit ``--store`` (not offline): digests are computed in
    parallel threads (hashlib releases the GIL), then one assertion look-up per
    file; unknown files stay unasserted.
    """
    if not entries or build.opts.offline or not build.opts.store:
        return
    from concurrent.futures import ThreadPoolExecutor

    from ucimage.assertions import Ref
    from ucimage.build.trust import trusted_database
    from ucimage.snaps import digest_file
    from ucimage.store.client import ResolvedSnap
    from ucimage.store.errors import AssertionNotFoundError

    with ThreadPoolExecutor(max_workers=min(4, len(entries))) as pool:
        digests = list(pool.map(lambda e: digest_file(e["path"]), entries))
    db = trusted_database(build.opts.trusted, build.opts.assertions)
    adir = build.workdir / "assertions"
    adir.mkdir(exist_ok=True)
    with _client(build) as client:
        for entry, (hex_digest, b64, size) in zip(entries, digests, strict=True):
            try:
                # asked of this store, never the cache: another store may know the digest
                rev = client.get_assertion(
                    Ref("snap-revision", (b64, "global-upload")), cached=False
                )
            except AssertionNotFoundError:
                continue
            except UcimageError as exc:
                build.progress.warning(f"cannot look up {entry['name']} in the store: {exc}")
                continue
            resolved = ResolvedSnap(
                name=entry["name"],
                snap_id=str(rev.header("snap-id")),
                revision=int(rev.header("snap-revision")),
                url="",
                sha3_384=hex_digest,
                size=size,
            )
            try:
                chain = client.fetch_assertions(resolved, db)
                client.verify(resolved, Path(entry["path"]), db)
            except UcimageError as exc:
                raise SnapSourceError(
                    f"local snap {entry['path']} is known to the store but does not verify: {exc}",
                    hint=getattr(exc, "hint", None),
                ) from exc
            saved = []
            for a in chain:
                path = adir / (",".join(a.primary_key) + "." + a.type)
                path.write_bytes(a.encode())
                saved.append(
                    {"type": a.type, "primary_key": list(a.primary_key), "file": str(path)}
                )
            entry.update(
                revision=resolved.revision,
                snap_id=resolved.snap_id,
                assertions=saved,
                # as snapd's seedwriter resolves it: --snap NAME=CHANNEL, else -c, over
                # the model's default channel (the plan's channel of the local snap)
                channel=channels.get(entry["name"]) or "stable",
            )
            build.progress.info(f"local snap {entry['name']} is revision {resolved.revision}")


def fetch(build: ImageBuild, planned: list[PlannedSnap]) -> list[dict[str, Any]]:
    """Every snap of the plan as a seed entry: the local files first (read, and asserted
    by the store when it knows them), then the store's, downloaded or from the cache."""
    from ucimage.snaps import SnapFile

    entries: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for snap in planned:
        if snap.source != "local":
            continue
        assert snap.path is not None
        meta = SnapFile(Path(snap.path)).info
        if meta.name != snap.name:
            problems.append(f"{snap.path} is snap {meta.name!r}, not {snap.name!r}")
            continue
        entries[snap.name] = {
            "name": snap.name,
            "path": snap.path,
            "revision": None,
            "snap_id": snap.snap_id,
            "channel": None,
            "assertions": [],
            "version": meta.version,
            "type": _TYPE_ALIASES.get(meta.type, meta.type),
            "base": meta.base,
        }
    problems += _type_problems(build, entries.values())
    if not problems and entries:
        # before any download: what the store knows of the files decides what a model
        # of grade signed accepts
        _assert_local_snaps(
            build,
            list(entries.values()),
            {p.name: p.channel for p in planned if p.source == "local"},
        )
        _check_local_snaps_for_grade(build, entries.values())
    store_snaps = [p for p in planned if p.source == "store"]
    if store_snaps and not problems:
        fetched = _fetch_store(build, store_snaps)
        for snap in store_snaps:
            got = fetched.get(snap.name)
            if got is None:
                problems.append(f"{snap.name} (channel {snap.channel})")
            else:
                entries[snap.name] = got
        problems += _type_problems(
            build, [fetched[p.name] for p in store_snaps if p.name in fetched]
        )
    if problems:
        raise SnapSourceError(
            "cannot get the snaps the image needs: " + "; ".join(problems),
            hint="check the names and files given with --snap and the model's snaps",
        )
    out = [entries[p.name] for p in planned]
    names = {e["name"] for e in out}
    for entry in out:
        base = entry.get("base")
        if base and base not in names and base != "core":
            raise SnapSourceError(
                f"snap {entry['name']!r} needs base {base!r}, which the image does not seed",
                hint=f"add it with --snap {base} (or a local {base}.snap)",
            )
    return out


def _type_problems(build: ImageBuild, entries: Iterable[dict[str, Any]]) -> list[str]:
    problems = []
    for entry in entries:
        model_snap = build.info.find(entry["name"])
        if model_snap is not None and model_snap.type not in ("app", entry["type"]):
            problems.append(
                f"snap {entry['name']!r} has type {entry['type']!r} but the model wants a "
                f"{model_snap.type} snap"
            )
    return problems


def _check_local_snaps_for_grade(build: ImageBuild, entries: Iterable[dict[str, Any]]) -> None:
    """A model of grade signed or secured takes a local file only as one of its own snaps
    that the store asserts, as snapd's seedwriter (policy20): no unasserted or extra ones."""
    grade = build.info.grade
    if grade not in ("signed", "secured"):
        return
    for entry in entries:
        why = None
        if build.info.find(entry["name"]) is None:
            why = "is not one of the model's snaps"
        elif entry["revision"] is None:
            why = "is not known to the store (unasserted)"
        if why:
            raise UsageError(
                "cannot override channels, add devmode snaps, local snaps, or extra snaps "
                "with a model of grade higher than dangerous",
                hint=f"local snap {entry['path']} {why}; the model is of grade {grade}",
            )
