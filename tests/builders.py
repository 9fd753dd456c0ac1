"""Build small turns.db files with the upstream DDL for tests."""

import dataclasses
import json
import os
import shutil
import sqlite3

from datasette_runtime_truth.upstream import schema
from datasette_runtime_truth.migration.apply import migrate_path
from datasette_runtime_truth.sample import build as build_sample

VERY_OLD_TURNS_DDL = """
CREATE TABLE turns (
  conv_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  turn_id TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  turn_metadata_json TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (conv_id, session_id, turn_id)
);
"""

SHAPES = ("current", "pre-cutover", "migrated", "very-old")


def create_store(path, shape="pre-cutover", journal_mode="wal"):
    """A turns.db of the given shape: ``current`` (fresh upstream DDL), ``pre-cutover``,
    ``migrated`` (pre-cutover with the two columns added last and all indexes) or ``very-old``
    (``created_at_ms``, no turn_created_at_ms / turn_data_json / updated_at_ms)."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode={journal_mode}")
    if shape == "very-old":
        conn.executescript(VERY_OLD_TURNS_DDL + schema.BLOCKS_TABLES_DDL)
    else:
        schema.create_turns_db(conn, "current" if shape == "current" else "pre-cutover")
    if shape == "migrated":
        for column in schema.COLUMNS[4:]:
            conn.execute(f"ALTER TABLE turns ADD COLUMN {column.name} {column.definition}")
        for index in schema.INDEXES:
            conn.execute(index.sql)
    conn.commit()
    return conn


def insert_turn(conn, conv_id, session_id, turn_id, metadata=None, created=1000, updated=2000,
                runtime_key=None, inference_id=None, data="{}"):
    """Insert one turn with whichever of the columns the table has."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(turns)")}
    if metadata is not None and not isinstance(metadata, str):
        metadata = json.dumps(metadata)
    values = {
        "conv_id": conv_id,
        "session_id": session_id,
        "turn_id": turn_id,
        "turn_created_at_ms": created,
        "created_at_ms": created,
        "turn_metadata_json": "{}" if metadata is None else metadata,
        "turn_data_json": data,
        "updated_at_ms": updated,
        "runtime_key": runtime_key,
        "inference_id": inference_id,
    }
    values = {k: v for k, v in values.items() if k in columns and v is not None}
    conn.execute(
        f"INSERT INTO turns ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
        list(values.values()),
    )
    conn.commit()


def turns_rows(path, columns="conv_id, session_id, turn_id, runtime_key, inference_id"):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {columns} FROM turns ORDER BY conv_id, session_id, turn_id").fetchall()
    finally:
        conn.close()


def table_info(path):
    conn = sqlite3.connect(path)
    try:
        return [tuple(row) for row in conn.execute("PRAGMA table_info(turns)")]
    finally:
        conn.close()


def index_sql(path):
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'turns' AND sql IS NOT NULL"
        ).fetchall())
    finally:
        conn.close()


def dump(path):
    """Every statement needed to rebuild the database: equal dumps, equal contents."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def cut_over_and_not(folder, samples):
    """Two copies of the sample in ``folder``, as ``datasette turns timeline legacy`` names them:
    ``turns`` (migrated) with its ``timeline``, and ``legacy`` (pre-cutover). {name: path}"""
    migrated = samples.copy(folder / "migrated")
    migrate_path(migrated.turns_path)
    legacy = samples.copy(folder / "legacy")
    shutil.copy(legacy.turns_path, folder / "legacy.db")
    return {"turns": migrated.turns_path, "timeline": migrated.timeline_path, "legacy": str(folder / "legacy.db")}


# `make demo` writes seed 1; the generator draws conversations in order, so the first few hundred
# turns of seed 1, and the ids the README uses, are the same at 600 turns.
DEMO = {"turns": 600, "seed": 1}


class Samples:
    """Sample stores built once each, one per (turns, seed, shape), handed out as copies a test
    may change: the seeded generator is deterministic, so every copy is the same data."""

    def __init__(self, mktemp):
        self._mktemp = mktemp
        self._built = {}

    def copy(self, into, turns=300, seed=3, shape="pre-cutover"):
        """A SampleSummary of a copy, in folder ``into``, of that sample."""
        key = (turns, seed, shape)
        if key not in self._built:
            self._built[key] = build_sample(self._mktemp("sample"), turns=turns, seed=seed, shape=shape)
        built = self._built[key]
        os.makedirs(into, exist_ok=True)
        return dataclasses.replace(built, turns_path=shutil.copy(built.turns_path, into),
                                   timeline_path=shutil.copy(built.timeline_path, into))
