"""``seed.manifest`` and ``snaps.manifest`` in ubuntu-image's format.

* ``seed.manifest``: validation sets first, sorted by ``account/name``
  (``account/name=SEQ`` when pinned, ``account/name SEQ`` otherwise), then one
  ``name revision`` line per seeded snap that has a revision, sorted by name.
  Not written when empty.
* ``snaps.manifest``: one ``name revision`` line per boot snap installed in
  ``system-data/var/lib/snapd/snaps`` (UC16/18 only), in the order of their
  ``<name>_<revision>.snap`` file names (ubuntu-image reads that directory).

:func:`parse_manifest` reads either back (``#`` lines are comments).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ucimage.errors import UcimageError


class ManifestError(UcimageError):
    code = "manifest"


@dataclass(frozen=True)
class ValidationSetPin:
    account: str
    name: str
    sequence: int
    pinned: bool


def seed_manifest(
    revisions: Mapping[str, str], validation_sets: Iterable[ValidationSetPin] = ()
) -> str:
    lines = []
    for vs in sorted(validation_sets, key=lambda v: f"{v.account}/{v.name}"):
        sep = "=" if vs.pinned else " "
        lines.append(f"{vs.account}/{vs.name}{sep}{vs.sequence}")
    lines += [f"{name} {rev}" for name, rev in sorted(revisions.items()) if rev]
    return "".join(line + "\n" for line in lines)


def snaps_manifest(installed: Mapping[str, str]) -> str:
    # ubuntu-image lists the <name>_<rev>.snap files in file-name order, where
    # "pc-kernel_1.snap" comes before "pc_1.snap" ("-" sorts before "_")
    return "".join(
        f"{name} {rev}\n"
        for name, rev in sorted(installed.items(), key=lambda item: f"{item[0]}_{item[1]}.snap")
    )


def write_manifest(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write *text* atomically; an empty manifest is not written (returns False)."""
    if not text:
        return False
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def parse_manifest(text: str) -> dict[str, str]:
    """``name revision`` lines (and ``acct/name=SEQ`` pins) as a mapping."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" in line and " " not in line:
            name, _, rev = line.partition("=")
        else:
            parts = line.split()
            if len(parts) != 2:
                raise ManifestError(f"line {number}: expected 'name revision', got {raw!r}")
            name, rev = parts
        if name in out:
            raise ManifestError(f"line {number}: {name!r} listed twice")
        out[name] = rev
    return out
