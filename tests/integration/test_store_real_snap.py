"""Debian's real `snap download` (snapd 2.57.6, no daemon) against our store on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.snapd_oracle import needs_snap
from ucimage.store.admin import StoreAdmin

from .store_util import RunningStore, make_store, running_store

pytestmark = [
    pytest.mark.integration,
    needs_snap,
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> Iterator[RunningStore]:
    root = make_store(tmp_path_factory.mktemp("store") / "store", authority_id="ourstore")
    with running_store(root, "--access-log") as server:
        admin = StoreAdmin(server.url, server.token)
        for name in ("hello-stub_7", "pc_1"):
            snap = testdata / "store" / "fixtures" / "snaps" / f"{name}.snap"
            admin.push(snap, ["stable"])
        yield server


def snap_download(store: RunningStore, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "SNAPPY_FORCE_API_URL": store.url + "/",
        "SNAPD_DEBUG": "1",
    }
    return subprocess.run(
        ["snap", "download", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def requests_since(store: RunningStore, mark: int) -> list[str]:
    time.sleep(0.2)  # let the reader thread catch up with the access log
    return [line for line in store.log[mark:] if '"GET ' in line or '"POST ' in line]


def blob_digest(store: RunningStore, name: str) -> str:
    snaps = StoreAdmin(store.url).list_snaps()
    return str(next(s for s in snaps if s["name"] == name)["revisions"][0]["sha3-384"])


def test_snap_download_stops_only_at_the_untrusted_root(
    store: RunningStore, tmp_path: Path
) -> None:
    mark = len(store.log)
    res = snap_download(store, tmp_path, "hello-stub")
    out = res.stdout + res.stderr
    # download and sha3-384 check pass; assertions are fetched; the chain ends at a root
    # release snapd does not trust (its roots are compiled in), exactly as with the stub
    assert res.returncode == 1, out
    assert 'Fetching assertions for "hello-stub"' in out
    assert "circular assertions are not expected: account (ourstore)" in out
    data = (tmp_path / "hello-stub_1.snap").read_bytes()
    assert hashlib.sha3_384(data).hexdigest() == blob_digest(store, "hello-stub")
    log = requests_since(store, mark)
    assert any("POST /v2/snaps/refresh" in x and " 200" in x for x in log), log
    assert any("/api/v1/snaps/download/" in x and " 200" in x for x in log), log
    for path in ("/v2/assertions/snap-revision/", "/v2/assertions/snap-declaration/16/",
                 "/v2/assertions/account-key/", "/v2/assertions/account/ourstore"):  # fmt: skip
        assert any(path in x and " 200" in x for x in log), (path, log)


def test_snap_download_resumes_partial_file(store: RunningStore, tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    ref.mkdir()
    snap_download(store, ref, "pc")
    full = (ref / "pc_1.snap").read_bytes()
    work = tmp_path / "work"
    work.mkdir()
    (work / "pc_1.snap.partial").write_bytes(full[:1000])
    mark = len(store.log)
    res = snap_download(store, work, "pc")
    assert "circular assertions are not expected" in res.stderr, res.stderr
    assert (work / "pc_1.snap").read_bytes() == full
    log = requests_since(store, mark)
    assert any("/api/v1/snaps/download/" in x and " 206" in x for x in log), log


def test_snap_download_unknown_snap(store: RunningStore, tmp_path: Path) -> None:
    res = snap_download(store, tmp_path, "no-such-snap")
    assert res.returncode == 1
    assert 'cannot download snap "no-such-snap": snap not found' in res.stderr


def test_snap_download_by_revision_and_channel(store: RunningStore, tmp_path: Path) -> None:
    res = snap_download(store, tmp_path, "pc", "--revision=1")
    assert (tmp_path / "pc_1.snap").is_file(), res.stderr
    res = snap_download(store, tmp_path, "pc", "--channel=22/edge")
    assert "no snap revision available as specified" in res.stderr, res.stderr


def test_snap_prepare_image_fetches_everything_in_one_refresh(
    tmp_path: Path, testdata: Path
) -> None:
    """`snap prepare-image` (s23 flow): model chain, store lookup, ONE refresh, all downloads."""
    fixtures = testdata / "store" / "fixtures"
    root = make_store(tmp_path / "store", authority_id="imagestore")
    with running_store(root, "--access-log") as server:
        admin = StoreAdmin(server.url, server.token)
        for snap in sorted((fixtures / "snaps").glob("*.snap")):
            admin.push(snap, ["stable", "22/stable"])
        mark = len(server.log)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "SNAPPY_FORCE_API_URL": server.url + "/",
            "UBUNTU_IMAGE_SKIP_COPY_UNVERIFIED_MODEL": "1",
        }
        res = subprocess.run(
            ["snap", "prepare-image", str(fixtures / "models" / "stub-pc.model"),
             str(tmp_path / "out")],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        out = res.stdout + res.stderr
        assert res.returncode == 1, out
        for name in ("snapd", "pc-kernel", "core22", "pc", "hello-stub"):
            assert f"Fetching {name}" in out
        assert "circular assertions are not expected: account (imagestore)" in out
        log = requests_since(server, mark)
        refreshes = [x for x in log if "POST /v2/snaps/refresh" in x]
        downloads = [x for x in log if "/api/v1/snaps/download/" in x and " 200" in x]
        assert len(refreshes) == 1, log
        assert " 200" in refreshes[0], log
        assert len(downloads) == 5, log
        # the model's store assertion is absent: a JSON 404 that snapd tolerates
        assert any("/v2/assertions/store/stubstoreid" in x and " 404" in x for x in log)
