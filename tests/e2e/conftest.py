"""Fixtures of the boot tests: the reference snaps, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ucimage.reference.build import ReferenceSnaps, build, plan_build
from ucimage.run import which

REQUIRED_TOOLS = ("qemu-system-x86_64", "mksquashfs", "grub-mkimage", "apt-get", "dpkg-deb")


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if which(tool) is None]


@pytest.fixture(scope="session")
def reference_snaps(tmp_path_factory: pytest.TempPathFactory) -> ReferenceSnaps:
    """The four reference snaps (Debian packages come from the XDG cache after the first run)."""
    missing = missing_tools()
    if missing:
        pytest.fail(f"boot tests need {', '.join(missing)}: run 'make deps'")
    out = tmp_path_factory.mktemp("reference-snaps")
    return build(plan_build(out))


@pytest.fixture(scope="session")
def brand_model(testdata: Path) -> bytes:
    """A real signed UC18 model assertion (the boot does not check its signature)."""
    return (testdata / "assertions" / "snap-sign" / "outputs" / "model-uc18.assert").read_bytes()
