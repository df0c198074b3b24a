"""Sizes and offsets as gadget.yaml writes them (snapd's ``gadget/quantity``).

A quantity is a decimal integer optionally followed by ``M`` (MiB) or ``G``
(GiB); nothing else (no ``K``, no hex, no negative numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

#: largest value snapd's uint64 quantities hold
_MAX = (1 << 63) - 1


class QuantityError(ValueError):
    """A size or offset string does not parse (message in snapd's words)."""


def _split_unit(text: str) -> tuple[int, str]:
    # like snapd's strutil.SplitUnit: digits and '-' form the number
    cut = -1
    for i, char in enumerate(text):
        if not ("0" <= char <= "9" or char == "-"):
            cut = i
            break
    if cut == 0:
        raise QuantityError("no numerical prefix")
    if cut == -1:
        cut = len(text)
    prefix, unit = text[:cut], text[cut:]
    if not re.fullmatch(r"-?[0-9]+", prefix) or len(prefix) > 19:
        raise QuantityError(f'"{prefix}" is not a number')
    number = int(prefix, 10)
    return number, unit


def _parse(text: str, what: str) -> int:
    number, unit = _split_unit(text)
    if unit == "M":
        number *= MiB
    elif unit == "G":
        number *= GiB
    elif unit != "":
        raise QuantityError(f'invalid suffix "{unit}"')
    if number < 0:
        raise QuantityError(f"{what} cannot be negative")
    if number > _MAX:
        raise QuantityError(f"{what} is too large")
    return number


def scalar_text(value: object) -> str:
    """The YAML scalar *value* as snapd's string unmarshalling would see it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = getattr(value, "text", None)  # YAML numbers keep their source text
    if isinstance(text, str):
        return text
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise QuantityError("not a scalar")


def _parse_quantity(value: object, what: str) -> int:
    try:
        text = scalar_text(value)
    except QuantityError:
        raise QuantityError(f"cannot unmarshal gadget {what}") from None
    try:
        return _parse(text, what)
    except QuantityError as exc:
        raise QuantityError(f'cannot parse {what} "{text}": {exc}') from None


def parse_size(value: object) -> int:
    """Bytes of a gadget ``size``/``min-size``; :class:`QuantityError` if invalid."""
    return _parse_quantity(value, "size")


def parse_offset(value: object) -> int:
    """Bytes of a gadget ``offset``; :class:`QuantityError` if invalid."""
    return _parse_quantity(value, "offset")


@dataclass(frozen=True)
class RelativeOffset:
    """An ``offset-write`` value: ``[<structure-name>+]<offset>``."""

    #: structure the offset is relative to (None: absolute)
    relative_to: str | None
    offset: int

    def __str__(self) -> str:
        if self.relative_to:
            return f"{self.relative_to}+{self.offset}"
        return str(self.offset)

    def to_json(self) -> dict[str, object]:
        return {"relative-to": self.relative_to, "offset": self.offset}


def parse_relative_offset(value: object) -> RelativeOffset:
    """Parse ``offset-write``; :class:`QuantityError` in snapd's words if invalid."""
    try:
        text = scalar_text(value)
    except QuantityError:
        raise QuantityError("cannot unmarshal gadget relative offset") from None
    relative_to: str | None = None
    spec = text
    if "+" in text:
        relative_to, spec = text.split("+", 1)
        if relative_to == "":
            raise QuantityError(f'cannot parse relative offset "{text}": missing volume name')
    if spec == "":
        raise QuantityError(f'cannot parse relative offset "{text}": missing offset')
    try:
        offset = _parse(spec, "offset")
    except QuantityError as exc:
        raise QuantityError(
            f'cannot parse relative offset "{text}": cannot parse offset "{spec}": {exc}'
        ) from None
    if offset > 4 * 1024 * MiB:
        raise QuantityError(f'cannot parse relative offset "{text}": offset above 4G limit')
    return RelativeOffset(relative_to, offset)


def iec(size: int) -> str:
    """Human-readable binary size, e.g. ``50 MiB`` or ``1.17 MiB``."""
    value = float(size)
    unit = "B"
    for next_unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1023.5:
            break
        value /= 1024
        unit = next_unit
    if value == int(value):
        return f"{int(value)} {unit}"
    return f"{value:.2f} {unit}"
