"""The acceptance path: a signed model, snaps from our store, ``ucimage snap``, then
``ucimage inspect --verify``: all valid on a fresh image; one changed byte in a seeded
snap is named and fails the run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.build_snaps import (
    MODEL_UC18,
    TRUSTED_FILES,
    model_uc20,
    model_uc20_pi,
    sign_model,
    snaps_uc18,
    snaps_uc20,
    snaps_uc20_pi,
)
from tests.integration.store_util import RunningStore, make_store, running_store
from tests.integration.test_inspect_images import BuiltImage, flip_byte_of_file, sparse_copy
from ucimage.cli.main import main
from ucimage.store.admin import StoreAdmin

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStore]:
    root = make_store(tmp_path_factory.mktemp("inspect-store") / "store")
    with running_store(root) as running:
        yield running


def push(store: RunningStore, snap: Path, channel: str) -> None:
    StoreAdmin(store.url, store.token).push(snap, [channel])


def trust_args(store: RunningStore) -> list[str]:
    files = [store.root / "root.assert", *TRUSTED_FILES]
    return [arg for f in files for arg in ("--trusted", str(f))]


@pytest.fixture(scope="module")
def images(
    store: RunningStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("inspect-store-images")
    old_cache = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(base / "cache")
    try:
        out: dict[str, Any] = {}
        # one image at a time: both sets release a hello-world (different bases) to stable
        for kind, headers, snaps, track in (
            ("uc18", MODEL_UC18, snaps_uc18, "18"),
            ("uc20", model_uc20("signed"), snaps_uc20, "20"),
            ("uc20-pi", model_uc20_pi("signed"), snaps_uc20_pi, "20"),
        ):
            for snap in snaps(base / f"snaps-{kind}"):
                tracked = ("pc", "pc-kernel", "pi", "pi-kernel")
                channel = f"{track}/stable" if snap.stem in tracked else "stable"
                push(store, snap, channel)
            model = sign_model(headers, base / f"{kind}.model")
            dest = base / kind
            args = ["snap", str(model), "--store", store.url, *trust_args(store), "-O", str(dest)]
            assert main([*args, "-q"]) == 0
            (out[kind],) = dest.glob("*.img")
            out[f"{kind}-model"] = model
            out[f"{kind}-manifest"] = dest / "seed.manifest"
        yield out
    finally:
        if old_cache is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = old_cache


def inspect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["inspect", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("kind", ["uc18", "uc20"])
def test_fresh_image_from_the_store_verifies(
    store: RunningStore,
    images: dict[str, Any],
    kind: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, out, err = inspect(capsys, "--verify", "--json", *trust_args(store), str(images[kind]))
    assert rc == 0, out + err
    doc = json.loads(out)
    verify = doc["verify"]
    assert verify["ok"] is True and verify["failures"] == []
    statuses = {(c["kind"], c["status"]) for c in verify["checks"]}
    assert statuses == {("assertion", "ok"), ("snap", "ok"), ("model", "ok"), ("bootenv", "ok")}
    assert sum(c["kind"] == "snap" for c in verify["checks"]) == 5
    seed = doc["seed"]
    assert seed["problems"] == [] and doc["problems"] == []
    # `snap list` agrees with seed.manifest; the store's root account publishes, verified
    manifest = images[f"{kind}-manifest"].read_text().split()
    assert [f"{s['name']} {s['revision']}" for s in seed["snaps"]] == [
        f"{manifest[i]} {manifest[i + 1]}" for i in range(0, len(manifest), 2)
    ]
    publisher = {s["publisher"] for s in seed["snaps"]}
    assert publisher == {"test-store✓"}
    tracking = {s["name"]: s["tracking"] for s in seed["snaps"]}
    track = "18" if kind == "uc18" else "20"
    assert tracking["pc"] == tracking["pc-kernel"] == f"{track}/stable"
    assert tracking["hello-world"] == "latest/stable"


@pytest.mark.parametrize("kind", ["uc18", "uc20"])
def test_known_model_is_byte_exact(
    images: dict[str, Any], kind: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["inspect", "--model", str(images[kind])]) == 0
    assert capsysbinary.readouterr().out == images[f"{kind}-model"].read_bytes()


@pytest.mark.parametrize("kind", ["uc18", "uc20"])
def test_one_changed_byte_in_a_seeded_snap_is_named(
    store: RunningStore,
    images: dict[str, Any],
    kind: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc, out, _ = inspect(capsys, "--json", str(images[kind]))
    doc = json.loads(out)
    copy = sparse_copy(images[kind], tmp_path / "pc.img")
    part = next(p for p in doc["partitions"] if p["number"] == doc["seed"]["partition"])
    layout = "uc16" if kind == "uc18" else "uc20"
    image = BuiltImage(copy, layout, part["number"], part["offset"])
    kernel = next(s for s in doc["seed"]["snaps"] if s["name"] == "pc-kernel")
    flip_byte_of_file(image, kernel["file"], offset_in_file=100)
    rc, out, err = inspect(capsys, "--verify", *trust_args(store), str(copy))
    assert rc == 1
    fails = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert len(fails) == 1, out
    assert fails[0].startswith(f"  FAIL snap pc-kernel ({kernel['file']})")
    assert f"error: verification failed: pc-kernel ({kernel['file']})" in err


@pytest.mark.parametrize(("mode", "mark"), [("always", "✓"), ("never", "**"), ("auto", "**")])
def test_publisher_marks_follow_snaps_unicode_rule(
    store: RunningStore,
    images: dict[str, Any],
    mode: str,
    mark: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = str(store.root / "root.assert")
    rc, out, _ = inspect(
        capsys, "--snap-list", "--unicode", mode, "--trusted", root, str(images["uc18"])
    )
    assert rc == 0
    publishers = {line.split()[4] for line in out.splitlines()[1:]}
    assert publishers == {f"test-store{mark}"}  # auto: not a terminal, so ASCII like snap


def test_uc20_pi_uboot_image(
    store: RunningStore, images: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = inspect(capsys, "--verify", "--json", *trust_args(store), str(images["uc20-pi"]))
    assert rc == 0, out + err
    doc = json.loads(out)
    assert doc["volumes"][0]["schema"] == "mbr" and doc["volumes"][0]["name"] == "pi"
    seed = doc["seed"]
    envs = {e["path"]: e for e in doc["bootenv"]}
    sel = envs["/uboot/ubuntu/boot.sel"]
    assert sel["format"] == "uboot" and sel["valid"] is True
    assert sel["vars"] == {
        "snapd_recovery_mode": "install",
        "snapd_recovery_system": seed["system-label"],
    }
    assert [s["name"] for s in seed["snaps"]] == ["core20", "pi", "pi-kernel", "snapd"]
    assert doc["problems"] == []
    checks = [(c["kind"], c["status"]) for c in doc["verify"]["checks"] if c["kind"] == "bootenv"]
    assert checks == [("bootenv", "ok")]
