"""What a turns.db should look like, and how to tell what an existing one lacks.

The DDL is the upstream pinocchio web-chat turn store's, copied exactly: names, column order and
index column lists (``DESC`` included) are part of the contract.
"""

from dataclasses import dataclass, field
import sqlite3
from typing import Collection, Optional

import sqlite_utils

CURRENT_TURNS_DDL = """
CREATE TABLE turns (
  conv_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  turn_id TEXT NOT NULL,
  turn_created_at_ms INTEGER NOT NULL,
  turn_metadata_json TEXT NOT NULL DEFAULT '{}',
  turn_data_json TEXT NOT NULL DEFAULT '{}',
  runtime_key TEXT NOT NULL DEFAULT '',
  inference_id TEXT NOT NULL DEFAULT '',
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (conv_id, session_id, turn_id)
);
"""

# The same table before the cutover: without runtime_key and inference_id.
PRE_CUTOVER_TURNS_DDL = "".join(
    line for line in CURRENT_TURNS_DDL.splitlines(keepends=True)
    if not line.lstrip().startswith(("runtime_key ", "inference_id "))
)

BLOCKS_TABLES_DDL = """
CREATE TABLE blocks (
  block_id TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  hash_algorithm TEXT NOT NULL DEFAULT 'sha256-canonical-json-v1',
  kind TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT '',
  payload_json TEXT NOT NULL DEFAULT '{}',
  block_metadata_json TEXT NOT NULL DEFAULT '{}',
  first_seen_at_ms INTEGER NOT NULL,
  PRIMARY KEY (block_id, content_hash)
);
CREATE TABLE turn_block_membership (
  conv_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  turn_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  snapshot_created_at_ms INTEGER NOT NULL,
  ordinal INTEGER NOT NULL,
  block_id TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  PRIMARY KEY (conv_id, session_id, turn_id, phase, snapshot_created_at_ms, ordinal),
  FOREIGN KEY (conv_id, session_id, turn_id) REFERENCES turns(conv_id, session_id, turn_id) ON DELETE CASCADE,
  FOREIGN KEY (block_id, content_hash) REFERENCES blocks(block_id, content_hash)
);
"""

BLOCKS_INDEXES_DDL = """
CREATE INDEX blocks_by_kind_role ON blocks(kind, role);
CREATE INDEX turn_block_membership_by_turn_phase ON turn_block_membership(conv_id, session_id, turn_id, phase, snapshot_created_at_ms DESC, ordinal);
CREATE INDEX turn_block_membership_by_block ON turn_block_membership(block_id, content_hash);
"""

PRE_CUTOVER_TURNS_INDEXES_DDL = """
CREATE INDEX turns_by_conv_session ON turns(conv_id, session_id, updated_at_ms DESC);
CREATE INDEX turns_by_session ON turns(session_id, updated_at_ms DESC);
"""

TIMELINE_DDL = """
CREATE TABLE timeline_conversations (
  conv_id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  runtime_key TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  last_activity_ms INTEGER NOT NULL,
  last_seen_version INTEGER NOT NULL DEFAULT 0,
  has_timeline INTEGER NOT NULL DEFAULT 1,
  status TEXT NOT NULL DEFAULT 'active',
  last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX timeline_conversations_by_last_activity ON timeline_conversations(last_activity_ms DESC, conv_id ASC);
CREATE INDEX timeline_conversations_by_session ON timeline_conversations(session_id);
"""

# The upstream store's timeline tables (timeline_store_sqlite.go), which its /api/timeline read.
TIMELINE_ENTITY_DDL = """
CREATE TABLE timeline_versions (
  conv_id TEXT PRIMARY KEY,
  version INTEGER NOT NULL
);
CREATE TABLE timeline_entities (
  conv_id TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  version INTEGER NOT NULL,
  entity_json TEXT NOT NULL,
  PRIMARY KEY (conv_id, entity_id)
);
CREATE INDEX timeline_entities_by_version ON timeline_entities(conv_id, version);
CREATE INDEX timeline_entities_by_created ON timeline_entities(conv_id, created_at_ms);
"""


@dataclass(frozen=True)
class Column:
    name: str
    definition: str


@dataclass(frozen=True)
class Index:
    name: str
    columns: str

    @property
    def sql(self) -> str:
        return f"CREATE INDEX IF NOT EXISTS {self.name} ON turns({self.columns})"


# The upstream's column-ensure steps, in the order it runs them.
COLUMNS = (
    Column("turn_created_at_ms", "INTEGER NOT NULL DEFAULT 0"),
    Column("turn_metadata_json", "TEXT NOT NULL DEFAULT '{}'"),
    Column("turn_data_json", "TEXT NOT NULL DEFAULT '{}'"),
    Column("updated_at_ms", "INTEGER NOT NULL DEFAULT 0"),
    Column("runtime_key", "TEXT NOT NULL DEFAULT ''"),
    Column("inference_id", "TEXT NOT NULL DEFAULT ''"),
)

INDEXES = (
    Index("turns_by_conv_session", "conv_id, session_id, updated_at_ms DESC"),
    Index("turns_by_session", "session_id, updated_at_ms DESC"),
    Index("turns_by_conv_runtime_updated", "conv_id, runtime_key, updated_at_ms DESC"),
    Index("turns_by_conv_inference_updated", "conv_id, inference_id, updated_at_ms DESC"),
)

RUNTIME_COLUMNS = ("runtime_key", "inference_id")
RUNTIME_INDEXES = ("turns_by_conv_runtime_updated", "turns_by_conv_inference_updated")
LEGACY_CREATED_COLUMN = "created_at_ms"


# A turns table is one the upstream wrote only when it has the upstream's primary key.
KEY_COLUMNS = ("conv_id", "session_id", "turn_id")
NO_TURNS_TABLE = "it has no turns table"
TURNS_IS_A_VIEW = "turns is a view, not a table"
TURNS_WITHOUT_ROWID = "turns is a WITHOUT ROWID table, which no upstream version wrote"
TURNS_VIEW_SQL = "SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'turns' COLLATE NOCASE"

SNAPSHOT_TABLES = ("turn_block_membership", "blocks")
STAMP_COLUMNS = ("updated_at_ms", "turn_created_at_ms", LEGACY_CREATED_COLUMN)


@dataclass(frozen=True)
class TurnsShape:
    """What a turns database has, read once per connection, and the SQL that follows from it.

    ``columns`` maps each column of ``turns``, in table order, to its definition (``TEXT NOT NULL
    DEFAULT ''``); ``indexes`` each index on ``turns`` to its ``[(column, descending)]``. Every
    query that reads a column an older store may lack asks :meth:`column` for it, which falls back
    to the column's default; ``prefix`` is the table alias the query gives ``turns`` (``t.``).
    """

    columns: dict[str, str] = field(default_factory=dict)
    indexes: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    tables: frozenset[str] = frozenset()
    prefix: str = ""

    @classmethod
    def read(cls, conn: sqlite3.Connection, prefix: str = "") -> "TurnsShape":
        tables = existing_tables(conn, ("turns",) + SNAPSHOT_TABLES)
        # SQLite's names ignore case: a table created as Turns is the one `FROM turns` reads.
        name = next((name for name in tables if name.lower() == "turns"), None)
        if name is None:
            return cls(tables=tables, prefix=prefix)
        turns = sqlite_utils.Database(conn, recursive_triggers=False).table(name)
        return cls(
            columns={column.name: _definition(column) for column in turns.columns},
            indexes={index.name: [(part.name, bool(part.desc)) for part in index.columns if part.key]
                     for index in turns.xindexes},
            tables=tables,
            prefix=prefix,
        )

    @property
    def has_turns(self) -> bool:
        return turns_problem(self.columns) is None

    @property
    def has_snapshots(self) -> bool:
        return all(table in self.tables for table in SNAPSHOT_TABLES)

    def column(self, *candidates: str, default: str) -> str:
        """The first of ``candidates`` that ``turns`` has, as SQL, else ``default``."""
        return self._first(candidates) or default

    def _first(self, candidates: tuple[str, ...]) -> Optional[str]:
        name = next((name for name in candidates if name in self.columns), None)
        return None if name is None else self.prefix + name

    @property
    def runtime_key(self) -> str:
        return self.column("runtime_key", default="''")

    @property
    def inference_id(self) -> str:
        return self.column("inference_id", default="''")

    @property
    def missing_a_value(self) -> str:
        """SQL true for a row the upstream's backfill looks at: ``runtime_key`` or ``inference_id``
        NULL or ``''`` (an INTEGER ``0`` is a value, as backfill.is_empty decides in Python)."""
        return f"(coalesce({self.runtime_key}, '') = '' OR coalesce({self.inference_id}, '') = '')"

    @property
    def metadata_json(self) -> str:
        return self.column("turn_metadata_json", default="'{}'")

    @property
    def data_json(self) -> str:
        return self.column("turn_data_json", default="'{}'")

    @property
    def stamp(self) -> Optional[str]:
        """The turn time to order and bucket by: updated_at_ms, or what an older store has
        instead; None when it has none."""
        return self._first(STAMP_COLUMNS)

    @property
    def updated_at_ms(self) -> str:
        return self.stamp or "0"

    @property
    def missing_columns(self) -> list[Column]:
        return [column for column in COLUMNS if column.name not in self.columns]

    @property
    def missing_indexes(self) -> list[Index]:
        return [index for index in INDEXES if index.name not in self.indexes]


def _definition(column: sqlite_utils.db.Column) -> str:
    parts = [column.type.upper()]
    if column.notnull:
        parts.append("NOT NULL")
    if column.default_value is not None:
        parts.append(f"DEFAULT {column.default_value}")
    return " ".join(parts)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def name_key(name: str) -> str:
    """A table name as SQLite compares names (only ASCII letters fold): ``Turns`` is ``turns``."""
    return name.translate(_ASCII_LOWER)


def existing_tables(conn: sqlite3.Connection, names: Collection[str]) -> frozenset[str]:
    """Which of the tables ``names`` the database behind ``conn`` has, named as it stores them:
    the one test of whether a table exists (names compared as SQLite compares them, ignoring
    case)."""
    sql = f"""
    SELECT name FROM sqlite_master
    WHERE type = 'table' AND name COLLATE NOCASE IN ({", ".join("?" for _ in names)})
    """
    return frozenset(row[0] for row in conn.execute(sql, tuple(names)))


def is_migrated(columns: Collection[str]) -> bool:
    """Whether a turns table with ``columns`` has both runtime columns: the one test of "is this
    store migrated" (the queries that need them can run, the report links them)."""
    return all(name in columns for name in RUNTIME_COLUMNS)


def turns_problem(columns: Collection[str]) -> Optional[str]:
    """Why a database whose ``turns`` table has ``columns`` (none when there is no such table) is
    not a turns.db, in words; None when it is. The one test of what a turns table is: a game's
    ``turns(id, player)`` is not one, and nothing of the plugin reads or alters it."""
    if not columns:
        return NO_TURNS_TABLE
    missing = [name for name in KEY_COLUMNS if name not in columns]
    if missing:
        return f"its turns table has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}"
    return None


def read_turns_problem(conn: sqlite3.Connection) -> Optional[str]:
    """turns_problem for the database behind ``conn``: a view called ``turns``, which no
    migration can alter, is not a turns table either, nor is a WITHOUT ROWID table (the
    migration and the id lookups go by rowid, and the upstream's DDL never made one)."""
    if conn.execute(TURNS_VIEW_SQL).fetchone() is not None:
        return TURNS_IS_A_VIEW
    problem = turns_problem(turns_columns(conn))
    if problem is None and is_without_rowid(conn):
        return TURNS_WITHOUT_ROWID
    return problem


def turns_columns(conn: sqlite3.Connection) -> list[str]:
    """The column names of ``turns``; empty when there is no such table."""
    return [row[0] for row in conn.execute("SELECT name FROM pragma_table_info('turns')")]


def needs_schema_migration(conn: sqlite3.Connection) -> bool:
    """True when ``turns`` lacks one of the current columns or indexes."""
    shape = TurnsShape.read(conn)
    return bool(shape.missing_columns or shape.missing_indexes)


def create_turns_db(conn: sqlite3.Connection, shape: str = "current") -> None:
    """Create the upstream tables on an empty connection: ``current`` or ``pre-cutover``."""
    turns_ddl = {"current": CURRENT_TURNS_DDL, "pre-cutover": PRE_CUTOVER_TURNS_DDL}[shape]
    conn.executescript(
        turns_ddl + BLOCKS_TABLES_DDL + BLOCKS_INDEXES_DDL + PRE_CUTOVER_TURNS_INDEXES_DDL
    )
    if shape == "current":
        for index in INDEXES[2:]:
            conn.execute(index.sql)
    conn.commit()


def is_without_rowid(conn: sqlite3.Connection) -> bool:
    """Whether the existing ``turns`` table has no rowid."""
    try:
        conn.execute("SELECT rowid FROM turns LIMIT 0")
    except sqlite3.OperationalError:
        return True
    return False
