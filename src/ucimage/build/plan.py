"""The immutable build plan: what ``ucimage snap`` will do, as typed data.

:class:`BuildPlan` is computed from the options and the verified model before
anything is downloaded; ``--dry-run`` prints :meth:`BuildPlan.to_json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ucimage.build.options import STEP_NAMES, VOLUME_STEPS, BuildOptions


@dataclass(frozen=True)
class PlannedSnap:
    """One snap the seed will hold, and where it comes from."""

    name: str
    type: str
    source: str  # "local" or "store"
    channel: str | None = None
    revision: int | None = None  # a pinned (--revision) or resolved store revision
    snap_id: str | None = None
    path: str | None = None  # local file, or the fetched file once known
    in_model: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlannedSnap:
        return cls(**data)


@dataclass(frozen=True)
class ModelSummary:
    brand_id: str
    model: str
    series: str
    architecture: str
    base: str | None
    grade: str | None
    verified: bool


@dataclass(frozen=True)
class BuildPlan:
    model: ModelSummary
    kind: str  # "uc16" (UC16/18 seed) or "uc20" (UC20+ recovery seed)
    label: str | None
    snaps: tuple[PlannedSnap, ...]
    steps: tuple[str, ...]
    output_dir: str
    workdir: str | None
    seed_only: bool
    #: ``--seed`` value the image ids derive from (None: SOURCE_DATE_EPOCH + volume name)
    image_seed: str | None
    sector_size: int
    outputs: tuple[str, ...]
    #: the gadget's volume layouts, when the gadget is known without a download
    #: (a local gadget snap); system-data is shown at its minimum size
    volumes: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["snaps"] = [s.to_json() for s in self.snaps]
        return data


def steps_for(opts: BuildOptions) -> tuple[str, ...]:
    if opts.seed_only:
        return tuple(s for s in STEP_NAMES if s not in VOLUME_STEPS)
    return STEP_NAMES


def output_dir_for(opts: BuildOptions) -> Path:
    """``-O`` if given, else the workdir, else the current directory (as ubuntu-image)."""
    if opts.output_dir is not None:
        return opts.output_dir
    if opts.workdir is not None:
        return opts.workdir
    return Path.cwd()
