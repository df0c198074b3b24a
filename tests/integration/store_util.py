"""Helpers for store tests: a ucimage store server in a subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ucimage.store.server import init_store

#: 2048-bit keys keep store creation fast; verification has no minimum key size
TEST_KEY_BITS = 2048


@dataclass
class RunningStore:
    url: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: list[str] = field(default_factory=list)

    @property
    def token(self) -> str:
        return (self.root / "upload-token").read_text().strip()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def make_store(root: Path, authority_id: str = "test-store") -> Path:
    return init_store(root, authority_id=authority_id, key_bits=TEST_KEY_BITS)


@contextmanager
def running_store(
    root: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 30
) -> Iterator[RunningStore]:
    """Serve *root* on a free port of 127.0.0.1; always stopped on exit."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ucimage.cli.main",
            "store",
            "serve",
            str(root),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=full_env,
    )
    log: list[str] = []
    ready = threading.Event()
    url: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            log.append(line)
            if line.startswith("serving ") and " on http://" in line and not url:
                url.append(line.rsplit(" on ", 1)[1])
                ready.set()
        ready.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    running = RunningStore("", root, proc, log)
    try:
        if not ready.wait(timeout) or not url:
            raise RuntimeError("store did not start:\n" + "\n".join(log))
        running.url = url[0]
        yield running
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        thread.join(timeout=5)


def ucimage(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ucimage CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "ucimage.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def make_snap(root: Path, name: str, version: str = "1.0", extra: str = "", size: int = 0) -> Path:
    """Pack a small snap (optionally with *size* bytes of payload) and return its path."""
    from ucimage.snaps import pack

    src = root / f"src-{name}-{version}"
    (src / "meta").mkdir(parents=True)
    (src / "meta" / "snap.yaml").write_text(f"name: {name}\nversion: '{version}'\n{extra}")
    if size:
        (src / "payload.bin").write_bytes(os.urandom(size))
    return pack(src, root / "out", source_date_epoch_value=1700000000)
