"""Issue 17, part 1: one box for any id, on both Datasette lines, through the public surface."""

from datasette_test import actor_cookie
import pytest

from api_helpers import build_timeline_db, build_turns_db, datasette, get_json
from datasette_runtime_truth.storage import id_lookup

ROOT = {"id": "root"}
ALL_KINDS = ["turn_id", "inference_id", "conv_id", "session_id"]


# --- what is taken out of the pasted text --------------------------------------------------------

@pytest.mark.parametrize("text, ids", [
    ("turn-1", ["turn-1"]),
    ("  turn-1\u3000", ["turn-1"]),
    ("plain", ["plain"]),
    ("", []),
    (" \t ", []),
    ("http://127.0.0.1:8001/api/debug/turn/conv-1/session-2/turn-2", ["conv-1", "session-2", "turn-2"]),
    ("/-/runtime-truth/turns/api/debug/turns?session_id=session-t&since_ms=100", ["session-t"]),
    ("level=info msg=\"turn saved\" conv_id=85d19341-93a4-42e8-be7a-d2f1ee306b36 "
     "turn_id=E96D2E3E-3DE6-47D5-A8FD-C084F39635B1 took=3ms",
     ["85d19341-93a4-42e8-be7a-d2f1ee306b36", "E96D2E3E-3DE6-47D5-A8FD-C084F39635B1"]),
    ("conv%2D1", ["conv-1"]),
    ("map[inference_id:85d19341-93a4-42e8-be7a-d2f1ee306b36]",
     ["map[inference_id:85d19341-93a4-42e8-be7a-d2f1ee306b36]", "85d19341-93a4-42e8-be7a-d2f1ee306b36"]),
    ("conv_id=conv-1", ["conv_id=conv-1", "conv-1"]),
    ("a b a b", []),
    ("inf-1 inf-1 inf-2", ["inf-1", "inf-2"]),
])
def test_tokens(text, ids):
    assert id_lookup.tokens(text) == ids


def test_ids_named_by_their_place_are_searched_as_that_kind_only():
    assert id_lookup.parse("http://h/api/debug/turn/c%2F1/s-1/t-1?x=1") == [
        ("c/1", "conv_id"), ("s-1", "session_id"), ("t-1", "turn_id")]
    assert id_lookup.parse("/api/debug/conversations/conv-9") == [("conv-9", "conv_id")]
    line = ('{"level":"info","convId":"85d19341-93a4-42e8-be7a-d2f1ee306b36",'
            '"inference_id":"7a436450-613e-4b56-85fa-3fadff720bc4","other":"e96d2e3e-3de6-47d5-a8fd-c084f39635b1"}')
    assert id_lookup.parse(line) == [("85d19341-93a4-42e8-be7a-d2f1ee306b36", "conv_id"),
                                  ("7a436450-613e-4b56-85fa-3fadff720bc4", "inference_id"),
                                  ("e96d2e3e-3de6-47d5-a8fd-c084f39635b1", None)]
    assert id_lookup.parse("conv_id=x1 turn_id=x1") == [("x1", None)]  # named twice, differently
    assert id_lookup.parse("turn-1") == [("turn-1", None)]


def test_tokens_keep_at_most_ten_ids_and_refuse_a_huge_text():
    assert id_lookup.tokens(" ".join(f"id-{n}" for n in range(30))) == [f"id-{n}" for n in range(10)]
    assert id_lookup.tokens("x" * 10_000) == ["x" * 500]
    with pytest.raises(id_lookup.BadQuery, match="10,001 characters"):
        id_lookup.tokens("x" * 10_001)


# --- the route -------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["current", "pre-cutover"])
def store(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    turns = build_turns_db(folder / "turns.db", request.param)
    return request.param, datasette([turns, build_timeline_db(folder / "timeline.db")])


def turn_2(shape, matched):
    migrated = shape == "current"
    return {
        "database": "turns", "conv_id": "conv-1", "session_id": "session-2", "turn_id": "turn-2",
        "runtime_key": "planner@v1" if migrated else "", "inference_id": "inf-2" if migrated else "",
        "updated_at_ms": 400, "matched": matched,
        "snapshots": [{"phase": "final", "created_at_ms": 400}, {"phase": "pre_inference", "created_at_ms": 300}],
        "updated_at": "1970-01-01T00:00:00.400Z",
        "history_url": "/turns/runtime_history?conv_id=conv-1" if migrated else None,  # 400 before
        "timeline_url": "/-/runtime-truth/turns/conversation?conv_id=conv-1",
        "debug_url": "/-/runtime-truth/turns/api/debug/turn/conv-1/session-2/turn-2",
    }


def kinds(shape):
    return ALL_KINDS if shape == "current" else ["turn_id", "conv_id", "session_id"]


@pytest.mark.asyncio
async def test_a_turn_id_finds_its_turn(store):
    shape, ds = store
    for prefix in ("/-/runtime-truth", "/-/runtime-truth/turns"):
        status, body = await get_json(ds, prefix + "/search.json?q=turn-2")
        assert status == 200
        assert body == {
            "q": "turn-2", "ids": ["turn-2"], "named": {},
            "searched": [{"database": "turns", "kinds": kinds(shape),
                          "note": None if shape == "current" else
                          "inference_id is not searched here: this store has no inference_id column "
                          "until it is migrated."}],
            "turns": [turn_2(shape, [{"kind": "turn_id", "id": "turn-2"}])], "more": [], "problem": None}


@pytest.mark.asyncio
async def test_each_kind_of_id_finds_its_turns(store):
    shape, ds = store

    async def found(q):
        status, body = await get_json(ds, "/-/runtime-truth/search.json", params={"q": q})
        assert status == 200
        return [(t["turn_id"], [m["kind"] for m in t["matched"]]) for t in body["turns"]]

    assert await found("conv-1") == [("turn-2", ["conv_id"]), ("turn-1", ["conv_id"])]
    assert await found("session-t") == [("turn-a", ["session_id"]), ("turn-b", ["session_id"])]
    assert await found("inf-u") == ([("turn-u", ["inference_id"])] if shape == "current" else [])
    assert await found("turn-u") == [("turn-u", ["turn_id"])]
    assert await found("turn-1')--") == [("turn-1", ["turn_id"])]  # a value, never SQL


@pytest.mark.asyncio
async def test_a_debug_url_puts_the_turn_it_names_first(store):
    shape, ds = store
    q = "http://127.0.0.1:8001/api/debug/turn/conv-1/session-2/turn-2"
    status, body = await get_json(ds, "/-/runtime-truth/search.json", params={"q": q})
    assert status == 200 and body["ids"] == ["conv-1", "session-2", "turn-2"]
    assert body["named"] == {"conv-1": "conv_id", "session-2": "session_id", "turn-2": "turn_id"}
    assert body["turns"][0] == turn_2(shape, [{"kind": "conv_id", "id": "conv-1"},
                                              {"kind": "session_id", "id": "session-2"},
                                              {"kind": "turn_id", "id": "turn-2"}])
    assert [(t["turn_id"], len(t["matched"])) for t in body["turns"]] == [("turn-2", 3), ("turn-1", 1)]


@pytest.mark.asyncio
async def test_the_page_lists_the_turn_with_its_links(store):
    shape, ds = store
    response = await ds.client.get("/-/runtime-truth/search?q=turn-2")
    assert response.status_code == 200
    html = response.text
    assert "<title>Turns for turn-2</title>" in html
    assert 'value="turn-2"' in html  # the box keeps what was searched
    assert 'data-turns="1"' in html and "1 turn found" in html
    assert ('href="/turns/runtime_history?conv_id=conv-1"' in html) == (shape == "current")
    assert 'href="/-/runtime-truth/turns/conversation?conv_id=conv-1"' in html
    assert 'href="/-/runtime-truth/turns/api/debug/turn/conv-1/session-2/turn-2"' in html
    assert "<li>final · " in html and "<li>pre_inference · " in html
    assert ("planner@v1" in html) == (shape == "current")
    assert 'href="/-/runtime-truth/search.json?q=turn-2"' in html


@pytest.mark.asyncio
async def test_no_match_says_so_and_what_was_searched(store):
    shape, ds = store
    response = await ds.client.get("/-/runtime-truth/search?q=no-such-id-7")
    assert response.status_code == 200
    assert ("No turn has <code>no-such-id-7</code> as its turn_id, inference_id, conv_id, "
            "session_id.") in response.text
    assert f"as {', '.join(kinds(shape))} in <strong>turns</strong>" in response.text
    status, body = await get_json(ds, "/-/runtime-truth/search.json?q=no-such-id-7")
    assert (status, body["ids"], body["turns"]) == (200, ["no-such-id-7"], [])


@pytest.mark.asyncio
@pytest.mark.parametrize("q, status, says", [
    (None, 200, "Paste a <code>turn_id</code>"),
    ("", 200, "Paste a <code>turn_id</code>"),
    ("a b c", 200, "Nothing in “a b c” looks like an id."),
    ("x" * 10_001, 400, "the search text is 10,001 characters"),
    ("\U0001F600\u202e\ufeff\x00", 200, "No turn has <code>\U0001F600\u202e\ufeff</code>"),
    ("%ED%A0%80", 200, "No turn has <code>\ufffd\ufffd\ufffd</code>"),
    ("' OR 1=1 --", 200, "Nothing in “&#39; OR 1=1 --” looks like an id."),
])
async def test_bad_input_is_a_clear_page(store, q, status, says):
    _, ds = store
    params = {} if q is None else {"q": q}
    response = await ds.client.get("/-/runtime-truth/search", params=params)
    assert response.status_code == status
    assert says in response.text
    json_status, body = await get_json(ds, "/-/runtime-truth/search.json", params=params)
    assert json_status == status and body["turns"] == []


@pytest.mark.asyncio
async def test_many_matches_are_capped_and_say_where_the_rest_are(tmp_path):
    from builders import create_store, insert_turn
    conn = create_store(tmp_path / "turns.db", "current")
    for n in range(id_lookup.PER_LOOKUP + 5):
        insert_turn(conn, "conv-big", "session-big", f"turn-{n:03d}", metadata="{}", created=n + 1,
                    updated=n + 1, runtime_key="agent", inference_id=f"inf-{n}")
    conn.commit()
    conn.close()
    ds = datasette([tmp_path / "turns.db"])
    status, body = await get_json(ds, "/-/runtime-truth/search.json?q=conv-big")
    assert status == 200 and len(body["turns"]) == id_lookup.PER_LOOKUP
    assert body["turns"][0]["turn_id"] == "turn-104"  # newest first
    assert body["more"] == [{"database": "turns", "kind": "conv_id", "id": "conv-big",
                             "url": "/turns/runtime_history?conv_id=conv-big",
                             "link_label": "its runtime history"}]
    html = (await ds.client.get("/-/runtime-truth/search?q=conv-big")).text
    assert ("conv_id <code>conv-big</code> names more than 100 turns in turns: 100 are listed; "
            '<a href="/turns/runtime_history?conv_id=conv-big">its runtime history</a> lists them all.') in html


# --- permissions -----------------------------------------------------------------------------

def table_allow(table):
    return {"turns": {"tables": {table: {"allow": ROOT}}}}


@pytest.mark.asyncio
async def test_search_needs_the_turns_table(tmp_path):
    ds = datasette([build_turns_db(tmp_path / "turns.db")], databases=table_allow("turns"))
    root = {"ds_actor": actor_cookie(ds, ROOT)}
    for url in ("/-/runtime-truth/search.json?q=turn-1", "/-/runtime-truth/turns/search.json?q=turn-1",
                "/-/runtime-truth/search?q=turn-1", "/-/runtime-truth/turns/search?q=turn-1"):
        assert (await ds.client.get(url)).status_code == 403, url
        assert (await ds.client.get(url, cookies=root)).status_code == 200, url


@pytest.mark.asyncio
async def test_snapshots_need_turn_block_membership(tmp_path):
    ds = datasette([build_turns_db(tmp_path / "turns.db")], databases=table_allow("turn_block_membership"))
    status, body = await get_json(ds, "/-/runtime-truth/search.json?q=turn-1")
    assert (status, body["turns"][0]["snapshots"]) == (200, None)
    assert "<em class=\"rt-none\">not shown</em>" in (await ds.client.get("/-/runtime-truth/search?q=turn-1")).text
    status, body = await get_json(ds, "/-/runtime-truth/search.json?q=turn-1",
                                  cookies={"ds_actor": actor_cookie(ds, ROOT)})
    assert body["turns"][0]["snapshots"] == [{"phase": "final", "created_at_ms": 200},
                                             {"phase": "draft", "created_at_ms": 100}]


@pytest.mark.asyncio
async def test_the_box_is_in_the_header_of_every_plugin_page(tmp_path):
    ds = datasette([build_turns_db(tmp_path / "turns.db"), build_timeline_db(tmp_path / "timeline.db")])
    await ds.invoke_startup()
    box = '<form class="rt-search" action="/-/runtime-truth/search" method="get" role="search">'
    for url in ("/-/runtime-truth", "/-/runtime-truth/turns/conversation?conv_id=conv-1",
                "/-/runtime-truth/turns/preview", "/-/runtime-truth/turns/pointers",
                "/-/runtime-truth/turns/switches", "/-/runtime-truth/search",
                "/turns/runtime_history?conv_id=conv-1", "/turns/inference_lookup?inference_id=inf-1",
                "/turns/turns_schema"):
        response = await ds.client.get(url)
        assert response.status_code == 200, url
        assert response.text.count(box) == 1, url


@pytest.mark.asyncio
async def test_search_json_carries_cors_headers_with_cors(tmp_path):
    ds = datasette([build_turns_db(tmp_path / "turns.db")], cors=True)
    response = await ds.client.get("/-/runtime-truth/search.json?q=turn-1")
    assert response.headers["access-control-allow-origin"] == "*"
    head = await ds.client.head("/-/runtime-truth/search?q=turn-1")
    assert (head.status_code, head.content) == (200, b"")
