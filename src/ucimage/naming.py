"""snapd's snap naming rule, shared by the assertion checks and the snap.yaml checks."""

from __future__ import annotations

import re

#: lowercase letters, digits and single inner hyphens, with at least one letter
#: (snapd ``snap/naming``; assertion key names follow the same pattern)
SNAP_NAME_RE = re.compile(r"^(?:[a-z0-9]+-?)*[a-z](?:-?[a-z0-9])*$")


def valid_snap_name(name: str) -> bool:
    """Whether *name* is a valid snap name: 2 to 40 characters of :data:`SNAP_NAME_RE`."""
    return 2 <= len(name) <= 40 and SNAP_NAME_RE.match(name) is not None
