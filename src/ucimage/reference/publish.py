"""Push the reference snaps to a ucimage store and release them.

Channels follow Ubuntu Core 18: the gadget and kernel go to track ``18`` (the
model says ``pc=18`` / ``pc-kernel=18``) and to ``latest/stable``; the base and
snapd go to ``latest/stable``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

#: channels each reference snap is released to
CHANNELS: dict[str, tuple[str, ...]] = {
    "pc": ("18/stable", "latest/stable"),
    "pc-kernel": ("18/stable", "latest/stable"),
    "core18": ("latest/stable",),
    "snapd": ("latest/stable",),
}


def push_reference_snaps(
    store_url: str,
    token: str | None,
    snaps: Mapping[str, Path],
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Push and release every snap; returns name -> store revision."""
    from ucimage.store.admin import StoreAdmin

    admin = StoreAdmin(store_url, token)
    revisions: dict[str, int] = {}
    for name, path in snaps.items():
        result = admin.push(path, CHANNELS.get(name, ("latest/stable",)))
        revisions[name] = int(result["revision"])
        if progress is not None:
            state = "already in the store as" if result.get("existing") else "pushed as"
            progress(
                f"  {name}: {state} revision {revisions[name]}, "
                f"released to {', '.join(result.get('released') or [])}"
            )
    return revisions
