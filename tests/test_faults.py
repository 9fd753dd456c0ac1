"""Faults during the migration lose nothing: SIGKILL mid-backfill, a lock held too long, damaged files,
and the upstream server writing all along. Each runs the real CLI in its own process."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from builders import create_store, insert_turn
from datasette_runtime_truth.upstream import backfill
from datasette_runtime_truth.migration.apply import migrate_path

TURNS = 3000


def start_migration(path, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "datasette", "runtime-truth", "migrate", str(path), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def expected_values(path):
    """rowid -> the (runtime_key, inference_id) the canonical rules give a pre-cutover row."""
    conn = sqlite3.connect(path)
    expected = {}
    for rowid, metadata in conn.execute("SELECT rowid, turn_metadata_json FROM turns"):
        expected[rowid] = backfill.decide(metadata, "", "").values or ("", "")
    conn.close()
    return expected


def values(path):
    conn = sqlite3.connect(path)
    try:
        return {rowid: (runtime_key, inference_id) for rowid, runtime_key, inference_id in
                conn.execute("SELECT rowid, runtime_key, inference_id FROM turns")}
    finally:
        conn.close()


def filled_rows(path):
    """Rows with a value, or None while the columns do not exist yet (read-only, never blocks)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM turns WHERE runtime_key != '' OR inference_id != ''").fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def wait_until_some_rows_are_filled(path, process):
    while process.poll() is None:
        if filled_rows(path):
            return
        time.sleep(0.005)
    pytest.fail(f"the migration ended before any row was filled: {process.communicate()}")


def assert_stopped_between_windows(path, expected):
    """Every row is untouched or complete, and the complete ones are exactly a prefix by rowid."""
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    now = values(path)
    fillable = [rowid for rowid in sorted(expected) if expected[rowid] != ("", "")]
    done = [rowid for rowid in fillable if now[rowid] != ("", "")]
    assert 0 < len(done) < len(fillable), "stopped mid-backfill"
    assert done == fillable[:len(done)]
    assert now == {rowid: expected[rowid] if rowid <= done[-1] else ("", "") for rowid in expected}


def assert_rerun_filled_the_rest(report, expected, stopped):
    assert report.runtime_key_filled == sum(
        1 for rowid, value in expected.items() if value[0] and not stopped[rowid][0])
    assert report.inference_id_filled == sum(
        1 for rowid, value in expected.items() if value[1] and not stopped[rowid][1])


@pytest.fixture
def sample_store(tmp_path, samples):
    return samples.copy(tmp_path, turns=TURNS, seed=4).turns_path


def test_sigkill_mid_backfill_then_a_rerun_completes(sample_store):
    expected = expected_values(sample_store)
    process = start_migration(sample_store, "--batch-size", 5)
    wait_until_some_rows_are_filled(sample_store, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert_stopped_between_windows(sample_store, expected)
    stopped = values(sample_store)

    report = migrate_path(sample_store)
    assert values(sample_store) == expected
    assert_rerun_filled_the_rest(report, expected, stopped)
    assert report.columns_added == []
    assert report.indexes_created == ["turns_by_conv_runtime_updated", "turns_by_conv_inference_updated"]
    assert report.rows_scanned == TURNS
    assert report.missing_runtime_key == sum(value[0] == "" for value in expected.values())
    assert report.missing_inference_id == sum(value[1] == "" for value in expected.values())


def test_lock_held_past_the_bounded_wait_stops_cleanly_between_windows(sample_store):
    expected = expected_values(sample_store)
    process = start_migration(sample_store, "--batch-size", 5, "--busy-timeout", 100)
    wait_until_some_rows_are_filled(sample_store, process)
    holder = sqlite3.connect(sample_store, timeout=10, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (process.returncode, stdout) == (1, "")
    assert stderr == (
        f"Error: {sample_store}: database is locked: gave up after 0.1 s waiting for the write lock; "
        "every step before this one is complete, rerun to continue\n"
    )
    assert_stopped_between_windows(sample_store, expected)
    stopped = values(sample_store)

    report = migrate_path(sample_store)
    assert values(sample_store) == expected
    assert_rerun_filled_the_rest(report, expected, stopped)
    assert report.rows_scanned == TURNS


@pytest.fixture
def wal_store(tmp_path):
    """A WAL-mode turns.db whose newest turns are still in the -wal file."""
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    for n in range(300):
        insert_turn(conn, "c", "s", f"t{n:03d}", metadata={"inference_id": f"inf-{n}"}, data="x" * 500)
        if n == 200:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sidecar = sqlite3.connect(path)  # an open reader keeps the -wal file in place when conn closes
    sidecar.execute("SELECT count(*) FROM turns").fetchone()
    conn.close()
    yield path
    sidecar.close()


def files(directory):
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def run_cli(path, *args):
    return subprocess.run(
        [sys.executable, "-m", "datasette", "runtime-truth", "migrate", str(path), *args],
        capture_output=True, text=True,
    )


@pytest.mark.parametrize("cut, message", [
    (50, "not an SQLite database"),
    (4096, "truncated: the header declares"),
])
def test_truncated_database_leaves_the_file_and_its_wal_untouched(wal_store, cut, message):
    with open(wal_store, "r+b") as f:
        f.truncate(cut)
    before = files(wal_store.parent)
    assert "turns.db-wal" in before
    result = run_cli(wal_store)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"Error: {wal_store}: {message}")
    assert files(wal_store.parent) == before


def test_sqlite_header_over_garbage_is_a_clear_error(tmp_path):
    path = tmp_path / "turns.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE turns (conv_id TEXT)")
    conn.close()
    content = bytearray(path.read_bytes())
    content[100:] = b"\xff" * (len(content) - 100)
    path.write_bytes(bytes(content))
    for args in ((), ("--dry-run",)):
        result = run_cli(path, *args)
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == (
            f"Error: {path}: not a readable SQLite database (database disk image is malformed)\n")
        assert files(tmp_path) == {"turns.db": bytes(content)}


def test_read_only_file_with_a_hot_wal_is_left_alone(wal_store):
    os.chmod(wal_store, 0o444)
    try:
        before = files(wal_store.parent)
        result = run_cli(wal_store)
        after = files(wal_store.parent)
    finally:
        os.chmod(wal_store, 0o644)
    assert (result.returncode, result.stderr) == (1, f"Error: {wal_store}: file is read-only; nothing was changed\n")
    assert after == before


UPSERT_TURN = """
INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json,
                   turn_data_json, updated_at_ms)
VALUES (?, ?, ?, ?, ?, '{}', ?)
ON CONFLICT (conv_id, session_id, turn_id) DO UPDATE SET
  turn_created_at_ms = MIN(turns.turn_created_at_ms, excluded.turn_created_at_ms),
  updated_at_ms = MAX(turns.updated_at_ms, excluded.updated_at_ms),
  turn_metadata_json = excluded.turn_metadata_json,
  turn_data_json = excluded.turn_data_json
"""


class UpstreamWriter(threading.Thread):
    """Saves turns the way the pre-cutover upstream server does: WAL, busy_timeout=5000, one
    transaction per phase snapshot (the turn row upserted, one membership row)."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.stop = threading.Event()
        self.saved = {}
        self.failures = []

    def run(self):
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        n = 0
        while not self.stop.is_set():
            turn_id, phase = f"live-{n // 2:05d}", ("pre_inference", "final")[n % 2]
            metadata = json.dumps({"geppetto.runtime@v1": {"runtime_key": "agent"},
                                   "geppetto.inference_id@v1": f"inf-{turn_id}", "phase": phase})
            try:
                conn.execute("BEGIN")
                conn.execute(UPSERT_TURN, ("live-conv", "live-session", turn_id, 1000 + n, metadata, 1000 + n))
                conn.execute(
                    "INSERT INTO turn_block_membership VALUES ('live-conv', 'live-session', ?, ?, ?, 0, 'b', 'h')",
                    (turn_id, phase, 1000 + n))
                conn.execute("COMMIT")
                self.saved[turn_id] = metadata
            except sqlite3.Error as error:
                self.failures.append(str(error))
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            n += 1
            time.sleep(0.001)
        conn.close()


def test_upstream_writer_during_the_migration_loses_nothing(sample_store):
    writer = UpstreamWriter(sample_store)
    writer.start()
    try:
        process = start_migration(sample_store, "--batch-size", 20, "--json")
        stdout, stderr = process.communicate(timeout=120)
        saved_during = len(writer.saved)
    finally:
        writer.stop.set()
        writer.join()
    assert (process.returncode, stderr) == (0, "")
    assert writer.failures == []
    assert saved_during > 0
    conn = sqlite3.connect(sample_store)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = dict(conn.execute(
        "SELECT turn_id, turn_metadata_json FROM turns WHERE conv_id = 'live-conv' AND session_id = 'live-session'"))
    snapshots = conn.execute("SELECT count(*) FROM turn_block_membership WHERE conv_id = 'live-conv'").fetchone()[0]
    conn.close()
    assert rows == writer.saved
    assert snapshots == sum(2 if json.loads(m)["phase"] == "final" else 1 for m in writer.saved.values())
    report = json.loads(stdout)
    assert report["rows_scanned"] >= TURNS

    migrate_path(sample_store)  # the turns saved after the backfill passed them
    assert values(sample_store) == expected_values(sample_store)
    live = {value for rowid, value in values(sample_store).items() if rowid > TURNS}
    assert live == {("agent", f"inf-{turn_id}") for turn_id in writer.saved}
