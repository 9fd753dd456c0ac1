"""The `datasette runtime-truth` commands through click's runner and a real terminal."""

import json
import os
import pty
import sqlite3
import subprocess
import sys

from click.testing import CliRunner
from datasette.cli import cli
import pytest

from builders import create_store, dump, insert_turn, turns_rows

CANONICAL = {"geppetto.runtime@v1": {"runtime_key": "planner"}, "geppetto.inference_id@v1": "inf-42"}


def run(*args):
    return CliRunner().invoke(cli, ["runtime-truth", *map(str, args)])


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    insert_turn(conn, "conv-1", "session-1", "turn-1", metadata=CANONICAL)
    insert_turn(conn, "conv-1", "session-1", "turn-2", metadata="not json")
    conn.close()
    return path


def test_migrate_prints_the_report(store):
    result = run("migrate", store)
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{store}: migrated with the canonical rules\n"
        "  columns added:              runtime_key, inference_id\n"
        "  indexes created:            turns_by_conv_runtime_updated, turns_by_conv_inference_updated\n"
        "  rows scanned:               2\n"
        "  rows written:               1\n"
        "  runtime_key filled:         1\n"
        "  inference_id filled:        1\n"
        "  still missing runtime_key:  1\n"
        "  still missing inference_id: 1\n"
        "  skipped, bad metadata:      1\n"
    )


def test_migrate_json_and_second_run(store):
    first = json.loads(run("migrate", store, "--json").output)
    second = json.loads(run("migrate", store, "--json").output)
    assert (first["changed"], first["runtime_key_filled"], first["skipped_bad_metadata"]) == (True, 1, 1)
    assert second == {
        "database": str(store),
        "rules": "canonical",
        "dry_run": False,
        "columns_added": [],
        "indexes_created": [],
        "rows_scanned": 2,
        "rows_written": 0,
        "runtime_key_filled": 0,
        "inference_id_filled": 0,
        "turn_created_at_ms_copied": 0,
        "updated_at_ms_filled": 0,
        "missing_runtime_key": 1,
        "missing_inference_id": 1,
        "skipped_bad_metadata": 1,
        "skipped_unwritable": 0,
        "unwritable_error": "",
        "values_trimmed": 0,
        "journal_mode": "",
        "changed": False,
    }


def test_migrate_dry_run(store):
    before = dump(store)
    result = run("migrate", store, "--dry-run")
    assert result.exit_code == 0
    assert result.output.splitlines()[:2] == [
        f"{store}: dry run with the canonical rules, nothing written; a real run would change:",
        "  columns to add:             runtime_key, inference_id",
    ]
    assert dump(store) == before


def test_migrate_legacy_rules_and_batch_size(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    for n in range(5):
        insert_turn(conn, "c", "s", f"t{n}", metadata={"geppetto.runtime@v1": "planner"})
    conn.close()
    result = run("migrate", path, "--rules", "legacy", "--batch-size", "2", "--json")
    assert json.loads(result.output)["runtime_key_filled"] == 5
    assert {row[3] for row in turns_rows(path)} == {"planner"}


def test_missing_path_is_never_created(tmp_path):
    path = tmp_path / "nope.db"
    result = run("migrate", path)
    assert result.exit_code == 1
    assert result.output == f"Error: {path}: no such file (migrate never creates a database)\n"
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_directory(tmp_path):
    result = run("migrate", tmp_path)
    assert (result.exit_code, result.output) == (1, f"Error: {tmp_path}: is a directory, not a turns.db\n")


@pytest.mark.parametrize("content, exit_code, message", [
    (b"this is a text file, not a database\n" * 10, 1, "not an SQLite database"),
    (b"", 2, "not a turns.db (an empty file)"),
])
def test_not_sqlite(tmp_path, content, exit_code, message):
    path = tmp_path / "turns.db"
    path.write_bytes(content)
    result = run("migrate", path)
    assert (result.exit_code, result.output) == (exit_code, f"Error: {path}: {message}\n")
    assert path.read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == ["turns.db"]


def test_no_turns_table_exits_2(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    conn.close()
    before = path.read_bytes()
    result = run("migrate", path)
    assert (result.exit_code, result.output) == (2, f"Error: {path}: not a turns.db (it has no turns table)\n")
    assert path.read_bytes() == before


def test_read_only_file(store):
    before = dump(store)
    os.chmod(store, 0o444)
    try:
        result = run("migrate", store)
    finally:
        os.chmod(store, 0o644)
    assert (result.exit_code, result.output) == (1, f"Error: {store}: file is read-only; nothing was changed\n")
    assert dump(store) == before


def test_read_only_file_allows_a_dry_run(store):
    os.chmod(store, 0o444)
    try:
        result = run("migrate", store, "--dry-run", "--json")
    finally:
        os.chmod(store, 0o644)
    assert result.exit_code == 0
    assert json.loads(result.output)["runtime_key_filled"] == 1


def test_truncated_database(tmp_path, store):
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.executemany("INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, updated_at_ms, turn_data_json)"
                     " VALUES ('c', 's', ?, 1, 2, ?)", [(str(n), "x" * 2000) for n in range(200)])
    conn.commit()
    conn.close()
    size = store.stat().st_size
    with open(store, "r+b") as f:
        f.truncate(size // 2)
    truncated = store.read_bytes()
    result = run("migrate", store)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {store}: truncated: the header declares {size:,} bytes")
    assert store.read_bytes() == truncated


def test_locked_database_gives_up_after_the_bounded_wait(store):
    before = dump(store)
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run("migrate", store, "--busy-timeout", "200")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {store}: database is locked: gave up after 0.2 s waiting for the write lock; "
        "every step before this one is complete, rerun to continue\n"
    )
    assert dump(store) == before


def test_no_progress_bar_off_a_terminal(store):
    result = subprocess.run(
        [sys.executable, "-m", "datasette", "runtime-truth", "migrate", str(store)],
        capture_output=True, text=True, check=True,
    )
    assert result.stderr == ""


def test_progress_bar_on_a_terminal(store):
    controller, terminal = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "datasette", "runtime-truth", "migrate", str(store)],
            stdout=subprocess.PIPE, stderr=terminal, text=True, check=True,
        )
        os.close(terminal)
        terminal = None
        stderr = _read_all(controller)
    finally:
        if terminal is not None:
            os.close(terminal)
        os.close(controller)
    assert "backfill" in stderr
    assert "100%" in stderr
    assert process.stdout.startswith(f"{store}: migrated")


def _read_all(fd):
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_demo_writes_both_databases(tmp_path):
    result = run("demo", tmp_path / "d", "--turns", "300", "--seed", "5")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {tmp_path / 'd' / 'turns.db'} (pre-cutover: ")
    assert sorted(os.listdir(tmp_path / "d")) == ["timeline.db", "turns.db"]


def test_demo_refuses_to_replace_without_force(tmp_path):
    run("demo", tmp_path, "--turns", "10")
    result = run("demo", tmp_path, "--turns", "10")
    assert (result.exit_code, result.output) == (
        1, f"Error: {tmp_path / 'turns.db'} already exists (use --force to replace it)\n")
    assert run("demo", tmp_path, "--turns", "20", "--force").exit_code == 0
