"""The figures the cutover report's checks are made from: every SQL read of the store, and the one
scan that decides, row by row with the backfill rules, what a migrate run would still fill.

Nothing here judges or words anything: :mod:`report` turns a Figures into pass / fail / info.
"""

from dataclasses import dataclass, field
import sqlite3
from typing import Any, Optional

from .. import config
from ..canned import queries
from ..storage import sqlitefile
from ..upstream import backfill, schema


@dataclass
class PointerFigures:
    differ: list  # [{conv_id, pointer, newest_runtime_key}] in conv_id order
    compared: int
    unknown: int  # conversations whose newest turn has no runtime_key


@dataclass
class Figures:
    shape: schema.TurnsShape
    turns: int
    backfill: backfill.Tally  # among the rows still missing a value, what a migrate run would write
    switched: Optional[list]  # [(conv_id, switches)], None without a runtime_key column
    conversations: int
    has_timeline_store: bool  # whether pointers were given to compare with
    pointers: Optional[PointerFigures]  # None without pointers or without a runtime_key column
    journal_mode: str
    wal_has_content: bool
    coverage: list = field(default_factory=list)


def read(conn: sqlite3.Connection, rules: str = config.DEFAULT_RULES, path: Optional[str] = None,
         pointers: Optional[dict] = None) -> Figures:
    """Every figure of the turns.db behind ``conn``; ``pointers`` is the timeline store's
    {conv_id: runtime_key}, or None."""
    shape = schema.TurnsShape.read(conn)
    has_runtime_key = "runtime_key" in shape.columns
    journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0].lower()
    if path and sqlitefile.is_wal(path):
        journal_mode = "wal"  # an immutable open reports "delete" for a WAL file
    return Figures(
        shape=shape,
        turns=conn.execute("SELECT count(*) FROM turns").fetchone()[0],
        backfill=backfill_scan(conn, shape, rules),
        switched=switched_conversations(conn) if has_runtime_key else None,
        conversations=conn.execute("SELECT count(DISTINCT conv_id) FROM turns").fetchone()[0],
        has_timeline_store=pointers is not None,
        pointers=(PointerFigures(*pointer_mismatches(conn, pointers))
                  if pointers is not None and has_runtime_key else None),
        journal_mode=journal_mode,
        wal_has_content=bool(path and sqlitefile.wal_has_content(path)),
        coverage=coverage(conn, shape),
    )


def backfill_scan(conn: sqlite3.Connection, shape: schema.TurnsShape, rules: str) -> backfill.Tally:
    """Missing values (as they are), bad metadata, and what a migrate run would still write, in one scan.

    Like the migration, only rows still missing a value are read, and each is decided by
    ``backfill.decide``, the migration's own decision: bad metadata on a row whose values are both
    set harms nothing, and such rows are most of a migrated store."""
    found = backfill.Tally()
    rows = conn.execute(
        f"SELECT {shape.runtime_key}, {shape.inference_id}, {shape.metadata_json} FROM turns"
        f" WHERE {shape.missing_a_value}"
    )
    for old_runtime, old_inference, metadata_json in rows:
        found.add(backfill.decide(metadata_json, old_runtime, old_inference, rules))
        found.add_missing(old_runtime, old_inference)
    return found


# The runtime_switches query's rows, most switches first: one definition of a switch (queries.py).
SWITCHES_SQL = f"""
SELECT conv_id, switches
FROM (
{queries.RUNTIME_SWITCHES_SQL})
ORDER BY switches DESC, conv_id
"""


def switched_conversations(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """[(conv_id, switches)]: conversations whose known runtime_key changes between consecutive
    turns (by updated_at_ms, then turn_id; turns without a runtime_key are passed over)."""
    return conn.execute(SWITCHES_SQL).fetchall()


NEWEST_SQL = """
SELECT conv_id, runtime_key FROM (
  SELECT conv_id, runtime_key,
         row_number() OVER (PARTITION BY conv_id ORDER BY updated_at_ms DESC, turn_id DESC) AS n
  FROM turns
)
WHERE n = 1
ORDER BY conv_id
"""


def pointer_mismatches(conn: sqlite3.Connection, pointers: dict[str, Any]
                       ) -> tuple[list[dict[str, Any]], int, int]:
    """([{conv_id, pointer, newest_runtime_key}] in conv_id order, conversations compared,
    conversations whose newest turn has no runtime_key) for the timeline store's pointers."""
    compared = unknown = 0
    differ = []
    for conv_id, newest in conn.execute(NEWEST_SQL):
        if conv_id not in pointers:
            continue
        if newest == "":
            unknown += 1
            continue
        compared += 1
        if pointers[conv_id] != newest:
            differ.append({"conv_id": conv_id, "pointer": pointers[conv_id], "newest_runtime_key": newest})
    return differ, compared, unknown


def coverage(conn: sqlite3.Connection, shape: Optional[schema.TurnsShape] = None) -> list[dict[str, Any]]:
    """Per UTC day of ``updated_at_ms``: turns, how many carry runtime_key / inference_id, and
    how many neither, under the ``backfill_coverage`` query's names. Turns whose time is on no calendar day (not a number, not positive, past year 9999) are left
    out, as SQLite's own ``strftime`` cannot place them."""
    shape = shape or schema.TurnsShape.read(conn)
    stamp = shape.stamp
    if stamp is None:
        return []
    runtime_key = f"coalesce({shape.runtime_key} != '', 0)"
    inference_id = f"coalesce({shape.inference_id} != '', 0)"
    rows = conn.execute(
        f"""SELECT strftime('%Y-%m-%d', {stamp} / 1000, 'unixepoch') AS day, count(*),
                   sum({runtime_key}), sum({inference_id}),
                   sum(NOT {runtime_key} AND NOT {inference_id})
            FROM turns
            WHERE typeof({stamp}) IN ('integer', 'real') AND {stamp} > 0
            GROUP BY day
            HAVING day IS NOT NULL
            ORDER BY day"""
    ).fetchall()
    names = ("day", "turns", "with_runtime_key", "with_inference_id", "with_neither")
    return [dict(zip(names, row)) for row in rows]


HISTORY_SQL = """
SELECT turn_id, session_id, {runtime_key} AS runtime_key, {inference_id} AS inference_id,
       {stamp} AS updated_at_ms
FROM turns
WHERE conv_id = :conv_id
ORDER BY updated_at_ms ASC, turn_id ASC
LIMIT :limit
"""


def conversation_history(conn: sqlite3.Connection, conv_id: str, limit: int = 5000) -> list[dict[str, Any]]:
    """One conversation's turns in history order, as dicts (the playbook's history query)."""
    shape = schema.TurnsShape.read(conn)
    sql = HISTORY_SQL.format(runtime_key=shape.runtime_key, inference_id=shape.inference_id,
                             stamp=shape.updated_at_ms)
    cursor = conn.execute(sql, {"conv_id": conv_id, "limit": limit})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor]
