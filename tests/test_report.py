"""The cutover checks as pure functions over real SQLite files with the upstream DDL."""

import json
import sqlite3

import pytest

from builders import create_store, insert_turn
from datasette_runtime_truth.report import checks, figures
from datasette_runtime_truth.upstream import schema
from datasette_runtime_truth.storage import timeline_store
from datasette_runtime_truth.migration.apply import migrate_path

CANONICAL = {"geppetto.runtime@v1": {"runtime_key": "planner"}, "geppetto.inference_id@v1": "inf-1"}
DAY = 86_400_000
T0 = 1_773_964_800_000  # 2026-03-20T00:00:00Z


def build(conn, **kwargs):
    return checks.build(conn, "turns", **kwargs)


def statuses(result):
    return {check.id: check.status for check in result.checks}


def test_current_empty_store_passes(tmp_path):
    conn = create_store(tmp_path / "turns.db", "current")
    result = build(conn, path=str(tmp_path / "turns.db"))
    assert result.status == "passes"
    assert statuses(result) == {
        "columns": "pass", "indexes": "pass", "missing_runtime_key": "info",
        "missing_inference_id": "info", "bad_metadata": "info", "would_fill": "pass",
        "runtime_switches": "info", "pointer": "info", "journal": "info",
    }
    assert result.check("columns").figure == "both TEXT NOT NULL DEFAULT ''"
    assert result.check("indexes").figure == (
        "turns_by_conv_runtime_updated (conv_id, runtime_key, updated_at_ms DESC); "
        "turns_by_conv_inference_updated (conv_id, inference_id, updated_at_ms DESC)"
    )
    assert result.check("journal").figure == "wal, opened mutable"
    assert result.check("pointer").figure == "no timeline store to compare with"


def test_pre_cutover_store_fails_until_migrated(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    insert_turn(conn, "c1", "s1", "t1", metadata=CANONICAL)
    insert_turn(conn, "c1", "s1", "t2", metadata={"inference_id": "inf-2"})
    insert_turn(conn, "c1", "s1", "t3", metadata={})
    insert_turn(conn, "c1", "s1", "t4", metadata="not json")
    result = build(conn, path=str(path))
    assert result.status == "fails"
    assert [check.id for check in result.failures] == ["columns", "indexes", "would_fill"]
    assert result.check("columns").figure == (
        "missing: runtime_key, inference_id (expected TEXT NOT NULL DEFAULT '')"
    )
    assert result.check("indexes").figure == (
        "turns_by_conv_runtime_updated missing; turns_by_conv_inference_updated missing"
    )
    assert result.check("would_fill").value == 2
    assert result.check("would_fill").figure == (
        f"2 rows (1 runtime_key, 2 inference_id, canonical rules): "
        f"run `datasette runtime-truth migrate {path}`"
    )
    assert result.check("missing_runtime_key").figure == (
        "4 of 4 rows (100%): 1 recoverable by a migrate run, 3 not"
    )
    assert result.check("missing_inference_id").figure == (
        "4 of 4 rows (100%): 2 recoverable by a migrate run, 2 not"
    )
    assert result.check("bad_metadata").value == 1
    assert result.check("runtime_switches").figure == "no runtime_key column yet"
    conn.close()

    migrate_path(path)
    conn = sqlite3.connect(path)
    result = build(conn, path=str(path))
    assert result.status == "passes"
    assert result.check("would_fill").figure == "none: every recoverable value is filled (canonical rules)"
    assert result.check("missing_runtime_key").figure == (
        "3 of 4 rows (75%): none recoverable by a migrate run with the canonical rules, so they stay empty"
    )
    assert result.check("missing_inference_id").value == 2


def test_wrong_column_definition_fails(tmp_path):
    conn = create_store(tmp_path / "turns.db", "pre-cutover")
    conn.execute("ALTER TABLE turns ADD COLUMN runtime_key TEXT")
    conn.execute("ALTER TABLE turns ADD COLUMN inference_id TEXT NOT NULL DEFAULT ''")
    result = build(conn)
    assert result.check("columns").status == "fail"
    assert result.check("columns").figure == (
        "runtime_key is TEXT (expected TEXT NOT NULL DEFAULT '')"
    )
    assert result.check("columns").value == 2


def test_index_with_wrong_columns_or_order_fails(tmp_path):
    conn = create_store(tmp_path / "turns.db", "pre-cutover")
    for column in schema.COLUMNS[4:]:
        conn.execute(f"ALTER TABLE turns ADD COLUMN {column.name} {column.definition}")
    conn.execute("CREATE INDEX turns_by_conv_runtime_updated ON turns(conv_id, runtime_key, updated_at_ms)")
    conn.execute("CREATE INDEX turns_by_conv_inference_updated ON turns(conv_id, updated_at_ms DESC, inference_id)")
    result = build(conn)
    assert result.check("indexes").status == "fail"
    assert result.check("indexes").value == 0
    assert result.check("indexes").figure == (
        "turns_by_conv_runtime_updated is on (conv_id, runtime_key, updated_at_ms), "
        "expected (conv_id, runtime_key, updated_at_ms DESC); "
        "turns_by_conv_inference_updated is on (conv_id, updated_at_ms DESC, inference_id), "
        "expected (conv_id, inference_id, updated_at_ms DESC)"
    )


def test_bad_metadata_counts_invalid_and_non_object_but_not_empty(tmp_path):
    conn = create_store(tmp_path / "turns.db", "current")
    for n, metadata in enumerate(['{"a": ', '["planner"]', "42", '{"x": NaN}', "", "{}"]):
        insert_turn(conn, "c1", "s1", f"t{n}", metadata=metadata)
    insert_turn(conn, "c1", "s1", "set", metadata="{", runtime_key="agent", inference_id="inf-1")
    check = build(conn).check("bad_metadata")
    assert (check.status, check.value) == ("info", 4)
    assert check.figure == "4 of 7 rows (57%): still missing a value, and the backfill skips them, so they stay empty"


def test_values_already_set_are_never_counted_as_would_fill(tmp_path):
    conn = create_store(tmp_path / "turns.db", "current")
    insert_turn(conn, "c1", "s1", "t1", metadata=CANONICAL, runtime_key="ops-restored", inference_id="inf-x")
    insert_turn(conn, "c1", "s1", "t2", metadata=CANONICAL, runtime_key="agent")
    result = build(conn)
    assert result.check("would_fill").value == 1
    assert result.check("would_fill").figure.startswith("1 row (0 runtime_key, 1 inference_id,")


@pytest.mark.parametrize("rules", ["canonical", "legacy"])
def test_would_fill_counts_what_a_migrate_run_then_writes(sample, rules):
    conn = sqlite3.connect(sample.turns_path)
    would = build(conn, rules=rules)
    conn.close()
    report = migrate_path(sample.turns_path, rules=rules)
    wrote = {"rows": report.rows_written, "runtime_key": report.runtime_key_filled,
             "inference_id": report.inference_id_filled}
    assert would.check("would_fill").counts == wrote
    assert would.check("bad_metadata").value == report.skipped_bad_metadata
    assert (report.rows_written, report.skipped_bad_metadata) == (271, 5)


def test_rules_decide_what_a_migrate_run_would_fill(tmp_path):
    conn = create_store(tmp_path / "turns.db", "current")
    insert_turn(conn, "c1", "s1", "t1", metadata={"geppetto.runtime@v1": "planner"}, inference_id="inf-1")
    assert build(conn, rules="canonical").check("would_fill").status == "pass"
    legacy = build(conn, path="turns.db", rules="legacy").check("would_fill")
    assert legacy.status == "fail"
    assert legacy.figure == (
        "1 row (1 runtime_key, 0 inference_id, legacy rules): "
        "run `datasette runtime-truth migrate turns.db --rules legacy`"
    )
    with pytest.raises(ValueError, match="unknown rules 'loose'"):
        build(conn, rules="loose")


def test_runtime_switches_pass_over_turns_without_runtime_key(tmp_path):
    conn = create_store(tmp_path / "turns.db", "current")
    for n, key in enumerate(["inventory@v1", "", "inventory@v1", "planner@v1", "planner@v1", "inventory@v1"]):
        insert_turn(conn, "conv-a", "s1", f"t{n}", updated=1000 + n, runtime_key=key)
    insert_turn(conn, "conv-b", "s1", "t1", updated=5, runtime_key="agent")
    insert_turn(conn, "conv-b", "s2", "t2", updated=6, runtime_key="agent")
    # Equal timestamps: turn_id breaks the tie, as in the playbook's history query.
    insert_turn(conn, "conv-c", "s1", "b", updated=7, runtime_key="planner")
    insert_turn(conn, "conv-c", "s1", "a", updated=7, runtime_key="default")
    check = build(conn).check("runtime_switches")
    assert check.status == "info"
    assert check.value == 2
    assert check.figure == "2 of 3 conversations (3 switches)"
    assert check.items == [{"conv_id": "conv-a", "switches": 2}, {"conv_id": "conv-c", "switches": 1}]
    assert check.query == "runtime_switches"


def test_pointer_differences_are_information_from_the_timeline_store(tmp_path):
    conn = create_store(tmp_path / "turns.db", "current")
    insert_turn(conn, "conv-1", "s1", "turn-1", updated=100, runtime_key="inventory@v1", inference_id="inf-1")
    insert_turn(conn, "conv-1", "s1", "turn-2", updated=200, runtime_key="planner@v1", inference_id="inf-2")
    insert_turn(conn, "conv-2", "s1", "turn-1", updated=100, runtime_key="default")
    insert_turn(conn, "conv-3", "s1", "turn-1", updated=100, runtime_key="")
    timeline = sqlite3.connect(tmp_path / "timeline.db")
    timeline.executescript(schema.TIMELINE_DDL)
    timeline.executemany(
        "INSERT INTO timeline_conversations (conv_id, session_id, runtime_key, created_at_ms, last_activity_ms) "
        "VALUES (?, 's1', ?, 1, 2)",
        [("conv-1", "planner@v1"), ("conv-2", "agent"), ("conv-3", "agent"), ("conv-9", "x")],
    )
    timeline.commit()
    assert timeline_store.is_timeline_store(timeline)
    pointers = timeline_store.read_pointers(timeline)
    check = build(conn, pointers=pointers, timeline="timeline").check("pointer")
    assert (check.status, check.value) == ("info", 1)
    assert check.items == [{"conv_id": "conv-2", "pointer": "agent", "newest_runtime_key": "default"}]
    assert check.figure == (
        "1 of the 2 conversations whose newest turn has a runtime_key have another pointer in "
        "timeline (1 conversations' newest turn has none, so nothing to compare); information "
        "only: the pointer is never turn history, and history is never rewritten"
    )
    assert [row[0] for row in conn.execute("SELECT runtime_key FROM turns ORDER BY rowid")] == [
        "inventory@v1", "planner@v1", "default", ""
    ]


def test_immutable_open_of_a_wal_file_with_pending_changes_fails(tmp_path):
    path = tmp_path / "turns.db"
    writer = create_store(path, "current")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    insert_turn(writer, "c1", "s1", "t1", runtime_key="agent", inference_id="i")
    immutable = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    check = checks.build(immutable, "turns", path=str(path), opened="immutable").check("journal")
    assert check.status == "fail"
    assert check.figure.startswith("wal, opened immutable: the -wal file holds changes")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    check = checks.build(immutable, "turns", path=str(path), opened="immutable").check("journal")
    assert check.status == "info"
    assert check.figure.startswith("wal, opened immutable: correct only while the -wal file is empty")


def test_rollback_journal_opened_immutable_is_information(tmp_path):
    path = tmp_path / "turns.db"
    create_store(path, "current", journal_mode="delete").close()
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    check = checks.build(conn, "turns", path=str(path), opened="immutable").check("journal")
    assert (check.status, check.figure) == ("info", "delete, opened immutable")


def test_coverage_per_utc_day(tmp_path):
    conn = create_store(tmp_path / "turns.db", "current")
    insert_turn(conn, "c1", "s1", "t1", updated=T0 - 1, runtime_key="", inference_id="i1")
    insert_turn(conn, "c1", "s1", "t2", updated=T0, runtime_key="agent", inference_id="")
    insert_turn(conn, "c1", "s1", "t3", updated=T0 + DAY - 1, runtime_key="agent", inference_id="i3")
    insert_turn(conn, "c1", "s1", "t4", updated=T0 + 2 * DAY, runtime_key="agent", inference_id="i4")
    insert_turn(conn, "c1", "s1", "t5", updated=T0 + 2 * DAY + 1, runtime_key="", inference_id="")
    assert figures.coverage(conn) == [
        {"day": "2026-03-19", "turns": 1, "with_runtime_key": 0, "with_inference_id": 1, "with_neither": 0},
        {"day": "2026-03-20", "turns": 2, "with_runtime_key": 2, "with_inference_id": 1, "with_neither": 0},
        {"day": "2026-03-22", "turns": 2, "with_runtime_key": 1, "with_inference_id": 1, "with_neither": 1},
    ]


def test_very_old_store_reports_without_error(tmp_path):
    conn = create_store(tmp_path / "turns.db", "very-old")
    insert_turn(conn, "c1", "s1", "t1", created=T0, metadata=CANONICAL)
    result = build(conn)
    assert result.status == "fails"
    assert result.check("columns").figure == (
        "missing: runtime_key, inference_id (expected TEXT NOT NULL DEFAULT '')"
    )
    assert result.coverage == [
        {"day": "2026-03-20", "turns": 1, "with_runtime_key": 0, "with_inference_id": 0, "with_neither": 1}]
    assert figures.conversation_history(conn, "c1") == [
        {"turn_id": "t1", "session_id": "s1", "runtime_key": "", "inference_id": "", "updated_at_ms": T0}
    ]


def test_conversation_history_is_in_history_order(tmp_path):
    conn = create_store(tmp_path / "turns.db", "current")
    insert_turn(conn, "c1", "s2", "t2", updated=300, runtime_key="planner", inference_id="i2")
    insert_turn(conn, "c1", "s1", "t1", updated=100, runtime_key="agent", inference_id="i1")
    insert_turn(conn, "c2", "s1", "t9", updated=200, runtime_key="agent", inference_id="i9")
    assert figures.conversation_history(conn, "c1") == [
        {"turn_id": "t1", "session_id": "s1", "runtime_key": "agent", "inference_id": "i1", "updated_at_ms": 100},
        {"turn_id": "t2", "session_id": "s2", "runtime_key": "planner", "inference_id": "i2", "updated_at_ms": 300},
    ]
    assert figures.conversation_history(conn, "nope") == []


@pytest.mark.parametrize("shape", ["pre-cutover", "partial"])
def test_sample_store_fails_before_migration_and_passes_after(tmp_path, samples, shape):
    summary = samples.copy(tmp_path, shape=shape)
    conn = sqlite3.connect(f"file:{summary.turns_path}?mode=ro", uri=True)
    before = build(conn, path=summary.turns_path)
    conn.close()
    assert before.status == "fails"
    assert "would_fill" in [check.id for check in before.failures]
    migration = migrate_path(summary.turns_path)
    conn = sqlite3.connect(f"file:{summary.turns_path}?mode=ro", uri=True)
    after = build(conn, path=summary.turns_path)
    assert after.status == "passes"
    assert after.check("bad_metadata").value == migration.skipped_bad_metadata > 0
    assert after.check("missing_runtime_key").value == migration.missing_runtime_key
    assert after.check("missing_inference_id").value == migration.missing_inference_id
    assert sum(day["turns"] for day in after.coverage) == 300
    assert json.loads(json.dumps(after.as_dict()))["status"] == "passes"
