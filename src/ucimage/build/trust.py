"""Verifying the model assertion before anything is fetched.

The model must chain up to a trusted root through its brand's account-key:
the built-in roots, plus any ``--trusted`` files (e.g. a brand's self-signed
account and key in tests).  Its prerequisites (the brand's account-key and
account) come, like ``snap prepare-image``'s, from the store; ``--assertion``
files supply them offline (anything they hold is not asked of the store).
The chain found is what the seed's ``assertions/`` gets beside the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ucimage.errors import UcimageError


class ModelVerifyError(UcimageError):
    code = "model-verify"


def trusted_database(trusted: Sequence[Path], extra: Sequence[Path] = ()) -> Any:
    """The built-in and configured roots plus the ``--trusted`` files, holding the
    ``--assertion`` files (unchecked until used)."""
    from ucimage.assertions import Database, load_assertion_files

    db = Database(extra_trusted=load_assertion_files(trusted))
    db.add_many(load_assertion_files(extra))
    return db


def verify_model(
    model: Any, trusted: Sequence[Path], extra: Sequence[Path], client: Any = None
) -> list[Any]:
    """Check *model*; return its chain (dependencies first, roots excluded).

    With a store *client*, prerequisites missing from the ``--trusted`` and
    ``--assertion`` files are fetched from the store (snapd's fetcher order).
    """
    try:
        db = trusted_database(trusted, extra)
        if client is not None:
            # asks the store only for what the files did not supply
            client.fetch_chain(model, db)
        db.check(model)
        return [a for a in db.chain(model) if a.ref != model.ref]
    except UcimageError as exc:
        raise ModelVerifyError(exc.message, hint=exc.hint) from exc


def model_chain(build: Any, model: Any, requested: Sequence[Any]) -> list[Any]:
    """Verify the build's model; its prerequisites come from the store the build uses
    (*requested*: the build's snaps, which say whether it uses one).

    An offline build, or one whose snaps are all local files with no ``--store``,
    asks no store: the ``--trusted``/``--assertion`` files must hold the chain.
    """
    opts = build.opts
    uses_store = not opts.offline and (
        bool(opts.store) or any(p.source == "store" for p in requested)
    )
    if not uses_store:
        return verify_model(model, opts.trusted, opts.assertions)
    from ucimage.build.sources import store_client

    with store_client(build) as client:
        return verify_model(model, opts.trusted, opts.assertions, client)
