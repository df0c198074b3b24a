"""Option parsing/validation of `ucimage snap`: bad input fails before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ucimage.build.options import (
    BuildOptions,
    parse_image_size,
    parse_revision,
    parse_size,
    parse_snap_arg,
    validate_options,
)
from ucimage.build.pipeline import combine_channel
from ucimage.cli.main import main
from ucimage.errors import UsageError


def test_sizes() -> None:
    assert parse_size("4G") == 4 << 30
    assert parse_size("100M") == 100 << 20
    assert parse_size("12345") == 12345
    for bad in ("4K", "1.5G", "-1", "G", ""):
        with pytest.raises(UsageError):
            parse_size(bad)
    multi = parse_image_size("pc:4G,1:100M")
    assert multi.for_volume("pc", 0) == 4 << 30
    assert multi.for_volume("other", 1) == 100 << 20
    assert multi.for_volume("x", 2) is None
    with pytest.raises(UsageError):
        parse_image_size("pc:4G,:1M")


def test_snap_and_revision_args(tmp_path: Path) -> None:
    assert parse_snap_arg("pc=18/edge").channel == "18/edge"
    assert parse_snap_arg("x/y.snap").path == Path("x/y.snap")
    with pytest.raises(UsageError, match="Invalid syntax passed to --snap"):
        parse_snap_arg("a=b=c")
    with pytest.raises(UsageError):
        parse_snap_arg("Bad_Name")
    assert parse_revision("core18:2128") == ("core18", 2128)
    for bad in ("core18", "core18:x", "core18:0", ":3"):
        with pytest.raises(UsageError):
            parse_revision(bad)


def test_validate(tmp_path: Path) -> None:
    model = tmp_path / "m.model"
    model.write_text("x")
    validate_options(BuildOptions(model=model))
    cases = [
        (BuildOptions(), "missing the model"),
        (BuildOptions(model=tmp_path / "nope"), "does not exist"),
        (BuildOptions(model=model, resume=True), "--resume requires --workdir"),
        (BuildOptions(model=model, until="nope"), "unknown step"),
        (BuildOptions(model=model, until="write_seed", thru="write_seed"), "together"),
        (BuildOptions(model=model, cloud_init=tmp_path / "none"), "--cloud-init"),
        (BuildOptions(model=model, revisions=(("a", 1), ("a", 2))), "more than one"),
        # a step a --seed-only build never reaches (it ran to the end)
        (BuildOptions(model=model, seed_only=True, until="build_volumes"), "no such step"),
        (BuildOptions(model=model, seed_only=True, thru="populate_volumes"), "no such step"),
    ]
    for opts, message in cases:
        with pytest.raises(UsageError, match=message):
            validate_options(opts)
    validate_options(BuildOptions(model=model, seed_only=True, until="write_manifests"))


def test_channel_rules() -> None:
    assert combine_channel("18/stable", "edge") == "18/edge"
    assert combine_channel("18/stable", None) == "18/stable"
    assert combine_channel("stable", "beta") == "beta"
    assert combine_channel("latest/stable", "22/edge") == "22/edge"


def test_cli_fails_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snap", str(tmp_path / "missing.model"), "-O", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
    model = tmp_path / "m.model"
    model.write_text("x")
    assert main(["snap", str(model), "--snap", "a=b=c", "-O", str(tmp_path)]) == 2
    assert "Invalid syntax passed to --snap" in capsys.readouterr().err
    assert main(["snap", str(model), "--image-size", "3K", "-O", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == [model]


def test_dry_run_prints_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.build_snaps import MODEL_UC18, TRUSTED_FILES, sign_model

    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    args = ["snap", str(model), "--dry-run", "-O", str(tmp_path / "out"), "-c", "edge"]
    for f in TRUSTED_FILES:
        args += ["--trusted", str(f)]
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["kind"] == "uc16" and plan["model"]["verified"] is True
    snaps = {s["name"]: s for s in plan["snaps"]}
    assert list(snaps) == ["snapd", "pc-kernel", "core18", "pc", "hello-world"]
    assert snaps["pc"]["channel"] == "18/edge" and snaps["core18"]["channel"] == "edge"
    assert "build_volumes" in plan["steps"]
    assert plan["volumes"] == []  # the gadget comes from the store: unknown before download
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_dry_run_with_local_gadget_shows_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.build_snaps import MODEL_UC18, TRUSTED_FILES, make_snap, sign_model

    model = sign_model(MODEL_UC18, tmp_path / "m.model")
    gadget = make_snap(tmp_path, "pc", "gadget", base="core18", gadget_yaml="pc-amd64-uc18.yaml")
    args = ["snap", str(model), "--dry-run", "-O", str(tmp_path / "out"), "--snap", str(gadget)]
    for f in TRUSTED_FILES:
        args += ["--trusted", str(f)]
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    (volume,) = plan["volumes"]
    names = [(s["name"], s["start"]) for s in volume["structures"]]
    assert names == [
        ("mbr", 0),
        ("BIOS Boot", 1 << 20),
        ("EFI System", 2 << 20),
        ("writable", 52 << 20),
    ]
    assert {s["name"]: s["source"] for s in plan["snaps"]}["pc"] == "local"
    assert not list((tmp_path / "out").glob(".ucimage-work-*"))


@pytest.mark.parametrize(
    ("value", "usable"),
    [
        *((v, False) for v in ["99999999999999", "15032385536", "-1", "1.5", "soon"]),
        *((v, True) for v in ["0", "1700000000", "15032385535", "", " 42 "]),
    ],
)
def test_source_date_epoch_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, usable: bool
) -> None:
    # a malformed one fails the build; empty is as unset; the last ext4 time is the limit
    model = tmp_path / "m.model"
    model.write_text("x")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    if usable:
        validate_options(BuildOptions(model=model))
    else:
        with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
            validate_options(BuildOptions(model=model))


def test_json_reader_gets_one_error_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an error found before the build starts (here: no such model file) ...
    assert main(["snap", str(tmp_path / "none.model"), "--json", "-O", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["error"]
    assert "does not exist" in events[0]["message"] and events[0]["code"] == "usage"
    assert "error:" in err
    # ... and one found by the build itself (a model that is not an assertion): once each
    model = tmp_path / "m.model"
    model.write_text("not an assertion\n")
    assert main(["snap", str(model), "--json", "-O", str(tmp_path / "o")]) != 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events].count("error") == 1


@pytest.mark.parametrize(
    ("value", "expected"), [("1700000000", 1700000000), (" 7 ", 7), ("²", None), ("x", None)]
)
def test_source_date_epoch_reader_takes_only_ascii_digits(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int | None
) -> None:
    from ucimage.run import source_date_epoch

    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    assert source_date_epoch() == expected
