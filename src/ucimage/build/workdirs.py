"""A build's own temporary workdir (no ``-w``), and the sweep of dead builds' ones.

Made beside the output (so seed hard links and the final rename stay on one
filesystem) and deleted when the build ends.  A build killed outright (SIGKILL,
power loss) cannot delete it: each is marked with its owner (pid, the process's
start time and the boot id, so a reused pid is not taken for it), and a later
build into the same output directory deletes those whose owner is gone.  A
workdir holding a resume state (``--until``/``--thru``) is kept for ``--resume``.

A pid means something only in its pid namespace and boot: a workdir made in
another container, on another machine sharing the output directory (NFS) or
in an earlier boot is kept, as its owner cannot be checked from here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ucimage.build.runner import STATE_FILE

PREFIX = ".ucimage-work-"
OWNER_FILE = "owner"


def make_workdir(outdir: Path) -> Path:
    """A new workdir in *outdir*, marked as this process's."""
    outdir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=outdir))
    owner = process_identity(os.getpid())
    if owner is not None:
        try:
            (path / OWNER_FILE).write_text(owner + "\n")
        except OSError:
            # (a full disk) unmarked, no later build would ever delete it
            shutil.rmtree(path, ignore_errors=True)
            raise
    return path


def _here() -> str | None:
    """``BOOT_ID PIDNS`` of this process, or None when /proc cannot tell (none, or a
    /proc mounted for another pid namespace, where /proc/PID is another process)."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return None
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    if not boot or not pidns or " " in boot + pidns:
        return None
    return f"{boot} {pidns}"


def process_identity(pid: int) -> str | None:
    """``PID STARTTIME BOOT_ID PIDNS`` of a live process of this process's pid
    namespace, or None (gone, or no usable /proc)."""
    here = _here()
    if here is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the fields after the command name, which may hold spaces and parentheses
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    return f"{pid} {fields[19]} {here}"


def sweep_dead_workdirs(outdir: Path, keep: Path | None = None) -> list[Path]:
    """Delete the workdirs in *outdir* whose owner process is gone; return them."""
    swept: list[Path] = []
    here = _here()
    try:
        candidates = sorted(outdir.glob(PREFIX + "*"))
    except OSError:
        return swept
    for path in candidates:
        if path == keep or path.is_symlink() or not path.is_dir():
            continue
        if (path / STATE_FILE).exists():
            continue  # resumable: the user may still --resume it
        try:
            owner = (path / OWNER_FILE).read_text().strip()
            fields = owner.split()
            pid = int(fields[0])
        except (OSError, ValueError, IndexError):
            continue  # not marked: not known to be ours to delete
        if here is None or len(fields) != 4 or " ".join(fields[2:]) != here:
            continue  # another boot, machine or container: its pid means nothing here
        if process_identity(pid) == owner:
            continue  # its build is still running
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            swept.append(path)
    return swept
