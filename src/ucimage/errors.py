"""The project's error hierarchy.

Every failure a user can cause is a :class:`UcimageError` (or a subclass) with a
one-line message and, where we can tell, a hint.  The CLI prints ``error: MESSAGE``
plus the hint, and a traceback only with ``--debug``.
"""

from __future__ import annotations


class UcimageError(Exception):
    """Base class of every error ucimage reports to a user."""

    #: stable kebab-case id, e.g. for tests and JSON output
    code: str = "ucimage-error"
    #: exit status the CLI uses for this kind of error
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(UcimageError):
    """Bad flags or arguments."""

    code = "usage"
    exit_code = 2


class ToolMissingError(UcimageError):
    """A required external program is not installed."""

    code = "tool-missing"


class CommandFailedError(UcimageError):
    """An external command exited non-zero (see :mod:`ucimage.run`)."""

    code = "command-failed"

    def __init__(
        self, message: str, *, hint: str | None = None, returncode: int = 1, stderr: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.returncode = returncode
        self.stderr = stderr
