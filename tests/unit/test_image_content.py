"""Content resolution and staging rules of the disk writer (no external tools)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from ucimage.errors import UcimageError
from ucimage.image.content import (
    resolve_filesystem_content,
    resolve_image,
    resolve_source,
    stage,
)
from ucimage.image.spec import ContentEntry, ContentError


@pytest.fixture
def gadget(tmp_path: Path) -> Path:
    g = tmp_path / "gadget"
    (g / "boot-assets" / "overlays").mkdir(parents=True)
    (g / "boot-assets" / "config.txt").write_text("cfg")
    (g / "boot-assets" / "overlays" / "a.dtbo").write_text("dtbo")
    (g / "grub.cfg").write_text("grub")
    (g / "pc-core.img").write_bytes(b"core")
    (tmp_path / "secret").write_text("no")
    os.symlink("../secret", g / "escape-link")
    return g


@pytest.fixture
def kernel(tmp_path: Path) -> Path:
    k = tmp_path / "kernel"
    (k / "meta").mkdir(parents=True)
    (k / "dtbs" / "broadcom").mkdir(parents=True)
    (k / "dtbs" / "broadcom" / "bcm.dtb").write_text("dtb")
    (k / "kernel.img").write_text("vmlinuz")
    (k / "meta" / "kernel.yaml").write_text(
        "assets:\n  dtbs:\n    update: true\n    content:\n      - dtbs/\n"
        "  kern:\n    content:\n      - kernel.img\n"
    )
    return k


def staged_files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def build(
    gadget: Path, tmp: Path, pairs: list[tuple[str, str]], kernel: Path | None = None
) -> dict[str, str]:
    entries = resolve_filesystem_content(pairs, gadget, kernel_dir=kernel)
    tree = stage(entries, tmp / "stage")
    return staged_files(tree.root)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # trailing / on a directory source: its contents
        ([("boot-assets/", "/")], {"config.txt", "overlays/a.dtbo"}),
        # no trailing /: the directory itself
        ([("boot-assets", "/")], {"boot-assets/config.txt", "boot-assets/overlays/a.dtbo"}),
        ([("boot-assets/", "/sub")], {"sub/config.txt", "sub/overlays/a.dtbo"}),
        # file to a name, file into a directory
        ([("grub.cfg", "EFI/ubuntu/grub.cfg")], {"EFI/ubuntu/grub.cfg"}),
        ([("grub.cfg", "EFI/ubuntu/")], {"EFI/ubuntu/grub.cfg"}),
        ([("grub.cfg", "/")], {"grub.cfg"}),
        ([("grub.cfg", "renamed")], {"renamed"}),
    ],
)
def test_copy_rules(
    gadget: Path, tmp_path: Path, pairs: list[tuple[str, str]], expected: set[str]
) -> None:
    assert set(build(gadget, tmp_path, pairs)) == expected


def test_later_entries_overwrite(gadget: Path, tmp_path: Path) -> None:
    files = build(gadget, tmp_path, [("boot-assets/", "/"), ("grub.cfg", "config.txt")])
    assert files["config.txt"] == "grub"


def test_kernel_refs(gadget: Path, kernel: Path, tmp_path: Path) -> None:
    files = build(gadget, tmp_path, [("$kernel:dtbs/dtbs/broadcom/", "/")], kernel)
    assert files == {"bcm.dtb": "dtb"}
    files = build(gadget, tmp_path / "2", [("$kernel:kern/kernel.img", "/")], kernel)
    assert files == {"kernel.img": "vmlinuz"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("$kernel:nope/dtbs/", "cannot find 'nope' in kernel info"),
        ("$kernel:kern/dtbs/", "cannot find wanted kernel content 'dtbs/'"),
        ("$kernel:dtbs", "invalid kernel asset reference"),
        ("../secret", "disallowed for security purposes"),
        ("escape-link", "disallowed for security purposes"),
        ("/etc/passwd", "disallowed for security purposes"),
        ("missing.txt", "does not exist"),
        ("grub.cfg/", "ends in '/' but is not a directory"),
        ("", "missing source"),
    ],
)
def test_bad_sources(gadget: Path, kernel: Path, source: str, message: str) -> None:
    with pytest.raises(ContentError, match=message):
        resolve_filesystem_content([(source, "/")], gadget, kernel_dir=kernel)


def test_kernel_ref_without_kernel(gadget: Path) -> None:
    with pytest.raises(ContentError, match="no kernel is given"):
        resolve_source("$kernel:dtbs/dtbs/", gadget)


def test_bad_targets(gadget: Path) -> None:
    with pytest.raises(ContentError, match="disallowed for security purposes"):
        resolve_filesystem_content([("grub.cfg", "../../etc/x")], gadget)
    with pytest.raises(ContentError, match="missing target"):
        resolve_filesystem_content([("grub.cfg", "")], gadget)


def test_images(gadget: Path) -> None:
    assert resolve_image("pc-core.img", gadget).read_bytes() == b"core"
    for name, message in (
        ("../secret", "disallowed"),
        ("boot-assets", "not a regular file"),
        ("", "missing image file name"),
    ):
        with pytest.raises(ContentError, match=message):
            resolve_image(name, gadget)
    assert issubclass(ContentError, UcimageError)


def test_staging_keeps_hard_links_and_symlinks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "one").write_bytes(b"x" * 10)
    os.link(src / "a" / "one", src / "two")
    os.symlink("a/one", src / "link")
    (src / "big").write_bytes(b"y" * 100)
    os.chmod(src / "big", 0o600)
    tree = stage(src, tmp_path / "stage", large_threshold=50)
    root = tree.root
    assert os.lstat(root / "a" / "one").st_ino == os.lstat(root / "two").st_ino
    assert os.readlink(root / "link") == "a/one"
    # the large file is an empty placeholder; its data is recorded, mode kept
    assert (root / "big").stat().st_size == 0
    assert (root / "big").stat().st_mode & 0o777 == 0o600
    [large] = tree.large_files()
    assert large.paths == ["/big"] and large.size == 100 and large.source == src / "big"
    assert tree.walk() == ["/a", "/a/one", "/big", "/link", "/two"]


def test_same_file_twice_gives_two_copies(gadget: Path, tmp_path: Path) -> None:
    entries = resolve_filesystem_content([("grub.cfg", "a"), ("grub.cfg", "b")], gadget)
    tree = stage(entries, tmp_path / "stage")
    assert os.lstat(tree.root / "a").st_ino != os.lstat(tree.root / "b").st_ino


def test_file_over_directory_parent_is_refused(gadget: Path, tmp_path: Path) -> None:
    entries = (
        ContentEntry(gadget / "grub.cfg", PurePosixPath("/x")),
        ContentEntry(gadget / "grub.cfg", PurePosixPath("/x/y")),
    )
    with pytest.raises(ContentError, match="is not a directory"):
        stage(entries, tmp_path / "stage")
