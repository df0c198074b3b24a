"""``ucimage pack``: build a ``.snap`` from a directory like ``snap pack``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ucimage.run import run, source_date_epoch
from ucimage.snaps.errors import InvalidSnapYamlError, SnapError
from ucimage.snaps.info import SnapInfo, load_yaml_strict, parse_snap_yaml

#: mksquashfs options snap pack uses (xz, no fragments, root-owned, no xattrs)
MKSQUASHFS_OPTIONS: tuple[str, ...] = (
    "-noappend",
    "-comp",
    "xz",
    "-no-fragments",
    "-no-progress",
    "-all-root",
    "-no-xattrs",
)


def snap_file_name(info: SnapInfo) -> str:
    """``NAME_VERSION_ARCH.snap``, the name ``snap pack`` gives its output."""
    return f"{info.name}_{info.version}_{info.arch_label}.snap"


def read_snap_dir_info(src_dir: Path) -> SnapInfo:
    snap_yaml = src_dir / "meta" / "snap.yaml"
    if not snap_yaml.is_file():
        raise InvalidSnapYamlError(
            f"cannot pack {str(src_dir)!r}: meta/snap.yaml not found",
            hint="a snap directory needs meta/snap.yaml with at least name and version",
        )
    try:
        info = parse_snap_yaml(snap_yaml.read_bytes())
    except InvalidSnapYamlError as exc:
        raise InvalidSnapYamlError(
            f"cannot pack {str(src_dir)!r}: {exc.message}", hint=exc.hint
        ) from exc
    return info


def validate_snap_dir(src_dir: Path, info: SnapInfo) -> None:
    """The container checks ``snap pack`` makes: readable files, existing app commands."""
    problems: list[str] = []
    for root, dirs, files in os.walk(src_dir):
        for name in dirs + files:
            path = Path(root) / name
            st = path.lstat()
            rel = path.relative_to(src_dir)
            if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o005 != 0o005:
                problems.append(f"{rel} should be world-readable and executable")
            elif stat.S_ISREG(st.st_mode) and not st.st_mode & 0o004:
                problems.append(f"{rel} should be world-readable")
    for app_name, app in (info.raw.get("apps") or {}).items():
        command = (app or {}).get("command")
        if not command:
            continue
        exe = str(command).split()[0]
        # "$SNAP/bin/x" and "bin/x" both mean a file inside the snap
        exe = exe.removeprefix("$SNAP/").lstrip("/")
        target = src_dir / exe
        if not target.exists():
            problems.append(f"app {app_name!r}: command {exe!r} not found")
        elif not os.access(target, os.X_OK) or not target.stat().st_mode & 0o111:
            problems.append(f"app {app_name!r}: command {exe!r} is not executable")
    if info.type == "gadget":
        gadget_yaml = src_dir / "meta" / "gadget.yaml"
        if not gadget_yaml.is_file():
            problems.append("gadget snaps need meta/gadget.yaml")
        else:
            try:
                doc = load_yaml_strict(gadget_yaml.read_bytes())
            except Exception as exc:  # any YAML error is a bad gadget.yaml
                problems.append(f"meta/gadget.yaml cannot be parsed: {exc}")
            else:
                if not isinstance(doc, dict):
                    problems.append("meta/gadget.yaml must be a mapping")
    if problems:
        raise SnapError(
            f"snap is unusable: {'; '.join(problems)}",
            hint="fix the snap directory and pack again",
        )


def pack(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    filename: str | None = None,
    source_date_epoch_value: int | None = None,
) -> Path:
    """Pack *src_dir* into ``out_dir/NAME_VERSION_ARCH.snap`` and return its path.

    Refuses an invalid ``meta/snap.yaml`` before writing anything.  The result
    is bit-identical for identical input when ``SOURCE_DATE_EPOCH`` is set (or
    *source_date_epoch_value* is given): mksquashfs then stamps the superblock
    with that time and clamps newer mtimes to it, exactly like ``snap pack``
    (whose output is byte-identical to ours).
    """
    src = Path(src_dir)
    if not src.is_dir():
        raise SnapError(f"cannot pack {str(src)!r}: not a directory")
    info = read_snap_dir_info(src)
    validate_snap_dir(src, info)
    out = Path(out_dir) if out_dir is not None else Path.cwd()
    out.mkdir(parents=True, exist_ok=True)
    target = out / (filename or snap_file_name(info))
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    epoch = source_date_epoch_value
    if epoch is None:
        epoch = source_date_epoch()
    env = {"SOURCE_DATE_EPOCH": str(epoch)} if epoch is not None else None
    try:
        run(["mksquashfs", src, tmp, *MKSQUASHFS_OPTIONS], env=env)
        tmp.chmod(0o644)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
