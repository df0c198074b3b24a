"""Render an :class:`ImageReport` as text (for people) or a stable JSON dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ucimage.inspect.image import ImageReport
from ucimage.inspect.seed import Seed, SeedSnap

#: bump when a key is renamed or removed (adding keys does not change it)
JSON_FORMAT = 1


def tabulate(rows: Sequence[Sequence[str]]) -> str:
    """Go ``tabwriter.NewWriter(w, 5, 3, 2, ' ', 0)`` as ``snap list`` uses it.

    Every cell but the last of a line is padded to its column's width plus 2
    (at least 5); widths count characters, not bytes.
    """
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell) + 2, 5)
    lines = []
    for r in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])]
        lines.append("".join(cells) + r[-1])
    return "\n".join(lines) + "\n"


#: the validation marks ``snap list`` appends to a publisher (cmd/snap/color.go)
UNICODE_MARKS = {"verified": "✓", "starred": "✪"}
ASCII_MARKS = {"verified": "**", "starred": "*"}


def _publisher(snap: SeedSnap, unicode: bool) -> str:
    mark = UNICODE_MARKS.get(snap.publisher_validation, "")
    if unicode or not mark or not snap.publisher.endswith(mark):
        return snap.publisher
    return snap.publisher[: -len(mark)] + ASCII_MARKS[snap.publisher_validation]


def snap_list(seed: Seed, *, unicode: bool = True) -> str:
    """The table ``snap list`` prints on a device seeded from *seed*.

    *unicode* False gives snap's ASCII marks (``**`` verified, ``*`` starred),
    what ``snap list --unicode=never`` (or ``auto`` into a pipe) prints.
    """
    rows = [["Name", "Version", "Rev", "Tracking", "Publisher", "Notes"]]
    for s in seed.snaps:
        rows.append([s.name, s.version, s.revision, s.tracking, _publisher(s, unicode), s.notes])
    return tabulate(rows)


def known_model(seed: Seed) -> bytes:
    """``snap known model``: the model assertion, byte for byte, ending in a newline."""
    data = seed.model.encode()
    return data if data.endswith(b"\n") else data + b"\n"


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}".replace(".0 ", " ")
    return f"{n} B"


def render_text(report: ImageReport) -> str:
    t = report.table
    out: list[str] = []
    out.append(f"Image: {report.path} ({report.size} bytes, {_size(report.size)})")
    disk = f"Partition table: {t.scheme}"
    if t.scheme != "none":
        disk += f", disk id {t.disk_id}, sector size {t.sector_size}"
    out.append(disk)
    vol = report.volume
    if vol is not None:
        disk = f"Gadget volume: {vol.name} (gadget {vol.gadget}"
        disk += f", bootloader {vol.bootloader})" if vol.bootloader else ")"
        out.append(disk)
    roles = {s.partition: s.role for s in vol.structures} if vol else {}
    fs_by_part = {pf.partition: pf.filesystem for pf in report.filesystems}
    rows = [["#", "Start", "End", "Sectors", "Size", "Type", "Name", "Role", "Filesystem", "Label"]]
    for p in t.partitions:
        fs = fs_by_part.get(p.number)
        name = " ".join(x for x in (p.name, "(boot)" if p.bootable else "") if x)
        rows.append(
            [
                str(p.number),
                str(p.start),
                str(p.end),
                str(p.size),
                _size(p.size_bytes),
                p.type,
                name or "-",
                roles.get(p.number) or "-",
                fs.type if fs else "-",
                (fs.label or "-") if fs else "-",
            ]
        )
    out.append("")
    out.append(tabulate(rows).rstrip("\n"))
    if report.filesystems:
        out.append("")
        out.append("Filesystems:")
        for pf in report.filesystems:
            fs = pf.filesystem
            extra = ", ".join(f"{k} {v}" for k, v in fs.details.items() if not k.startswith("feat"))
            where = f"partition {pf.partition}" if pf.partition else "whole image"
            line = f"  {where}: {fs.type}, label {fs.label or '-'}, uuid {fs.uuid or '-'}, "
            line += f"{fs.size} bytes ({_size(fs.size)})"
            out.append(line + (f", {extra}" if extra else ""))
    seed = report.seed
    if seed is not None:
        out.append("")
        where = f"partition {seed.partition}:{seed.directory}"
        out.append(f"Seed ({'UC20+' if seed.layout == 'uc20' else 'UC16/18'}) in {where}")
        m = seed.model
        model_line = f"Model: {m.header('brand-id')}/{m.header('model')}"
        for key in ("base", "grade", "architecture"):
            if m.header(key):
                model_line += f", {key} {m.header(key)}"
        out.append(model_line)
        out.append("")
        out.append(snap_list(seed).rstrip("\n"))
    if report.bootenvs:
        out.append("")
        out.append("Boot environment:")
        for b in report.bootenvs:
            state = "" if b.env.valid else "  [INVALID: " + "; ".join(b.env.problems) + "]"
            out.append(f"  {b.where} ({b.env.format}){state}")
            for k, v in b.env.variables.items():
                out.append(f"    {k}={v}")
            if b.env.format == "lk" and "struct" in b.env.details:
                matrix = b.env.details.get("boot partitions", "")
                out.append(
                    f"    (lk {b.env.details['struct']} struct; "
                    f"boot image partitions: {matrix or 'none named'})"
                )
    problems = list(report.problems) + (list(seed.problems) if seed else [])
    if problems:
        out.append("")
        out.append("Problems:")
        out.extend(f"  - {p}" for p in problems)
    if report.verify is not None:
        out.append("")
        vr = report.verify
        counts: dict[str, int] = {}
        for c in vr.checks:
            counts[c.status] = counts.get(c.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        out.append(f"Verify: {'PASS' if vr.ok else 'FAIL'} ({summary})")
        for c in vr.checks:
            mark = {"ok": "ok", "failed": "FAIL", "skipped": "skip"}[c.status]
            line = f"  {mark:4} {c.kind} {c.subject}"
            if c.status != "ok" or c.kind == "snap":
                line += f": {c.message}" if c.message else ""
            out.append(line)
    return "\n".join(out) + "\n"


def to_json(report: ImageReport) -> dict[str, Any]:
    """A stable, documented dict (keys only ever added; see JSON_FORMAT)."""
    t = report.table
    fs_by_part = {pf.partition: pf.filesystem for pf in report.filesystems}

    def fs_json(number: int) -> dict[str, Any] | None:
        fs = fs_by_part.get(number)
        if fs is None:
            return None
        return {
            "type": fs.type,
            "label": fs.label,
            "uuid": fs.uuid,
            "size": fs.size,
            "block-size": fs.block_size,
            "details": dict(fs.details),
        }

    structures = {s.partition: s for s in report.volume.structures} if report.volume else {}

    def structure_json(number: int) -> dict[str, str] | None:
        st = structures.get(number)
        if st is None:
            return None
        return {"name": st.name, "role": st.role, "filesystem": st.filesystem, "label": st.label}

    partitions = [
        {
            "number": p.number,
            "start": p.start,
            "size": p.size,
            "offset": p.offset,
            "size-bytes": p.size_bytes,
            "type": p.type,
            "uuid": p.uuid,
            "name": p.name,
            "attributes": p.attributes,
            "bootable": p.bootable,
            "filesystem": fs_json(p.number),
            "structure": structure_json(p.number),
        }
        for p in t.partitions
    ]
    vol = report.volume
    doc: dict[str, Any] = {
        "format": JSON_FORMAT,
        "image": {"path": str(report.path), "size": report.size},
        "volumes": [
            {
                "name": vol.name if vol else None,
                "gadget": vol.gadget if vol else None,
                "bootloader": vol.bootloader if vol else None,
                "schema": t.scheme,
                "id": t.disk_id,
                "sector-size": t.sector_size,
                "size": report.size,
                "first-lba": t.first_lba,
                "last-lba": t.last_lba,
                "partitions": [p["number"] for p in partitions],
            }
        ],
        "partitions": partitions,
        "filesystems": [
            {"partition": pf.partition, **(fs_json(pf.partition) or {})}
            for pf in report.filesystems
        ],
        "seed": None,
        "bootenv": [
            {
                "partition": b.partition,
                "path": b.path if not b.raw else None,
                "format": b.env.format,
                "valid": b.env.valid,
                "problems": list(b.env.problems),
                "vars": dict(b.env.variables),
                "raw": b.raw,
                "partition-name": b.name,
                "details": dict(b.env.details),
            }
            for b in report.bootenvs
        ],
        "verify": None,
        "problems": list(report.problems),
    }
    seed = report.seed
    if seed is not None:
        m = seed.model
        doc["seed"] = {
            "layout": seed.layout,
            "partition": seed.partition,
            "directory": seed.directory,
            "system-label": seed.system_label or None,
            "other-systems": list(seed.other_systems),
            "model": {
                "brand-id": m.header("brand-id"),
                "model": m.header("model"),
                "series": m.header("series"),
                "architecture": m.header("architecture"),
                "base": m.header("base"),
                "grade": m.header("grade"),
                "revision": m.revision,
                "sign-key-sha3-384": m.sign_key_id,
                "assertion": known_model(seed).decode("utf-8"),
            },
            "snaps": [
                {
                    "name": s.name,
                    "version": s.version,
                    "revision": s.revision,
                    "tracking": s.tracking,
                    "channel": s.channel,
                    "publisher": s.publisher,
                    "publisher-id": s.publisher_id,
                    "notes": s.notes,
                    "type": s.type,
                    "snap-id": s.snap_id,
                    "file": s.file,
                    "size": s.size,
                    "sha3-384": s.sha3_384,
                    "unasserted": s.unasserted,
                }
                for s in seed.snaps
            ],
            "snap-list": snap_list(seed),
            "assertions": [
                {"file": where, "type": a.type, "primary-key": list(a.primary_key)}
                for where, a in seed.assertions
            ],
            "problems": list(seed.problems),
        }
    if report.verify is not None:
        doc["verify"] = {
            "ok": report.verify.ok,
            "checks": [
                {"kind": c.kind, "subject": c.subject, "status": c.status, "message": c.message}
                for c in report.verify.checks
            ],
            "failures": [c.subject for c in report.verify.failures],
        }
    return doc
