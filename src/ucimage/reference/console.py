"""Read what a booted reference device printed on its serial console.

The reference base's init prints, between ``ucimage-reference: $ ...`` lines,
the device's ``snap list`` table, ``snap known model`` and ``snap model``, then
the marker line. :func:`parse_device_report` turns a console transcript back into data
so tests and the demo can compare it with the model and ``seed.manifest``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ucimage.errors import UcimageError

MARKER = "UCIMAGE-REFERENCE-BOOTED"
FAIL_MARKER = "UCIMAGE-REFERENCE-FAIL"
#: regex for ``ucimage boot --expect``: the device finished its report
EXPECT = MARKER + r" model="
_SECTION = "ucimage-reference: $ "
SNAP_LIST_COLUMNS = ("Name", "Version", "Rev", "Tracking", "Publisher", "Notes")


class ConsoleParseError(UcimageError):
    """The console transcript lacks the device's report."""

    code = "console-parse"


@dataclass(frozen=True)
class SnapListRow:
    name: str
    version: str
    rev: str
    tracking: str
    publisher: str
    notes: str


@dataclass(frozen=True)
class DeviceReport:
    """What the device said about itself."""

    snap_list_text: str
    snaps: tuple[SnapListRow, ...]
    model_text: str  # `snap known model`, newline-terminated
    marker: str  # the marker line
    model_id: str  # brand-id/model from the marker line
    snap_model: dict[str, str]  # `snap model`: brand, model, serial

    def snap(self, name: str) -> SnapListRow:
        for row in self.snaps:
            if row.name == name:
                return row
        raise KeyError(name)


def _sections(console: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in console.splitlines():
        idx = line.find(_SECTION)
        if idx >= 0:
            name = line[idx + len(_SECTION) :].strip()
            current = sections.setdefault(name, [])
            continue
        if current is not None:
            current.append(line)
    return sections


def parse_snap_list(lines: list[str]) -> tuple[SnapListRow, ...]:
    """Rows of a ``snap list`` table (columns separated by two or more spaces)."""
    if not lines or lines[0].split() != list(SNAP_LIST_COLUMNS):
        raise ConsoleParseError(f"not a snap list table: {lines[:1]!r}")
    rows = []
    for line in lines[1:]:
        if not line.strip():
            continue
        cells = line.split()
        if len(cells) != len(SNAP_LIST_COLUMNS):
            raise ConsoleParseError(f"snap list row has {len(cells)} columns: {line!r}")
        rows.append(SnapListRow(*cells))
    return tuple(rows)


def parse_device_report(console: str) -> DeviceReport:
    """The device's report from a console transcript; raises if it is incomplete."""
    for line in console.splitlines():
        if FAIL_MARKER in line:
            raise ConsoleParseError(f"the device reported a failure: {line.strip()}")
    marker = next((ln.strip() for ln in console.splitlines() if MARKER in ln), None)
    if marker is None:
        raise ConsoleParseError(f"no {MARKER} line on the console")
    sections = _sections(console)
    if "snap list" not in sections or "snap known model" not in sections:
        raise ConsoleParseError("the console lacks the 'snap list' or 'snap known model' output")
    snap_lines = sections["snap list"]
    model_lines = sections["snap known model"]
    model_id = ""
    for part in marker[marker.index(MARKER) :].split():
        if part.startswith("model="):
            model_id = part.removeprefix("model=")
    snap_model: dict[str, str] = {}
    for line in sections.get("snap model", []):
        label, _, value = line.strip().partition(" ")
        if label:
            snap_model[label] = value.strip()
    return DeviceReport(
        snap_model=snap_model,
        snap_list_text="\n".join(snap_lines) + "\n",
        snaps=parse_snap_list(snap_lines),
        model_text="\n".join(model_lines) + "\n",
        marker=marker[marker.index(MARKER) :],
        model_id=model_id,
    )
