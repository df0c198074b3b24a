"""ModelInfo: seeding order and channels from model headers."""

from __future__ import annotations

import pytest

from ucimage.seed.model import ModelError, ModelInfo


def test_uc18_order_and_tracks() -> None:
    info = ModelInfo.from_headers(
        {"type": "model", "brand-id": "b", "model": "m", "base": "core18",
         "gadget": "pc=18", "kernel": "pc-kernel=18", "required-snaps": ["htop"]}
    )  # fmt: skip
    assert [s.name for s in info.snaps] == ["snapd", "pc-kernel", "core18", "pc", "htop"]
    assert info.gadget.default_channel == "18/stable"
    assert not info.uc20


def test_uc16_core_first() -> None:
    info = ModelInfo.from_headers(
        {"brand-id": "b", "model": "m", "gadget": "pi3", "kernel": "pi2-kernel"}
    )
    assert [s.name for s in info.snaps] == ["core", "pi2-kernel", "pi3"]
    assert info.boot_base.name == "core"


def test_uc20_essential_order() -> None:
    info = ModelInfo.from_headers(
        {"brand-id": "b", "model": "m", "base": "core20", "grade": "dangerous",
         "snaps": [{"name": "pc", "type": "gadget"}, {"name": "app", "type": "app"},
                   {"name": "pc-kernel", "type": "kernel"}, {"name": "core18", "type": "base"}]}
    )  # fmt: skip
    assert [s.name for s in info.snaps] == ["snapd", "pc-kernel", "core20", "pc", "app", "core18"]


def test_bad_models() -> None:
    with pytest.raises(ModelError):
        ModelInfo.from_headers({"brand-id": "b", "model": "m", "gadget": "pc"})
    with pytest.raises(ModelError, match="reserved"):
        ModelInfo.from_headers({"brand-id": "b", "model": "m", "os": "x"})
    with pytest.raises(ModelError):
        ModelInfo.from_headers({"brand-id": "b", "model": "m", "grade": "signed", "snaps": []})
