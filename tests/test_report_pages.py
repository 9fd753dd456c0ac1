"""/-/runtime-truth, /-/runtime-truth.json and the conversation timeline page, over HTTP."""

import json
import re
import sqlite3

import pytest
from conftest import line_config
from datasette_test import Datasette, actor_cookie

from builders import create_store, insert_turn
from datasette_runtime_truth.upstream import schema
from datasette_runtime_truth.migration.apply import migrate_path



def private(database, actor_id="admin"):
    """Datasette kwargs that let only ``actor_id`` view ``database``, on either line."""
    settings = {"databases": {database: {"allow": {"id": actor_id}}}}
    return line_config(settings)


def checks(data, database="turns"):
    found = next(db for db in data["databases"] if db["database"] == database)
    return {check["id"]: check for check in found["checks"]}


@pytest.mark.asyncio
async def test_sample_fails_before_migration_and_passes_after(sample):
    ds = Datasette([sample.turns_path, sample.timeline_path])
    response = await ds.client.get("/-/runtime-truth.json")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "fails"
    assert [db["database"] for db in data["databases"]] == ["turns"]
    assert {i: c["status"] for i, c in checks(data).items() if c["status"] == "fail"} == {
        "columns": "fail", "indexes": "fail", "would_fill": "fail"
    }
    page = await ds.client.get("/-/runtime-truth")
    assert page.status_code == 200
    assert 'data-status="fails">fails</span>' in page.text

    migrate_path(sample.turns_path)
    ds = Datasette([sample.turns_path, sample.timeline_path])
    data = (await ds.client.get("/-/runtime-truth.json")).json()
    assert data["status"] == "passes"
    assert data["databases"][0]["timeline"] == "timeline"
    assert data["databases"][0]["turns"] == 300
    assert sum(day["turns"] for day in data["databases"][0]["coverage"]) == 300
    page = await ds.client.get("/-/runtime-truth")
    assert 'data-status="passes">passes</span>' in page.text
    assert page.text.count('class="rt-check"') == 9


@pytest.mark.asyncio
async def test_checks_link_to_the_canned_queries(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    for n, key in enumerate(["agent", "planner"]):
        insert_turn(conn, "conv/1", "s1", f"t{n}", updated=n, runtime_key=key, inference_id=f"i{n}")
    ds = Datasette([str(path)])
    data = (await ds.client.get("/-/runtime-truth.json")).json()
    urls = {check_id: check["url"] for check_id, check in checks(data).items()}
    assert urls == {
        "columns": "/turns/turns_schema",
        "indexes": "/turns/turns_runtime_indexes",
        "missing_runtime_key": "/-/runtime-truth/turns/preview?only=runtime_key",
        "missing_inference_id": "/-/runtime-truth/turns/preview?only=inference_id",
        "bad_metadata": "/-/runtime-truth/turns/preview?only=bad_metadata",
        "would_fill": "/-/runtime-truth/turns/preview?only=writes",
        "runtime_switches": "/turns/runtime_switches",
        "pointer": None,
        "journal": None,
    }
    assert data["databases"][0]["coverage_url"] == "/turns/backfill_coverage"
    assert checks(data)["runtime_switches"]["items"] == [{
        "conv_id": "conv/1", "switches": 1,
        "history_url": "/turns/runtime_history?conv_id=conv%2F1",
        "timeline_url": "/-/runtime-truth/turns/conversation?conv_id=conv%2F1",
    }]
    page = (await ds.client.get("/-/runtime-truth")).text
    assert 'href="/turns/runtime_history?conv_id=conv%2F1"' in page
    assert 'class="rt-coverage"' in page
    assert page.count('class="rt-turn"') == 2  # the switched conversation's timeline, inline


@pytest.mark.asyncio
async def test_conversation_timeline_page(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    keys = ["inventory@v1", "inventory@v1", "planner@v1"]
    for n, key in enumerate(keys):
        insert_turn(conn, "conv/1", "s1", f"turn-{n}", updated=100 + n, runtime_key=key, inference_id=f"inf-{n}")
    ds = Datasette([str(path)])
    response = await ds.client.get("/-/runtime-truth/turns/conversation?conv_id=conv%2F1")
    assert response.status_code == 200
    assert re.findall(r'class="rt-turn" data-turn-id="([^"]+)"', response.text) == ["turn-0", "turn-1", "turn-2"]
    assert "3 turns, 1 runtime switch." in response.text
    assert 'href="/turns/runtime_history?conv_id=conv%2F1"' in response.text
    assert "timeline JSON" not in response.text  # no timeline store attached


@pytest.mark.asyncio
async def test_conversation_page_links_to_its_timeline_json(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    insert_turn(conn, "conv/1 x", "s1", "turn-0", updated=100, runtime_key="planner", inference_id="inf-0")
    store = sqlite3.connect(tmp_path / "timeline.db")
    store.executescript(schema.TIMELINE_DDL + schema.TIMELINE_ENTITY_DDL)
    store.execute("INSERT INTO timeline_entities VALUES ('conv/1 x', 'e', 'k', 1, 2, 3, '{\"id\": \"e\"}')")
    store.commit()
    ds = Datasette([str(path), str(tmp_path / "timeline.db")])
    page = await ds.client.get("/-/runtime-truth/turns/conversation?conv_id=conv%2F1+x")
    href = re.search(r'class="rt-timeline-json" href="([^"]+)"', page.text).group(1)
    assert href == "/-/runtime-truth/turns/api/timeline?conv_id=conv%2F1+x"
    response = await ds.client.get(href)
    assert json.loads(response.text)["entities"] == [{"id": "e"}]


@pytest.mark.asyncio
@pytest.mark.parametrize("url, status, message", [
    ("/-/runtime-truth/turns/conversation", 400, "missing conv_id"),
    ("/-/runtime-truth/turns/conversation?conv_id=nope", 404, "conversation not found: nope has no turns in turns."),
    ("/-/runtime-truth/other/conversation?conv_id=c1", 404, "Database not found: other"),
    ("/-/runtime-truth/timeline/conversation?conv_id=c1", 404, "timeline is not a turns database"),
])
async def test_conversation_page_bad_input(tmp_path, url, status, message):
    create_store(tmp_path / "turns.db", "current").close()
    timeline = create_store(tmp_path / "timeline.db", "current")
    timeline.execute("DROP TABLE turn_block_membership")
    timeline.execute("DROP TABLE turns")
    timeline.executescript(schema.TIMELINE_DDL)
    ds = Datasette([str(tmp_path / "turns.db"), str(tmp_path / "timeline.db")])
    response = await ds.client.get(url)
    assert response.status_code == status
    assert message in response.text


@pytest.mark.asyncio
async def test_report_lists_only_databases_the_actor_may_view(tmp_path):
    for name in ("turns", "other"):
        conn = create_store(tmp_path / f"{name}.db", "current")
        insert_turn(conn, "c1", "s1", "t1", runtime_key="agent", inference_id="i")
        conn.close()
    ds = Datasette([str(tmp_path / "turns.db"), str(tmp_path / "other.db")], **private("other"))
    anonymous = (await ds.client.get("/-/runtime-truth.json")).json()
    assert [db["database"] for db in anonymous["databases"]] == ["turns"]
    admin = {"ds_actor": actor_cookie(ds, {"id": "admin"})}
    allowed = (await ds.client.get("/-/runtime-truth.json", cookies=admin)).json()
    assert [db["database"] for db in allowed["databases"]] == ["turns", "other"]
    denied = await ds.client.get("/-/runtime-truth/other/conversation?conv_id=c1")
    assert denied.status_code == 403
    shown = await ds.client.get("/-/runtime-truth/other/conversation?conv_id=c1", cookies=admin)
    assert shown.status_code == 200


@pytest.mark.asyncio
async def test_forbidden_when_no_turns_database_is_visible(tmp_path):
    create_store(tmp_path / "turns.db", "current").close()
    ds = Datasette([str(tmp_path / "turns.db")], **private("turns"))
    assert (await ds.client.get("/-/runtime-truth.json")).status_code == 403
    assert (await ds.client.get("/-/runtime-truth")).status_code == 403
    home = await ds.client.get("/")
    assert 'href="/-/runtime-truth"' not in home.text


@pytest.mark.asyncio
async def test_pointer_check_needs_a_visible_timeline_store(tmp_path, sample):
    migrate_path(sample.turns_path)
    ds = Datasette([sample.turns_path, sample.timeline_path], **private("timeline"))
    data = (await ds.client.get("/-/runtime-truth.json")).json()
    assert data["databases"][0]["timeline"] is None
    assert checks(data)["pointer"]["figure"] == "no timeline store to compare with"


@pytest.mark.asyncio
async def test_menu_link_and_empty_instance(tmp_path):
    create_store(tmp_path / "turns.db", "current").close()
    ds = Datasette([str(tmp_path / "turns.db")])
    assert 'href="/-/runtime-truth"' in (await ds.client.get("/")).text
    empty = Datasette([], memory=True)
    data = (await empty.client.get("/-/runtime-truth.json")).json()
    assert data == {"format_version": 1, "status": "no turns database", "databases": []}
    page = (await empty.client.get("/-/runtime-truth")).text
    assert "No turns database is attached" in page
    assert 'href="/-/runtime-truth"' not in (await empty.client.get("/")).text


@pytest.mark.asyncio
async def test_immutable_wal_store_with_pending_changes_fails(tmp_path):
    path = tmp_path / "turns.db"
    writer = create_store(path, "current")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    insert_turn(writer, "c1", "s1", "t1", runtime_key="agent", inference_id="i")
    ds = Datasette([], immutables=[str(path)])
    data = (await ds.client.get("/-/runtime-truth.json")).json()
    assert data["status"] == "fails"
    journal = checks(data)["journal"]
    assert journal["status"] == "fail"
    assert journal["figure"].startswith("wal, opened immutable: the -wal file holds changes")
    assert data["databases"][0]["turns"] == 0  # the stale view an immutable open gives


@pytest.mark.asyncio
async def test_cors_headers_on_the_json_when_cors_is_on(tmp_path):
    create_store(tmp_path / "turns.db", "current").close()
    plain = await Datasette([str(tmp_path / "turns.db")]).client.get("/-/runtime-truth.json")
    assert "access-control-allow-origin" not in plain.headers
    cors = await Datasette([str(tmp_path / "turns.db")], cors=True).client.get("/-/runtime-truth.json")
    assert cors.headers["access-control-allow-origin"] == "*"


@pytest.mark.asyncio
async def test_rules_come_from_plugin_config(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    insert_turn(conn, "c1", "s1", "t1", metadata={"geppetto.runtime@v1": "planner"}, inference_id="i")
    conn.close()
    canonical = (await Datasette([str(path)]).client.get("/-/runtime-truth.json")).json()
    assert canonical["status"] == "passes"
    ds = Datasette([str(path)], plugin_config={"datasette-runtime-truth": {"rules": "legacy"}})
    legacy = (await ds.client.get("/-/runtime-truth.json")).json()
    assert legacy["status"] == "fails"
    assert checks(legacy)["would_fill"]["figure"].endswith("--rules legacy`")


@pytest.mark.asyncio
async def test_configured_timeline_database_that_is_not_attached(tmp_path):
    create_store(tmp_path / "turns.db", "current").close()
    ds = Datasette([str(tmp_path / "turns.db")],
                   plugin_config={"datasette-runtime-truth": {"timeline_database": "timeline"}})
    data = (await ds.client.get("/-/runtime-truth.json")).json()
    assert checks(data)["pointer"]["figure"] == (
        "timeline_database 'timeline' is not attached, or has no timeline_conversations table")
    assert data["status"] == "passes"
