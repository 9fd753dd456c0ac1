"""Reading conversations, turns and phase snapshots from turns.db and the timeline store.

Every query is built from fixed SQL fragments chosen by what the store has (a pre-cutover store has
no ``runtime_key``; a very old one no ``updated_at_ms``; a minimal one no snapshot tables) and which
filters are present; every value travels as a bound parameter. Ties on a timestamp are broken by
the ids, ascending, so every list has one order.
"""

import itertools
import sqlite3
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import timeline_store
from ..upstream import schema
from ..upstream.api_shapes import Dump, PayloadBuilder, Snapshot

if TYPE_CHECKING:
    from datasette.database import Database



def text(value: Any) -> Any:
    """A BLOB where text belongs (an id, a role, JSON) as text: UTF-8 decoded, else hex."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    return value


async def _rows(db: "Database", sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a read as dicts, with BLOBs turned into text (see text)."""
    results = await db.execute(sql, params)
    return [{key: text(row[key]) for key in row.keys()} for row in results.rows]


async def table_columns(db: "Database", table: str) -> frozenset[str]:
    rows = (await db.execute("SELECT name FROM pragma_table_info(:table)", {"table": table})).rows
    return frozenset(row[0] for row in rows)


async def turns_shape(db: "Database") -> schema.TurnsShape:
    """The database's TurnsShape, its ``turns`` aliased ``t`` as every query here does."""
    return await db.execute_fn(lambda conn: schema.TurnsShape.read(conn, prefix="t."))


# --- conversations ------------------------------------------------------------------------------

async def timeline_conversations(db: "Database", limit: int, conv_id: Optional[str] = None) -> list[dict[str, Any]]:
    """Rows ``(conv_id, session_id, runtime_key, last_activity_ms, has_timeline_source)`` from
    the timeline store, newest activity first."""
    columns = await table_columns(db, "timeline_conversations")
    sql, params = timeline_store.conversations_query(columns, limit, conv_id)
    return await _rows(db, sql, params)


DERIVED_CONVERSATIONS_SQL = """
WITH latest AS (
  SELECT t.conv_id, max({updated_at_ms}) AS last_activity_ms
  FROM turns AS t
  {where}
  GROUP BY t.conv_id
  ORDER BY last_activity_ms DESC, t.conv_id ASC
  LIMIT :limit
),
newest_turn AS (
  SELECT latest.conv_id, t.session_id, {runtime_key} AS runtime_key, latest.last_activity_ms,
         row_number() OVER (PARTITION BY latest.conv_id ORDER BY t.session_id, t.turn_id) AS n
  FROM latest
  JOIN turns AS t ON t.conv_id = latest.conv_id AND {updated_at_ms} = latest.last_activity_ms
)
SELECT conv_id, session_id, runtime_key, last_activity_ms, 0 AS has_timeline_source
FROM newest_turn
WHERE n = 1
ORDER BY last_activity_ms DESC, conv_id ASC
"""


def derived_conversations_query(shape: schema.TurnsShape, limit: int,
                                conv_id: Optional[str] = None) -> tuple[str, dict[str, Any]]:
    """One conversation per ``conv_id`` in turns.db: the session and runtime of its most recently
    updated turn, its newest ``updated_at_ms`` as last activity.

    The grouping reads only the ``turns_by_conv_session`` index (conv_id, session_id,
    updated_at_ms), never the table; the newest turn of each listed conversation is then one index
    search."""
    sql = DERIVED_CONVERSATIONS_SQL.format(
        updated_at_ms=shape.updated_at_ms,
        runtime_key=shape.runtime_key,
        where="WHERE t.conv_id = :conv_id" if conv_id is not None else "",
    )
    return sql, {"limit": limit, "conv_id": conv_id}


async def derived_conversations(db: "Database", shape: schema.TurnsShape, limit: int,
                                conv_id: Optional[str] = None) -> list[dict[str, Any]]:
    sql, params = derived_conversations_query(shape, limit, conv_id)
    return await _rows(db, sql, params)


# --- snapshots ----------------------------------------------------------------------------------

# The phase snapshots a request asks for, newest first: the same page for the snapshots and for
# their size. {columns} adds the turn's own columns (or nothing).
SNAPSHOT_PAGE_SQL = """
WITH page AS (
  SELECT m.conv_id, m.session_id, m.turn_id, m.phase, m.snapshot_created_at_ms AS created_at_ms{columns}
  FROM turns AS t
  JOIN turn_block_membership AS m
    ON m.conv_id = t.conv_id AND m.session_id = t.session_id AND m.turn_id = t.turn_id
  WHERE {conditions}
  GROUP BY m.conv_id, m.session_id, m.turn_id, m.phase, m.snapshot_created_at_ms
  ORDER BY created_at_ms DESC, m.conv_id, m.session_id, m.turn_id, m.phase
  {limit}
)"""

SNAPSHOTS_SQL = SNAPSHOT_PAGE_SQL + """
SELECT page.*, m.ordinal, m.block_id, b.kind, b.role, b.payload_json,
       b.block_metadata_json
FROM page
JOIN turn_block_membership AS m
  ON m.conv_id = page.conv_id AND m.session_id = page.session_id AND m.turn_id = page.turn_id
 AND m.phase = page.phase AND m.snapshot_created_at_ms = page.created_at_ms
LEFT JOIN blocks AS b ON b.block_id = m.block_id AND b.content_hash = m.content_hash
ORDER BY page.created_at_ms DESC, page.conv_id, page.session_id, page.turn_id, page.phase, m.ordinal
"""

# A store with a turns table and no snapshot tables: each turn row is one item, phase ''.
TURN_ROWS_SQL = """
SELECT t.conv_id, t.session_id, t.turn_id, '' AS phase, {updated_at_ms} AS created_at_ms,
       {runtime_key} AS runtime_key, {inference_id} AS inference_id,
       {metadata_json} AS metadata_json, {data_json} AS data_json,
       NULL AS ordinal, NULL AS block_id, NULL AS kind, NULL AS role, NULL AS payload_json,
       NULL AS block_metadata_json
FROM turns AS t
WHERE {conditions}
ORDER BY created_at_ms DESC, t.conv_id, t.session_id, t.turn_id
{limit}
"""


def snapshots_query(shape: schema.TurnsShape, conv_id: Optional[str] = None, session_id: Optional[str] = None,
                    turn_id: Optional[str] = None, phase: Optional[str] = None, since_ms: int = 0,
                    limit: Optional[int] = None) -> tuple[str, dict[str, Any]]:
    """SQL and parameters listing phase snapshots, newest first, with their blocks by ordinal.

    At least one of ``conv_id`` / ``session_id`` should be given: the turns are then found through
    ``turns_by_conv_session`` / ``turns_by_session`` (or the primary key), and their snapshots
    through ``turn_block_membership_by_turn_phase``."""
    conditions, params = _conditions(shape, conv_id=conv_id, session_id=session_id, turn_id=turn_id,
                                     phase=phase, since_ms=since_ms, limit=limit)
    template = SNAPSHOTS_SQL if shape.has_snapshots else TURN_ROWS_SQL
    turn_columns = {"runtime_key": shape.runtime_key, "inference_id": shape.inference_id,
                    "metadata_json": shape.metadata_json, "data_json": shape.data_json}
    sql = template.format(
        columns="".join(f",\n         {sql} AS {name}" for name, sql in turn_columns.items()),
        **turn_columns,
        updated_at_ms=shape.updated_at_ms,
        conditions=conditions,
        limit="LIMIT :limit" if limit is not None else "",
    )
    return sql, params


def _conditions(shape: schema.TurnsShape, conv_id: Optional[str] = None, session_id: Optional[str] = None,
                turn_id: Optional[str] = None, phase: Optional[str] = None, since_ms: int = 0,
                limit: Optional[int] = None) -> tuple[str, dict[str, Any]]:
    """The WHERE clause choosing the snapshots of these filters, and every parameter."""
    params = {"conv_id": conv_id, "session_id": session_id, "turn_id": turn_id, "phase": phase,
              "since_ms": since_ms, "limit": limit}
    conditions = [
        condition
        for condition, wanted in (
            ("t.conv_id = :conv_id", conv_id is not None),
            ("t.session_id = :session_id", session_id is not None),
            ("t.turn_id = :turn_id", turn_id is not None),
        )
        if wanted
    ]
    if shape.has_snapshots:
        snapshot_time, snapshot_phase = "m.snapshot_created_at_ms", "m.phase"
    else:
        snapshot_time, snapshot_phase = shape.updated_at_ms, "''"
    if phase is not None:
        conditions.append(f"{snapshot_phase} = :phase")
    if since_ms > 0:
        conditions.append(f"{snapshot_time} >= :since_ms")
    return " AND ".join(conditions) or "1", params


# The JSON text a column holds, in characters, as the payload builder reads it (a BLOB as text).
CHARS = "(CASE WHEN typeof({0}) IN ('text', 'blob') THEN length(CAST({0} AS TEXT)) ELSE 0 END)"

SNAPSHOT_SIZE_SQL = SNAPSHOT_PAGE_SQL + """
SELECT
  (SELECT count(*) FROM page) AS snapshots,
  (SELECT coalesce(sum({metadata_chars} + {data_chars}), 0)
   FROM page
   JOIN turns AS t
     ON t.conv_id = page.conv_id AND t.session_id = page.session_id AND t.turn_id = page.turn_id)
  + (SELECT coalesce(sum({payload_chars} + {block_metadata_chars}), 0)
     FROM page
     JOIN turn_block_membership AS m
       ON m.conv_id = page.conv_id AND m.session_id = page.session_id AND m.turn_id = page.turn_id
      AND m.phase = page.phase AND m.snapshot_created_at_ms = page.created_at_ms
     LEFT JOIN blocks AS b ON b.block_id = m.block_id AND b.content_hash = m.content_hash) AS chars
"""

TURN_ROWS_SIZE_SQL = """
WITH page AS (
  SELECT {metadata_chars} + {data_chars} AS chars
  FROM turns AS t
  WHERE {conditions}
  ORDER BY {updated_at_ms} DESC, t.conv_id, t.session_id, t.turn_id
  {limit}
)
SELECT count(*) AS snapshots, coalesce(sum(chars), 0) AS chars
FROM page
"""


def size_query(shape: schema.TurnsShape, **filters: Any) -> tuple[str, dict[str, Any]]:
    """SQL and parameters giving ``(snapshots, chars)`` for what ``snapshots_query`` with the same
    filters would read: how many phase snapshots, and how many characters of JSON text (the turns'
    metadata and data once per snapshot, each block's payload and metadata) their payloads are
    built from. Only lengths leave SQLite: the text itself is never read into Python."""
    conditions, params = _conditions(shape, **filters)
    template = SNAPSHOT_SIZE_SQL if shape.has_snapshots else TURN_ROWS_SIZE_SQL
    sql = template.format(
        columns="",
        metadata_chars=CHARS.format(shape.metadata_json),
        data_chars=CHARS.format(shape.data_json),
        payload_chars=CHARS.format("b.payload_json"),
        block_metadata_chars=CHARS.format("b.block_metadata_json"),
        updated_at_ms=shape.updated_at_ms,
        conditions=conditions,
        limit="LIMIT :limit" if params["limit"] is not None else "",
    )
    return sql, params


async def size(db: "Database", shape: schema.TurnsShape, **filters: Any) -> tuple[int, int]:
    """``(snapshots, chars)`` of the snapshots matching ``filters`` (see size_query), under
    Datasette's ``sql_time_limit_ms`` like any read of a request."""
    sql, params = size_query(shape, **filters)
    row = (await db.execute(sql, params)).rows[0]
    return row["snapshots"], row["chars"]


def encode_snapshots(conn: sqlite3.Connection, shape: schema.TurnsShape, build: Callable[[Snapshot, Dump], Any],
                     finish: Callable[[list[Any]], Any], **filters: Any) -> Any:
    """``finish`` of the list of ``build(snapshot, dump)`` for each snapshot matching ``filters``
    (see snapshots_query), in order; ``dump`` writes a payload's YAML (one PayloadBuilder serves
    the whole read). Each snapshot is built as soon as its rows are read, so the rows of one
    snapshot at a time are held, never the whole result."""
    sql, params = snapshots_query(shape, **filters)
    cursor = conn.execute(sql, params)
    names = [column[0] for column in cursor.description]
    rows = (dict(zip(names, map(text, row))) for row in cursor)
    builder = PayloadBuilder()
    items = [build(_snapshot(list(group), builder), builder.yaml)
             for _, group in itertools.groupby(rows, key=_snapshot_key)]
    return finish(items)


def _snapshot_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["conv_id"], row["session_id"], row["turn_id"], row["phase"], row["created_at_ms"])


def _snapshot(rows: list[dict[str, Any]], builder: PayloadBuilder) -> Snapshot:
    first = rows[0]
    blocks = [
        (row["block_id"], row["kind"], row["role"], row["payload_json"], row["block_metadata_json"])
        for row in rows
        if row["ordinal"] is not None
    ]
    return Snapshot(
        conv_id=first["conv_id"],
        session_id=first["session_id"],
        turn_id=first["turn_id"],
        phase=first["phase"],
        created_at_ms=first["created_at_ms"],
        runtime_key=first["runtime_key"],
        inference_id=first["inference_id"],
        payload=builder.turn_payload(first["turn_id"], blocks, first["metadata_json"], first["data_json"]),
    )


async def turn_exists(db: "Database", conv_id: str, session_id: str, turn_id: str) -> bool:
    rows = (await db.execute(
        "SELECT 1 FROM turns WHERE conv_id = :conv_id AND session_id = :session_id AND turn_id = :turn_id",
        {"conv_id": conv_id, "session_id": session_id, "turn_id": turn_id},
    )).rows
    return bool(rows)
