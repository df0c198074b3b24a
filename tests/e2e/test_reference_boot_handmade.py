"""Boot a hand-assembled image of the reference platform (no ucimage builder involved).

These prove the reference snaps and ``ucimage boot`` on their own: the image is
put together like docs/reference-platform.md §3.6 (tests/e2e/handmade.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.handmade import PUBLISHER, assemble
from ucimage.boot.qemu import plan_boot, run_boot
from ucimage.cli.main import main
from ucimage.reference.build import ReferenceSnaps
from ucimage.reference.console import EXPECT, parse_device_report
from ucimage.snaps import SnapFile

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_TIMEOUT = 180.0


def _check_report(
    console: str, snaps: ReferenceSnaps, image_revisions: dict[str, str], model: bytes
) -> None:
    report = parse_device_report(console)
    assert report.model_id == "testbrand/test-uc18-amd64"
    assert report.model_text.strip() == model.decode().strip()
    # no account for testbrand in this seed: the bare brand id, no mark
    assert report.snap_model["brand"] == "testbrand"
    assert report.snap_model["model"] == "Test UC18 (amd64) (test-uc18-amd64)"
    assert sorted(r.name for r in report.snaps) == ["core18", "pc", "pc-kernel", "snapd"]
    for name, path in snaps.snaps.items():
        row = report.snap(name)
        info = SnapFile(path).info
        assert row.version == info.version
        assert row.rev == image_revisions[name]
        expected_notes = {"base": "base", "gadget": "gadget", "kernel": "kernel", "snapd": "snapd"}[
            info.type
        ]
        assert row.notes == expected_notes
    assert report.snap("pc").tracking == "18/stable"
    assert report.snap("core18").tracking == "latest/stable"
    assert report.snap("core18").publisher == PUBLISHER + "✓"
    assert report.snap("snapd").publisher == "-"  # unasserted


def test_handmade_image_boots_bios_via_cli(
    reference_snaps: ReferenceSnaps,
    brand_model: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = assemble(reference_snaps.snaps, brand_model, tmp_path / "pc.img")
    before = image.path.read_bytes()
    log = tmp_path / "console.log"
    status = main(
        [
            "boot",
            str(image.path),
            "--expect",
            EXPECT,
            "--timeout",
            str(BOOT_TIMEOUT),
            "--log",
            str(log),
            "--kvm",
            "off",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "PASS" in captured.err
    # the console went to the terminal and to the log
    assert "UCIMAGE-REFERENCE-BOOTED" in captured.out
    _check_report(log.read_text(), reference_snaps, image.revisions, brand_model)
    assert image.path.read_bytes() == before, "-snapshot must leave the image unchanged"


@pytest.mark.parametrize("uefi", [False, True], ids=["bios", "uefi"])
def test_corrupted_kernel_snap_fails_fast_with_reason(
    reference_snaps: ReferenceSnaps, brand_model: bytes, tmp_path: Path, uefi: bool
) -> None:
    image = assemble(reference_snaps.snaps, brand_model, tmp_path / "pc.img", corrupt_kernel=True)
    plan = plan_boot(image.path, uefi=uefi, kvm="off", expect=EXPECT, timeout=60)
    result = run_boot(plan)
    assert not result.ok
    assert result.outcome == "failure"
    assert "unknown filesystem" in result.reason
    assert result.elapsed < 30, "the failure must be caught from the console, not the timeout"


def test_device_refuses_a_seed_snap_without_matching_signatures(
    reference_snaps: ReferenceSnaps, brand_model: bytes, tmp_path: Path
) -> None:
    """The base's seed reader looks snap-revisions up by digest, as snapd's first boot does."""
    image = assemble(reference_snaps.snaps, brand_model, tmp_path / "pc.img", tamper_gadget=True)
    result = run_boot(plan_boot(image.path, kvm="off", expect=EXPECT, timeout=BOOT_TIMEOUT))
    assert not result.ok and result.outcome == "failure"
    assert 'cannot find signatures with metadata for snap "pc"' in result.reason
