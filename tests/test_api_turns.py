"""GET /api/debug/turns."""

import sqlite3

import pytest

from api_helpers import build_turns_db, datasette, get_json
from builders import create_store, insert_turn

TURN_1_FINAL_YAML = """\
blocks:
    - id: b-user
      kind: user
      payload:
        text: hello
      role: user
    - id: b-answer
      kind: llm_text
      payload:
        text: hi there
      role: assistant
id: turn-1
metadata:
    geppetto.inference_id@v1: inf-1
    geppetto.runtime@v1:
        runtime_key: inventory@v1
"""


def keys(body):
    return [(item["turn_id"], item["phase"], item["created_at_ms"]) for item in body["items"]]


@pytest.mark.asyncio
@pytest.mark.parametrize("prefix", ["", "/-/runtime-truth/turns"])
async def test_upstream_filtered_list(ds, prefix):
    url = f"{prefix}/api/debug/turns?conv_id=conv-1&session_id=session-1&phase=final&since_ms=100&limit=1"
    status, body = await get_json(ds, url)
    assert status == 200
    assert body == {
        "conv_id": "conv-1",
        "items": [{
            "conv_id": "conv-1",
            "session_id": "session-1",
            "turn_id": "turn-1",
            "phase": "final",
            "runtime_key": "inventory@v1",
            "resolved_runtime_key": "inventory@v1",
            "inference_id": "inf-1",
            "created_at_ms": 200,
            "payload": TURN_1_FINAL_YAML,
        }],
        "phase": "final",
        "session_id": "session-1",
        "since_ms": 100,
    }
    assert list(body) == ["conv_id", "items", "phase", "session_id", "since_ms"]
    assert list(body["items"][0]) == [
        "conv_id", "session_id", "turn_id", "phase", "runtime_key", "resolved_runtime_key", "inference_id",
        "created_at_ms", "payload",
    ]


@pytest.mark.asyncio
async def test_envelope_echoes_since_ms_and_omits_limit(ds):
    status, body = await get_json(ds, "/api/debug/turns?conv_id=conv-1&since_ms=42&limit=3")
    assert status == 200
    assert {key: value for key, value in body.items() if key != "items"} == {
        "conv_id": "conv-1", "phase": "", "session_id": "", "since_ms": 42,
    }


@pytest.mark.asyncio
async def test_runtime_switch_each_turn_keeps_its_own_runtime(ds):
    status, body = await get_json(ds, "/api/debug/turns?conv_id=conv-1")
    assert status == 200
    assert [(i["turn_id"], i["phase"], i["created_at_ms"], i["runtime_key"], i["inference_id"])
            for i in body["items"]] == [
        ("turn-2", "final", 400, "planner@v1", "inf-2"),
        ("turn-2", "pre_inference", 300, "planner@v1", "inf-2"),
        ("turn-1", "final", 200, "inventory@v1", "inf-1"),
        ("turn-1", "draft", 100, "inventory@v1", "inf-1"),
    ]


@pytest.mark.asyncio
async def test_session_filter_alone(ds):
    status, body = await get_json(ds, "/api/debug/turns?session_id=session-2")
    assert status == 200
    assert keys(body) == [("turn-2", "final", 400), ("turn-2", "pre_inference", 300)]
    assert (body["conv_id"], body["session_id"]) == ("", "session-2")


@pytest.mark.asyncio
async def test_ties_on_time_are_ordered_by_ids(ds):
    status, body = await get_json(ds, "/api/debug/turns?conv_id=conv-tie")
    assert status == 200
    assert keys(body) == [("turn-a", "final", 700), ("turn-b", "final", 700)]


@pytest.mark.asyncio
@pytest.mark.parametrize("query, expected", [
    ("conv_id=conv-1&since_ms=300", [("turn-2", "final", 400), ("turn-2", "pre_inference", 300)]),
    ("conv_id=conv-1&since_ms=0", [("turn-2", "final", 400), ("turn-2", "pre_inference", 300),
                                   ("turn-1", "final", 200), ("turn-1", "draft", 100)]),
    ("conv_id=conv-1&since_ms=-5&limit=1", [("turn-2", "final", 400)]),
    ("conv_id=conv-1&phase=draft", [("turn-1", "draft", 100)]),
    ("conv_id=conv-1&phase=DRAFT", []),
    ("conv_id=conv-1&session_id=session-9", []),
    ("conv_id=nope", []),
    ("conv_id=conv-1&limit=", [("turn-2", "final", 400), ("turn-2", "pre_inference", 300),
                               ("turn-1", "final", 200), ("turn-1", "draft", 100)]),
    ("conv_id=conv-1&limit=%2B2", [("turn-2", "final", 400), ("turn-2", "pre_inference", 300)]),
])
async def test_filters(ds, query, expected):
    status, body = await get_json(ds, f"/api/debug/turns?{query}")
    assert status == 200
    assert keys(body) == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("query, echoed", [
    ("conv_id=%20conv-1%09&phase=%C2%A0final%E3%80%80&since_ms=-5",
     {"conv_id": "conv-1", "session_id": "", "phase": "final", "since_ms": 0}),
    ("session_id=%0Asession-1%20&since_ms=0", {"conv_id": "", "session_id": "session-1", "phase": "", "since_ms": 0}),
    ("conv_id=%E2%80%8Bconv-1", {"conv_id": "\u200bconv-1", "session_id": "", "phase": "", "since_ms": 0}),
])
async def test_filters_are_trimmed_like_upstream_and_since_ms_is_never_negative(ds, query, echoed):
    status, body = await get_json(ds, f"/api/debug/turns?{query}")
    assert status == 200
    assert {key: body[key] for key in echoed} == echoed
    assert bool(body["items"]) == (echoed["conv_id"] == "conv-1" or echoed["session_id"] == "session-1")


@pytest.mark.asyncio
@pytest.mark.parametrize("query", ["conv_id=%20%20", "session_id=%09&conv_id=%E3%80%80"])
async def test_blank_ids_are_missing_ids(ds, query):
    status, body = await get_json(ds, f"/api/debug/turns?{query}")
    assert (status, body["error"]) == (400, "missing conv_id or session_id")


@pytest.mark.asyncio
@pytest.mark.parametrize("query, error", [
    ("", "missing conv_id or session_id"),
    ("phase=final", "missing conv_id or session_id"),
    ("conv_id=&session_id=", "missing conv_id or session_id"),
    ("conv_id=conv-1&limit=abc", "invalid limit: expected a whole number of at least 1, got 'abc'"),
    ("conv_id=conv-1&limit=0", "invalid limit: expected a whole number of at least 1, got '0'"),
    ("conv_id=conv-1&limit=-3", "invalid limit: expected a whole number of at least 1, got '-3'"),
    ("conv_id=conv-1&limit=1.5", "invalid limit: expected a whole number of at least 1, got '1.5'"),
    ("conv_id=conv-1&since_ms=soon", "invalid since_ms: expected a whole number, got 'soon'"),
    ("conv_id=conv-1&since_ms=99999999999999999999", "invalid since_ms: expected a whole number, got '99999999999999999999'"),
    ("conv_id=conv-1&since_ms=%20100", "invalid since_ms: expected a whole number, got ' 100'"),
])
async def test_bad_requests(ds, query, error):
    assert await get_json(ds, f"/api/debug/turns?{query}") == (400, {"ok": False, "error": error, "status": 400})


@pytest.mark.asyncio
async def test_default_limit_is_200_and_limit_is_capped_at_max_returned_rows(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    conn.executemany(
        "INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?)",
        [("conv-big", "s", f"t{n:04}", n, n) for n in range(1, 1201)],
    )
    conn.execute("INSERT INTO blocks (block_id, content_hash, kind, first_seen_at_ms) VALUES ('b', 'h', 'user', 0)")
    conn.executemany(
        "INSERT INTO turn_block_membership VALUES ('conv-big', 's', ?, 'final', ?, 0, 'b', 'h')",
        [(f"t{n:04}", n) for n in range(1, 1201)],
    )
    conn.commit()
    conn.close()
    ds = datasette([path])
    for query, count in (("", 200), ("&limit=5", 5), ("&limit=100000", 1000),
                         ("&limit=99999999999999999999999999", 1000)):
        status, body = await get_json(ds, f"/api/debug/turns?conv_id=conv-big{query}")
        assert (status, len(body["items"])) == (200, count)
    small = datasette([path], settings={"max_returned_rows": 3})
    status, body = await get_json(small, "/api/debug/turns?conv_id=conv-big")
    assert [item["turn_id"] for item in body["items"]] == ["t1200", "t1199", "t1198"]


@pytest.mark.asyncio
async def test_pre_cutover_store_answers_with_empty_values(tmp_path):
    ds = datasette([build_turns_db(tmp_path / "turns.db", "pre-cutover")])
    status, body = await get_json(ds, "/api/debug/turns?conv_id=conv-1&phase=final")
    assert status == 200
    assert [(i["turn_id"], i["runtime_key"], i["inference_id"]) for i in body["items"]] == [
        ("turn-2", "", ""), ("turn-1", "", ""),
    ]
    assert body["items"][1]["payload"] == TURN_1_FINAL_YAML


@pytest.mark.asyncio
async def test_store_with_only_a_turns_table_lists_one_item_per_turn(tmp_path):
    path = str(tmp_path / "turns.db")
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE turns (conv_id TEXT NOT NULL, session_id TEXT NOT NULL, turn_id TEXT NOT NULL,"
        " turn_created_at_ms INTEGER NOT NULL, turn_metadata_json TEXT NOT NULL DEFAULT '{}',"
        " runtime_key TEXT NOT NULL DEFAULT '', updated_at_ms INTEGER NOT NULL,"
        " PRIMARY KEY (conv_id, session_id, turn_id));"
    )
    insert_turn(conn, "c", "s", "t-old", metadata={"a": 1}, created=5, updated=10, runtime_key="planner")
    insert_turn(conn, "c", "s", "t-new", created=15, updated=20)
    conn.close()
    ds = datasette([path])
    status, body = await get_json(ds, "/api/debug/turns?conv_id=c")
    assert status == 200
    assert body["items"] == [
        {"conv_id": "c", "session_id": "s", "turn_id": "t-new", "phase": "", "runtime_key": "",
         "inference_id": "", "created_at_ms": 20, "payload": "blocks: []\nid: t-new\n"},
        {"conv_id": "c", "session_id": "s", "turn_id": "t-old", "phase": "", "runtime_key": "planner",
         "resolved_runtime_key": "planner", "inference_id": "", "created_at_ms": 10, "payload": "blocks: []\nid: t-old\nmetadata:\n    a: 1\n"},
    ]
    status, body = await get_json(ds, "/api/debug/turns?conv_id=c&phase=final")
    assert (status, body["items"]) == (200, [])
    status, body = await get_json(ds, "/api/debug/turns?conv_id=c&since_ms=15")
    assert [item["turn_id"] for item in body["items"]] == ["t-new"]


@pytest.mark.asyncio
async def test_no_turn_store(tmp_path):
    path = str(tmp_path / "other.db")
    sqlite3.connect(path).execute("CREATE TABLE notes (id INTEGER)").connection.close()
    ds = datasette([path])
    for url in ("/api/debug/turns?conv_id=c", "/api/debug/turn/c/s/t"):
        assert await get_json(ds, url) == (404, {"ok": False, "error": "turn store not enabled", "status": 404})
    assert await get_json(ds, "/api/debug/conversations") == (200, {"items": []})
