"""`ucimage snap` takes ubuntu-image's command line: what a ported script passes works,
or fails with a clear error (ubuntu-image: internal/commands, internal/statemachine)."""

from __future__ import annotations

from ucimage.seed.manifest import snaps_manifest


def test_snaps_manifest_in_file_name_order() -> None:
    # ubuntu-image (helper.go WriteSnapManifest) reads var/lib/snapd/snaps with
    # os.ReadDir, sorted by file name: "core-kernel_x1.snap" < "core_x1.snap"
    assert snaps_manifest({"core": "x1", "core-kernel": "x1"}) == "core-kernel x1\ncore x1\n"
    assert snaps_manifest({"pc-kernel": "2", "core18": "1"}) == "core18 1\npc-kernel 2\n"
