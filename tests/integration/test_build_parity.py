"""Parity with Debian's `snap prepare-image`: same seed files, seed.yaml/options.yaml, boot envs.

snapd runs offline with local snaps: a loopback stub answers 404 to every store
request and UBUNTU_IMAGE_SKIP_COPY_UNVERIFIED_MODEL=1 lets our test-signed model
through (snapd then leaves the model out of the UC16/18 seed and writes an empty
UC20 ``model``, the only expected differences).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import yaml

from tests.build_snaps import (
    MODEL_UC16_PI3,
    MODEL_UC18,
    TRUSTED_FILES,
    model_uc20,
    model_uc20_pi,
    sign_model,
    snaps_uc16_pi3,
    snaps_uc18,
    snaps_uc20,
    snaps_uc20_pi,
)
from tests.snapd_oracle import needs_snap, prepare_image
from ucimage.cli.main import main
from ucimage.seed.bootenv import GrubEnv, UbootEnv

pytestmark = [
    pytest.mark.integration,
    needs_snap,
]


def ours(model: Path, snaps: list[Path], out: Path) -> None:
    args = ["snap", str(model), "--seed-only", "-O", str(out), "-q"]
    for f in TRUSTED_FILES:
        args += ["--trusted", str(f)]
    for snap in snaps:
        args += ["--snap", str(snap)]
    assert main(args) == 0


def ours_on_snapds_day(model: Path, snaps: list[Path], out: Path, theirs: Path) -> str:
    """Build ours on the day snapd labelled its UC20 system with (read from *theirs*, so a
    run across midnight still compares like with like); the label."""
    (label,) = [p.name for p in (theirs / "systems").iterdir()]
    day = dt.datetime.strptime(label, "%Y%m%d").replace(hour=12, tzinfo=dt.UTC)
    os.environ["SOURCE_DATE_EPOCH"] = str(int(day.timestamp()))
    try:
        ours(model, snaps, out)
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
    return label


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_uc18_seed_matches_prepare_image(stub_store: str, tmp_path: Path) -> None:
    snaps = snaps_uc18(tmp_path / "snaps")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", "amd64")
    ours(model, snaps, tmp_path / "ours")
    theirs, mine = tmp_path / "snapd/image", tmp_path / "ours/image"
    assert tree(mine) - tree(theirs) == {"var/lib/snapd/seed/assertions/model"}
    assert tree(theirs) - tree(mine) == set()
    seed = "var/lib/snapd/seed/seed.yaml"
    assert (mine / seed).read_bytes() == (theirs / seed).read_bytes()
    env = "boot/grub/grubenv"
    # snapd sets the variables from a Go map: same values, order may vary
    assert GrubEnv.read(mine / env).values == GrubEnv.read(theirs / env).values
    for link in ("core18_x1.snap", "pc-kernel_x1.snap"):
        path = f"var/lib/snapd/snaps/{link}"
        assert os.readlink(mine / path) == os.readlink(theirs / path)
    for snap in (theirs / "var/lib/snapd/seed/snaps").iterdir():
        assert (mine / "var/lib/snapd/seed/snaps" / snap.name).read_bytes() == snap.read_bytes()


def test_uc16_pi3_uboot_seed_matches_prepare_image(stub_store: str, tmp_path: Path) -> None:
    snaps = snaps_uc16_pi3(tmp_path / "snaps")
    model = sign_model(MODEL_UC16_PI3, tmp_path / "m.model")
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", "armhf")
    ours(model, snaps, tmp_path / "ours")
    theirs, mine = tmp_path / "snapd/image", tmp_path / "ours/image"
    assert tree(mine) ^ tree(theirs) == {"var/lib/snapd/seed/assertions/model"}
    seed = "var/lib/snapd/seed/seed.yaml"
    assert (mine / seed).read_bytes() == (theirs / seed).read_bytes()
    env = "boot/uboot/uboot.env"
    assert UbootEnv.read(mine / env).values == UbootEnv.read(theirs / env).values
    assert (mine / env).read_bytes() == (theirs / env).read_bytes()


@pytest.mark.parametrize("bootloader", ["grub", "u-boot", "piboot"])
def test_uc20_seed_matches_prepare_image(stub_store: str, tmp_path: Path, bootloader: str) -> None:
    if bootloader == "grub":
        snaps = snaps_uc20(tmp_path / "snaps")
        model = sign_model(model_uc20("dangerous"), tmp_path / "m.model")
        arch = "amd64"
    else:
        snaps = snaps_uc20_pi(tmp_path / "snaps", bootloader)
        model = sign_model(model_uc20_pi("dangerous"), tmp_path / "m.model")
        arch = "arm64"
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", arch)
    theirs, mine = tmp_path / "snapd/system-seed", tmp_path / "ours/system-seed"
    label = ours_on_snapds_day(model, snaps, tmp_path / "ours", theirs)
    assert tree(mine) == tree(theirs)
    assert tree(theirs), "snapd produced nothing"
    system = f"systems/{label}"
    assert yaml.safe_load((mine / system / "options.yaml").read_text()) == yaml.safe_load(
        (theirs / system / "options.yaml").read_text()
    )
    assert (mine / system / "options.yaml").read_bytes() == (
        theirs / system / "options.yaml"
    ).read_bytes()
    if bootloader == "grub":
        for env in ("EFI/ubuntu/grubenv", f"{system}/grubenv"):
            assert GrubEnv.read(mine / env).values == GrubEnv.read(theirs / env).values, env
    else:
        env = "uboot/ubuntu/boot.sel" if bootloader == "u-boot" else "piboot/ubuntu/piboot.conf"
        assert UbootEnv.read(mine / env).values == UbootEnv.read(theirs / env).values
        assert (mine / env).read_bytes() == (theirs / env).read_bytes()
        for same in ("config.txt", "cmdline.txt", f"{system}/kernel/kernel.img"):
            assert (mine / same).read_bytes() == (theirs / same).read_bytes(), same
        if bootloader == "piboot":
            cmdline = f"{system}/kernel/cmdline.txt"
            assert (mine / cmdline).read_bytes() == (theirs / cmdline).read_bytes()
    assert (theirs / system / "model").read_bytes() == b""  # skipped by snapd (unverified)
    assert (mine / system / "model").read_bytes() == model.read_bytes()


DEFAULTS = """\
defaults:
  system:
    service:
      rsyslog:
        disable: true
      ssh:
        disable: true
    journal:
      persistent: true
    system:
      power-key-action: ignore
"""


def test_uc18_gadget_defaults_match_prepare_image(stub_store: str, tmp_path: Path) -> None:
    from tests.build_snaps import GADGETS, make_snap

    gadget_yaml = tmp_path / "gadget.yaml"
    gadget_yaml.write_text(DEFAULTS + (GADGETS / "pc-amd64-uc18.yaml").read_text())
    snaps = [s for s in snaps_uc18(tmp_path / "snaps") if s.stem != "pc"]
    snaps.append(make_snap(tmp_path, "pc", "gadget", base="core18", gadget_yaml=str(gadget_yaml)))
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", "amd64")
    ours(model, snaps, tmp_path / "ours")
    theirs = tmp_path / "snapd/image/_writable_defaults"
    mine = tmp_path / "ours/image/_writable_defaults"
    assert tree(theirs) and tree(mine) == tree(theirs)
    for path in sorted(theirs.rglob("*")):
        other = mine / path.relative_to(theirs)
        if path.is_symlink():
            assert os.readlink(other) == os.readlink(path)
        elif path.is_file():
            assert other.read_bytes() == path.read_bytes(), path
            assert other.stat().st_mode == path.stat().st_mode, path


def test_uc18_android_boot_env_matches_prepare_image(stub_store: str, tmp_path: Path) -> None:
    from tests.build_snaps import GADGETS, make_snap

    gadget_yaml = tmp_path / "gadget.yaml"
    text = (GADGETS / "pc-amd64-uc18.yaml").read_text()
    gadget_yaml.write_text(text.replace("bootloader: grub", "bootloader: android-boot"))
    snaps = [s for s in snaps_uc18(tmp_path / "snaps") if s.stem != "pc"]
    snaps.append(
        make_snap(
            tmp_path, "pc", "gadget", base="core18", gadget_yaml=str(gadget_yaml),
            bootloader="none", extra={"androidboot.conf": b""},
        )
    )  # fmt: skip
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", "amd64")
    ours(model, snaps, tmp_path / "ours")
    env = "image/boot/androidboot/androidboot.env"

    def parse(path: Path) -> dict[str, str]:
        lines = path.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)

    # snapd writes from a Go map: same variables, any order
    assert parse(tmp_path / "ours" / env) == parse(tmp_path / "snapd" / env)


def test_uc18_lk_seed_matches_prepare_image(stub_store: str, tmp_path: Path) -> None:
    from tests.build_snaps import LK_TAIL, snaps_uc18_lk
    from ucimage.seed.bootenv import LK_V1, LkEnv

    snaps = snaps_uc18_lk(tmp_path / "snaps")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", "amd64")
    ours(model, snaps, tmp_path / "ours")
    theirs, mine = tmp_path / "snapd/image", tmp_path / "ours/image"
    assert tree(mine) ^ tree(theirs) == {"var/lib/snapd/seed/assertions/model"}
    assert {p.name for p in (theirs / "boot/lk").iterdir()} == {"snapbootsel.bin", "boot.img"}
    for name in ("snapbootsel.bin", "boot.img"):
        assert (mine / "boot/lk" / name).read_bytes() == (theirs / "boot/lk" / name).read_bytes()
    env = LkEnv.read(theirs / "boot/lk/snapbootsel.bin", LK_V1)
    assert env.tail == LK_TAIL
    assert env["snap_kernel"] == "pc-kernel_x1.snap" and env["snap_core"] == "core18_x1.snap"
    assert env.boot_partitions() == [("boot_a", "pc-kernel_x1.snap"), ("boot_b", "")]


def test_uc20_lk_seed_matches_prepare_image(stub_store: str, tmp_path: Path) -> None:
    from tests.build_snaps import snaps_uc20_lk
    from ucimage.seed.bootenv import LK_V2_RECOVERY, LkEnv

    snaps = snaps_uc20_lk(tmp_path / "snaps")
    model = sign_model(model_uc20("dangerous"), tmp_path / "m.model")
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", "amd64")
    theirs, mine = tmp_path / "snapd/system-seed", tmp_path / "ours/system-seed"
    label = ours_on_snapds_day(model, snaps, tmp_path / "ours", theirs)
    assert tree(mine) == tree(theirs)
    for name in ("snaprecoverysel.bin", "boot.img"):
        assert (mine / "boot/lk" / name).read_bytes() == (theirs / "boot/lk" / name).read_bytes()
    env = LkEnv.read(theirs / "boot/lk/snaprecoverysel.bin", LK_V2_RECOVERY)
    assert env["snapd_recovery_system"] == label and env["snapd_recovery_mode"] == "install"
    assert env.boot_partitions()[:2] == [("boot_ra", label), ("boot_rb", "")]
