"""``ucimage inspect`` on UC16/18, UC20+ and MBR/u-boot images built by independent tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_inspect_images import (
    STUB_ASSERTS,
    SYSTEM_LABEL,
    UC16_SNAP_LIST,
    BuiltImage,
    build_4k_image,
    build_mbr_uboot_image,
    build_uc16_image,
    build_uc20_image,
    flip_byte_of_file,
    sfdisk_json,
    sh,
)
from ucimage.cli.main import main
from ucimage.inspect import inspect_image

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltImage]:
    base = tmp_path_factory.mktemp("inspect-cli")
    return {
        "uc16": build_uc16_image(base / "uc16"),
        "uc20": build_uc20_image(base / "uc20"),
        "mbr": build_mbr_uboot_image(base / "mbr"),
    }


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["inspect", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def inspect_json(capsys: pytest.CaptureFixture[str], image: Path) -> dict[str, Any]:
    rc, out, err = run_cli(capsys, "--json", str(image))
    assert rc == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


@pytest.mark.parametrize("kind", ["uc16", "uc20", "mbr"])
def test_snap_list_is_what_the_device_shows(
    images: dict[str, BuiltImage], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run_cli(capsys, "--snap-list", str(images[kind].path))
    assert rc == 0
    assert out == UC16_SNAP_LIST


@pytest.mark.parametrize("kind", ["uc16", "uc20"])
def test_model_is_printed_byte_for_byte(
    images: dict[str, BuiltImage], kind: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["inspect", "--model", str(images[kind].path)]) == 0
    assert capsysbinary.readouterr().out == (STUB_ASSERTS / "stub-pc.model").read_bytes()


@pytest.mark.parametrize("kind", ["uc16", "uc20", "mbr"])
def test_json_partitions_match_sfdisk(
    images: dict[str, BuiltImage], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    image = images[kind].path
    doc = inspect_json(capsys, image)
    ref: dict[str, Any] = sfdisk_json(image)
    (volume,) = doc["volumes"]
    assert volume["schema"] == ("mbr" if ref["label"] == "dos" else "gpt")
    assert volume["id"].lower() == ref["id"].lower()
    assert [(p["start"], p["size"]) for p in doc["partitions"]] == [
        (p["start"], p["size"]) for p in ref["partitions"]
    ]
    assert [p["type"].lower() for p in doc["partitions"]] == [
        p["type"].lower() for p in ref["partitions"]
    ]


def test_json_uc16(images: dict[str, BuiltImage], capsys: pytest.CaptureFixture[str]) -> None:
    doc = inspect_json(capsys, images["uc16"].path)
    assert doc["format"] == 1
    assert [(f["partition"], f["type"], f["label"]) for f in doc["filesystems"]] == [
        (2, "vfat", "system-boot"),
        (3, "ext4", "writable"),
    ]
    seed = doc["seed"]
    assert seed["layout"] == "uc16" and seed["partition"] == 3
    assert seed["model"]["model"] == "stub-pc" and seed["model"]["brand-id"] == "stubbrand"
    assert seed["model"]["assertion"] == (STUB_ASSERTS / "stub-pc.model").read_text()
    snaps = {s["name"]: s for s in seed["snaps"]}
    assert snaps["pc-kernel"]["revision"] == "2"
    assert snaps["pc-kernel"]["file"] == "/system-data/var/lib/snapd/seed/snaps/pc-kernel_2.snap"
    # the digest the store fixture README lists for pc_1.snap
    assert (
        snaps["pc"]["sha3-384"]
        == "gfu8_c5_g_I0FdFTcqAnUyV_y4i3rgPAL9fx4IwHeT6uk40gnUzRtw6ISI-kzo2H"
    )
    assert snaps["pc"]["size"] == 4096
    assert snaps["local-app"]["unasserted"] is True
    assert seed["snap-list"] == UC16_SNAP_LIST
    assert seed["problems"] == []
    (env,) = doc["bootenv"]
    assert (env["partition"], env["path"], env["format"], env["valid"]) == (
        2,
        "/EFI/ubuntu/grubenv",
        "grubenv",
        True,
    )
    assert env["vars"] == {
        "snap_mode": "",
        "snap_core": "core22_3.snap",
        "snap_kernel": "pc-kernel_2.snap",
    }
    assert doc["verify"] is None


def test_json_uc20(images: dict[str, BuiltImage], capsys: pytest.CaptureFixture[str]) -> None:
    doc = inspect_json(capsys, images["uc20"].path)
    seed = doc["seed"]
    assert (seed["layout"], seed["system-label"]) == ("uc20", SYSTEM_LABEL)
    # the stub store's gadget wants ubuntu-seed at 1 MiB, 1200 MiB big: this fixture differs
    assert doc["problems"][:2] == [
        "partition 2 (ubuntu-seed) starts at byte 2097152, gadget.yaml says 1048576",
        "partition 2 (ubuntu-seed) is 35651584 bytes, gadget.yaml needs at least 1258291200",
    ]
    assert seed["directory"] == f"/systems/{SYSTEM_LABEL}"
    snaps = {s["name"]: s for s in seed["snaps"]}
    assert snaps["pc"]["file"] == "/snaps/pc_1.snap"
    assert snaps["local-app"]["file"] == f"/systems/{SYSTEM_LABEL}/snaps/local-app_0.1.snap"
    envs = {e["path"]: e["vars"] for e in doc["bootenv"]}
    assert envs["/EFI/ubuntu/grubenv"]["snapd_recovery_system"] == SYSTEM_LABEL
    assert envs[f"/systems/{SYSTEM_LABEL}/grubenv"]["snapd_recovery_kernel"] == (
        "/snaps/pc-kernel_2.snap"
    )
    assert {a["file"] for a in seed["assertions"]} == {
        f"/systems/{SYSTEM_LABEL}/model",
        f"/systems/{SYSTEM_LABEL}/assertions/model-etc",
        f"/systems/{SYSTEM_LABEL}/assertions/snaps",
    }


def test_uboot_env_crc_is_checked(
    images: dict[str, BuiltImage], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = inspect_json(capsys, images["mbr"].path)
    (env,) = doc["bootenv"]
    assert (env["path"], env["format"], env["valid"]) == ("/uboot.env", "uboot", True)
    assert env["vars"]["snap_kernel"] == "pc-kernel_2.snap"
    assert doc["partitions"][0]["bootable"] is True
    # break one byte of the env's payload on the FAT partition
    broken = tmp_path / "broken.img"
    broken.write_bytes(images["mbr"].path.read_bytes())
    blob = bytearray(broken.read_bytes())
    pos = blob.find(b"snap_kernel=pc-kernel_2.snap")
    assert pos > 0
    blob[pos + 12] ^= 0x01
    broken.write_bytes(bytes(blob))
    doc = inspect_json(capsys, broken)
    (env,) = doc["bootenv"]
    assert env["valid"] is False
    assert "CRC32 mismatch" in env["problems"][0]
    rc, out, _ = run_cli(capsys, str(broken))
    assert rc == 0 and "INVALID: u-boot env CRC32 mismatch" in out


@pytest.mark.parametrize("kind", ["uc16", "uc20"])
def test_digest_check_names_the_changed_snap(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = build_uc16_image(tmp_path) if kind == "uc16" else build_uc20_image(tmp_path)
    accept_all = lambda a: None  # noqa: E731 - signatures are tested with the real database
    report = inspect_image(image.path, tmp_path / "w1", verify=True, checker=accept_all)
    assert report.verify is not None and report.verify.ok
    statuses = {c.subject: c.status for c in report.verify.checks if c.kind == "snap"}
    assert sum(s == "ok" for s in statuses.values()) == 5
    assert [s for s, st in statuses.items() if st == "skipped"] == [
        next(s for s in statuses if s.startswith("local-app"))
    ]
    seeddir = "/system-data/var/lib/snapd/seed" if kind == "uc16" else ""
    flip_byte_of_file(image, f"{seeddir}/snaps/pc-kernel_2.snap")
    report = inspect_image(image.path, tmp_path / "w2", verify=True, checker=accept_all)
    assert report.verify is not None and not report.verify.ok
    (failure,) = report.verify.failures
    assert failure.subject.startswith("pc-kernel ")
    assert "sha3-384 digest" in failure.message and "does not match snap-revision 2" in (
        failure.message
    )


def test_missing_image_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(capsys, str(tmp_path / "nope.img"))
    assert rc == 1
    assert "error: image" in err and "does not exist" in err


def test_not_a_disk_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\x01" * 70000)
    rc, out, _ = run_cli(capsys, str(junk))
    assert rc == 0
    assert "Partition table: none" in out and "no seed found" in out
    rc, _, err = run_cli(capsys, "--verify", str(junk))
    assert rc == 1 and "nothing to verify" in err
    rc, _, err = run_cli(capsys, "--model", str(junk))
    assert rc == 2 and "has no seed" in err


def test_bad_seed_yaml_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def duplicate_key(seed: Path) -> None:
        text = (seed / "seed.yaml").read_text()
        (seed / "seed.yaml").write_text(
            text.replace("    file: pc_1.snap", "    file: pc_1.snap\n    file: x.snap")
        )

    image = build_uc16_image(tmp_path, mutate=duplicate_key)
    rc, _, err = run_cli(capsys, str(image.path))
    assert rc == 1
    assert "error: cannot parse /system-data/var/lib/snapd/seed/seed.yaml" in err
    assert "duplicate" in err or "found duplicate key" in err


def test_missing_snap_is_reported_and_fails_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = build_uc16_image(tmp_path, mutate=lambda seed: (seed / "snaps" / "pc_1.snap").unlink())
    rc, out, _ = run_cli(capsys, str(image.path))
    assert rc == 0
    assert "snap pc: /system-data/var/lib/snapd/seed/snaps/pc_1.snap is missing" in out
    report = inspect_image(image.path, tmp_path / "w", verify=True, checker=lambda a: None)
    assert report.verify is not None
    assert [c.subject.split(" ")[0] for c in report.verify.failures] == ["pc"]
    assert "missing" in report.verify.failures[0].message


def test_model_snap_missing_from_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def drop_hello(seed: Path) -> None:
        text = (seed / "seed.yaml").read_text()
        start = text.index("  - name: hello-stub")
        end = text.index("  - name: local-app")
        (seed / "seed.yaml").write_text(text[:start] + text[end:])

    image = build_uc16_image(tmp_path, mutate=drop_hello)
    report = inspect_image(image.path, tmp_path / "w", verify=True, checker=lambda a: None)
    assert report.seed is not None
    assert (
        "the model requires snap hello-stub but the seed does not hold it" in report.seed.problems
    )
    assert report.verify is not None
    assert [(c.kind, c.subject) for c in report.verify.failures] == [("model", "hello-stub")]


@pytest.mark.parametrize("kind", ["uc16", "uc20"])
def test_image_path_with_tool_special_characters(
    images: dict[str, BuiltImage], kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # debugfs reads '?' and mtools '@@' in a device name as their own syntax
    odd = tmp_path / "odd?name@@1" / "image.img"
    odd.parent.mkdir()
    odd.symlink_to(images[kind].path)
    rc, out, _ = run_cli(capsys, "--snap-list", str(odd))
    assert rc == 0 and out == UC16_SNAP_LIST


def test_4k_sector_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = build_4k_image(tmp_path)
    doc = inspect_json(capsys, image.path)
    assert doc["volumes"][0]["sector-size"] == 4096
    assert [(p["number"], p["start"], p["offset"]) for p in doc["partitions"]] == [
        (1, 256, 1024 * 1024),
        (2, 512, 2 * 1024 * 1024),
        (3, 13312, 52 * 1024 * 1024),
    ]
    assert doc["seed"]["snap-list"] == UC16_SNAP_LIST
    assert doc["bootenv"][0]["vars"]["snap_kernel"] == "pc-kernel_2.snap"


@pytest.mark.parametrize(
    ("recovery", "chosen", "problem"),
    [
        (SYSTEM_LABEL, SYSTEM_LABEL, None),
        ("20250101", "20250101", None),
        ("20990101", SYSTEM_LABEL, "names recovery system '20990101', which is not in the seed"),
    ],
)
def test_uc20_recovery_system_choice(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    recovery: str,
    chosen: str,
    problem: str | None,
) -> None:
    image = build_uc20_image(tmp_path, extra_labels=("20250101",), recovery_system=recovery)
    seed = inspect_json(capsys, image.path)["seed"]
    assert seed["system-label"] == chosen
    assert sorted([seed["system-label"], *seed["other-systems"]]) == ["20250101", SYSTEM_LABEL]
    if problem is None:
        assert seed["problems"] == []
    else:
        assert any(problem in p for p in seed["problems"]), seed["problems"]


def test_truncated_image_reports_what_it_can(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = build_uc16_image(tmp_path)
    with open(image.path, "r+b") as f:
        f.truncate(37 * 1024 * 1024)  # inside the writable partition
    doc = inspect_json(capsys, image.path)
    assert len(doc["partitions"]) == 3  # from the primary GPT
    assert doc["seed"] is None
    problems = "\n".join(doc["problems"])
    assert "partition 3 ends beyond the end of the image" in problems
    assert "backup: GPT header expected at LBA" in problems
    assert "cannot read the seed" in problems
    assert doc["bootenv"][0]["vars"]["snap_core"] == "core22_3.snap"  # the ESP is intact
    rc, _, err = run_cli(capsys, "--verify", str(image.path))
    assert rc == 1 and "nothing to verify: the image has no seed" in err


def test_uc20_seed_on_ext4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = build_uc20_image(tmp_path, seed_fs="ext4")
    doc = inspect_json(capsys, image.path)
    assert doc["filesystems"][0]["type"] == "ext4"
    assert doc["seed"]["layout"] == "uc20" and doc["seed"]["snap-list"] == UC16_SNAP_LIST
    accept_all = lambda a: None  # noqa: E731
    flip_byte_of_file(image, "/snaps/snapd_4.snap")  # an ext4 file: found with debugfs
    report = inspect_image(image.path, tmp_path / "w", verify=True, checker=accept_all)
    assert report.verify is not None
    assert [c.subject for c in report.verify.failures] == ["snapd (/snaps/snapd_4.snap)"]


def test_bare_filesystem_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A writable.img without a partition table (e.g. a build's part image) still inspects."""
    build_uc16_image(tmp_path)  # stages writable-tree
    bare = tmp_path / "writable.img"
    sh("mkfs.ext4", "-q", "-F", "-L", "writable", "-d", tmp_path / "writable-tree", bare, "16M")
    doc = inspect_json(capsys, bare)
    assert doc["volumes"][0]["schema"] == "none" and doc["partitions"] == []
    assert [(f["partition"], f["type"], f["label"]) for f in doc["filesystems"]] == [
        (0, "ext4", "writable")
    ]
    assert doc["seed"]["snap-list"] == UC16_SNAP_LIST


def test_compressed_image_is_refused_with_a_hint(
    images: dict[str, BuiltImage], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed = tmp_path / "pc.img.zst"
    sh("zstd", "-q", "-1", images["uc16"].path, "-o", packed)
    rc, _, err = run_cli(capsys, str(packed))
    assert rc == 1
    assert "is zstd-compressed, not a disk image" in err
    assert f"hint: decompress it first: zstd -d {packed}" in err
