"""``inspect --verify`` with the real trust database on seeds holding signed store assertions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_inspect_images import (
    TRUSTED,
    BuiltImage,
    build_mbr_uboot_image,
    build_uc16_image,
    build_uc20_image,
    flip_byte_of_file,
)
from ucimage.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_user_trusted_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the built-in roots and --trusted count, whatever the user configured."""
    monkeypatch.setenv("UCIMAGE_TRUSTED_DIR", str(tmp_path / "no-trusted-roots"))


TRUST_ARGS = [arg for f in TRUSTED for arg in ("--trusted", str(f))]


def build(kind: str, workdir: Path) -> BuiltImage:
    return build_uc16_image(workdir) if kind == "uc16" else build_uc20_image(workdir)


def verify(capsys: pytest.CaptureFixture[str], image: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["inspect", "--verify", *extra, *TRUST_ARGS, str(image)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def rename_model(image: Path, letter: str) -> None:
    """Change the last letter of the (one) ``model: stub-pc`` header in the image."""
    blob = bytearray(image.read_bytes())
    pos = blob.find(b"model: stub-pc\n")
    assert pos > 0 and blob.find(b"model: stub-pc\n", pos + 1) < 0
    blob[pos + len("model: stub-p")] = ord(letter)
    image.write_bytes(bytes(blob))


@pytest.mark.parametrize("kind", ["uc16", "uc20"])
def test_fresh_image_verifies(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = build(kind, tmp_path)
    rc, out, err = verify(capsys, image.path, "--json")
    assert rc == 0, err
    result = json.loads(out)["verify"]
    assert result["ok"] is True and result["failures"] == []
    by_kind: dict[str, list[str]] = {}
    for c in result["checks"]:
        by_kind.setdefault(c["kind"], []).append(c["status"])
    # model, 5 declarations, 5 revisions, brand account + key, store key, publisher account
    assert by_kind["assertion"].count("ok") >= 15
    assert set(by_kind["assertion"]) == {"ok"}
    assert sorted(by_kind["snap"]) == ["ok"] * 5 + ["skipped"]
    assert set(by_kind["model"]) == {"ok"}


@pytest.mark.parametrize("kind", ["uc16", "uc20"])
def test_one_changed_byte_names_the_snap(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = build(kind, tmp_path)
    seeddir = "/system-data/var/lib/snapd/seed" if kind == "uc16" else ""
    flip_byte_of_file(image, f"{seeddir}/snaps/core22_3.snap", offset_in_file=3000)
    rc, out, err = verify(capsys, image.path)
    assert rc == 1
    assert "Verify: FAIL" in out
    fails = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert len(fails) == 1 and fails[0].startswith("  FAIL snap core22 ("), fails
    assert "does not match snap-revision 3" in fails[0]
    assert "error: verification failed: core22 (" in err
    assert "pc-kernel" not in err


@pytest.mark.parametrize("kind", ["uc16", "uc20"])
def test_tampered_model_fails_its_signature(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = build(kind, tmp_path)
    rename_model(image.path, "x")
    rc, out, err = verify(capsys, image.path)
    assert rc == 1
    assert "verification failed: model 16/stubbrand/stub-px" in err
    assert "FAIL assertion model 16/stubbrand/stub-px" in out


def test_undecodable_model_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = build_uc16_image(tmp_path)
    rename_model(image.path, "X")  # models must be lower case
    rc, _, err = verify(capsys, image.path)
    assert rc == 1
    assert "must hold exactly one model assertion, found 0" in err
    assert "cannot decode assertions in /system-data/var/lib/snapd/seed/assertions/model" in err


def test_untrusted_root_fails_every_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = build_uc16_image(tmp_path)
    rc = main(["inspect", "--verify", "--json", str(image.path)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    failed = {
        c["subject"].split(" ")[0] for c in doc["verify"]["checks"] if c["status"] == "failed"
    }
    assert {"model", "snap-revision", "snap-declaration"} <= failed
    # the snap digests themselves are still fine
    assert all(c["status"] != "failed" for c in doc["verify"]["checks"] if c["kind"] == "snap")


def test_bootenv_naming_another_kernel_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = build_uc16_image(tmp_path, snap_kernel="pc-kernel_9.snap")
    rc, out, _ = verify(capsys, image.path)
    assert rc == 1
    fails = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert fails == [
        "  FAIL bootenv partition 2:/EFI/ubuntu/grubenv snap_kernel: "
        "is 'pc-kernel_9.snap', the seed has 'pc-kernel_2.snap'"
    ]


def test_broken_uboot_env_fails_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = build_mbr_uboot_image(tmp_path)
    blob = bytearray(image.path.read_bytes())
    pos = blob.find(b"snap_kernel=pc-kernel_2.snap")
    blob[pos + 20] ^= 0x04
    image.path.write_bytes(bytes(blob))
    rc, out, _ = verify(capsys, image.path)
    assert rc == 1
    assert "  FAIL bootenv partition 1:/uboot.env: u-boot env CRC32 mismatch" in out


def test_grown_snap_fails_the_size_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def grow(seed: Path) -> None:
        with open(seed / "snaps" / "pc_1.snap", "ab") as f:
            f.write(b"\0")

    image = build_uc16_image(tmp_path, mutate=grow)
    rc, out, err = verify(capsys, image.path)
    assert "verification failed: pc (" in err
    assert rc == 1
    fails = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert fails == [
        "  FAIL snap pc (/system-data/var/lib/snapd/seed/snaps/pc_1.snap): "
        "size 4097 does not match snap-revision 1 (snap-size 4096)"
    ]
    assert "no snap-revision assertion matches the digest" in out  # listed under Problems


def test_missing_declaration_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = build_uc16_image(
        tmp_path, mutate=lambda seed: (seed / "assertions" / "pc.snap-declaration").unlink()
    )
    rc, out, err = verify(capsys, image.path)
    assert "verification failed: " in err and "pc (" in err
    assert rc == 1
    fails = [line for line in out.splitlines() if line.startswith("  FAIL")]
    # the snap has no declaration, and its snap-revision's chain misses it too
    assert any(f.startswith("  FAIL snap pc (") and "no snap-declaration" in f for f in fails)
    assert any(f.startswith("  FAIL assertion snap-revision") for f in fails)
    assert "snap pc: no snap-declaration in the seed" in out
