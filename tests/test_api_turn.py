"""GET /api/debug/turn/{conv_id}/{session_id}/{turn_id}."""

import pytest

from api_helpers import USER, add_snapshot, datasette, get_json
from builders import create_store, insert_turn

DRAFT_YAML = """\
blocks:
    - id: b-user
      kind: user
      payload:
        text: hello
      role: user
id: turn-1
metadata:
    geppetto.inference_id@v1: inf-1
    geppetto.runtime@v1:
        runtime_key: inventory@v1
"""

METADATA = {"geppetto.inference_id@v1": "inf-1", "geppetto.runtime@v1": {"runtime_key": "inventory@v1"}}
USER_BLOCK = {"id": "b-user", "kind": "user", "payload": {"text": "hello"}, "role": "user"}
ANSWER_BLOCK = {"id": "b-answer", "kind": "llm_text", "payload": {"text": "hi there"}, "role": "assistant"}


@pytest.mark.asyncio
@pytest.mark.parametrize("prefix", ["", "/-/runtime-truth/turns"])
async def test_detail_lists_final_before_draft(ds, prefix):
    status, body = await get_json(ds, f"{prefix}/api/debug/turn/conv-1/session-1/turn-1")
    assert status == 200
    assert list(body) == ["conv_id", "items", "session_id", "turn_id"]
    assert (body["conv_id"], body["session_id"], body["turn_id"]) == ("conv-1", "session-1", "turn-1")
    final, draft = body["items"]
    assert list(final) == ["phase", "created_at_ms", "runtime_key", "resolved_runtime_key", "inference_id",
                           "payload", "parsed"]
    assert final["phase"] == "final" and final["created_at_ms"] == 200
    assert final["parsed"] == {"blocks": [USER_BLOCK, ANSWER_BLOCK], "id": "turn-1", "metadata": METADATA}
    assert draft == {
        "phase": "draft",
        "created_at_ms": 100,
        "runtime_key": "inventory@v1",
        "resolved_runtime_key": "inventory@v1",
        "inference_id": "inf-1",
        "payload": DRAFT_YAML,
        "parsed": {"blocks": [USER_BLOCK], "id": "turn-1", "metadata": METADATA},
    }


@pytest.mark.asyncio
async def test_every_phase_of_a_turn_shows_the_turn_rows_runtime(ds):
    status, body = await get_json(ds, "/api/debug/turn/conv-1/session-2/turn-2")
    assert status == 200
    assert [(i["phase"], i["runtime_key"], i["inference_id"]) for i in body["items"]] == [
        ("final", "planner@v1", "inf-2"), ("pre_inference", "planner@v1", "inf-2"),
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("path, status, error", [
    ("/api/debug/turn", 400, "expected /api/debug/turn/:convId/:sessionId/:turnId"),
    ("/api/debug/turn/", 400, "expected /api/debug/turn/:convId/:sessionId/:turnId"),
    ("/api/debug/turn/conv-1/session-1", 400, "expected /api/debug/turn/:convId/:sessionId/:turnId"),
    ("/api/debug/turn/conv-1//turn-1", 400, "expected /api/debug/turn/:convId/:sessionId/:turnId"),
    ("/api/debug/turn/conv-1/session-1/turn-1/extra", 400, "expected /api/debug/turn/:convId/:sessionId/:turnId"),
    ("/api/debug/turn/conv-1/session-1/%FF", 400, "expected /api/debug/turn/:convId/:sessionId/:turnId"),
    ("/api/debug/turn/conv-1/session-2/turn-1", 404, "turn not found"),
    ("/api/debug/turn/conv-1/session-1/nope", 404, "turn not found"),
])
async def test_errors(ds, path, status, error):
    assert await get_json(ds, path) == (status, {"ok": False, "error": error, "status": status})


@pytest.mark.asyncio
async def test_finds_a_turn_older_than_the_newest_500_snapshots(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    for n in range(600):
        insert_turn(conn, "c", "s", f"t{n:03}", created=n, updated=n, runtime_key="agent", inference_id=f"i{n}")
        add_snapshot(conn, "c", "s", f"t{n:03}", "final", n, [USER])
    conn.close()
    ds = datasette([path])
    status, body = await get_json(ds, "/api/debug/turn/c/s/t000")
    assert status == 200
    assert [(i["phase"], i["created_at_ms"], i["inference_id"]) for i in body["items"]] == [("final", 0, "i0")]


@pytest.mark.asyncio
async def test_escaped_slashes_inside_ids(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    insert_turn(conn, "team/alpha", "s/1", "t 1", created=10, updated=20, runtime_key="planner")
    add_snapshot(conn, "team/alpha", "s/1", "t 1", "final", 20, [USER])
    conn.close()
    ds = datasette([path])
    status, body = await get_json(ds, "/api/debug/turn/team%2Falpha/s%2F1/t%201")
    assert status == 200
    assert (body["conv_id"], body["session_id"], body["turn_id"]) == ("team/alpha", "s/1", "t 1")
    assert [(i["phase"], i["runtime_key"]) for i in body["items"]] == [("final", "planner")]
    status, body = await get_json(ds, "/api/debug/turns?conv_id=team%2Falpha")
    assert [item["turn_id"] for item in body["items"]] == ["t 1"]


@pytest.mark.asyncio
async def test_turn_without_snapshots_and_metadata_that_is_not_json(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    insert_turn(conn, "c", "s", "t", metadata='{"geppetto.runtime@v1": {', data="NaN")
    insert_turn(conn, "c", "s", "u", metadata='["planner"]')
    add_snapshot(conn, "c", "s", "u", "final", 3, [("b", "user", "", {})])
    conn.close()
    ds = datasette([path])
    assert await get_json(ds, "/api/debug/turn/c/s/t") == (
        200, {"conv_id": "c", "items": [], "session_id": "s", "turn_id": "t"})
    status, body = await get_json(ds, "/api/debug/turn/c/s/u")
    assert status == 200
    assert body["items"][0]["parsed"] == {"blocks": [{"id": "b", "kind": "user"}], "id": "u", "metadata": ["planner"]}
    assert body["items"][0]["payload"] == "blocks:\n    - id: b\n      kind: user\nid: u\nmetadata:\n    - planner\n"
    status, body = await get_json(ds, "/api/debug/turns?conv_id=c")
    assert [item["turn_id"] for item in body["items"]] == ["u"]
