"""The migration preview: for each row a migrate run looks at, what it would write.

Works on any turns.db, migrated or not: the candidates are the migration's own (``runtime_key``
or ``inference_id`` empty; on a pre-cutover store, where both columns are missing, every row),
and each row's outcome is ``backfill.decide`` with the configured rules, exactly the
migration's decision. Read in primary-key order with keyset paging, a page at a time, so the
Python work per request is bounded.
"""

from dataclasses import dataclass
import sqlite3
from typing import Any, Optional

from .. import config
from ..upstream import backfill, schema

Row = dict[str, Any]
Key = tuple[str, str, str]  # (conv_id, session_id, turn_id)

COLUMNS = ("conv_id", "session_id", "turn_id", "updated_at_ms", "runtime_key", "inference_id",
           "action", "new_runtime_key", "new_inference_id")


@dataclass
class Page:
    rows: list[Row]  # dicts with COLUMNS
    next_after: Optional[Key]  # (conv_id, session_id, turn_id) of the last row when there may be more


def page_size(text: Any, cap: int = config.MAX_PAGE) -> int:
    """``limit`` as a page size: a positive whole number up to ``cap``, else the default."""
    try:
        size = int(text)
    except (TypeError, ValueError):
        return min(config.DEFAULT_PAGE, cap)
    return min(size, cap) if size > 0 else min(config.DEFAULT_PAGE, cap)


# ``only``: which of the rows a migrate run looks at a page lists, each the rows one figure of
# the report counts (backfill_scan's own tests, on the migration's own decision).
ONLY = {
    "runtime_key": ("rows without runtime_key", lambda row: backfill.is_empty(row["runtime_key"])),
    "inference_id": ("rows without inference_id", lambda row: backfill.is_empty(row["inference_id"])),
    "bad_metadata": ("rows with invalid or non-object metadata",
                     lambda row: row["action"] == backfill.BAD_METADATA),
    "writes": ("rows a migrate run would write", lambda row: row["action"] == backfill.WRITES),
}
SCAN_BUDGET = 5000  # candidate rows one filtered page reads at most; its next link continues


def read_page(conn: sqlite3.Connection, rules: str = config.DEFAULT_RULES, after: Optional[Key] = None,
              limit: int = config.DEFAULT_PAGE, only: Optional[str] = None) -> Page:
    """One page of candidate rows after the ``(conv_id, session_id, turn_id)`` key ``after``;
    with ``only`` (a key of ONLY), just those rows, reading at most SCAN_BUDGET candidates: a
    page may then hold fewer than ``limit`` rows, and its next key continues the scan."""
    backfill.check_rules(rules)
    keep = ONLY[only][1] if only else None
    shape = schema.TurnsShape.read(conn)
    batch = limit + 1 if keep is None else max(limit + 1, 500)
    rows, scanned, key = [], 0, after
    while True:
        found = [_decide(row, rules) for row in _candidates(conn, shape, key, batch)]
        for row in found:
            scanned += 1
            key = _key(row)
            if keep is None or keep(row):
                rows.append(row)
                if len(rows) > limit:
                    return Page(rows[:limit], _key(rows[limit - 1]))
        if len(found) < batch:
            return Page(rows, None)
        if scanned >= SCAN_BUDGET:
            return Page(rows, key)


def _key(row: Row) -> Key:
    return row["conv_id"], row["session_id"], row["turn_id"]


def _candidates(conn: sqlite3.Connection, shape: schema.TurnsShape, after: Optional[Key],
                limit: int) -> list[Any]:
    """Up to ``limit`` rows a migrate run looks at, after the key ``after``, in key order."""
    runtime_key, inference_id = shape.runtime_key, shape.inference_id
    stamp = shape.stamp or "NULL"
    where = shape.missing_a_value
    params: dict[str, Any] = {"limit": limit}
    if after is not None:
        where += " AND (conv_id, session_id, turn_id) > (:conv, :session, :turn)"
        params.update(zip(("conv", "session", "turn"), after))
    return conn.execute(
        f"""SELECT conv_id, session_id, turn_id, {stamp}, {runtime_key}, {inference_id},
                   {shape.metadata_json}
            FROM turns WHERE {where}
            ORDER BY conv_id, session_id, turn_id LIMIT :limit""",
        params,
    ).fetchall()


def _decide(row: Any, rules: str) -> Row:
    """One candidate row as the preview shows it: its values, backfill.decide's action and the
    values the row holds after it."""
    conv_id, session_id, turn_id, updated, runtime_key, inference_id, metadata = row
    decision = backfill.decide(metadata, runtime_key, inference_id, rules)
    runtime_key = "" if runtime_key is None else runtime_key
    inference_id = "" if inference_id is None else inference_id
    new_runtime, new_inference = decision.values or (runtime_key, inference_id)
    return {"conv_id": conv_id, "session_id": session_id, "turn_id": turn_id,
            "updated_at_ms": updated, "runtime_key": runtime_key,
            "inference_id": inference_id, "action": decision.action,
            "new_runtime_key": new_runtime, "new_inference_id": new_inference}
