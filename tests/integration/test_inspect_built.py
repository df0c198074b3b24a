"""``ucimage inspect`` on images the real builder (``ucimage snap``) made: UC18 and UC20."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.build_snaps import SNAP_IDS, snaps_uc18, snaps_uc20
from tests.integration.test_inspect_images import sfdisk_json, sh
from ucimage.assertions import PrivateKey, sign
from ucimage.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_user_trusted_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the built-in roots and --trusted count, whatever the user configured."""
    monkeypatch.setenv("UCIMAGE_TRUSTED_DIR", str(tmp_path / "no-trusted-roots"))


WHEN = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
STAMP = "2024-01-01T00:00:00Z"


def make_root(out: Path) -> tuple[PrivateKey, Path]:
    """A throwaway trusted root ``testroot`` (account + self-signed account-key)."""
    key = PrivateKey.generate(4096)
    account = sign(
        {
            "type": "account",
            "authority-id": "testroot",
            "account-id": "testroot",
            "display-name": "Test Root",
            "username": "testroot",
            "validation": "verified",
            "timestamp": STAMP,
        },
        b"",
        key,
        when=WHEN,
    )
    account_key = sign(
        {
            "type": "account-key",
            "authority-id": "testroot",
            "account-id": "testroot",
            "name": "root",
            "since": STAMP,
            "public-key-sha3-384": key.public_key().id,
        },
        key.public_key().encode().encode(),
        key,
        when=WHEN,
    )
    root = out / "root.assert"
    root.write_bytes(account.encode() + b"\n" + account_key.encode())
    return key, root


def model18(key: PrivateKey, out: Path) -> Path:
    headers: dict[str, Any] = {
        "type": "model",
        "authority-id": "testroot",
        "series": "16",
        "brand-id": "testroot",
        "model": "test-pc-18",
        "architecture": "amd64",
        "base": "core18",
        "gadget": "pc=18",
        "kernel": "pc-kernel=18",
        "required-snaps": ["hello-world"],
        "display-name": "Test PC 18",
        "timestamp": STAMP,
    }
    path = out / "model18.assert"
    path.write_bytes(sign(headers, b"", key, when=WHEN).encode())
    return path


def model20(key: PrivateKey, out: Path) -> Path:
    snaps = [
        ("pc", "gadget", "20/stable"),
        ("pc-kernel", "kernel", "20/stable"),
        ("core20", "base", "latest/stable"),
        ("snapd", "snapd", "latest/stable"),
        ("hello-world", "app", "latest/stable"),
    ]
    headers: dict[str, Any] = {
        "type": "model",
        "authority-id": "testroot",
        "series": "16",
        "brand-id": "testroot",
        "model": "test-pc-20",
        "architecture": "amd64",
        "base": "core20",
        "grade": "dangerous",
        "snaps": [
            {"name": n, "type": t, "default-channel": c, "id": SNAP_IDS[n]} for n, t, c in snaps
        ],
        "timestamp": STAMP,
    }
    path = out / "model20.assert"
    path.write_bytes(sign(headers, b"", key, when=WHEN).encode())
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("inspect-built")
    key, root = make_root(base)
    result: dict[str, Any] = {"root": root}
    for kind, model, snaps in (
        ("uc18", model18(key, base), snaps_uc18(base / "snaps18")),
        ("uc20", model20(key, base), snaps_uc20(base / "snaps20")),
    ):
        out = base / f"out-{kind}"
        args = ["snap", str(model), "--trusted", str(root), "-O", str(out), "--offline"]
        for s in snaps:
            args += ["--snap", str(s)]
        assert main(args) == 0
        result[kind] = out / "pc.img"
        result[f"{kind}-model"] = model
        result[f"{kind}-manifest"] = out / "seed.manifest"
    return result


def inspect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["inspect", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("kind", ["uc18", "uc20"])
def test_snap_list_matches_the_seed_manifest(
    built: dict[str, Any], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = inspect(capsys, "--json", str(built[kind]))
    assert rc == 0, err
    doc = json.loads(out)
    seed = doc["seed"]
    assert seed["layout"] == ("uc16" if kind == "uc18" else "uc20")
    listed = [f"{s['name']} {s['revision']}" for s in seed["snaps"]]
    manifest = built[f"{kind}-manifest"]
    if manifest.exists():
        lines = manifest.read_text().split("\n")
        assert listed == [line for line in lines if line and not line.startswith("#")]
    else:
        # UC20 with only local snaps: nothing has a revision, so no seed.manifest (§1.9)
        assert kind == "uc20"
        assert all(s["revision"] == "x1" and s["unasserted"] for s in seed["snaps"])
    assert seed["problems"] == []
    lines = seed["snap-list"].splitlines()
    assert lines[0].split() == ["Name", "Version", "Rev", "Tracking", "Publisher", "Notes"]
    notes = {line.split()[0]: line.split()[-1] for line in lines[1:]}
    base = "core18" if kind == "uc18" else "core20"
    assert notes == {base: "base", "hello-world": "-", "pc": "gadget", "pc-kernel": "kernel",
                     "snapd": "snapd"}  # fmt: skip


@pytest.mark.parametrize("kind", ["uc18", "uc20"])
def test_model_and_verify(
    built: dict[str, Any],
    kind: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = str(built[kind])
    rc, out, err = inspect(capsys, "--verify", "--trusted", str(built["root"]), image)
    assert rc == 0, out + err
    assert "Verify: PASS" in out
    # without the test root nothing chains to a trusted key
    rc, out, err = inspect(capsys, "--verify", image)
    assert rc == 1
    assert "FAIL" in out and "verification failed: model 16/testroot/" in err


@pytest.mark.parametrize("kind", ["uc18", "uc20"])
def test_known_model_is_the_signed_model(
    built: dict[str, Any], kind: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["inspect", "--model", str(built[kind])]) == 0
    assert capsysbinary.readouterr().out == built[f"{kind}-model"].read_bytes()


def test_partitions_and_bootenv_uc18(
    built: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    image = built["uc18"]
    rc, out, _ = inspect(capsys, "--json", str(image))
    assert rc == 0
    doc = json.loads(out)
    ref: dict[str, Any] = sfdisk_json(image)
    assert [(p["start"], p["size"], p["name"]) for p in doc["partitions"]] == [
        (p["start"], p["size"], p.get("name", "")) for p in ref["partitions"]
    ]
    labels = {f["partition"]: (f["type"], f["label"]) for f in doc["filesystems"]}
    assert labels == {2: ("vfat", "system-boot"), 3: ("ext4", "writable")}
    (volume,) = doc["volumes"]
    assert (volume["name"], volume["gadget"], volume["bootloader"]) == ("pc", "pc", "grub")
    roles = {
        p["number"]: (p["structure"]["name"], p["structure"]["role"]) for p in doc["partitions"]
    }
    assert roles == {
        1: ("BIOS Boot", ""),
        2: ("EFI System", "system-boot"),
        3: ("", "system-data"),  # the implicit writable has no name in gadget.yaml
    }
    assert doc["problems"] == []
    (env,) = doc["bootenv"]
    assert env["path"] == "/EFI/ubuntu/grubenv" and env["valid"]
    assert env["vars"]["snap_core"] == "core18_x1.snap"
    assert env["vars"]["snap_kernel"] == "pc-kernel_x1.snap"
    # the same grubenv, read by GRUB's own tool
    esp = next(p for p in doc["partitions"] if p["number"] == 2)
    data = sh("mcopy", "-i", f"{image}@@{esp['offset']}", "::EFI/ubuntu/grubenv", "-")
    copy = image.parent / "grubenv.copy"
    copy.write_bytes(data)
    listed = sh("grub-editenv", copy, "list").decode().splitlines()
    assert dict(line.split("=", 1) for line in listed) == env["vars"]


def test_bootenv_uc20(built: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = inspect(capsys, "--json", str(built["uc20"]))
    assert rc == 0
    doc = json.loads(out)
    label = doc["seed"]["system-label"]
    structure = doc["partitions"][1]["structure"]
    assert (structure["name"], structure["role"]) == ("ubuntu-seed", "system-seed")
    assert doc["volumes"][0]["name"] == "pc"
    envs = {e["path"]: e["vars"] for e in doc["bootenv"]}
    assert envs["/EFI/ubuntu/grubenv"]["snapd_recovery_system"] == label
    assert envs["/EFI/ubuntu/grubenv"]["snapd_recovery_mode"] == "install"
    assert "snapd_recovery_kernel" in envs[f"/systems/{label}/grubenv"]


def test_uc16_pi3_mbr_uboot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.build_snaps import MODEL_UC16_PI3, TRUSTED_FILES, sign_model, snaps_uc16_pi3

    model = sign_model(MODEL_UC16_PI3, tmp_path / "pi3.model")
    trusted = [arg for f in TRUSTED_FILES for arg in ("--trusted", str(f))]
    args = ["snap", str(model), *trusted, "-O", str(tmp_path / "out"), "--offline", "-q"]
    for snap in snaps_uc16_pi3(tmp_path / "snaps"):
        args += ["--snap", str(snap)]
    assert main(args) == 0
    image = tmp_path / "out" / "pi3.img"
    rc, out, err = inspect(capsys, "--verify", "--json", *trusted, str(image))
    assert rc == 0, out + err
    doc = json.loads(out)
    assert doc["volumes"][0]["schema"] == "mbr"
    assert [p["type"] for p in doc["partitions"]] == [
        p["type"] for p in sfdisk_json(image)["partitions"]
    ]
    (env,) = doc["bootenv"]
    assert (env["path"], env["format"], env["valid"]) == ("/uboot.env", "uboot", True)
    assert env["vars"]["snap_kernel"] == "pi2-kernel_x1.snap"
    assert env["vars"]["snap_core"] == "core_x1.snap"
    assert [s["name"] for s in doc["seed"]["snaps"]] == ["core", "pi2-kernel", "pi3"]
    assert doc["problems"] == []  # the partitions are what gadget.yaml asks for
    assert [s["notes"] for s in doc["seed"]["snaps"]] == ["core", "kernel", "gadget"]
    bootenv = {c["subject"].rsplit(" ", 1)[1]: c["status"] for c in doc["verify"]["checks"]
               if c["kind"] == "bootenv"}  # fmt: skip
    assert bootenv == {"snap_kernel": "ok", "snap_core": "ok"}
