"""The build's store client is the one snapd's tooling store would use for the model."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from ucimage.build.sources import store_client


class _Build:
    def __init__(self, store: str | None, offline: bool = False) -> None:
        self.opts = SimpleNamespace(offline=offline, store="http://127.0.0.1:9/")
        self.info = SimpleNamespace(architecture="amd64", store=store)
        self.client: Any = None

    def store_client(self, make: Callable[[], Any]) -> Any:
        if self.client is None:
            self.client = make()
        return self.client


@pytest.mark.parametrize("offline", [False, True])
def test_the_models_store_header_picks_the_store(
    monkeypatch: pytest.MonkeyPatch, offline: bool
) -> None:
    # snapd's NewToolingStoreFromModel: the model's store is the store id
    # (Snap-Device-Store), so brand-store snaps resolve
    monkeypatch.delenv("UBUNTU_STORE_ID", raising=False)
    build = _Build("brand-store", offline=offline)
    with store_client(build) as client:  # type: ignore[arg-type]
        assert client.store_id == "brand-store"
        assert client.v2_headers()["Snap-Device-Store"] == "brand-store"
    client.close()


def test_no_store_header_means_the_global_store(monkeypatch: pytest.MonkeyPatch) -> None:
    # whatever UBUNTU_STORE_ID says: snapd's tooling store for a model ignores it
    monkeypatch.setenv("UBUNTU_STORE_ID", "from-the-env")
    build = _Build(None)
    with store_client(build) as client:  # type: ignore[arg-type]
        assert client.store_id is None
        assert "Snap-Device-Store" not in client.v2_headers()
    client.close()
