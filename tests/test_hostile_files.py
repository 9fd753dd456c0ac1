"""Hostile files and stores: a FIFO, socket or device as PATH, a healthy WAL store whose file is
shorter than its header, disk full mid-migration, timestamps no calendar can hold."""

import html
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from datasette_test import Datasette

from builders import create_store, dump, insert_turn, turns_rows
from datasette_runtime_truth.upstream import schema
from datasette_runtime_truth.migration.apply import (
    Migration, MigrationError, explain_error, migrate_path, open_turns_db, run_in_transaction,
)


def cli(command, path, *args, timeout=20):
    """``datasette runtime-truth COMMAND PATH`` in a process of its own, so a hang is a failure."""
    return subprocess.run(
        [sys.executable, "-m", "datasette", "runtime-truth", command, str(path), *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "turns.db"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path):
    path = tmp_path / "turns.db"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    yield path
    server.close()


@pytest.mark.parametrize("special, kind", [
    ("fifo", "a FIFO (named pipe)"),
    ("unix_socket", "a socket"),
    ("device", "a character device"),
])
@pytest.mark.parametrize("command, args, exit_code", [
    ("migrate", (), 1),
    ("migrate", ("--dry-run",), 1),
    ("check", (), 2),
])
def test_a_fifo_socket_or_device_is_refused_at_once(request, special, kind, command, args, exit_code):
    path = "/dev/null" if special == "device" else request.getfixturevalue(special)
    result = cli(command, path, *args)
    assert (result.returncode, result.stdout) == (exit_code, "")
    assert result.stderr == f"Error: {path}: is {kind}, not a turns.db\n"


def test_a_fifo_as_the_timeline_is_a_usage_error(tmp_path, fifo):
    turns = tmp_path / "store.db"
    create_store(turns, "current").close()
    result = cli("check", turns, "--timeline", fifo)
    assert result.returncode == 2
    assert f"{fifo} is a FIFO (named pipe), not a timeline.db" in result.stderr


# A healthy WAL store whose file is shorter than its header says.

def copy_store(source, target_dir):
    """Copy turns.db and its -wal, as a backup tool or a crash would leave them (no -shm)."""
    target_dir.mkdir()
    for suffix in ("", "-wal"):
        (target_dir / f"turns.db{suffix}").write_bytes(source.with_name(f"turns.db{suffix}").read_bytes())
    return target_dir / "turns.db"


def newest_frame_of_page_1(wal):
    """The bytes of the last frame for page 1 in a -wal file (32-byte header, frames of a
    24-byte header plus one page)."""
    page_size = int.from_bytes(wal[8:12], "big")
    found, offset = None, 32
    while offset + 24 + page_size <= len(wal):
        if int.from_bytes(wal[offset:offset + 4], "big") == 1:
            found = wal[offset + 24:offset + 24 + page_size]
        offset += 24 + page_size
    return found


@pytest.fixture
def interrupted_checkpoint(tmp_path):
    """A WAL store whose -wal holds 300 committed turns not yet checkpointed, then the state a
    checkpoint stopped after its first write leaves: page 1 (which states the new page count)
    copied into the file, the pages after it not yet, the -wal intact. SQLite reads it whole."""
    source = tmp_path / "live" / "turns.db"
    source.parent.mkdir()
    writer = create_store(source, "pre-cutover")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    for n in range(300):
        insert_turn(writer, "c", "s", f"t{n:03d}", metadata={"inference_id": f"inf-{n}"},
                    created=1000 + n, updated=2000 + n, data="x" * 2000)
    path = copy_store(source, tmp_path / "copy")  # the writer is still open: nothing checkpointed
    writer.close()
    before = path.stat().st_size
    page_1 = newest_frame_of_page_1((path.parent / "turns.db-wal").read_bytes())
    with open(path, "r+b") as f:
        f.write(page_1)
    declared = int.from_bytes(page_1[16:18], "big") * int.from_bytes(page_1[28:32], "big")
    assert path.stat().st_size == before < declared  # what the header arithmetic called truncated
    return path


def test_a_wal_store_shorter_than_its_header_is_checked_not_called_truncated(interrupted_checkpoint):
    result = cli("check", interrupted_checkpoint, "--json")
    assert (result.returncode, result.stderr) == (1, "")  # fails only because it is not migrated
    [report] = json.loads(result.stdout)["databases"]
    assert report["turns"] == 300
    assert report["path"] == str(interrupted_checkpoint)


def test_a_wal_store_shorter_than_its_header_migrates_with_every_row(interrupted_checkpoint):
    result = cli("migrate", interrupted_checkpoint, "--json")
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout)["inference_id_filled"] == 300
    conn = sqlite3.connect(interrupted_checkpoint)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT count(*), min(inference_id), max(inference_id) FROM turns").fetchone() == (
        300, "inf-0", "inf-99")
    conn.close()


def test_a_truncated_wal_store_is_still_called_truncated_by_sqlite(interrupted_checkpoint):
    with open(interrupted_checkpoint, "r+b") as f:
        f.truncate(4096 * 3)  # pages 4.. were checkpointed long ago: not in the -wal any more
    os.remove(str(interrupted_checkpoint) + "-wal")
    result = cli("check", interrupted_checkpoint)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"Error: {interrupted_checkpoint}: truncated: the header declares ")
    assert result.stderr.endswith(" (SQLite: database disk image is malformed)\n")


class CheckpointingWriter(threading.Thread):
    """Saves turns in WAL mode with small automatic checkpoints, as a busy upstream server does:
    the file grows under every checkpoint, page 1 (the new size) written first."""

    def __init__(self, path):
        super().__init__()
        self.path, self.stop, self.commits = path, threading.Event(), 0

    def run(self):
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        conn.execute("PRAGMA wal_autocheckpoint=50")
        while not self.stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, updated_at_ms,"
                " turn_data_json) VALUES ('c', 's', ?, 1, 2, ?)",
                [(f"t{self.commits}-{k}", "x" * 3000) for k in range(10)])
            conn.execute("COMMIT")
            self.commits += 1
        conn.close()


def test_check_beside_a_live_writers_checkpoints_never_says_truncated(tmp_path):
    path = tmp_path / "turns.db"
    create_store(path, "pre-cutover").close()
    writer = CheckpointingWriter(path)
    writer.start()
    errors, runs, end = [], 0, time.monotonic() + 3
    try:
        while time.monotonic() < end:
            runs += 1
            try:
                open_turns_db(path, dry_run=True).close()
            except MigrationError as error:
                errors.append(str(error))
    finally:
        writer.stop.set()
        writer.join()
    assert writer.commits > 100 and runs > 100
    assert errors == []


# Disk full mid-migration. SQLite answers SQLITE_FULL ("database or disk is full") when a
# connection's PRAGMA max_page_count is reached exactly as when the disk is: the same error, the
# same automatic rollback. So the steps run on a connection capped a few pages above the file.

def full_store(path, journal_mode):
    conn = create_store(path, "pre-cutover", journal_mode=journal_mode)
    for n in range(500):
        insert_turn(conn, f"c{n % 7}", "s", f"t{n:03d}", data="x" * 200,
                    metadata={"geppetto.runtime@v1": {"runtime_key": "agent"}, "inference_id": f"inf-{n}"})
    conn.close()
    return path


def migrate_until_full(path, spare_pages):
    """Run the migration's steps, each in its transaction, on a connection that may add only
    ``spare_pages`` pages; return the error, the step's name and the dump from before that step."""
    conn = open_turns_db(path)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")
        migration = Migration(str(path), batch_size=100)
        migration.own_connection = True
        for step in migration.steps():
            before = dump(path)
            try:
                run_in_transaction(conn, step)
            except sqlite3.OperationalError as error:
                assert not conn.in_transaction
                return error, getattr(step, "__name__", "<lambda>"), before
        pytest.fail("the migration never filled the disk")
    finally:
        conn.close()


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
@pytest.mark.parametrize("spare_pages, failing_step", [
    (0, "_write_window"),  # the backfill's UPDATE: SQLite rolls back, then its savepoint is gone too
    (5, "<lambda>"),  # an index build
])
def test_disk_full_says_disk_full_and_nothing_of_the_step_is_written(tmp_path, journal_mode,
                                                                    spare_pages, failing_step):
    path = full_store(tmp_path / "turns.db", journal_mode)
    error, step, before = migrate_until_full(path, spare_pages)
    assert (str(error), step) == ("database or disk is full", failing_step)
    assert dump(path) == before
    assert str(explain_error(path, error, 5000)) == (
        f"{path}: disk full (database or disk is full): nothing of this step was written; every "
        "step before it is complete: free some space, then rerun to continue")

    report = migrate_path(path)  # room again: a rerun completes
    assert report.indexes_created == ["turns_by_conv_runtime_updated", "turns_by_conv_inference_updated"]
    assert turns_rows(path, "count(*), min(runtime_key), max(inference_id)") == [(500, "agent", "inf-99")]


# Timestamps no calendar holds. The upstream DDL says INTEGER NOT NULL; a hostile store's table
# says nothing, so every value below is stored as it is.

HOSTILE_TURNS_DDL = """
CREATE TABLE turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json,
                    turn_data_json, runtime_key, inference_id, updated_at_ms,
                    PRIMARY KEY (conv_id, session_id, turn_id));
"""
GOOD = 1_773_964_800_000  # 2026-03-20T00:00:00Z
ODD_TIMES = {  # turn_id: updated_at_ms; turn_created_at_ms is the same
    "t01-good": GOOD,
    "t02-micro": 1_774_000_000_000_000,  # microseconds: year 58185
    "t03-max": 2**63 - 1,
    "t04-min": -2**63,
    "t05-negative": -5,
    "t06-huge-real": 1e308,
    "t07-inf": float("inf"),
    "t08-null": None,
    "t09-text": "yesterday",
    "t10-good": GOOD + 1000,
}
# What each turn's mark in a timeline says after its runtime_key and inference_id.
TOOLTIP_TIMES = {
    "t01-good": ", 2026-03-20 00:00:00 UTC",
    "t02-micro": ", updated_at_ms 1774000000000000",
    "t03-max": ", updated_at_ms 9223372036854775807",
    "t04-min": ", updated_at_ms -9223372036854775808",
    "t05-negative": ", updated_at_ms -5",
    "t06-huge-real": ", updated_at_ms 1e+308",
    "t07-inf": ", updated_at_ms inf",
    "t08-null": "",
    "t09-text": ", updated_at_ms yesterday",
    "t10-good": ", 2026-03-20 00:00:01 UTC",
}


@pytest.fixture
def odd_times_store(tmp_path):
    path = tmp_path / "turns.db"
    conn = sqlite3.connect(path)
    conn.executescript(HOSTILE_TURNS_DDL + schema.BLOCKS_TABLES_DDL)
    for n, (turn_id, stamp) in enumerate(ODD_TIMES.items()):
        conn.execute("INSERT INTO turns VALUES ('c', 's', ?, ?, '{}', '{}', ?, ?, ?)",
                     (turn_id, stamp, ("agent", "planner")[n % 2], f"inf-{n}", stamp))
    conn.commit()
    conn.close()
    return path


def timeline_tooltips(page):
    """{turn_id: tooltip} of every turn mark in the page's runtime timeline."""
    marks = re.findall(r'<rect class="rt-turn" data-turn-id="([^"]*)"[^>]*><title>([^<]*)</title>', page)
    return {turn_id: html.unescape(tip) for turn_id, tip in marks}


def expected_tooltips():
    return {turn_id: f"turn {turn_id}: runtime_key {('agent', 'planner')[n % 2]}, inference_id inf-{n}"
                     f"{TOOLTIP_TIMES[turn_id]}, session s"
            for n, turn_id in enumerate(ODD_TIMES)}


@pytest.mark.asyncio
async def test_odd_timestamps_render_as_stored_never_a_500(odd_times_store):
    ds = Datasette([str(odd_times_store)])
    report = (await ds.client.get("/-/runtime-truth.json")).json()["databases"][0]
    assert report["coverage"] == [
        {"day": "2026-03-20", "turns": 2, "with_runtime_key": 2, "with_inference_id": 2, "with_neither": 0}]
    assert report["turns"] == 10

    page = await ds.client.get("/-/runtime-truth")
    assert page.status_code == 200
    assert re.findall(r'<g class="rt-day" data-day="([^"]*)" data-turns="(\d+)"', page.text) == [
        ("2026-03-20", "2")]
    assert timeline_tooltips(page.text) == expected_tooltips()  # drawn for the switched conversation

    page = await ds.client.get("/-/runtime-truth/turns/conversation?conv_id=c")
    assert page.status_code == 200
    assert timeline_tooltips(page.text) == expected_tooltips()

    page = await ds.client.get("/turns/runtime_history?conv_id=c")
    assert page.status_code == 200
    assert timeline_tooltips(page.text) == expected_tooltips()

    for url in ("/api/debug/conversations", "/api/debug/turns?conv_id=c", "/api/debug/turn/c/s/t02-micro"):
        response = await ds.client.get(url)
        assert (url, response.status_code) == (url, 200)


@pytest.mark.asyncio
async def test_an_old_store_bucketed_by_created_at_ms_skips_what_it_cannot_place(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "very-old")
    insert_turn(conn, "c", "s", "t1", created=GOOD, runtime_key="agent")
    insert_turn(conn, "c", "s", "t2", created=1_774_000_000_000_000)
    conn.close()
    ds = Datasette([str(path)])
    page = await ds.client.get("/-/runtime-truth")
    assert page.status_code == 200
    assert re.findall(r'<g class="rt-day" data-day="([^"]*)" data-turns="(\d+)"', page.text) == [
        ("2026-03-20", "1")]
    page = await ds.client.get("/-/runtime-truth/turns/conversation?conv_id=c")
    assert page.status_code == 200
    assert timeline_tooltips(page.text)["t2"] == (
        "turn t2: runtime_key (none), inference_id (none), updated_at_ms 1774000000000000, session s")
