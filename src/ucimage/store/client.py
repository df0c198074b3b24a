"""A Snap Store client for image building: resolve, download, fetch and verify assertions.

Talks the protocol snapd's store client speaks (``shared/docs/store-api.md``):
one ``POST /v2/snaps/refresh`` with a ``download`` action per snap, then a
plain ``GET`` of each download URL (``Range`` resume, snapd's retry policy),
then ``GET /v2/assertions/...`` for the snap-revision and its prerequisites,
checked by :class:`ucimage.assertions.Database` against the trusted roots.
Blobs and assertions land in a cache (XDG cache dir), so a rebuild downloads
nothing.  Blobs are content-addressed and shared freely; the cache is shared by
every store, so a cached assertion chain is used only when it verifies against
the trusted roots of the build at hand, else it is fetched again
(:meth:`StoreClient.fetch_chain`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ucimage import __version__
from ucimage.assertions import (
    MEDIA_TYPE,
    Assertion,
    AssertionFormatError,
    AssertionVerifyError,
    Database,
    Ref,
    decode,
    decode_stream,
    encode_stream,
    prerequisites,
)
from ucimage.assertions.types import lookup as lookup_assertion_type
from ucimage.errors import UcimageError
from ucimage.run import cache_home
from ucimage.snaps import validate_snap_name
from ucimage.snaps.digest import hex_to_b64url
from ucimage.store.channels import parse_channel
from ucimage.store.errors import (
    AssertionNotFoundError,
    DigestMismatchError,
    RevisionNotFoundError,
    SnapNotFoundError,
    StoreError,
    StoreHTTPError,
    StoreUnavailableError,
    VerificationError,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.snapcraft.io/"
SERIES = "16"
CHUNK = 1 << 20

#: the ``fields`` snapd 2.57.6 asks for (store/store_action.go), in its order
SNAP_FIELDS: tuple[str, ...] = (
    "architectures",
    "base",
    "confinement",
    "contact",
    "created-at",
    "description",
    "download",
    "epoch",
    "license",
    "name",
    "prices",
    "private",
    "publisher",
    "revision",
    "snap-id",
    "snap-yaml",
    "summary",
    "title",
    "type",
    "version",
    "website",
    "store-url",
    "media",
    "common-ids",
)

_DPKG_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armhf",
    "armv6l": "armhf",
    "i686": "i386",
    "i386": "i386",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def host_arch() -> str:
    machine = os.uname().machine  # platform.machine(), without importing platform
    return _DPKG_ARCH.get(machine, machine)


def user_agent(arch: str) -> str:
    """snapd's shape: ``<product> (series 16; classic) <os>/<ver> (<arch>) linux/<kernel>``."""
    os_id, os_ver = "linux", ""
    try:
        fields = dict(
            line.split("=", 1)
            for line in Path("/etc/os-release").read_text().splitlines()
            if "=" in line
        )
        os_id = fields.get("ID", "linux").strip('"')
        os_ver = fields.get("VERSION_ID", "").strip('"')
    except OSError:
        pass
    kernel = re.sub(r"[^A-Za-z0-9._-]", "-", os.uname().release)[:25]
    return (
        f"ucimage/{__version__} (series {SERIES}; classic) {os_id}/{os_ver} ({arch}) linux/{kernel}"
    )


# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts with exponential back-off: snapd retries transport errors and any 5xx."""

    attempts: int = 6
    initial_delay: float = 0.5
    factor: float = 2.5
    max_total: float = 38.0
    timeout: float = 10.0

    def delays(self) -> Iterator[float]:
        delay = self.initial_delay
        for _ in range(self.attempts - 1):
            yield delay
            delay *= self.factor


#: JSON and assertion requests (store/store.go: 10 s timeout, 6 attempts in 38 s)
JSON_RETRY = RetryPolicy()
#: downloads (store/store_download.go: 7 attempts in 90 s, 15 s to response headers)
DOWNLOAD_RETRY = RetryPolicy(attempts=7, initial_delay=0.5, factor=2.5, max_total=90, timeout=15)


def auth_header_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """``Authorization`` from ``UBUNTU_STORE_AUTH`` or ``UBUNTU_STORE_AUTH_DATA_FILENAME``."""
    env = os.environ if env is None else env
    raw = env.get("UBUNTU_STORE_AUTH")
    if raw:
        try:
            data = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreError(
                "cannot read UBUNTU_STORE_AUTH: not base64-encoded JSON",
                hint="use the output of 'snapcraft export-login --experimental-login'",
            ) from exc
        return _auth_from_json(data)
    filename = env.get("UBUNTU_STORE_AUTH_DATA_FILENAME")
    if filename:
        try:
            text = Path(filename).read_text()
        except OSError as exc:
            raise StoreError(f"cannot read UBUNTU_STORE_AUTH_DATA_FILENAME: {exc}") from exc
        try:
            return _auth_from_json(json.loads(text))
        except ValueError:
            import configparser  # the older INI form only

            ini = configparser.ConfigParser()
            try:
                ini.read_string(text)
                section = ini["login.ubuntu.com"]
                return _macaroon(section["macaroon"], [section["unbound_discharge"]])
            except (configparser.Error, KeyError) as exc:
                raise StoreError(
                    f"cannot read store credentials from {filename!r}: unknown format"
                ) from exc
    return None


def _macaroon(root: str, discharges: Sequence[str]) -> str:
    # NOTE: snapd binds each discharge to the root macaroon before sending; we
    # send them as given (binding needs a macaroon library we do not carry).
    parts = [f'root="{root}"', *(f'discharge="{d}"' for d in discharges)]
    return "Macaroon " + ", ".join(parts)


def _auth_from_json(data: Any) -> str | None:
    if not isinstance(data, dict):
        raise StoreError("cannot read store credentials: not a JSON object")
    kind, value = data.get("t"), data.get("v")
    if kind == "bearer" and isinstance(value, str):
        return f"Bearer {value}"
    if kind == "macaroon" and isinstance(value, str):
        return f"Macaroon {value}"
    if kind == "u1-macaroon" and isinstance(value, dict):
        data = value
    if isinstance(data.get("r"), str) and isinstance(data.get("d"), str):
        return _macaroon(data["r"], [data["d"]])
    if isinstance(data.get("macaroon"), str):
        discharges = [d for d in data.get("discharges") or [] if isinstance(d, str)]
        return _macaroon(data["macaroon"], discharges)
    raise StoreError("cannot read store credentials: unknown format")


def resolve_store_urls(
    store: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """``(api_base, assertions_base)`` from ``--store``, the environment, or the default."""
    env = os.environ if env is None else env
    api = store or env.get("UBUNTU_STORE_URL") or env.get("SNAPPY_FORCE_API_URL")
    if not api and env.get("SNAPPY_FORCE_CPI_URL"):
        api = env["SNAPPY_FORCE_CPI_URL"].rstrip("/").removesuffix("/api/v1")
    api = api or DEFAULT_API_URL
    sas = env.get("SNAPPY_FORCE_SAS_URL") or api
    for url in (api, sas):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query:
            raise StoreError(
                f"invalid store URL {url!r}",
                hint="use http(s)://host[:port][/prefix], without a query string",
            )
    return api.rstrip("/"), sas.rstrip("/")


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SnapRequest:
    """One snap to resolve: by name, optionally a channel and/or a revision."""

    name: str
    channel: str | None = None
    revision: int | None = None
    cohort_key: str | None = None

    def __post_init__(self) -> None:
        try:
            validate_snap_name(self.name)
        except UcimageError as exc:
            raise StoreError(exc.message, hint=exc.hint) from exc
        if self.channel is not None:
            parse_channel(self.channel)
        if self.revision is not None and (
            isinstance(self.revision, bool) or not isinstance(self.revision, int)
        ):
            raise StoreError(f"invalid revision {self.revision!r} for snap {self.name!r}")
        if self.revision is not None and self.revision < 1:
            raise StoreError(f"invalid revision {self.revision} for snap {self.name!r}")


@dataclass(frozen=True)
class ResolvedSnap:
    """What the store says a request resolves to."""

    name: str
    snap_id: str
    revision: int
    url: str
    sha3_384: str
    size: int
    version: str = ""
    type: str = "app"
    base: str | None = None
    architectures: tuple[str, ...] = ()
    confinement: str = "strict"
    channel: str = ""
    redirect_channel: str = ""
    publisher_id: str = ""
    snap_yaml: str = ""
    epoch: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def sha3_384_b64url(self) -> str:
        return hex_to_b64url(self.sha3_384)

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.revision}.snap"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "snap-id": self.snap_id,
            "revision": self.revision,
            "version": self.version,
            "type": self.type,
            "base": self.base,
            "architectures": list(self.architectures),
            "confinement": self.confinement,
            "channel": self.channel,
            "redirect-channel": self.redirect_channel,
            "publisher-id": self.publisher_id,
            "download": {"url": self.url, "sha3-384": self.sha3_384, "size": self.size},
        }


@dataclass(frozen=True)
class FetchedSnap:
    """A downloaded (and, unless disabled, verified) snap with its assertions."""

    resolved: ResolvedSnap
    path: Path
    #: the snap's assertions not in the trust roots, prerequisites first (snap download order)
    assertions: tuple[Assertion, ...] = ()
    from_cache: bool = False
    verified: bool = False

    def assertion_stream(self) -> bytes:
        return encode_stream(self.assertions) if self.assertions else b""


@dataclass
class Stats:
    """What the client did (tests and logs: a rebuild must show zero downloads)."""

    refresh_requests: int = 0
    download_requests: int = 0
    assertion_requests: int = 0
    bytes_downloaded: int = 0
    cache_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)


ProgressFactory = Callable[[ResolvedSnap], Callable[[int], None]]


# ---------------------------------------------------------------------------- the client


class StoreClient:
    """A store client; see the package docstring for the API."""

    def __init__(
        self,
        url: str | None = None,
        *,
        sas_url: str | None = None,
        arch: str | None = None,
        store_id: str | None = None,
        auth: str | None = None,
        cache_dir: Path | None = None,
        use_cache: bool = True,
        json_retry: RetryPolicy = JSON_RETRY,
        download_retry: RetryPolicy = DOWNLOAD_RETRY,
        parallel: int = 4,
        progress: bool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        api, sas = resolve_store_urls(url, env)
        self.api_url = api
        self.sas_url = sas_url.rstrip("/") if sas_url else sas
        self.arch = arch or env.get("UBUNTU_STORE_ARCH") or host_arch()
        # None: UBUNTU_STORE_ID decides (snapd's NewToolingStore); "" (a model with no
        # store header, as NewToolingStoreFromModel): the global store, whatever the env
        self.store_id = (store_id if store_id is not None else env.get("UBUNTU_STORE_ID")) or None
        self.auth = auth if auth is not None else auth_header_from_env(env)
        self.no_cdn = env.get("SNAPPY_STORE_NO_CDN", "") in ("1", "true", "yes")
        self.cache_dir = cache_dir or cache_home()
        self.use_cache = use_cache
        self.json_retry = json_retry
        self.download_retry = download_retry
        self.parallel = max(1, parallel)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.user_agent = user_agent(self.arch)
        self.stats = Stats()
        self._http_client: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._assertion_lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        """The HTTP client, made at the first request: httpx and its TLS stack take
        ~40 ms to import, which builds served from the cache (--offline) never need."""
        with self._http_lock:
            if self._http_client is None:
                import httpx

                from ucimage.store.tls import LazyTrustContext

                self._http_client = httpx.Client(
                    verify=LazyTrustContext(),
                    follow_redirects=True,
                    timeout=httpx.Timeout(self.json_retry.timeout),
                    limits=httpx.Limits(max_connections=max(8, self.parallel * 2)),
                )
            return self._http_client

    @_http.setter
    def _http(self, client: httpx.Client) -> None:
        self._http_client = client

    def close(self) -> None:
        if self._http_client is not None:
            self._http_client.close()

    def __enter__(self) -> StoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- headers -------------------------------------------------------------------------

    def v2_headers(self) -> dict[str, str]:
        headers = {
            "User-Agent": self.user_agent,
            "Accept": "application/json",
            "Snap-Device-Series": SERIES,
            "Snap-Device-Architecture": self.arch,
            "Snap-Classic": "true",
            "Snap-Device-Capabilities": "default-tracks",
        }
        if self.store_id:
            headers["Snap-Device-Store"] = self.store_id
        if self.auth:
            headers["Authorization"] = self.auth
        return headers

    def v1_headers(self, accept: str = "") -> dict[str, str]:
        headers = {
            "User-Agent": self.user_agent,
            "Accept": accept,
            "Snap-Device-Capabilities": "default-tracks",
            "X-Ubuntu-Architecture": self.arch,
            "X-Ubuntu-Classic": "true",
            "X-Ubuntu-Series": SERIES,
            "X-Ubuntu-Wire-Protocol": "1",
        }
        if self.store_id:
            headers["X-Ubuntu-Store"] = self.store_id
        if self.auth:
            headers["Authorization"] = self.auth
        return headers

    # -- retrying requests ---------------------------------------------------------------

    def _request(
        self, method: str, url: str, *, what: str, headers: dict[str, str], **kwargs: Any
    ) -> httpx.Response:
        """One request with snapd's retry policy: transport errors and 5xx are retried."""
        import httpx

        policy = self.json_retry
        start = time.monotonic()
        delays = policy.delays()
        last: str = ""
        resp: httpx.Response | None = None
        while True:
            try:
                resp = self._http.request(
                    method, url, headers=headers, timeout=policy.timeout, **kwargs
                )
            except httpx.TransportError as exc:
                resp = None
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if resp.status_code < 500:
                    return resp
                last = f"got unexpected HTTP status code {resp.status_code}"
            delay = next(delays, None)
            if delay is None or time.monotonic() - start + delay > policy.max_total:
                break
            log.debug("%s: %s; retrying in %.1fs", what, last, delay)
            time.sleep(delay)
        if resp is not None:
            raise StoreHTTPError(
                f"cannot {what}: got unexpected HTTP status code {resp.status_code} via "
                f"{method} to {url!r}",
                status=resp.status_code,
                hint="the store is failing; try again later",
            )
        raise StoreUnavailableError(
            f"cannot {what}: cannot reach the store at {url!r} ({last})",
            hint="check the store URL (--store, UBUNTU_STORE_URL, SNAPPY_FORCE_API_URL) "
            "and that the store is running",
        )

    # -- resolve -------------------------------------------------------------------------

    def resolve(
        self,
        requests: Sequence[SnapRequest | str],
        *,
        ignore_validation: bool | None = None,
    ) -> list[ResolvedSnap]:
        """Resolve every request with ONE ``POST /v2/snaps/refresh``; results in request order.

        Raises :class:`SnapNotFoundError` / :class:`RevisionNotFoundError` (naming every
        snap that failed) or :class:`StoreError`.
        """
        reqs = [SnapRequest(r) if isinstance(r, str) else r for r in requests]
        if not reqs:
            return []
        actions: list[dict[str, Any]] = []
        for i, req in enumerate(reqs, 1):
            action: dict[str, Any] = {
                "action": "download",
                "instance-key": f"download-{i}",
                "name": req.name,
            }
            if req.channel:
                action["channel"] = req.channel
            if req.revision:
                action["revision"] = req.revision
            if req.cohort_key:
                action["cohort-key"] = req.cohort_key
            if ignore_validation is not None:
                action["ignore-validation"] = ignore_validation
            action["epoch"] = None
            actions.append(action)
        body = {"context": [], "actions": actions, "fields": list(SNAP_FIELDS)}
        url = f"{self.api_url}/v2/snaps/refresh"
        self.stats.add("refresh_requests")
        resp = self._request(
            "POST",
            url,
            what="query the store for updates",
            headers={**self.v2_headers(), "Content-Type": "application/json"},
            content=json.dumps(body).encode(),
        )
        if resp.status_code != 200:
            raise StoreHTTPError(
                f"cannot query the store for updates: got unexpected HTTP status code "
                f"{resp.status_code} via POST to {url!r}" + _oops(resp),
                status=resp.status_code,
            )
        try:
            payload = resp.json()
        except ValueError as exc:
            raise StoreError(f"cannot decode the store's answer from {url!r}: {exc}") from exc
        if not isinstance(payload, dict):
            raise StoreError(f"unexpected answer from {url!r}: not a JSON object")
        top_errors = payload.get("error-list") or []
        results = payload.get("results") or []
        if top_errors and not results:
            raise StoreError(
                "store error: " + "; ".join(str(e.get("message", e)) for e in top_errors)
            )
        if not results:
            raise StoreError("no install/refresh information results from the store")
        by_key: dict[str, dict[str, Any]] = {}
        for res in results:
            if isinstance(res, dict):
                by_key[str(res.get("instance-key", ""))] = res
        resolved: list[ResolvedSnap] = []
        failures: list[StoreError] = []
        for i, req in enumerate(reqs, 1):
            res = by_key.get(f"download-{i}")
            if res is None:
                # answers are not required to carry our keys: fall back to the name
                res = next((r for r in results if r.get("name") == req.name), None)
            if res is None:
                failures.append(StoreError(f"store gave no answer for snap {req.name!r}"))
                continue
            if res.get("result") == "error":
                failures.append(_result_error(req, res.get("error") or {}))
                continue
            try:
                resolved.append(self._parse_result(req, res))
            except (KeyError, TypeError, ValueError) as exc:
                failures.append(StoreError(f"invalid store answer for snap {req.name!r}: {exc!r}"))
        if failures:
            if len(failures) == 1:
                raise failures[0]
            first = failures[0]
            raise type(first)("; ".join(f.message for f in failures), hint=first.hint)
        return resolved

    def _parse_result(self, req: SnapRequest, res: dict[str, Any]) -> ResolvedSnap:
        snap = res["snap"]
        download = snap["download"]
        sha3 = str(download["sha3-384"]).lower()
        if not re.fullmatch(r"[0-9a-f]{96}", sha3):
            raise ValueError(f"bad sha3-384 {sha3!r}")
        size = download["size"]
        revision = snap["revision"]
        if not isinstance(size, int) or not isinstance(revision, int) or size < 0:
            raise ValueError("size and revision must be integers")
        url = urllib.parse.urljoin(self.api_url + "/", str(download["url"]))
        publisher = snap.get("publisher") or {}
        return ResolvedSnap(
            name=str(snap.get("name") or res.get("name") or req.name),
            snap_id=str(snap.get("snap-id") or res.get("snap-id") or ""),
            revision=revision,
            url=url,
            sha3_384=sha3,
            size=size,
            version=str(snap.get("version") or ""),
            type=str(snap.get("type") or "app"),
            base=snap.get("base") or None,
            architectures=tuple(snap.get("architectures") or ()),
            confinement=str(snap.get("confinement") or "strict"),
            channel=str(res.get("effective-channel") or req.channel or ""),
            redirect_channel=str(res.get("redirect-channel") or ""),
            publisher_id=str(publisher.get("id") or "") if isinstance(publisher, dict) else "",
            snap_yaml=str(snap.get("snap-yaml") or ""),
            epoch=snap.get("epoch") or {},
        )

    # -- downloads -----------------------------------------------------------------------

    def cached_path(self, resolved: ResolvedSnap) -> Path:
        return self.cache_dir / "snaps" / f"{resolved.sha3_384}.snap"

    def download(
        self,
        resolved: ResolvedSnap,
        target: Path,
        progress: Callable[[int], None] | None = None,
    ) -> bool:
        """Put the snap at *target* (cache, existing file, or download); True if from cache."""
        target.parent.mkdir(parents=True, exist_ok=True)
        cached = self.cached_path(resolved)
        if self.use_cache and cached.is_file() and cached.stat().st_size == resolved.size:
            if not (target.exists() and os.path.samefile(cached, target)):
                # a copy, not a link: editing the output must not corrupt the cache
                _copy_atomic(cached, target)
            self.stats.add("cache_hits")
            return True
        if (
            target.is_file()
            and target.stat().st_size == resolved.size
            and _sha3_hex(target) == resolved.sha3_384
        ):
            self._store_in_cache(target, resolved)
            return False
        partial = target.with_name(target.name + ".partial")
        got = ""
        for _round in range(2):  # one fresh retry after a digest mismatch, as snapd
            got = self._transfer(resolved, partial, progress)
            if got == resolved.sha3_384 and partial.stat().st_size == resolved.size:
                partial.replace(target)
                if target == cached:
                    target.chmod(0o444)
                self._store_in_cache(target, resolved)
                return False
            log.warning("sha3-384 mismatch for %r, downloading again", resolved.name)
            partial.unlink(missing_ok=True)
        raise DigestMismatchError(
            f'sha3-384 mismatch for "{resolved.name}": got {got} but expected {resolved.sha3_384}',
            hint="the store serves a file that does not match its metadata",
        )

    def _store_in_cache(self, path: Path, resolved: ResolvedSnap) -> None:
        if not self.use_cache:
            return
        cached = self.cached_path(resolved)
        if cached.exists():
            return
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            _copy_atomic(path, cached, mode=0o444)
        except OSError as exc:
            log.warning("cannot cache %s: %s", path, exc)

    def _transfer(
        self, resolved: ResolvedSnap, partial: Path, progress: Callable[[int], None] | None
    ) -> str:
        """Download into *partial* (resuming it); return the hex SHA3-384 of the result."""
        import httpx

        policy = self.download_retry
        hasher = hashlib.sha3_384()
        have = 0
        if partial.exists():
            if partial.stat().st_size > resolved.size:
                partial.unlink()
            else:
                with partial.open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        hasher.update(chunk)
                        have += len(chunk)
        if progress and have:
            progress(have)
        start = time.monotonic()
        delays = policy.delays()
        last = ""
        while True:
            if have >= resolved.size:
                return hasher.hexdigest()
            headers = self.v1_headers()
            headers["Accept-Encoding"] = "identity"
            if self.no_cdn:
                headers["Snap-CDN"] = "none"
            if have:
                headers["Range"] = f"bytes={have}-"
            retry = False
            try:
                self.stats.add("download_requests")
                with self._http.stream(
                    "GET",
                    resolved.url,
                    headers=headers,
                    timeout=httpx.Timeout(300, connect=policy.timeout),
                ) as resp:
                    status = resp.status_code
                    if status == 206:
                        content_range = resp.headers.get("content-range", "")
                        if not content_range.startswith(f"bytes {have}-"):
                            status = 200  # not the range we asked for: start over
                            have, hasher = 0, hashlib.sha3_384()
                            partial.unlink(missing_ok=True)
                            retry = True
                    elif status == 200 and have:
                        have, hasher = 0, hashlib.sha3_384()
                        partial.unlink(missing_ok=True)
                        if progress:
                            progress(-1)
                    if retry:
                        pass
                    elif status in (200, 206):
                        with partial.open("ab") as out:
                            for chunk in resp.iter_raw(CHUNK):
                                out.write(chunk)
                                hasher.update(chunk)
                                have += len(chunk)
                                self.stats.add("bytes_downloaded", len(chunk))
                                if progress:
                                    progress(len(chunk))
                        if have < resolved.size:
                            last = f"connection closed after {have} of {resolved.size} bytes"
                            retry = True
                        else:
                            return hasher.hexdigest()
                    elif status == 416:
                        have, hasher = 0, hashlib.sha3_384()
                        partial.unlink(missing_ok=True)
                        retry = True
                        last = "416 for our range"
                    elif status == 402:
                        raise StoreError(f"please buy {resolved.name} before installing it")
                    elif status >= 500:
                        last = f"got unexpected HTTP status code {status}"
                        retry = True
                    else:
                        raise StoreHTTPError(
                            f"received an unexpected http response code ({status}) when "
                            f"trying to download {resolved.url}" + _oops(resp),
                            status=status,
                        )
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                retry = True
            if retry:
                delay = next(delays, None)
                if delay is None or time.monotonic() - start + delay > policy.max_total:
                    raise StoreUnavailableError(
                        f"cannot download snap {resolved.name!r} from {resolved.url}: {last}",
                        hint=f"the partial download is kept in {partial} and resumed next time",
                    )
                log.debug("download of %s: %s; retrying in %.1fs", resolved.name, last, delay)
                time.sleep(delay)

    # -- assertions ----------------------------------------------------------------------

    def _assertion_cache_path(self, ref: Ref, max_format: int) -> Path:
        key = "/".join(urllib.parse.quote(k, safe="") for k in ref.primary_key)
        return self.cache_dir / "assertions" / ref.type / f"{key}@{max_format}.assert"

    def get_assertion(self, ref: Ref, *, cached: bool = True) -> Assertion:
        """``GET /v2/assertions/<type>/<key...>?max-format=N``.

        With *cached* (and the cache on) a cached copy is returned without asking the
        store.  A cached assertion is only a candidate: whoever uses it must check it
        against its trust roots (:meth:`fetch_chain` does, and asks again when it fails).
        """
        return self._get_assertion(ref, cached=cached)[0]

    def _get_assertion(self, ref: Ref, *, cached: bool) -> tuple[Assertion, bool]:
        """The assertion and whether it came from the cache."""
        atype = lookup_assertion_type(ref.type)
        max_format = atype.max_format if atype is not None else 0
        cache_path = self._assertion_cache_path(ref, max_format)
        if cached and self.use_cache and cache_path.is_file():
            try:
                found = decode(cache_path.read_bytes())
                if found.ref == ref:
                    self.stats.add("cache_hits")
                    return found, True
            except AssertionFormatError:
                cache_path.unlink(missing_ok=True)
        keys = list(ref.primary_key)
        if atype is not None:
            # trailing optional keys at their default are left out (snapd ReducePrimaryKey)
            names = list(atype.primary_key)
            while names and keys and atype.optional_primary_key.get(names[-1]) == keys[-1]:
                names.pop()
                keys.pop()
        path = "/".join(urllib.parse.quote(k, safe="") for k in keys)
        url = f"{self.sas_url}/v2/assertions/{ref.type}/{path}?max-format={max_format}"
        what = f"fetch assertion {ref.type} {'/'.join(ref.primary_key)}"
        a = self._get_assertion_url(url, what)
        if a.ref != ref:
            raise StoreError(f"cannot {what}: the store answered with {a.ref}")
        self._cache_assertion(a)
        return a, False

    def get_sequence_assertion(
        self, type_name: str, sequence_key: Sequence[str], sequence: int | None = None
    ) -> Assertion:
        """A sequence-forming assertion (validation-set, repair) at *sequence*, or at the
        latest sequence when it is None, like snapd's ``SeqFormingAssertion``:
        ``GET /v2/assertions/<type>/<sequence-key...>?max-format=N&sequence=latest|N``.

        Always asked of the store (the latest sequence is the store's to say).
        """
        atype = lookup_assertion_type(type_name)
        if atype is None or not atype.sequence_forming:
            raise StoreError(f"{type_name!r} assertions do not form sequences")
        if len(sequence_key) != len(atype.primary_key) - 1:
            raise StoreError(
                f"a {type_name} sequence key has {len(atype.primary_key) - 1} values "
                f"({', '.join(atype.primary_key[:-1])}), not {len(sequence_key)}"
            )
        if sequence is not None and (isinstance(sequence, bool) or sequence < 1):
            raise StoreError(f"invalid {type_name} sequence {sequence!r}")
        path = "/".join(urllib.parse.quote(k, safe="") for k in sequence_key)
        query = urllib.parse.urlencode(
            {"max-format": atype.max_format, "sequence": sequence or "latest"}
        )
        url = f"{self.sas_url}/v2/assertions/{type_name}/{path}?{query}"
        where = "latest sequence" if sequence is None else f"sequence {sequence}"
        what = f"fetch {type_name} {'/'.join(sequence_key)} at the {where}"
        a = self._get_assertion_url(url, what)
        pk = a.primary_key
        if (
            a.type != type_name
            or tuple(pk[:-1]) != tuple(sequence_key)
            or (sequence is not None and pk[-1] != str(sequence))
        ):
            raise StoreError(f"cannot {what}: the store answered with {a.ref}")
        self._cache_assertion(a)
        return a

    def _get_assertion_url(self, url: str, what: str) -> Assertion:
        self.stats.add("assertion_requests")
        resp = self._request("GET", url, what=what, headers=self.v1_headers(MEDIA_TYPE))
        if resp.status_code == 404 and _is_not_found(resp):
            raise AssertionNotFoundError(f"cannot {what}: not found")
        if resp.status_code != 200:
            raise StoreHTTPError(
                f"cannot {what}: got unexpected HTTP status code {resp.status_code} via GET "
                f"to {url!r}" + _oops(resp),
                status=resp.status_code,
            )
        try:
            # like snapd: the first assertion of the answer
            return decode_stream(resp.content)[0]
        except (AssertionFormatError, IndexError) as exc:
            message = exc.message if isinstance(exc, AssertionFormatError) else "empty answer"
            raise StoreError(f"cannot {what}: {message}") from exc

    def _cache_assertion(self, a: Assertion) -> None:
        if not self.use_cache:
            return
        cache_path = self._assertion_cache_path(a.ref, a.type_info.max_format)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(a.encode())
        tmp.replace(cache_path)

    def fetch_chain(self, start: Ref | Assertion, db: Database) -> list[Assertion]:
        """*start* (fetched when a :class:`Ref`) and every prerequisite *db* lacks, resolved
        depth-first like snapd's fetcher: prerequisites first, each then added to *db*.

        Cached assertions are shared by every store and trust set, so they are used only
        when the chain they make verifies against *db*'s trusted roots; otherwise the
        whole chain is asked of the store again (and re-cached).  Assertions already in
        *db* or trusted are neither fetched nor returned.
        """
        with self._assertion_lock:
            used_cache: list[Ref] = []
            try:
                chain = self._collect_chain(start, db, used_cache, cached=self.use_cache)
                if used_cache:
                    scratch = db.copy()
                    scratch.add_many(chain)
                    for a in chain:
                        scratch.check(a)
            except UcimageError as exc:
                if not used_cache:
                    raise
                log.info(
                    "cached assertions (%s) do not verify against the trusted roots (%s); "
                    "asking the store",
                    ", ".join(str(r) for r in used_cache),
                    getattr(exc, "message", exc),
                )
                chain = self._collect_chain(start, db, [], cached=False)
            db.add_many(chain)
            return chain

    def _collect_chain(
        self, start: Ref | Assertion, db: Database, used_cache: list[Ref], *, cached: bool
    ) -> list[Assertion]:
        trusted = {a.ref for a in db.trusted}
        ordered: list[Assertion] = []
        seen: set[Ref] = set()

        def visit(a: Assertion, stack: tuple[Ref, ...]) -> None:
            for pre in prerequisites(a):
                need(pre, (*stack, a.ref))
            seen.add(a.ref)
            ordered.append(a)

        def need(ref: Ref, stack: tuple[Ref, ...]) -> None:
            if ref in trusted or ref in seen:
                return
            have = db.get(ref)
            if have is not None:
                # already there (e.g. from --assertion files): complete its chain only
                seen.add(ref)
                for pre in prerequisites(have):
                    need(pre, (*stack, ref))
                return
            if ref in stack:
                raise VerificationError(
                    f"circular assertions are not expected: {ref.type} "
                    f"({'/'.join(ref.primary_key)})",
                    hint="the chain ends in a root you do not trust; pass the store's root "
                    "with --trusted ROOT.assert",
                )
            a, from_cache = self._get_assertion(ref, cached=cached)
            if from_cache:
                used_cache.append(ref)
            visit(a, stack)

        if isinstance(start, Assertion):
            visit(start, ())
        else:
            need(start, ())
        return ordered

    def fetch_assertions(self, resolved: ResolvedSnap, db: Database) -> list[Assertion]:
        """The snap-revision of *resolved* and every prerequisite not trusted, in snapd's
        order (prerequisites first); each is added to *db*."""
        ref = Ref("snap-revision", (resolved.sha3_384_b64url, "global-upload"))
        try:
            return self.fetch_chain(ref, db)
        except VerificationError as exc:
            raise VerificationError(
                f"cannot verify snap {resolved.name!r}: {exc.message}", hint=exc.hint
            ) from exc

    def verify(self, resolved: ResolvedSnap, path: Path, db: Database) -> None:
        """Check the chain to the trusted roots and snapd's cross-checks for one snap."""
        try:
            rev = db.find("snap-revision", snap_sha3_384=resolved.sha3_384_b64url)
            db.check(rev)
            decl = db.find("snap-declaration", series=SERIES, snap_id=str(rev.header("snap-id")))
            db.check(decl)
        except (AssertionVerifyError, UcimageError) as exc:
            raise VerificationError(
                f"cannot verify snap {resolved.name!r}: {exc}",
                hint=getattr(exc, "hint", None)
                or "pass the store's root with --trusted ROOT.assert",
            ) from exc
        size = path.stat().st_size
        problems = []
        if str(rev.header("snap-size")) != str(size):
            problems.append(f"snap-size {rev.header('snap-size')} but the file has {size} bytes")
        if resolved.snap_id and rev.header("snap-id") != resolved.snap_id:
            problems.append(
                f"snap-id {rev.header('snap-id')} but the store said {resolved.snap_id}"
            )
        if str(rev.header("snap-revision")) != str(resolved.revision):
            problems.append(
                f"snap-revision {rev.header('snap-revision')} but the store said "
                f"{resolved.revision}"
            )
        decl_name = decl.header("snap-name")
        if not decl_name:
            problems.append("its snap-declaration is revoked")
        elif decl_name != resolved.name:
            problems.append(f"it is undergoing a rename to {decl_name!r}")
        if problems:
            raise VerificationError(f"cannot verify snap {resolved.name!r}: " + "; ".join(problems))

    # -- all together --------------------------------------------------------------------

    def fetch(
        self,
        resolved: Sequence[ResolvedSnap],
        dest: str | os.PathLike[str] | None = None,
        *,
        db: Database | None = None,
        trusted: Sequence[Assertion] = (),
        verify: bool = True,
    ) -> list[FetchedSnap]:
        """Download every snap (in parallel), then fetch and verify its assertions.

        Files go to ``dest/NAME_REV.snap`` (or stay in the cache when *dest* is None).
        *db* defaults to the built-in and configured roots plus *trusted*.
        """
        dest_dir = Path(dest) if dest is not None else None
        if dest_dir is None and not self.use_cache:
            raise StoreError("fetch() needs a destination when the cache is off")
        targets = [
            (dest_dir / r.filename) if dest_dir is not None else self.cached_path(r)
            for r in resolved
        ]
        with self._progress(resolved) as make_progress:

            def one(item: tuple[ResolvedSnap, Path]) -> bool:
                r, target = item
                return self.download(r, target, make_progress(r) if make_progress else None)

            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                cached = list(pool.map(one, zip(resolved, targets, strict=True)))
        database = db if db is not None else Database(extra_trusted=trusted)
        out: list[FetchedSnap] = []
        for r, target, hit in zip(resolved, targets, cached, strict=True):
            if verify:
                chain = self.fetch_assertions(r, database)
                self.verify(r, target, database)
            else:
                # unverified fetches (dangerous/offline images) tolerate missing assertions
                try:
                    chain = self.fetch_assertions(r, database)
                except StoreError as exc:
                    log.warning("no assertions for %s: %s", r.name, exc.message)
                    chain = []
            full_chain = _chain_for(database, r)
            out.append(
                FetchedSnap(
                    r,
                    target,
                    tuple(full_chain or chain),
                    from_cache=hit,
                    verified=verify,
                )
            )
        return out

    @contextmanager
    def _progress(self, resolved: Sequence[ResolvedSnap]) -> Iterator[ProgressFactory | None]:
        if not self.progress:
            yield None
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            transient=False,
        ) as bar:

            def factory(r: ResolvedSnap) -> Callable[[int], None]:
                task = bar.add_task(r.filename, total=r.size)

                def advance(n: int) -> None:
                    if n < 0:
                        bar.reset(task)
                    else:
                        bar.advance(task, n)

                return advance

            yield factory


def _chain_for(db: Database, r: ResolvedSnap) -> list[Assertion]:
    try:
        rev = db.find("snap-revision", snap_sha3_384=r.sha3_384_b64url)
        return [*db.chain(rev), rev]
    except UcimageError:
        return []


def _sha3_hex(path: Path) -> str:
    from ucimage.snaps import digest_file

    return digest_file(path)[0]


def _copy_atomic(src: Path, dst: Path, mode: int = 0o644) -> None:
    """Copy (kernel-side: copy_file_range/sendfile) to a temporary name, then rename."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        tmp.chmod(mode)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _oops(resp: httpx.Response) -> str:
    oops = resp.headers.get("x-oops-id")
    return f" [{oops}]" if oops else ""


def _is_not_found(resp: httpx.Response) -> bool:
    ctype = resp.headers.get("content-type", "").split(";")[0].strip()
    if ctype not in ("application/json", "application/problem+json"):
        return False
    try:
        data = resp.json()
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    errors = data.get("error-list") or []
    if errors and isinstance(errors[0], dict) and errors[0].get("code") == "not-found":
        return True
    return data.get("status") == 404


def _result_error(req: SnapRequest, error: Mapping[str, Any]) -> StoreError:
    code = error.get("code", "")
    message = str(error.get("message") or code or "unknown error")
    if code in ("name-not-found", "id-not-found"):
        return SnapNotFoundError(
            f'cannot download snap "{req.name}": snap not found',
            hint="check the name and the store (--store, UBUNTU_STORE_ID)",
        )
    if code == "revision-not-found":
        releases = (error.get("extra") or {}).get("releases") or []
        where = ", ".join(
            f"{r.get('channel')} ({r.get('architecture')})" for r in releases if isinstance(r, dict)
        )
        wanted = (
            f"revision {req.revision}"
            if req.revision
            else f"channel {req.channel or 'latest/stable'!r}"
        )
        return RevisionNotFoundError(
            f'cannot download snap "{req.name}": no snap revision available as specified '
            f"({wanted})",
            hint=f"it is available in: {where}" if where else "nothing of it is released",
        )
    return StoreError(f'cannot download snap "{req.name}": {message}')
