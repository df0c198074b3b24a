"""What seeding needs to know about a model assertion.

:class:`ModelInfo` is built from a model's headers (as decoded by
:mod:`ucimage.assertions`) and answers the questions the seed writers ask:
UC16/18 or UC20+, which snaps are essential and in which order snapd seeds
them, which channel each one defaults to (``pc=18`` means track ``18``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ucimage.errors import UcimageError


class ModelError(UcimageError):
    """The model assertion cannot be used to build an image."""

    code = "model"


#: snap types of essential snaps, in the order snapd seeds them
ESSENTIAL_ORDER = ("snapd", "kernel", "base", "gadget")


@dataclass(frozen=True)
class ModelSnap:
    """One snap the model names."""

    name: str
    type: str  # snapd, kernel, base, core (os), gadget, app
    snap_id: str | None = None
    default_channel: str = "latest/stable"
    presence: str = "required"  # required or optional
    modes: tuple[str, ...] = ("run",)

    @property
    def essential(self) -> bool:
        return self.type in ("snapd", "kernel", "base", "core", "gadget")


@dataclass(frozen=True)
class ModelInfo:
    """A model's seeding-relevant headers."""

    brand_id: str
    model: str
    series: str
    architecture: str
    display_name: str | None
    base: str | None
    grade: str | None
    store: str | None
    snaps: tuple[ModelSnap, ...]
    validation_sets: tuple[Mapping[str, str], ...] = field(default_factory=tuple)

    @property
    def uc20(self) -> bool:
        """UC20+ models carry a ``grade``."""
        return self.grade is not None

    @property
    def gadget(self) -> ModelSnap:
        return self._by_type("gadget")

    @property
    def kernel(self) -> ModelSnap:
        return self._by_type("kernel")

    @property
    def boot_base(self) -> ModelSnap:
        """The base (``core`` on UC16) the device boots."""
        for snap in self.snaps:
            if snap.type in ("base", "core"):
                return snap
        raise ModelError(f"model {self.model!r} has no base")

    def _by_type(self, snap_type: str) -> ModelSnap:
        for snap in self.snaps:
            if snap.type == snap_type:
                return snap
        raise ModelError(f"model {self.model!r} names no {snap_type} snap")

    def find(self, name: str) -> ModelSnap | None:
        for snap in self.snaps:
            if snap.name == name:
                return snap
        return None

    @classmethod
    def from_headers(cls, headers: Mapping[str, Any]) -> ModelInfo:
        def text(key: str, default: str | None = None) -> str | None:
            value = headers.get(key, default)
            if value is not None and not isinstance(value, str):
                raise ModelError(f"model header {key!r} must be a string")
            return value

        if headers.get("type", "model") != "model":
            raise ModelError(f"not a model assertion but a {headers.get('type')!r}")
        for reserved in ("core", "os", "class", "allowed-modes"):
            if reserved in headers:
                raise ModelError(f"model assertion cannot have reserved header {reserved!r}")
        brand = text("brand-id") or ""
        model = text("model") or ""
        if not brand or not model:
            raise ModelError("model assertion lacks brand-id or model")
        grade = text("grade")
        base = text("base")
        snaps: list[ModelSnap] = []
        if grade is not None:
            raw = headers.get("snaps")
            if not isinstance(raw, list) or not raw:
                raise ModelError("a model with a grade must list its snaps")
            for entry in raw:
                if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                    raise ModelError(f"bad entry in model snaps: {entry!r}")
                modes = entry.get("modes") or ["run"]
                snap_type = str(entry.get("type", "app"))
                snaps.append(
                    ModelSnap(
                        name=str(entry["name"]),
                        type=snap_type,
                        snap_id=entry.get("id"),
                        default_channel=str(entry.get("default-channel", "latest/stable")),
                        presence=str(entry.get("presence", "required")),
                        modes=tuple(str(m) for m in modes),
                    )
                )
            if base is None:
                raise ModelError("a model with a grade must have a base")
            names = [s.name for s in snaps]
            # snapd is implicit in UC20 models when not listed
            if "snapd" not in names:
                snaps.insert(0, ModelSnap(name="snapd", type="snapd"))
            if base not in names:
                snaps.append(ModelSnap(name=base, type="base"))
        else:
            gadget = text("gadget")
            kernel = text("kernel")
            if not gadget or not kernel:
                raise ModelError("a UC16/18 model needs gadget and kernel headers")
            if base:
                snaps.append(ModelSnap(name="snapd", type="snapd", default_channel="stable"))
                snaps.append(_legacy_snap(kernel, "kernel"))
                snaps.append(ModelSnap(name=base, type="base", default_channel="stable"))
            else:
                snaps.append(ModelSnap(name="core", type="core", default_channel="stable"))
                snaps.append(_legacy_snap(kernel, "kernel"))
            snaps.append(_legacy_snap(gadget, "gadget"))
            required = headers.get("required-snaps") or []
            if not isinstance(required, list):
                raise ModelError("model header 'required-snaps' must be a list")
            for name in required:
                if not any(s.name == name for s in snaps):
                    snaps.append(ModelSnap(name=str(name), type="app", default_channel="stable"))
        vsets = headers.get("validation-sets") or []
        return cls(
            brand_id=brand,
            model=model,
            series=text("series", "16") or "16",
            architecture=text("architecture") or "",
            display_name=text("display-name"),
            base=base,
            grade=grade,
            store=text("store"),
            snaps=tuple(order_snaps(snaps, base)),
            validation_sets=tuple(vsets) if isinstance(vsets, list) else (),
        )


def _legacy_snap(spec: str, snap_type: str) -> ModelSnap:
    """``pc=18`` → snap ``pc`` defaulting to track ``18``."""
    name, sep, track = spec.partition("=")
    channel = f"{track}/stable" if sep else "stable"
    return ModelSnap(name=name, type=snap_type, default_channel=channel)


def order_snaps(snaps: Sequence[ModelSnap], boot_base: str | None) -> list[ModelSnap]:
    """snapd's seeding order: snapd, (core), kernel, base, gadget, then the rest."""

    def rank(snap: ModelSnap) -> int:
        if snap.type == "core":
            return -1
        if snap.type == "base" and snap.name != boot_base:
            return len(ESSENTIAL_ORDER)
        if snap.type in ESSENTIAL_ORDER:
            return ESSENTIAL_ORDER.index(snap.type)
        return len(ESSENTIAL_ORDER)

    indexed = sorted(enumerate(snaps), key=lambda p: (rank(p[1]), p[0]))
    return [s for _, s in indexed]
