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

import asyncio
from contextlib import closing
from dataclasses import dataclass
import os
import sqlite3
import threading
import time
import urllib.parse
import weakref

from . import report
from . import timeline as timeline_store

DEFAULT_MAX_AGE_S = 30


@dataclass(frozen=True)
class Entry:
    report: report.DatabaseReport
    computed_at: float  # epoch seconds, when the computation started reading
    versions: tuple


@dataclass(frozen=True)
class Source:
    """What one report is computed from: a turns database and, perhaps, a timeline store."""

    turns: object  # a datasette Database
    timeline: object  # a datasette Database, or None
    timeline_name: str  # the configured name when it is not attached, else timeline.name
    rules: str

    @property
    def key(self):
        return (self.turns.name, self.timeline.name if self.timeline else self.timeline_name, self.rules)


class Versions:
    """``PRAGMA data_version`` of one file, on a read-only connection kept for that alone."""

    def __init__(self, path, immutable):
        self.immutable = immutable
        self.lock = threading.Lock()
        self.conn = None if immutable else sqlite3.connect(
            _uri(path, immutable=False), uri=True, check_same_thread=False
        )

    def read(self):
        if self.conn is None:
            return 0  # an immutable file never changes
        with self.lock:
            return self.conn.execute("PRAGMA data_version").fetchone()[0]


def _uri(path, immutable):
    mode = "ro&immutable=1" if immutable else "ro"
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?mode={mode}"


class ReportCache:
    def __init__(self):
        self.entries = {}
        self.running = {}  # key -> (started_at, task)
        self.watchers = {}

    async def get(self, source, max_age_s=DEFAULT_MAX_AGE_S, refresh=False):
        """The report for ``source``: cached, stale while one recomputation runs, or fresh."""
        key = source.key
        asked_at = time.time()
        if refresh:
            return await self._fresh(source, asked_at)
        entry = self.entries.get(key)
        if entry is None:
            return await self._shared(source)
        if await self._versions(source) == entry.versions:
            return entry
        if asked_at - entry.computed_at >= max_age_s:
            self._running_task(source)
        return entry

    async def _fresh(self, source, asked_at):
        """A computation that started reading after ``asked_at``; shares one already running
        only if it started after the request did."""
        while True:
            running = self.running.get(source.key)
            if running is None:
                return await asyncio.shield(self._running_task(source))
            started_at, task = running
            entry = await asyncio.shield(task)
            if started_at >= asked_at:
                return entry

    async def _shared(self, source):
        running = self.running.get(source.key)
        if running is not None:
            return await asyncio.shield(running[1])
        return await asyncio.shield(self._running_task(source))

    def _running_task(self, source):
        """The one computation for this source: the one running, else a new one."""
        key = source.key
        if key not in self.running:
            task = asyncio.ensure_future(self._compute(source))
            task.add_done_callback(_retrieve)
            self.running[key] = (time.time(), task)
        return self.running[key][1]

    async def _compute(self, source):
        key = source.key
        try:
            versions = await self._versions(source)
            computed_at = time.time()
            entry = Entry(await _run(source), computed_at, versions)
        except BaseException:
            if key in self.entries:
                # Keep serving the last figures; retry once max_age has passed again.
                entry = self.entries[key]
                self.entries[key] = Entry(entry.report, time.time(), entry.versions)
            raise
        finally:
            # Leave ``running`` before this task is done: a task that is done but still listed
            # would be awaited without yielding, and ``_fresh`` would spin on it for ever.
            self.running.pop(key, None)
        self.entries[key] = entry
        return entry

    async def _versions(self, source):
        databases = [db for db in (source.turns, source.timeline) if db is not None]
        if any(db.path is None for db in databases):
            return None  # an in-memory database has no file to watch: always recompute
        return await asyncio.to_thread(lambda: tuple(self._watcher(db).read() for db in databases))

    def _watcher(self, db):
        key = (db.name, db.path, db.is_mutable)
        if key not in self.watchers:
            self.watchers[key] = Versions(db.path, immutable=not db.is_mutable)
        return self.watchers[key]


def _retrieve(task):
    """Take a failed run's exception, which its waiters also get, so that a background
    recomputation nobody awaits is not reported as "never retrieved"."""
    if not task.cancelled():
        task.exception()


async def _run(source):
    """report.build for the source, on connections of its own in a worker thread."""
    db, timeline = source.turns, source.timeline
    opened = "mutable" if db.is_mutable else "immutable"

    def build(conn, pointers):
        return report.build(conn, db.name, path=db.path, rules=source.rules, opened=opened,
                            pointers=pointers, timeline=source.timeline_name)

    if db.path is None or (timeline is not None and timeline.path is None):
        pointers = await timeline.execute_fn(timeline_store.read_pointers) if timeline is not None else None
        return await db.execute_fn(lambda conn: build(conn, pointers))

    def in_thread():
        pointers = None
        if timeline is not None:
            pointers = timeline_store.read_pointers_from_file(timeline.path, immutable=not timeline.is_mutable)
        with closing(sqlite3.connect(_uri(db.path, not db.is_mutable), uri=True)) as conn:
            return build(conn, pointers)

    return await asyncio.to_thread(in_thread)


_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def for_datasette(datasette):
    """The one ReportCache of a Datasette instance."""
    if datasette not in _CACHES:
        _CACHES[datasette] = ReportCache()
    return _CACHES[datasette]
