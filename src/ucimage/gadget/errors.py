"""The gadget package's error type."""

from __future__ import annotations

from ucimage.errors import UcimageError


class GadgetError(UcimageError):
    """A gadget.yaml (or the gadget around it) breaks one of snapd's rules.

    ``message`` is the first problem found, worded like snapd and naming the
    volume and structure; ``problems`` holds every problem found (validation
    keeps going where one problem cannot cause another).
    """

    code = "gadget-invalid"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        problems = problems or (message,)
        if len(problems) > 1 and message == problems[0]:
            message = f"{message} (and {len(problems) - 1} more problem(s))"
        super().__init__(message, hint=hint)
        self.problems = problems
