"""Store faults: SIGKILL mid-push, bad uploads, missing token (issue 3 acceptance)."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ucimage.assertions import load_assertion_files
from ucimage.errors import UcimageError
from ucimage.run import run
from ucimage.snaps import digest_file
from ucimage.store.admin import StoreAdmin
from ucimage.store.client import SnapRequest, StoreClient
from ucimage.store.errors import StoreHTTPError

from .store_util import RunningStore, make_snap, make_store, running_store

pytestmark = pytest.mark.integration


def wait_for(predicate: Any, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def state(root: Path) -> tuple[Any, ...]:
    """Everything a push could leave behind: rows, blobs, partial uploads."""
    db = sqlite3.connect(root / "store.db")
    try:
        rows = tuple(
            tuple(db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall())
            for t in ("snaps", "revisions", "releases", "assertions")
        )
    finally:
        db.close()
    blobs = tuple(sorted(str(p.relative_to(root)) for p in (root / "blobs").rglob("*")))
    return rows, blobs


def integrity_ok(root: Path) -> bool:
    db = sqlite3.connect(root / "store.db")
    try:
        result: str = db.execute("PRAGMA integrity_check").fetchone()[0]
        return result == "ok"
    finally:
        db.close()


def test_sigkill_mid_push_leaves_no_half_revision(tmp_path: Path) -> None:
    root = make_store(tmp_path / "store")
    rev1 = make_snap(tmp_path, "crashy", "1.0")
    rev2 = make_snap(tmp_path, "crashy", "2.0", size=200_000)
    rev2_hex = digest_file(rev2)[0]
    with running_store(root) as server:
        StoreAdmin(server.url, server.token).push(rev1, ["stable"])
    before = state(root)

    # 1. killed after the blob is in place, before the SQLite commit
    with running_store(root, env={"UCIMAGE_STORE_FAULT": "before-commit:60"}) as server:
        errors: list[Exception] = []

        def push() -> None:
            try:
                StoreAdmin(server.url, server.token).push(rev2, ["stable"])
            except UcimageError as exc:
                errors.append(exc)

        pusher = threading.Thread(target=push)
        pusher.start()
        blob = root / "blobs" / rev2_hex[:2] / f"{rev2_hex}.snap"
        wait_for(blob.exists)
        time.sleep(0.3)  # inside the transaction now (the fault point sleeps)
        server.kill()
        pusher.join(timeout=30)
        assert errors, "the push must fail when the server dies"

    # 2. killed while the upload is still streaming
    with running_store(root) as server:
        gate = threading.Event()

        def slow_body() -> Iterator[bytes]:
            yield b"hsqs" + b"\0" * 65532
            gate.wait(30)
            yield b"\0" * 1000

        def slow_push() -> None:
            try:
                httpx.post(
                    server.url + "/v2/ucimage/push",
                    content=slow_body(),
                    headers={"Authorization": f"Bearer {server.token}"},
                    timeout=30,
                )
            except httpx.HTTPError:
                pass

        uploader = threading.Thread(target=slow_push)
        uploader.start()
        incoming = root / "blobs" / ".incoming"
        wait_for(lambda: any(p.stat().st_size > 0 for p in incoming.iterdir()))
        server.kill()
        gate.set()
        uploader.join(timeout=30)
    assert any(incoming.iterdir())  # the half upload is on disk until the restart

    # restart: recovery drops the orphan blob and the half upload; nothing released is lost
    with running_store(root) as server:
        assert state(root) == before
        assert integrity_ok(root)
        assert not any(incoming.iterdir())
        snaps = StoreAdmin(server.url).list_snaps()
        assert [r["revision"] for r in snaps[0]["revisions"]] == [1]
        with StoreClient(server.url, env={}, use_cache=False) as client:
            (resolved,) = client.resolve([SnapRequest("crashy")])
            assert resolved.revision == 1
            trusted = load_assertion_files([root / "root.assert"])
            (got,) = client.fetch([resolved], tmp_path / "dl", trusted=trusted)
            assert got.verified
        # and the same upload now goes through as revision 2
        again = StoreAdmin(server.url, server.token).push(rev2, ["edge"])
        assert again["revision"] == 2 and not again["existing"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStore]:
    root = make_store(tmp_path_factory.mktemp("store") / "store")
    work = tmp_path_factory.mktemp("snaps")
    with running_store(root) as server:
        StoreAdmin(server.url, server.token).push(make_snap(work, "good-snap"), ["stable"])
        yield server


def squashfs_with(tmp_path: Path, snap_yaml: str | None) -> Path:
    src = tmp_path / "src"
    (src / "meta").mkdir(parents=True)
    if snap_yaml is not None:
        (src / "meta" / "snap.yaml").write_text(snap_yaml)
    else:
        (src / "meta" / "other").write_text("x")
    out = tmp_path / "bad.snap"
    run(["mksquashfs", src, out, "-noappend", "-no-progress", "-all-root"])
    return out


BAD_YAML = "name: Bad_Name\nversion: '1'\n"


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("not-squashfs", 400, "not-a-snap"),
        ("invalid-yaml", 400, "invalid-snap-yaml"),
        ("no-snap-yaml", 400, "invalid-snap-yaml"),
        ("empty", 400, "empty-upload"),
        ("name-dotdot", 400, "invalid-name"),
        ("name-slash", 400, "invalid-name"),
        ("no-token", 401, "unauthorized"),
        ("wrong-token", 401, "unauthorized"),
        ("name-mismatch", 400, "name-mismatch"),
    ],
)
def test_bad_uploads_are_clear_4xx_and_write_nothing(
    store: RunningStore, tmp_path: Path, case: str, status: int, code: str
) -> None:
    good = make_snap(tmp_path, "good-snap", "9.0")
    body: bytes = good.read_bytes()
    params: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {store.token}"}
    if case == "not-squashfs":
        body = b"PK\x03\x04 this is a zip file, not a snap" * 100
    elif case == "invalid-yaml":
        body = squashfs_with(tmp_path, BAD_YAML).read_bytes()
    elif case == "no-snap-yaml":
        body = squashfs_with(tmp_path, None).read_bytes()
    elif case == "empty":
        body = b""
    elif case == "name-dotdot":
        params["name"] = "../../etc"
    elif case == "name-slash":
        params["name"] = "good/snap"
    elif case == "no-token":
        headers = {}
    elif case == "wrong-token":
        headers = {"Authorization": "Bearer not-the-token"}
    elif case == "name-mismatch":
        params["name"] = "other-snap"
    before = state(store.root)
    resp = httpx.post(
        store.url + "/v2/ucimage/push", content=body, params=params, headers=headers, timeout=30
    )
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    errors = resp.json()["error-list"]
    assert errors[0]["code"] == code and errors[0]["message"]
    assert state(store.root) == before
    assert not any((store.root / "blobs" / ".incoming").iterdir())


def test_other_bad_requests_are_json(store: RunningStore) -> None:
    auth = {"Authorization": f"Bearer {store.token}"}
    cases = [
        ("POST", "/v2/ucimage/release", {"name": "../x", "revision": 1, "channels": ["stable"]},
         auth, 400, "invalid-name"),
        ("POST", "/v2/ucimage/release", {"name": "good-snap", "revision": 9,
         "channels": ["stable"]}, auth, 404, "revision-not-found"),
        ("POST", "/v2/ucimage/release", {"name": "good-snap", "revision": 1,
         "channels": ["latest/unstable"]}, auth, 400, "invalid-channel"),
        ("POST", "/v2/ucimage/release", {"name": "good-snap", "revision": 1,
         "channels": ["stable"]}, {}, 401, "unauthorized"),
        ("POST", "/v2/ucimage/release", [1, 2], auth, 400, "invalid-request"),
        ("POST", "/v2/snaps/refresh", {"nope": 1}, {}, 400, "invalid-request"),
        ("POST", "/v2/snaps/refresh", {"actions": [], "context": 5}, {}, 400, "invalid-request"),
        ("GET", "/v2/snaps/info/..%2F..", None, {}, 404, "not-found"),
        ("GET", "/v2/snaps/info/a..b", None, {}, 400, "invalid-name"),
        ("GET", "/v2/snaps/info/no-such-snap", None, {}, 404, "snap-not-found"),
        ("GET", "/v2/assertions/no-such-type/x", None, {}, 400, "invalid-type"),
        ("GET", "/v2/assertions/account", None, {}, 404, "not-found"),
        ("GET", "/v2/assertions/snap-declaration/16", None, {}, 400, "invalid-key"),
        ("GET", "/api/v1/snaps/download/..%2Fstore.db", None, {}, 404, "not-found"),
        ("GET", "/nowhere", None, {}, 404, "not-found"),
        ("GET", "/api/v1/snaps/download/x_99999999999999999999999.snap", None, {}, 404,
         "not-found"),
        ("GET", "/v2/assertions/account/x?max-format=99999999999999999999999", None, {}, 404,
         "not-found"),
        ("GET", "/v2/assertions/validation-set/16/a/b?sequence=99999999999999999999", None, {},
         400, "invalid-sequence"),
        ("POST", "/v2/ucimage/release", {"name": "good-snap", "revision": 2**70,
         "channels": ["stable"]}, auth, 400, "invalid-request"),
        ("POST", "/v2/snaps/refresh", {"actions": [{"action": "download", "name": "good-snap",
         "revision": 2**70}]}, {}, 200, None),
        ("POST", "/v2/ucimage/assertions", None, auth, 400, "invalid-assertion"),
    ]  # fmt: skip
    before = state(store.root)
    for method, path, payload, headers, status, code in cases:
        resp = httpx.request(method, store.url + path, json=payload, headers=headers)
        assert resp.status_code == status, (path, resp.text)
        if code is None:  # a refresh: the error is in the result
            assert resp.json()["results"][0]["result"] == "error"
            continue
        assert resp.json()["error-list"][0]["code"] == code, (path, resp.text)
    assert state(store.root) == before


def test_assertion_404_is_problem_json(store: RunningStore) -> None:
    resp = httpx.get(store.url + "/v2/assertions/store/nosuchstore?max-format=0")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["error-list"][0]["code"] == "not-found"


def test_require_auth_protects_reads(tmp_path: Path) -> None:
    root = make_store(tmp_path / "store")
    with running_store(root, "--require-auth") as server:
        resp = httpx.post(server.url + "/v2/snaps/refresh", json={"actions": []})
        assert resp.status_code == 401
        resp = httpx.post(
            server.url + "/v2/snaps/refresh",
            json={"context": [], "actions": []},
            headers={"Authorization": f"Bearer {server.token}"},
        )
        assert resp.status_code == 200
        StoreAdmin(server.url, server.token).push(make_snap(tmp_path, "private-snap"), ["stable"])
        # the client sends UBUNTU_STORE_AUTH as snapd does: base64 JSON {"t":"bearer",...}
        auth = base64.b64encode(json.dumps({"t": "bearer", "v": server.token}).encode())
        env = {"UBUNTU_STORE_AUTH": auth.decode()}
        with StoreClient(server.url, env=env, cache_dir=tmp_path / "c") as client:
            trusted = load_assertion_files([root / "root.assert"])
            (got,) = client.fetch(client.resolve(["private-snap"]), tmp_path / "o", trusted=trusted)
            assert got.verified
        anonymous = StoreClient(server.url, env={}, cache_dir=tmp_path / "c2")
        with anonymous, pytest.raises(StoreHTTPError, match="401"):
            anonymous.resolve(["private-snap"])


def test_tampered_assertion_is_refused(store: RunningStore, testdata: Path) -> None:
    asserts = testdata / "store" / "fixtures" / "asserts"
    key = (asserts / "stubbrand.account-key").read_bytes()
    model = (asserts / "stub-pc.model").read_bytes()
    tampered = model.replace(b"architecture: amd64", b"architecture: arm64")
    assert tampered != model
    auth = {"Authorization": f"Bearer {store.token}"}
    before = state(store.root)
    resp = httpx.post(
        store.url + "/v2/ucimage/assertions", content=key + b"\n" + tampered, headers=auth
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error-list"][0]["code"] == "invalid-signature"
    assert state(store.root) == before
    resp = httpx.post(
        store.url + "/v2/ucimage/assertions", content=key + b"\n" + model, headers=auth
    )
    assert resp.status_code == 201, resp.text
    assert [a["type"] for a in resp.json()["added"]] == ["account-key", "model"]
