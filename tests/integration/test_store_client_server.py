"""Our store client against our store server on 127.0.0.1 (issue 3 acceptance)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ucimage.assertions import Database, decode_stream, load_assertion_files
from ucimage.store.admin import StoreAdmin
from ucimage.store.client import RetryPolicy, SnapRequest, StoreClient
from ucimage.store.errors import (
    DigestMismatchError,
    RevisionNotFoundError,
    SnapNotFoundError,
    StoreUnavailableError,
    VerificationError,
)

from .store_util import RunningStore, make_snap, make_store, running_store, ucimage

pytestmark = pytest.mark.integration

FIXTURES = ["core22_3", "hello-stub_7", "pc-kernel_2", "pc_1", "snapd_4"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> Iterator[RunningStore]:
    root = make_store(tmp_path_factory.mktemp("store") / "store")
    work = tmp_path_factory.mktemp("snaps")
    with running_store(root) as server:
        token = str(root / "upload-token")
        admin = StoreAdmin(server.url, server.token)
        # five snaps, pushed and released (the first two with the CLI)
        for i, name in enumerate(FIXTURES):
            snap = testdata / "store" / "fixtures" / "snaps" / f"{name}.snap"
            if i < 2:
                res = ucimage("store", "push", str(snap), "--release", "stable,22/stable",
                              "--store", server.url, "--token-file", token)  # fmt: skip
                assert res.returncode == 0, res.stderr
                assert "pushed revision 1" in res.stdout
            else:
                assert admin.push(snap, ["stable", "22/stable"])["revision"] == 1
        # hello-stub revision 2 on edge, revision 3 unreleased, a bigger snap on beta
        rev2 = make_snap(work, "hello-stub", "2.0")
        rev3 = make_snap(work, "hello-stub", "3.0")
        big = make_snap(work, "big-snap", "1.0", size=1 << 20)
        assert admin.push(rev2, ["edge"])["revision"] == 2
        assert admin.push(rev3)["revision"] == 3
        assert admin.push(big, ["beta"])["released"] == ["latest/beta"]
        res = ucimage("store", "release", "hello-stub", "3", "latest/candidate",
                      "--store", server.url, "--token-file", token)  # fmt: skip
        assert res.returncode == 0, res.stderr
        yield server


@pytest.fixture
def client(store: RunningStore, tmp_path: Path) -> Iterator[StoreClient]:
    with StoreClient(store.url, cache_dir=tmp_path / "cache", env={}) as c:
        yield c


def trusted(store: RunningStore) -> list:  # type: ignore[type-arg]
    return load_assertion_files([store.root / "root.assert"])


def test_list_shows_revisions_and_channels(store: RunningStore) -> None:
    res = ucimage("store", "list", "--store", store.url)
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stdout.splitlines() if x.startswith("hello-stub "))
    assert "1,2,3" in line
    assert "latest/edge=2" in line and "latest/candidate=3" in line


def test_resolve_by_channel_and_revision(client: StoreClient) -> None:
    got = client.resolve(
        [
            SnapRequest("hello-stub"),
            SnapRequest("hello-stub", channel="edge"),
            SnapRequest("hello-stub", channel="beta"),  # follows candidate
            SnapRequest("hello-stub", channel="latest/stable/hotfix"),  # follows stable
            SnapRequest("hello-stub", revision=3),
            SnapRequest("pc", channel="22/stable"),
            SnapRequest("big-snap", channel="edge"),  # follows beta
        ]
    )
    assert [r.revision for r in got] == [1, 2, 3, 1, 3, 1, 1]
    assert got[1].version == "2.0" and got[1].channel == "edge"
    assert got[5].type == "gadget" and got[5].channel == "22/stable"
    assert client.stats.refresh_requests == 1  # ONE request for all of them
    assert got[0].snap_id == got[1].snap_id
    assert len(got[0].snap_id) == 32


def test_well_known_snap_ids(client: StoreClient) -> None:
    snapd, core22 = client.resolve(["snapd", "core22"])
    assert snapd.snap_id == "PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4"
    assert core22.snap_id == "amcUKQILKXHHTlmSa7NMdnXSx02dNeeT"


def test_fetch_verifies_to_the_trusted_root_then_hits_cache(
    store: RunningStore, client: StoreClient, tmp_path: Path
) -> None:
    requests = [SnapRequest(n.split("_")[0]) for n in FIXTURES]
    resolved = client.resolve(requests)
    fetched = client.fetch(resolved, tmp_path / "out", trusted=trusted(store))
    assert all(f.verified and not f.from_cache for f in fetched)
    for f in fetched:
        data = f.path.read_bytes()
        assert hashlib.sha3_384(data).hexdigest() == f.resolved.sha3_384
        types = [a.type for a in f.assertions]
        assert types[-1] == "snap-revision" and "snap-declaration" in types
        assert "account-key" in types  # the store key, signed by the root
        # the stream re-checks on its own against the root
        db = Database(extra_trusted=trusted(store))
        for a in decode_stream(f.assertion_stream()):
            db.add(a)
        for a in decode_stream(f.assertion_stream()):
            db.check(a)
    stats = client.stats
    assert stats.download_requests == 5 and stats.assertion_requests > 0

    # a rebuild: same snaps, new destination, fresh client on the same cache
    with StoreClient(store.url, cache_dir=client.cache_dir, env={}) as again:
        second = again.fetch(again.resolve(requests), tmp_path / "out2", trusted=trusted(store))
        assert all(f.from_cache and f.verified for f in second)
        assert again.stats.download_requests == 0
        assert again.stats.assertion_requests == 0
        assert again.stats.bytes_downloaded == 0
        assert [f.assertions for f in second] == [f.assertions for f in fetched]
        # outputs are copies: changing one leaves the cache intact
        with second[0].path.open("ab") as fh:
            fh.write(b"junk")
        cached = again.cached_path(second[0].resolved)
        assert cached.stat().st_size == second[0].resolved.size
        assert cached.stat().st_mode & 0o222 == 0


def test_untrusted_root_is_refused(client: StoreClient, tmp_path: Path) -> None:
    resolved = client.resolve(["hello-stub"])
    with pytest.raises(VerificationError, match="circular assertions are not expected"):
        client.fetch(resolved, tmp_path / "out")
    # the snap itself was downloaded and checked before the assertions
    assert (tmp_path / "out" / "hello-stub_1.snap").is_file()


def test_cli_download_like_snap_download(store: RunningStore, tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    res = ucimage("download", "hello-stub", "--channel", "edge", "--target-directory",
                  str(tmp_path), "--store", store.url, "--trusted",
                  str(store.root / "root.assert"), env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "hello-stub_2.snap").is_file()
    kinds = [a.type for a in decode_stream((tmp_path / "hello-stub_2.assert").read_bytes())]
    assert kinds == ["account-key", "snap-declaration", "snap-revision"]
    # without the root: like snap download, the file is there but the command fails
    res = ucimage("download", "pc", "--target-directory", str(tmp_path),
                  "--store", store.url, env=env)  # fmt: skip
    assert res.returncode == 1
    assert "circular assertions are not expected" in res.stderr
    assert "--trusted" in res.stderr
    # UBUNTU_STORE_URL instead of --store
    res = ucimage("download", "nope-snap", env={**env, "UBUNTU_STORE_URL": store.url})
    assert res.returncode == 1
    assert 'cannot download snap "nope-snap": snap not found' in res.stderr


def test_cli_download_revision(store: RunningStore, tmp_path: Path) -> None:
    """--revision picks an exact revision, released or not (3 is only in candidate)."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    trust = ("--store", store.url, "--trusted", str(store.root / "root.assert"))
    res = ucimage("download", "hello-stub", "--revision", "3", "--target-directory",
                  str(tmp_path), *trust, env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.glob("hello-stub_*")) == [
        "hello-stub_3.assert", "hello-stub_3.snap"]  # fmt: skip
    snap = (tmp_path / "hello-stub_3.snap").read_bytes()
    (rev,) = [
        a for a in decode_stream((tmp_path / "hello-stub_3.assert").read_bytes())
        if a.type == "snap-revision"
    ]  # fmt: skip
    assert rev.header("snap-revision") == "3"
    digest = base64.urlsafe_b64encode(hashlib.sha3_384(snap).digest()).decode().rstrip("=")
    assert rev.header("snap-sha3-384") == digest
    assert rev.header("snap-size") == str(len(snap))
    # stable serves revision 1: a different file
    res = ucimage("download", "hello-stub", "--target-directory", str(tmp_path), *trust, env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "hello-stub_1.snap").read_bytes() != snap
    # a revision the store does not have: named, nothing written
    res = ucimage("download", "hello-stub", "--revision", "99", "--target-directory",
                  str(tmp_path / "none"), *trust, env=env)  # fmt: skip
    assert res.returncode == 1
    assert "revision 99" in res.stderr and "Traceback" not in res.stderr
    assert not list((tmp_path / "none").glob("*.snap"))
    # --revision and --channel exclude each other
    res = ucimage("download", "hello-stub", "--revision", "3", "--channel", "edge", *trust)
    assert res.returncode == 2 and "not allowed with argument" in res.stderr


def test_unknown_snap_and_missing_revision(client: StoreClient) -> None:
    with pytest.raises(SnapNotFoundError, match='"no-such-snap": snap not found'):
        client.resolve(["no-such-snap"])
    with pytest.raises(RevisionNotFoundError, match="revision 99") as exc:
        client.resolve([SnapRequest("hello-stub", revision=99)])
    assert exc.value.hint is not None and "stable" in exc.value.hint
    with pytest.raises(RevisionNotFoundError, match="channel '9/stable'"):
        client.resolve([SnapRequest("pc", channel="9/stable")])
    with pytest.raises(SnapNotFoundError, match=r"snap-a.*snap-b"):
        client.resolve(["snap-a", "snap-b"])


def test_resume_from_partial(store: RunningStore, client: StoreClient, tmp_path: Path) -> None:
    (resolved,) = client.resolve([SnapRequest("big-snap", channel="beta")])
    full = tmp_path / "ref.snap"
    client.download(resolved, full)
    out = tmp_path / "out"
    out.mkdir()
    partial = out / (resolved.filename + ".partial")
    partial.write_bytes(full.read_bytes()[:1_000_000])
    with StoreClient(store.url, cache_dir=tmp_path / "other-cache", env={}) as fresh:
        fresh.download(resolved, out / resolved.filename)
        assert fresh.stats.bytes_downloaded == resolved.size - 1_000_000
    assert (out / resolved.filename).read_bytes() == full.read_bytes()
    assert not partial.exists()


def test_wrong_digest_fails_after_one_retry(
    store: RunningStore, client: StoreClient, tmp_path: Path
) -> None:
    (resolved,) = client.resolve([SnapRequest("hello-stub", revision=3)])
    blob = store.root / "blobs" / resolved.sha3_384[:2] / f"{resolved.sha3_384}.snap"
    saved = blob.read_bytes()
    try:
        blob.write_bytes(saved[:-1] + bytes([saved[-1] ^ 0xFF]))  # same size, other bytes
        with pytest.raises(DigestMismatchError, match='sha3-384 mismatch for "hello-stub"'):
            client.download(resolved, tmp_path / resolved.filename)
        assert client.stats.download_requests == 2
        assert not (tmp_path / resolved.filename).exists()
        assert not (tmp_path / (resolved.filename + ".partial")).exists()
    finally:
        blob.write_bytes(saved)


def test_dead_server_fails_after_retries(tmp_path: Path) -> None:
    policy = RetryPolicy(attempts=4, initial_delay=0.05, factor=2, max_total=5, timeout=1)
    with StoreClient("http://127.0.0.1:9", cache_dir=tmp_path, env={}, json_retry=policy) as c:
        start = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="cannot reach the store") as exc:
            c.resolve(["hello-stub"])
        assert time.monotonic() - start >= 0.05 + 0.1 + 0.2  # three back-offs happened
    assert exc.value.hint is not None


def test_twenty_concurrent_downloads_verify(store: RunningStore, tmp_path: Path) -> None:
    with StoreClient(store.url, env={}, use_cache=False) as c:
        resolved = c.resolve([SnapRequest("big-snap", channel="beta"), "hello-stub", "pc", "snapd"])
    roots = trusted(store)

    def one(i: int) -> bool:
        with StoreClient(store.url, env={}, cache_dir=tmp_path / f"c{i}") as each:
            snap = resolved[i % len(resolved)]
            (got,) = each.fetch([snap], tmp_path / f"d{i}", trusted=roots)
            return got.verified and got.path.stat().st_size == snap.size

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert results == [True] * 20


def test_fetch_into_cache_only(store: RunningStore, client: StoreClient) -> None:
    (resolved,) = client.resolve(["pc-kernel"])
    (got,) = client.fetch([resolved], None, trusted=trusted(store))
    assert got.path == client.cached_path(resolved)
    shutil.rmtree(client.cache_dir)


def test_add_assertion_cli_and_progress(
    store: RunningStore, testdata: Path, tmp_path: Path
) -> None:
    asserts = testdata / "store" / "fixtures" / "asserts"
    files = [asserts / n for n in ("stubbrand.account", "stubbrand.account-key", "stub-pc.model")]
    args = ["store", "add-assertion", *map(str, files), "--store", store.url]
    res = ucimage(*args)
    assert res.returncode == 1 and "upload token" in res.stderr
    res = ucimage(*args, "--token-file", str(store.root / "upload-token"))
    assert res.returncode == 0, res.stderr
    assert "added model 16/stubbrand/stub-pc" in res.stdout
    got = httpx.get(store.url + "/v2/assertions/model/16/stubbrand/stub-pc?max-format=0")
    assert got.status_code == 200
    assert got.content.rstrip(b"\n") == (asserts / "stub-pc.model").read_bytes().rstrip(b"\n")
    res = ucimage("store", "add-assertion", str(tmp_path / "missing"), "--store", store.url)
    assert res.returncode == 1 and "cannot read" in res.stderr
    # rich progress bars when asked (on a terminal by default) do not get in the way
    with StoreClient(store.url, env={}, cache_dir=tmp_path / "c", progress=True) as c:
        (got_snap,) = c.fetch(c.resolve(["snapd"]), tmp_path / "o", trusted=trusted(store))
        assert got_snap.verified


def test_cli_uses_ucimage_store_env(store: RunningStore, tmp_path: Path) -> None:
    snap = make_snap(tmp_path, "env-snap", "1.0")
    env = {"UCIMAGE_STORE_URL": store.url, "UCIMAGE_STORE_TOKEN": store.token}
    res = ucimage("store", "push", str(snap), "--release", "beta", env=env)
    assert res.returncode == 0, res.stderr
    assert "env-snap: pushed revision 1" in res.stdout
    res = ucimage("store", "push", str(snap), env=env)  # the same bytes again
    assert "already uploaded as revision 1" in res.stdout
    res = ucimage("store", "list", "--json", env={"UCIMAGE_STORE_URL": store.url})
    snaps = {s["name"]: s for s in json.loads(res.stdout)}
    assert snaps["env-snap"]["channels"][0]["channel"] == "latest/beta"
    url_only = {"UCIMAGE_STORE_URL": store.url}
    res = ucimage("store", "release", "env-snap", "1", "stable", env=url_only)
    assert res.returncode == 1 and "UCIMAGE_STORE_TOKEN" in res.stderr
