"""Hostile stores and strict clients: startup survives a failed migration (issue 13, finding 6)
and the plugin speaks HTTP like Datasette (finding 9): BLOBs, database names, CORS preflight,
HEAD, methods, percent-encoded names."""

import sqlite3

from datasette_test import Datasette, actor_cookie
import pytest

from api_helpers import ON_065, build_timeline_db, build_turns_db, datasette, get_json
from builders import create_store, dump, insert_turn

CANONICAL = {"geppetto.runtime@v1": {"runtime_key": "planner"}, "geppetto.inference_id@v1": "inf-42"}
MIGRATE_ON_STARTUP = {"datasette-runtime-truth": {"migrate_on_startup": True}}


@pytest.fixture
def paths(tmp_path):
    return build_turns_db(tmp_path / "turns.db"), build_timeline_db(tmp_path / "timeline.db")


# --- finding 6: migrate_on_startup with a busy lock --------------------------------------------

@pytest.mark.asyncio
async def test_busy_lock_at_startup_is_logged_and_datasette_serves(tmp_path, capsys):
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    insert_turn(conn, "conv-1", "session-1", "turn-1", metadata=CANONICAL)
    conn.close()
    before = dump(path)
    holder = sqlite3.connect(path, isolation_level=None)  # another process's writer
    holder.execute("BEGIN IMMEDIATE")
    try:
        ds = Datasette([str(path)], plugin_config=MIGRATE_ON_STARTUP)
        await ds.invoke_startup()
        # The first line is Datasette's own write thread's; the plugin's is one line.
        assert capsys.readouterr().err.splitlines() == [
            "database is locked",
            "datasette-runtime-truth: turns: migrate_on_startup did not run (OperationalError: "
            "database is locked); serving it as it is: run "
            f"`datasette runtime-truth migrate {path}`",
        ]
        rows = (await ds.client.get("/turns/turns.json?_shape=array")).json()
        assert [row["turn_id"] for row in rows] == ["turn-1"]
        report = (await ds.client.get("/-/runtime-truth.json")).json()
        assert report["databases"][0]["startup_migration_error"] == "OperationalError: database is locked"
        page = (await ds.client.get("/-/runtime-truth")).text
        assert ("migrate_on_startup did not migrate this database:\n    OperationalError: database "
                "is locked.") in page
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert dump(path) == before


@pytest.mark.asyncio
async def test_a_migrated_store_reports_no_startup_error(tmp_path):
    path = tmp_path / "turns.db"
    create_store(path, "migrated").close()
    ds = Datasette([str(path)], plugin_config=MIGRATE_ON_STARTUP)
    report = (await ds.client.get("/-/runtime-truth.json")).json()
    assert report["databases"][0]["startup_migration_error"] is None
    assert "migrate_on_startup did not" not in (await ds.client.get("/-/runtime-truth")).text
