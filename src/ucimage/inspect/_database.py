"""Glue to the trust database of :mod:`ucimage.assertions` (kept apart so the
rest of the inspector does not depend on its exact API)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ucimage.assertions.codec import Assertion
from ucimage.inspect.errors import InspectError


def checker(
    trusted: Sequence[Path], assertions: Sequence[Assertion]
) -> Callable[[Assertion], None]:
    raise InspectError(
        "assertion verification is not available yet: ucimage.assertions has no Database"
    )
