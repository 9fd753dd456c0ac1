"""GET /api/debug/conversations and /api/debug/conversations/{conv_id}."""

import sqlite3

import pytest

from api_helpers import build_timeline_db, build_turns_db, datasette, get_json
from builders import insert_turn

LIVE_FIELDS = {"active_sockets": 0, "stream_running": False, "queue_depth": 0, "buffered_events": 0}


def conv(conv_id, session_id, runtime, last_activity_ms, has_timeline_source):
    return {
        "conv_id": conv_id,
        "session_id": session_id,
        "resolved_runtime_key": runtime,
        **LIVE_FIELDS,
        "last_activity_ms": last_activity_ms,
        "has_timeline_source": has_timeline_source,
        "source": "persisted",
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("prefix", ["", "/-/runtime-truth/turns"])
async def test_list_from_the_timeline_store(paths, prefix):
    ds = datasette(paths)
    status, body = await get_json(ds, f"{prefix}/api/debug/conversations")
    assert status == 200
    assert body == {"items": [
        conv("conv-past", "session-past", "default", 5000, True),
        conv("conv-1", "session-2", "planner@v1", 400, False),
        conv("conv-quiet", "session-q", "", 400, True),
    ]}
    assert list(body["items"][0]) == [
        "conv_id", "session_id", "resolved_runtime_key", "active_sockets", "stream_running",
        "queue_depth", "buffered_events", "last_activity_ms", "has_timeline_source", "source",
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("shape, runtime", [
    ("current", "planner@v1"), ("migrated", "planner@v1"), ("pre-cutover", ""),
])
async def test_list_derived_from_turns_without_a_timeline_store(paths, shape, runtime, tmp_path):
    turns_path = build_turns_db(tmp_path / f"{shape}.db", shape)
    ds = datasette([turns_path])
    status, body = await get_json(ds, "/api/debug/conversations")
    assert status == 200
    tie_runtime = "default" if runtime else ""
    assert body == {"items": [
        # conv-tie's two newest turns tie at 700: the lower (session_id, turn_id) wins, turn-a.
        conv("conv-tie", "session-t", tie_runtime, 700, False),
        conv("conv-tie-b", "session-u", "agent" if runtime else "", 700, False),
        conv("conv-1", "session-2", runtime, 400, False),
    ]}


@pytest.mark.asyncio
async def test_runtime_switch_pointer_is_the_latest_runtime(paths):
    ds = datasette(paths)
    status, body = await get_json(ds, "/api/debug/conversations/conv-1")
    assert (status, body["resolved_runtime_key"], body["session_id"]) == (200, "planner@v1", "session-2")
    derived = datasette([paths[0]])
    status, body = await get_json(derived, "/api/debug/conversations/conv-1")
    assert (status, body["resolved_runtime_key"], body["session_id"]) == (200, "planner@v1", "session-2")


@pytest.mark.asyncio
async def test_detail_of_the_persisted_conversation(paths):
    ds = datasette(paths)
    status, body = await get_json(ds, "/api/debug/conversations/conv-past")
    assert status == 200
    assert body == {**conv("conv-past", "session-past", "default", 5000, True), "active_request_key": ""}
    assert list(body)[-1] == "active_request_key"


@pytest.mark.asyncio
async def test_detail_derived_from_turns(paths):
    ds = datasette([paths[0]])
    status, body = await get_json(ds, "/-/runtime-truth/turns/api/debug/conversations/conv-tie")
    assert status == 200
    assert body == {**conv("conv-tie", "session-t", "default", 700, False), "active_request_key": ""}


@pytest.mark.asyncio
@pytest.mark.parametrize("with_timeline", [True, False])
@pytest.mark.parametrize("path, status, error", [
    ("/api/debug/conversations/", 400, "missing conv_id"),
    ("/api/debug/conversations/%FF", 400, "invalid conv_id"),
    ("/api/debug/conversations/%zz", 400, "invalid conv_id"),
    ("/api/debug/conversations/%20", 400, "invalid conv_id"),
    ("/api/debug/conversations/nope", 404, "conversation not found"),
    ("/api/debug/conversations/conv-1%27%20OR%20%271%27=%271", 404, "conversation not found"),
])
async def test_detail_errors(paths, with_timeline, path, status, error):
    ds = datasette(paths if with_timeline else paths[:1])
    assert await get_json(ds, path) == (status, {"ok": False, "error": error, "status": status})


@pytest.mark.asyncio
@pytest.mark.parametrize("with_timeline", [True, False])
async def test_escaped_slash_inside_a_conversation_id(tmp_path, with_timeline):
    turns_path = build_turns_db(tmp_path / "turns.db")
    conn = sqlite3.connect(turns_path)
    insert_turn(conn, "team/alpha", "s/1", "t 1", created=10, updated=20, runtime_key="planner")
    conn.close()
    paths = [turns_path]
    if with_timeline:
        timeline = build_timeline_db(tmp_path / "timeline.db")
        conn = sqlite3.connect(timeline)
        conn.execute("INSERT INTO timeline_conversations (conv_id, session_id, runtime_key, created_at_ms,"
                     " last_activity_ms) VALUES ('team/alpha', 's/1', 'planner', 10, 20)")
        conn.commit()
        conn.close()
        paths.append(timeline)
    ds = datasette(paths)
    status, body = await get_json(ds, "/api/debug/conversations/team%2Falpha")
    assert status == 200
    assert (body["conv_id"], body["session_id"], body["resolved_runtime_key"]) == ("team/alpha", "s/1", "planner")


@pytest.mark.asyncio
async def test_configured_timeline_database(tmp_path):
    turns_path = build_turns_db(tmp_path / "turns.db")
    other = build_timeline_db(tmp_path / "other.db")
    chosen = build_timeline_db(tmp_path / "chosen.db")
    conn = sqlite3.connect(chosen)
    conn.execute("DELETE FROM timeline_conversations WHERE conv_id != 'conv-past'")
    conn.commit()
    conn.close()
    ds = datasette([turns_path, other, chosen], plugin_config={
        "datasette-runtime-truth": {"database": "turns", "timeline_database": "chosen"},
    })
    status, body = await get_json(ds, "/api/debug/conversations")
    assert status == 200
    assert [item["conv_id"] for item in body["items"]] == ["conv-past"]


@pytest.mark.asyncio
async def test_list_is_capped_at_max_returned_rows(paths):
    ds = datasette([paths[0]], settings={"max_returned_rows": 2})
    status, body = await get_json(ds, "/api/debug/conversations")
    assert status == 200
    assert [item["conv_id"] for item in body["items"]] == ["conv-tie", "conv-tie-b"]


@pytest.mark.asyncio
async def test_timeline_store_alone_still_lists_conversations(paths):
    ds = datasette([paths[1]])
    status, body = await get_json(ds, "/api/debug/conversations")
    assert status == 200
    assert [item["conv_id"] for item in body["items"]] == ["conv-past", "conv-1", "conv-quiet"]
    assert await get_json(ds, "/api/debug/turns?conv_id=conv-1") == (
        404, {"ok": False, "error": "turn store not enabled", "status": 404})
