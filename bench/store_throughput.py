#!/usr/bin/env python3
"""Download throughput of the ucimage store vs a plain static file server, over loopback.

Builds a data set of uncompressed squashfs snaps (default 1 GiB in 4 files), pushes
them to a fresh ucimage store, then downloads every file from

* our store (``ucimage store serve``: uvicorn + Starlette, Range-capable), and
* Python's ``http.server`` serving the very same blob files,

with the same streaming HTTP client (1 MiB reads, data discarded), and prints MB/s for
each and the ratio (goal: >= 0.8).  ``--size 256M`` for a quick run; the machine is
shared, so run the full 1 GiB sparingly.

    .venv/bin/python bench/store_throughput.py [--size 1G] [--files 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from ucimage.run import run
from ucimage.store.admin import StoreAdmin
from ucimage.store.client import SnapRequest, StoreClient
from ucimage.store.server import init_store

CHUNK = 1 << 20


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)i?B?", text.strip(), re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]


def make_snaps(work: Path, total: int, files: int) -> list[Path]:
    out = []
    per_file = total // files
    for i in range(files):
        src = work / f"src{i}"
        (src / "meta").mkdir(parents=True)
        (src / "meta" / "snap.yaml").write_text(f"name: bench-{i}\nversion: '1'\n")
        with (src / "payload.bin").open("wb") as fh:
            left = per_file
            block = os.urandom(CHUNK)
            while left > 0:
                # vary each block cheaply so nothing deduplicates
                fh.write(block[: min(left, CHUNK)])
                block = block[1:] + block[:1]
                left -= CHUNK
        snap = work / f"bench-{i}.snap"
        # uncompressed: the bench measures serving, not xz
        run(["mksquashfs", src, snap, "-noappend", "-no-progress", "-all-root",
             "-noI", "-noD", "-noF", "-noX", "-no-fragments"])  # fmt: skip
        shutil.rmtree(src)
        out.append(snap)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(argv: list[str], url: str, cwd: Path | None = None) -> Iterator[str]:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def download_all(urls: list[str], parallel: int) -> tuple[int, float]:
    total = 0
    lock = threading.Lock()

    def one(url: str) -> None:
        nonlocal total
        got = 0
        with httpx.Client(timeout=120) as client, client.stream("GET", url) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_raw(CHUNK):
                got += len(chunk)
        with lock:
            total += got

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, urls))
    return total, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"), help="data set size")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=1, help="concurrent downloads")
    parser.add_argument("--rounds", type=int, default=2, help="best of N rounds per server")
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temp dir)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ucimage-bench-", dir=args.workdir))
    try:
        print(f"building {args.size / (1 << 20):.0f} MiB in {args.files} snaps...", flush=True)
        snaps = make_snaps(work, args.size, args.files)
        root = init_store(work / "store", authority_id="bench-store", key_bits=2048)
        port = free_port()
        serve = [sys.executable, "-m", "ucimage.cli.main", "store", "serve", str(root),
                 "--port", str(port)]  # fmt: skip
        ours_url = f"http://127.0.0.1:{port}"
        with server(serve, ours_url + "/v2/ucimage/snaps"):
            token = (root / "upload-token").read_text().strip()
            admin = StoreAdmin(ours_url, token)
            for snap in snaps:
                admin.push(snap, ["stable"])
                snap.unlink()
            with StoreClient(ours_url, env={}, use_cache=False, progress=False) as client:
                resolved = client.resolve([SnapRequest(f"bench-{i}") for i in range(args.files)])
            ours_urls = [r.url for r in resolved]
            ours = [download_all(ours_urls, args.parallel) for _ in range(args.rounds)]

        static_port = free_port()
        blobs = root / "blobs"
        static_urls = [
            f"http://127.0.0.1:{static_port}/{r.sha3_384[:2]}/{r.sha3_384}.snap" for r in resolved
        ]
        static_cmd = [sys.executable, "-m", "http.server", str(static_port),
                      "--bind", "127.0.0.1", "--directory", str(blobs)]  # fmt: skip
        with server(static_cmd, f"http://127.0.0.1:{static_port}/"):
            static = [download_all(static_urls, args.parallel) for _ in range(args.rounds)]

        def best(results: list[tuple[int, float]]) -> float:
            return max(n / t / 1e6 for n, t in results)

        ours_mbs, static_mbs = best(ours), best(static)
        size_mb = ours[0][0] / 1e6
        print(f"data set:          {size_mb:.0f} MB in {args.files} files, "
              f"{args.parallel} concurrent download(s), best of {args.rounds}")  # fmt: skip
        print(f"ucimage store:     {ours_mbs:8.1f} MB/s")
        print(f"static (http.server): {static_mbs:5.1f} MB/s")
        print(f"ratio ours/static: {ours_mbs / static_mbs:8.2f}  (goal >= 0.8)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
