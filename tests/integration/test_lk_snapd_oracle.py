"""lk edge cases against the real ``snap prepare-image`` (Debian's snapd): same bytes.

tests/integration/test_build_parity.py compares the ordinary lk gadgets; these are
the gadget envs whose handling depends on snapd's error paths and dirty checks
(see tests/unit/test_lk_snapd_parity.py for where in snapd's source).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.build_snaps import (
    LK_TAIL,
    LK_UC18_GADGET_YAML,
    LK_V1_FIELDS,
    LK_V2_RECOVERY_FIELDS,
    LK_V2_RUN_FIELDS,
    MODEL_UC18,
    lk_env,
    make_snap,
    model_uc20,
    sign_model,
)
from tests.integration.test_build_parity import ours, ours_on_snapds_day
from tests.snapd_oracle import not_found_store, prepare_image
from ucimage.seed.bootenv import LK_V1, LK_V2_RECOVERY, LkEnv

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("snap") is None, reason="snapd's snap client not installed"),
]


@pytest.fixture(scope="module")
def stub_store() -> Iterator[str]:
    with not_found_store() as url:
        yield url


def uc18_snaps(workdir: Path, conf: bytes) -> list[Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    gadget_yaml = workdir / "lk-gadget.yaml"
    gadget_yaml.write_text(LK_UC18_GADGET_YAML)
    return [
        make_snap(workdir, "snapd", "snapd"),
        make_snap(workdir, "core18", "base"),
        make_snap(workdir, "pc-kernel", "kernel", extra={"boot.img": b"BOOTIMG" * 10}),
        make_snap(
            workdir, "pc", "gadget", base="core18", gadget_yaml=str(gadget_yaml),
            bootloader="none",
            extra={"lk.conf": conf, "snapbootsel.bin": conf, "boot.img": b"placeholder"},
        ),
        make_snap(workdir, "hello-world", "app", base="core18"),
    ]  # fmt: skip


def uc20_snaps(workdir: Path, conf: bytes) -> list[Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    blobs = ("sbc_1.0_8016.bin", "sbl1.mbn", "rpm.mbn", "tz.mbn", "hyp.mbn",
             "emmc_appsboot.mbn")  # fmt: skip
    extra = {f"blobs/{name}": name.encode() for name in blobs}
    extra["blobs/snapbootsel.bin"] = lk_env(LK_V2_RUN_FIELDS, b"SBse", 0x00010010, {}, ["boot_a"])
    extra.update({"lk.conf": conf, "snaprecoverysel.bin": conf})
    return [
        make_snap(workdir, "snapd", "snapd"),
        make_snap(workdir, "core20", "base"),
        make_snap(workdir, "pc-kernel", "kernel", extra={"boot.img": b"BOOTIMG" * 10}),
        make_snap(
            workdir, "pc", "gadget", base="core20",
            gadget_yaml="snapd-lk-uc20-explicit-offsets.yaml", bootloader="none", extra=extra,
        ),
        make_snap(workdir, "hello-world", "app", base="core20"),
    ]  # fmt: skip


def refit_crc(data: bytearray, size: int) -> None:
    data[size - 4 : size] = struct.pack("<I", zlib.crc32(bytes(data[: size - 4])))


def test_uc18_fields_without_nul_are_left_alone(stub_store: str, tmp_path: Path) -> None:
    """snapd only writes variables whose value changes; a field with no NUL reads as ""."""
    conf = bytearray(lk_env(LK_V1_FIELDS, b"SBse", 0x00010001, {}, ["boot_a", "boot_b"]))
    for name, fill in (("snap_mode", b"A"), ("snap_try_core", b"B"), ("snap_try_kernel", b"C")):
        at = LK_V1.offset(name)
        conf[at : at + 256] = fill * 256
    refit_crc(conf, LK_V1.size)
    snaps = uc18_snaps(tmp_path / "snaps", bytes(conf) + LK_TAIL)
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", "amd64")
    ours(model, snaps, tmp_path / "ours")
    theirs = (tmp_path / "snapd/image/boot/lk/snapbootsel.bin").read_bytes()
    mine = (tmp_path / "ours/image/boot/lk/snapbootsel.bin").read_bytes()
    assert theirs[LK_V1.offset("snap_mode") :][:256] == b"A" * 256
    assert mine == theirs


def test_uc18_installed_kernel_is_reserved(stub_store: str, tmp_path: Path) -> None:
    conf = bytearray(
        lk_env(
            LK_V1_FIELDS, b"SBse", 0x00010001, {"snap_kernel": "old_1.snap"}, ["boot_a", "boot_b"]
        )
    )
    at = LK_V1.offset("bootimg_matrix") + 256  # row 0 value
    conf[at : at + 10] = b"old_1.snap"
    refit_crc(conf, LK_V1.size)
    snaps = uc18_snaps(tmp_path / "snaps", bytes(conf))
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", "amd64")
    ours(model, snaps, tmp_path / "ours")
    theirs = (tmp_path / "snapd/image/boot/lk/snapbootsel.bin").read_bytes()
    assert (tmp_path / "ours/image/boot/lk/snapbootsel.bin").read_bytes() == theirs
    rows = LkEnv.decode(theirs).boot_partitions()
    assert rows == [("boot_a", "old_1.snap"), ("boot_b", "pc-kernel_x1.snap")]


def test_uc18_bad_crc_fails_on_both(stub_store: str, tmp_path: Path) -> None:
    conf = bytearray(lk_env(LK_V1_FIELDS, b"SBse", 0x00010001, {}, ["boot_a", "boot_b"]))
    conf[-1] ^= 1
    snaps = uc18_snaps(tmp_path / "snaps", bytes(conf))
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "SNAPPY_FORCE_API_URL": stub_store,
        "SNAPPY_FORCE_SAS_URL": stub_store,
        "UBUNTU_IMAGE_SKIP_COPY_UNVERIFIED_MODEL": "1",
    }
    args = ["snap", "prepare-image", "--arch", "amd64"]
    for snap in snaps:
        args += ["--snap", str(snap)]
    proc = subprocess.run(
        [*args, str(model), str(tmp_path / "snapd")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0 and "snapbootselbak.bin" in proc.stderr
    with pytest.raises(AssertionError):
        ours(model, snaps, tmp_path / "ours")


def test_uc20_stale_crc_is_rewritten_like_snapd(stub_store: str, tmp_path: Path) -> None:
    conf = bytearray(
        lk_env(LK_V2_RECOVERY_FIELDS, b"SRse", 0x00010010, {}, ["boot_ra", "boot_rb"]) + LK_TAIL
    )
    conf[LK_V2_RECOVERY.size - 1] ^= 1
    snaps = uc20_snaps(tmp_path / "snaps", bytes(conf))
    model = sign_model(model_uc20("dangerous"), tmp_path / "m.model")
    prepare_image(stub_store, model, snaps, tmp_path / "snapd", "amd64")
    theirs_root = tmp_path / "snapd/system-seed"
    label = ours_on_snapds_day(model, snaps, tmp_path / "ours", theirs_root)
    theirs = (theirs_root / "boot/lk/snaprecoverysel.bin").read_bytes()
    mine = (tmp_path / "ours/system-seed/boot/lk/snaprecoverysel.bin").read_bytes()
    assert mine == theirs
    env = LkEnv.decode(theirs, LK_V2_RECOVERY)  # a valid CRC again
    assert env["snapd_recovery_system"] == label
    assert env.boot_partitions()[0] == ("boot_ra", label)
