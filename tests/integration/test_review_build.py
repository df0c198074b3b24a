"""Review of today's `ucimage snap` changes: the cases the new code mishandled.

* the sweep of dead builds' workdirs must not delete the workdir of a build that
  runs in another pid namespace (a container sharing the output directory): its
  pid means nothing in ours;
* the build's umask 022 (for reproducible modes inside the image) must not make the
  output files world-readable: pc.img, .bmap and .zst keep the caller's umask, as
  they did before and as any tool creating a file does (and so does the -O
  directory a build with -w makes);
* two builds into the same -O wrote the same temporary image (.pc.img.partial): one
  failed, or ended "successful" with the other's half-written image; the second
  now waits for the first;
* a -w left by a --dry-run, or by a build that failed in its first step, was refused
  as "holds model.assert … that no ucimage build made": the very next command failed;
* SOURCE_DATE_EPOCH=² (a digit to str.isdigit, not to int) was a ValueError traceback;
* a full -w disk was a traceback when the build saved its first state, or in
  --dry-run, instead of "no space left on the device"; a full -O disk when the
  build's own workdir is made said "cannot make the directory" and left it there;
* the lock on -O must not need to read it: a build into a write-only -O (0333, a
  drop box) worked before and must still;
* two builds overlapping in threads of one process left the process umask at 022
  (the second saved the first's 022 as "the caller's" and restored it last).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.build_snaps import MODEL_UC18, TRUSTED_FILES, make_snap, sign_model, snaps_uc18
from ucimage.cli.main import main

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


@pytest.fixture(scope="module")
def uc18_args() -> Iterator[list[str]]:
    base = Path(tempfile.mkdtemp(prefix="ucimage-review-", dir="/tmp"))
    args = [str(sign_model(MODEL_UC18, base / "m.model"))]
    args += [a for f in TRUSTED_FILES for a in ("--trusted", str(f))]
    args += [a for s in snaps_uc18(base / "snaps") for a in ("--snap", str(s))]
    # readable by anyone: one test builds as an unprivileged user
    for path in [base, *base.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    yield args
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("umask", [0o077, 0o022, 0o002])
def test_output_files_honour_the_callers_umask(
    uc18_args: list[str], tmp_path: Path, umask: int
) -> None:
    out = tmp_path / "out"
    saved = os.umask(umask)
    try:
        rc = main(["snap", *uc18_args, "-O", str(out), "--bmap", "--compress", "zstd", "-q"])
        assert os.umask(umask) == umask  # the build gave the caller's umask back
    finally:
        os.umask(saved)
    assert rc == 0
    for name in ("pc.img", "pc.img.bmap", "pc.img.zst"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask, name


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ucimage.cli.main", *args]


def test_two_builds_into_one_output_dir(tmp_path: Path) -> None:
    base = tmp_path / "in"
    snaps = [
        make_snap(base, "snapd", "snapd"),
        make_snap(base, "core18", "base"),
        # a kernel big enough that the image is still being written when A is stopped
        make_snap(base, "pc-kernel", "kernel", payload=60_000_000),
        make_snap(base, "pc", "gadget", base="core18", gadget_yaml="pc-amd64-uc18.yaml"),
        make_snap(base, "hello-world", "app", base="core18"),
    ]
    args = [str(sign_model(MODEL_UC18, base / "m.model"))]
    args += [a for f in TRUSTED_FILES for a in ("--trusted", str(f))]
    args += [a for s in snaps for a in ("--snap", str(s))]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "SOURCE_DATE_EPOCH": "1700000000"}
    ref = tmp_path / "ref"
    subprocess.run(_cli("snap", *args, "-O", str(ref), "-q"), env=env, check=True, timeout=120)

    out = tmp_path / "out"
    a = subprocess.Popen(_cli("snap", *args, "-O", str(out), "-q"), env=env)
    b: subprocess.Popen[str] | None = None
    try:
        # stop A while it writes its image
        deadline = time.monotonic() + 60
        while not (out / ".pc.img.partial").exists():
            assert a.poll() is None and time.monotonic() < deadline
            time.sleep(0.001)
        a.send_signal(signal.SIGSTOP)
        assert not (out / "pc.img").exists(), "A ended before it could be stopped"
        b = subprocess.Popen(
            _cli("snap", *args, "-O", str(out), "--json"),
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert b.stdout is not None
        events = [json.loads(b.stdout.readline()) for _ in range(2)]
        # B waits for A before its first step (before: it wrote over A's temporary image)
        assert [e["event"] for e in events] == ["build-start", "message"]
        assert "waiting for another build" in events[1]["text"]
        time.sleep(0.5)
        assert b.poll() is None and not (out / "pc.img").exists()
        a.send_signal(signal.SIGCONT)
        assert a.wait(timeout=120) == 0
        rest = b.stdout.read()
        assert b.wait(timeout=120) == 0, rest
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert (out / "pc.img").read_bytes() == (ref / "pc.img").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["pc.img", "seed.manifest", "snaps.manifest"]


def test_a_workdir_left_by_dry_run_or_a_failed_first_step_is_reused(
    uc18_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    base = ["snap", *uc18_args, "-w", str(work), "-O", str(out), "-q"]
    assert main([*base, "--dry-run"]) == 0
    assert (work / "model.assert").exists()
    assert main(base) == 0, capsys.readouterr().err
    assert (out / "pc.img").exists()

    # a first step that fails (the model cannot be verified without --trusted)
    work2, out2 = tmp_path / "work2", tmp_path / "out2"
    untrusted = [a for a in uc18_args if a not in {"--trusted", *map(str, TRUSTED_FILES)}]
    assert main(["snap", *untrusted, "-w", str(work2), "-O", str(out2), "-q"]) != 0
    assert (work2 / "model.assert").exists()
    capsys.readouterr()
    assert main(["snap", *uc18_args, "-w", str(work2), "-O", str(out2), "-q"]) == 0, (
        capsys.readouterr().err
    )
    assert (out2 / "pc.img").exists()


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b2", "\u0661\u0662"])
def test_source_date_epoch_of_non_ascii_digits_is_a_usage_error(
    uc18_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    assert main(["snap", *uc18_args, "-O", str(tmp_path / "out"), "-q"]) == 2
    assert "SOURCE_DATE_EPOCH" in capsys.readouterr().err
    assert not (tmp_path / "out" / "pc.img").exists()


def test_overlapping_builds_in_threads_give_the_callers_umask_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ucimage.build.pipeline import ImageBuild

    both_in = threading.Barrier(2, timeout=30)
    first_done = threading.Event()
    seen: dict[str, int] = {}

    def fake_run(self: ImageBuild) -> int:
        both_in.wait()
        seen[self.name] = self.user_umask  # type: ignore[attr-defined]
        if self.name == "second":  # type: ignore[attr-defined]
            assert first_done.wait(timeout=30)
        return 0

    monkeypatch.setattr(ImageBuild, "_run", fake_run)

    def build(name: str) -> None:
        b = ImageBuild.__new__(ImageBuild)
        b.name = name  # type: ignore[attr-defined]
        b._store_client = None
        b.run()
        if name == "first":
            first_done.set()

    saved = os.umask(0o077)
    try:
        threads = [threading.Thread(target=build, args=(n,)) for n in ("first", "second")]
        threads[0].start()
        time.sleep(0.1)  # the first is in run() before the second
        threads[1].start()
        for t in threads:
            t.join(timeout=60)
        after = os.umask(0o077)
    finally:
        os.umask(saved)
    assert after == 0o077
    assert seen == {"first": 0o077, "second": 0o077}  # both know the caller's umask


def test_an_output_dir_made_by_a_build_with_a_workdir_honours_the_umask(
    uc18_args: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "new" / "out"
    saved = os.umask(0o077)
    try:
        rc = main(["snap", *uc18_args, "-w", str(tmp_path / "work"), "-O", str(out), "-q"])
    finally:
        os.umask(saved)
    assert rc == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "pc.img").stat().st_mode) == 0o600


def _on_a_full_tmpfs(full: Path, argv: list[str], before: str = "", after: str = "") -> str:
    """Run *argv* with a 64 KiB tmpfs, already full, mounted on *full* (a private mount
    namespace); check it fails with the clear no-space error; return its stdout."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root to mount a small tmpfs")
    full.mkdir()
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {full} || exit 99; "
        f"dd if=/dev/zero of={full}/fill bs=4k count=64 2>/dev/null; {before}"
        + " ".join(argv)
        + after
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    if proc.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr
    assert "error: no space left on the device" in proc.stderr
    return proc.stdout


@pytest.mark.parametrize("dry_run", [False, True], ids=["build", "dry-run"])
def test_full_workdir_disk_is_a_clear_error(
    uc18_args: list[str], tmp_path: Path, dry_run: bool
) -> None:
    work = tmp_path / "full"
    argv = _cli("snap", *uc18_args, "-w", str(work / "w"), "-O", str(tmp_path / "out"))
    if dry_run:
        argv.append("--dry-run")
    _on_a_full_tmpfs(work, argv, before=f"mkdir {work}/w; ")


def test_full_output_disk_before_the_build_starts(uc18_args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "full"
    argv = _cli("snap", *uc18_args, "-O", str(out))
    stdout = _on_a_full_tmpfs(out, argv, after=f"; rc=$?; ls -A {out}; exit $rc")
    assert stdout.split() == ["fill"]  # no workdir left behind


def test_a_write_only_output_dir(uc18_args: list[str]) -> None:
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to build as an unprivileged user")
    top = Path(tempfile.mkdtemp(prefix="ucimage-review-wo-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        drop = top / "drop"
        drop.mkdir()
        os.chown(drop, 65534, 65534)
        os.chmod(drop, 0o333)  # may write into it, not list it
        env = {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(drop),
            "PYTHONPATH": str(REPO / "src"),
            "SOURCE_DATE_EPOCH": "1700000000",
        }
        setpriv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        proc = subprocess.run(
            [*setpriv, *_cli("snap", *uc18_args, "-O", str(drop), "-q")],
            capture_output=True, text=True, env=env, cwd="/", timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert (drop / "pc.img").stat().st_uid == 65534
    finally:
        shutil.rmtree(top, ignore_errors=True)
