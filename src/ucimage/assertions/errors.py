"""Errors of the assertions package (none shadows the builtin ``AssertionError``)."""

from __future__ import annotations

from ucimage.errors import UcimageError


class AssertionFormatError(UcimageError):
    """Text that is not a well-formed assertion, or headers that break a type's rules."""

    code = "assertion-format"


class AssertionVerifyError(UcimageError):
    """A well-formed assertion that does not verify (signature, key, chain, consistency)."""

    code = "assertion-verify"


class AssertionNotFoundError(UcimageError):
    """A lookup in a :class:`~ucimage.assertions.Database` found nothing."""

    code = "assertion-not-found"


class AssertionRevisionError(AssertionVerifyError):
    """Adding an assertion whose revision is not newer than the stored one."""

    code = "assertion-revision"


class KeyringError(UcimageError):
    """Keys: missing, unreadable, wrong passphrase, bad key file, duplicate name."""

    code = "keyring"
