"""The self-hosted store's metadata: SQLite in WAL mode.

One connection per thread (SQLite connections are not shared across
threads); every write is a single transaction, so a crash leaves either the
whole change or none of it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ucimage.store.channels import Channel, parse_channel

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snaps (
    snap_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    publisher_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revisions (
    snap_id TEXT NOT NULL REFERENCES snaps(snap_id),
    revision INTEGER NOT NULL,
    sha3_384 TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    base TEXT,
    confinement TEXT NOT NULL,
    grade TEXT NOT NULL,
    architectures TEXT NOT NULL,
    epoch TEXT NOT NULL,
    summary TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    snap_yaml TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (snap_id, revision)
);
CREATE TABLE IF NOT EXISTS releases (
    snap_id TEXT NOT NULL REFERENCES snaps(snap_id),
    channel TEXT NOT NULL,
    architecture TEXT NOT NULL,
    revision INTEGER NOT NULL,
    released_at TEXT NOT NULL,
    PRIMARY KEY (snap_id, channel, architecture),
    FOREIGN KEY (snap_id, revision) REFERENCES revisions(snap_id, revision)
);
CREATE TABLE IF NOT EXISTS assertions (
    type TEXT NOT NULL,
    primary_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    format INTEGER NOT NULL,
    sequence_key TEXT,
    sequence INTEGER,
    content BLOB NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (type, primary_key, revision)
);
CREATE INDEX IF NOT EXISTS assertions_seq ON assertions(type, sequence_key, sequence);
"""


@dataclass(frozen=True)
class Revision:
    snap_id: str
    name: str
    publisher_id: str
    revision: int
    sha3_384: str
    size: int
    version: str
    type: str
    base: str | None
    confinement: str
    grade: str
    architectures: tuple[str, ...]
    epoch: str
    summary: str
    title: str
    description: str
    snap_yaml: str
    created_at: str

    def supports_arch(self, arch: str | None) -> bool:
        return arch is None or "all" in self.architectures or arch in self.architectures


@dataclass(frozen=True)
class Release:
    channel: Channel
    architecture: str
    revision: int
    released_at: str


_REVISION_SELECT = """
SELECT r.snap_id, s.name, s.publisher_id, r.revision, r.sha3_384, r.size, r.version, r.type,
       r.base, r.confinement, r.grade, r.architectures, r.epoch, r.summary, r.title,
       r.description, r.snap_yaml, r.created_at
FROM revisions r JOIN snaps s ON s.snap_id = r.snap_id
"""


def _revision(row: Sequence[Any]) -> Revision:
    values = list(row)
    values[11] = tuple(json.loads(values[11]))
    return Revision(*values)


class StoreDB:
    """Thread-safe access to ``store.db`` (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._conn().executescript(SCHEMA)
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema-version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed push survives power loss, not only a process kill
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn().execute(sql, params).fetchall())

    # -- meta ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    # -- snaps and revisions -------------------------------------------------------------

    def snap_by_name(self, name: str) -> tuple[str, str] | None:
        """``(snap_id, publisher_id)`` of *name*."""
        rows = self.query("SELECT snap_id, publisher_id FROM snaps WHERE name = ?", (name,))
        return (rows[0][0], rows[0][1]) if rows else None

    def snap_name(self, snap_id: str) -> str | None:
        rows = self.query("SELECT name FROM snaps WHERE snap_id = ?", (snap_id,))
        return str(rows[0][0]) if rows else None

    def revision(self, snap_id: str, revision: int) -> Revision | None:
        rows = self.query(
            _REVISION_SELECT + " WHERE r.snap_id = ? AND r.revision = ?", (snap_id, revision)
        )
        return _revision(rows[0]) if rows else None

    def revision_by_digest(self, sha3_hex: str) -> Revision | None:
        rows = self.query(_REVISION_SELECT + " WHERE r.sha3_384 = ?", (sha3_hex,))
        return _revision(rows[0]) if rows else None

    def revisions(self, snap_id: str) -> list[Revision]:
        rows = self.query(_REVISION_SELECT + " WHERE r.snap_id = ? ORDER BY r.revision", (snap_id,))
        return [_revision(r) for r in rows]

    def all_snaps(self) -> list[tuple[str, str, str]]:
        """``(name, snap_id, publisher_id)`` ordered by name."""
        return [
            (r[0], r[1], r[2])
            for r in self.query("SELECT name, snap_id, publisher_id FROM snaps ORDER BY name")
        ]

    def referenced_digests(self) -> set[str]:
        return {str(r[0]) for r in self.query("SELECT sha3_384 FROM revisions")}

    # -- releases ------------------------------------------------------------------------

    def releases(self, snap_id: str) -> list[Release]:
        rows = self.query(
            "SELECT channel, architecture, revision, released_at FROM releases "
            "WHERE snap_id = ? ORDER BY channel, architecture",
            (snap_id,),
        )
        return [Release(parse_channel(r[0]), r[1], r[2], r[3]) for r in rows]

    @staticmethod
    def release_in(
        conn: sqlite3.Connection,
        snap_id: str,
        revision: Revision,
        channels: Sequence[Channel],
        when: str,
    ) -> None:
        """Point *channels* at *revision* for each of its architectures."""
        for channel in channels:
            if "all" in revision.architectures:
                # an arch-independent revision replaces every arch in that channel
                conn.execute(
                    "DELETE FROM releases WHERE snap_id = ? AND channel = ?",
                    (snap_id, channel.name),
                )
            for arch in revision.architectures:
                conn.execute(
                    "INSERT OR REPLACE INTO releases(snap_id, channel, architecture, revision, "
                    "released_at) VALUES (?, ?, ?, ?, ?)",
                    (snap_id, channel.name, arch, revision.revision, when),
                )

    def released_revision(self, snap_id: str, channel: Channel, arch: str | None) -> int | None:
        """The revision released in exactly *channel* for *arch* (``all`` rows match any)."""
        rows = self.query(
            "SELECT architecture, revision FROM releases WHERE snap_id = ? AND channel = ?",
            (snap_id, channel.name),
        )
        exact = [rev for a, rev in rows if arch is not None and a == arch]
        if exact:
            return int(exact[0])
        anyarch = [rev for a, rev in rows if a == "all"]
        if anyarch:
            return int(anyarch[0])
        if arch is None and rows:
            return int(max(rev for _, rev in rows))
        return None

    # -- assertions ----------------------------------------------------------------------

    @staticmethod
    def add_assertion_in(
        conn: sqlite3.Connection,
        type_name: str,
        primary_key: Sequence[str],
        revision: int,
        fmt: int,
        content: bytes,
        when: str,
        sequence_key: Sequence[str] | None = None,
        sequence: int | None = None,
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO assertions(type, primary_key, revision, format, "
            "sequence_key, sequence, content, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                type_name,
                json.dumps(list(primary_key)),
                revision,
                fmt,
                json.dumps(list(sequence_key)) if sequence_key is not None else None,
                sequence,
                content,
                when,
            ),
        )

    def assertion(
        self, type_name: str, primary_key: Sequence[str], max_format: int | None
    ) -> bytes | None:
        """Newest revision of an assertion whose format is at most *max_format*."""
        rows = self.query(
            "SELECT content FROM assertions WHERE type = ? AND primary_key = ? "
            "AND (? IS NULL OR format <= ?) ORDER BY revision DESC LIMIT 1",
            (type_name, json.dumps(list(primary_key)), max_format, max_format),
        )
        return bytes(rows[0][0]) if rows else None

    def assertion_revision(self, type_name: str, primary_key: Sequence[str]) -> int | None:
        rows = self.query(
            "SELECT MAX(revision) FROM assertions WHERE type = ? AND primary_key = ?",
            (type_name, json.dumps(list(primary_key))),
        )
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def assertion_by_sequence(
        self,
        type_name: str,
        sequence_key: Sequence[str],
        sequence: int | None,
        max_format: int | None,
    ) -> bytes | None:
        """Sequence-forming types: *sequence* None means the latest sequence."""
        seq_clause = "AND sequence = ?" if sequence is not None else ""
        params: list[Any] = [type_name, json.dumps(list(sequence_key))]
        if sequence is not None:
            params.append(sequence)
        params += [max_format, max_format]
        rows = self.query(
            "SELECT content FROM assertions WHERE type = ? AND sequence_key = ? "
            f"{seq_clause} AND (? IS NULL OR format <= ?) "
            "ORDER BY sequence DESC, revision DESC LIMIT 1",
            params,
        )
        return bytes(rows[0][0]) if rows else None

    def assertion_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM assertions")[0][0])
