"""Errors raised by :mod:`ucimage.snaps`."""

from __future__ import annotations

from ucimage.errors import UcimageError


class SnapError(UcimageError):
    """Base class of every snap-related error."""

    code = "snap-error"


class InvalidSnapYamlError(SnapError):
    """``meta/snap.yaml`` is missing, unparsable or breaks snapd's rules."""

    code = "invalid-snap-yaml"


class NotASnapError(SnapError):
    """The file is not a squashfs image (so it cannot be a snap)."""

    code = "not-a-snap"


class SnapFileNotFoundError(SnapError):
    """A path asked for is not inside the snap."""

    code = "snap-file-not-found"
