"""Replay every request the real snap client sent in the captures against our store.

The captures (shared/testdata/store/captures) record what snapd 2.57.6 sends; our
store, seeded with the same fixture snaps and assertions, must answer each request
shape the way the real store does (store-api.md §9).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ucimage.assertions import decode

with warnings.catch_warnings():
    # starlette asks for "httpx2"; the httpx we pin works fine
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
from ucimage.snaps import digest_file
from ucimage.store.server import Store, create_app

from .store_util import make_store

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]

DROP_HEADERS = {"host", "content-length", "accept-encoding"}
RELEASES = {"hello-stub": ["stable", "edge"]}


def captures(testdata: Path) -> list[Path]:
    return sorted((testdata / "store" / "captures").glob("*.jsonl"))


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, testdata: Path
) -> Iterator[tuple[TestClient, dict[tuple[str, ...], bytes], dict[str, Path]]]:
    root = make_store(tmp_path_factory.mktemp("replay") / "store", authority_id="replay")
    store = Store(root)
    fixtures = testdata / "store" / "fixtures"
    snaps: dict[str, Path] = {}
    for snap in sorted((fixtures / "snaps").glob("*.snap")):
        name = snap.name.rsplit("_", 1)[0]
        snaps[name] = snap
        upload = store.new_upload()
        upload.write(snap.read_bytes())
        store.push(upload, upload.finish(), release=RELEASES.get(name, ["stable", "22/stable"]))
    known: dict[tuple[str, ...], bytes] = {}
    for path in sorted((fixtures / "asserts").iterdir()):
        data = path.read_bytes()
        store.add_assertions(data)
        a = decode(data)
        known[(a.type, *a.primary_key)] = a.encode()
    with TestClient(create_app(store)) as client:
        yield client, known, snaps
    store.db.close()


def request_headers(record: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in record["headers"] if k.lower() not in DROP_HEADERS}


def test_captures_exist(testdata: Path) -> None:
    assert len(captures(testdata)) >= 27


def test_replay_every_capture(
    testdata: Path,
    seeded: tuple[TestClient, dict[tuple[str, ...], bytes], dict[str, Path]],
) -> None:
    client, known, snaps = seeded
    replayed = 0
    for capture in captures(testdata):
        records = [json.loads(line) for line in capture.read_text().splitlines() if line]
        downloads = [r for r in records if r["method"] == "GET" and "/v2/" not in r["path"]]
        for record in records:
            where = f"{capture.name}: {record['method']} {record['raw_path']}"
            headers = request_headers(record)
            path: str = record["path"]
            if record["method"] == "POST" and path.endswith("/v2/snaps/refresh"):
                resp = client.post(
                    record["raw_path"], content=json.dumps(record["body_json"]), headers=headers
                )
                if path != "/v2/snaps/refresh":  # a base-URL prefix: not part of the API
                    assert resp.status_code == 404, where
                    assert resp.json()["error-list"][0]["code"] == "not-found", where
                    replayed += 1
                    continue
                check_refresh(client, resp, record, downloads, snaps, where)
            elif record["method"] == "GET" and path.startswith("/v2/assertions/"):
                resp = client.get(record["raw_path"], headers=headers)
                check_assertion(resp, path, known, where)
            else:
                continue  # stub download URLs: replayed through the refresh answers
            replayed += 1
    assert replayed > 100


def check_refresh(
    client: TestClient,
    resp: Any,
    record: dict[str, Any],
    downloads: list[dict[str, Any]],
    snaps: dict[str, Path],
    where: str,
) -> None:
    assert resp.status_code == 200, (where, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    assert int(resp.headers["snap-store-version"]) > 0
    actions = record["body_json"]["actions"]
    results = resp.json()["results"]
    assert len(results) == len(actions), where
    for action, result in zip(actions, results, strict=True):
        assert result["instance-key"] == action["instance-key"], where
        name = action["name"]
        if name not in snaps:
            assert result["result"] == "error", where
            assert result["name"] == name
            assert result["error"]["code"] == "name-not-found", where
            continue
        assert result["result"] == action["action"], (where, result)
        snap = result["snap"]
        hex_digest, _, size = digest_file(snaps[name])
        assert snap["name"] == name and isinstance(snap["revision"], int)
        assert len(snap["snap-id"]) == 32
        assert snap["download"]["sha3-384"] == hex_digest
        assert snap["download"]["size"] == size
        for field in record["body_json"]["fields"]:
            assert field in snap, (where, field)
        assert result["effective-channel"], where
        # download it with the headers the real client sent for this snap's file
        sent = next((d for d in downloads if f"/{name}_" in d["path"]), None)
        headers = request_headers(sent) if sent else {}
        got = client.get(snap["download"]["url"], headers=headers)
        data = snaps[name].read_bytes()
        if "Range" in headers:
            start = int(headers["Range"].removeprefix("bytes=").rstrip("-"))
            assert got.status_code == 206, where
            assert got.headers["content-range"] == f"bytes {start}-{size - 1}/{size}"
            assert got.content == data[start:]
        else:
            assert got.status_code == 200, where
            assert got.content == data
            assert got.headers["content-length"] == str(size)
            assert "content-encoding" not in got.headers


def check_assertion(resp: Any, path: str, known: dict[tuple[str, ...], bytes], where: str) -> None:
    parts = path.removeprefix("/v2/assertions/").split("/")
    key = tuple(parts)
    if parts[0] == "snap-revision" and len(parts) == 2:
        key = (*key, "global-upload")
    if key in known:
        assert resp.status_code == 200, (where, resp.text)
        assert resp.headers["content-type"] == "application/x.ubuntu.assertion"
        assert decode(resp.content).encode() == known[key]
    else:
        assert resp.status_code == 404, (where, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["error-list"][0]["code"] == "not-found"


def test_sequence_forms_of_validation_sets(
    seeded: tuple[TestClient, dict[tuple[str, ...], bytes], dict[str, Path]],
) -> None:
    client, known, _ = seeded
    vs = known[("validation-set", "16", "stubbrand", "vs1", "1")]
    for url in (
        "/v2/assertions/validation-set/16/stubbrand/vs1?sequence=latest",
        "/v2/assertions/validation-set/16/stubbrand/vs1?sequence=1",
        "/v2/assertions/validation-set/16/stubbrand/vs1/1",
    ):
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert resp.content.rstrip(b"\n") == vs.rstrip(b"\n")
    assert client.get("/v2/assertions/validation-set/16/stubbrand/vs1?sequence=2").status_code == (
        404
    )
    # a max-format below the assertion's format hides it
    decl = client.get("/v2/assertions/snap-declaration/16/PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4")
    assert decl.status_code == 200


def test_info_channel_map(
    seeded: tuple[TestClient, dict[tuple[str, ...], bytes], dict[str, Path]],
) -> None:
    client, _, _ = seeded
    resp = client.get(
        "/v2/snaps/info/hello-stub?fields=download&architecture=amd64",
        headers={"Snap-Device-Architecture": "amd64"},
    )
    assert resp.status_code == 200
    data = resp.json()
    assert data["name"] == "hello-stub"
    channels = [entry["channel"]["name"] for entry in data["channel-map"]]
    assert channels == ["stable", "edge"]
    assert data["channel-map"][0]["download"]["size"] == 4096


def test_architecture_filter(
    seeded: tuple[TestClient, dict[tuple[str, ...], bytes], dict[str, Path]],
) -> None:
    client, _, _ = seeded
    body = {"context": [], "actions": [
        {"action": "download", "instance-key": "download-1", "name": "pc", "epoch": None},
        {"action": "download", "instance-key": "download-2", "name": "hello-stub", "epoch": None},
    ]}  # fmt: skip
    arm = {"Snap-Device-Architecture": "arm64"}
    resp = client.post("/v2/snaps/refresh", json=body, headers=arm)
    pc, hello = resp.json()["results"]
    assert pc["result"] == "error" and pc["error"]["code"] == "revision-not-found"
    assert pc["error"]["extra"]["releases"] == []
    assert hello["result"] == "download"  # architectures: [all]


ACTION_KEYS = ["action", "instance-key", "name", "snap-id", "channel", "revision", "epoch"]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100),
    st.text(max_size=20),
    st.sampled_from(["download", "install", "refresh", "hello-stub", "pc", "22/stable", "edge"]),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(actions=st.lists(st.dictionaries(st.sampled_from(ACTION_KEYS), VALUES), max_size=5))
def test_fuzz_refresh_never_fails_badly(
    seeded: tuple[TestClient, dict[tuple[str, ...], bytes], dict[str, Path]],
    actions: list[dict[str, Any]],
) -> None:
    client, _, _ = seeded
    resp = client.post("/v2/snaps/refresh", json={"context": [], "actions": actions})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert len(results) == len(actions)
    for result in results:
        assert result["result"] in ("download", "install", "refresh", "error")


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["account", "snap-revision", "validation-set", "model", "bogus"]),
    keys=st.lists(st.text(alphabet="abcAB01-_.%", min_size=1, max_size=8), max_size=5),
    query=st.sampled_from(
        ["", "?max-format=0", "?max-format=x", "?sequence=latest", "?sequence=-1"]
    ),
)
def test_fuzz_assertion_paths(
    seeded: tuple[TestClient, dict[tuple[str, ...], bytes], dict[str, Path]],
    kind: str,
    keys: list[str],
    query: str,
) -> None:
    client, _, _ = seeded
    resp = client.get(f"/v2/assertions/{kind}/{'/'.join(keys)}{query}")
    assert resp.status_code in (200, 400, 404), resp.text
    if resp.status_code != 200:
        assert resp.json()["error-list"][0]["code"]
