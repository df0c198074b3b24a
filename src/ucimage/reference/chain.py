"""The whole device-maker story on the reference platform, one ``ucimage`` command at a time.

build the reference snaps → ``store init`` → ``store serve`` → ``store push`` →
``create-key`` (brand) → brand account + account-key signed by the store's root
→ ``store add-assertion`` → ``sign`` the model → ``snap`` (pc.img from the
store) → ``inspect`` → ``boot``.

Every step runs the real ``ucimage`` CLI in a subprocess (through
:mod:`ucimage.run`), so ``make demo`` and the end-to-end tests exercise exactly
what a user types; ``echo`` sees each command line before it runs.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import selectors
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ucimage.errors import UcimageError
from ucimage.reference.build import repo_reference_dir
from ucimage.reference.publish import CHANNELS
from ucimage.run import command_line, run, spawn

#: account ids of the demo's store authority and brand
STORE_AUTHORITY = "refstore"
BRAND = "refbrand"
BRAND_KEY = "brand"
STORE_ROOT_KEY = "store-root"
#: environment the ucimage subprocesses keep besides run.clean_env's
_PASS_ENV = ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "UCIMAGE_REFERENCE_DIR")


class ChainError(UcimageError):
    """A step of the reference chain failed."""

    code = "reference-chain"


@dataclass(frozen=True)
class ChainPaths:
    """Where each step of the chain writes, under one work directory."""

    work: Path

    @property
    def cache(self) -> Path:
        return self.work / "cache"

    @property
    def snaps(self) -> Path:
        return self.work / "snaps"

    @property
    def store(self) -> Path:
        return self.work / "store"

    @property
    def keys(self) -> Path:
        return self.work / "keys"

    @property
    def brand_account(self) -> Path:
        return self.work / "brand.account"

    @property
    def brand_account_key(self) -> Path:
        return self.work / "brand.account-key"

    @property
    def model_json(self) -> Path:
        return self.work / "model.json"

    @property
    def model(self) -> Path:
        return self.work / "model.assert"

    @property
    def image_dir(self) -> Path:
        return self.work / "image"

    @property
    def image(self) -> Path:
        return self.image_dir / "pc.img"

    @property
    def seed_manifest(self) -> Path:
        return self.image_dir / "seed.manifest"


class Ucimage:
    """Runs ``ucimage ARGS`` as a subprocess, showing each command first."""

    def __init__(
        self, echo: Callable[[str], None] | None = None, cache_dir: Path | None = None
    ) -> None:
        self.echo = echo
        self.user_env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        self.env = dict(self.user_env)
        if cache_dir is not None:
            # a private cache for the store-client commands (hermetic tests); the
            # user's cache is safe to share too: cached assertions are used only
            # when they verify against the roots of the build at hand
            self.env["XDG_CACHE_HOME"] = os.fspath(cache_dir)

    def argv(self, args: Sequence[str | os.PathLike[str]]) -> list[str]:
        return [sys.executable, "-m", "ucimage.cli.main", *(os.fspath(a) for a in args)]

    def show(self, args: Sequence[str | os.PathLike[str]], redirect: Path | None = None) -> None:
        if self.echo is not None:
            text = "$ ucimage " + command_line(args)
            self.echo(text + (f" > {redirect}" if redirect else ""))

    def __call__(
        self,
        *args: str | os.PathLike[str],
        stdout_to: Path | None = None,
        timeout: float = 600,
        user_cache: bool = False,
    ) -> str:
        self.show(args, stdout_to)
        env = self.user_env if user_cache else self.env
        proc = run(self.argv(args), env=env, timeout=timeout)
        out = proc.stdout.decode("utf-8", "replace")
        if stdout_to is not None:
            stdout_to.write_bytes(proc.stdout)
        return out

    def stream(
        self,
        *args: str | os.PathLike[str],
        on_line: Callable[[str], None],
        timeout: float = 900,
        user_cache: bool = False,
    ) -> int:
        """Run ``ucimage ARGS`` feeding its stdout and stderr lines to *on_line* as they come.

        Returns the exit status (a failing step is the caller's to report).
        """
        self.show(args)
        env = self.user_env if user_cache else self.env
        proc = spawn(self.argv(args), env=env)
        assert proc.stdout is not None and proc.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        buffers: dict[int, bytes] = {proc.stdout.fileno(): b"", proc.stderr.fileno(): b""}
        deadline = time.monotonic() + timeout
        open_streams = 2
        try:
            while open_streams and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.5):
                    fd = key.fd
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        open_streams -= 1
                        if buffers[fd]:
                            on_line(buffers[fd].decode("utf-8", "replace"))
                        continue
                    buffers[fd] += chunk
                    *lines, buffers[fd] = buffers[fd].split(b"\n")
                    for line in lines:
                        on_line(line.decode("utf-8", "replace").rstrip("\r"))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            sel.close()
            proc.stdout.close()
            proc.stderr.close()
        return proc.returncode


@contextmanager
def store_server(ucimage: Ucimage, store_dir: Path, timeout: float = 30) -> Iterator[str]:
    """``ucimage store serve DIR --port 0`` in the background; yields its URL, then stops it."""
    args = ["store", "serve", os.fspath(store_dir), "--host", "127.0.0.1", "--port", "0"]
    ucimage.show(args)
    proc = spawn(ucimage.argv(args), env=ucimage.env)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        url = None
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        seen = b""
        while url is None and time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            m = re.search(rb"http://127\.0\.0\.1:\d+", seen)
            if m:
                url = m.group(0).decode()
        sel.close()
        if url is None:
            proc.kill()
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            raise ChainError(f"the store server did not start: {err or 'no output'}")
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except Exception:  # stuck: make sure it goes
                proc.kill()
                proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def model_json_text(brand: str, timestamp: dt.datetime, sources: Path | None = None) -> str:
    """reference/model.json with the brand and the signing time filled in."""
    template = ((sources or repo_reference_dir()) / "model.json").read_text()
    stamp = timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return template.replace("@BRAND@", brand).replace("@TIMESTAMP@", stamp)


def build_snaps(u: Ucimage, paths: ChainPaths) -> dict[str, Path]:
    """``ucimage reference build``; returns name -> snap file."""
    # the device trusts the store's root the way snapd trusts Canonical's;
    # the Debian downloads stay in the user's cache, shared by every run
    out = u(
        "reference",
        "build",
        "--out",
        paths.snaps,
        "--trusted",
        paths.store / "root.assert",
        user_cache=True,
    )
    snaps: dict[str, Path] = {}
    for line in out.splitlines():
        name, _, path = line.partition("\t")
        if path:
            snaps[name] = Path(path)
    if sorted(snaps) != sorted(CHANNELS):
        raise ChainError(f"reference build produced {sorted(snaps)}, expected {sorted(CHANNELS)}")
    return snaps


def init_store(u: Ucimage, paths: ChainPaths) -> None:
    if paths.store.exists():
        shutil.rmtree(paths.store)
    u("store", "init", paths.store, "--authority-id", STORE_AUTHORITY)


def push_snaps(u: Ucimage, paths: ChainPaths, url: str, snaps: dict[str, Path]) -> None:
    token = paths.store / "upload-token"
    for name, snap in snaps.items():
        channels = ",".join(CHANNELS[name])
        u("store", "push", snap, "--release", channels, "--store", url, "--token-file", token)


def register_brand(u: Ucimage, paths: ChainPaths, url: str) -> None:
    """A brand key, and the brand's account + account-key signed by the store's root."""
    if paths.keys.exists():
        shutil.rmtree(paths.keys)
    keyring = ["--keyring", os.fspath(paths.keys)]
    u("create-key", BRAND_KEY, "--no-passphrase", *keyring)
    u("import-key", "--name", STORE_ROOT_KEY, paths.store / "keys" / "root.pem", *keyring)
    authority = ["--authority-key", STORE_ROOT_KEY, "--authority-id", STORE_AUTHORITY]
    u(
        "account",
        *authority,
        "--account",
        BRAND,
        "--username",
        BRAND,
        "--display-name",
        "Reference Brand",
        "--validation",
        "verified",
        *keyring,
        stdout_to=paths.brand_account,
    )
    u(
        "account-key",
        *authority,
        "--account",
        BRAND,
        "--key",
        BRAND_KEY,
        "--name",
        BRAND_KEY,
        *keyring,
        stdout_to=paths.brand_account_key,
    )
    token = paths.store / "upload-token"
    u(
        "store",
        "add-assertion",
        paths.brand_account,
        paths.brand_account_key,
        "--store",
        url,
        "--token-file",
        token,
    )


def sign_model(u: Ucimage, paths: ChainPaths) -> bytes:
    # the model must not predate the brand key's account-key (since = now)
    time.sleep(1)
    paths.model_json.write_text(model_json_text(BRAND, dt.datetime.now(dt.UTC)))
    u(
        "sign",
        "-k",
        BRAND_KEY,
        "--keyring",
        paths.keys,
        paths.model_json,
        stdout_to=paths.model,
    )
    return paths.model.read_bytes()


def build_image(u: Ucimage, paths: ChainPaths, url: str) -> Path:
    """``ucimage snap``: snaps, their assertions and the brand's account and
    account-key (the model's prerequisites, added by :func:`register_brand`)
    all come from the store."""
    if paths.image_dir.exists():
        shutil.rmtree(paths.image_dir)
    u(
        "snap",
        paths.model,
        "--store",
        url,
        "--trusted",
        paths.store / "root.assert",
        "-O",
        paths.image_dir,
    )
    if not paths.image.is_file():
        raise ChainError(f"ucimage snap wrote no {paths.image}")
    return paths.image


def read_seed_manifest(path: Path) -> dict[str, str]:
    """``seed.manifest``: snap name -> revision (comment lines skipped)."""
    revisions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "/" in line.split()[0]:
            continue
        name, rev = line.split()[:2]
        revisions[name] = rev
    return revisions


def prepare_image(u: Ucimage, paths: ChainPaths) -> dict[str, Path]:
    """Everything up to pc.img; the store runs only while it is needed."""
    paths.work.mkdir(parents=True, exist_ok=True)
    init_store(u, paths)
    snaps = build_snaps(u, paths)
    with store_server(u, paths.store) as url:
        push_snaps(u, paths, url, snaps)
        register_brand(u, paths, url)
        sign_model(u, paths)
        build_image(u, paths, url)
    return snaps
