"""Costs of ``ucimage snap`` that figures in bench/build.py depend on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.build_snaps import MODEL_UC18, sign_model, snaps_uc18
from tests.integration.test_build_store import Served, build_from_store, push_all, served
from ucimage.store.client import StoreClient

pytestmark = pytest.mark.integration

__all__ = ["served"]  # the fixture, imported for the tests here


def test_one_store_client_per_build(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each client costs its transport set-up (the CA bundle too, at a TLS handshake):
    # verify_model, resolve_snaps and fetch_snaps share one, closed when the build ends
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    push_all(served.url, served.root, snaps_uc18(tmp_path / "snaps"), "18")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    made: list[StoreClient] = []
    closed: list[StoreClient] = []
    real_init, real_close = StoreClient.__init__, StoreClient.close

    def init(self: StoreClient, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        real_init(self, *args, **kwargs)

    def close(self: StoreClient) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(StoreClient, "__init__", init)
    monkeypatch.setattr(StoreClient, "close", close)
    assert build_from_store(served.url, served.root, model, tmp_path / "out") == 0
    assert (tmp_path / "out" / "pc.img").is_file()
    assert len(made) == 1
    assert closed == made
    # a failing build closes it too
    made.clear()
    closed.clear()
    assert (
        build_from_store(served.url, served.root, model, tmp_path / "bad", "--snap", "nosuch") != 0
    )
    assert len(made) == 1
    assert closed == made
