"""Store client without a server: request shapes vs the captures, env, retries, errors."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ucimage.store.channels import Channel, parse_channel
from ucimage.store.client import (
    JSON_RETRY,
    RetryPolicy,
    SnapRequest,
    StoreClient,
    auth_header_from_env,
    resolve_store_urls,
)
from ucimage.store.errors import (
    ChannelError,
    RevisionNotFoundError,
    SnapNotFoundError,
    StoreError,
    StoreHTTPError,
)

CAPTURES = Path(__file__).resolve().parents[2].parent / "shared/testdata/store/captures"
IGNORED = {"host", "content-length", "accept-encoding", "user-agent", "connection"}


def capture(name: str) -> list[dict[str, Any]]:
    path = next(CAPTURES.glob(f"{name}*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response], tmp_path: Path, **kwargs: Any
) -> StoreClient:
    env = kwargs.pop("env", {})
    client = StoreClient("http://store.test", cache_dir=tmp_path, env=env, **kwargs)
    client._http = httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True)
    return client


def header_map(headers: list[list[str]] | httpx.Headers) -> dict[str, str]:
    items = headers.items() if isinstance(headers, httpx.Headers) else headers
    return {k.lower(): v for k, v in items if k.lower() not in IGNORED}


def refresh_answer(name: str = "hello-stub") -> dict[str, Any]:
    return {
        "results": [
            {
                "result": "download",
                "instance-key": "download-1",
                "name": name,
                "snap-id": "X" * 32,
                "effective-channel": "stable",
                "snap": {
                    "name": name,
                    "snap-id": "X" * 32,
                    "revision": 7,
                    "download": {"url": "/dl/x.snap", "sha3-384": "ab" * 48, "size": 10},
                },
            }
        ]
    }


@pytest.mark.parametrize(
    ("scenario", "request_", "env"),
    [
        ("s12", SnapRequest("hello-stub"), {}),
        ("s02", SnapRequest("hello", channel="22/edge"), {}),
        ("s03", SnapRequest("hello", revision=42), {}),
        ("s05", SnapRequest("hello"), {"UBUNTU_STORE_ID": "mybrandstore",
                                       "UBUNTU_STORE_ARCH": "arm64"}),
        ("s06", SnapRequest("hello"), {
            "UBUNTU_STORE_AUTH": base64.b64encode(b'{"t":"bearer","v":"TOKEN123"}').decode()}),
    ],
)  # fmt: skip
def test_refresh_request_matches_snapd(
    tmp_path: Path, scenario: str, request_: SnapRequest, env: dict[str, str]
) -> None:
    want = capture(scenario)[0]
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json=refresh_answer(request_.name))

    client = mock_client(handler, tmp_path, env=env, arch=None if env else "amd64")
    client.resolve([request_])
    (req,) = seen
    assert req.method == "POST" and req.url.path == "/v2/snaps/refresh"
    assert json.loads(req.content) == want["body_json"]
    assert header_map(req.headers) == header_map(want["headers"])
    assert req.headers["user-agent"].startswith("ucimage/")
    assert "(series 16; classic)" in req.headers["user-agent"]


def test_download_and_assertion_headers_match_snapd(tmp_path: Path) -> None:
    records = capture("s14")
    want_download = next(r for r in records if r["path"].startswith("/download/"))
    want_assert = next(r for r in records if r["path"].startswith("/v2/assertions/snap-rev"))
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.url.path == "/v2/snaps/refresh":
            return httpx.Response(200, json=refresh_answer())
        if req.url.path.startswith("/dl/"):
            if "range" in req.headers:
                rng = {"Content-Range": "bytes 1-9/10"}
                return httpx.Response(206, stream=httpx.ByteStream(b"x" * 9), headers=rng)
            return httpx.Response(200, stream=httpx.ByteStream(b"x" * 10))
        return httpx.Response(
            404,
            json={"error-list": [{"code": "not-found", "message": "nope"}]},
            headers={"Content-Type": "application/problem+json"},
        )

    client = mock_client(handler, tmp_path, arch="amd64")
    (resolved,) = client.resolve(["hello-stub"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "hello-stub_7.snap.partial").write_bytes(b"x")
    with pytest.raises(StoreError, match="sha3-384 mismatch"):
        client.download(resolved, tmp_path / "out" / "hello-stub_7.snap")
    assert [r.url.path for r in seen].count("/dl/x.snap") == 2  # one retry from scratch
    assert "range" not in seen[2].headers
    dl = seen[1]
    expected = header_map(want_download["headers"])
    expected["range"] = "bytes=1-"
    got = header_map(dl.headers)
    assert got == expected
    from ucimage.store.errors import AssertionNotFoundError

    with pytest.raises(AssertionNotFoundError):
        client.get_assertion(_ref("snap-revision", resolved.sha3_384_b64url, "global-upload"))
    assert header_map(seen[-1].headers) == header_map(want_assert["headers"])
    assert seen[-1].url.query == b"max-format=0"
    # the default provenance is not sent (snapd reduces the primary key)
    assert seen[-1].url.path == f"/v2/assertions/snap-revision/{resolved.sha3_384_b64url}"


def _ref(kind: str, *key: str) -> Any:
    from ucimage.assertions import Ref

    return Ref(kind, tuple(key))


def test_retry_policy_matches_snapd_timing() -> None:
    # observed attempts of snapd 2.57.6 at ~0, 0.5, 1.8, 5.0, 12.8, 32.3 s (s18)
    at, t = [0.0], 0.0
    for delay in JSON_RETRY.delays():
        t += delay
        at.append(t)
    assert len(at) == 6
    for ours, theirs in zip(at, [0, 0.5, 1.8, 5.0, 12.8, 32.3], strict=True):
        assert abs(ours - theirs) < 0.3


def test_5xx_is_retried_then_reported(tmp_path: Path) -> None:
    calls: list[float] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        return httpx.Response(500, headers={"X-Oops-Id": "OOPS-1"})

    policy = RetryPolicy(attempts=3, initial_delay=0.01, factor=2, max_total=5)
    client = mock_client(handler, tmp_path, json_retry=policy)
    with pytest.raises(StoreHTTPError, match="got unexpected HTTP status code 500") as exc:
        client.resolve(["hello-stub"])
    assert len(calls) == 3
    assert exc.value.status == 500


def test_4xx_is_final(tmp_path: Path) -> None:
    calls: list[int] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(404, text="no")

    client = mock_client(handler, tmp_path)
    with pytest.raises(StoreHTTPError, match=r"cannot query the store for updates.*404"):
        client.resolve(["hello-stub"])
    assert calls == [1]


def test_result_errors(tmp_path: Path) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": [
            {"result": "error", "instance-key": "download-1", "name": "a-snap",
             "error": {"code": "name-not-found", "message": "No snap named 'a-snap'"}},
            {"result": "error", "instance-key": "download-2", "name": "b-snap",
             "error": {"code": "revision-not-found", "message": "no",
                       "extra": {"releases": [{"architecture": "amd64", "channel": "beta"}]}}},
        ]})  # fmt: skip

    client = mock_client(handler, tmp_path)
    with pytest.raises(SnapNotFoundError, match='"a-snap": snap not found'):
        client.resolve(["a-snap"])
    with pytest.raises(SnapNotFoundError, match=r"a-snap.*b-snap.*no snap revision"):
        client.resolve(["a-snap", "b-snap"])

    def only_b(req: httpx.Request) -> httpx.Response:
        body = handler(req).json()
        body["results"] = body["results"][1:]
        body["results"][0]["instance-key"] = "download-1"
        return httpx.Response(200, json=body)

    client = mock_client(only_b, tmp_path)
    with pytest.raises(RevisionNotFoundError) as exc:
        client.resolve(["b-snap"])
    assert exc.value.hint is not None and "beta (amd64)" in exc.value.hint


def test_empty_and_garbage_answers(tmp_path: Path) -> None:
    answers = iter([{"results": []}, {"error-list": [{"code": "x", "message": "boom"}]}, [1]])

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(answers))

    client = mock_client(handler, tmp_path)
    with pytest.raises(StoreError, match="no install/refresh information"):
        client.resolve(["a-snap"])
    with pytest.raises(StoreError, match="boom"):
        client.resolve(["a-snap"])
    with pytest.raises(StoreError, match="not a JSON object"):
        client.resolve(["a-snap"])


def test_auth_env_shapes(tmp_path: Path) -> None:
    def enc(obj: Any) -> str:
        return base64.b64encode(json.dumps(obj).encode()).decode()

    assert auth_header_from_env({"UBUNTU_STORE_AUTH": enc({"t": "bearer", "v": "T"})}) == (
        "Bearer T"
    )
    assert auth_header_from_env({"UBUNTU_STORE_AUTH": enc({"t": "macaroon", "v": "M"})}) == (
        "Macaroon M"
    )
    u1 = auth_header_from_env({"UBUNTU_STORE_AUTH": enc({"r": "R", "d": "D"})})
    assert u1 == 'Macaroon root="R", discharge="D"'
    assert auth_header_from_env({}) is None
    with pytest.raises(StoreError, match="UBUNTU_STORE_AUTH"):
        auth_header_from_env({"UBUNTU_STORE_AUTH": "%%%not-base64"})
    ini = tmp_path / "login"
    ini.write_text("[login.ubuntu.com]\nmacaroon = R\nunbound_discharge = D\n")
    assert auth_header_from_env({"UBUNTU_STORE_AUTH_DATA_FILENAME": str(ini)}) == u1


def test_store_urls_from_env() -> None:
    assert resolve_store_urls(None, {}) == ("https://api.snapcraft.io", "https://api.snapcraft.io")
    env = {"SNAPPY_FORCE_API_URL": "http://a:1/", "SNAPPY_FORCE_SAS_URL": "http://s:2"}
    assert resolve_store_urls(None, env) == ("http://a:1", "http://s:2")
    env["UBUNTU_STORE_URL"] = "http://u:3/prefix"
    assert resolve_store_urls(None, env)[0] == "http://u:3/prefix"
    assert resolve_store_urls("http://cli:4", env)[0] == "http://cli:4"
    legacy = {"SNAPPY_FORCE_CPI_URL": "http://c:5/api/v1/"}
    assert resolve_store_urls(None, legacy)[0] == "http://c:5"
    with pytest.raises(StoreError, match="invalid store URL"):
        resolve_store_urls("http://x/?q=1", {})
    with pytest.raises(StoreError, match="invalid store URL"):
        resolve_store_urls("ftp://x", {})


def test_path_prefix_is_kept(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.url.path)
        return httpx.Response(200, json=refresh_answer())

    client = StoreClient("http://store.test/some/prefix", cache_dir=tmp_path, env={})
    client._http = httpx.Client(transport=httpx.MockTransport(handler))
    (resolved,) = client.resolve(["hello-stub"])
    assert seen == ["/some/prefix/v2/snaps/refresh"]
    assert resolved.url == "http://store.test/dl/x.snap"  # a relative URL resolves normally


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("stable", Channel("latest", "stable")),
        ("edge", Channel("latest", "edge")),
        ("22", Channel("22", "stable")),
        ("22/edge", Channel("22", "edge")),
        ("stable/hotfix-1", Channel("latest", "stable", "hotfix-1")),
        ("22/beta/fix", Channel("22", "beta", "fix")),
    ],
)
def test_parse_channel(text: str, channel: Channel) -> None:
    assert parse_channel(text) == channel


@pytest.mark.parametrize("text", ["", "a/b/c/d", "22/unstable", " stable", "x" * 40, "-x/stable"])
def test_bad_channels(text: str) -> None:
    with pytest.raises(ChannelError):
        parse_channel(text)


def test_channel_fallbacks() -> None:
    chans = [c.name for c in parse_channel("22/edge/x").fallbacks()]
    assert chans == ["22/edge/x", "22/edge", "22/beta", "22/candidate", "22/stable"]
    assert parse_channel("latest/beta").short == "beta"


@pytest.mark.parametrize(
    "kwargs",
    [{"name": "Bad"}, {"name": "ok-name", "revision": 0}, {"name": "ok", "channel": "x/y"}],
)
def test_bad_requests(kwargs: dict[str, Any]) -> None:
    with pytest.raises(StoreError):
        SnapRequest(**kwargs)


def test_assertions_go_to_the_sas_url(tmp_path: Path) -> None:
    hosts: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        hosts.append(f"{req.url.host}{req.url.path.split('/v2/')[0]}")
        if req.url.path.endswith("/v2/snaps/refresh"):
            return httpx.Response(200, json=refresh_answer())
        return httpx.Response(
            404,
            json={"error-list": [{"code": "not-found", "message": "nope"}]},
            headers={"Content-Type": "application/json"},
        )

    env = {"SNAPPY_FORCE_API_URL": "http://api.test/", "SNAPPY_FORCE_SAS_URL": "http://sas.test/p"}
    client = StoreClient(cache_dir=tmp_path, env=env)
    client._http = httpx.Client(transport=httpx.MockTransport(handler))
    assert client.resolve(["hello-stub"])[0].name == "hello-stub"
    from ucimage.store.errors import AssertionNotFoundError

    with pytest.raises(AssertionNotFoundError):
        client.get_assertion(_ref("account", "someone"))
    assert hosts == ["api.test", "sas.test/p"]


def test_text_404_is_not_not_found(tmp_path: Path) -> None:
    # snapd treats only a JSON 404 as "not found" (s21); so do we
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="404 page not found")

    client = mock_client(handler, tmp_path)
    with pytest.raises(StoreHTTPError, match="404"):
        client.get_assertion(_ref("store", "nosuchstore"))
