"""Talk to a ucimage store's write API: push, release, list, add-assertion."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from ucimage.store.errors import StoreError, StoreHTTPError, StoreUnavailableError

DEFAULT_STORE_URL = "http://127.0.0.1:8080"


def default_store_url() -> str:
    return os.environ.get("UCIMAGE_STORE_URL") or DEFAULT_STORE_URL


def read_token(token_file: str | os.PathLike[str] | None) -> str | None:
    if token_file is not None:
        try:
            return Path(token_file).read_text().strip()
        except OSError as exc:
            raise StoreError(f"cannot read token file {str(token_file)!r}: {exc}") from exc
    return os.environ.get("UCIMAGE_STORE_TOKEN") or None


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


class StoreAdmin:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.url = (url or default_store_url()).rstrip("/")
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        try:
            with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as client:
                resp = client.request(method, self.url + path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnavailableError(
                f"cannot reach the store at {self.url}: {exc}",
                hint="start it with 'ucimage store serve DIR' or pass --store URL",
            ) from exc
        if resp.status_code >= 400:
            message = resp.text.strip()
            try:
                errors = resp.json().get("error-list") or []
                if errors:
                    message = "; ".join(str(e.get("message", e)) for e in errors)
            except ValueError:
                pass
            hint = None
            if resp.status_code == 401:
                hint = "pass --token-file DIR/upload-token or set UCIMAGE_STORE_TOKEN"
            raise StoreHTTPError(
                f"store refused {method} {path} ({resp.status_code}): {message}",
                hint=hint,
                status=resp.status_code,
            )
        return resp.json()

    def push(self, snap: str | os.PathLike[str], release: Sequence[str] = ()) -> dict[str, Any]:
        path = Path(snap)
        if not path.is_file():
            raise StoreError(f"cannot push {str(path)!r}: no such file")
        params = {"release": ",".join(release)} if release else {}
        return dict(
            self._request(
                "POST",
                "/v2/ucimage/push",
                params=params,
                content=_file_chunks(path),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(path.stat().st_size),
                },
            )
        )

    def release(self, name: str, revision: int, channels: Sequence[str]) -> dict[str, Any]:
        return dict(
            self._request(
                "POST",
                "/v2/ucimage/release",
                json={"name": name, "revision": revision, "channels": list(channels)},
            )
        )

    def list_snaps(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/v2/ucimage/snaps")["snaps"])

    def add_assertions(self, content: bytes) -> list[dict[str, Any]]:
        return list(
            self._request(
                "POST",
                "/v2/ucimage/assertions",
                content=content,
                headers={"Content-Type": "application/x.ubuntu.assertion"},
            )["added"]
        )
