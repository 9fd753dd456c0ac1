"""The migration on real turns.db files: shapes, values, idempotency, dry run, never-overwrite."""

import sqlite3

import pytest

from builders import create_store, dump, index_sql, insert_turn, table_info, turns_rows
from datasette_runtime_truth.upstream import backfill
from datasette_runtime_truth.migration.apply import Migration, migrate_path, run_in_transaction
from datasette_runtime_truth.commands import migration_text  # what `migrate` prints

CANONICAL = {"geppetto.runtime@v1": {"runtime_key": "planner"}, "geppetto.inference_id@v1": "inf-42"}
LEGACY_STRING = {"geppetto.runtime@v1": "planner", "geppetto.inference_id@v1": "inf-42"}

RUNTIME_INDEX_SQL = {
    "turns_by_conv_session":
        "CREATE INDEX turns_by_conv_session ON turns(conv_id, session_id, updated_at_ms DESC)",
    "turns_by_session": "CREATE INDEX turns_by_session ON turns(session_id, updated_at_ms DESC)",
    "turns_by_conv_runtime_updated":
        "CREATE INDEX turns_by_conv_runtime_updated ON turns(conv_id, runtime_key, updated_at_ms DESC)",
    "turns_by_conv_inference_updated":
        "CREATE INDEX turns_by_conv_inference_updated ON turns(conv_id, inference_id, updated_at_ms DESC)",
}


@pytest.fixture
def pre_cutover(tmp_path):
    """A pre-cutover store with one turn per interesting metadata form."""
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    forms = {
        "t01-canonical": CANONICAL,
        "t02-legacy-string": LEGACY_STRING,
        "t03-empty-object": {},
        "t04-empty-string": "",
        "t05-invalid": '{"geppetto.runtime@v1": {',
        "t06-non-object": '["planner"]',
        "t07-null": {"geppetto.runtime@v1": None, "geppetto.inference_id@v1": None},
        "t08-numbers": {"geppetto.runtime@v1": {"runtime_key": 7}, "geppetto.inference_id@v1": 1.5},
        "t09-bare-inference": {"inference_id": " inf-9 "},
        "t10-top-level-runtime": {"runtime": "agent", "inference_id": "inf-10"},
    }
    for turn_id, metadata in forms.items():
        insert_turn(conn, "conv-1", "session-1", turn_id, metadata=metadata)
    conn.close()
    return path


CANONICAL_VALUES = [
    ("conv-1", "session-1", "t01-canonical", "planner", "inf-42"),
    ("conv-1", "session-1", "t02-legacy-string", "", "inf-42"),
    ("conv-1", "session-1", "t03-empty-object", "", ""),
    ("conv-1", "session-1", "t04-empty-string", "", ""),
    ("conv-1", "session-1", "t05-invalid", "", ""),
    ("conv-1", "session-1", "t06-non-object", "", ""),
    ("conv-1", "session-1", "t07-null", "", ""),
    ("conv-1", "session-1", "t08-numbers", "7", "1.5"),
    ("conv-1", "session-1", "t09-bare-inference", "", "inf-9"),
    ("conv-1", "session-1", "t10-top-level-runtime", "", "inf-10"),
]


def test_pre_cutover_store_gets_current_shape_and_canonical_values(pre_cutover):
    report = migrate_path(pre_cutover)
    assert table_info(pre_cutover) == [
        (0, "conv_id", "TEXT", 1, None, 1),
        (1, "session_id", "TEXT", 1, None, 2),
        (2, "turn_id", "TEXT", 1, None, 3),
        (3, "turn_created_at_ms", "INTEGER", 1, None, 0),
        (4, "turn_metadata_json", "TEXT", 1, "'{}'", 0),
        (5, "turn_data_json", "TEXT", 1, "'{}'", 0),
        (6, "updated_at_ms", "INTEGER", 1, None, 0),
        (7, "runtime_key", "TEXT", 1, "''", 0),
        (8, "inference_id", "TEXT", 1, "''", 0),
    ]
    assert index_sql(pre_cutover) == RUNTIME_INDEX_SQL
    assert turns_rows(pre_cutover) == CANONICAL_VALUES
    assert list(report.as_dict().items()) == [  # in the order the README lists the keys
        ("database", str(pre_cutover)),
        ("rules", "canonical"),
        ("dry_run", False),
        ("columns_added", ["runtime_key", "inference_id"]),
        ("indexes_created", ["turns_by_conv_runtime_updated", "turns_by_conv_inference_updated"]),
        ("rows_scanned", 10),
        ("rows_written", 5),
        ("runtime_key_filled", 2),
        ("inference_id_filled", 5),
        ("values_trimmed", 0),
        ("missing_runtime_key", 8),
        ("missing_inference_id", 5),
        ("skipped_bad_metadata", 2),
        ("turn_created_at_ms_copied", 0),
        ("updated_at_ms_filled", 0),
        ("skipped_unwritable", 0),
        ("unwritable_error", ""),
        ("journal_mode", ""),
        ("changed", True),
    ]


def test_legacy_rules(pre_cutover):
    report = migrate_path(pre_cutover, rules="legacy")
    assert turns_rows(pre_cutover) == [
        ("conv-1", "session-1", "t01-canonical", "planner", "inf-42"),
        ("conv-1", "session-1", "t02-legacy-string", "planner", "inf-42"),
        ("conv-1", "session-1", "t03-empty-object", "", ""),
        ("conv-1", "session-1", "t04-empty-string", "", ""),
        ("conv-1", "session-1", "t05-invalid", "", ""),
        ("conv-1", "session-1", "t06-non-object", "", ""),
        ("conv-1", "session-1", "t07-null", "", ""),
        ("conv-1", "session-1", "t08-numbers", "7", "1.5"),
        ("conv-1", "session-1", "t09-bare-inference", "", "inf-9"),
        ("conv-1", "session-1", "t10-top-level-runtime", "agent", "inf-10"),
    ]
    assert (report.runtime_key_filled, report.inference_id_filled, report.skipped_bad_metadata) == (4, 5, 2)


def test_second_run_changes_nothing(pre_cutover):
    migrate_path(pre_cutover)
    before = dump(pre_cutover)
    report = migrate_path(pre_cutover)
    assert dump(pre_cutover) == before
    assert report.changed is False
    assert (report.columns_added, report.indexes_created) == ([], [])
    assert (report.runtime_key_filled, report.inference_id_filled) == (0, 0)
    assert (report.missing_runtime_key, report.missing_inference_id, report.skipped_bad_metadata) == (8, 5, 2)
    assert migration_text(report).splitlines()[0] == (
        f"{pre_cutover}: already migrated with the canonical rules; nothing changed"
    )


def test_dry_run_writes_nothing_and_predicts_the_real_run(pre_cutover):
    before = dump(pre_cutover)
    mtime = pre_cutover.stat().st_mtime_ns
    predicted = migrate_path(pre_cutover, dry_run=True)
    assert dump(pre_cutover) == before
    assert pre_cutover.stat().st_mtime_ns == mtime
    actual = migrate_path(pre_cutover)
    assert predicted.as_dict() == {**actual.as_dict(), "dry_run": True}


def test_dry_run_after_migration_predicts_nothing(pre_cutover):
    migrate_path(pre_cutover)
    assert migrate_path(pre_cutover, dry_run=True).changed is False


def test_legacy_run_after_canonical_only_fills_what_is_still_empty(pre_cutover):
    migrate_path(pre_cutover)
    report = migrate_path(pre_cutover, rules="legacy")
    assert (report.runtime_key_filled, report.inference_id_filled) == (2, 0)
    assert turns_rows(pre_cutover)[1] == ("conv-1", "session-1", "t02-legacy-string", "planner", "inf-42")


def test_never_overwrites_a_value_and_fills_only_the_empty_column(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "migrated")
    insert_turn(conn, "c", "s", "both-set", metadata=CANONICAL, runtime_key="inventory@v1", inference_id="inf-1")
    insert_turn(conn, "c", "s", "runtime-set", metadata=CANONICAL, runtime_key="inventory@v1")
    insert_turn(conn, "c", "s", "inference-set", metadata=CANONICAL, inference_id="inf-1")
    insert_turn(conn, "c", "s", "bad-metadata-but-set", metadata="{", runtime_key="agent", inference_id="x")
    conn.close()
    report = migrate_path(path)
    assert turns_rows(path) == [
        ("c", "s", "bad-metadata-but-set", "agent", "x"),
        ("c", "s", "both-set", "inventory@v1", "inf-1"),
        ("c", "s", "inference-set", "planner", "inf-1"),
        ("c", "s", "runtime-set", "inventory@v1", "inf-42"),
    ]
    assert (report.rows_scanned, report.runtime_key_filled, report.inference_id_filled) == (4, 1, 1)
    assert report.skipped_bad_metadata == 0  # a row with both values set is never examined


def test_nothing_comes_from_the_conversation_pointer(tmp_path):
    turns = tmp_path / "turns.db"
    conn = create_store(turns, "pre-cutover")
    conn.execute("ATTACH DATABASE ? AS timeline", (str(tmp_path / "timeline.db"),))
    conn.executescript("CREATE TABLE timeline.timeline_conversations (conv_id TEXT PRIMARY KEY, runtime_key TEXT)")
    conn.execute("INSERT INTO timeline.timeline_conversations VALUES ('conv-1', 'planner@v1')")
    conn.commit()
    conn.execute("DETACH DATABASE timeline")
    insert_turn(conn, "conv-1", "s", "turn-1", metadata={"geppetto.inference_id@v1": "inf-1"})
    conn.close()
    migrate_path(turns)
    assert turns_rows(turns) == [("conv-1", "s", "turn-1", "", "inf-1")]


@pytest.mark.parametrize("shape", ["current", "migrated"])
def test_current_stores_in_either_column_order_are_left_alone(tmp_path, shape):
    path = tmp_path / "turns.db"
    conn = create_store(path, shape)
    insert_turn(conn, "c", "s", "t", metadata=CANONICAL, runtime_key="planner", inference_id="inf-42")
    conn.close()
    before = dump(path)
    report = migrate_path(path)
    assert dump(path) == before
    assert report.changed is False
    names = [row[1] for row in table_info(path)]
    expected_tail = ["runtime_key", "inference_id", "updated_at_ms"] if shape == "current" else [
        "updated_at_ms", "runtime_key", "inference_id"]
    assert names[-3:] == expected_tail


def test_current_store_with_empty_values_is_backfilled(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    insert_turn(conn, "c", "s", "t", metadata=CANONICAL)
    conn.close()
    report = migrate_path(path)
    assert turns_rows(path) == [("c", "s", "t", "planner", "inf-42")]
    assert (report.columns_added, report.indexes_created) == ([], [])


def test_very_old_store_gets_every_column_in_upstream_order(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "very-old")
    insert_turn(conn, "c", "s", "t1", metadata=CANONICAL, created=1234)
    insert_turn(conn, "c", "s", "t2", metadata="{}", created=0)
    conn.close()
    report = Migration(str(path), now_ms=99_000)
    conn = sqlite3.connect(path, isolation_level=None)
    for step in report.steps():
        run_in_transaction(conn, step)
    conn.close()
    assert [row[1:5] for row in table_info(path)] == [
        ("conv_id", "TEXT", 1, None),
        ("session_id", "TEXT", 1, None),
        ("turn_id", "TEXT", 1, None),
        ("created_at_ms", "INTEGER", 1, None),
        ("turn_metadata_json", "TEXT", 1, "'{}'"),
        ("turn_created_at_ms", "INTEGER", 1, "0"),
        ("turn_data_json", "TEXT", 1, "'{}'"),
        ("updated_at_ms", "INTEGER", 1, "0"),
        ("runtime_key", "TEXT", 1, "''"),
        ("inference_id", "TEXT", 1, "''"),
    ]
    assert turns_rows(path, "turn_id, created_at_ms, turn_created_at_ms, updated_at_ms, runtime_key, inference_id") == [
        ("t1", 1234, 1234, 1234, "planner", "inf-42"),
        ("t2", 0, 0, 99_000, "", ""),
    ]
    assert report.report.columns_added == [
        "turn_created_at_ms", "turn_data_json", "updated_at_ms", "runtime_key", "inference_id"]
    assert (report.report.turn_created_at_ms_copied, report.report.updated_at_ms_filled) == (1, 2)
    assert index_sql(path) == RUNTIME_INDEX_SQL


def test_very_old_store_dry_run_predicts_timestamp_fills(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "very-old")
    insert_turn(conn, "c", "s", "t1", created=1234)
    insert_turn(conn, "c", "s", "t2", created=0)
    conn.close()
    predicted = migrate_path(path, dry_run=True)
    actual = migrate_path(path)
    assert (predicted.turn_created_at_ms_copied, predicted.updated_at_ms_filled) == (1, 2)
    assert predicted.as_dict() == {**actual.as_dict(), "dry_run": True}


@pytest.mark.parametrize("batch_size", [1, 3, 10_000])
def test_batch_size_does_not_change_the_result(pre_cutover, batch_size):
    report = migrate_path(pre_cutover, batch_size=batch_size)
    assert turns_rows(pre_cutover) == CANONICAL_VALUES
    assert (report.rows_scanned, report.runtime_key_filled, report.inference_id_filled) == (10, 2, 5)


def test_sparse_rowids_and_rows_added_during_the_scan(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    for n in range(6):
        insert_turn(conn, "c", "s", f"t{n}", metadata=CANONICAL)
    conn.execute("DELETE FROM turns WHERE turn_id IN ('t1', 't2', 't3')")
    conn.execute("UPDATE turns SET rowid = 1000000 WHERE turn_id = 't5'")
    conn.commit()
    conn.close()
    migration = Migration(str(path), batch_size=1)
    conn = sqlite3.connect(path, isolation_level=None)
    steps = 0
    for step in migration.steps():
        run_in_transaction(conn, step)
        steps += 1
        if steps == 8:  # after the columns and the first window: the live server saves a turn
            conn.execute(
                "INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json, updated_at_ms)"
                " VALUES ('c', 's', 'late', 1, ?, 2)", ('{"inference_id": "inf-late"}',))
    conn.close()
    assert turns_rows(path, "turn_id, runtime_key, inference_id") == [
        ("late", "", "inf-late"),
        ("t0", "planner", "inf-42"),
        ("t4", "planner", "inf-42"),
        ("t5", "planner", "inf-42"),
    ]
    assert migration.report.rows_scanned == 4


def test_leaves_no_tables_of_its_own(pre_cutover):
    def objects():
        conn = sqlite3.connect(pre_cutover)
        names = conn.execute("SELECT type, name FROM sqlite_master WHERE type != 'index' ORDER BY name").fetchall()
        conn.close()
        return names

    before = objects()
    migrate_path(pre_cutover)
    assert objects() == before


def test_keeps_wal_journal_mode(pre_cutover):
    migrate_path(pre_cutover)
    conn = sqlite3.connect(pre_cutover)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_switches_a_rollback_journal_store_to_wal_as_upstream_does(tmp_path):
    path = tmp_path / "turns.db"
    create_store(path, "pre-cutover", journal_mode="delete").close()
    report = migrate_path(path)
    assert report.journal_mode == "switched from delete to wal, as the upstream store does on open"
    assert "journal mode: switched from delete to wal" in " ".join(migration_text(report).split())
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_keeps_the_journal_mode_when_another_connection_holds_the_file(tmp_path):
    path = tmp_path / "turns.db"
    create_store(path, "migrated", journal_mode="delete").close()
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM turns").fetchone()  # a shared lock, held until the switch failed
    report = migrate_path(path, busy_timeout_ms=50, on_start=lambda total: reader.execute("COMMIT"))
    reader.close()
    assert report.journal_mode == (
        "kept delete: another connection prevented the switch to wal (database is locked)"
    )
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_a_row_sqlite_refuses_is_counted_and_the_migration_completes(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    for turn_id, runtime_key in [("t1", "planner"), ("t2", "refused"), ("t3", "agent")]:
        insert_turn(conn, "c", "s", turn_id, metadata={"geppetto.runtime@v1": {"runtime_key": runtime_key}})
    conn.close()
    conn = sqlite3.connect(path)
    for column in ("runtime_key", "inference_id"):
        conn.execute(f"ALTER TABLE turns ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    conn.execute("""CREATE TRIGGER no_refused BEFORE UPDATE OF runtime_key ON turns
                    WHEN NEW.runtime_key = 'refused' BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END""")
    conn.commit()
    conn.close()
    report = migrate_path(path)
    assert turns_rows(path) == [("c", "s", "t1", "planner", ""), ("c", "s", "t2", "", ""),
                                ("c", "s", "t3", "agent", "")]
    assert (report.skipped_unwritable, report.unwritable_error) == (1, "refused by a trigger")
    assert report.indexes_created == ["turns_by_conv_runtime_updated", "turns_by_conv_inference_updated"]
    assert "skipped, cannot write: 1 (refused by a trigger)" in " ".join(migration_text(report).split())
    assert migrate_path(path).skipped_unwritable == 1  # a rerun completes the same way


def test_a_null_legacy_created_at_ms_is_left_and_the_migration_completes(tmp_path):
    path = tmp_path / "turns.db"
    conn = sqlite3.connect(path)
    conn.execute("""CREATE TABLE turns (conv_id TEXT NOT NULL, session_id TEXT NOT NULL, turn_id TEXT NOT NULL,
                    created_at_ms INTEGER, turn_metadata_json TEXT NOT NULL DEFAULT '{}',
                    PRIMARY KEY (conv_id, session_id, turn_id))""")
    conn.execute("INSERT INTO turns VALUES ('c', 's', 't1', NULL, '{\"inference_id\": \"i1\"}')")
    conn.execute("INSERT INTO turns VALUES ('c', 's', 't2', 1500, '{}')")
    conn.commit()
    conn.close()
    report = migrate_path(path)
    assert turns_rows(path, "turn_id, turn_created_at_ms, inference_id") == [("t1", 0, "i1"), ("t2", 1500, "")]
    assert report.turn_created_at_ms_copied == 1
    assert report.indexes_created[-1] == "turns_by_conv_inference_updated"


def test_sample_store_values_match_the_rules_row_by_row(sample):
    path = sample.turns_path
    report = migrate_path(path)
    filled = skipped = 0
    for metadata, runtime_key, inference_id in turns_rows(path, "turn_metadata_json, runtime_key, inference_id"):
        decision = backfill.decide(metadata, "", "")
        if decision.action == backfill.BAD_METADATA:
            skipped += 1
            assert (runtime_key, inference_id) == ("", "")
            continue
        assert (runtime_key, inference_id) == (decision.values or ("", ""))
        filled += bool(runtime_key)
    assert report.runtime_key_filled == filled
    assert report.skipped_bad_metadata == skipped
    assert report.rows_scanned == 300


def test_partial_sample_keeps_existing_values(tmp_path, samples):
    path = samples.copy(tmp_path, shape="partial").turns_path
    set_before = turns_rows(path, "turn_id, runtime_key, inference_id")
    set_before = {row[0]: row for row in set_before if row[1] or row[2]}
    assert any(row[1] == "ops-restored" for row in set_before.values())
    report = migrate_path(path)
    after = {row[0]: row for row in turns_rows(path, "turn_id, runtime_key, inference_id")}
    kept = {(turn_id, column): value for turn_id, row in set_before.items()
            for column, value in enumerate(row[1:], start=1) if value}
    assert {(turn_id, column): after[turn_id][column] for turn_id, column in kept} == kept
    assert report.columns_added == []
    assert report.indexes_created == ["turns_by_conv_runtime_updated", "turns_by_conv_inference_updated"]
