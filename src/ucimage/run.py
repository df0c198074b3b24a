"""The one subprocess wrapper.

Every external program ucimage runs goes through :func:`run`: arguments may be
paths (converted with :func:`os.fspath`), the environment is clean and
predictable, and a failure raises :class:`CommandFailedError` whose message is a
copy-pasteable command line followed by the program's stderr.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ucimage.errors import CommandFailedError, ToolMissingError

log = logging.getLogger(__name__)

PathString = str | os.PathLike[str]

#: Debian package that ships each tool we call, for the "install it" hint.
TOOL_PACKAGES: dict[str, str] = {
    "mkfs.ext4": "e2fsprogs",
    "mke2fs": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "dumpe2fs": "e2fsprogs",
    "mkfs.vfat": "dosfstools",
    "fsck.vfat": "dosfstools",
    "mcopy": "mtools",
    "mdir": "mtools",
    "mmd": "mtools",
    "sfdisk": "fdisk",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "qemu-system-x86_64": "qemu-system-x86",
    "zstd": "zstd",
    "snap": "snapd",
    "grub-mkimage": "grub-common",
    "cpio": "cpio",
}

_SAFE_ENV_KEYS = ("PATH", "HOME", "TMPDIR", "SOURCE_DATE_EPOCH", "TZ")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal, predictable environment for child processes."""
    env = {k: os.environ[k] for k in _SAFE_ENV_KEYS if k in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    # sbin holds mkfs and friends; an unprivileged user's PATH often lacks it
    for sbin in ("/usr/sbin", "/sbin"):
        if sbin not in env["PATH"].split(":"):
            env["PATH"] += ":" + sbin
    env["LANG"] = "C.UTF-8"
    env["LC_ALL"] = "C.UTF-8"
    if extra:
        env.update(extra)
    return env


def which(tool: str) -> str | None:
    """Find *tool* on the clean PATH (which includes sbin)."""
    return shutil.which(tool, path=clean_env()["PATH"])


def require_tool(tool: str) -> str:
    """Path of *tool*, or a :class:`ToolMissingError` naming its package."""
    found = which(tool)
    if found is None:
        package = TOOL_PACKAGES.get(tool)
        hint = f"install it: apt-get install {package}" if package else None
        raise ToolMissingError(f"required program {tool!r} not found", hint=hint)
    return found


def command_line(argv: Sequence[PathString]) -> str:
    """A shell-quoted, copy-pasteable rendering of *argv*."""
    return shlex.join(os.fspath(a) for a in argv)


def run(
    argv: Sequence[PathString],
    *,
    env: Mapping[str, str] | None = None,
    cwd: PathString | None = None,
    input: bytes | None = None,
    capture: bool = True,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a program; raise :class:`CommandFailedError` when it fails.

    ``capture`` collects stdout and stderr (returned as bytes); without it the
    child writes to our stdout/stderr.
    """
    args = [os.fspath(a) for a in argv]
    if os.sep not in args[0]:
        args[0] = require_tool(args[0])
    log.debug("running: %s", command_line(args))
    try:
        proc = subprocess.run(
            args,
            env=clean_env(env),
            cwd=os.fspath(cwd) if cwd is not None else None,
            input=input,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailedError(
            f"command timed out after {timeout}s: {command_line(args)}", returncode=-1
        ) from exc
    if check and proc.returncode != 0:
        stderr = (proc.stderr or b"").decode("utf-8", "replace").strip()
        detail = f"\n{stderr}" if stderr else ""
        raise CommandFailedError(
            f"command failed with exit status {proc.returncode}: {command_line(args)}{detail}",
            returncode=proc.returncode,
            stderr=stderr,
        )
    return proc


def run_text(
    argv: Sequence[PathString],
    *,
    env: Mapping[str, str] | None = None,
    cwd: PathString | None = None,
    input: bytes | None = None,
    timeout: float | None = None,
) -> str:
    """Run a program and return its stdout as text."""
    proc = run(argv, env=env, cwd=cwd, input=input, timeout=timeout)
    return proc.stdout.decode("utf-8", "replace")


def spawn(
    argv: Sequence[PathString],
    *,
    env: Mapping[str, str] | None = None,
    cwd: PathString | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-running program (e.g. QEMU) with the same clean environment.

    stdin is ``/dev/null``; stdout and stderr are separate pipes the caller
    reads and closes.  The caller owns the process: it must wait for it or
    kill it.
    """
    args = [os.fspath(a) for a in argv]
    if os.sep not in args[0]:
        args[0] = require_tool(args[0])
    log.debug("starting: %s", command_line(args))
    return subprocess.Popen(
        args,
        env=clean_env(env),
        cwd=os.fspath(cwd) if cwd is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def source_date_epoch(default: int | None = None) -> int | None:
    """``SOURCE_DATE_EPOCH`` as an int, or *default* when unset or invalid."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses
    if value is None or not (value.strip().isascii() and value.strip().isdigit()):
        return default
    return int(value)


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "ucimage"


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ucimage"


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "ucimage"
