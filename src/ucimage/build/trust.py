"""Verifying the model assertion before anything is fetched.

The model must chain up to a trusted root through its brand's account-key:
the built-in roots, plus any ``--trusted`` files (e.g. a brand's self-signed
account and key in tests) and ``--assertion`` files that supply intermediate
assertions (account, account-key).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ucimage.errors import UcimageError


class ModelVerifyError(UcimageError):
    code = "model-verify"


def read_assertions(path: Path) -> list[Any]:
    """Assertions of a file, tolerating extra blank lines between them."""
    from ucimage.assertions import decode_stream

    data = re.sub(rb"\n{3,}(?=type: )", b"\n\n", path.read_bytes())
    return list(decode_stream(data))


def verify_model(model: Any, trusted: Sequence[Path], extra: Sequence[Path]) -> list[Any]:
    """Check *model*; return its chain (dependencies first, roots excluded)."""
    from ucimage.assertions import Database

    extra_trusted = [a for path in trusted for a in read_assertions(path)]
    db = Database(extra_trusted=extra_trusted)
    for path in extra:
        db.add_many(read_assertions(path))
    try:
        db.check(model)
        return list(db.chain(model))
    except UcimageError as exc:
        raise ModelVerifyError(exc.message) from exc
