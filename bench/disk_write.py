#!/usr/bin/env python3
"""Benchmark: build an ext4 volume holding ~1 GB of files with ucimage's writer.

Prints the time of (a) a plain copy of the same files + sync, (b) ``mkfs.ext4 -d``
alone on a sparse image + sync, (c) ``ucimage.image.write_disk`` (GPT + ext4
with ownership/timestamps fixed, large files placed with copy_file_range, fsync),
(c') the writer with the fast path off (every file through mke2fs) and, for
reference, the writer making a vfat of the same files (large files placed /
all through mcopy), as
seconds and ratios, plus the writer's peak RSS (its process and every tool it
ran).  Goal (issue 4): (c) within 1.5x of (a), peak RSS under 150 MB.

Usage: .venv/bin/python bench/disk_write.py [--dir DIR] [--runs N] [--scale F]
The content has one 300 MB and one 600 MB kernel-like (incompressible) file and
~100 MB of small files; --scale multiplies every size.  Page cache is warm for
every variant (the content is read once before timing).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1_000_000
MiB = 1 << 20
REPO = Path(__file__).resolve().parents[1]

WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from ucimage.image import DiskSpec, FilesystemSpec, PartitionSpec, write_disk
size, part = int(sys.argv[4]), int(sys.argv[5])
threshold = None if sys.argv[6] == "none" else int(sys.argv[6])
kind = sys.argv[7]
spec = DiskSpec(
    path=Path(sys.argv[3]), size=size, seed=b"bench", timestamp=1_700_000_000,
    partitions=(PartitionSpec(1, 1 << 20, part, "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                "writable", filesystem=FilesystemSpec(kind, "writable",
                content=Path(sys.argv[2]))),),
)
written = write_disk(spec, large_threshold=threshold)
for name, took in written.steps:
    print(f"    {took:7.2f}s  {name}", file=sys.stderr)
"""


def make_content(root: Path, scale: float) -> int:
    """One 300 MB and one 600 MB random file plus small files; returns bytes."""
    total = 0
    big = root / "var" / "lib" / "snapd" / "snaps"
    big.mkdir(parents=True)
    for name, size in (("pc-kernel_1.snap", 300 * MB), ("core22_1.snap", 600 * MB)):
        size = int(size * scale)
        with open(big / name, "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 4 * MiB))
                f.write(chunk)
                left -= len(chunk)
        total += size
    small = root / "usr" / "share"
    count = int(2000 * scale) or 1
    for i in range(count):
        d = small / f"d{i % 40:02d}"
        d.mkdir(parents=True, exist_ok=True)
        size = 4096 + (i * 7919) % 96_000
        (d / f"file{i:05d}.bin").write_bytes(os.urandom(size))
        total += size
    return total


def warm(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(8 * MiB):
                    pass


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of a command and the tools it runs.

    GNU time reports the largest RSS among the command and the children it
    waited for (wait4 of a process after fork would count our own pages).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as out:
        start = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *argv], check=False)
        took = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(argv)}")
        return took, int(out.read().strip().splitlines()[-1])


def check_image(image: Path, content: Path, work: Path) -> None:
    """e2fsck the writer's ext4 and read the big files back with debugfs."""
    check = subprocess.run(
        ["e2fsck", "-fn", f"{image}?offset={MiB}"], capture_output=True, text=True
    )
    print(f"  e2fsck -fn on the writer's image: exit {check.returncode}")
    for big in sorted((content / "var/lib/snapd/snaps").iterdir()):
        dumped = work / "dumped"
        rel = big.relative_to(content)
        subprocess.run(
            ["debugfs", "-R", f"dump /{rel} {dumped}", f"{image}?offset={MiB}"],
            capture_output=True, check=True,
        )  # fmt: skip
        same = filecmp.cmp(big, dumped, shallow=False)
        print(f"  /{rel} read back with debugfs dump: {'same' if same else 'DIFFERS'}")
        dumped.unlink()


def fresh(path: Path, size: int) -> None:
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="work dir (default: a tmp dir)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ucimage-bench-", dir=args.dir))
    try:
        content = work / "content"
        print(f"generating content in {content} ...", flush=True)
        total = make_content(content, args.scale)
        part = ((int(total * 1.25) + 64 * MiB) // MiB) * MiB
        size = part + 2 * MiB
        warm(content)
        print(f"content: {total / MB:.0f} MB; partition {part / MiB:.0f} MiB; runs {args.runs}")
        results: dict[str, list[float]] = {
            "copy": [], "mkfs": [], "writer": [], "slow": [], "vfat": [], "vfat-mcopy": []
        }  # fmt: skip
        rss: dict[str, int] = {"writer": 0, "slow": 0, "mkfs": 0, "vfat": 0, "vfat-mcopy": 0}
        image = work / "disk.img"
        env_conf = work / "mke2fs.conf"
        sys.path.insert(0, str(REPO / "src"))
        from ucimage.image.ext4 import MKE2FS_CONF

        env_conf.write_text(MKE2FS_CONF)
        os.environ["MKE2FS_CONFIG"] = str(env_conf)
        for run in range(args.runs):
            copy = work / "copy"
            shutil.rmtree(copy, ignore_errors=True)
            took, _ = timed(["sh", "-c", f"cp -a '{content}' '{copy}' && sync"])
            results["copy"].append(took)
            shutil.rmtree(copy)
            fresh(image, size)
            took, peak = timed(
                ["sh", "-c", f"mkfs.ext4 -q -F -b 4096 -d '{content}' -E offset={MiB},"
                 f"nodiscard,lazy_itable_init=1 '{image}' {part // 1024}k && sync"]
            )  # fmt: skip
            results["mkfs"].append(took)
            rss["mkfs"] = max(rss["mkfs"], peak)
            variants = (
                ("writer", "default", "ext4"), ("slow", "none", "ext4"),
                ("vfat", "default", "vfat"), ("vfat-mcopy", "none", "vfat"),
            )  # fmt: skip
            for key, threshold, kind in variants:
                image.unlink(missing_ok=True)
                if threshold == "default":
                    from ucimage.image.ext4 import DEFAULT_LARGE_THRESHOLD

                    threshold = str(DEFAULT_LARGE_THRESHOLD)
                print(f"  run {run + 1} {key}:", file=sys.stderr)
                took, peak = timed(
                    [sys.executable, "-c", WRITER, str(REPO / "src"), str(content), str(image),
                     str(size), str(part), threshold, kind]
                )  # fmt: skip
                results[key].append(took)
                rss[key] = max(rss[key], peak)
                if key == "writer" and run == 0:
                    check_image(image, content, work)
        med = {k: statistics.median(v) for k, v in results.items()}
        print()
        print(f"{'variant':<44} {'median s':>9} {'runs':>24} {'x copy':>7}")
        names = {
            "copy": "cp -a + sync",
            "mkfs": "mkfs.ext4 -d alone + sync",
            "writer": "ucimage write_disk (large files placed)",
            "slow": "ucimage write_disk, all files via mke2fs",
            "vfat": "ucimage write_disk, vfat (large files placed)",
            "vfat-mcopy": "ucimage write_disk, vfat, all files via mcopy",
        }
        for key, label in names.items():
            runs = " ".join(f"{t:.2f}" for t in results[key])
            print(f"{label:<44} {med[key]:9.2f} {runs:>24} {med[key] / med['copy']:7.2f}")
        print()
        print(f"writer / copy+sync: {med['writer'] / med['copy']:.2f}x (goal <= 1.5x)")
        print(f"writer / mkfs.ext4 -d: {med['writer'] / med['mkfs']:.2f}x")
        print(
            f"peak RSS (process + tools): writer {rss['writer'] / 1024:.0f} MB, "
            f"writer all-mke2fs {rss['slow'] / 1024:.0f} MB, "
            f"vfat {rss['vfat'] / 1024:.0f} MB, "
            f"mkfs.ext4 -d {rss['mkfs'] / 1024:.0f} MB (goal < 150 MB)"
        )
        print(f"this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
