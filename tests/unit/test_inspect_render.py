"""The snap-list table and its columns, as snapd's ``snap list`` prints them."""

from __future__ import annotations

import pytest

from ucimage.inspect.render import tabulate
from ucimage.inspect.seed import notes_for, resolve_pinned, tracking_channel


@pytest.mark.parametrize(
    ("channel", "shown"),
    [
        ("", "-"),
        ("stable", "latest/stable"),
        ("edge", "latest/edge"),
        ("18", "18/stable"),
        ("22/stable", "22/stable"),
        ("latest/stable", "latest/stable"),
        ("stable/hotfix-1", "latest/stable/…"),
        ("20/edge/fix", "20/edge/…"),
    ],
)
def test_tracking_channel(channel: str, shown: str) -> None:
    assert tracking_channel(channel) == shown


@pytest.mark.parametrize(
    ("snap_type", "flags", "notes"),
    [
        ("app", {}, "-"),
        ("", {}, "-"),
        ("os", {}, "core"),
        ("base", {}, "base"),
        ("gadget", {}, "gadget"),
        ("app", {"devmode": True}, "devmode"),
        ("app", {"classic": True, "private": True}, "classic,private"),
        ("kernel", {"devmode": True}, "kernel,devmode"),
    ],
)
def test_notes(snap_type: str, flags: dict[str, bool], notes: str) -> None:
    kwargs = {"devmode": False, "classic": False, "private": False, **flags}
    assert notes_for(snap_type, **kwargs) == notes


def test_tabulate_is_go_tabwriter_5_3_2() -> None:
    # minwidth 5, padding 2, last column unpadded; widths count characters
    rows = [
        ["Name", "Version", "Rev", "Tracking", "Publisher", "Notes"],
        ["core18", "20200724", "1885", "latest/stable", "canonical✓", "base"],
        ["a", "1", "x1", "-", "-", "-"],
    ]
    assert tabulate(rows) == (
        "Name    Version   Rev   Tracking       Publisher   Notes\n"
        "core18  20200724  1885  latest/stable  canonical✓  base\n"
        "a       1         x1    -              -           -\n"
    )
    assert tabulate([["a", "b"]]) == "a    b\n"
    assert tabulate([]) == ""


@pytest.mark.parametrize(
    ("track", "channel", "resolved"),
    [
        ("", "stable", "stable"),
        ("18", "", "18"),
        ("18", "stable", "18/stable"),
        ("18", "edge/fix", "18/edge/fix"),
        ("18", "18/beta", "18/beta"),
        ("18", "18", "18"),
        ("18", "20/stable", "18"),  # pinned-track switch: snapd falls back to the track
    ],
)
def test_resolve_pinned_track(track: str, channel: str, resolved: str) -> None:
    assert resolve_pinned(track, channel) == resolved
    assert tracking_channel(resolved).startswith((track or "latest") + "/")
