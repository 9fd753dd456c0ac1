"""The timeline store: the separate database whose ``timeline_conversations`` holds each
conversation's current runtime pointer, and whose ``timeline_entities`` / ``timeline_versions``
hold each conversation's timeline. Which attached database it is, and reading it.

The pointer (``runtime_key``, the API's ``resolved_runtime_key``) is overwritten by every runtime
switch: it is never turn history, and nothing here writes.
"""

from dataclasses import dataclass
import re
import sqlite3
from typing import TYPE_CHECKING, Any, Collection, Optional

from .. import config
from . import sqlitefile
from ..upstream import golang, schema

if TYPE_CHECKING:
    from datasette.app import Datasette
    from datasette.database import Database

TABLE = "timeline_conversations"
DEFAULT_SNAPSHOT_LIMIT = 5000

# The upstream store's GetSnapshot, statement for statement; the id is bound as a BLOB and cast,
# so an id that is not UTF-8 compares byte for byte as Go's string did.
VERSION_SQL = """
SELECT CASE WHEN typeof(version) IN ('integer', 'real') THEN version END AS number,
       CAST(version AS BLOB) AS raw
FROM timeline_versions
WHERE conv_id = CAST(:conv_id AS TEXT)
"""
ENTITIES_SQL = """
SELECT CAST(entity_json AS BLOB) AS entity_json
FROM timeline_entities
WHERE conv_id = CAST(:conv_id AS TEXT) {since}
ORDER BY created_at_ms ASC, entity_id ASC
LIMIT :limit
"""
SINCE_SQL = "AND version > :since_version"
ENTITY_TABLES = ("timeline_entities", "timeline_versions")

CONVERSATIONS_SQL = """
SELECT conv_id, session_id, {runtime_key} AS runtime_key, last_activity_ms,
       ({has_timeline} OR {last_seen_version} > 0) AS has_timeline_source
FROM timeline_conversations
{where}
ORDER BY last_activity_ms DESC, conv_id ASC
LIMIT :limit
"""


class NotATimelineStore(ValueError):
    """A file given as the timeline store that cannot be read as one."""


async def database(datasette: "Datasette") -> Optional["Database"]:
    """The attached timeline store: the ``timeline_database`` setting, else the first attached
    database with a ``timeline_conversations`` table, else None. ValueError when the configured
    one is not attached or has no ``timeline_conversations`` (yet)."""
    name = config.setting(datasette, "timeline_database")
    if name:
        if name not in datasette.databases:
            raise ValueError(f"{config.PLUGIN}: timeline_database {name!r} is not attached")
        if not await datasette.databases[name].execute_fn(is_timeline_store):
            raise ValueError(f"{config.PLUGIN}: timeline_database {name!r} has no {TABLE} table")
        return datasette.databases[name]
    for db_name, db in datasette.databases.items():
        if not db_name.startswith("_") and await db.execute_fn(is_timeline_store):
            return db
    return None


def is_timeline_store(conn: sqlite3.Connection) -> bool:
    return TABLE in schema.existing_tables(conn, (TABLE,))


def read_pointers(conn: sqlite3.Connection) -> dict[str, Any]:
    """{conv_id: runtime_key}: every conversation's pointer."""
    return dict(conn.execute("SELECT conv_id, runtime_key FROM timeline_conversations"))


def read_pointers_from_file(path: str, immutable: bool = False) -> dict[str, Any]:
    """read_pointers on a timeline.db file opened read-only; NotATimelineStore when it is not one."""
    kind = sqlitefile.special_kind(path)
    if kind:
        raise NotATimelineStore(f"{path} is {kind}, not a timeline.db")
    try:
        conn = sqlite3.connect(sqlitefile.read_only_uri(path, immutable), uri=True)
        try:
            if not is_timeline_store(conn):
                raise NotATimelineStore(f"{path} has no {TABLE} table")
            return read_pointers(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise NotATimelineStore(f"{path}: not a readable SQLite database ({error})") from None


def conversations_query(columns: Collection[str], limit: int, conv_id: Optional[str] = None
                        ) -> tuple[str, dict[str, Any]]:
    """SQL and parameters listing the store's conversations, newest activity first, given the
    columns its ``timeline_conversations`` has."""

    def column(name: str, default: str) -> str:
        return name if name in columns else default

    sql = CONVERSATIONS_SQL.format(
        runtime_key=column("runtime_key", "''"),
        has_timeline=column("has_timeline", "0"),
        last_seen_version=column("last_seen_version", "0"),
        where="WHERE conv_id = :conv_id" if conv_id is not None else "",
    )
    return sql, {"limit": limit, "conv_id": conv_id}


class SnapshotFailed(Exception):
    """Where the upstream's GetSnapshot returned an error: the route's 500."""


@dataclass(frozen=True)
class Snapshot:
    """What GetSnapshot read: the conversation's stored version (Go's int64) and the
    ``entity_json`` of each selected entity, as bytes."""

    version: int
    entities: list


def read_snapshot(conn: sqlite3.Connection, conv_id: bytes, since_version: int, limit: int) -> Snapshot:
    """GetSnapshot(conv_id, since_version, limit) on a connection: ``conv_id`` as bytes, ``limit``
    already defaulted. A store without the entity tables (an older file) reads as empty."""
    present = entity_tables(conn)
    version = _version(conn, conv_id) if "timeline_versions" in present else 0
    if since_version >= 2**63:
        raise SnapshotFailed("sql: uint64 values with high bit set are not supported")
    entities = _entity_rows(conn, conv_id, since_version, limit) if "timeline_entities" in present else []
    if version < 0:
        raise SnapshotFailed(f"invalid snapshot version {version}")
    return Snapshot(version, entities)


def _version(conn: sqlite3.Connection, conv_id: bytes) -> int:
    row = conn.execute(VERSION_SQL, {"conv_id": conv_id}).fetchone()
    return 0 if row is None else go_int64(row[0], row[1])


def _entity_rows(conn: sqlite3.Connection, conv_id: bytes, since_version: int, limit: int) -> list[bytes]:
    sql = ENTITIES_SQL.format(since=SINCE_SQL if since_version else "")
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: Datasette's sqlite3.Row costs a third of the read
    params = {"conv_id": conv_id, "since_version": since_version, "limit": limit}
    entities = [row[0] for row in cursor.execute(sql, params)]
    if None in entities:
        raise SnapshotFailed("converting NULL to string is unsupported")
    return entities


def entity_tables(conn: sqlite3.Connection) -> frozenset[str]:
    """Which of the entity tables the store has."""
    return schema.existing_tables(conn, ENTITY_TABLES)


_GO_INT = re.compile(rb"[+-]?[0-9]+")


def go_int64(number: Any, raw: Optional[bytes]) -> int:
    """A column value scanned into a Go int64 by database/sql, 0 where Scan fails (its error is
    ignored upstream): integers as they are, a REAL through ``%g`` text, text and BLOBs parsed."""
    if isinstance(number, int):
        return number
    text = golang.format_float(number).encode() if isinstance(number, float) else raw
    if text is None or not _GO_INT.fullmatch(text):
        return 0
    value = int(text)
    return value if -(2**63) <= value < 2**63 else 0
