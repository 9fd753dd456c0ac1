"""The cutover report's figures, computed once and served until the store changes.

A report at a million turns takes seconds of CPU, and dashboards poll. So each turns database's
report is kept with the ``PRAGMA data_version`` of the turns and timeline files at the time it
was computed, read on connections of this module's own: that number moves whenever any other
connection, in any process, commits. A load then costs one pragma when nothing changed.

When something did change, the last figures are served at once, and at most one recomputation
per database runs in the background, no more often than ``report_max_age`` seconds allow; every
answer carries ``computed_at``. ``refresh`` always computes afresh, after every commit made before
the request. A computation runs on a read-only connection of its own in a worker thread, so
Datasette's SQL threads stay free for its pages.
"""

from __future__ import annotations

import asyncio
from contextlib import closing
from dataclasses import dataclass, replace
import logging
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, Optional, Union
import weakref

from .. import config
from . import checks
from ..storage import sqlitefile, timeline_store

if TYPE_CHECKING:
    from datasette.app import Datasette
    from datasette.database import Database

DEFAULT_MAX_AGE_S = config.BY_NAME["report_max_age"].default

log = logging.getLogger(__name__)

# (turns Database, timeline Database or its configured name, rules): see Source.key
Key = tuple["Database", Union["Database", str], str]
Running = tuple[float, "asyncio.Task[Entry]"]  # (time.monotonic() when started, the computation)


@dataclass(frozen=True)
class Entry:
    report: checks.DatabaseReport
    computed_at: float  # epoch seconds, when the computation started reading (shown)
    versions: Optional[tuple[int, ...]]  # None when a database is in memory
    attempted: float  # time.monotonic() of the last computation started, failed ones too
    outdated: bool = False  # served after the store committed again, while a recomputation is due


@dataclass(frozen=True)
class Source:
    """What one report is computed from: a turns database and, perhaps, a timeline store."""

    turns: Database
    timeline: Optional[Database]
    timeline_name: Optional[str]  # the configured name when it is not attached, else timeline.name
    rules: str

    @property
    def key(self) -> Key:
        """The Database objects themselves, not their names: a database replaced at runtime under
        the same name (``remove_database`` + ``add_database``) is another source, with figures of
        its own."""
        return (self.turns, self.timeline if self.timeline is not None else self.timeline_name, self.rules)

    @property
    def databases(self) -> list[Database]:
        return [db for db in (self.turns, self.timeline) if db is not None]


class Versions:
    """``PRAGMA data_version`` of one file, on a read-only connection kept for that alone."""

    def __init__(self, path: str, immutable: bool) -> None:
        self.immutable = immutable
        self.lock = threading.Lock()
        self.conn = None if immutable else sqlite3.connect(
            sqlitefile.uri(path), uri=True, check_same_thread=False
        )

    def read(self) -> int:
        with self.lock:
            if self.conn is None:
                return 0  # an immutable file never changes (nor one no longer watched)
            return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


class ReportCache:
    def __init__(self) -> None:
        self.entries: dict[Key, Entry] = {}
        self.running: dict[Key, Running] = {}
        self.watchers: dict[Database, Versions] = {}

    async def get(self, source: Source, max_age_s: float = DEFAULT_MAX_AGE_S, refresh: bool = False) -> Entry:
        """The report for ``source``: cached, stale while one recomputation runs, or fresh."""
        asked_at = time.monotonic()
        if refresh:
            return await self._fresh(source, asked_at)
        entry = self.entries.get(source.key)
        if entry is None:
            return await asyncio.shield(self._task(source)[1])
        if await self._versions(source) == entry.versions:
            return entry
        if asked_at - entry.attempted >= max_age_s:
            self._task(source)
        return replace(entry, outdated=True)

    async def _fresh(self, source: Source, asked_at: float) -> Entry:
        """A computation that started reading after ``asked_at``; shares one already running
        only if it started after the request did."""
        while True:
            started_at, task = self._task(source)
            try:
                entry = await asyncio.shield(task)
            except Exception:
                if started_at >= asked_at:
                    raise
                continue  # an older computation failed: this request's own may not
            if started_at >= asked_at:
                return entry

    def _task(self, source: Source) -> Running:
        """``(started_at, task)`` of the one computation for this source: the one running, else
        a new one."""
        key = source.key
        running = self.running.get(key)
        if running is None or running[1].done():
            task = asyncio.ensure_future(self._compute(source))
            task.add_done_callback(lambda done: self._done(key, done))
            running = self.running[key] = (time.monotonic(), task)
        return running

    async def _compute(self, source: Source) -> Entry:
        key = source.key
        attempted = time.monotonic()
        try:
            versions = await self._versions(source)
            computed_at = time.time()
            entry = Entry(await _run(source), computed_at, versions, attempted)
        except BaseException:
            if key in self.entries:
                # Keep serving the last figures; retry once max_age has passed again.
                self.entries[key] = replace(self.entries[key], attempted=attempted)
            raise
        finally:
            # Leave ``running`` before this task is done: a task that is done but still listed
            # would be awaited without yielding, and a refresh would spin on it for ever.
            self._unlist(key, asyncio.current_task())
        self.entries[key] = entry
        self._forget_replaced(source)
        return entry

    def _forget_replaced(self, source: Source) -> None:
        """Drop the figures and file watchers of databases that ``source``'s have replaced under
        the same name."""
        for db in source.databases:
            for key in [key for key in self.entries if _replaced(key[0], db) or _replaced(key[1], db)]:
                del self.entries[key]
            for watched in [watched for watched in self.watchers if _replaced(watched, db)]:
                self.watchers.pop(watched).close()

    def _done(self, key: Key, task: asyncio.Future[Entry]) -> None:
        # A task cancelled before it ever ran has no ``finally`` to unlist it.
        self._unlist(key, task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("datasette-runtime-truth: computing the report of %s failed: %r",
                        key[0].name, task.exception())

    def _unlist(self, key: Key, task: Optional[asyncio.Future[Entry]]) -> None:
        if self.running.get(key, (None, None))[1] is task:
            del self.running[key]

    async def _versions(self, source: Source) -> Optional[tuple[int, ...]]:
        databases = source.databases
        if any(db.path is None for db in databases):
            return None  # an in-memory database has no file to watch: always recompute
        return await asyncio.to_thread(lambda: tuple(self._watcher(db).read() for db in databases))

    def _watcher(self, db: Database) -> Versions:
        if db not in self.watchers:
            self.watchers[db] = Versions(db.path, immutable=not db.is_mutable)
        return self.watchers[db]


def _replaced(old: Any, new: Database) -> bool:
    """Whether the Database ``old`` is another object under ``new``'s name."""
    return getattr(old, "name", None) == new.name and old is not new


async def _run(source: Source) -> checks.DatabaseReport:
    """checks.build for the source, on connections of its own in a worker thread."""
    db, timeline = source.turns, source.timeline
    opened = "mutable" if db.is_mutable else "immutable"

    def build(conn: sqlite3.Connection, pointers: Optional[dict[str, str]]) -> checks.DatabaseReport:
        return checks.build(conn, db.name, path=db.path, rules=source.rules, opened=opened,
                            pointers=pointers, timeline=source.timeline_name)

    if db.path is None or (timeline is not None and timeline.path is None):
        pointers = await timeline.execute_fn(timeline_store.read_pointers) if timeline is not None else None
        return await db.execute_fn(lambda conn: build(conn, pointers))

    def in_thread() -> checks.DatabaseReport:
        pointers = None
        if timeline is not None:
            pointers = timeline_store.read_pointers_from_file(timeline.path, immutable=not timeline.is_mutable)
        with closing(sqlite3.connect(sqlitefile.read_only_uri(db.path, not db.is_mutable), uri=True)) as conn:
            return build(conn, pointers)

    return await asyncio.to_thread(in_thread)


_CACHES: weakref.WeakKeyDictionary[Datasette, ReportCache] = weakref.WeakKeyDictionary()


def for_datasette(datasette: Datasette) -> ReportCache:
    """The one ReportCache of a Datasette instance."""
    if datasette not in _CACHES:
        _CACHES[datasette] = ReportCache()
    return _CACHES[datasette]
