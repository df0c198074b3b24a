"""Review of today's `ucimage snap` changes: the cases the new code mishandled.

* the sweep of dead builds' workdirs must not delete the workdir of a build that
  runs in another pid namespace (a container sharing the output directory): its
  pid means nothing in ours.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _unshare_pid() -> list[str]:
    tool = shutil.which("unshare")
    if tool is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root to make a pid namespace")
    probe = subprocess.run(
        [tool, "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a pid namespace: {probe.stderr.decode().strip()}")
    return [tool, "--pid", "--fork", "--mount-proc"]


def test_sweep_keeps_a_running_builds_workdir_of_another_pid_namespace(tmp_path: Path) -> None:
    from ucimage.build.workdirs import sweep_dead_workdirs

    out = tmp_path / "out"
    ready = tmp_path / "ready"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ucimage.build.workdirs import make_workdir\n"
        f"path = make_workdir(Path({str(out)!r}))\n"
        f"Path({str(ready)!r}).write_text(str(path))\n"
        "sys.stdin.read()\n"  # alive until the test closes stdin
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    # the "container": a build running in its own pid namespace (pid 1 there)
    proc = subprocess.Popen(
        [*_unshare_pid(), sys.executable, "-c", code], stdin=subprocess.PIPE, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.05)
        workdir = Path(ready.read_text())
        assert (workdir / "owner").exists()
        assert sweep_dead_workdirs(out) == []
        assert workdir.is_dir()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
