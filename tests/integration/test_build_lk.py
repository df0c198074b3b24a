"""lk (little kernel) images: the envs and the kernel's boot image where the device reads them."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from tests.build_snaps import (
    LK_TAIL,
    LK_V2_RECOVERY_FIELDS,
    MODEL_UC18,
    lk_env,
    model_uc20,
    sign_model,
    snaps_uc18_lk,
    snaps_uc20_lk,
)
from tests.integration.test_build_images import (
    TRUST,
    build,
    debugfs_cat,
    debugfs_ls,
    extract,
    fsck_ok,
    sfdisk,
)
from ucimage.cli.main import main

pytestmark = pytest.mark.integration


def cstring(data: bytes, slot: int) -> bytes:
    """Independent reader: the NUL-terminated 256-byte field *slot* after the two header words."""
    return data[8 + 256 * slot : 8 + 256 * (slot + 1)].split(b"\0", 1)[0]


def test_uc18_lk_image(tmp_path: Path) -> None:
    snaps = snaps_uc18_lk(tmp_path / "snaps")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    out = tmp_path / "out"
    assert build(model, snaps, out) == 0
    image = out / "board.img"
    parts = sfdisk(image)["partitions"]
    assert [p["name"] for p in parts] == [
        "snapbootsel", "boot_a", "boot_b", "system-boot", "writable",
    ]  # fmt: skip
    sel = extract(image, parts[0]["start"], parts[0]["size"], tmp_path / "sel").read_bytes()
    size = 14860  # snapd's SnapBootSelect_v1
    assert sel[:8] == b"SBse\x01\x00\x01\x00"
    assert struct.unpack("<I", sel[size - 4 : size])[0] == zlib.crc32(sel[: size - 4])
    assert cstring(sel, 1) == b"core18_x1.snap" and cstring(sel, 3) == b"pc-kernel_x1.snap"
    assert [cstring(sel, i) for i in (9, 10, 11, 12)] == [
        b"boot_a", b"pc-kernel_x1.snap", b"boot_b", b"",
    ]  # fmt: skip
    assert sel[size : size + len(LK_TAIL)] == LK_TAIL
    boot_a = extract(image, parts[1]["start"], parts[1]["size"], tmp_path / "a").read_bytes()
    assert boot_a.startswith(b"BOOTIMG" * 10 + b"\0")  # the kernel's, not the gadget's
    boot_b = extract(image, parts[2]["start"], parts[2]["size"], tmp_path / "b").read_bytes()
    assert boot_b == bytes(len(boot_b))
    writable = extract(image, parts[4]["start"], parts[4]["size"], tmp_path / "w")
    fsck_ok(["e2fsck", "-fn", str(writable)])


def test_uc18_lk_image_inspect_reads_the_raw_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snaps = snaps_uc18_lk(tmp_path / "snaps")
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    out = tmp_path / "out"
    assert build(model, snaps, out) == 0
    image = out / "board.img"
    assert main(["inspect", str(image), "--verify", *TRUST, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (env,) = report["bootenv"]  # the env lives only in the bare snapbootsel partition
    assert env["raw"] and env["path"] is None and env["partition-name"] == "snapbootsel"
    assert env["valid"] and env["details"]["struct"] == "v1"
    assert env["vars"]["snap_kernel"] == "pc-kernel_x1.snap"
    assert env["vars"]["snap_core"] == "core18_x1.snap"
    assert env["details"]["boot partitions"] == "boot_a=pc-kernel_x1.snap boot_b="
    checks = {c["subject"]: c["status"] for c in report["verify"]["checks"]}
    assert checks["partition 1 (raw snapbootsel) snap_kernel"] == "ok"
    assert checks["partition 1 (raw snapbootsel) snap_core"] == "ok"
    assert main(["inspect", str(image)]) == 0
    text = capsys.readouterr().out
    assert "  partition 1 (raw snapbootsel) (lk)\n" in text
    assert "    snap_kernel=pc-kernel_x1.snap\n" in text
    assert "(lk v1 struct; boot image partitions: boot_a=pc-kernel_x1.snap boot_b=)" in text

    # one flipped bit in the env: reported, verify fails, nothing crashes
    start = sfdisk(image)["partitions"][0]["start"] * 512
    with open(image, "r+b") as f:
        f.seek(start + 8 + 3 * 256)  # snap_kernel
        f.write(b"q")
    assert main(["inspect", str(image), "--json"]) == 0
    (env,) = json.loads(capsys.readouterr().out)["bootenv"]
    assert not env["valid"] and "CRC32 mismatch" in env["problems"][0]
    assert env["vars"]["snap_kernel"] == "qc-kernel_x1.snap"
    assert main(["inspect", str(image), "--verify", *TRUST]) == 1
    captured = capsys.readouterr()
    assert "[INVALID: lk env CRC32 mismatch" in captured.out
    assert "partition 1 (raw snapbootsel)" in captured.err


def test_uc20_lk_image_seed_and_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snaps = snaps_uc20_lk(tmp_path / "snaps")
    model = sign_model(model_uc20("dangerous"), tmp_path / "m.model")
    out = tmp_path / "out"
    assert build(model, snaps, out) == 0
    image = out / "dragonboard.img"
    parts = sfdisk(image)["partitions"]
    seed_part = next(p for p in parts if p["name"] == "ubuntu-seed")
    seed = extract(image, seed_part["start"], seed_part["size"], tmp_path / "seed")
    fsck_ok(["e2fsck", "-fn", str(seed)])
    assert sorted(debugfs_ls(seed, "/boot/lk")) == [".", "..", "boot.img", "snaprecoverysel.bin"]
    assert debugfs_cat(seed, "/boot/lk/boot.img") == b"BOOTIMG" * 10
    sel = debugfs_cat(seed, "/boot/lk/snaprecoverysel.bin")
    size = 16140  # snapd's SnapBootSelect_v2_recovery
    assert sel[:8] == b"SRse\x10\x00\x01\x00"
    assert struct.unpack("<I", sel[size - 4 : size])[0] == zlib.crc32(sel[: size - 4])
    label = b"20231114"  # the build's SOURCE_DATE_EPOCH
    assert [cstring(sel, i) for i in range(5)] == [b"install", label, b"boot_ra", label, b"boot_rb"]
    assert sel[size:] == LK_TAIL
    # inspect reads the recovery env back and checks it names the seed's system
    assert main(["inspect", str(image), "--verify", *TRUST, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    env, *raw = report["bootenv"]
    assert env["path"] == "/boot/lk/snaprecoverysel.bin" and env["format"] == "lk"
    assert env["valid"] and env["vars"]["snapd_recovery_system"] == label.decode()
    assert not env["raw"] and env["partition-name"] == "ubuntu-seed"
    # and the gadget's envs in the bare select partitions, where lk reads them
    assert [(e["partition-name"], e["details"]["struct"], e["valid"]) for e in raw] == [
        ("snaprecoverysel", "v2-recovery", True),
        ("snaprecoveryselbak", "v2-recovery", True),
        ("snapbootsel", "v2-run", True),
        ("snapbootselbak", "v2-run", True),
    ]
    assert all(e["raw"] and e["path"] is None for e in raw)
    assert raw[2]["details"]["boot partitions"] == "boot_a= boot_b="
    checks = {c["subject"]: c["status"] for c in report["verify"]["checks"]}
    assert checks["partition 10 (raw snapbootsel)"] == "ok"


def test_uc20_lk_image_flashes_the_seed_envs_and_recovery_boot_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """UC20+: the raw partitions get what snapd prepared on the seed's boot/lk/.

    The select partitions name ``image: snaprecoverysel.bin``: they hold the seed's
    recovery env (naming its system, boot_ra assigned to it), not the gadget's blank
    one; boot_ra, which the env assigns to the system, holds the recovery boot image.
    """
    snaps = snaps_uc20_lk(tmp_path / "snaps")
    model = sign_model(model_uc20("dangerous"), tmp_path / "m.model")
    out = tmp_path / "out"
    assert build(model, snaps, out) == 0
    image = out / "dragonboard.img"
    parts = {p["name"]: p for p in sfdisk(image)["partitions"]}

    def raw(name: str) -> bytes:
        p = parts[name]
        return extract(image, p["start"], p["size"], tmp_path / name).read_bytes()

    seed_part = parts["ubuntu-seed"]
    seed = extract(image, seed_part["start"], seed_part["size"], tmp_path / "seed")
    prepared = debugfs_cat(seed, "/boot/lk/snaprecoverysel.bin")
    label = b"20231114"  # the build's SOURCE_DATE_EPOCH
    size = 16140  # snapd's SnapBootSelect_v2_recovery
    for name in ("snaprecoverysel", "snaprecoveryselbak"):
        sel = raw(name)
        assert sel[:8] == b"SRse\x10\x00\x01\x00"
        assert struct.unpack("<I", sel[size - 4 : size])[0] == zlib.crc32(sel[: size - 4])
        # snapd_recovery_mode, snapd_recovery_system, then matrix row 0 (label, system)
        assert [cstring(sel, i) for i in range(5)] == [
            b"install", label, b"boot_ra", label, b"boot_rb",
        ]  # fmt: skip
        assert sel == prepared.ljust(len(sel), b"\0")
    # the recovery boot image partition the env assigns to the system: the kernel's
    boot_ra = raw("boot_ra")
    assert boot_ra == (b"BOOTIMG" * 10).ljust(len(boot_ra), b"\0")
    assert debugfs_cat(seed, "/boot/lk/boot.img") == b"BOOTIMG" * 10
    # the rest is left as the gadget says: run envs are the gadget's, filled at install
    for name in ("boot_rb", "boot_a", "boot_b"):
        assert raw(name) == bytes(parts[name]["size"] * 512), name
    assert cstring(raw("snapbootsel"), 0) == b"" and raw("snapbootsel")[:4] == b"SBse"

    assert main(["inspect", str(image), "--verify", *TRUST, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    envs = {e["partition-name"]: e for e in report["bootenv"] if e["raw"]}
    for name in ("snaprecoverysel", "snaprecoveryselbak"):
        assert envs[name]["valid"] and envs[name]["vars"]["snapd_recovery_system"] == "20231114"
        assert envs[name]["details"]["boot partitions"] == "boot_ra=20231114 boot_rb="
    checks = {c["subject"]: (c["status"], c["message"]) for c in report["verify"]["checks"]}
    for n, name in ((8, "snaprecoverysel"), (9, "snaprecoveryselbak")):
        where = f"partition {n} (raw {name})"
        assert checks[f"{where} snapd_recovery_system"] == ("ok", "20231114")
        assert checks[f"{where} recovery boot image partition"] == ("ok", "boot_ra")

    # the gadget's own blank env in the backup partition (as built before): verify fails
    gadget_env = lk_env(LK_V2_RECOVERY_FIELDS, b"SRse", 0x00010010, {}, ["boot_ra", "boot_rb"])
    with open(image, "r+b") as f:
        f.seek(parts["snaprecoveryselbak"]["start"] * 512)
        f.write(gadget_env)
    assert main(["inspect", str(image), "--verify", *TRUST, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    failed = {
        c["subject"]: c["message"] for c in report["verify"]["checks"] if c["status"] == "failed"
    }
    where = "partition 9 (raw snaprecoveryselbak)"
    assert sorted(failed) == [
        f"{where} recovery boot image partition",
        f"{where} snapd_recovery_system",
    ]
    assert failed[f"{where} snapd_recovery_system"].startswith("is '', the seed has '20231114'")
    assert failed[f"{where} recovery boot image partition"].startswith(
        "no boot image partition is assigned to '20231114'"
    )
