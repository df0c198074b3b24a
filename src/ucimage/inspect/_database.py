"""The trust database behind ``inspect --verify`` (:class:`ucimage.assertions.Database`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ucimage.assertions import Assertion, Database, load_assertion_files


def checker(
    trusted: Sequence[Path], assertions: Sequence[Assertion]
) -> Callable[[Assertion], None]:
    """Check each assertion against the built-in roots plus the *trusted* files.

    The seed's own assertions form the pool the chains are resolved from, as on
    a device seeding itself; a trusted root shipped inside the seed is not
    trusted for that (only ``--trusted`` files and the built-in roots are).
    """
    db = Database(extra_trusted=load_assertion_files(trusted))
    for a in assertions:
        if not db.is_trusted(a):
            db.add(a)

    def check(a: Assertion) -> None:
        if db.is_trusted(a):
            return
        db.check(a)

    return check
