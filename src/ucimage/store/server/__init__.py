"""The self-hosted store: ``ucimage store init|serve`` (see :mod:`.app` for the HTTP API).

* :func:`init_store(dir, authority_id=None, store_id=None, key_bits=4096)` creates a store.
* :class:`Store(dir)` opens one (push, release, resolve, assertions; used by the app).
* :func:`create_app(store, require_auth=False)` is the Starlette ASGI app.
* :func:`serve(dir, host, port, require_auth=False, ready=None)` runs it under uvicorn.
"""

from __future__ import annotations

from ucimage.store.server.app import create_app, serve
from ucimage.store.server.backend import APIError, PushResult, Store, init_store

__all__ = ["APIError", "PushResult", "Store", "create_app", "init_store", "serve"]
