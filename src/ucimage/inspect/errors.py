"""Errors raised while inspecting an image."""

from __future__ import annotations

from ucimage.errors import UcimageError


class InspectError(UcimageError):
    """The image cannot be inspected (unreadable, not a disk image, …)."""

    code = "inspect"


class PartitionTableError(InspectError):
    """The partition table is damaged beyond what we can read."""

    code = "partition-table"


class FilesystemReadError(InspectError):
    """A file could not be read from a filesystem inside the image."""

    code = "filesystem-read"


class SeedError(InspectError):
    """The seed in the image is missing or inconsistent."""

    code = "seed"
