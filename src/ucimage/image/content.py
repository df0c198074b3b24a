"""Filesystem and bare content: resolving gadget references, staging trees.

Resolution (gadget rules, snapd semantics):

* ``source`` is relative to the gadget directory; ``$kernel:ASSET/PATH`` names a
  content entry of asset ASSET in the kernel's ``meta/kernel.yaml`` and resolves
  to ``KERNEL_DIR/PATH``;
* a source (after following symlinks) must stay inside its root directory, else
  ``disallowed for security purposes``;
* a trailing ``/`` on a directory source copies what is inside it; without it
  the directory itself lands in the target; a trailing ``/`` on a file source is
  an error;
* a trailing ``/`` on the target puts a file source inside that directory;
* later entries overwrite earlier ones.

Staging builds the tree a filesystem gets: small files are hard-linked (or
copied when linking is not allowed), large files may be replaced by empty
placeholders whose data the ext4 writer places itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from ucimage.image.spec import ContentEntry, ContentError

KERNEL_REF = "$kernel:"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def load_kernel_assets(kernel_dir: Path) -> dict[str, tuple[str, ...]]:
    """Asset name -> its content entries, from ``KERNEL_DIR/meta/kernel.yaml``."""
    kernel_yaml = kernel_dir / "meta" / "kernel.yaml"
    try:
        data = yaml.safe_load(kernel_yaml.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise ContentError(f"cannot read kernel info {kernel_yaml}: {exc}") from exc
    assets = (data or {}).get("assets") or {}
    if not isinstance(assets, dict):
        raise ContentError(f"cannot read kernel info {kernel_yaml}: assets is not a mapping")
    result: dict[str, tuple[str, ...]] = {}
    for name, asset in assets.items():
        content = (asset or {}).get("content") or [] if isinstance(asset, dict) else []
        result[str(name)] = tuple(str(c) for c in content)
    return result


def _resolve_under(root: Path, relative: str, source: str, what: str) -> Path:
    real_root = root.resolve()
    candidate = real_root / relative.lstrip("/")
    real = candidate.resolve()
    if not _inside(real, real_root):
        raise ContentError(
            f"content source {source!r}{what} points outside {root}: "
            "disallowed for security purposes",
            hint="content sources must stay inside the gadget (or kernel) snap",
        )
    if not os.path.lexists(candidate):
        raise ContentError(f"content source {source!r}{what} does not exist ({candidate})")
    return real


def resolve_source(
    source: str,
    gadget_dir: Path,
    *,
    kernel_dir: Path | None = None,
    kernel_assets: Mapping[str, Sequence[str]] | None = None,
    what: str = "",
) -> Path:
    """The real path of one content ``source`` (``what`` names the structure)."""
    if not source:
        raise ContentError(f"missing source{what}")
    if source.startswith(KERNEL_REF):
        ref = source[len(KERNEL_REF) :]
        asset, _, wanted = ref.partition("/")
        if not asset or not wanted:
            raise ContentError(
                f"invalid kernel asset reference {source!r}{what}",
                hint="the form is $kernel:<asset-name>/<content>",
            )
        if kernel_dir is None:
            raise ContentError(
                f"content source {source!r}{what} refers to the kernel, but no kernel is given"
            )
        assets = kernel_assets if kernel_assets is not None else load_kernel_assets(kernel_dir)
        if asset not in assets:
            raise ContentError(f"cannot find {asset!r} in kernel info from {kernel_dir}")
        if not any(_under_asset(wanted, listed) for listed in assets[asset]):
            raise ContentError(f"cannot find wanted kernel content {wanted!r} in {kernel_dir}")
        return _resolve_under(kernel_dir, wanted, source, what)
    if PurePosixPath(source).is_absolute():
        raise ContentError(
            f"content source {source!r}{what} is absolute: disallowed for security purposes"
        )
    return _resolve_under(gadget_dir, source, source, what)


def _under_asset(wanted: str, listed: str) -> bool:
    """*wanted* is a listed asset entry or lies inside a listed directory."""
    return wanted == listed or wanted.startswith(listed if listed.endswith("/") else listed + "/")


def _target_path(target: str, what: str) -> PurePosixPath:
    if not target:
        raise ContentError(f"missing target{what}")
    parts = PurePosixPath("/" + target).parts[1:]
    if ".." in parts:
        raise ContentError(
            f"content target {target!r}{what} leaves the filesystem: "
            "disallowed for security purposes"
        )
    return PurePosixPath("/", *parts)


def resolve_filesystem_content(
    items: Iterable[tuple[str, str]],
    gadget_dir: Path,
    *,
    kernel_dir: Path | None = None,
    kernel_assets: Mapping[str, Sequence[str]] | None = None,
    what: str = "",
) -> tuple[ContentEntry, ...]:
    """Gadget ``(source, target)`` pairs to resolved :class:`ContentEntry` items."""
    if kernel_assets is None and kernel_dir is not None:
        kernel_assets = load_kernel_assets(kernel_dir)
    entries = []
    for source, target in items:
        real = resolve_source(
            source, gadget_dir, kernel_dir=kernel_dir, kernel_assets=kernel_assets, what=what
        )
        contents_only = source.endswith("/")
        if contents_only and not real.is_dir():
            raise ContentError(
                f"content source {source!r}{what} ends in '/' but is not a directory"
            )
        entries.append(
            ContentEntry(
                source=real,
                target=_target_path(target, what),
                contents_only=contents_only,
                into_directory=target.endswith("/"),
            )
        )
    return tuple(entries)


def resolve_image(image: str, gadget_dir: Path, *, what: str = "") -> Path:
    """The real path of a bare structure's ``image:`` file."""
    if not image:
        raise ContentError(f"missing image file name{what}")
    if PurePosixPath(image).is_absolute():
        raise ContentError(
            f"content image {image!r}{what} is absolute: disallowed for security purposes"
        )
    path = _resolve_under(gadget_dir, image, image, what)
    if not path.is_file():
        raise ContentError(f"content image {image!r}{what} is not a regular file")
    return path


# ---- staging ---------------------------------------------------------------------------


@dataclass
class LargeFile:
    """A staged placeholder whose data the ext4 writer copies itself."""

    source: Path
    size: int
    paths: list[str] = field(default_factory=list)


@dataclass
class StagedTree:
    """A staged filesystem root plus what is needed to finish it."""

    root: Path
    #: placeholder inode number -> the file it stands for
    large: dict[int, LargeFile] = field(default_factory=dict)

    def walk(self) -> list[str]:
        """Every path below the root, '/'-rooted, parents before children, sorted."""
        found: list[str] = []

        def visit(directory: Path, prefix: str) -> None:
            for name in sorted(os.listdir(directory)):
                path = directory / name
                rel = f"{prefix}/{name}"
                found.append(rel)
                if path.is_dir() and not path.is_symlink():
                    visit(path, rel)

        visit(self.root, "")
        return found

    def large_files(self) -> list[LargeFile]:
        """Placeholders still present, with every path that links to each."""
        groups: dict[int, LargeFile] = {}
        for rel in self.walk():
            st = os.lstat(self.root / rel.lstrip("/"))
            if stat.S_ISREG(st.st_mode) and st.st_ino in self.large:
                info = self.large[st.st_ino]
                group = groups.setdefault(st.st_ino, LargeFile(info.source, info.size))
                group.paths.append(rel)
        return sorted(groups.values(), key=lambda g: g.paths[0])


class Stager:
    """Copies content entries into a staging root, the gadget way."""

    def __init__(self, root: Path, *, large_threshold: int | None = None) -> None:
        self.tree = StagedTree(root)
        self.large_threshold = large_threshold
        # source inode -> (first staged path, the source's own link count)
        self._seen: dict[tuple[int, int], tuple[Path, int]] = {}
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)

    def add(self, entry: ContentEntry) -> None:
        dst = self.tree.root / str(entry.target).lstrip("/")
        src = entry.source
        if src.is_dir():
            if not entry.contents_only:
                dst = dst / src.name
            self._copy_dir(src, dst)
        else:
            if entry.into_directory:
                dst = dst / src.name
            self._copy_node(src, dst)

    def add_directory(self, directory: Path) -> None:
        if not directory.is_dir():
            raise ContentError(f"filesystem content {directory} is not a directory")
        self._copy_dir(directory, self.tree.root)

    def _make_dirs(self, directory: Path) -> None:
        missing = []
        probe = directory
        while not os.path.lexists(probe):
            missing.append(probe)
            probe = probe.parent
        if probe.is_symlink() or not probe.is_dir():
            raise ContentError(f"cannot stage {directory}: {probe} is not a directory")
        for path in reversed(missing):
            path.mkdir()
            os.chmod(path, 0o755)

    def _remove(self, dst: Path) -> None:
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            dst.unlink()

    def _copy_dir(self, src: Path, dst: Path) -> None:
        if os.path.lexists(dst) and (dst.is_symlink() or not dst.is_dir()):
            self._remove(dst)
        self._make_dirs(dst)
        if dst != self.tree.root:
            os.chmod(dst, stat.S_IMODE(os.stat(src).st_mode))
        for name in sorted(os.listdir(src)):
            child = src / name
            if child.is_dir() and not child.is_symlink():
                self._copy_dir(child, dst / name)
            else:
                self._copy_node(child, dst / name)

    def _copy_node(self, src: Path, dst: Path) -> None:
        if dst == self.tree.root:
            raise ContentError(f"cannot stage file {src} as the filesystem root")
        self._make_dirs(dst.parent)
        if os.path.lexists(dst):
            self._remove(dst)
        st = os.lstat(src)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
            return
        if not stat.S_ISREG(st.st_mode):
            raise ContentError(f"content {src} is not a regular file, directory or symlink")
        key = (st.st_dev, st.st_ino)
        seen = self._seen.get(key)
        if seen is not None and seen[1] > 1 and os.path.lexists(seen[0]):
            # a hard link in the source tree stays one in the filesystem
            os.link(seen[0], dst)
            return
        mode = stat.S_IMODE(st.st_mode)
        if self.large_threshold is not None and st.st_size >= self.large_threshold:
            dst.touch()
            os.chmod(dst, mode)
            self.tree.large[os.lstat(dst).st_ino] = LargeFile(src, st.st_size)
        elif seen is None and _try_link(src, dst):
            pass
        else:
            # not linkable, or the same file named twice: independent copies
            shutil.copyfile(src, dst)
            os.chmod(dst, mode)
        if seen is None:
            self._seen[key] = (dst, st.st_nlink)


def _try_link(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK):
            return False
        raise
    return True


def stage(
    content: Path | Sequence[ContentEntry], root: Path, *, large_threshold: int | None = None
) -> StagedTree:
    """Stage filesystem content under *root* (created) and return the tree."""
    stager = Stager(root, large_threshold=large_threshold)
    if isinstance(content, Path):
        stager.add_directory(content)
    else:
        for entry in content:
            stager.add(entry)
    return stager.tree
