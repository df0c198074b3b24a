"""Where the seed's snaps come from: local ``.snap`` files and the store client.

:func:`resolve` turns the planned snaps into concrete revisions (one store
refresh for all store snaps; local files need nothing) and :func:`fetch`
brings every file and its assertions into reach, checking that each snap is
what the model expects (name, type, base).  A clear error names every snap
that cannot be had.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ucimage.build.plan import PlannedSnap
from ucimage.errors import UcimageError

if TYPE_CHECKING:
    from ucimage.build.pipeline import ImageBuild


class SnapSourceError(UcimageError):
    code = "snap-source"


#: snap.yaml type → the model's word for it
_TYPE_ALIASES = {"os": "core"}


def _store_client(build: ImageBuild) -> Any:
    try:
        from ucimage.store import client as store_client  # type: ignore[attr-defined]
    except ImportError as exc:
        raise SnapSourceError(
            "the store client is not available in this build of ucimage",
            hint="pass every snap as a local file with --snap PATH.snap",
        ) from exc
    return store_client


def resolve(build: ImageBuild, planned: list[PlannedSnap]) -> list[PlannedSnap]:
    wanted = [p for p in planned if p.source == "store"]
    if not wanted:
        return planned
    if build.opts.offline and not _cache_available(build):
        names = ", ".join(p.name for p in wanted)
        raise SnapSourceError(
            f"cannot get snaps offline: {names}",
            hint="pass them with --snap PATH.snap or fetch them once without --offline",
        )
    client = _store_client(build)
    resolved = client.resolve_for_build(build, wanted)
    by_name = {r.name: r for r in resolved}
    return [by_name.get(p.name, p) for p in planned]


def _cache_available(build: ImageBuild) -> bool:
    return False


def fetch(build: ImageBuild, planned: list[PlannedSnap]) -> list[dict[str, Any]]:
    from ucimage.snaps import SnapFile

    info = build.info
    store_snaps = [p for p in planned if p.source == "store"]
    fetched: dict[str, dict[str, Any]] = {}
    if store_snaps:
        client = _store_client(build)
        fetched.update(client.fetch_for_build(build, store_snaps))
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for snap in planned:
        if snap.source == "local":
            assert snap.path is not None
            sf = SnapFile(Path(snap.path))
            meta = sf.info
            if meta.name != snap.name:
                problems.append(f"{snap.path} is snap {meta.name!r}, not {snap.name!r}")
                continue
            entry: dict[str, Any] = {
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
        else:
            got = fetched.get(snap.name)
            if got is None:
                problems.append(f"{snap.name} (channel {snap.channel})")
                continue
            entry = got
        model_snap = info.find(snap.name)
        if model_snap is not None and model_snap.type not in ("app", entry["type"]):
            problems.append(
                f"snap {snap.name!r} has type {entry['type']!r} but the model wants a "
                f"{model_snap.type} snap"
            )
        out.append(entry)
    if problems:
        raise SnapSourceError(
            "cannot get the snaps the image needs: " + "; ".join(problems),
            hint="check the names and files given with --snap and the model's snaps",
        )
    names = {e["name"] for e in out}
    for entry in out:
        base = entry.get("base")
        if base and base not in names and base != "core":
            raise SnapSourceError(
                f"snap {entry['name']!r} needs base {base!r}, which the image does not seed",
                hint=f"add it with --snap {base} (or a local {base}.snap)",
            )
    return out


def with_path(snap: PlannedSnap, path: Path) -> PlannedSnap:
    return replace(snap, path=str(path))
