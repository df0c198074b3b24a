"""Reading and packing real squashfs snaps (squashfs-tools; `snap pack` as oracle)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.snapd_oracle import needs_snap
from ucimage.snaps import (
    InvalidSnapYamlError,
    NotASnapError,
    SnapError,
    SnapFile,
    SnapFileNotFoundError,
    pack,
)

pytestmark = pytest.mark.integration

FIXTURE_NAMES = ["core22_3", "hello-stub_7", "pc-kernel_2", "pc_1", "snapd_4"]


def fixture(testdata: Path, name: str) -> Path:
    return testdata / "store" / "fixtures" / "snaps" / f"{name}.snap"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_read_fixture_snaps(testdata: Path, name: str) -> None:
    snap = SnapFile(fixture(testdata, name))
    assert snap.info.name == name.rsplit("_", 1)[0]
    assert snap.size == 4096
    assert "meta/snap.yaml" in snap.list()
    assert len(snap.sha3_384_hex) == 96


def test_read_extract_and_errors(testdata: Path, tmp_path: Path) -> None:
    snap = SnapFile(fixture(testdata, "hello-stub_7"))
    assert snap.read_file("bin/hello").startswith(b"#!/bin/sh")
    assert snap.read_file("/meta/snap.yaml") == snap.read_file("meta/snap.yaml")
    assert snap.gadget_yaml is None
    with pytest.raises(SnapFileNotFoundError):
        snap.read_file("meta/nope")
    with pytest.raises(SnapFileNotFoundError):
        snap.read_file("../etc/passwd")
    dest = snap.extract(tmp_path / "all")
    assert (dest / "bin" / "hello").read_bytes() == snap.read_file("bin/hello")
    only = snap.extract(tmp_path / "some", ["meta"])
    assert sorted(os.listdir(only)) == ["meta"]
    with pytest.raises(SnapFileNotFoundError):
        snap.extract(tmp_path / "none", ["does/not/exist"])
    assert ("-rwxr-xr-x", "bin/hello", 31) in snap.list_long()


def test_not_a_snap(tmp_path: Path) -> None:
    bogus = tmp_path / "x.snap"
    bogus.write_bytes(b"PK\x03\x04 not squashfs")
    with pytest.raises(NotASnapError, match="not a squashfs"):
        SnapFile(bogus)
    with pytest.raises(NotASnapError, match="no such file"):
        SnapFile(tmp_path / "missing.snap")


def make_snap_dir(root: Path, yaml: str) -> Path:
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "snap.yaml").write_text(yaml)
    (root / "bin").mkdir()
    (root / "bin" / "hi").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "hi").chmod(0o755)
    return root


YAML = "name: hello-x\nversion: '1.10'\napps:\n  hello-x:\n    command: bin/hi\n"


def test_pack_roundtrip_and_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_snap_dir(tmp_path / "src", YAML)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    out1 = pack(src, tmp_path / "o1")
    # mtimes newer than SOURCE_DATE_EPOCH are clamped to it (as snap pack does)
    os.utime(src / "bin" / "hi", (1800000000, 1800000000))
    out2 = pack(src, tmp_path / "o2")
    assert out1.name == "hello-x_1.10_all.snap"
    assert out1.read_bytes() == out2.read_bytes()
    snap = SnapFile(out1)
    assert snap.info.name == "hello-x"
    listing = subprocess.run(
        ["unsquashfs", "-lln", str(out1)], capture_output=True, text=True, check=True
    ).stdout
    assert " 0/0 " in listing and "1000/" not in listing
    assert "2023-11-14" in listing  # SOURCE_DATE_EPOCH 1700000000


@needs_snap
def test_pack_matches_real_snap_pack(tmp_path: Path) -> None:
    src = make_snap_dir(tmp_path / "src", YAML.replace("version: '1.10'", "version: '2'"))
    (src / "data").mkdir()
    (src / "data" / "big").write_bytes(os.urandom(200_000))
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1600000000"}
    subprocess.run(
        ["snap", "pack", str(src), str(tmp_path / "ref")], env=env, check=True, capture_output=True
    )
    ours = pack(src, tmp_path / "ours", source_date_epoch_value=1600000000)
    ref = tmp_path / "ref" / ours.name
    assert ref.is_file(), os.listdir(tmp_path / "ref")
    assert ours.read_bytes() == ref.read_bytes()


def test_pack_refuses_invalid(tmp_path: Path) -> None:
    src = make_snap_dir(tmp_path / "src", "name: Bad_Name\nversion: '1'\n")
    with pytest.raises(InvalidSnapYamlError, match="snap name"):
        pack(src, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    src2 = make_snap_dir(tmp_path / "src2", YAML.replace("bin/hi", "bin/missing"))
    with pytest.raises(SnapError, match="not found"):
        pack(src2, tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidSnapYamlError, match=r"meta/snap\.yaml not found"):
        pack(empty, tmp_path / "out")
    gadget = make_snap_dir(tmp_path / "g", "name: pc\nversion: '1'\ntype: gadget\n")
    with pytest.raises(SnapError, match=r"gadget\.yaml"):
        pack(gadget, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_cli_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ucimage.cli.main import main

    src = make_snap_dir(tmp_path / "src", YAML)
    assert main(["pack", str(src), "-o", str(tmp_path / "out")]) == 0
    assert "hello-x_1.10_all.snap" in capsys.readouterr().out
    bad = make_snap_dir(tmp_path / "bad", "name: x\nversion: '1'\n")
    assert main(["pack", str(bad), "-o", str(tmp_path / "out")]) == 1
    assert "error: cannot pack" in capsys.readouterr().err
