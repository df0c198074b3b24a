"""``ucimage gadget validate`` and ``ucimage gadget layout``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ucimage.cli.gadget_cmds import parse_image_size, parse_image_sizes
from ucimage.cli.main import main
from ucimage.errors import UsageError

from ..conftest import TESTDATA

GADGETS = TESTDATA / "gadgets"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "gadget", "validate", str(GADGETS / "pc-amd64-uc16.yaml"))
    assert code == 0
    assert out.count("\n") == 1
    assert out.startswith("valid: ")
    assert "pc: gpt, 3 structure(s) + implicit writable, bootloader grub" in out
    assert err == ""


def test_validate_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    path = GADGETS / "INVALID-ui-two-seeded-volumes.yaml"
    code, out, err = run(capsys, "gadget", "validate", str(path))
    assert code == 1
    assert out == ""
    assert err.startswith("error: cannot have more than one partition with system-seed role")


def test_validate_lists_every_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "gadget.yaml"
    bad.write_text(
        "volumes:\n  pc:\n    bootloader: grub\n    structure:\n"
        "      - {name: a, type: bare, size: 1K}\n      - {name: b, type: bare, size: 2K}\n"
    )
    code, _out, err = run(capsys, "gadget", "validate", str(bad))
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 2
    assert '"a"' in lines[0] and '"b"' in lines[1]


def test_validate_with_model(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GADGETS / "pc-classic-2310-system-seed-null.yaml")
    assert run(capsys, "gadget", "validate", path, "--model", "classic-modes")[0] == 0
    code, _out, err = run(capsys, "gadget", "validate", path, "--model", "uc20")
    assert code == 1
    assert "model requires system-seed structure" in err


def test_validate_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = run(capsys, "gadget", "validate", str(tmp_path / "nope"))
    assert code == 1
    assert "does not exist" in err


def test_layout_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "gadget", "layout", str(GADGETS / "pc-amd64-uc16.yaml"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("volume pc: gpt, 512-byte sectors, image 62948864 bytes")
    assert "offset-write LE32 2048 at 92" in out
    writable = next(line for line in lines if "writable" in line and "implicit" in line)
    assert writable.split()[:3] == ["3", "54525952", "106496"]


def test_layout_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GADGETS / "ui-emmc-schema-volume.yaml")
    code, out, _err = run(capsys, "gadget", "layout", path, "--json", "--sector-size", "4096")
    assert code == 0
    doc = json.loads(out)
    assert doc["skipped-volumes"] == ["my-emmc"]
    (pc,) = doc["volumes"]
    assert pc["sector_size"] == 4096
    assert [s["start"] for s in pc["structures"]] == [0, 1 << 20, 2 << 20, 52 << 20]


def test_layout_image_size(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GADGETS / "pc-amd64-uc16.yaml")
    code, out, _err = run(capsys, "gadget", "layout", path, "--json", "--image-size", "1G")
    assert code == 0
    assert json.loads(out)["volumes"][0]["size"] == 1 << 30
    code, _out, err = run(capsys, "gadget", "layout", path, "--image-size", "pc:10M")
    assert code == 1
    assert "image size smaller than minimum required size: vol:pc" in err
    code, _out, err = run(capsys, "gadget", "layout", path, "--image-size", "other:10M")
    assert code == 2
    assert "unknown volume" in err


def test_layout_multi_volume_select(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GADGETS / "ui-multi-volume.yaml")
    code, out, _err = run(capsys, "gadget", "layout", path, "--volume", "third")
    assert code == 0
    assert out.startswith("volume third:") and "volume first" not in out


def test_parse_image_size() -> None:
    assert parse_image_size("4G") == 4 << 30
    assert parse_image_size("3500M") == 3500 << 20
    assert parse_image_size("123") == 123
    assert parse_image_size("2GiB") == 2 << 30
    with pytest.raises(UsageError):
        parse_image_size("lots")
    assert parse_image_sizes("a:1M,b:2M", ["a", "b"]) == {"a": 1 << 20, "b": 2 << 20}
    assert parse_image_sizes("1M", ["a", "b"]) == {"a": 1 << 20, "b": 1 << 20}
    assert parse_image_sizes("1:3M", ["a", "b"]) == {"b": 3 << 20}
