"""The store client's TLS context: httpx's trust, loaded only when a handshake needs it."""

from __future__ import annotations

import ssl

import pytest

from ucimage.store.client import StoreClient
from ucimage.store.tls import LazyTrustContext


@pytest.fixture(autouse=True)
def _default_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def test_ca_bundle_loaded_at_first_handshake_only() -> None:
    ctx = LazyTrustContext()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] == 0  # nothing loaded yet
    ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
    loaded = ctx.cert_store_stats()["x509_ca"]
    assert loaded > 0  # certifi's bundle, as httpx's own default
    ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
    assert ctx.cert_store_stats()["x509_ca"] == loaded  # loaded once


def test_ssl_cert_file_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import certifi

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    ctx = LazyTrustContext()
    ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
    assert ctx.cert_store_stats()["x509_ca"] > 0
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    with pytest.raises(OSError):
        LazyTrustContext().wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="x.org")


def test_store_client_uses_the_lazy_context() -> None:
    with StoreClient("http://127.0.0.1:9", use_cache=False) as client:
        pool = client._http._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool._ssl_context, LazyTrustContext)
