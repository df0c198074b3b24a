"""Benchmark: a UC18 pc image from ~450 MB of snaps served by the local store's cache.

Snaps: kernel ~300 MB, base ~60 MB, snapd ~40 MB, gadget, 3 apps (pseudo-random,
incompressible payloads).  They are pushed to a self-hosted store, fetched once
to fill the cache, then ``ucimage snap`` is timed (cache hits only) next to a
plain copy of the same files.  Prints wall time, peak RSS (of the build
process and its children) and the image's allocated size vs the payload.

The copy is made fair to both sides:

* same bytes, same page-cache state: it copies the store cache's files, the
  very files the build reads (both hot after the warm-up build);
* same durability: each copied file is fsynced, as the build fsyncs its image.
  No global ``sync``: on a shared machine that also flushes other people's
  dirty pages into the copy's time;
* same disk state: copies and builds alternate, each writing where the other
  just freed its ~450 MB.  On this VM (ext4 mounted with ``discard`` on a
  virtual disk) writing into just-freed blocks and syncing takes ~0.3 s, into
  fresh blocks 1.2-1.9 s (the issue's "plain copy + sync takes 1.2 s"); the
  old bench timed its first copy on fresh blocks and the next two on reused
  ones, so which case a round hit depended on the round.
* same moment: the pairs run back to back, so the load from other users of the
  machine hits both; the median of the per-round ratios is printed too.

The build is timed in two kinds of pairs: asking the store for the current
revisions (as ``ubuntu-image snap`` always does; that one HTTP request costs the
import of httpx and its TLS stack) and with ``--offline`` (the cache only).

Each kind also times its steps before the image is written (``--until
build_volumes``; it writes the resume state too, so a few ms high): the part of
a build that does not grow with the payload, next to the part that does.

Goals (issue 5): within 1.5x of the copy, peak RSS < 150 MB, allocated size
within 10% of the payload.  Run: ``.venv/bin/python bench/build.py [--small]``.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.build_snaps import MODEL_UC18, TRUSTED_FILES, make_snap, sign_model  # noqa: E402

MB = 1 << 20
#: each timing is the median of this many runs (the machine is shared and noisy)
ROUNDS = 7


def program() -> list[str]:
    """The installed ``ucimage`` program, as users run it (else ``python -m``)."""
    script = Path(sys.executable).parent / "ucimage"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "ucimage.cli.main"]


def ucimage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        [sys.executable, "-m", "ucimage.cli.main", *args], capture_output=True, env=env
    )
    if proc.returncode:
        sys.exit(f"ucimage {' '.join(args)} failed:\n{proc.stderr.decode()}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plain_copy(files: list[Path], target: Path) -> float:
    """Seconds to copy FILES into TARGET and fsync them (the build fsyncs its image)."""
    target.mkdir()
    started = time.perf_counter()
    for src in files:
        dst = target / src.name
        shutil.copyfile(src, dst)
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="1/10 of the sizes (smoke run)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    scale = 0.1 if args.small else 1.0
    work = Path(tempfile.mkdtemp(prefix="ucimage-bench-", dir="/var/tmp"))
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache"), "SOURCE_DATE_EPOCH": "1700000000"}
    try:
        snaps_dir = work / "snaps"
        sizes = {"pc-kernel": 300, "core18": 60, "snapd": 40, "app1": 15, "app2": 15, "app3": 15}
        snaps = [
            make_snap(
                snaps_dir, "pc-kernel", "kernel", payload=int(sizes["pc-kernel"] * scale * MB)
            ),
            make_snap(snaps_dir, "core18", "base", payload=int(sizes["core18"] * scale * MB)),
            make_snap(snaps_dir, "snapd", "snapd", payload=int(sizes["snapd"] * scale * MB)),
            make_snap(snaps_dir, "pc", "gadget", base="core18", gadget_yaml="pc-amd64-uc18.yaml"),
        ]
        apps = ["app1", "app2", "app3"]
        for app in apps:
            snaps.append(
                make_snap(
                    snaps_dir, app, "app", base="core18", payload=int(sizes[app] * scale * MB)
                )
            )
        payload = sum(s.stat().st_size for s in snaps)
        model_headers = dict(MODEL_UC18)
        model_headers["required-snaps"] = apps
        model = sign_model(model_headers, work / "m.model")

        store = work / "store"
        ucimage("store", "init", str(store), "--authority-id", "benchstore", env=env)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ucimage.cli.main",
                "store",
                "serve",
                str(store),
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            import httpx

            for _ in range(300):
                try:
                    httpx.get(url + "/v2/snaps/info/none", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            for snap in snaps:
                channel = "18/stable" if snap.stem in ("pc", "pc-kernel") else "stable"
                ucimage(
                    "store", "push", str(snap), "--release", channel, "--store", url,
                    "--token-file", str(store / "upload-token"), env=env,
                )  # fmt: skip
            argv = ["snap", str(model), "--store", url, "--trusted", str(store / "root.assert")]
            for f in TRUSTED_FILES:
                argv += ["--trusted", str(f)]
            # time the code as installed, with its bytecode compiled: where
            # PYTHONDONTWRITEBYTECODE is set (as in this environment) every module edited
            # since its .pyc was written would be compiled again on every run
            compileall.compile_dir(REPO / "src", quiet=1)
            # warm the cache (downloads + assertions), then time a cached build
            ucimage(*argv, "-O", str(work / "warm"), env=env)
            shutil.rmtree(work / "warm")
            subprocess.run(["sync"], check=True)
            # a fresh parent, so its RUSAGE_CHILDREN covers only the build (and mkfs & co)
            measure = (
                "import resource, subprocess, sys, time\n"
                "t = time.perf_counter()\n"
                "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
                "t = time.perf_counter() - t\n"
                "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
                "print(t, ru.ru_maxrss, ru.ru_utime + ru.ru_stime)\n"
            )
            cached = sorted((work / "cache" / "ucimage" / "snaps").glob("*.snap"))
            if sum(f.stat().st_size for f in cached) != payload:
                sys.exit(f"the cache holds {len(cached)} snaps, not the {len(snaps)} pushed")
            # the same cached build twice: asking the store for the current revisions
            # (as ubuntu-image always does), and --offline (cache only, no HTTP at all)
            variants = {"store": argv, "offline": [*argv, "--offline"]}
            builds: dict[str, list[float]] = {k: [] for k in variants}
            cpus: dict[str, list[float]] = {k: [] for k in variants}
            copies: dict[str, list[float]] = {k: [] for k in variants}
            rss = 0.0
            out = work / "out"
            copy_dir = work / "copy"
            for _ in range(ROUNDS):
                for name, variant in variants.items():
                    # a pair: the copy writes where the last build's image was, and the
                    # build where the copy was
                    shutil.rmtree(out, ignore_errors=True)
                    subprocess.run(["sync"], check=True)
                    copies[name].append(plain_copy(cached, copy_dir))
                    shutil.rmtree(copy_dir)
                    subprocess.run(["sync"], check=True)
                    cmd = [*program(), *variant, "-O", str(out), "-q"]
                    proc = subprocess.run(
                        [sys.executable, "-c", measure, *cmd],
                        capture_output=True,
                        text=True,
                        env=env,
                    )
                    if proc.returncode:
                        sys.exit(proc.stderr)
                    seconds, kib, cpu = proc.stdout.split()
                    builds[name].append(float(seconds))
                    cpus[name].append(float(cpu))
                    rss = max(rss, int(kib) / 1024)
            # the part of a build that does not grow with the payload: every step
            # before the image is written (start-up, model, store, gadget, seed)
            before: dict[str, list[float]] = {k: [] for k in variants}
            for _ in range(ROUNDS):
                for name, variant in variants.items():
                    shutil.rmtree(work / "stopped", ignore_errors=True)
                    cmd = [*program(), *variant, "-O", str(work / "stopped"), "-q"]
                    cmd += ["-w", str(work / "stopped" / "work"), "--until", "build_volumes"]
                    started = time.perf_counter()
                    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
                    before[name].append(time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait(timeout=10)

        image = work / "out" / "pc.img"
        allocated = image.stat().st_blocks * 512
        print(f"payload (snaps)        {payload / MB:8.1f} MB in {len(snaps)} snaps")

        def runs(values: list[float]) -> str:
            return ", ".join(f"{v:.2f}" for v in values)

        print(f"load average           {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        labels = {"store": "ucimage snap (cached)", "offline": "ucimage snap --offline"}
        for name, label in labels.items():
            copy_s = statistics.median(copies[name])
            build_s = statistics.median(builds[name])
            pairs = zip(builds[name], copies[name], strict=True)
            ratio = statistics.median(b / c for b, c in pairs)
            print(f"plain copy + fsync     {copy_s:8.2f} s   median of {runs(copies[name])}")
            print(
                f"{label:<22} {build_s:8.2f} s   median of {runs(builds[name])} "
                f"({build_s / copy_s:.2f}x the copy, median per-pair ratio {ratio:.2f}x; "
                "goal 1.5x)"
            )
            print(
                f"  its CPU (user+sys)   {statistics.median(cpus[name]):8.2f} s   "
                f"median of {runs(cpus[name])}"
            )
            fixed = statistics.median(before[name])
            print(
                f"  before the image     {fixed:8.2f} s   median of {runs(before[name])} "
                "(--until build_volumes: start-up, model, store, gadget, seed)"
            )
            print(
                f"  writing the image    {build_s - fixed:8.2f} s   "
                f"(the rest of the build; {(build_s - fixed) / copy_s:.2f}x the copy)"
            )
        print(f"peak RSS               {rss:8.1f} MB (largest build process; goal < 150 MB)")
        print(
            f"image allocated        {allocated / MB:8.1f} MB "
            f"of {image.stat().st_size / MB:.1f} MB "
            f"({allocated / payload:.2f}x the payload; goal within 1.10x)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
