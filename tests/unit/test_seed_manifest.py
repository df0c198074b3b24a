"""seed.manifest / snaps.manifest format."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucimage.seed.manifest import (
    ManifestError,
    ValidationSetPin,
    parse_manifest,
    seed_manifest,
    snaps_manifest,
    write_manifest,
)


def test_seed_manifest_sorted_with_validation_sets_first() -> None:
    text = seed_manifest(
        {"pc-kernel": "x1", "core18": "2128", "pc": "145", "snapd": ""},
        [ValidationSetPin("b", "set", 3, False), ValidationSetPin("a", "z", 1, True)],
    )
    assert text == "a/z=1\nb/set 3\ncore18 2128\npc 145\npc-kernel x1\n"
    assert parse_manifest(text)["core18"] == "2128"


def test_snaps_manifest_and_empty_not_written(tmp_path: Path) -> None:
    assert snaps_manifest({"pc-kernel": "x1", "core": "x1"}) == "core x1\npc-kernel x1\n"
    assert not write_manifest(tmp_path / "seed.manifest", "")
    assert not (tmp_path / "seed.manifest").exists()
    assert write_manifest(tmp_path / "m", "a 1\n")
    assert (tmp_path / "m").read_text() == "a 1\n"
    assert not list(tmp_path.glob(".*partial"))


def test_parse_manifest_errors() -> None:
    assert parse_manifest("# comment\n\ncore 1\n") == {"core": "1"}
    with pytest.raises(ManifestError, match="line 1"):
        parse_manifest("core 1 2\n")
    with pytest.raises(ManifestError, match="twice"):
        parse_manifest("core 1\ncore 2\n")
