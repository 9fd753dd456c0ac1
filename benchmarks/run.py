"""Measure the migration at scale against the physical floor, and write BENCHMARKS.md.

    python benchmarks/run.py [--turns N] [--json] [--out BENCHMARKS.md] [--workdir DIR] [--load-seconds S]
                             [--only SECTION ...]

Builds a pre-cutover sample with the project's own generator, then measures, each on a fresh copy
of the same file (copied and fsync'd before the clock starts):

* backfill vs the floor: ``datasette runtime-truth migrate`` (a subprocess, start-up included)
  against one hand-written transaction reaching the same end state with one
  ``UPDATE ... json_extract`` statement;
* lock holding: the longest time a probing writer could not get the write lock;
* a live writer: a second process saving turns the upstream way during the whole migration;
* memory: the migration's peak RSS at N and at N/10 turns;
* routes, canned queries and load (benchmarks/routes.py): on a migrated copy served by a real
  ``datasette serve``, the debug API routes and the canned queries' JSON against the same SQL run
  directly, and 20 clients for 20 seconds (``--load-seconds``) against the debug routes;
* lookup by any id (benchmarks/lookup.py): the search box's route for each kind of id against its
  own SQL, everything the route reads, and a full scan.
* the timeline snapshot (benchmarks/timelinebench.py): ``/api/timeline`` of a 5,000-entity
  conversation against its SQL and the server's fixed cost.

Each section is a function in SECTIONS returning a Section (or a list of them); the report is
rendered from them.
Speed is measured here and never asserted in tests.
"""

import argparse
from dataclasses import asdict, dataclass
import datetime
import importlib.metadata
import json
import multiprocessing
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from datasette_runtime_truth import sample
from datasette_runtime_truth.upstream import backfill, schema

from measure import Row, Section
from measure import percentile as _percentile
from measure import summary as _summary
import lookup
import reportscale
import routes
import timelinebench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 1
MB = 1024 * 1024

TARGET_FLOOR_RATIO = 1.5
TARGET_LOCK_MS = 250
TARGET_RSS_MB = 150


class Bench:
    """The sample and its copies; every measurement starts from a fresh copy of the same file."""

    def __init__(self, turns, workdir, batch_size=None, load_seconds=routes.LOAD_SECONDS):
        self.turns = turns
        self.workdir = workdir
        self.batch_size = batch_size
        self.load_seconds = load_seconds
        self.samples = {}

    def sample(self, turns):
        """Build (once) the pre-cutover sample of ``turns`` turns and return its turns.db path."""
        if turns not in self.samples:
            directory = os.path.join(self.workdir, f"sample-{turns}")
            started = time.perf_counter()
            try:
                summary = sample.build(directory, turns=turns, seed=SEED)
                built_s = time.perf_counter() - started
            except sample.SampleExists:  # a --workdir kept from an earlier run: same seed, same rows
                summary, built_s = _existing_sample(directory), None
            self.samples[turns] = (summary, built_s)
        return self.samples[turns][0].turns_path

    def copy(self, name, turns=None):
        """A fresh, fsync'd copy of the sample, so no measurement pays for writing back the copy."""
        source = self.sample(turns or self.turns)
        target = os.path.join(self.workdir, f"{name}.db")
        for suffix in ("", "-wal", "-shm"):
            _remove(target + suffix)
        shutil.copyfile(source, target)
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return target

    def small_rows_copy(self, name):
        """A fresh copy of a store holding only the sample's turn rows (metadata, no blocks, no
        snapshots), built once: where the migration's per-row work is all that is left."""
        source = os.path.join(self.workdir, f"small-rows-{self.turns}.db")
        if not os.path.exists(source):
            sample_path = self.sample(self.turns)
            conn = sqlite3.connect(source)
            schema.create_turns_db(conn, "pre-cutover")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("ATTACH ? AS sample", (f"file:{sample_path}?mode=ro",))
            conn.execute("INSERT INTO turns SELECT * FROM sample.turns ORDER BY rowid")
            conn.commit()
            conn.execute("DETACH sample")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        target = os.path.join(self.workdir, f"{name}.db")
        for suffix in ("", "-wal", "-shm"):
            _remove(target + suffix)
        shutil.copyfile(source, target)
        return target

    def discard(self, path):
        for suffix in ("", "-wal", "-shm"):
            _remove(path + suffix)

    def migrate_command(self, path):
        command = [sys.executable, "-m", "datasette", "runtime-truth", "migrate", path, "--json"]
        if self.batch_size:
            command += ["--batch-size", str(self.batch_size)]
        return command


def _existing_sample(directory):
    turns_path, timeline_path = (os.path.join(directory, name) for name in ("turns.db", "timeline.db"))
    turns = sqlite3.connect(f"file:{turns_path}?mode=ro", uri=True)
    timeline = sqlite3.connect(f"file:{timeline_path}?mode=ro", uri=True)
    try:
        return sample.SampleSummary(
            turns_path, timeline_path,
            conversations=timeline.execute("SELECT count(*) FROM timeline_conversations").fetchone()[0],
            sessions=turns.execute("SELECT count(DISTINCT session_id) FROM turns").fetchone()[0],
            turns=turns.execute("SELECT count(*) FROM turns").fetchone()[0],
            snapshots=turns.execute("SELECT count(*) FROM (SELECT DISTINCT conv_id, session_id, turn_id, "
                                    "phase, snapshot_created_at_ms FROM turn_block_membership)").fetchone()[0],
            blocks=turns.execute("SELECT count(*) FROM blocks").fetchone()[0],
        )
    finally:
        turns.close()
        timeline.close()


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


@dataclass
class Run:
    """A finished subprocess: its wall time, CPU time, peak RSS and output."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    returncode: int


# On Linux a child's ru_maxrss starts from its parent's peak RSS (exec records the old image's
# high-water mark), so a child of this process would report this process's size. A small
# intermediary forks the measured program and reports its wait4() figures instead.
MEASURE_CHILD = r"""
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
               "maxrss_kb": usage.ru_maxrss}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(command):
    """Run ``command`` to completion; wall time, CPU time and peak RSS of that program alone."""
    with tempfile.TemporaryDirectory() as directory:
        figures = os.path.join(directory, "figures.json")
        process = subprocess.run([sys.executable, "-c", MEASURE_CHILD, figures, *command],
                                 capture_output=True, text=True)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {process.stderr.strip()}")
        with open(figures) as f:
            measured = json.load(f)
    return Run(measured["wall_s"], measured["cpu_s"], measured["maxrss_kb"] / 1024, process.stdout,
               process.stderr, process.returncode)


# The floor: the same end state as the migration on well-formed rows (columns, canonical backfill,
# indexes) in one transaction, every JSON decision made by SQLite's json1 in C. "Value to string"
# is spelled out per JSON type: text trimmed, numbers as text, booleans as 'true'/'false'.

def _to_text(path):
    value = f"json_extract(turn_metadata_json, '{path}')"
    return f"""(CASE json_type(turn_metadata_json, '{path}')
        WHEN 'text' THEN trim({value})
        WHEN 'integer' THEN CAST({value} AS TEXT)
        WHEN 'real' THEN CAST({value} AS TEXT)
        WHEN 'true' THEN 'true'
        WHEN 'false' THEN 'false'
        ELSE '' END)"""


FLOOR_UPDATE = f"""
UPDATE turns SET
  runtime_key = CASE
    WHEN runtime_key = '' AND json_type(turn_metadata_json, '$."geppetto.runtime@v1"') = 'object'
    THEN {_to_text('$."geppetto.runtime@v1".runtime_key')}
    ELSE runtime_key END,
  inference_id = CASE
    WHEN inference_id = ''
    THEN coalesce(nullif({_to_text('$."geppetto.inference_id@v1"')}, ''), {_to_text('$.inference_id')})
    ELSE inference_id END
WHERE (runtime_key = '' OR inference_id = '')
  AND json_valid(turn_metadata_json)
  AND json_type(turn_metadata_json) = 'object'
"""

FLOOR_PROGRAM = """
import json, sqlite3, sys, time
path, update, columns, indexes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
conn = sqlite3.connect(path, isolation_level=None)
conn.execute("PRAGMA synchronous=NORMAL")
times = {}
started = time.perf_counter()
conn.execute("BEGIN IMMEDIATE")
for sql in columns:
    conn.execute(sql)
times["alter_s"] = time.perf_counter() - started
mark = time.perf_counter()
conn.execute(update)
times["update_s"] = time.perf_counter() - mark
mark = time.perf_counter()
for sql in indexes:
    conn.execute(sql)
times["indexes_s"] = time.perf_counter() - mark
mark = time.perf_counter()
conn.execute("COMMIT")
times["commit_s"] = time.perf_counter() - mark
conn.close()
print(json.dumps(times))
"""


def run_floor(path):
    columns = [f"ALTER TABLE turns ADD COLUMN {c.name} {c.definition}" for c in schema.COLUMNS
               if c.name in schema.RUNTIME_COLUMNS]
    indexes = [index.sql for index in schema.INDEXES if index.name in schema.RUNTIME_INDEXES]
    run = run_child([sys.executable, "-c", FLOOR_PROGRAM, path, FLOOR_UPDATE, json.dumps(columns),
                     json.dumps(indexes)])
    return run, json.loads(run.stdout)


def compare_values(migrated, floor):
    """Row by row (same rowids: both are copies of one pre-cutover file): filled counts, rows
    whose migrated values are not the upstream rules' (applied here one row at a time), and rows
    where the SQL floor's values differ from the migration's."""
    a = sqlite3.connect(f"file:{migrated}?mode=ro", uri=True)
    b = sqlite3.connect(f"file:{floor}?mode=ro", uri=True)
    counts = {"rows": 0, "migration_runtime_key": 0, "migration_inference_id": 0,
              "floor_runtime_key": 0, "floor_inference_id": 0, "rows_differing": 0,
              "floor_rows_differing": 0}
    examples = []
    rows_a = a.execute("SELECT rowid, runtime_key, inference_id, turn_metadata_json FROM turns ORDER BY rowid")
    rows_b = b.execute("SELECT rowid, runtime_key, inference_id FROM turns ORDER BY rowid")
    for row_a, row_b in zip(rows_a, rows_b):
        counts["rows"] += 1
        counts["migration_runtime_key"] += row_a[1] != ""
        counts["migration_inference_id"] += row_a[2] != ""
        counts["floor_runtime_key"] += row_b[1] != ""
        counts["floor_inference_id"] += row_b[2] != ""
        counts["floor_rows_differing"] += row_a[:3] != row_b
        if row_a[1:3] != _expected(row_a[3]):
            counts["rows_differing"] += 1
            if len(examples) < 5:
                examples.append({"rowid": row_a[0], "migration": row_a[1:3], "rules": _expected(row_a[3])})
    a.close()
    b.close()
    return counts, examples


def backfill_vs_floor(bench, results):
    return _backfill_vs_floor(bench, results, bench.copy, "Backfill vs the floor")


def small_rows_vs_floor(bench, results):
    section = _backfill_vs_floor(bench, results, bench.small_rows_copy, "Backfill vs the floor, small rows")
    section.notes.insert(0, "The same measurement on a store holding only the sample's turn rows (their "
                            "metadata; no blocks, no snapshots): the SQL floor's work shrinks with the "
                            "file, the migration's per-row decoding of metadata does not.")
    return section


def _backfill_vs_floor(bench, results, copy, title):
    migrated = copy("migration")
    migration = run_child(bench.migrate_command(migrated))
    report = json.loads(migration.stdout)
    floor_path = copy("floor")
    floor, floor_times = run_floor(floor_path)
    counts, examples = compare_values(migrated, floor_path)
    bench.discard(floor_path)
    bench.discard(migrated)
    start_up = run_child([sys.executable, "-m", "datasette", "runtime-truth", "--help"])
    results.setdefault("quiet_migration", migration)
    ratio = migration.wall_s / floor.wall_s
    cpu_ratio = migration.cpu_s / floor.cpu_s
    same = counts["rows_differing"] == 0 and report["rows_scanned"] == counts["rows"]
    section = Section(title)
    section.rows = [
        Row("migration, wall (CPU)", f"{migration.wall_s:.2f} s ({migration.cpu_s:.2f} s)"),
        Row("floor, wall (CPU)", f"{floor.wall_s:.2f} s ({floor.cpu_s:.2f} s)"),
        Row("migration / floor, wall", f"{ratio:.2f}x", f"≤ {TARGET_FLOOR_RATIO}x", ratio <= TARGET_FLOOR_RATIO),
        Row("migration / floor, CPU", f"{cpu_ratio:.2f}x"),
        Row("runtime_key filled, migration / floor",
            f"{counts['migration_runtime_key']:,} / {counts['floor_runtime_key']:,}"),
        Row("inference_id filled, migration / floor",
            f"{counts['migration_inference_id']:,} / {counts['floor_inference_id']:,}"),
        Row("rows whose values differ from the rules'", f"{counts['rows_differing']:,} of {counts['rows']:,}",
            "0", same),
        Row("rows where the SQL floor's values differ", f"{counts['floor_rows_differing']:,} of {counts['rows']:,}"),
    ]
    section.notes = [
        "The floor reaches the migration's end state in one `BEGIN IMMEDIATE` transaction run by the "
        "sqlite3 module: the two `ALTER TABLE ... ADD COLUMN`, one `UPDATE ... json_extract` applying the "
        "canonical rules as nearly as SQL can (only `''` filled; invalid or non-object JSON skipped), and the two "
        "`CREATE INDEX`. Both use `synchronous=NORMAL` on a WAL file. Its parts: "
        + ", ".join(f"{name[:-2]} {value:.2f} s" for name, value in floor_times.items()) + ".",
        f"The migration is the CLI in a subprocess, interpreter and Datasette start-up included "
        f"(`datasette runtime-truth --help` alone: {start_up.wall_s:.2f} s wall). It parses each row's "
        "metadata as the upstream's Go code does (`golang.py`, `backfill.py`), which SQLite's JSON "
        "functions cannot replace: number formatting (`1e+06`), objects as Go prints them, Unicode white "
        "space, duplicate keys, `NaN` and surrogate escapes differ; so the floor's values differ on the "
        "rows counted above, and the migration's are checked against the rules row by row instead. "
        "That per-row parse, in Python rather than in C, is where the migration's extra CPU time goes.",
        "Wall times on a shared machine vary with its load; CPU times (user + system of the child "
        "process, from `wait4`) vary less.",
    ]
    section.data = {"migration": _run_data(migration), "floor": {**_run_data(floor), **floor_times},
                    "ratio_wall": ratio, "ratio_cpu": cpu_ratio, "start_up_wall_s": start_up.wall_s,
                    "report": report, "values": counts, "differing_examples": examples}
    return section


def _run_data(run):
    return {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mb": run.peak_rss_mb}


# Lock holding, from outside: a probing process tries BEGIN IMMEDIATE without a busy handler every
# PROBE_INTERVAL_S; a streak of refusals is a lower bound on one write transaction of the migration
# (the probe's resolution is the interval plus scheduling delay). The schema read at the end of each
# streak tells which step it was: a new index, a new column, or a backfill window.

PROBE_INTERVAL_S = 0.0005


def probe(path, stop, results):
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    streaks = []
    refused_since = None
    shape = _shape(conn)
    while not stop.is_set():
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            if refused_since is None:
                refused_since = time.perf_counter()
            time.sleep(PROBE_INTERVAL_S)
            continue
        got_it = time.perf_counter()
        if refused_since is not None:
            new_shape = _shape(conn)
            added = sorted(new_shape - shape)
            kind = "index" if any(a.startswith("index:") for a in added) else (
                "column" if added else "backfill window")
            streaks.append({"ms": (got_it - refused_since) * 1000, "kind": kind, "added": added})
            shape = new_shape
            refused_since = None
        conn.execute("COMMIT")
        time.sleep(PROBE_INTERVAL_S)
    conn.close()
    results.put(streaks)


def _shape(conn):
    shape = schema.TurnsShape.read(conn)
    columns = {f"column:{name}" for name in shape.columns}
    indexes = {f"index:{name}" for name in shape.indexes}
    return columns | indexes


# A live writer, the way the upstream server saves: WAL, busy_timeout=5000, one transaction per
# phase snapshot (upsert the turn row, add the content-addressed blocks and the membership rows).
# It is the pre-cutover server, so it writes no runtime_key / inference_id of its own.

WRITER_PAUSE_S = 0.005
UPSERT_TURN = """
INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json,
                   turn_data_json, updated_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (conv_id, session_id, turn_id) DO UPDATE SET
  turn_created_at_ms = MIN(turns.turn_created_at_ms, excluded.turn_created_at_ms),
  updated_at_ms = MAX(turns.updated_at_ms, excluded.updated_at_ms),
  turn_metadata_json = excluded.turn_metadata_json,
  turn_data_json = excluded.turn_data_json
"""
INSERT_BLOCK = "INSERT OR IGNORE INTO blocks VALUES (?, ?, 'sha256-canonical-json-v1', ?, ?, ?, '{}', ?)"
INSERT_MEMBER = "INSERT OR REPLACE INTO turn_block_membership VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
PHASES = ("pre_inference", "post_inference", "final")


def live_writer(path, stop, results):
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    saved, failures, waits = {}, [], []
    n = 0
    conv_id, session_id = f"live-conv-{os.getpid()}", f"live-session-{os.getpid()}"
    while not stop.is_set():
        turn_id = f"live-turn-{n // len(PHASES):06d}"
        phase = PHASES[n % len(PHASES)]
        now = int(time.time() * 1000)
        metadata = json.dumps({"geppetto.runtime@v1": {"runtime_key": "planner"},
                               "geppetto.inference_id@v1": f"inf-{turn_id}", "geppetto.phase": phase})
        block = (f"block-{n}", f"hash-{n}", "llm_text", "assistant", json.dumps({"text": phase}), now)
        started = time.perf_counter()
        try:
            conn.execute("BEGIN")
            conn.execute(UPSERT_TURN, (conv_id, session_id, turn_id, now, metadata, "{}", now))
            conn.execute(INSERT_BLOCK, block)
            conn.execute(INSERT_MEMBER, (conv_id, session_id, turn_id, phase, now, 0, block[0], block[1]))
            conn.execute("COMMIT")
            saved[turn_id] = metadata
        except sqlite3.Error as error:
            failures.append(str(error))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        waits.append(time.perf_counter() - started)
        n += 1
        time.sleep(WRITER_PAUSE_S)
    conn.close()
    results.put({"conv_id": conv_id, "session_id": session_id, "saved": saved, "failures": failures,
                 "waits": waits})


def alongside(function, path, migrate_command):
    """Run ``function`` in its own process for the whole migration; return (migration Run, result)."""
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    process = context.Process(target=function, args=(path, stop, results))
    process.start()
    time.sleep(0.5)  # let it start before the migration does
    try:
        migration = run_child(migrate_command)
    finally:
        time.sleep(0.2)
        stop.set()
    result = results.get(timeout=60)
    process.join(timeout=60)
    return migration, result


def lock_holding(bench, results):
    path = bench.copy("probed")
    migration, streaks = alongside(probe, path, bench.migrate_command(path))
    bench.discard(path)
    longest = max(streaks, key=lambda s: s["ms"], default={"ms": 0.0, "kind": "none", "added": []})
    by_kind = {}
    for streak in streaks:
        kind = streak["kind"]
        by_kind.setdefault(kind, []).append(streak["ms"])
    windows = by_kind.get("backfill window", [])
    section = Section("Lock holding")
    section.rows = [
        Row("longest write transaction seen", f"{longest['ms']:.0f} ms ({_describe(longest)})",
            f"≤ {TARGET_LOCK_MS} ms", longest["ms"] <= TARGET_LOCK_MS),
        Row("longest backfill window", f"{max(windows, default=0):.0f} ms"
            f" (median {_percentile(windows, 50):.0f} ms, {len(windows):,} windows seen)",
            f"≤ {TARGET_LOCK_MS} ms", max(windows, default=0) <= TARGET_LOCK_MS),
    ]
    for ms, streak in sorted(((s["ms"], s) for s in streaks if s["kind"] == "index"), reverse=True):
        section.rows.append(Row(f"index build: {_describe(streak)}", f"{ms:.0f} ms"))
    section.notes = [
        f"Measured from outside: a second process tries `BEGIN IMMEDIATE` with no busy handler every "
        f"{PROBE_INTERVAL_S * 1000:g} ms during the whole migration; each run of refusals is one write "
        "transaction of the migration, seen from the first refusal to the next success (a lower bound, "
        "to within the probe interval plus scheduling delay; when the probe is not scheduled during the "
        "short gap between two steps, one run spans both and overstates). The schema read when the lock "
        "comes back names the step: a new index, a new column, or else a backfill window.",
        "Each backfill window parses its rows' metadata before taking the lock and holds it only to "
        "re-check and update them; a step that held the lock over 100 ms is followed by a 150 ms gap, "
        "longer than SQLite's longest busy-handler sleep, so writers that waited get in.",
        "`CREATE INDEX` is one statement and one transaction: its time grows with the table and cannot "
        "be split. A writer waiting with `busy_timeout=5000` (the upstream's) waits it out instead of "
        "failing, as long as one index build stays under 5 s; the live-writer section measures that.",
        f"Migration with the probe: {migration.wall_s:.2f} s wall.",
    ]
    section.data = {"streaks_seen": len(streaks), "longest": longest, "windows_ms": _summary(windows),
                    "index_builds": [s for s in streaks if s["kind"] == "index"],
                    "migration": _run_data(migration)}
    return section


def _describe(streak):
    if streak["kind"] == "backfill window":
        return "a backfill window"
    names = ", ".join(a.split(":", 1)[1] for a in streak["added"])
    return f"{streak['kind']} {names}" if names else streak["kind"]


def live_writer_section(bench, results):
    path = bench.copy("live")
    migration, written = alongside(live_writer, path, bench.migrate_command(path))
    report = json.loads(migration.stdout)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = {turn_id: (metadata, runtime_key, inference_id) for turn_id, metadata, runtime_key, inference_id in conn.execute(
        "SELECT turn_id, turn_metadata_json, runtime_key, inference_id FROM turns WHERE conv_id = ? AND session_id = ?",
        (written["conv_id"], written["session_id"]))}
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    bench.discard(path)
    saved = written["saved"]
    missing = [turn_id for turn_id, metadata in saved.items() if rows.get(turn_id, (None,))[0] != metadata]
    backfilled = [values for values in rows.values() if values[1:] != ("", "")]
    wrong = [values for values in backfilled if values[1:] != _expected(values[0])]
    waits_ms = [wait * 1000 for wait in written["waits"]]
    failures = written["failures"]
    section = Section("A live writer")
    section.rows = [
        Row("saves during the migration", f"{len(waits_ms):,} ({len(saved):,} turns)"),
        Row("failed saves", f"{len(failures):,}", "0", not failures),
        Row("saved turns missing or changed afterwards", f"{len(missing):,}", "0", not missing),
        Row("its turns backfilled by the migration, wrong values",
            f"{len(backfilled):,} backfilled, {len(wrong):,} wrong", "0 wrong", not wrong),
        Row("longest save (lock wait included)", f"{max(waits_ms, default=0):.0f} ms",
            "< 5,000 ms (busy_timeout)", max(waits_ms, default=0) < 5000),
        Row("save p99 / median", f"{_percentile(waits_ms, 99):.1f} ms / {_percentile(waits_ms, 50):.1f} ms"),
        Row("integrity_check afterwards", integrity, "ok", integrity == "ok"),
    ]
    section.notes = [
        "A second process saves turns the way the upstream (pre-cutover) server does: WAL, "
        f"`busy_timeout=5000`, one `BEGIN` ... `COMMIT` per phase snapshot (upsert of the turn row, its "
        f"block, its membership row), a save every {WRITER_PAUSE_S * 1000:g} ms plus its own time, from "
        "before the migration starts until after it ends. Turns it saves after the backfill has passed "
        "them keep `''` until the next run, which is the upstream's own behaviour.",
        f"Migration with the writer: {migration.wall_s:.2f} s wall, {report['rows_scanned']:,} rows scanned.",
    ]
    if failures:
        section.notes.append("Failures: " + "; ".join(sorted(set(failures))[:5]))
    section.data = {"saves": len(waits_ms), "turns": len(saved), "failures": failures, "missing": missing,
                    "backfilled": len(backfilled), "wrong": len(wrong), "waits_ms": _summary(waits_ms),
                    "integrity": integrity, "migration": _run_data(migration)}
    return section


def _expected(metadata):
    """What the canonical rules leave in a row that had neither value."""
    try:
        return backfill.next_values(metadata, "", "") or ("", "")
    except backfill.InvalidMetadata:
        return "", ""


def memory(bench, results):
    large = results["quiet_migration"]
    small_turns = max(1, bench.turns // 10)
    path = bench.copy("small", turns=small_turns)
    small = run_child(bench.migrate_command(path))
    bench.discard(path)
    growth = large.peak_rss_mb - small.peak_rss_mb
    flat = growth <= max(5.0, 0.1 * small.peak_rss_mb)
    section = Section("Memory")
    section.rows = [
        Row(f"peak RSS at {small_turns:,} turns", f"{small.peak_rss_mb:.1f} MB"),
        Row(f"peak RSS at {bench.turns:,} turns", f"{large.peak_rss_mb:.1f} MB",
            f"< {TARGET_RSS_MB} MB", large.peak_rss_mb < TARGET_RSS_MB),
        Row("growth for 10x the turns", f"{growth:+.1f} MB", "flat (≤ 5 MB or 10%)", flat),
    ]
    section.notes = [
        "Peak resident set of the `datasette runtime-truth migrate` process (interpreter and Datasette "
        "included): `ru_maxrss` from `wait4`, taken by a small intermediary that forks it, because a "
        "child of the benchmark itself would start from the benchmark's own peak.",
    ]
    section.data = {"small_turns": small_turns, "small_mb": small.peak_rss_mb, "large_mb": large.peak_rss_mb}
    return section


# Sections run in this order; each is a function (bench, results) -> Section (or a list of
# Sections, when several share one server), and may read what an earlier one left in ``results``.
# The routes, canned queries and load sections (benchmarks/routes.py) share one served copy.
SECTIONS = (backfill_vs_floor, small_rows_vs_floor, lock_holding, live_writer_section, memory, routes.routes_and_queries,
            reportscale.report_at_scale, lookup.lookup_by_any_id,
            timelinebench.timeline_snapshot)
BY_NAME = {section.__name__: section for section in SECTIONS}


def machine():
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "datasette": importlib.metadata.version("datasette"),
        "plugin": importlib.metadata.version("datasette-runtime-truth"),
        "commit": _git_commit(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def run_all(turns, workdir, batch_size=None, sections=SECTIONS, load_seconds=routes.LOAD_SECONDS):
    bench = Bench(turns, workdir, batch_size, load_seconds)
    bench.sample(turns)
    summary, build_s = bench.samples[turns]
    results = {}
    done = []
    for section in sections:
        measured = section(bench, results)
        done += measured if isinstance(measured, list) else [measured]
    return {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "sample": {"turns": summary.turns, "conversations": summary.conversations,
                   "snapshots": summary.snapshots, "blocks": summary.blocks, "seed": SEED,
                   "turns_db_mb": round(os.path.getsize(summary.turns_path) / MB, 1),
                   "build_s": None if build_s is None else round(build_s, 1)},
        "batch_size": batch_size,
        "sections": [{"title": s.title, "met": s.met, "rows": [asdict(r) for r in s.rows],
                      "notes": s.notes, "data": s.data} for s in done],
        "all_met": all(s.met is not False for s in done),
    }


def markdown(result):
    m, s = result["machine"], result["sample"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python benchmarks/run.py --turns {s['turns']}` on {result['generated']}; every "
        "figure below comes from that one run. Rerun it to refresh this file.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gb']} GB; {m['os']}",
        f"- Python {m['python']}, SQLite {m['sqlite']}, Datasette {m['datasette']}, "
        f"datasette-runtime-truth {m['plugin']}" + (f" (commit {m['commit']})" if m["commit"] else ""),
        f"- load average when the run started: {', '.join(map(str, m['load_average_at_start']))}",
        "",
        "## Sample",
        "",
        f"A pre-cutover `turns.db` from `sample.build(turns={s['turns']}, seed={s['seed']})`: "
        f"{s['turns']:,} turns in {s['conversations']:,} conversations, {s['snapshots']:,} phase "
        f"snapshots, {s['blocks']:,} blocks, {s['turns_db_mb']:,} MB ("
        + (f"built in {s['build_s']} s" if s["build_s"] is not None else "kept in --workdir from an earlier run")
        + "). "
        "Each measurement runs on a fresh copy of that file."
        + (f" Migration batch size: {result['batch_size']}." if result["batch_size"] else ""),
        "",
        "## Targets",
        "",
        "| section | met |",
        "| --- | --- |",
    ]
    for section in result["sections"]:
        lines.append(f"| {section['title']} | {verdict(section['met']) or 'no target (information)'} |")
    lines.append("")
    for section in result["sections"]:
        lines += _section_lines(section)
    return "\n".join(lines)


def section_markdown(section):
    """One section as BENCHMARKS.md shows it, from a Section or its JSON form."""
    return "\n".join(_section_lines(section)) + "\n"


def _section_lines(section):
    if isinstance(section, Section):
        section = {"title": section.title, "rows": [asdict(row) for row in section.rows], "notes": section.notes}
    lines = [f"## {section['title']}", "", "| measure | value | target | met |", "| --- | --- | --- | --- |"]
    for row in section["rows"]:
        lines.append(f"| {row['measure']} | {row['value']} | {row['target']} | {verdict(row['met'])} |")
    lines.append("")
    lines += [f"- {note}" for note in section["notes"]]
    lines.append("")
    return lines


def verdict(met):
    return {True: "yes", False: "**no**", None: ""}[met]


def text_table(result):
    lines = []
    for section in result["sections"]:
        lines.append(f"{section['title']}: {verdict(section['met']) or '-'}".replace("**", ""))
        width = max(len(row["measure"]) for row in section["rows"])
        for row in section["rows"]:
            target = f"  (target {row['target']}: {verdict(row['met'])})".replace("**", "") if row["target"] else ""
            lines.append(f"  {row['measure']:<{width}}  {row['value']}{target}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1_000_000, help="turns in the sample (default 1,000,000)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"), help="where to write BENCHMARKS.md")
    parser.add_argument("--workdir", help="where to build the sample and its copies (default: a temporary "
                        "directory, removed afterwards); needs about 7 KB per turn, twice")
    parser.add_argument("--batch-size", type=int, help="the migration's --batch-size (default: its own)")
    parser.add_argument("--load-seconds", type=float, default=routes.LOAD_SECONDS,
                        help=f"how long the load test's {routes.LOAD_CLIENTS} clients run "
                        f"(default {routes.LOAD_SECONDS:g})")
    parser.add_argument("--only", nargs="+", choices=list(BY_NAME), metavar="SECTION",
                        help=f"run only these sections, in their usual order ({', '.join(BY_NAME)})")
    args = parser.parse_args(argv)
    if args.turns < 10:
        parser.error("--turns must be at least 10")
    workdir = args.workdir or tempfile.mkdtemp(prefix="runtime-truth-bench-")
    os.makedirs(workdir, exist_ok=True)
    try:
        sections = tuple(s for s in SECTIONS if not args.only or s.__name__ in args.only)
        result = run_all(args.turns, workdir, args.batch_size, sections=sections,
                         load_seconds=args.load_seconds)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    with open(args.out, "w") as f:
        f.write(markdown(result))
    print(json.dumps(result) if args.json else text_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
