"""The self-hosted store's logic, independent of HTTP: push, release, resolve, serve.

A store directory holds::

    store.json      store id, authority id, key ids
    store.db        SQLite metadata (WAL)
    blobs/          snap files by SHA3-384
    keys/           root.pem, store.pem (0600)
    root.assert     the root authority (account + self-signed account-key): the --trusted file
    upload-token    bearer token for writes (0600)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import string
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ucimage.errors import UcimageError
from ucimage.snaps import SnapFile, validate_snap_name
from ucimage.snaps.digest import hex_to_b64url
from ucimage.store.channels import RISKS, Channel, parse_channel
from ucimage.store.errors import StoreError, StoreSetupError
from ucimage.store.server.authority import Authority, IndexedAssertion, index_assertion
from ucimage.store.server.blobs import BlobStore, Incoming
from ucimage.store.server.db import Revision, StoreDB

#: snap-ids snapd recognises for the system snaps (snap/naming/wellknown.go)
WELL_KNOWN_SNAP_IDS: dict[str, str] = {
    "snapd": "PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4",
    "core": "99T7MUlRhtI3U0QFgl5mXXESAiSwt776",
    "core18": "CSO04Jhav2yK0uz97cr0ipQRyqg0qQL6",
    "core20": "DLqre5XGLbDqg9jPtiAhRRjDuPVa5X1q",
    "core22": "amcUKQILKXHHTlmSa7NMdnXSx02dNeeT",
    "core24": "dwTAh7MZZ01zyriOZErqd1JynQLiOGvM",
}
STORE_VERSION = 60
_ID_ALPHABET = string.ascii_letters + string.digits


class APIError(StoreError):
    """An error the HTTP layer turns into a JSON ``error-list`` with *status*."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.api_code = code


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def new_snap_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(32))


def epoch_object(epoch: str) -> dict[str, list[int]]:
    """snap.yaml epoch (``"0"``, ``"1*"``, ``"{'read': [..], ...}"``) as the store's JSON form."""
    if epoch.endswith("*"):
        n = int(epoch[:-1])
        return {"read": [n - 1, n] if n > 0 else [0], "write": [n]}
    if epoch.isdigit():
        return {"read": [int(epoch)], "write": [int(epoch)]}
    try:
        value = json.loads(epoch.replace("'", '"'))
        return {"read": list(value.get("read", [0])), "write": list(value.get("write", [0]))}
    except (ValueError, AttributeError):
        return {"read": [0], "write": [0]}


@dataclass(frozen=True)
class StoreConfig:
    store_id: str
    authority_id: str
    publisher_id: str
    created: str
    max_upload: int = 8 << 30
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "store-id": self.store_id,
            "authority-id": self.authority_id,
            "publisher-id": self.publisher_id,
            "created": self.created,
            "max-upload": self.max_upload,
        }


@dataclass(frozen=True)
class PushResult:
    name: str
    snap_id: str
    revision: int
    sha3_384: str
    size: int
    released: tuple[str, ...]
    existing: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "snap-id": self.snap_id,
            "revision": self.revision,
            "sha3-384": self.sha3_384,
            "size": self.size,
            "released": list(self.released),
            "existing": self.existing,
        }


def _fault(point: str) -> None:
    """Test hook: ``UCIMAGE_STORE_FAULT=point:seconds`` sleeps at *point* (crash tests)."""
    spec = os.environ.get("UCIMAGE_STORE_FAULT", "")
    name, _, seconds = spec.partition(":")
    if name == point:
        time.sleep(float(seconds or "30"))


def _add_assertion_in(conn: Any, content: bytes, when: str) -> IndexedAssertion:
    """Index *content* and store it in the open transaction *conn*."""
    idx = index_assertion(content)
    StoreDB.add_assertion_in(
        conn,
        idx.type,
        idx.primary_key,
        idx.revision,
        idx.format,
        idx.content,
        when,
        idx.sequence_key,
        idx.sequence,
    )
    return idx


class Store:
    """An open store directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        config_path = self.root / "store.json"
        if not config_path.is_file():
            raise StoreSetupError(
                f"{str(self.root)!r} is not a ucimage store (no store.json)",
                hint=f"create one with: ucimage store init {self.root}",
            )
        raw = json.loads(config_path.read_text())
        self.config = StoreConfig(
            store_id=raw["store-id"],
            authority_id=raw["authority-id"],
            publisher_id=raw.get("publisher-id", raw["authority-id"]),
            created=raw.get("created", ""),
            max_upload=int(raw.get("max-upload", 8 << 30)),
            extra=raw,
        )
        self.db = StoreDB(self.root / "store.db")
        self.blobs = BlobStore(self.root / "blobs")
        self.authority = Authority.load(self.root)
        self._push_lock = threading.Lock()
        token_file = self.root / "upload-token"
        self.upload_token = token_file.read_text().strip() if token_file.is_file() else ""

    def recover(self) -> list[str]:
        """Start-up clean-up after a crash: interrupted uploads and orphan blobs."""
        return self.blobs.recover(self.db.referenced_digests())

    # -- push ----------------------------------------------------------------------------

    def new_upload(self) -> Incoming:
        return self.blobs.new_incoming()

    def push(
        self,
        incoming: Incoming,
        sha3_hex: str,
        *,
        release: Sequence[str] = (),
        expected_name: str | None = None,
    ) -> PushResult:
        """Register an uploaded, fsynced file as the snap's next revision.

        Nothing is visible until the final SQLite commit; on any error the upload
        is discarded and the database is unchanged.
        """
        try:
            channels = [parse_channel(c) for c in release]
            if expected_name is not None:
                self._check_name(expected_name)
            try:
                snap = SnapFile(incoming.path)
                info = snap.info
            except UcimageError as exc:
                if exc.code == "not-a-snap":
                    raise APIError(
                        400, "not-a-snap", "invalid snap upload: not a squashfs image"
                    ) from exc
                raise APIError(
                    400, "invalid-snap-yaml", f"invalid snap upload: {exc.message}"
                ) from exc
            if expected_name is not None and expected_name != info.name:
                raise APIError(
                    400,
                    "name-mismatch",
                    f"upload is snap {info.name!r}, not {expected_name!r}",
                )
            with self._push_lock:
                existing = self.db.revision_by_digest(sha3_hex)
                if existing is not None:
                    incoming.discard()
                    if channels:
                        self._release(existing, channels)
                    return PushResult(
                        existing.name,
                        existing.snap_id,
                        existing.revision,
                        sha3_hex,
                        existing.size,
                        tuple(c.name for c in channels),
                        True,
                    )
                self.blobs.commit(incoming, sha3_hex)
                try:
                    return self._register(info, sha3_hex, incoming.size, channels)
                except BaseException:
                    if self.db.revision_by_digest(sha3_hex) is None:
                        self.blobs.remove(sha3_hex)
                    raise
        finally:
            incoming.discard()

    def _register(
        self, info: Any, sha3_hex: str, size: int, channels: Sequence[Channel]
    ) -> PushResult:
        when = now_rfc3339()
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT snap_id, publisher_id FROM snaps WHERE name = ?", (info.name,)
            ).fetchone()
            new_snap = row is None
            if new_snap:
                snap_id = WELL_KNOWN_SNAP_IDS.get(info.name) or new_snap_id()
                publisher_id = self.config.publisher_id
                conn.execute(
                    "INSERT INTO snaps(snap_id, name, publisher_id, created_at) VALUES (?,?,?,?)",
                    (snap_id, info.name, publisher_id, when),
                )
            else:
                snap_id, publisher_id = row
            revision = int(
                conn.execute(
                    "SELECT COALESCE(MAX(revision), 0) + 1 FROM revisions WHERE snap_id = ?",
                    (snap_id,),
                ).fetchone()[0]
            )
            rev = Revision(
                snap_id=snap_id,
                name=info.name,
                publisher_id=publisher_id,
                revision=revision,
                sha3_384=sha3_hex,
                size=size,
                version=info.version,
                type=info.type,
                base=info.base,
                confinement=info.confinement,
                grade=info.grade,
                architectures=tuple(info.architectures),
                epoch=info.epoch,
                summary=info.summary,
                title=info.title,
                description=info.description,
                snap_yaml=info.text,
                created_at=when,
            )
            conn.execute(
                "INSERT INTO revisions(snap_id, revision, sha3_384, size, version, type, base, "
                "confinement, grade, architectures, epoch, summary, title, description, "
                "snap_yaml, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    snap_id,
                    revision,
                    sha3_hex,
                    size,
                    rev.version,
                    rev.type,
                    rev.base,
                    rev.confinement,
                    rev.grade,
                    json.dumps(list(rev.architectures)),
                    rev.epoch,
                    rev.summary,
                    rev.title,
                    rev.description,
                    rev.snap_yaml,
                    when,
                ),
            )
            if new_snap:
                decl = self.authority.sign_store_assertion(
                    "snap-declaration",
                    {
                        "series": "16",
                        "snap-id": snap_id,
                        "snap-name": info.name,
                        "publisher-id": publisher_id,
                        "timestamp": when,
                    },
                )
                self._add_assertion_in(conn, decl, when)
            rev_headers: dict[str, Any] = {
                "snap-sha3-384": hex_to_b64url(sha3_hex),
                "snap-id": snap_id,
                "snap-size": str(size),
                "snap-revision": str(revision),
                "developer-id": publisher_id,
                "timestamp": when,
            }
            if info.provenance and info.provenance != "global-upload":
                rev_headers["provenance"] = info.provenance
            self._add_assertion_in(
                conn, self.authority.sign_store_assertion("snap-revision", rev_headers), when
            )
            StoreDB.release_in(conn, snap_id, rev, channels, when)
            _fault("before-commit")
        return PushResult(
            info.name, snap_id, revision, sha3_hex, size, tuple(c.name for c in channels), False
        )

    def _add_assertion_in(self, conn: Any, content: bytes, when: str) -> IndexedAssertion:
        return _add_assertion_in(conn, content, when)

    @staticmethod
    def _check_name(name: str) -> str:
        try:
            return validate_snap_name(name)
        except UcimageError as exc:
            raise APIError(400, "invalid-name", exc.message) from exc

    # -- release, list, assertions -------------------------------------------------------

    def release(self, name: str, revision: int, channels: Sequence[str]) -> list[str]:
        self._check_name(name)
        if not channels:
            raise APIError(400, "invalid-channel", "no channel to release to")
        try:
            parsed = [parse_channel(c) for c in channels]
        except UcimageError as exc:
            raise APIError(400, "invalid-channel", exc.message) from exc
        found = self.db.snap_by_name(name)
        if found is None:
            raise APIError(404, "name-not-found", f"No snap named {name!r} found")
        rev = self.db.revision(found[0], revision)
        if rev is None:
            raise APIError(404, "revision-not-found", f"snap {name!r} has no revision {revision}")
        with self._push_lock:
            self._release(rev, parsed)
        return [c.name for c in parsed]

    def _release(self, rev: Revision, channels: Sequence[Channel]) -> None:
        with self.db.transaction() as conn:
            StoreDB.release_in(conn, rev.snap_id, rev, channels, now_rfc3339())

    def add_assertions(self, content: bytes) -> list[IndexedAssertion]:
        """Add every assertion of a stream (account, account-key, model, validation-set…)."""
        from ucimage.store.server.authority import split_stream

        added: list[IndexedAssertion] = []
        try:
            items = split_stream(content)
        except UcimageError as exc:
            raise APIError(400, "invalid-assertion", exc.message) from exc
        if not items:
            raise APIError(400, "invalid-assertion", "no assertion in the upload")
        for item in items:
            self._check_signature(item, items)
        when = now_rfc3339()
        with self._push_lock, self.db.transaction() as conn:
            for item in items:
                try:
                    idx = index_assertion(item)
                except UcimageError as exc:
                    raise APIError(400, "invalid-assertion", exc.message) from exc
                current = self.db.assertion_revision(idx.type, idx.primary_key)
                if current is not None and current > idx.revision:
                    raise APIError(
                        409,
                        "revision-conflict",
                        f"{idx.type} {'/'.join(idx.primary_key)} already has revision "
                        f"{current} (newer than {idx.revision})",
                    )
                StoreDB.add_assertion_in(
                    conn,
                    idx.type,
                    idx.primary_key,
                    idx.revision,
                    idx.format,
                    idx.content,
                    when,
                    idx.sequence_key,
                    idx.sequence,
                )
                added.append(idx)
        return added

    def _check_signature(self, a: Any, batch: Sequence[Any]) -> None:
        """Refuse a signature that does not match a signing key we know (tampering).

        Assertions signed by keys the store does not have are kept as they are:
        clients verify every chain themselves against the roots they trust.
        """
        from ucimage.assertions import PublicKey, Signature, decode

        key_id = a.sign_key_id
        key_text: bytes | None = None
        for other in batch:
            if other.type == "account-key" and other.header("public-key-sha3-384") == key_id:
                key_text = other.body
        if key_text is None:
            stored = self.db.assertion("account-key", [key_id], None)
            if stored is not None:
                key_text = decode(stored).body
        if key_text is None:
            return
        try:
            PublicKey.decode(key_text).verify(a.content, Signature.decode(a.signature))
        except UcimageError as exc:
            raise APIError(
                400, "invalid-signature", f"{a.type} {'/'.join(a.primary_key)}: {exc.message}"
            ) from exc

    def list_snaps(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, snap_id, publisher in self.db.all_snaps():
            revs = self.db.revisions(snap_id)
            out.append(
                {
                    "name": name,
                    "snap-id": snap_id,
                    "publisher-id": publisher,
                    "revisions": [
                        {
                            "revision": r.revision,
                            "version": r.version,
                            "architectures": list(r.architectures),
                            "sha3-384": r.sha3_384,
                            "size": r.size,
                            "created-at": r.created_at,
                        }
                        for r in revs
                    ],
                    "channels": [
                        {
                            "channel": rel.channel.name,
                            "architecture": rel.architecture,
                            "revision": rel.revision,
                            "released-at": rel.released_at,
                        }
                        for rel in self.db.releases(snap_id)
                    ],
                }
            )
        return out

    # -- read side -----------------------------------------------------------------------

    def download_path(self, snap_id: str, revision: int) -> Path | None:
        rev = self.db.revision(snap_id, revision)
        if rev is None:
            return None
        path = self.blobs.path_for(rev.sha3_384)
        return path if path.is_file() else None

    def snap_object(
        self, rev: Revision, base_url: str, fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        url = f"{base_url}/api/v1/snaps/download/{rev.snap_id}_{rev.revision}.snap"
        obj: dict[str, Any] = {
            "architectures": list(rev.architectures),
            "base": rev.base,
            "confinement": rev.confinement,
            "contact": "",
            "created-at": rev.created_at,
            "description": rev.description,
            "download": {"url": url, "sha3-384": rev.sha3_384, "size": rev.size, "deltas": []},
            "epoch": epoch_object(rev.epoch),
            "license": "",
            "name": rev.name,
            "prices": {},
            "private": False,
            "publisher": {
                "id": rev.publisher_id,
                "username": rev.publisher_id,
                "display-name": rev.publisher_id,
                "validation": "unproven",
            },
            "revision": rev.revision,
            "snap-id": rev.snap_id,
            "snap-yaml": rev.snap_yaml,
            "summary": rev.summary,
            "title": rev.title or rev.name,
            "type": rev.type,
            "version": rev.version,
            "website": "",
            "store-url": "",
            "media": [],
            "common-ids": [],
            "grade": rev.grade,
        }
        if fields:
            keep = set(fields) | {"name", "snap-id", "revision", "download"}
            obj = {k: v for k, v in obj.items() if k in keep}
        return obj

    def _available(self, snap_id: str, arch: str | None) -> list[dict[str, str]]:
        out = []
        for rel in self.db.releases(snap_id):
            if arch is None or rel.architecture in (arch, "all"):
                out.append({"architecture": rel.architecture, "channel": rel.channel.short})
        return out

    def resolve(
        self,
        *,
        name: str | None,
        snap_id: str | None,
        channel: str | None,
        revision: int | None,
        arch: str | None,
    ) -> tuple[Revision, Channel | None]:
        """Find a revision like the real store; raise :class:`APIError` with the store's codes."""
        if name is not None:
            found = self.db.snap_by_name(name)
            if found is None:
                raise APIError(404, "name-not-found", f"No snap named {name!r} found")
            sid = found[0]
        elif snap_id is not None:
            found_name = self.db.snap_name(snap_id)
            if found_name is None:
                raise APIError(404, "id-not-found", f"No snap with id {snap_id!r} found")
            sid = snap_id
            name = found_name
        else:
            raise APIError(400, "invalid-request", "action needs a name or a snap-id")
        if revision is not None:
            rev = self.db.revision(sid, revision)
            if rev is None or not rev.supports_arch(arch):
                raise APIError(
                    404,
                    "revision-not-found",
                    f"No revision {revision} of snap {name!r}"
                    + (f" for architecture {arch}" if arch else ""),
                )
            where = None
            for rel in self.db.releases(sid):
                if rel.revision == revision:
                    where = rel.channel
                    break
            return rev, where
        try:
            wanted = parse_channel(channel or "latest/stable")
        except UcimageError as exc:
            raise APIError(400, "invalid-channel", exc.message) from exc
        for candidate in wanted.fallbacks():
            found_rev = self.db.released_revision(sid, candidate, arch)
            if found_rev is not None:
                rev = self.db.revision(sid, found_rev)
                if rev is not None:
                    return rev, wanted
        raise APIError(
            404,
            "revision-not-found",
            f"No revision of snap {name!r} in channel {wanted.name!r}"
            + (f" for architecture {arch}" if arch else ""),
        )

    def info(self, name: str, arch: str | None, base_url: str) -> dict[str, Any]:
        self._check_name(name)
        found = self.db.snap_by_name(name)
        if found is None:
            raise APIError(404, "snap-not-found", f"No snap named {name!r} found")
        sid = found[0]
        channel_map: list[dict[str, Any]] = []
        releases = sorted(
            self.db.releases(sid),
            key=lambda r: (
                r.channel.track != "latest",
                r.channel.track,
                RISKS.index(r.channel.risk),
            ),
        )
        for rel in releases:
            if arch is not None and rel.architecture not in (arch, "all"):
                continue
            rev = self.db.revision(sid, rel.revision)
            if rev is None:
                continue
            entry = self.snap_object(rev, base_url)
            entry["channel"] = {
                "architecture": rel.architecture,
                "name": rel.channel.short,
                "risk": rel.channel.risk,
                "track": rel.channel.track,
                "released-at": rel.released_at,
            }
            channel_map.append(entry)
        revs = self.db.revisions(sid)
        common = self.snap_object(revs[-1], base_url) if revs else {}
        common.pop("download", None)
        return {"name": name, "snap-id": sid, "snap": common, "channel-map": channel_map}

    def assertion(
        self,
        type_name: str,
        keys: Sequence[str],
        max_format: int | None,
        sequence: str | None,
    ) -> bytes | None:
        from ucimage.store.server.authority import primary_key_names

        names = primary_key_names(type_name)
        if names is None:
            raise APIError(400, "invalid-type", f"unknown assertion type {type_name!r}")
        if sequence is not None:
            if type_name not in ("validation-set", "repair") or len(keys) != len(names) - 1:
                raise APIError(400, "invalid-key", "?sequence= needs a sequence key")
            if sequence == "latest":
                seq_num: int | None = None
            elif sequence.isdigit() and len(sequence) < 10:
                seq_num = int(sequence)
            else:
                raise APIError(400, "invalid-sequence", f"invalid sequence {sequence!r}")
            return self.db.assertion_by_sequence(type_name, keys, seq_num, max_format)
        full = list(keys)
        # snap-revision & co: a trailing optional provenance defaults to global-upload
        if len(full) == len(names) - 1 and names[-1] == "provenance":
            full.append("global-upload")
        if len(full) != len(names):
            raise APIError(
                400,
                "invalid-key",
                f"{type_name} needs {len(names)} primary key values ({', '.join(names)})",
            )
        return self.db.assertion(type_name, full, max_format)


def init_store(
    root: Path,
    *,
    authority_id: str | None = None,
    store_id: str | None = None,
    key_bits: int = 4096,
) -> Path:
    """Create a new store directory (see the module docstring)."""
    from ucimage.store.server.authority import create_authority

    root = Path(root)
    if (root / "store.json").exists():
        raise StoreSetupError(f"a store already exists in {str(root)!r}")
    # never scatter keys and a database among someone's files (e.g. `store init /tmp`)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise StoreSetupError(
            f"{str(root)!r} is not empty and is not a ucimage store",
            hint=f"give a new or empty directory, e.g. `ucimage store init {root / 'store'}`",
        )
    root.mkdir(parents=True, exist_ok=True)
    suffix = secrets.token_hex(4)
    authority = authority_id or f"ucimage-{suffix}"
    try:
        validate_snap_name(authority, "authority id")
    except UcimageError as exc:
        raise StoreSetupError(exc.message, hint="an account id like 'my-brand-store'") from exc
    config = StoreConfig(
        store_id=store_id or f"ucimage-store-{suffix}",
        authority_id=authority,
        publisher_id=authority,
        created=now_rfc3339(),
    )
    root_assertions = create_authority(root, authority, key_bits=key_bits)
    token = root / "upload-token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    db = StoreDB(root / "store.db")
    when = now_rfc3339()
    with db.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('store-id', ?)", (config.store_id,)
        )
        for content in root_assertions:
            _add_assertion_in(conn, content, when)
    db.close()
    BlobStore(root / "blobs")
    # store.json last: its presence marks a complete store
    tmp = root / "store.json.tmp"
    tmp.write_text(json.dumps(config.to_json(), indent=2) + "\n")
    tmp.replace(root / "store.json")
    return root
