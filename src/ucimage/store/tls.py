"""TLS for the store client: httpx's default trust, loaded at the first handshake."""

from __future__ import annotations

import os
import ssl
import sys
import threading
from typing import Any


class LazyTrustContext(ssl.SSLContext):
    """httpx's default TLS context, whose CA bundle is loaded at the first handshake.

    Same trust as ``httpx.Client()``'s own (``SSL_CERT_FILE``, ``SSL_CERT_DIR``,
    else certifi's bundle) and the same settings as :func:`ssl.create_default_context`,
    but loading the bundle costs ~30 ms per process, which a build from an
    ``http://`` store (or the cache) never needs: only a TLS handshake pays for it.
    """

    _trust_lock = threading.Lock()
    _trust_loaded = False

    def __new__(cls) -> LazyTrustContext:
        ctx = super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = True
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog and not sys.flags.ignore_environment:
            ctx.keylog_filename = keylog
        return ctx

    def _load_trust(self) -> None:
        with self._trust_lock:
            if self._trust_loaded:
                return
            if os.environ.get("SSL_CERT_FILE"):
                self.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
            elif os.environ.get("SSL_CERT_DIR"):
                self.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
            else:
                import certifi  # httpx's own dependency

                self.load_verify_locations(cafile=certifi.where())
            self._trust_loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load_trust()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load_trust()
        return super().wrap_bio(*args, **kwargs)
