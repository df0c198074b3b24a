"""The store's HTTP API (Starlette): what snapd's store client and ``ucimage`` expect.

Public (open unless ``require_auth``):
    POST /v2/snaps/refresh                      snap actions (download/install/refresh)
    GET  /v2/snaps/info/<name>                  channel map
    GET  /v2/assertions/<type>/<key...>         one assertion (``?max-format=``, ``?sequence=``)
    GET  /api/v1/snaps/download/<id>_<rev>.snap blob, Range/206
Writes (bearer token from ``upload-token``):
    POST /v2/ucimage/push?release=C1,C2         body: the .snap bytes
    POST /v2/ucimage/release                    {"name", "revision", "channels"}
    POST /v2/ucimage/assertions                 body: an assertion stream
    GET  /v2/ucimage/snaps                      catalogue (name, revisions, channels)

Every error is JSON ``{"error-list": [{"code", "message"}]}``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ucimage.errors import UcimageError
from ucimage.store.server.backend import STORE_VERSION, APIError, Store

log = logging.getLogger(__name__)

ASSERTION_MEDIA_TYPE = "application/x.ubuntu.assertion"
#: SQLite integers are 64-bit; revisions and formats stay far below this
MAX_INT = 2**31 - 1


class BlobResponse(FileResponse):
    # big reads: the loop overhead per chunk dominates on loopback
    chunk_size = 1 << 20


def error_response(
    status: int, code: str, message: str, media_type: str = "application/json"
) -> JSONResponse:
    return JSONResponse(
        {"error-list": [{"code": code, "message": message}]},
        status_code=status,
        media_type=media_type,
        headers={"Snap-Store-Version": str(STORE_VERSION)},
    )


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _arch(request: Request) -> str | None:
    return request.headers.get("snap-device-architecture") or request.headers.get(
        "x-ubuntu-architecture"
    )


Handler = Callable[[Request], Awaitable[Response]]


def create_app(store: Store, *, require_auth: bool = False) -> Starlette:
    """The ASGI application serving *store*."""

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return (
            bool(store.upload_token)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(token.strip().encode(), store.upload_token.encode())
        )

    def guarded(handler: Handler, *, write: bool) -> Handler:
        async def wrapped(request: Request) -> Response:
            if (write or require_auth) and not authorized(request):
                return error_response(
                    401,
                    "unauthorized",
                    "this request needs the store's upload token (Authorization: Bearer <token>)",
                )
            try:
                return await handler(request)
            except APIError as exc:
                return error_response(exc.status, exc.api_code, exc.message)
            except UcimageError as exc:
                return error_response(400, exc.code, exc.message)

        return wrapped

    async def refresh(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            raise APIError(400, "invalid-request", "request body is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("actions"), list):
            raise APIError(400, "invalid-request", "request needs an 'actions' list")
        if not isinstance(payload.get("context") or [], list):
            raise APIError(400, "invalid-request", "'context' must be a list")
        context: dict[str, Any] = {
            str(c.get("instance-key")): c
            for c in payload.get("context") or []
            if isinstance(c, dict) and c.get("instance-key")
        }
        fields = payload.get("fields")
        arch = _arch(request)
        base = _base_url(request)

        def answer() -> list[dict[str, Any]]:
            return [
                resolve_action(store, action, context, fields, arch, base)
                for action in payload["actions"]
            ]

        results = await run_in_threadpool(answer)
        return JSONResponse(
            {"error-list": [], "results": results},
            headers={"Snap-Store-Version": str(STORE_VERSION)},
        )

    async def info(request: Request) -> Response:
        name = request.path_params["name"]
        data = await run_in_threadpool(store.info, name, _arch(request), _base_url(request))
        return JSONResponse(data, headers={"Snap-Store-Version": str(STORE_VERSION)})

    async def assertion(request: Request) -> Response:
        type_name = request.path_params["type"]
        keys = [k for k in request.path_params["keys"].split("/") if k != ""]
        max_format_text = request.query_params.get("max-format")
        max_format: int | None = None
        if max_format_text is not None:
            if not max_format_text.isdigit():
                raise APIError(400, "invalid-max-format", "max-format must be an integer")
            max_format = min(int(max_format_text), MAX_INT)
        sequence = request.query_params.get("sequence")
        content = await run_in_threadpool(store.assertion, type_name, keys, max_format, sequence)
        if content is None:
            return error_response(
                404,
                "not-found",
                f"{type_name} assertion not found: {'/'.join(keys)}",
                media_type="application/problem+json",
            )
        return Response(content, media_type=ASSERTION_MEDIA_TYPE)

    async def download(request: Request) -> Response:
        filename = request.path_params["filename"]
        stem = filename.removesuffix(".snap")
        snap_id, _, rev_text = stem.rpartition("_")
        if (
            not filename.endswith(".snap")
            or not snap_id
            or not rev_text.isdigit()
            or int(rev_text) > MAX_INT
        ):
            raise APIError(404, "not-found", f"no such download: {filename!r}")
        path = await run_in_threadpool(store.download_path, snap_id, int(rev_text))
        if path is None:
            raise APIError(404, "not-found", f"no such download: {filename!r}")
        name = store.db.snap_name(snap_id) or snap_id
        return BlobResponse(
            path,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}_{rev_text}.snap"'},
        )

    async def push(request: Request) -> Response:
        releases = [c for c in request.query_params.get("release", "").split(",") if c]
        expected = request.query_params.get("name")
        if expected is not None:
            store._check_name(expected)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > store.config.max_upload:
            raise APIError(413, "too-large", f"upload larger than {store.config.max_upload} bytes")
        incoming = store.new_upload()
        try:
            async for chunk in request.stream():
                incoming.write(chunk)
                if incoming.size > store.config.max_upload:
                    raise APIError(
                        413, "too-large", f"upload larger than {store.config.max_upload} bytes"
                    )
            if incoming.size == 0:
                raise APIError(400, "empty-upload", "the upload is empty")
            digest = await run_in_threadpool(incoming.finish)
            result = await run_in_threadpool(
                lambda: store.push(incoming, digest, release=releases, expected_name=expected)
            )
        finally:
            incoming.discard()
        return JSONResponse(result.to_json(), status_code=200 if result.existing else 201)

    async def release(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            raise APIError(400, "invalid-request", "request body is not JSON") from None
        if not isinstance(payload, dict):
            raise APIError(400, "invalid-request", "request body must be a JSON object")
        name, revision, channels = (
            payload.get("name"),
            payload.get("revision"),
            payload.get("channels"),
        )
        if not isinstance(name, str):
            raise APIError(400, "invalid-request", "'name' must be a string")
        if (
            isinstance(revision, bool)
            or not isinstance(revision, int)
            or not 1 <= revision <= MAX_INT
        ):
            raise APIError(400, "invalid-request", "'revision' must be a positive integer")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise APIError(400, "invalid-request", "'channels' must be a list of strings")
        done = await run_in_threadpool(store.release, name, revision, channels)
        return JSONResponse({"name": name, "revision": revision, "channels": done})

    async def add_assertions(request: Request) -> Response:
        body = await request.body()
        added = await run_in_threadpool(store.add_assertions, body)
        return JSONResponse(
            {
                "added": [
                    {"type": a.type, "primary-key": list(a.primary_key), "revision": a.revision}
                    for a in added
                ]
            },
            status_code=201,
        )

    async def list_snaps(request: Request) -> Response:
        return JSONResponse({"snaps": await run_in_threadpool(store.list_snaps)})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not-found", 405: "method-not-allowed"}.get(status, "error")
        return error_response(status, code, f"{request.method} {request.url.path}: {code}")

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal-error", f"internal server error: {exc}")

    routes = [
        Route("/v2/snaps/refresh", guarded(refresh, write=False), methods=["POST"]),
        Route("/v2/snaps/info/{name}", guarded(info, write=False), methods=["GET"]),
        Route(
            "/v2/assertions/{type}/{keys:path}",
            guarded(assertion, write=False),
            methods=["GET"],
        ),
        Route(
            "/api/v1/snaps/download/{filename}",
            guarded(download, write=False),
            methods=["GET", "HEAD"],
        ),
        Route("/v2/ucimage/push", guarded(push, write=True), methods=["POST"]),
        Route("/v2/ucimage/release", guarded(release, write=True), methods=["POST"]),
        Route("/v2/ucimage/assertions", guarded(add_assertions, write=True), methods=["POST"]),
        Route("/v2/ucimage/snaps", guarded(list_snaps, write=False), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: not_found, 500: server_error},
    )
    # a missing key is a JSON 404, not a redirect to ".../"
    app.router.redirect_slashes = False
    return app


def resolve_action(
    store: Store,
    action: Any,
    context: dict[str, Any],
    fields: Any,
    arch: str | None,
    base_url: str,
) -> dict[str, Any]:
    """One result of a refresh request, in the real store's shape."""
    if not isinstance(action, dict):
        return _error_result({}, "invalid-request", "action must be an object")
    kind = action.get("action")
    key = action.get("instance-key")
    key = key if isinstance(key, str) else ""
    name = action.get("name")
    snap_id = action.get("snap-id")
    if kind == "refresh":
        ctx = context.get(key) or {}
        snap_id = snap_id or ctx.get("snap-id")
        name = None
    elif kind not in ("download", "install"):
        return _error_result(action, "invalid-action", f"unsupported action {kind!r}")
    revision = action.get("revision")
    if revision is not None and (
        isinstance(revision, bool) or not isinstance(revision, int) or abs(revision) > MAX_INT
    ):
        return _error_result(action, "invalid-request", "revision must be an integer")
    channel = action.get("channel") or (context.get(key) or {}).get("tracking-channel")
    try:
        rev, where = store.resolve(
            name=name if isinstance(name, str) else None,
            snap_id=snap_id if isinstance(snap_id, str) else None,
            channel=channel if isinstance(channel, str) else None,
            revision=revision or None,
            arch=arch,
        )
    except APIError as exc:
        extra: dict[str, Any] = {}
        if exc.api_code == "revision-not-found":
            found = store.db.snap_by_name(name) if isinstance(name, str) else None
            sid = found[0] if found else snap_id
            if isinstance(sid, str):
                extra["releases"] = store._available(sid, arch)
        return _error_result(action, exc.api_code, exc.message, extra)
    result: dict[str, Any] = {
        "result": kind,
        "instance-key": key,
        "snap-id": rev.snap_id,
        "name": rev.name,
        "snap": store.snap_object(rev, base_url, fields if isinstance(fields, list) else None),
    }
    if where is not None:
        result["effective-channel"] = where.short
        result["redirect-channel"] = where.name
    return result


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _error_result(
    action: dict[str, Any], code: str, message: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if extra:
        error["extra"] = extra
    return {
        "result": "error",
        "instance-key": _text(action.get("instance-key")),
        "name": _text(action.get("name")),
        "snap-id": _text(action.get("snap-id")),
        "error": error,
    }


def serve(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    require_auth: bool = False,
    log_level: str = "warning",
    access_log: bool = False,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Open the store at *root*, recover from any crash, and serve until interrupted."""
    import uvicorn

    store = Store(root)
    removed = store.recover()
    if removed:
        log.warning("recovered after an interrupted run: removed %d leftover file(s)", len(removed))
    app = create_app(store, require_auth=require_auth)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if access_log else log_level,
        access_log=access_log,
        lifespan="off",
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    if ready is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets=sockets)
            bound = port
            for srv in getattr(server, "servers", []):
                for sock in srv.sockets:
                    bound = sock.getsockname()[1]
            ready(bound)

        server.startup = startup  # type: ignore[method-assign]
    server.run()
