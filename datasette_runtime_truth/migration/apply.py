"""Bring a turns.db to the current shape and backfill runtime_key / inference_id, in short steps.

A migration is a sequence of *steps*, each a function of a connection that the caller runs in one
write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``): one step per column check and its ``ALTER``,
one per window of ``batch_size`` rows of the backfill, one per index. Between steps the lock is
free, so a live upstream server writing with ``busy_timeout=5000`` is never starved. Every step is
complete on its own: a migration stopped anywhere leaves a valid store, and a rerun continues.

Each window is two steps: a read step, run on a read snapshot without the write lock, parses the
candidate rows' metadata (the slow part); the write step, inside its transaction, re-reads those
rows if anything was committed in between, keeps every decision whose row is unchanged, decides
again for any row written meanwhile, and updates. So the lock is held for little more than the
updates, and every value still comes from the row as it is when written.

Two runners share the steps: :func:`migrate_path` (the CLI, on its own connection) and
:func:`migrate_database` (inside Datasette, through ``execute_write_fn``).
"""

from dataclasses import asdict, dataclass, field
import asyncio
import functools
import inspect
import os
import sqlite3
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, TypeVar, Union

from .. import config
from ..storage import sqlitefile
from ..upstream import backfill, schema

if TYPE_CHECKING:
    from datasette.database import Database

Step = Callable[[sqlite3.Connection], Any]  # one step, run in a write transaction of its own
S = TypeVar("S", bound=Callable[..., Any])
Row = tuple[Any, ...]  # a candidate row: rowid, metadata, runtime_key, inference_id
Window = dict[str, Optional[int]]  # the rowids after ``first`` up to ``last``, and ``now_ms``

DEFAULT_BATCH_SIZE = 2000
DEFAULT_BUSY_TIMEOUT_MS = 5000
MAX_BUSY_TIMEOUT_MS = 2**31 - 1  # SQLite's busy timeout is a C int of milliseconds
PAUSE_BETWEEN_STEPS_S = 0.002
# SQLite's busy handler sleeps up to 100 ms between tries: after a step that held the lock that
# long (an index build on a big table), a longer gap lets every writer that waited get in.
LONG_STEP_S = 0.1
PAUSE_AFTER_LONG_STEP_S = 0.15


def reads_only(step: S) -> S:
    """Mark a step that only reads: it needs no write transaction."""
    setattr(step, "reads_only", True)
    return step


def pause_after(step: Step, elapsed_s: float) -> float:
    if getattr(step, "reads_only", False):
        return 0
    return PAUSE_AFTER_LONG_STEP_S if elapsed_s >= LONG_STEP_S else PAUSE_BETWEEN_STEPS_S


class MigrationError(Exception):
    """The migration cannot run; nothing has been written by the step that failed."""

    exit_code = 1


class NotATurnsDatabase(MigrationError):
    exit_code = 2


class NoSuchFile(MigrationError):
    """PATH does not exist: nothing opens (and so creates) it."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: no such file (migrate never creates a database)")
        self.path = path


HEAD_KEYS = ("database", "rules", "dry_run", "columns_added", "indexes_created", "rows_scanned")


@dataclass(kw_only=True)
class Report(backfill.Tally):
    """What a migration did (or, in a dry run, would do); the backfill's counts are its Tally."""

    database: str
    rules: str
    dry_run: bool
    columns_added: list[str] = field(default_factory=list)
    indexes_created: list[str] = field(default_factory=list)
    rows_scanned: int = 0
    turn_created_at_ms_copied: int = 0
    updated_at_ms_filled: int = 0
    skipped_unwritable: int = 0
    unwritable_error: str = ""
    journal_mode: str = ""

    @property
    def changed(self) -> bool:
        return bool(
            self.columns_added
            or self.indexes_created
            or self.rows_written
            or self.journal_mode.startswith("switched")
            or self.turn_created_at_ms_copied
            or self.updated_at_ms_filled
        )

    def as_dict(self) -> dict[str, Any]:
        """``migrate --json``: what was migrated, then the counts, then ``changed``."""
        counts = asdict(self)
        head = {name: counts.pop(name) for name in HEAD_KEYS}
        return {**head, **counts, "changed": self.changed}


class Migration:
    """The steps that migrate one turns database; state is carried from step to step."""

    def __init__(self, database: str, rules: str = config.DEFAULT_RULES, batch_size: int = DEFAULT_BATCH_SIZE,
                 dry_run: bool = False, now_ms: Optional[int] = None,
                 progress: Optional[Callable[[int], None]] = None) -> None:
        backfill.check_rules(rules)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.report = Report(database=database, rules=rules, dry_run=dry_run)
        self.batch_size = batch_size
        self.now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        self.progress = progress
        self._after_rowid: Optional[int] = None
        self._finished_scan = False
        self._shape = schema.TurnsShape()
        self._window: Window = {}
        self._has_triggers = False
        self._refused_rows: set[int] = set()
        self._decided: dict[Row, backfill.Decision] = {}
        self._data_version: Optional[int] = None
        # True when no one else writes through this connection, so PRAGMA data_version (which
        # sees other connections' commits only) tells whether the read step's rows are current.
        self.own_connection = False

    def steps(self) -> Iterator[Step]:
        """Yield step functions, to run in order; each in its own write transaction, except those
        marked ``reads_only`` (which may also run inside one)."""
        yield self._check_table
        for column in schema.COLUMNS:
            yield functools.partial(self._ensure_column, column=column)
        yield self._start_scan
        while True:
            yield self._read_window
            if self._finished_scan:
                break
            yield self._write_window
        for index in schema.INDEXES:
            yield functools.partial(self._ensure_index, index=index)

    @reads_only
    def _check_table(self, conn: sqlite3.Connection) -> None:
        """Refuse, before anything is written, a database whose turns table is not the upstream's."""
        problem = schema.read_turns_problem(conn)
        if problem:
            raise NotATurnsDatabase(f"{self.report.database}: not a turns.db ({problem})")

    def _ensure_column(self, conn: sqlite3.Connection, column: schema.Column) -> None:
        if column.name in schema.TurnsShape.read(conn).columns:
            return
        self.report.columns_added.append(column.name)
        if not self.report.dry_run:
            conn.execute(f"ALTER TABLE turns ADD COLUMN {column.name} {column.definition}")

    def _start_scan(self, conn: sqlite3.Connection) -> None:
        self._shape = schema.TurnsShape.read(conn)
        self._has_triggers = conn.execute(TRIGGERS_SQL).fetchone() is not None
        self._after_rowid = conn.execute("SELECT coalesce(min(rowid), 0) - 1 FROM turns").fetchone()[0]

    @reads_only
    def _read_window(self, conn: sqlite3.Connection) -> None:
        """Find the next ``batch_size`` rows and decide their backfill, without the write lock."""
        first = self._after_rowid
        row = conn.execute(
            "SELECT rowid FROM turns WHERE rowid > ? ORDER BY rowid LIMIT 1 OFFSET ?",
            (first, self.batch_size - 1),
        ).fetchone()
        if row is None:
            row = conn.execute("SELECT max(rowid) FROM turns WHERE rowid > ?", (first,)).fetchone()
        last = row[0]
        if last is None:
            self._finished_scan = True
            return
        self._window = {"first": first, "last": last, "now_ms": self.now_ms}
        self._data_version = _data_version(conn)
        self._decided = {row: self._decide(row) for row in self._candidates(conn, self._window)}

    def _write_window(self, conn: sqlite3.Connection) -> None:
        """Apply the window: legacy timestamps, then the runtime backfill, rows re-read under the lock."""
        window = self._window
        rows = conn.execute(
            "SELECT count(*) FROM turns WHERE rowid > :first AND rowid <= :last", window
        ).fetchone()[0]
        self._fill_timestamps(conn, window)
        self._backfill(conn, window)
        self.report.rows_scanned += rows
        self._after_rowid = window["last"]
        self._decided = {}
        self._refused_rows = set()
        if self.progress:
            self.progress(rows)

    def _fill_timestamps(self, conn: sqlite3.Connection, window: Window) -> None:
        created = self._shape.column("turn_created_at_ms", default="0")
        updated = self._shape.column("updated_at_ms", default="0")
        in_window = "rowid > :first AND rowid <= :last"
        if schema.LEGACY_CREATED_COLUMN in self._shape.columns:
            needs_copy = (f"coalesce({created}, 0) <= 0 AND created_at_ms IS NOT NULL "
                          f"AND {created} IS NOT created_at_ms")
            self.report.turn_created_at_ms_copied += self._update_or_count(
                conn,
                f"UPDATE turns SET turn_created_at_ms = created_at_ms WHERE {in_window} AND {needs_copy}",
                f"SELECT count(*) FROM turns WHERE {in_window} AND {needs_copy}",
                window,
            )
            if self.report.dry_run:
                created = f"CASE WHEN {needs_copy} THEN created_at_ms ELSE {created} END"
        self.report.updated_at_ms_filled += self._update_or_count(
            conn,
            f"""UPDATE turns
                SET updated_at_ms = CASE WHEN turn_created_at_ms > 0 THEN turn_created_at_ms ELSE :now_ms END
                WHERE {in_window} AND coalesce(updated_at_ms, 0) <= 0""",
            f"SELECT count(*) FROM turns WHERE {in_window} AND coalesce({updated}, 0) <= 0",
            window,
        )

    def _update_or_count(self, conn: sqlite3.Connection, update_sql: str, count_sql: str, window: Window) -> int:
        """The rows ``update_sql`` changes in the window (``count_sql`` counts them in a dry run).
        Row by row when SQLite refuses the update (a CHECK, a trigger's RAISE), so a refused row
        costs only itself and is counted."""
        if self.report.dry_run:
            return conn.execute(count_sql, window).fetchone()[0]
        return self._in_savepoint(
            conn, lambda: conn.execute(update_sql, window).rowcount,
            lambda count: count is not None,
            lambda: sum(self._update_row(conn, update_sql, {**window, "first": rowid - 1, "last": rowid})
                        for rowid in self._rowids(conn, window)))

    def _update_row(self, conn: sqlite3.Connection, update_sql: str, one_row: dict[str, Any]) -> int:
        try:
            return conn.execute(update_sql, one_row).rowcount
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as error:
            self._refused(conn, error)
            self._unwritable(str(error), one_row["last"])
            return 0

    @staticmethod
    def _rowids(conn: sqlite3.Connection, window: Window) -> list[int]:
        return [row[0] for row in conn.execute(
            "SELECT rowid FROM turns WHERE rowid > :first AND rowid <= :last ORDER BY rowid", window)]

    def _candidates(self, conn: sqlite3.Connection, window: Window) -> list[Row]:
        shape = self._shape
        metadata, runtime_key, inference_id = shape.metadata_json, shape.runtime_key, shape.inference_id
        return conn.execute(
            f"""SELECT rowid, {metadata}, {runtime_key}, {inference_id} FROM turns
                WHERE rowid > :first AND rowid <= :last AND {shape.missing_a_value}""",
            window,
        ).fetchall()

    def _decide(self, row: Row) -> backfill.Decision:
        """backfill.decide on one candidate row, as read by :meth:`_candidates`."""
        _, metadata_json, old_runtime, old_inference = row
        return backfill.decide(metadata_json, old_runtime, old_inference, self.report.rules)

    def _backfill(self, conn: sqlite3.Connection, window: Window) -> None:
        decided = self._decided
        candidates: Iterable[Row]
        if self.own_connection and _data_version(conn) == self._data_version:
            candidates = decided  # nothing has been committed since the read step
        else:
            candidates = self._candidates(conn, window)
        updates: list[Row] = []
        decisions: list[backfill.Decision] = []
        for row in candidates:
            rowid, _, old_runtime, old_inference = row
            decision = decided[row] if row in decided else self._decide(row)
            if decision.values is None:
                self.report.add(decision)
                self.report.add_missing(old_runtime, old_inference)
                continue
            updates.append((*decision.values, rowid, old_runtime, old_inference))
            decisions.append(decision)
        written = [True] * len(updates) if self.report.dry_run else self._write(conn, updates)
        held = (self._held(conn, window)
                if any(written) and self._has_triggers and not self.report.dry_run else {})
        for update, decision, done in zip(updates, decisions, written):
            runtime_key, inference_id, rowid, old_runtime, old_inference = update
            # A trigger of the operator's may have rewritten or undone the write: count what the file holds.
            values = held.get(rowid, (runtime_key, inference_id))
            if done and values == (old_runtime, old_inference):
                done = self._unwritable("a trigger left the row unchanged", rowid)
            if not done:
                self.report.add_missing(old_runtime, old_inference)
                continue
            if values != (runtime_key, inference_id):
                decision = backfill.writes(old_runtime, old_inference, values)
            self.report.add(decision)
            self.report.add_missing(*values)

    @staticmethod
    def _held(conn: sqlite3.Connection, window: Window) -> dict[int, tuple[Any, Any]]:
        """{rowid: (runtime_key, inference_id)} as the file holds them after the window's update:
        a trigger of the operator's may have rewritten or undone what was written."""
        return {rowid: (runtime_key, inference_id) for rowid, runtime_key, inference_id in conn.execute(
            "SELECT rowid, runtime_key, inference_id FROM turns WHERE rowid > :first AND rowid <= :last",
            window)}

    def _write(self, conn: sqlite3.Connection, updates: list[Row]) -> list[bool]:
        """Write both columns of each row; say which rows were written. All at once; row by row
        when SQLite refused one (a CHECK, a trigger's RAISE) or a trigger ignored one, so a row
        costs only itself and is counted, and only what was written counts as filled."""
        if not updates:
            return []
        return self._in_savepoint(
            conn, lambda: [True] * conn.executemany(UPDATE_SQL, updates).rowcount,
            lambda done: done is not None and len(done) == len(updates),
            lambda: [self._write_row(conn, update) for update in updates])

    def _in_savepoint(self, conn: sqlite3.Connection, attempt: Callable[[], Any],
                      complete: Callable[[Any], bool], row_by_row: Callable[[], Any]) -> Any:
        """``attempt()`` in a savepoint; undone, and ``row_by_row()`` instead, when SQLite refused
        it (a CHECK, a trigger's RAISE) or ``complete`` says a trigger ignored part of it."""
        conn.execute("SAVEPOINT backfill_window")
        try:
            result = attempt()
        except sqlite3.OperationalError:
            if conn.in_transaction:  # disk full: SQLite has rolled it all back by itself
                conn.execute("ROLLBACK TO backfill_window")
                conn.execute("RELEASE backfill_window")
            raise
        except sqlite3.DatabaseError as error:
            self._refused(conn, error)
            result = None
        if not complete(result):
            conn.execute("ROLLBACK TO backfill_window")
            result = row_by_row()
        conn.execute("RELEASE backfill_window")
        return result

    def _refused(self, conn: sqlite3.Connection, error: sqlite3.DatabaseError) -> None:
        """A refused write whose trigger's RAISE(ROLLBACK) took the whole transaction with it
        stops the migration, in one line: the rows before it in this step are undone too."""
        if not conn.in_transaction:
            raise MigrationError(
                f"{self.report.database}: a trigger on turns rolled back the transaction ({error}): "
                "nothing of this step was written; every step before it is complete: change the "
                "trigger, then rerun")

    def _write_row(self, conn: sqlite3.Connection, update: Row) -> bool:
        try:
            written = conn.execute(UPDATE_SQL, update).rowcount == 1
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as error:
            self._refused(conn, error)
            return self._unwritable(str(error), update[2])
        return written or self._unwritable("a trigger left the row unchanged", update[2])

    def _unwritable(self, error: str, rowid: int) -> bool:
        """Count a row SQLite or a trigger would not let change, once however many of its
        updates were refused."""
        if rowid not in self._refused_rows:
            self._refused_rows.add(rowid)
            self.report.skipped_unwritable += 1
        self.report.unwritable_error = self.report.unwritable_error or error
        return False

    def _ensure_index(self, conn: sqlite3.Connection, index: schema.Index) -> None:
        if index.name in schema.TurnsShape.read(conn).indexes:
            return
        self.report.indexes_created.append(index.name)
        if not self.report.dry_run:
            conn.execute(index.sql)


# Both columns, and only while the row still holds the values the decision was made from.
UPDATE_SQL = """UPDATE turns SET runtime_key = ?, inference_id = ?
                WHERE rowid = ? AND runtime_key IS ? AND inference_id IS ?"""
TRIGGERS_SQL = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'turns'"


def _data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection commits to the file (never for this one's own commits)."""
    return conn.execute("PRAGMA data_version").fetchone()[0]


def run_in_transaction(conn: sqlite3.Connection, step: Step) -> Any:
    """Run one step in its own ``BEGIN IMMEDIATE`` transaction, unless the caller opened one.

    On disk full (and I/O errors) SQLite may roll the whole transaction back by itself: then
    there is nothing left to roll back, and the error raised is the one that made SQLite do it,
    not what a cleanup after it (a ROLLBACK, a ROLLBACK TO a savepoint) said of the missing
    transaction."""
    if conn.in_transaction:
        return step(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = step(conn)
    except BaseException as error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
            raise
        first = _first_sqlite_error(error)
        if first is error:
            raise
        raise first from None
    conn.execute("COMMIT")
    return result


def _first_sqlite_error(error: BaseException) -> BaseException:
    """The sqlite3 error that a chain of sqlite3 errors, each raised while handling the one
    before, started from."""
    while isinstance(error, sqlite3.Error) and isinstance(error.__context__, sqlite3.Error):
        error = error.__context__
    return error


def open_turns_db(path: Union[str, os.PathLike], dry_run: bool = False,
                  busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open an existing turns.db for migration; never create one.

    A dry run opens it read-only. Raises MigrationError (NotATurnsDatabase for a valid SQLite
    file without a ``turns`` table) with a message that says what is wrong. What the file is
    (a FIFO, a device, a damaged file) is asked of :mod:`sqlitefile` before anything opens it.
    """
    if not 0 <= busy_timeout_ms <= MAX_BUSY_TIMEOUT_MS:
        raise ValueError(f"busy_timeout_ms must be 0 to {MAX_BUSY_TIMEOUT_MS}, SQLite's limit")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise NoSuchFile(path)
    kind = sqlitefile.special_kind(path)
    if kind:
        raise MigrationError(f"{path}: is {kind}, not a turns.db")
    if not dry_run and _read_only(path):
        raise MigrationError(f"{path}: file is read-only; nothing was changed")
    _check_not_truncated(path, busy_timeout_ms)
    conn = sqlite3.connect(sqlitefile.uri(path, "ro" if dry_run else "rw"), uri=True,
                           timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        problem = schema.read_turns_problem(conn)
        if problem:
            raise NotATurnsDatabase(f"{path}: not a turns.db ({problem})")
    except sqlite3.DatabaseError as error:
        conn.close()
        raise MigrationError(f"{path}: not a readable SQLite database ({error})") from None
    except MigrationError:
        conn.close()
        raise
    return conn


def switch_to_wal(conn: sqlite3.Connection, dry_run: bool = False) -> str:
    """Put the file in WAL mode, as the upstream store does whenever it opens one; say what
    happened, or ``''`` when it already was. Never inside a transaction."""
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0].lower()
    if mode == "wal":
        return ""
    if dry_run:
        return f"{mode}; a real run switches it to wal, as the upstream store does on open"
    reason = "the mode did not change"
    try:
        switched = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower()
    except sqlite3.OperationalError as error:
        switched, reason = mode, str(error)
    if switched == "wal":
        return f"switched from {mode} to wal, as the upstream store does on open"
    return f"kept {mode}: another connection prevented the switch to wal ({reason})"


def _read_only(path: str) -> bool:
    # Root passes os.access regardless of permission bits; a file nobody may write is read-only.
    return not os.access(path, os.W_OK) or not (os.stat(path).st_mode & 0o222)


def _check_not_truncated(path: str, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
    """Refuse a file that is not SQLite, is empty, or is truncated (see sqlitefile.truncation)."""
    header = sqlitefile.read_header(path)
    if not sqlitefile.is_sqlite_header(header):
        if header:
            raise MigrationError(f"{path}: not an SQLite database")
        raise NotATurnsDatabase(f"{path}: not a turns.db (an empty file)")
    problem = sqlitefile.truncation(path, header, busy_timeout_ms / 1000)
    if problem:
        raise MigrationError(f"{path}: {problem}")


def migrate_path(path: Union[str, os.PathLike], rules: str = config.DEFAULT_RULES, batch_size: int = DEFAULT_BATCH_SIZE,
                 dry_run: bool = False, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
                 progress: Optional[Callable[[int], None]] = None,
                 on_start: Optional[Callable[[int], None]] = None) -> Report:
    """Migrate the turns.db at ``path`` on a connection of its own and return the Report."""
    conn = open_turns_db(path, dry_run=dry_run, busy_timeout_ms=busy_timeout_ms)
    try:
        migration = Migration(os.fspath(path), rules, batch_size, dry_run, progress=progress)
        migration.own_connection = True
        migration.report.journal_mode = switch_to_wal(conn, dry_run)
        if not dry_run and conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            # In WAL mode NORMAL never corrupts; a power cut may only undo the last steps, which a
            # rerun redoes. It spares an fsync per step. Other connections keep their own setting.
            conn.execute("PRAGMA synchronous=NORMAL")
        if on_start:
            on_start(conn.execute("SELECT count(*) FROM turns").fetchone()[0])
        for step in migration.steps():
            started = time.perf_counter()
            try:
                if dry_run or getattr(step, "reads_only", False):
                    step(conn)
                else:
                    run_in_transaction(conn, step)
            except sqlite3.OperationalError as error:
                raise explain_error(path, error, busy_timeout_ms) from None
            if not dry_run:
                time.sleep(pause_after(step, time.perf_counter() - started))
        return migration.report
    finally:
        conn.close()


def explain_error(path: Union[str, os.PathLike], error: sqlite3.Error, busy_timeout_ms: int) -> MigrationError:
    """The MigrationError, saying what to do next, for an OperationalError a step raised."""
    message = str(error)
    if "locked" in message or "busy" in message:
        return MigrationError(
            f"{path}: database is locked: gave up after {busy_timeout_ms / 1000:g} s waiting for "
            "the write lock; every step before this one is complete, rerun to continue"
        )
    if "disk is full" in message:
        return MigrationError(
            f"{path}: disk full ({message}): nothing of this step was written; every step before "
            "it is complete: free some space, then rerun to continue"
        )
    if "readonly" in message:
        return MigrationError(f"{path}: cannot write ({message}); nothing was changed by this step")
    return MigrationError(f"{path}: {message}; nothing was changed by this step")


async def _outside_transaction(db: "Database", fn: Step) -> Any:
    """``execute_write_fn`` without the transaction Datasette 1.0 wraps it in (0.65 never does):
    a journal mode cannot change inside one."""
    if "transaction" in inspect.signature(db.execute_write_fn).parameters:
        return await db.execute_write_fn(fn, transaction=False)
    return await db.execute_write_fn(fn)


async def migrate_database(db: "Database", rules: str = config.DEFAULT_RULES, batch_size: int = DEFAULT_BATCH_SIZE) -> Report:
    """Migrate a Datasette Database through ``execute_write_fn``, one step per write task."""
    migration = Migration(db.name, rules, batch_size)
    migration.report.journal_mode = await _outside_transaction(db, switch_to_wal)
    for step in migration.steps():
        started = time.perf_counter()
        if getattr(step, "reads_only", False):
            await db.execute_write_fn(step)
        else:
            await db.execute_write_fn(lambda conn, step=step: run_in_transaction(conn, step))
        await asyncio.sleep(pause_after(step, time.perf_counter() - started))
    return migration.report
