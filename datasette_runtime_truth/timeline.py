"""The timeline store: the separate database whose ``timeline_conversations`` holds each
conversation's current runtime pointer. Which attached database it is, and reading it.

The pointer (``runtime_key``, the API's ``resolved_runtime_key``) is overwritten by every runtime
switch: it is never turn history, and nothing here writes.
"""

import os
import sqlite3
import urllib.parse

from . import config, sqlitefile

TABLE = "timeline_conversations"

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


async def database(datasette):
    """The attached timeline store: the ``timeline_database`` setting, else the first attached
    database with a ``timeline_conversations`` table, else None. ValueError when the configured
    one is not attached or has no ``timeline_conversations`` (yet)."""
    name = config.setting(datasette, "timeline_database")
    if name:
        if name not in datasette.databases:
            raise ValueError(f"{config.PLUGIN}: timeline_database {name!r} is not attached")
        if not await datasette.databases[name].table_exists(TABLE):
            raise ValueError(f"{config.PLUGIN}: timeline_database {name!r} has no {TABLE} table")
        return datasette.databases[name]
    for db_name, db in datasette.databases.items():
        if not db_name.startswith("_") and await db.table_exists(TABLE):
            return db
    return None


def is_timeline_store(conn):
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).fetchone() is not None


def read_pointers(conn):
    """{conv_id: runtime_key}: every conversation's pointer."""
    return dict(conn.execute("SELECT conv_id, runtime_key FROM timeline_conversations"))


def read_pointers_from_file(path, immutable=False):
    """read_pointers on a timeline.db file opened read-only; NotATimelineStore when it is not one."""
    kind = sqlitefile.special_kind(path)
    if kind:
        raise NotATimelineStore(f"{path} is {kind}, not a timeline.db")
    mode = "ro&immutable=1" if immutable else "ro"
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(os.path.abspath(path))}?mode={mode}", uri=True)
        try:
            if not is_timeline_store(conn):
                raise NotATimelineStore(f"{path} has no {TABLE} table")
            return read_pointers(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise NotATimelineStore(f"{path}: not a readable SQLite database ({error})") from None


def conversations_query(columns, limit, conv_id=None):
    """SQL and parameters listing the store's conversations, newest activity first, given the
    columns its ``timeline_conversations`` has."""

    def column(name, default):
        return name if name in columns else default

    sql = CONVERSATIONS_SQL.format(
        runtime_key=column("runtime_key", "''"),
        has_timeline=column("has_timeline", "0"),
        last_seen_version=column("last_seen_version", "0"),
        where="WHERE conv_id = :conv_id" if conv_id is not None else "",
    )
    return sql, {"limit": limit, "conv_id": conv_id}
