"""Seeds written by the real snapd (Debian's ``snap prepare-image``), read by inspect.

``snap prepare-image`` runs offline against a loopback stub that answers 404 to every
store request (``shared/docs/image-building.md`` §2.4); with
``UBUNTU_IMAGE_SKIP_COPY_UNVERIFIED_MODEL=1`` it writes the seed but leaves the model
out (our test root is not one it trusts), so the test adds the model file, then lays the
tree out as ubuntu-image does (UC16/18: ``image/*`` under ``system-data/`` of writable,
``boot/grub/*`` to ``EFI/ubuntu/`` of the ESP; UC20+: ``system-seed/`` is ubuntu-seed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.build_snaps import snaps_uc18, snaps_uc20
from tests.integration.test_inspect_built import make_root, model18, model20
from tests.integration.test_inspect_images import (
    make_pc_disk,
    make_seed_disk,
    sh,
)
from tests.snapd_oracle import needs_snap, prepare_image
from ucimage.cli.main import main

pytestmark = [
    pytest.mark.integration,
    needs_snap,
]


@pytest.fixture(scope="module")
def oracle(stub_store: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("snapd-oracle")
    key, root = make_root(base)
    result: dict[str, Any] = {"root": root}

    # UC18
    m18 = model18(key, base)
    out = base / "prep18"
    prepare_image(stub_store, m18, snaps_uc18(base / "snaps18"), out)
    writable = base / "writable"
    shutil.copytree(out / "image", writable / "system-data", symlinks=True, ignore=_boot)
    (writable / "system-data" / "boot").mkdir()
    shutil.copyfile(m18, writable / "system-data/var/lib/snapd/seed/assertions/model")
    esp = base / "esp"
    shutil.copytree(out / "image/boot/grub", esp / "EFI/ubuntu")
    image = base / "uc18.img"
    make_pc_disk(image, esp, writable)
    result.update(uc18=image, uc18_model=m18, uc18_prep=out)

    # UC20 (grade dangerous: local snaps allowed)
    m20 = model20(key, base)
    out = base / "prep20"
    prepare_image(stub_store, m20, snaps_uc20(base / "snaps20"), out)
    seed = out / "system-seed"
    (label,) = [p.name for p in (seed / "systems").iterdir()]
    shutil.copyfile(m20, seed / "systems" / label / "model")
    image = base / "uc20.img"
    make_seed_disk(image, seed)
    result.update(uc20=image, uc20_model=m20, uc20_label=label, uc20_prep=out)
    return result


def _boot(directory: str, names: list[str]) -> list[str]:
    return ["boot"] if Path(directory).name == "image" else []


def inspect_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    rc = main(["inspect", "--json", *args])
    return rc, json.loads(capsys.readouterr().out)


def test_uc18_seed_written_by_snapd(
    oracle: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc = inspect_json(
        capsys, "--verify", "--trusted", str(oracle["root"]), str(oracle["uc18"])
    )
    assert rc == 0, doc["verify"]
    seed = doc["seed"]
    assert seed["layout"] == "uc16" and seed["problems"] == []
    assert seed["snap-list"] == (
        "Name         Version  Rev  Tracking  Publisher  Notes\n"
        "core18       1.0      x1   -         -          base\n"
        "hello-world  1.0      x1   -         -          -\n"
        "pc           1.0      x1   -         -          gadget\n"
        "pc-kernel    1.0      x1   -         -          kernel\n"
        "snapd        1.0      x1   -         -          snapd\n"
    )
    # snapd's own grubenv, read by us and by grub-editenv
    (env,) = doc["bootenv"]
    listed = sh("grub-editenv", oracle["uc18_prep"] / "image/boot/grub/grubenv", "list")
    assert env["vars"] == dict(line.split("=", 1) for line in listed.decode().splitlines())
    assert env["vars"]["snap_kernel"] == "pc-kernel_x1.snap"
    bootenv_checks = [c for c in doc["verify"]["checks"] if c["kind"] == "bootenv"]
    assert [c["status"] for c in bootenv_checks] == ["ok", "ok"]


def test_uc20_seed_written_by_snapd(
    oracle: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc = inspect_json(
        capsys, "--verify", "--trusted", str(oracle["root"]), str(oracle["uc20"])
    )
    assert rc == 0, doc["verify"]
    seed = doc["seed"]
    label = oracle["uc20_label"]
    assert (seed["layout"], seed["system-label"]) == ("uc20", label)
    assert seed["problems"] == []
    rows = {s["name"]: s for s in seed["snaps"]}
    assert sorted(rows) == ["core20", "hello-world", "pc", "pc-kernel", "snapd"]
    assert rows["pc-kernel"]["file"] == f"/systems/{label}/snaps/pc-kernel_1.0.snap"
    assert all(s["unasserted"] and s["revision"] == "x1" for s in rows.values())
    envs = {e["path"]: e["vars"] for e in doc["bootenv"]}
    assert envs["/EFI/ubuntu/grubenv"]["snapd_recovery_system"] == label
    assert envs[f"/systems/{label}/grubenv"]["snapd_recovery_kernel"] == rows["pc-kernel"]["file"]
    assert {c["status"] for c in doc["verify"]["checks"] if c["kind"] == "bootenv"} == {"ok"}
