"""GET /api/timeline and /api/debug/timeline: every golden case of the upstream, byte for byte."""

import asyncio
import http.client
import json
from pathlib import Path
import re
import shutil
import sqlite3
from urllib.parse import quote

from datasette_test import actor_cookie
import pytest

from api_helpers import build_timeline_db, build_turns_db, datasette, get_json
from conftest import ON_065, line_config
from browser import datasette_server
from datasette_runtime_truth.upstream import schema

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"
CASES = [json.loads(line) for line in (GOLDEN / "timeline-cases.jsonl").read_text(encoding="utf-8").split("\n") if line]
SERVER_TIME = re.compile(rb'"serverTimeMs":"([0-9]+)"')


@pytest.fixture(scope="module")
def golden_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("golden")
    shutil.copy(GOLDEN / "timeline-golden.db", folder / "timeline.db")
    return folder / "timeline.db"


def request_of(case):
    """(method, path with query) of a golden case, the query exactly as the upstream got it."""
    flags = case["flags"]
    method = flags[flags.index("--method") + 1] if "--method" in flags else "GET"
    query = case["query"]
    if query is None:
        query = "conv_id=" + quote(flags[flags.index("--conv-id") + 1], safe="")
    path = "/api/debug/timeline" if case["name"] == "debug-alias-same-handler" else "/api/timeline"
    return method, f"{path}?{query}"


def pinned(body):
    """``body`` with the clock's value replaced by the one the golden run pinned."""
    return SERVER_TIME.sub(b'"serverTimeMs":"1771500009999"', body, count=1)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
async def test_golden_case(case, golden_db, tmp_path):
    paths = [tmp_path / "empty.db"] if "--no-service" in case["flags"] else [golden_db]
    if "--no-service" in case["flags"]:
        sqlite3.connect(paths[0]).close()
    ds = datasette(paths)
    method, url = request_of(case)
    response = await ds.client.request(method, url)
    assert response.status_code == case["status"]
    assert response.headers["content-type"].startswith("application/json")
    if case["status"] == 200:
        assert SERVER_TIME.search(response.content) is not None
        assert pinned(response.content) == case["body"].encode("utf-8")
    elif method == "HEAD":
        assert response.content == b""
    else:
        message = case["body"].rstrip("\n")
        assert response.json() == {"ok": False, "error": message, "status": case["status"]}


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/api/timeline/", "/api/debug/timeline/", "/api/timeline/any/thing",
                                  "/-/runtime-truth/timeline/api/timeline",
                                  "/-/runtime-truth/timeline/api/debug/timeline/"])
async def test_every_path_answers_the_same(golden_db, path):
    ds = datasette([golden_db])
    response = await ds.client.get(f"{path}?conv_id=conv-lower&since_version=6")
    assert response.status_code == 200
    assert pinned(response.content) == (
        b'{"convId":"conv-lower","version":"10","serverTimeMs":"1771500009999","entities":'
        b'[{"id":"y","kind":"k","createdAtMs":"2","updatedAtMs":"1796281182825"}]}')


def store_with_entities(path, rows, version=None):
    conn = sqlite3.connect(path)
    conn.executescript(schema.TIMELINE_DDL + schema.TIMELINE_ENTITY_DDL)
    conn.executemany("INSERT INTO timeline_entities VALUES ('c', ?, 'k', ?, 1, ?, ?)", rows)
    if version is not None:
        conn.execute("INSERT INTO timeline_versions VALUES ('c', ?)", (version,))
    conn.commit()
    conn.close()
    return path


@pytest.mark.asyncio
async def test_a_turns_database_reads_the_timeline_store_paired_with_it(tmp_path):
    turns = build_turns_db(tmp_path / "turns.db")
    store = store_with_entities(tmp_path / "timeline.db", [("e", 1, 1, '{"id":"e","kind":"k"}')], 3)
    ds = datasette([turns, store])
    for prefix in ("", "/-/runtime-truth/turns", "/-/runtime-truth/timeline"):
        response = await ds.client.get(f"{prefix}/api/timeline?conv_id=c")
        assert pinned(response.content) == (
            b'{"convId":"c","version":"3","serverTimeMs":"1771500009999","entities":[{"id":"e","kind":"k"}]}')
    status, body = await get_json(ds, "/-/runtime-truth/nope/api/timeline?conv_id=c")
    assert (status, body["error"]) == (404, "not a turns database or timeline store: nope")


@pytest.mark.asyncio
async def test_a_store_without_the_entity_tables_answers_an_empty_snapshot(tmp_path):
    ds = datasette([build_timeline_db(tmp_path / "timeline.db")])
    response = await ds.client.get("/api/timeline?conv_id=conv-1")
    assert response.status_code == 200
    assert pinned(response.content) == b'{"convId":"conv-1","serverTimeMs":"1771500009999"}'
    conn = sqlite3.connect(tmp_path / "timeline.db")
    assert [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == [
        "timeline_conversations"]


@pytest.mark.asyncio
async def test_no_timeline_store_is_404_whatever_the_query(tmp_path):
    ds = datasette([build_turns_db(tmp_path / "turns.db")])
    for path in ("/api/timeline", "/api/timeline?conv_id=c", "/-/runtime-truth/turns/api/timeline"):
        status, body = await get_json(ds, path)
        assert (status, body["error"]) == (404, "timeline service not enabled")


@pytest.mark.asyncio
async def test_props_nested_past_the_recursion_limit_fail_as_upstream(tmp_path):
    # 9,998 nested Values fit protobuf-go's limit of 10,000 messages with the entity and its
    # Struct; one more does not.
    fits = '{"id":"d","kind":"k","props":' + '{"d":' * 9998 + "1" + "}" * 9999
    too_deep = '{"id":"d","kind":"k","props":' + '{"d":' * 9999 + "1" + "}" * 10000
    store = store_with_entities(tmp_path / "timeline.db", [("a", 1, 1, fits), ("b", 2, 2, too_deep)], 2)
    ds = datasette([store])
    response = await ds.client.get("/api/timeline?conv_id=c&limit=1")
    assert response.status_code == 200
    assert pinned(response.content) == (
        b'{"convId":"c","version":"2","serverTimeMs":"1771500009999","entities":[{"id":"d","kind":"k",'
        b'"props":' + b'{"d":' * 9998 + b"1" + b"}" * 9999 + b"]}")
    status, body = await get_json(ds, "/api/timeline?conv_id=c")
    assert (status, body["error"]) == (500, "timeline snapshot failed")


@pytest.mark.asyncio
async def test_an_id_that_is_not_utf8_fails_where_upstream_marshalled_it(tmp_path):
    store = store_with_entities(tmp_path / "timeline.db", [], None)
    ds = datasette([store])
    status, body = await get_json(ds, "/api/timeline?conv_id=%FF")
    assert (status, body["error"]) == (500, "timeline marshal failed")


@pytest.mark.asyncio
async def test_concurrent_requests_each_get_their_own_answer(golden_db):
    ds = datasette([golden_db])
    queries = ["conv_id=conv-1", "conv_id=conv-many", "conv_id=conv-ties", "conv_id=conv-garbage"] * 5
    responses = await asyncio.gather(*(ds.client.get(f"/api/timeline?{query}") for query in queries))
    expected = {case["query"]: case for case in CASES if case["name"] in
                ("full", "many-default-limit", "ties", "garbage-entity-json")}
    for query, response in zip(queries, responses):
        assert response.status_code == expected[query]["status"]
        if response.status_code == 200:
            assert pinned(response.content) == expected[query]["body"].encode("utf-8")


@pytest.mark.asyncio
async def test_options_answers_the_preflight(golden_db):
    ds = datasette([golden_db], settings={}, cors=True)
    response = await ds.client.options("/api/timeline?conv_id=conv-1")
    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["Allow"] == "GET, OPTIONS"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.asyncio
@pytest.mark.parametrize("path, status, message", [
    ("/api/debug/events/conv-1", 404, "conversation not found"),
    ("/api/debug/events/conv%2F1", 404, "conversation not found"),
    ("/-/runtime-truth/turns/api/debug/events/a%2Fb", 404, "conversation not found"),
    ("/api/debug/events/", 400, "missing conv_id"),
    ("/api/debug/events", 400, "missing conv_id"),
    ("/api/debug/events//a/", 404, "conversation not found"),
    ("/api/debug/events/%20", 400, "invalid conv_id"),
])
async def test_events_has_no_live_conversation(tmp_path, path, status, message):
    ds = datasette([build_turns_db(tmp_path / "turns.db")])
    response = await ds.client.get(path)
    assert response.status_code == status
    assert response.json() == {"ok": False, "error": message, "status": status}


# --- permissions --------------------------------------------------------------------------------

ROOT = {"id": "root"}
RULES = ["allow"] + ([] if ON_065 else ["permissions"])


def as_root(ds):
    return {"ds_actor": actor_cookie(ds, ROOT)}


@pytest.mark.asyncio
async def test_instance_wide_deny(golden_db):
    ds = datasette([golden_db], **line_config({"allow": ROOT}))
    assert await get_json(ds, "/api/timeline?conv_id=conv-1") == (403, {
        "ok": False, "error": "forbidden: you may not view the timeline database", "status": 403})
    assert (await ds.client.get("/api/timeline?conv_id=conv-1", cookies=as_root(ds))).status_code == 200


@pytest.mark.asyncio
async def test_allow_block_on_the_timeline_store(tmp_path, golden_db):
    turns = build_turns_db(tmp_path / "turns.db")
    ds = datasette([turns, golden_db], databases={"timeline": {"allow": ROOT}})
    for url in ("/api/timeline?conv_id=conv-1", "/-/runtime-truth/turns/api/timeline?conv_id=conv-1"):
        assert await get_json(ds, url) == (403, {
            "ok": False, "error": "forbidden: you may not view the timeline database", "status": 403})
        assert (await ds.client.get(url, cookies=as_root(ds))).status_code == 200


@pytest.mark.asyncio
async def test_allow_block_on_the_named_turns_database(tmp_path, golden_db):
    turns = build_turns_db(tmp_path / "turns.db")
    ds = datasette([turns, golden_db], databases={"turns": {"allow": ROOT}})
    status, body = await get_json(ds, "/-/runtime-truth/turns/api/timeline?conv_id=conv-1")
    assert (status, body["error"]) == (403, "forbidden: you may not view the turns database")
    assert (await ds.client.get("/api/timeline?conv_id=conv-1")).status_code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("table", ["timeline_entities", "timeline_versions"])
async def test_each_table_read_is_checked(golden_db, table, rule):
    block = {"allow": ROOT} if rule == "allow" else {"permissions": {"view-table": ROOT}}
    ds = datasette([golden_db], databases={"timeline": {"tables": {table: block}}})
    assert (await ds.client.get(f"/timeline/{table}.json")).status_code == 403  # Datasette's own answer
    assert await get_json(ds, "/api/timeline?conv_id=conv-1") == (403, {
        "ok": False, "error": f"forbidden: you may not view the {table} table of the timeline database",
        "status": 403})
    response = await ds.client.get("/api/timeline?conv_id=conv-1", cookies=as_root(ds))
    assert pinned(response.content) == CASES[0]["body"].encode("utf-8")


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["POST", "HEAD", "PUT"])
async def test_events_refuses_every_method_but_get(tmp_path, method):
    ds = datasette([build_turns_db(tmp_path / "turns.db")])
    response = await ds.client.request(method, "/api/debug/events/conv-1")
    assert (response.status_code, response.headers["Allow"]) == (405, "GET, OPTIONS")
    if method != "HEAD":
        assert response.json() == {"ok": False, "error": "method not allowed", "status": 405}


def test_a_real_server_hands_the_query_over_raw(golden_db):
    # http.client sends the request target as written; uvicorn must pass its query on untouched.
    raw_cases = [case for case in CASES if case["query"] is not None and not case["flags"]
                 and case["name"] in ("semicolon-pair-dropped", "bad-escape-pair-dropped", "conv-plus-space",
                                      "limit-plus-encoded", "conv-trimmed", "conv-repeated-first-wins")]
    assert len(raw_cases) == 6
    with datasette_server(golden_db) as base:
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=30)
        for case in raw_cases:
            connection.request("GET", f"/api/timeline?{case['query']}")
            response = connection.getresponse()
            body = response.read()
            assert response.status == case["status"], case["name"]
            if case["status"] == 200:
                assert pinned(body) == case["body"].encode("utf-8"), case["name"]
        connection.close()
