"""Errors of the store client and server."""

from __future__ import annotations

from ucimage.errors import UcimageError


class StoreError(UcimageError):
    """Base class of store errors."""

    code = "store-error"


class SnapNotFoundError(StoreError):
    code = "snap-not-found"


class RevisionNotFoundError(StoreError):
    code = "revision-not-found"


class DigestMismatchError(StoreError):
    code = "digest-mismatch"


class StoreUnavailableError(StoreError):
    """The store did not answer (connection refused, timeouts, 5xx after retries)."""

    code = "store-unavailable"


class StoreHTTPError(StoreError):
    """The store answered with an unexpected HTTP status."""

    code = "store-http-error"

    def __init__(self, message: str, *, hint: str | None = None, status: int = 0) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class AssertionNotFoundError(StoreError):
    code = "assertion-not-found"


class ChannelError(StoreError):
    code = "invalid-channel"


class VerificationError(StoreError):
    """A downloaded snap's assertions do not check out."""

    code = "verification-failed"


class StoreSetupError(StoreError):
    """A store directory is missing, incomplete or already exists."""

    code = "store-setup"
