"""lk edge cases against the real ``snap prepare-image`` (Debian's snapd): same bytes.

tests/integration/test_build_parity.py compares the ordinary lk gadgets; these are
the gadget envs whose handling depends on snapd's error paths and dirty checks
(see tests/unit/test_lk_snapd_parity.py for where in snapd's source).
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.build_snaps import (
    LK_TAIL,
    LK_V1_FIELDS,
    LK_V2_RECOVERY_FIELDS,
    MODEL_UC18,
    lk_env,
    model_uc20,
    sign_model,
    snaps_uc18_lk,
    snaps_uc20_lk,
)
from tests.integration.test_build_parity import ours, ours_on_snapds_day
from tests.snapd_oracle import needs_snap, prepare_image
from ucimage.seed.bootenv import LK_V1, LK_V2_RECOVERY, LkEnv

pytestmark = [
    pytest.mark.integration,
    needs_snap,
]


def refit_crc(data: bytearray, size: int) -> None:
    data[size - 4 : size] = struct.pack("<I", zlib.crc32(bytes(data[: size - 4])))


def test_uc18_fields_without_nul_are_left_alone(stub_store: str, tmp_path: Path) -> None:
    """snapd only writes variables whose value changes; a field with no NUL reads as ""."""
    conf = bytearray(lk_env(LK_V1_FIELDS, b"SBse", 0x00010001, {}, ["boot_a", "boot_b"]))
    for name, fill in (("snap_mode", b"A"), ("snap_try_core", b"B"), ("snap_try_kernel", b"C")):
        at = LK_V1.offset(name)
        conf[at : at + 256] = fill * 256
    refit_crc(conf, LK_V1.size)
    snaps = snaps_uc18_lk(tmp_path / "snaps", bytes(conf) + LK_TAIL)
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
    snaps = snaps_uc18_lk(tmp_path / "snaps", bytes(conf))
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
    snaps = snaps_uc18_lk(tmp_path / "snaps", bytes(conf))
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
    snaps = snaps_uc20_lk(tmp_path / "snaps", bytes(conf))
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
