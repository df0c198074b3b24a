"""``ucimage verify``: read assertion files into one database and check every assertion."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ucimage.assertions.codec import Assertion, decode_stream
from ucimage.assertions.database import Database, load_assertion_files
from ucimage.assertions.errors import (
    AssertionFormatError,
    AssertionRevisionError,
    AssertionVerifyError,
)


@dataclass(frozen=True)
class VerifyResult:
    """One line of the report: what was checked and why it failed (None when ok)."""

    subject: str
    error: str | None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        return f"{self.subject}: ok" if self.ok else f"{self.subject}: error: {self.error}"


def canonical_difference(a: Assertion) -> str | None:
    """None if *a* is in snapd's canonical encoding, else which line first differs."""
    wanted = a.canonical_content()
    if wanted == a.content:
        return None
    got_lines = a.content.split(b"\n")
    want_lines = wanted.split(b"\n")
    for number, (got, want) in enumerate(zip(got_lines, want_lines, strict=False), start=1):
        if got != want:
            return (
                f"not in canonical encoding: line {number} is {got.decode('utf-8', 'replace')!r}, "
                f"expected {want.decode('utf-8', 'replace')!r}"
            )
    number = min(len(got_lines), len(want_lines)) + 1
    return f"not in canonical encoding: line {number} differs (different number of lines)"


def verify_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    trusted_files: Iterable[str | os.PathLike[str]] = (),
    canonical: bool = False,
    database: Database | None = None,
) -> list[VerifyResult]:
    """Decode every file, add all assertions to one database, check each one."""
    extra = load_assertion_files(trusted_files)
    db = database if database is not None else Database(extra_trusted=extra)
    results: list[VerifyResult] = []
    found: list[Assertion] = []
    for path in paths:
        name = os.fspath(path)
        try:
            data = Path(path).read_bytes() if name != "-" else _stdin_bytes()
        except OSError as exc:
            results.append(VerifyResult(name, f"cannot read: {exc.strerror}"))
            continue
        try:
            assertions = decode_stream(data)
        except AssertionFormatError as exc:
            results.append(VerifyResult(name, exc.message, exc.hint))
            continue
        if not assertions:
            results.append(VerifyResult(name, "no assertions in file"))
            continue
        for a in assertions:
            try:
                db.add(a)
            except AssertionRevisionError:
                pass  # an older revision of one we have: checked on its own below
            except AssertionVerifyError as exc:
                results.append(VerifyResult(str(a), exc.message, exc.hint))
                continue
            found.append(a)
    for a in found:
        try:
            db.check(a)
        except AssertionVerifyError as exc:
            results.append(VerifyResult(str(a), exc.message, exc.hint))
            continue
        if canonical:
            diff = canonical_difference(a)
            if diff is not None:
                results.append(VerifyResult(str(a), diff))
                continue
        results.append(VerifyResult(str(a), None))
    return results


def _stdin_bytes() -> bytes:
    import sys

    return sys.stdin.buffer.read()
