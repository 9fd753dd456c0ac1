"""Permissions, CORS, methods, and no 5xx for any input."""

import json
import sqlite3
import urllib.parse

from datasette_test import actor_cookie
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from api_helpers import build_timeline_db, build_turns_db, datasette, get_json
from conftest import line_config
from datasette_runtime_truth.upstream import schema

ROUTES = [
    "/api/debug/conversations",
    "/api/debug/conversations/conv-1",
    "/api/debug/turns?conv_id=conv-1",
    "/api/debug/turn/conv-1/session-1/turn-1",
]
BOTH_LINES = [prefix + route for prefix in ("", "/-/runtime-truth/turns") for route in ROUTES]


@pytest.mark.asyncio
@pytest.mark.parametrize("url", BOTH_LINES)
async def test_allow_block_on_the_turns_database(paths, url):
    ds = datasette(paths, databases={"turns": {"allow": {"id": "root"}}})
    status, body = await get_json(ds, url)
    assert (status, body) == (403, {"ok": False, "error": "forbidden: you may not view the turns database",
                                    "status": 403})
    cookies = {"ds_actor": actor_cookie(ds, {"id": "root"})}
    assert (await ds.client.get(url, cookies=cookies)).status_code == 200
    assert (await ds.client.get(url, cookies={"ds_actor": actor_cookie(ds, {"id": "eve"})})).status_code == 403


@pytest.mark.asyncio
async def test_allow_block_on_the_timeline_store_guards_conversations(paths):
    ds = datasette(paths, databases={"timeline": {"allow": {"id": "root"}}})
    for url in ("/api/debug/conversations", "/api/debug/conversations/conv-past"):
        assert await get_json(ds, url) == (403, {
            "ok": False, "error": "forbidden: you may not view the timeline database", "status": 403})
    assert (await ds.client.get("/api/debug/turns?conv_id=conv-1")).status_code == 200


@pytest.mark.asyncio
async def test_instance_wide_deny(paths):
    ds = datasette(paths, **line_config({"allow": False}))
    assert (await ds.client.get("/api/debug/turns?conv_id=conv-1")).status_code == 403


@pytest.mark.asyncio
@pytest.mark.parametrize("cors", [True, False])
async def test_cors_headers_only_with_cors(paths, cors):
    ds = datasette(paths, cors=cors)
    for url in BOTH_LINES + ["/api/debug/turns", "/api/debug/turn/x"]:
        response = await ds.client.get(url)
        assert response.headers.get("access-control-allow-origin") == ("*" if cors else None), url


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("url", BOTH_LINES)
async def test_other_methods_get_405(paths, method, url):
    ds = datasette(paths)
    response = await getattr(ds.client, method)(url)
    assert response.status_code == 405
    assert response.json() == {"ok": False, "error": "method not allowed", "status": 405}
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.asyncio
async def test_unknown_database_under_the_per_database_prefix(paths):
    ds = datasette(paths)
    assert await get_json(ds, "/-/runtime-truth/timeline/api/debug/turns?conv_id=conv-1") == (
        404, {"ok": False, "error": "not a turns database: timeline", "status": 404})
    assert await get_json(ds, "/-/runtime-truth/nope/api/debug/conversations") == (
        404, {"ok": False, "error": "not a turns database: nope", "status": 404})


@pytest.mark.asyncio
async def test_several_turns_databases(tmp_path):
    first = build_turns_db(tmp_path / "first.db")
    second = build_turns_db(tmp_path / "second.db", "pre-cutover")
    ds = datasette([first, second])
    status, body = await get_json(ds, "/api/debug/turns?conv_id=conv-1")
    assert status == 404
    assert body["error"] == (
        "turn store not enabled: several turns databases are attached (first, second); set the "
        "plugin's database option or use /-/runtime-truth/<database>/api/debug/..."
    )
    status, body = await get_json(ds, "/-/runtime-truth/second/api/debug/turn/conv-1/session-1/turn-1")
    assert (status, body["items"][0]["runtime_key"]) == (200, "")
    configured = datasette([first, second], plugin_config={"datasette-runtime-truth": {"database": "second"}})
    status, body = await get_json(configured, "/api/debug/turn/conv-1/session-1/turn-1")
    assert (status, body["items"][0]["runtime_key"]) == (200, "")


# --- no input gives a 5xx -----------------------------------------------------------------------

SEGMENT_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
def _no_dot_segment(segment):
    """Clients resolve "." and ".." segments before sending (RFC 3986), so those never arrive."""
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


RAW_SEGMENT = st.one_of(
    st.text(SEGMENT_CHARS, max_size=12).map(lambda text: urllib.parse.quote(text, safe="")),
    st.text(SEGMENT_CHARS, max_size=12).map(lambda text: urllib.parse.quote(text, safe="%:@!$&'()*,;=")),
    st.sampled_from(["", "%", "%2", "%zz", "%FF", "%C0%AF", "%00", "%2F", "%2E%2E", "~2F", "conv-1",
                     "session-1", "turn-1", "turns"]),
).map(_no_dot_segment)
QUERY_KEYS = st.sampled_from(["conv_id", "session_id", "phase", "since_ms", "limit", "other"])
QUERY_VALUES = st.one_of(
    st.text(SEGMENT_CHARS, max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "conv-1", "session-1", "final", "1e3", "0x10", "NaN", "--1", "1_000", "٣"]),
)
QUERY = st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=6).map(urllib.parse.urlencode)


@st.composite
def urls(draw):
    prefix = draw(st.sampled_from(["", "/-/runtime-truth/turns", "/-/runtime-truth/{}"]))
    if "{}" in prefix:
        prefix = prefix.format(draw(RAW_SEGMENT.filter(bool)))
    segments = draw(st.lists(RAW_SEGMENT, max_size=4))
    route = draw(st.sampled_from(["conversations", "conversations/", "turns", "turn", "turn/"]))
    path = f"{prefix}/api/debug/{route}"
    if route.endswith("/"):
        path += "/".join(segments)
    return f"{path}?{draw(QUERY)}"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz")
    return datasette([build_turns_db(directory / "turns.db"), build_timeline_db(directory / "timeline.db")])


@pytest.mark.asyncio
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=urls())
async def test_any_input_gets_a_2xx_or_4xx_json_answer(fuzzed, url):
    response = await fuzzed.client.get(url)
    assert 200 <= response.status_code < 500, (url, response.status_code, response.text)
    body = json.loads(response.text)
    if response.status_code >= 400:
        assert body == {"ok": False, "error": body["error"], "status": response.status_code}


@pytest.mark.asyncio
async def test_a_query_over_the_time_limit_is_a_json_503(tmp_path):
    path = tmp_path / "turns.db"
    conn = sqlite3.connect(path)
    conn.executescript(schema.CURRENT_TURNS_DDL)
    conn.executemany(
        "INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, updated_at_ms) VALUES (?, 's', 't', 0, ?)",
        [(f"conv-{n:06}", n) for n in range(20_000)],
    )
    conn.commit()
    conn.close()
    ds = datasette([path])
    await ds.invoke_startup()
    # Lowered after startup, whose own schema queries must not be the ones interrupted.
    ds.sql_time_limit_ms = 1
    assert await get_json(ds, "/api/debug/conversations") == (503, {
        "ok": False,
        "error": "the query took longer than sql_time_limit_ms (1 ms): raise it with --setting sql_time_limit_ms N",
        "status": 503,
    })


@pytest.mark.asyncio
async def test_a_store_that_is_not_upstream_shaped_is_a_json_500(tmp_path):
    path = tmp_path / "turns.db"
    conn = sqlite3.connect(path)
    conn.executescript(schema.CURRENT_TURNS_DDL + "CREATE TABLE blocks (block_id TEXT);"
                       "CREATE TABLE turn_block_membership (conv_id TEXT);")
    conn.close()
    ds = datasette([path])
    status, body = await get_json(ds, "/api/debug/turns?conv_id=c")
    assert status == 500
    assert body["error"].startswith("database error: no such column: ")
