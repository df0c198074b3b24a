"""Verbs ``gadget validate`` and ``gadget layout`` (logic in :mod:`ucimage.gadget`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ucimage.errors import UsageError

if TYPE_CHECKING:
    # imported by the handlers when they run (keeps the parser, and start-up, cheap)
    from ucimage.gadget import GadgetError, GadgetInfo, ModelContext, VolumeLayout

_MODELS = {
    "uc16": (False, False),
    "uc18": (False, False),
    "uc20": (False, True),
    "classic": (True, False),
    "classic-modes": (True, True),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's verbs to the ``ucimage`` parser."""
    group = subparsers.add_parser(
        "gadget",
        help="validate a gadget.yaml and show its disk layout",
        description="Check a gadget (gadget.yaml, unpacked gadget dir or .snap) with "
        "snapd's rules and show the byte layout of its disk images.",
    )
    verbs = group.add_subparsers(dest="gadget_verb", metavar="VERB")
    group.set_defaults(func=lambda args: _help(group))

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("path", metavar="PATH", help="gadget.yaml, gadget dir or .snap")
    common.add_argument(
        "--model",
        choices=sorted(_MODELS),
        help="apply the rules for this kind of model (default: inferred from the "
        "roles: a system-seed means UC20+)",
    )

    p = verbs.add_parser(
        "validate",
        parents=[common],
        help="check a gadget against snapd's gadget.yaml rules",
        description="Exit 0 with a one-line summary when the gadget is valid, exit 1 "
        "listing every problem when not.",
    )
    p.set_defaults(func=cmd_validate)

    p = verbs.add_parser(
        "layout",
        parents=[common],
        help="print the byte layout of each volume's disk image",
        description="Print start, size, partition number, type, name, role, filesystem "
        "and label of every structure, and the image size, per volume.",
    )
    p.add_argument("--json", action="store_true", help="print the layout plan as JSON")
    p.add_argument(
        "--image-size",
        metavar="SIZE|VOL:SIZE,...",
        help="image size (bytes, or with K/M/G/T suffix), for all volumes or per volume",
    )
    p.add_argument("--sector-size", type=int, choices=(512, 4096), default=512, help="default 512")
    p.add_argument("--volume", metavar="NAME", help="only this volume")
    p.add_argument(
        "--kernel-dir", metavar="DIR", type=Path, help="unpacked kernel snap ($kernel: refs)"
    )
    p.set_defaults(func=cmd_layout)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _model(args: argparse.Namespace) -> ModelContext | None:
    from ucimage.gadget import ModelContext

    if not args.model:
        return None
    classic, modes = _MODELS[args.model]
    return ModelContext(classic=classic, has_modes=modes)


def _load(args: argparse.Namespace) -> GadgetInfo:
    from ucimage.gadget import load_gadget

    return load_gadget(args.path, model=_model(args))


def _report(exc: GadgetError) -> int:
    for problem in exc.problems:
        print(f"error: {problem}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)
    return exc.exit_code


def cmd_validate(args: argparse.Namespace) -> int:
    from ucimage.gadget import GadgetError

    try:
        info = _load(args)
    except GadgetError as exc:
        return _report(exc)
    for warning in info.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    parts = []
    for v in info.volumes.values():
        count = sum(1 for s in v.structures if not s.implicit)
        extra = " + implicit writable" if any(s.implicit for s in v.structures) else ""
        boot = f", bootloader {v.bootloader}" if v.bootloader else ""
        parts.append(f"{v.name}: {v.schema}, {count} structure(s){extra}{boot}")
    rules = "UC20+" if info.has_modes else "UC16/18"
    print(
        f"valid: {info.origin}: {len(info.volumes)} volume(s) "
        f"({'; '.join(parts) or 'none: only valid for a classic model'}), {rules} rules"
    )
    return 0


_SIZE = re.compile(r"^([0-9]+)\s*([KMGT]?)(i?B)?$", re.IGNORECASE)


def parse_image_size(text: str) -> int:
    """``4G``, ``3500M``, ``1073741824``; K/M/G/T are binary (KiB, MiB, ...)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise UsageError(
            f"invalid image size {text!r}", hint="use bytes or a K/M/G/T suffix, e.g. 4G"
        )
    factor = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(match.group(1)) * factor[match.group(2).upper()]


def parse_image_sizes(text: str | None, volumes: list[str]) -> dict[str, int]:
    """``SIZE`` (every volume) or ``VOL:SIZE,...`` (name or index) like ubuntu-image's -i."""
    if not text:
        return {}
    if ":" not in text:
        size = parse_image_size(text)
        return dict.fromkeys(volumes, size)
    out: dict[str, int] = {}
    for item in text.split(","):
        name, _, size_text = item.partition(":")
        if name.isdigit() and int(name) < len(volumes) and name not in volumes:
            name = volumes[int(name)]  # ubuntu-image also takes a volume's index
        if name not in volumes:
            raise UsageError(
                f"--image-size names unknown volume {name!r}",
                hint=f"volumes: {', '.join(volumes)}",
            )
        out[name] = parse_image_size(size_text)
    return out


def cmd_layout(args: argparse.Namespace) -> int:
    from ucimage.gadget import GadgetError, lay_out_volume

    try:
        info = _load(args)
        names = list(info.volumes)
        if args.volume:
            if args.volume not in names:
                raise UsageError(
                    f"no volume {args.volume!r} in the gadget", hint=f"volumes: {names}"
                )
            names = [args.volume]
        sizes = parse_image_sizes(args.image_size, names)
        layouts: list[VolumeLayout] = []
        skipped: list[str] = []
        for name in names:
            volume = info.volumes[name]
            if not volume.produces_image:
                skipped.append(name)
                continue
            layouts.append(
                lay_out_volume(
                    volume,
                    sector_size=args.sector_size,
                    image_size=sizes.get(name),
                    kernel_dir=args.kernel_dir,
                )
            )
    except GadgetError as exc:
        return _report(exc)
    for warning in info.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        doc = {
            "origin": info.origin,
            "ruleset": info.ruleset,
            "volumes": [layout.to_json() for layout in layouts],
            "skipped-volumes": skipped,
        }
        print(json.dumps(doc, indent=2))
        return 0
    for layout in layouts:
        print(format_layout(layout))
    for name in skipped:
        print(f"volume {name}: schema {info.volumes[name].schema}, no disk image")
    return 0


def format_layout(layout: VolumeLayout) -> str:
    """A readable table of one :class:`~ucimage.gadget.VolumeLayout`."""
    from ucimage.gadget.quantity import iec

    head = (
        f"volume {layout.name}: {layout.schema}, {layout.sector_size}-byte sectors, "
        f"image {layout.size} bytes ({iec(layout.size)})"
        + (f", bootloader {layout.bootloader}" if layout.bootloader else "")
    )
    rows = [("part", "start", "sector", "size", "type", "name", "role", "fs", "label", "notes")]
    for s in layout.structures:
        notes = []
        if s.implicit:
            notes.append("implicit")
        if not s.in_image:
            notes.append("made at install")
        if s.bootable:
            notes.append("bootable")
        if s.offset_write:
            notes.append(f"offset-write LE32 {s.offset_write.value} at {s.offset_write.at}")
        for c in s.content:
            if c.kind == "image":
                notes.append(f"image {c.source}@{c.start}")
        rows.append(
            (
                str(s.partition_number) if s.partition_number else "-",
                str(s.start),
                str(s.start_sector),
                f"{s.size} ({iec(s.size)})",
                s.partition_type or ("mbr" if s.role == "mbr" else "bare"),
                s.name or "-",
                s.role or "-",
                s.filesystem or "-",
                s.label or "-",
                ", ".join(notes),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [head]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)
