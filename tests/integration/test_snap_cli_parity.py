"""A script written for `ubuntu-image snap` runs with `ucimage snap`: its --until/--thru
state names stop the build where ubuntu-image would, and --resume finishes it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.build_snaps import MODEL_UC18, TRUSTED_FILES, sign_model, snaps_uc18
from ucimage.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    base = tmp_path_factory.mktemp("parity-inputs")
    args = [str(sign_model(MODEL_UC18, base / "uc18.model"))]
    for f in TRUSTED_FILES:
        args += ["--trusted", str(f)]
    for snap in snaps_uc18(base / "snaps"):
        args += ["--snap", str(snap)]
    return args


def _snap(*argv: str) -> int:
    saved = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    try:
        return main(["snap", *argv])
    finally:
        if saved is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = saved


SEED_YAML = Path("root/system-data/var/lib/snapd/seed/seed.yaml")


def test_thru_prepare_image_writes_the_seed_and_resume_finishes(
    inputs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    assert _snap(*inputs, "-w", str(work), "-O", str(out), "--thru", "prepare_image") == 0
    assert "stops after its step write_seed" in capsys.readouterr().err
    assert (work / SEED_YAML).is_file()  # what snapd's image.Prepare made
    assert not (out / "pc.img").exists()
    assert _snap("--resume", "-w", str(work), "-O", str(out), "-q") == 0
    assert (out / "pc.img").is_file()
    assert (out / "snaps.manifest").read_text() == "core18 x1\npc-kernel x1\n"


def test_until_make_disk_stops_before_the_image(inputs: list[str], tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    assert _snap(*inputs, "-w", str(work), "-O", str(out), "-q", "-u", "make_disk") == 0
    assert (work / SEED_YAML).is_file()
    assert not (out / "pc.img").exists() and not (out / "seed.manifest").exists()
    assert _snap("--resume", "-w", str(work), "-O", str(out), "-q") == 0
    assert (out / "pc.img").is_file() and (out / "seed.manifest").is_file()


def test_until_prepare_image_does_nothing_yet(inputs: list[str], tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    assert _snap(*inputs, "-w", str(work), "-O", str(out), "-q", "--until=prepare_image") == 0
    assert not (work / "root").exists()
    assert not out.exists() or not any(out.iterdir())
