"""Hostile stores and strict clients: startup survives a failed migration (issue 13, finding 6)
and the plugin speaks HTTP like Datasette (finding 9): BLOBs, database names, CORS preflight,
HEAD, methods, percent-encoded names."""

import json
import sqlite3

from datasette_test import Datasette, actor_cookie
import pytest

from api_helpers import build_turns_db, datasette, get_json
from builders import create_store, dump, insert_turn

CANONICAL = {"geppetto.runtime@v1": {"runtime_key": "planner"}, "geppetto.inference_id@v1": "inf-42"}
MIGRATE_ON_STARTUP = {"datasette-runtime-truth": {"migrate_on_startup": True}}


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


# --- finding 9: HTTP like Datasette --------------------------------------------------------------

@pytest.mark.asyncio
async def test_blobs_in_text_columns_are_text_or_hex_never_a_500(paths):
    turns_path, timeline_path = paths
    conn = sqlite3.connect(turns_path)
    conn.execute("UPDATE turns SET inference_id = CAST('inf-blob' AS BLOB) WHERE turn_id = 'turn-1'")
    conn.execute("UPDATE blocks SET role = X'FF00' WHERE block_id = 'b-user'")
    conn.commit()
    conn.close()
    conn = sqlite3.connect(timeline_path)
    conn.execute("UPDATE timeline_conversations SET runtime_key = CAST('planner@v1' AS BLOB),"
                 " session_id = X'C0' WHERE conv_id = 'conv-1'")
    conn.commit()
    conn.close()
    ds = datasette(paths)
    status, body = await get_json(ds, "/api/debug/turn/conv-1/session-1/turn-1")
    assert status == 200
    assert [item["inference_id"] for item in body["items"]] == ["inf-blob", "inf-blob"]
    assert body["items"][0]["parsed"]["blocks"][0]["role"] == "ff00"
    status, body = await get_json(ds, "/api/debug/turns?conv_id=conv-1&phase=final")
    assert [item["inference_id"] for item in body["items"]] == ["inf-2", "inf-blob"]
    status, body = await get_json(ds, "/api/debug/conversations/conv-1")
    assert (status, body["resolved_runtime_key"], body["session_id"]) == (200, "planner@v1", "c0")
    status, body = await get_json(ds, "/api/debug/conversations")
    assert status == 200


@pytest.mark.asyncio
async def test_several_databases_message_names_only_visible_ones(tmp_path):
    first = build_turns_db(tmp_path / "turns.db")
    secret = build_turns_db(tmp_path / "secret-customer-acme.db")
    ds = datasette([first, secret], databases={"secret-customer-acme": {"allow": {"id": "root"}}})
    hint = "; set the plugin's database option or use /-/runtime-truth/<database>/api/debug/..."
    assert await get_json(ds, "/api/debug/turns?conv_id=conv-1") == (404, {
        "ok": False, "error": "turn store not enabled: several turns databases are attached (turns)" + hint,
        "status": 404})
    root = {"ds_actor": actor_cookie(ds, {"id": "root"})}
    status, body = await get_json(ds, "/api/debug/turns?conv_id=conv-1", cookies=root)
    assert body["error"] == (
        "turn store not enabled: several turns databases are attached (turns, secret-customer-acme)" + hint)


API_URLS = ["/api/debug/conversations", "/api/debug/turns?conv_id=conv-1",
            "/-/runtime-truth/turns/api/debug/turn/conv-1/session-1/turn-1"]


@pytest.mark.asyncio
@pytest.mark.parametrize("url", API_URLS)
async def test_cors_preflight_and_head(paths, url):
    ds = datasette(paths, cors=True)
    preflight = await ds.client.request("OPTIONS", url, headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    head = await ds.client.request("HEAD", url)
    get = await ds.client.get(url)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json; charset=utf-8"
    assert head.headers["access-control-allow-origin"] == "*"
    plain = datasette(paths)
    options = await plain.client.request("OPTIONS", url)
    assert options.status_code == 200
    assert "access-control-allow-origin" not in options.headers


PAGES = ["/-/runtime-truth", "/-/runtime-truth.json", "/-/runtime-truth/turns/conversation?conv_id=conv-1"]


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("url", PAGES)
async def test_pages_answer_other_methods_with_405(paths, url, method):
    ds = datasette(paths)
    response = await ds.client.request(method, url)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    head = await ds.client.request("HEAD", url)
    assert (head.status_code, head.content) == (200, b"")


@pytest.mark.asyncio
@pytest.mark.parametrize("segment", ["my%20turns", "my~20turns", "my+turns"])
async def test_database_names_resolve_as_datasette_resolves_them(tmp_path, segment):
    path = build_turns_db(tmp_path / "my turns.db")
    ds = datasette([path])
    status, body = await get_json(ds, f"/-/runtime-truth/{segment}/api/debug/turns?conv_id=conv-1&limit=1")
    assert (status, body["items"][0]["turn_id"]) == (200, "turn-2")
    page = await ds.client.get(f"/-/runtime-truth/{segment}/conversation?conv_id=conv-1")
    assert page.status_code == 200
    assert "turn-2" in page.text


# --- a big turn: built off the event loop, refused past max_payload_chars -------------------------

def _big_turn_store(path, metadata_chars):
    conn = create_store(path, "current")
    text = json.dumps({"transcript": "line of a long tool output\n" * (metadata_chars // 27)})
    conn.execute("INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json, "
                 "updated_at_ms) VALUES ('c', 's', 't', 1, ?, 2)", (text,))
    conn.execute("INSERT INTO blocks (block_id, content_hash, kind, payload_json, first_seen_at_ms) "
                 "VALUES ('b', 'h', 'user', '{\"text\": \"hi\"}', 1)")
    conn.execute("INSERT INTO turn_block_membership VALUES ('c', 's', 't', 'final', 5, 0, 'b', 'h')")
    conn.commit()
    conn.close()
    return text


@pytest.mark.asyncio
async def test_a_three_megabyte_turn_is_served_whole(tmp_path):
    text = _big_turn_store(tmp_path / "turns.db", 3_000_000)
    ds = Datasette([str(tmp_path / "turns.db")])
    response = await ds.client.get("/api/debug/turn/c/s/t")
    assert response.status_code == 200
    assert response.json()["items"][0]["payload"] == (
        "blocks:\n    - id: b\n      kind: user\n      payload:\n        text: hi\nid: t\nmetadata:\n"
        "    transcript: |\n" + "        line of a long tool output\n" * (3_000_000 // 27)
    )
    assert len(text) > 3_000_000


@pytest.mark.asyncio
@pytest.mark.parametrize("url, advice", [
    ("/api/debug/turn/c/s/t", "read it from turns.db directly"),
    ("/api/debug/turns?conv_id=c", "ask for fewer snapshots (limit=, phase=, since_ms=)"),
])
async def test_past_max_payload_chars_a_clear_json_413(tmp_path, url, advice):
    text = _big_turn_store(tmp_path / "turns.db", 3_000_000)
    ds = Datasette([str(tmp_path / "turns.db")],
                   plugin_config={"datasette-runtime-truth": {"max_payload_chars": 1_000_000}})
    response = await ds.client.get(url)
    assert response.status_code == 413
    size = len(text) + len("{}") + len('{"text": "hi"}') + len("{}")
    assert response.json() == {
        "ok": False, "status": 413,
        "error": f"payload too large: these snapshots hold {size:,} characters of JSON, over the limit "
                 f"of 1,000,000, the max_payload_chars setting; {advice}",
    }
