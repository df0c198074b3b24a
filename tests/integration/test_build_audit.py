"""Acceptance audit of issue 5 (`ucimage snap MODEL`): points no other test pinned down.

* --disk-info on a UC20+ image lands at the root of ubuntu-seed (image-building.md);
* the image does not depend on the builder process: hash seed, umask;
* an interrupted multi-volume build leaves no image under its final name;
* bad local snaps and a bad SOURCE_DATE_EPOCH give a clear error, not a model error
  or a traceback;
* bad inputs fail before the store is asked anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.build_snaps import (
    MODEL_UC18,
    TRUSTED_FILES,
    make_snap,
    model_uc20,
    model_uc20_pi,
    sign_model,
    snaps_uc18,
    snaps_uc20,
    snaps_uc20_pi,
)
from tests.integration.test_build_images import (
    extract,
    fsck_ok,
    mtools,
    parse_ubootenv,
    sfdisk,
)
from tests.integration.test_build_store import (  # noqa: F401 (fixtures used here)
    Served,
    _private_cache,
    build_from_store,
    push_all,
    served,
)
from ucimage.cli.main import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EPOCH = "1700000000"
TRUST = [a for f in TRUSTED_FILES for a in ("--trusted", str(f))]


@dataclass(frozen=True)
class Inputs:
    uc18: list[Path]
    m18: Path
    uc20: list[Path]
    m20: Path
    m20signed: Path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    base = tmp_path_factory.mktemp("audit-inputs")
    return Inputs(
        uc18=snaps_uc18(base / "uc18"),
        m18=sign_model(MODEL_UC18, base / "uc18.model"),
        uc20=snaps_uc20(base / "uc20"),
        m20=sign_model(model_uc20("dangerous"), base / "uc20.model"),
        m20signed=sign_model(model_uc20("signed"), base / "uc20s.model"),
    )


@pytest.fixture()
def epoch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    yield


def snap_args(snaps: list[Path]) -> list[str]:
    return [a for s in snaps for a in ("--snap", str(s))]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ucimage.cli.main", *args],
        capture_output=True, text=True, cwd=REPO, env=full, timeout=120,
    )  # fmt: skip


def test_uc20_disk_info_on_ubuntu_seed(inputs: Inputs, tmp_path: Path, epoch: None) -> None:
    info = tmp_path / "info"
    info.write_bytes(b"Ubuntu Core 20 audit\n")
    out = tmp_path / "out"
    args = ["snap", str(inputs.m20), *TRUST, *snap_args(inputs.uc20), "-O", str(out), "-q"]
    assert main([*args, "--disk-info", str(info)]) == 0
    image = out / "pc.img"
    seed = sfdisk(image)["partitions"][-1]
    # read in place (mtools' @@offset): the seed partition is 1.2 GB, mostly holes
    at = Path(f"{image}@@{seed['start'] * 512}")
    assert mtools("mtype", at, "::.disk/info") == b"Ubuntu Core 20 audit\n"


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_reproducible_across_processes(inputs: Inputs, tmp_path: Path) -> None:
    """Two separate programs (other hash seeds, other cwd) write the same bytes."""
    digests = []
    for run, hash_seed in (("a", "1"), ("b", "2")):
        out = tmp_path / run
        proc = cli(
            "snap", str(inputs.m18), *TRUST, *snap_args(inputs.uc18), "-O", str(out), "-q",
            env={"SOURCE_DATE_EPOCH": EPOCH, "PYTHONHASHSEED": hash_seed},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        digests.append(_digests(out))
    assert digests[0] == digests[1]


def test_reproducible_whatever_the_umask(inputs: Inputs, tmp_path: Path, epoch: None) -> None:
    digests = []
    for run, umask in (("a", 0o022), ("b", 0o002)):
        out = tmp_path / run
        old = os.umask(umask)
        try:
            args = ["snap", str(inputs.m18), *TRUST, *snap_args(inputs.uc18), "-O", str(out)]
            assert main([*args, "-q"]) == 0
        finally:
            os.umask(old)
        digests.append(_digests(out))
    assert digests[0] == digests[1]


def test_interrupted_multi_volume_build_leaves_no_final_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ucimage.image

    gadget = make_snap(
        tmp_path, "pi", "gadget", base="core20",
        gadget_yaml="snapd-multivolume-uc20-bare-volume.yaml", bootloader="none",
        extra={"uboot.conf": b"", "u-boot.imz": b"UBOOT" * 1000},
    )  # fmt: skip
    snaps = [s for s in snaps_uc20_pi(tmp_path / "snaps") if s.stem != "pi"] + [gadget]
    model = sign_model(model_uc20_pi("dangerous"), tmp_path / "m.model")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)  # after mksquashfs, which refuses it
    real = ucimage.image.write_disk
    calls: list[Path] = []

    def write_then_interrupt(spec: object, **kwargs: object) -> object:
        calls.append(Path(str(getattr(spec, "path", ""))))
        if len(calls) == 2:  # Ctrl-C while the second volume is written
            raise KeyboardInterrupt
        return real(spec, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ucimage.image, "write_disk", write_then_interrupt)
    out = tmp_path / "out"
    args = ["snap", str(model), *TRUST, *snap_args(snaps), "-O", str(out), "-q"]
    assert main(args) == 130
    assert len(calls) == 2
    assert sorted(p.name for p in out.iterdir()) == []


@pytest.mark.parametrize("bad", ["duplicate", "not-squashfs"])
def test_local_snap_errors_do_not_blame_the_model(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    extra = tmp_path / "extra.snap"
    if bad == "duplicate":
        extra.write_bytes(inputs.uc18[-1].read_bytes())  # the same snap, another file
    else:
        extra.write_bytes(b"not a squashfs image" * 100)
    out = tmp_path / "out"
    args = ["snap", str(inputs.m18), *TRUST, *snap_args([*inputs.uc18, extra]), "-O", str(out)]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc != 0 and "error:" in err
    assert "cannot verify the model assertion" not in err, err
    assert "account-key" not in err, err  # the hint must not send the user to the brand
    assert not list(out.glob("*.img"))


def test_out_of_range_source_date_epoch_is_a_clear_error(inputs: Inputs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli(
        "snap", str(inputs.m20), *TRUST, *snap_args(inputs.uc20), "-O", str(out),
        env={"SOURCE_DATE_EPOCH": "99999999999999"},
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (1, 2)
    assert "error:" in proc.stderr and "SOURCE_DATE_EPOCH" in proc.stderr
    assert not list(out.glob("*.img"))


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        ("m18", ["--factory-image"], "boot flags (factory)"),
        ("m20", ["--cloud-init", "USER_DATA"], "cloud-init user-data"),
        ("m20", ["--disable-console-conf"], "console-conf disable"),
        ("m20signed", ["--snap", "hello-world=edge"], "grade signed"),
        ("m18", ["--revision", "nothere:3"], "names a snap the image does not contain"),
    ],
)
def test_inputs_that_do_not_fit_the_model_fail_before_the_store(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    model: str, extra: list[str], message: str,
) -> None:  # fmt: skip
    """No snap is local and the store does not answer: the error must be the input's,
    found before any store request (a resolve would fail with 'cannot reach the store')."""
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\n")
    extra = [str(user_data) if a == "USER_DATA" else a for a in extra]
    out = tmp_path / "out"
    path = getattr(inputs, model)
    args = ["snap", str(path), *TRUST, "--store", "http://127.0.0.1:9", "-O", str(out)]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "cannot reach the store" not in err and "cannot resolve" not in err, err
    assert not out.exists() or not any(out.iterdir())


def test_verbosity_flags(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-q: nothing but errors; default: the steps; -v: their timings; -d: the plan too."""
    outputs = {}
    for flag in ("-q", "", "-v", "-d"):
        out = tmp_path / (flag or "default")
        args = ["snap", str(inputs.m18), *TRUST, *snap_args(inputs.uc18), "-O", str(out)]
        assert main([*args, "--seed-only", *([flag] if flag else [])]) == 0
        outputs[flag] = capsys.readouterr()
    assert outputs["-q"].out == ""
    assert "[0] verify_model" in outputs[""].out and "took" not in outputs[""].out
    assert "verify_model took" in outputs["-v"].out
    assert '"kind": "uc16"' not in outputs["-v"].out
    assert '"kind": "uc16"' in outputs["-d"].out  # the plan, logged by compute_plan
    assert "verify_model took" in outputs["-d"].out


def test_store_metadata_that_its_assertions_contradict_is_refused(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'fetch … and verify': a store whose metadata says another revision than the signed
    snap-revision assertion of the same file is not believed (snapd's cross-checks)."""
    store: Served = request.getfixturevalue("served")  # the store of test_build_store
    push_all(store.url, store.root, snaps_uc18(tmp_path / "snaps"), "18")
    with contextlib.closing(sqlite3.connect(store.root / "store.db")) as db, db:
        (snap_id,) = db.execute("SELECT snap_id FROM snaps WHERE name='hello-world'").fetchone()
        db.execute("UPDATE revisions SET revision=7 WHERE snap_id=?", (snap_id,))
        db.execute("UPDATE releases SET revision=7 WHERE snap_id=?", (snap_id,))
    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    out = tmp_path / "out"
    assert build_from_store(store.url, store.root, model, out) == 1
    err = capsys.readouterr().err
    assert "cannot verify snap 'hello-world'" in err and "snap-revision 1" in err, err
    assert not list(out.glob("*.img"))


def test_local_snap_and_its_channel_are_one_snap(
    inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str], epoch: None
) -> None:
    out = tmp_path / "out"
    args = ["snap", str(inputs.m18), *TRUST, *snap_args(inputs.uc18), "-O", str(out), "-q"]
    # every snap is local: no store is needed
    extra = ["--snap", "hello-world=edge", "--offline", "--seed-only"]
    rc = main([*args, *extra])
    assert rc == 0, capsys.readouterr().err
    seed_yaml = (out / "image/var/lib/snapd/seed/seed.yaml").read_text()
    assert seed_yaml.count("- name: hello-world\n") == 1, seed_yaml


def test_uc20_piboot_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """piboot as a whole image (the parity test checks its seed tree only)."""
    snaps = snaps_uc20_pi(tmp_path / "snaps", "piboot")
    model = sign_model(model_uc20_pi("dangerous"), tmp_path / "m.model")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)  # after mksquashfs, which refuses it
    out = tmp_path / "out"
    assert main(["snap", str(model), *TRUST, *snap_args(snaps), "-O", str(out), "-q"]) == 0
    table = sfdisk(out / "pi.img")
    assert table["label"] == "dos"
    (part,) = table["partitions"]
    seed = extract(out / "pi.img", part["start"], part["size"], tmp_path / "seed")
    fsck_ok(["fsck.vfat", "-n", str(seed)])
    env = parse_ubootenv(mtools("mtype", seed, "::piboot/ubuntu/piboot.conf"))
    assert env == {"snapd_recovery_mode": "install", "snapd_recovery_system": "20231114"}
    listing = mtools("mdir", seed, "-b", "-/", "::").decode().split()
    for path in (
        "::/systems/20231114/kernel/kernel.img",
        "::/systems/20231114/kernel/cmdline.txt",
        # the firmware's os_prefix layout: device trees and overlays beside the kernel
        "::/systems/20231114/kernel/bcm2711-rpi-4-b.dtb",
        "::/systems/20231114/kernel/overlays/uart.dtbo",
        "::/systems/20231114/snaps/pi-kernel_1.0.snap",
        "::/config.txt",
        "::/bcm2711-rpi-4-b.dtb",
    ):
        assert path in listing, path
