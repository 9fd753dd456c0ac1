"""Strict operators: the operator's query config wins, and table-level permissions hold on every
page, route and query of the plugin (issue 13, findings 1 and 3), on both Datasette lines."""

import sqlite3

from datasette_test import actor_cookie
import pytest

from api_helpers import build_turns_db, datasette, get_json
from conftest import ON_065

ROOT = {"id": "root"}
OPERATOR_SQL = "select turn_id, conv_id from turns where conv_id = :conv_id order by turn_id desc"


def cookies(ds, actor):
    return {"ds_actor": actor_cookie(ds, actor)}


# --- finding 1: the operator's canned-query config wins -----------------------------------------

def operator_queries(**runtime_history):
    return {"turns": {"queries": {"runtime_history": runtime_history}}}


@pytest.mark.asyncio
async def test_operator_allow_and_sql_on_a_plugin_query_name_win(paths):
    ds = datasette(paths, databases=operator_queries(
        sql=OPERATOR_SQL, title="Operator history", allow=ROOT))
    url = "/turns/runtime_history.json?conv_id=conv-1&_shape=array"
    assert (await ds.client.get(url)).status_code == 403
    assert (await ds.client.get(url, cookies=cookies(ds, {"id": "eve"}))).status_code == 403
    response = await ds.client.get(url, cookies=cookies(ds, ROOT))
    assert response.status_code == 200
    assert response.json() == [{"turn_id": "turn-2", "conv_id": "conv-1"},
                               {"turn_id": "turn-1", "conv_id": "conv-1"}]
    page = await ds.client.get("/turns/runtime_history?conv_id=conv-1", cookies=cookies(ds, ROOT))
    assert ">Operator history 🔒</h1>" in page.text
    # Both requests again: the first answer did not change what the second one sees.
    assert (await ds.client.get(url)).status_code == 403
    assert (await ds.client.get(url, cookies=cookies(ds, ROOT))).json()[0] == {
        "turn_id": "turn-2", "conv_id": "conv-1"}


@pytest.mark.asyncio
async def test_operator_sql_without_allow_keeps_its_sql_and_gets_our_description(paths):
    ds = datasette(paths, databases=operator_queries(sql=OPERATOR_SQL))
    response = await ds.client.get("/turns/runtime_history.json?conv_id=conv-1&_shape=array")
    assert response.json() == [{"turn_id": "turn-2", "conv_id": "conv-1"},
                               {"turn_id": "turn-1", "conv_id": "conv-1"}]
    page = await ds.client.get("/turns/runtime_history?conv_id=conv-1")
    assert ">Runtime history of one conversation</h1>" in page.text
    # The plugin's other queries are still there, with the plugin's SQL.
    other = await ds.client.get("/turns/missing_backfill_count.json?_shape=array")
    assert other.json() == [{"missing_runtime_or_inference": 0}]


@pytest.mark.asyncio
@pytest.mark.skipif(not ON_065, reason="1.0 requires sql on every configured query")
async def test_operator_allow_alone_keeps_the_plugin_sql(paths):
    ds = datasette(paths, databases=operator_queries(allow=ROOT))
    url = "/turns/runtime_history.json?conv_id=conv-1&_shape=array"
    assert (await ds.client.get(url)).status_code == 403
    rows = (await ds.client.get(url, cookies=cookies(ds, ROOT))).json()
    assert [row["turn_id"] for row in rows] == ["turn-1", "turn-2"]
    assert (await ds.client.get(url)).status_code == 403


# --- finding 3: table-level permissions hold everywhere ------------------------------------------

def table_allow(database, table, rule="allow"):
    """A table restricted to root: an ``allow`` block (both lines), or 1.0's ``permissions:``."""
    block = {"allow": ROOT} if rule == "allow" else {"permissions": {"view-table": ROOT}}
    return {database: {"tables": {table: block}}}


RULES = ["allow"] + ([] if ON_065 else ["permissions"])
TURN_URLS = [prefix + path for prefix in ("", "/-/runtime-truth/turns")
             for path in ("/api/debug/turns?conv_id=conv-1", "/api/debug/turn/conv-1/session-1/turn-1")]


@pytest.mark.asyncio
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("table", ["turns", "blocks", "turn_block_membership"])
async def test_turn_routes_refuse_a_table_the_actor_may_not_view(paths, table, rule):
    ds = datasette(paths, databases=table_allow("turns", table, rule))
    assert (await ds.client.get(f"/turns/{table}.json")).status_code == 403  # Datasette's own answer
    for url in TURN_URLS:
        assert await get_json(ds, url) == (403, {
            "ok": False, "error": f"forbidden: you may not view the {table} table of the turns database",
            "status": 403}), url
        status, body = await get_json(ds, url, cookies=cookies(ds, ROOT))
        assert (status, body["items"][0]["runtime_key"]) == (200, "planner@v1" if "turns?" in url else "inventory@v1")


@pytest.mark.asyncio
@pytest.mark.parametrize("rule", RULES)
async def test_conversations_refuse_timeline_conversations(paths, rule):
    ds = datasette(paths, databases=table_allow("timeline", "timeline_conversations", rule))
    for url in ("/api/debug/conversations", "/api/debug/conversations/conv-past"):
        assert await get_json(ds, url) == (403, {
            "ok": False,
            "error": "forbidden: you may not view the timeline_conversations table of the timeline database",
            "status": 403})
        assert (await ds.client.get(url, cookies=cookies(ds, ROOT))).status_code == 200
    # The turn routes do not read the timeline store.
    assert (await ds.client.get("/api/debug/turns?conv_id=conv-1")).status_code == 200


@pytest.mark.asyncio
async def test_derived_conversations_refuse_turns(tmp_path):
    ds = datasette([build_turns_db(tmp_path / "turns.db")], databases=table_allow("turns", "turns"))
    assert await get_json(ds, "/api/debug/conversations") == (403, {
        "ok": False, "error": "forbidden: you may not view the turns table of the turns database",
        "status": 403})
    status, body = await get_json(ds, "/api/debug/conversations", cookies=cookies(ds, ROOT))
    assert (status, body["items"][0]["conv_id"]) == (200, "conv-tie")


@pytest.mark.asyncio
@pytest.mark.parametrize("rule", RULES)
async def test_conversation_page_and_queries_refuse_turns(paths, rule):
    ds = datasette(paths, databases=table_allow("turns", "turns", rule))
    await ds.invoke_startup()
    root = cookies(ds, ROOT)
    for url in ("/-/runtime-truth/turns/conversation?conv_id=conv-1",
                "/turns/runtime_history.json?conv_id=conv-1&_shape=array",
                "/turns/missing_backfill_count.json?_shape=array"):
        assert (await ds.client.get(url)).status_code == 403, url
        assert (await ds.client.get(url, cookies=root)).status_code == 200, url
    assert "Runtime truth" not in (await ds.client.get("/turns")).text
    assert "runtime_history" in (await ds.client.get("/turns", cookies=root)).text


@pytest.mark.asyncio
async def test_report_leaves_out_a_turns_table_the_actor_may_not_view(tmp_path):
    first = build_turns_db(tmp_path / "turns.db")
    second = build_turns_db(tmp_path / "other.db")
    ds = datasette([first, second], databases=table_allow("other", "turns"))
    anonymous = (await ds.client.get("/-/runtime-truth.json")).json()
    assert [db["database"] for db in anonymous["databases"]] == ["turns"]
    assert "other" not in (await ds.client.get("/-/runtime-truth")).text
    root = (await ds.client.get("/-/runtime-truth.json", cookies=cookies(ds, ROOT))).json()
    assert [db["database"] for db in root["databases"]] == ["turns", "other"]
    only = datasette([second], databases=table_allow("other", "turns"))
    assert (await only.client.get("/-/runtime-truth.json")).status_code == 403


@pytest.mark.asyncio
async def test_report_compares_pointers_only_with_timeline_conversations_visible(paths):
    ds = datasette(paths, databases=table_allow("timeline", "timeline_conversations"))

    def pointer(body):
        check = next(c for c in body["databases"][0]["checks"] if c["id"] == "pointer")
        return check["figure"], body["databases"][0]["timeline"]

    anonymous = (await ds.client.get("/-/runtime-truth.json")).json()
    assert pointer(anonymous) == ("no timeline store to compare with", None)
    root = (await ds.client.get("/-/runtime-truth.json", cookies=cookies(ds, ROOT))).json()
    assert pointer(root) == (
        "0 of the 1 conversations whose newest turn has a runtime_key have another pointer in "
        "timeline; information only: the pointer is never turn history, and history is never "
        "rewritten", "timeline")


def capitalised(path):
    """build_turns_db's store with its turns table stored as ``Turns``: SQLite's names ignore
    ASCII case, so it is the turns table the upstream reads and writes."""
    build_turns_db(path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE turns RENAME TO turns_renamed")
    conn.execute("ALTER TABLE turns_renamed RENAME TO Turns")
    conn.commit()
    conn.close()
    return path


@pytest.mark.asyncio
@pytest.mark.parametrize("rule", [None, *RULES])
async def test_a_turns_table_stored_as_Turns_is_served_and_its_rules_hold(tmp_path, rule):
    path = capitalised(tmp_path / "turns.db")
    ds = datasette([path], databases=table_allow("turns", "Turns", rule) if rule else {})
    await ds.invoke_startup()
    urls = ["/api/debug/turns?conv_id=conv-tie", "/api/debug/turn/conv-tie/session-t/turn-a",
            "/api/debug/conversations", "/-/runtime-truth/turns/conversation?conv_id=conv-tie",
            "/turns/runtime_history.json?conv_id=conv-tie&_shape=array"]
    for url in urls:
        assert (await ds.client.get(url)).status_code == (403 if rule else 200), url
        assert (await ds.client.get(url, cookies=cookies(ds, ROOT))).status_code == 200, url
    history = await ds.client.get(urls[-1], cookies=cookies(ds, ROOT))
    assert [row["turn_id"] for row in history.json()] == ["turn-a", "turn-b"]
