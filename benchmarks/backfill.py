"""Backfill vs the floor: the migration CLI against one hand-written SQL transaction reaching the
same end state, on a copy of the sample and on a store of its turn rows alone (small rows).
"""

import json
import sqlite3
import sys

from datasette_runtime_truth.upstream import schema
from datasette_runtime_truth.upstream.backfill import InvalidMetadata, next_values

from harness import run_child, run_data
from measure import Row, Section

TARGET_FLOOR_RATIO = 1.5


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
        if row_a[1:3] != rules_values(row_a[3]):
            counts["rows_differing"] += 1
            if len(examples) < 5:
                examples.append({"rowid": row_a[0], "migration": row_a[1:3], "rules": rules_values(row_a[3])})
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
    section.data = {"migration": run_data(migration), "floor": {**run_data(floor), **floor_times},
                    "ratio_wall": ratio, "ratio_cpu": cpu_ratio, "start_up_wall_s": start_up.wall_s,
                    "report": report, "values": counts, "differing_examples": examples}
    return section



def rules_values(metadata):
    """What the canonical rules leave in a row that had neither value."""
    try:
        return next_values(metadata, "", "") or ("", "")
    except InvalidMetadata:
        return "", ""
