"""`ucimage snap` takes ubuntu-image's command line: what a ported script passes works,
or fails with a clear error (ubuntu-image: internal/commands, internal/statemachine)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ucimage import __version__
from ucimage.build.options import (
    STEP_NAMES,
    UBUNTU_IMAGE_STATES,
    BuildOptions,
    parse_image_size,
    parse_step,
    validate_options,
)
from ucimage.cli.build_cmds import options_from_args
from ucimage.cli.main import build_parser, main
from ucimage.errors import UsageError
from ucimage.seed.manifest import snaps_manifest


def _parse(*argv: str) -> BuildOptions:
    args: argparse.Namespace = build_parser("snap").parse_args(["snap", "m.model", *argv])
    return options_from_args(args)


#: (ubuntu-image state, ucimage --until step, ucimage --thru step)
STATE_STEPS = [
    ("prepare_image", "verify_model", "write_seed"),
    ("load_gadget_yaml", "load_gadget", "write_seed"),
    ("set_artifact_names", "compute_plan", "write_seed"),
    ("populate_rootfs_contents", "write_seed", "write_seed"),
    ("generate_disk_info", "write_seed", "write_seed"),
    ("calculate_rootfs_size", "populate_volumes", "populate_volumes"),
    ("populate_bootfs_contents", "populate_volumes", "populate_volumes"),
    ("populate_prepare_partitions", "build_volumes", "build_volumes"),
    ("make_disk", "build_volumes", "build_volumes"),
    ("generate_snap_manifest", "write_manifests", "write_manifests"),
]


def test_every_ubuntu_image_state_is_mapped() -> None:
    # internal/statemachine/snap.go: snapStates, in order
    assert [s for s, _, _ in UBUNTU_IMAGE_STATES] == [s for s, _, _ in STATE_STEPS]


@pytest.mark.parametrize(("state", "until", "thru"), STATE_STEPS)
def test_until_and_thru_take_ubuntu_image_state_names(
    state: str, until: str, thru: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _parse("--until", state).until == until
    assert _parse("-u", state).until == until
    assert _parse("--thru", state).thru == thru
    assert _parse("-t", state).thru == thru
    assert f"ubuntu-image's state {state}" in capsys.readouterr().err
    _parse("-q", "--until", state)
    assert capsys.readouterr().err == ""


def test_until_never_stops_after_and_thru_never_before_the_state() -> None:
    order = {s: i for i, (s, _, _) in enumerate(STATE_STEPS)}
    for state, until, thru in STATE_STEPS:
        # nothing ubuntu-image's later states do has been done before --until stops
        assert STEP_NAMES.index(until) <= STEP_NAMES.index(
            min((u for s, u, _ in STATE_STEPS if order[s] >= order[state]), key=STEP_NAMES.index)
        )
        # everything done by this state and the earlier ones is done at --thru
        assert STEP_NAMES.index(thru) >= max(
            STEP_NAMES.index(t) for s, _, t in STATE_STEPS if order[s] <= order[state]
        )


def test_our_step_names_pass_through() -> None:
    for step in STEP_NAMES:
        assert parse_step("--until", step) == step
        assert _parse("--thru", step).thru == step


def test_unknown_step_lists_ours_and_ubuntu_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.model"
    model.write_text("x")
    assert main(["snap", str(model), "--until", "make_disks", "-O", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown step 'make_disks' for --until" in err
    assert "build_volumes" in err and "make_disk" in err and "prepare_image" in err
    with pytest.raises(UsageError, match="unknown step"):
        validate_options(BuildOptions(model=model, thru="make_disk"))  # not mapped here


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--comp", "pc-kernel+wifi"], "--comp"),
        (["--comp=x+y"], "--comp"),
        (["--sequence", "myset:3"], "--sequence"),
        (["--preseed"], "--preseed"),
        (["--preseed-sign-key", "k"], "--preseed-sign-key"),
        (["--apparmor-features-dir", "/x"], "--apparmor-features-dir"),
        (["--sysfs-overlay", "/x"], "--sysfs-overlay"),
    ],
)
def test_ubuntu_image_options_we_lack_fail_clearly(
    argv: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.model"
    model.write_text("x")
    assert main(["snap", str(model), *argv, "-O", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"ubuntu-image's {flag} is not supported" in err
    assert "--compress" not in err  # argparse took --comp for an abbreviation of --compress
    assert not (tmp_path / "out").exists()


def test_allow_snapd_kernel_mismatch_is_accepted() -> None:
    # ucimage does not run snapd's snap-bootstrap/snapd version check the flag turns off
    _parse("--allow-snapd-kernel-mismatch")


def test_version_after_the_verb(capsys: pytest.CaptureFixture[str]) -> None:
    # go-flags takes the common options (--version among them) after `snap` too
    with pytest.raises(SystemExit) as exc:
        main(["snap", "--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"ucimage {__version__}"


def test_snaps_manifest_in_file_name_order() -> None:
    # ubuntu-image (helper.go WriteSnapManifest) reads var/lib/snapd/snaps with
    # os.ReadDir, sorted by file name: "core-kernel_x1.snap" < "core_x1.snap"
    assert snaps_manifest({"core": "x1", "core-kernel": "x1"}) == "core-kernel x1\ncore x1\n"
    assert snaps_manifest({"pc-kernel": "2", "core18": "1"}) == "core18 1\npc-kernel 2\n"


def test_image_size_volumes_are_checked_against_the_gadget() -> None:
    names = ["first", "second", "third"]
    parse_image_size("first:4G,2:1G").check_volumes(names)
    parse_image_size("4G").check_volumes(names)
    with pytest.raises(UsageError, match=r"volume 'nosuch' does not exist in gadget\.yaml"):
        parse_image_size("first:4G,nosuch:1G").check_volumes(names)
    with pytest.raises(UsageError, match="volume index 3 is out of range"):
        parse_image_size("3:1G").check_volumes(names)
    with pytest.raises(UsageError, match="does not exist"):
        parse_image_size(" 1:1G").check_volumes(names)
    # strconv.Atoi reads "01" as index 1
    assert parse_image_size("01:1M").for_volume("second", 1) == 1 << 20


@pytest.mark.parametrize("flag", ["-O", "-w"])
def test_output_or_work_dir_that_is_a_file_is_a_clear_error(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ubuntu-image: "Error creating OutputDir: …"; ucimage had a FileExistsError traceback
    model = tmp_path / "m.model"
    model.write_text("x")
    for target in (model, model / "sub"):
        assert main(["snap", str(model), flag, str(target)]) == 2
        err = capsys.readouterr().err
        assert "is not a directory" in err and "Traceback" not in err
    assert model.read_text() == "x"


def test_unmakeable_output_dir_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.model"
    model.write_text("x")
    assert main(["snap", str(model), "-O", "/proc/ucimage-cannot-be-here"]) == 2
    err = capsys.readouterr().err
    assert "error: cannot make the directory" in err and "hint:" in err


def test_workdir_files_no_build_made_are_not_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ubuntu-image reuses an existing -w and deletes nothing there; a build replaces its
    # root/ and boot/, so a directory holding someone else's is refused before any work
    model = tmp_path / "m.model"
    model.write_text("x")
    work = tmp_path / "project"
    (work / "boot").mkdir(parents=True)
    (work / "boot" / "mine.txt").write_text("keep")
    assert main(["snap", str(model), "-w", str(work), "-O", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "holds boot/ that no ucimage build made" in err
    assert (work / "boot" / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in work.iterdir()) == ["boot"]
    # so is one holding anything else a build writes over
    for name in ("unpack", "plan.json"):
        other = tmp_path / f"with-{name}"
        other.mkdir()
        if "." in name:
            (other / name).write_text("mine")
        else:
            (other / name).mkdir()
        with pytest.raises(UsageError, match=f"holds {name}"):
            validate_options(BuildOptions(model=model, workdir=other))
    # the workdir of an earlier ucimage build is reused, as ubuntu-image reuses its own
    (work / "ucimage-build.json").write_text("{}")
    validate_options(BuildOptions(model=model, workdir=work))


def test_empty_values_mean_not_given() -> None:
    # go-flags leaves "" as the unset value and ubuntu-image tests `!= ""`: a script's
    # `-w "$WORKDIR" -c "$CHANNEL"` with both unset builds in a temporary workdir with
    # the model's channels (ucimage made the current directory the workdir and asked
    # the store for channel "18/")
    opts = _parse(
        "-w", "", "-O", "", "-c", "", "--disk-info", "", "--cloud-init", "", "-u", "", "-i", ""
    )
    assert opts.workdir is None and opts.output_dir is None and opts.channel is None
    assert opts.disk_info is None and opts.cloud_init is None and opts.until is None
    assert opts.image_size.default is None and not opts.image_size.per_volume
    assert _parse("--thru=").thru is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-c", "x/x/x/x"], "global default option channel: channel name has too many"),
        (["-c", "latest/wibble"], "invalid risk in channel name: latest/wibble"),
        (["--snap", "pc=18/bogus"], "option channel for snap 'pc': invalid risk"),
    ],
)
def test_bad_channels_fail_before_any_work(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # snapd (seedwriter.New, via ubuntu-image's prepare_image) refuses these;
    # ucimage asked the store for them
    model = tmp_path / "m.model"
    model.write_text("x")
    assert main(["snap", str(model), *argv, "-O", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    for good in ("18", "edge", "18/edge", "latest/stable/fix-1", "edge/hotfix"):
        validate_options(BuildOptions(model=model, channel=good))


def test_an_ubuntu_image_workdir_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a ported script that resumes (-r, with the model, as ubuntu-image 3 needs) in the
    # workdir ubuntu-image left behind
    model = tmp_path / "m.model"
    model.write_text("x")
    work = tmp_path / "work"
    for name in ("root", "unpack", "volumes", "scratch"):
        (work / name).mkdir(parents=True)
    (work / "ubuntu-image.json").write_text('{"StepsTaken": 3}')
    assert main(["snap", str(model), "-r", "-w", str(work)]) == 2
    err = capsys.readouterr().err
    assert "is an ubuntu-image workdir (ubuntu-image.json)" in err
    assert sorted(p.name for p in work.iterdir()) == [
        "root",
        "scratch",
        "ubuntu-image.json",
        "unpack",
        "volumes",
    ]


def test_model_less_resume_says_which_flags_it_ignores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from ucimage.build.options import STEP_NAMES as steps
    from ucimage.build.runner import STATE_FILE

    work = tmp_path / "work"
    work.mkdir()
    saved = {"options": {"bmap": False}}  # a finished build's
    state = {"version": 1, "done": list(steps), "results": {}, "inputs": saved}
    (work / STATE_FILE).write_text(json.dumps(state))
    argv = ["snap", "-r", "-w", str(work), "-i", "4G", "--snap", "x.snap", "--sector-size", "512"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "ignored: --snap, --image-size (give the model" in captured.err
    assert "Build successful" in captured.out
    assert main(["snap", "-r", "-w", str(work), "-O", str(tmp_path / "o"), "-q"]) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_every_option_is_either_saved_or_taken_on_resume() -> None:
    import dataclasses

    from ucimage.build.options import _SAVED_ON_RESUME

    taken = {"model", "output_dir", "workdir", "dry_run", "until", "thru", "resume"}
    taken |= {"offline", "json", "verbosity"}
    names = {f.name for f in dataclasses.fields(BuildOptions)}
    assert names == taken | set(_SAVED_ON_RESUME)
    assert not taken & set(_SAVED_ON_RESUME)


def test_preserve_unpack_env_is_said_to_have_no_effect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ubuntu-image copies its unpack dir there after load_gadget_yaml; a script that
    # reads it afterwards must learn why it stays empty
    monkeypatch.setenv("UBUNTU_IMAGE_PRESERVE_UNPACK", str(tmp_path / "keep"))
    model = tmp_path / "m.model"
    model.write_text("x")
    main(["snap", str(model), "-O", str(tmp_path / "out")])
    assert "UBUNTU_IMAGE_PRESERVE_UNPACK is ubuntu-image's and has no effect" in (
        capsys.readouterr().err
    )
