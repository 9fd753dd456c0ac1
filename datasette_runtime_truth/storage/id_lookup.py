"""One box for any id: the turns a pasted ``turn_id``, ``inference_id``, ``conv_id`` or
``session_id`` names, found through the upstream's own indexes (nothing is added to the schema).

``tokens`` takes the ids out of what was pasted (an id, a debug URL, a log line); ``find`` looks
each one up as every kind of id on one connection, in a worker thread. No lookup reads the turn
rows wholesale: a ``conv_id`` is a search of the primary key, a ``session_id`` of
``turns_by_session``; an ``inference_id`` is read from the entries of
``turns_by_conv_inference_updated`` and a ``turn_id`` from the primary key's, whole (neither has an
index of its own, and the upstream's schema gets none), and only a match's row is read.
"""

from dataclasses import dataclass, field
import re
import sqlite3
from typing import Any, Optional
from urllib.parse import unquote

from . import debug_reads
from ..upstream import golang, schema

MAX_QUERY_CHARS = 10_000
MAX_TOKENS = 10
MAX_TOKEN_CHARS = 500
PER_LOOKUP = 100  # turns one id brings back, per kind; more are counted as "more"
KINDS = ("turn_id", "inference_id", "conv_id", "session_id")

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SEPARATORS = re.compile(r"[\s/?&=#,;:|\"'`<>()\[\]{}]+")
# Where an id sits in a debug URL or a log line: a field named for it, or the debug routes' paths.
ID_FIELD = re.compile(r"\b(conv|session|turn|inference)_?[iI]d[\"']?\s*[=:]\s*[\"']?([^\s\"'&,;{}\[\]]+)")
DEBUG_PATH = re.compile(r"/api/debug/(?:turn/([^/?#\s]+)/([^/?#\s]+)/([^/?#\s]+)|conversations/([^/?#\s]+))")
WHOLE_ID_BREAKERS = re.compile(r"[\s/\"{}]")  # a log line, a URL, JSON: not one id
ID_LIKE = re.compile(r"(?=.*[0-9])(?=.*[^\W\d])[\w.@~+-]+")


class BadQuery(ValueError):
    """What was pasted cannot be searched (too long); the message says what to do."""


def tokens(text: str) -> list[str]:
    """The ids in ``text`` (see parse)."""
    return [token for token, _ in parse(text)]


def parse(text: str) -> list[tuple[str, Optional[str]]]:
    """The ids in ``text``, each with the kind of id its place names (``conv_id=...``, the parts
    of a debug route's path), or None: then it is searched as every kind. The whole text when
    it is one word; else the named ids and the other UUIDs; else each word holding both a letter
    and a digit. Text with no white space, ``/``, quote or brace (not a log line, a URL or JSON)
    is also searched whole, first: the upstream stores values such as ``map[inference_id:...]``.
    Percent-escapes are undone; at most MAX_TOKENS ids, in order of appearance."""
    if len(text) > MAX_QUERY_CHARS:
        raise BadQuery(f"the search text is {len(text):,} characters; paste one id, a URL or a "
                       f"log line of at most {MAX_QUERY_CHARS:,}")
    raw = _clean(text)
    text = _clean(unquote(raw))
    if not text:
        return []
    if not SEPARATORS.search(text):
        return [(text[:MAX_TOKEN_CHARS], None)]
    named = _named_ids(raw)
    found = named + [(uuid, None) for uuid in UUID.findall(text) if uuid not in dict(named)]
    found = found or [(word, None) for word in SEPARATORS.split(text) if ID_LIKE.fullmatch(word)]
    if not WHOLE_ID_BREAKERS.search(text):
        found.insert(0, (text, None))
    kinds: dict[str, Optional[str]] = {}
    for token, kind in found:
        token = token[:MAX_TOKEN_CHARS]
        kinds[token] = kind if kinds.get(token, kind) == kind else None  # named twice, differently
    return list(kinds.items())[:MAX_TOKENS]


def _clean(text: str) -> str:
    """Text trimmed as Go trims it, without NULs, and with any lone surrogate replaced."""
    return golang.trim_space(text).replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _named_ids(text: str) -> list[tuple[str, Optional[str]]]:
    """(id, kind) for each id a debug route's path or an id field names, in order of appearance;
    read before percent-escapes are undone, so an escaped ``/`` stays inside its id."""
    spans = [(m.start(2), m.group(2), f"{m.group(1)}_id") for m in ID_FIELD.finditer(text)]
    path_kinds = ("conv_id", "session_id", "turn_id", "conv_id")
    for match in DEBUG_PATH.finditer(text):
        spans += [(match.start(group), match.group(group), path_kinds[group - 1])
                  for group in range(1, 5) if match.group(group)]
    return [(_clean(unquote(word)), kind) for _, word, kind in sorted(spans)]


COLUMNS = """t.conv_id, t.session_id, t.turn_id, {runtime_key} AS runtime_key,
       {inference_id} AS inference_id, {updated_at_ms} AS updated_at_ms"""

BY_CONV_ID = """
SELECT {columns}
FROM turns AS t
WHERE t.conv_id = :id
LIMIT :limit
"""

BY_SESSION_ID = """
SELECT {columns}
FROM turns AS t
WHERE t.session_id = :id
LIMIT :limit
"""

# An id with no index of its own is found by reading the entries of an index that holds it, never
# the turn rows: at 1M turns the primary key's entries (conv_id, session_id, turn_id) are ~2% of
# the file, and reading them in order beats a seek per conversation (BENCHMARKS.md, "Lookup by
# any id"). Only a match's row is then read, by its rowid.
BY_INFERENCE_ID = """
SELECT {columns}
FROM turns AS t
WHERE t.rowid IN (SELECT rowid FROM turns WHERE inference_id = :id)
LIMIT :limit
"""

BY_TURN_ID = """
SELECT {columns}
FROM turns AS t
WHERE t.rowid IN (SELECT rowid FROM turns WHERE turn_id = :id)
LIMIT :limit
"""

SNAPSHOTS = """
SELECT DISTINCT phase, snapshot_created_at_ms AS created_at_ms
FROM turn_block_membership
WHERE conv_id = :conv_id AND session_id = :session_id AND turn_id = :turn_id
ORDER BY created_at_ms DESC, phase
"""

LOOKUPS = {"turn_id": BY_TURN_ID, "inference_id": BY_INFERENCE_ID, "conv_id": BY_CONV_ID,
           "session_id": BY_SESSION_ID}


def lookup_sql(shape: schema.TurnsShape, kind: str) -> str:
    """The SQL that finds the turns whose ``kind`` is ``:id`` (``shape`` aliased ``t.``)."""
    columns = COLUMNS.format(runtime_key=shape.runtime_key, inference_id=shape.inference_id,
                             updated_at_ms=shape.updated_at_ms)
    return LOOKUPS[kind].format(columns=columns)


def searchable(shape: schema.TurnsShape) -> tuple[str, ...]:
    """The kinds of id this store can be searched by: an inference_id only once it has the column."""
    return tuple(kind for kind in KINDS if kind != "inference_id" or "inference_id" in shape.columns)


@dataclass
class Found:
    """The turns one database gave for the ids, best match first, and what was cut short."""

    turns: list = field(default_factory=list)
    more: list = field(default_factory=list)  # [(kind, id)] that matched more than PER_LOOKUP turns
    kinds: tuple = KINDS


def find(conn: sqlite3.Connection, ids: list[tuple[str, Optional[str]]], with_snapshots: bool) -> Found:
    """Every turn each of ``ids`` (parse's pairs) names, as its named kind of id or else as any;
    a turn several ids name (the three ids of a debug URL) comes first. ``with_snapshots``: add
    each turn's phase snapshots."""
    shape = schema.TurnsShape.read(conn, prefix="t.")
    found = Found(kinds=searchable(shape))
    turns: dict[tuple, dict] = {}
    for token, named in ids:
        for kind in found.kinds if named is None else [k for k in found.kinds if k == named]:
            rows = _rows(conn, lookup_sql(shape, kind), {"id": token, "limit": PER_LOOKUP + 1})
            if len(rows) > PER_LOOKUP:
                found.more.append((kind, token))
            for row in rows[:PER_LOOKUP]:
                key = (row["conv_id"], row["session_id"], row["turn_id"])
                turn = turns.setdefault(key, {**row, "matched": []})
                turn["matched"].append({"kind": kind, "id": token})
    found.turns = sorted(turns.values(), key=_rank)
    if with_snapshots and shape.has_snapshots:
        for turn in found.turns:
            turn["snapshots"] = _rows(conn, SNAPSHOTS, {key: turn[key] for key in ("conv_id", "session_id", "turn_id")})
    return found


def _rank(turn: dict[str, Any]) -> tuple[Any, ...]:
    """Most ids matched first, then newest first, then by the ids."""
    stamp = turn["updated_at_ms"] if isinstance(turn["updated_at_ms"], (int, float)) else 0
    return (-len(turn["matched"]), -stamp, str(turn["conv_id"]), str(turn["session_id"]), str(turn["turn_id"]))


def _rows(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [{name: debug_reads.text(value) for name, value in zip(names, row)} for row in cursor]
