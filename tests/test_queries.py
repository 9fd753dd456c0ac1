"""The canned queries' rows, on both Datasette lines, with the plugin and with the no-plugin bundle."""

import re
import sqlite3

import pytest

from conftest import ON_065
from datasette_runtime_truth.canned import queries
from datasette_runtime_truth.upstream import schema
from query_store import BEFORE, CUTOVER, MODES, build_store, serving


async def rows(ds, path):
    response = await ds.client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def history_row(turn_id, runtime_key, inference_id, updated, session_id, switched_from=""):
    return {"turn_id": turn_id, "runtime_key": runtime_key, "inference_id": inference_id,
            "updated_at_ms": updated, "session_id": session_id, "switched_from": switched_from}


CONV_1_HISTORY = [
    history_row("t1", "inventory@v1", "inf-1", BEFORE + 1000, "s-1"),
    history_row("t2", "", "", BEFORE + 2000, "s-1"),
    history_row("t3", "planner@v1", "inf-3", CUTOVER + 3000, "s-1", "inventory@v1"),
    history_row("t4", "inventory@v1", "inf-4", CUTOVER + 4000, "s-2", "planner@v1"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_every_query_answers(history_store, mode):
    async with serving(history_store, mode) as ds:
        schema_rows = await rows(ds, "/turns/turns_schema.json?_shape=array")
        assert [row["name"] for row in schema_rows] == [
            "conv_id", "session_id", "turn_id", "turn_created_at_ms", "turn_metadata_json",
            "turn_data_json", "updated_at_ms", "runtime_key", "inference_id"]
        assert schema_rows[7:] == [
            {"cid": 7, "name": "runtime_key", "type": "TEXT", "notnull": 1, "dflt_value": "''", "pk": 0},
            {"cid": 8, "name": "inference_id", "type": "TEXT", "notnull": 1, "dflt_value": "''", "pk": 0},
        ]
        assert await rows(ds, "/turns/turns_runtime_indexes.json?_shape=array") == [
            {"name": "turns_by_conv_inference_updated",
             "sql": "CREATE INDEX turns_by_conv_inference_updated ON turns(conv_id, inference_id, updated_at_ms DESC)"},
            {"name": "turns_by_conv_runtime_updated",
             "sql": "CREATE INDEX turns_by_conv_runtime_updated ON turns(conv_id, runtime_key, updated_at_ms DESC)"},
        ]
        assert await rows(ds, "/turns/runtime_history.json?conv_id=conv-1&_shape=array") == CONV_1_HISTORY
        assert await rows(ds, "/turns/missing_backfill_count.json?_shape=array") == [
            {"missing_runtime_or_inference": 2}]
        assert await rows(ds, "/turns/missing_backfill_rows.json?_shape=array") == [
            {"conv_id": "conv-1", "session_id": "s-1", "turn_id": "t2", "turn_metadata_json": '{"turn": "t2"}'},
            {"conv_id": "conv-2", "session_id": "s-3", "turn_id": "t1", "turn_metadata_json": '{"turn": "t1"}'},
        ]
        assert await rows(ds, "/turns/runtime_switches.json?_shape=array") == [
            {"conv_id": "conv/3 & co", "runtime_keys": 2, "switches": 1,
             "runtime_order": "default -> planner", "first_switch_turn_id": "t 2",
             "first_switch_at_ms": CUTOVER + 7000},
            {"conv_id": "conv-1", "runtime_keys": 2, "switches": 2,
             "runtime_order": "inventory@v1 -> planner@v1 -> inventory@v1",
             "first_switch_turn_id": "t3", "first_switch_at_ms": CUTOVER + 3000},
        ]
        assert await rows(ds, "/turns/inference_lookup.json?inference_id=inf-7&_shape=array") == [
            {"conv_id": "conv/3 & co", "session_id": "s/4", "turn_id": "t 1", "runtime_key": "default",
             "inference_id": "inf-7", "updated_at_ms": CUTOVER + 6000},
            {"conv_id": "conv/3 & co", "session_id": "s/4", "turn_id": "t 2", "runtime_key": "planner",
             "inference_id": "inf-7", "updated_at_ms": CUTOVER + 7000},
        ]
        assert await rows(ds, "/turns/inference_lookup.json?inference_id=inf-3&_shape=array") == [
            {"conv_id": "conv-1", "session_id": "s-1", "turn_id": "t3", "runtime_key": "planner@v1",
             "inference_id": "inf-3", "updated_at_ms": CUTOVER + 3000}]
        assert await rows(ds, "/turns/backfill_coverage.json?_shape=array") == [
            {"day": "2026-03-19", "turns": 3, "with_runtime_key": 1, "with_inference_id": 2, "with_neither": 1},
            {"day": "2026-03-20", "turns": 5, "with_runtime_key": 5, "with_inference_id": 5, "with_neither": 0},
        ]


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_csv_gives_the_same_rows(history_store, mode):
    async with serving(history_store, mode) as ds:
        response = await ds.client.get("/turns/runtime_history.csv?conv_id=conv-1")
        assert response.status_code == 200
        assert response.text.splitlines() == [
            "turn_id,runtime_key,inference_id,updated_at_ms,session_id,switched_from",
            f"t1,inventory@v1,inf-1,{BEFORE + 1000},s-1,",
            f"t2,,,{BEFORE + 2000},s-1,",
            f"t3,planner@v1,inf-3,{CUTOVER + 3000},s-1,inventory@v1",
            f"t4,inventory@v1,inf-4,{CUTOVER + 4000},s-2,planner@v1",
        ]
        response = await ds.client.get("/turns/missing_backfill_count.csv")
        assert response.text.splitlines() == ["missing_runtime_or_inference", "2"]


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", [
    "/turns/runtime_history.json?_shape=array",
    "/turns/runtime_history.json?conv_id=&_shape=array",
    "/turns/inference_lookup.json?_shape=array",
    "/turns/inference_lookup.json?inference_id=&_shape=array",
    "/turns/runtime_history.json?conv_id=%27%20OR%201%3D1%20--&_shape=array",
    "/turns/runtime_history.json?conv_id=conv-1%27%3B%20DROP%20TABLE%20turns%3B%20--&_shape=array",
    "/turns/inference_lookup.json?inference_id=%25&_shape=array",
    "/turns/inference_lookup.json?inference_id=%27%20OR%20%27%27%3D%27&_shape=array",
])
async def test_missing_or_hostile_parameter_gives_no_rows(history_store, mode, path):
    async with serving(history_store, mode) as ds:
        assert await rows(ds, path) == []
        assert await rows(ds, "/turns/missing_backfill_count.json?_shape=array") == [
            {"missing_runtime_or_inference": 2}]


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_missing_backfill_rows_pages_by_key(tmp_path, mode):
    path = build_store(tmp_path / "turns.db")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE turns SET runtime_key = '', inference_id = ''")
    conn.commit()
    conn.close()
    every = [
        ("conv-1", "s-1", "t1"), ("conv-1", "s-1", "t2"), ("conv-1", "s-1", "t3"), ("conv-1", "s-2", "t4"),
        ("conv-2", "s-3", "t1"), ("conv-2", "s-3", "t2"), ("conv/3 & co", "s/4", "t 1"),
        ("conv/3 & co", "s/4", "t 2"),
    ]

    def keys(found):
        return [(row["conv_id"], row["session_id"], row["turn_id"]) for row in found]

    async with serving(path, mode) as ds:
        base = "/turns/missing_backfill_rows.json?_shape=array"
        assert keys(await rows(ds, base)) == every
        assert keys(await rows(ds, base + "&limit=3")) == every[:3]
        assert keys(await rows(ds, base + "&limit=3&after_conv=conv-1&after_session=s-2&after_turn=t4")) == every[4:7]
        assert keys(await rows(ds, base + "&after_conv=conv/3+%26+co&after_session=s/4&after_turn=t+2")) == []
        for junk in ("abc", "-5", "0", "%27%3B"):
            assert keys(await rows(ds, base + f"&limit={junk}")) == every


def query_plan(path, name, params):
    conn = sqlite3.connect(path)
    try:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + queries.BY_NAME[name].sql, params)]
    finally:
        conn.close()


UPSTREAM_CONV_INDEXES = [index.name for index in schema.INDEXES if index.name.startswith("turns_by_conv")]


def test_runtime_history_searches_an_upstream_index(history_store):
    # The conversation is read twice (its turns, and its known runtimes for the switch rule),
    # each time through an upstream index.
    plan = query_plan(history_store, "runtime_history", {"conv_id": "conv-1"})
    searches = [line for line in plan if re.fullmatch(r"SEARCH turns USING (COVERING )?INDEX (\w+) \(conv_id=\?\)", line)]
    assert len(searches) == 2, plan
    assert all(line.split(" INDEX ")[1].split(" ")[0] in UPSTREAM_CONV_INDEXES for line in searches)
    assert not [line for line in plan if line.startswith("SCAN turns")]


def test_inference_lookup_searches_the_inference_index(history_store):
    plan = query_plan(history_store, "inference_lookup", {"inference_id": "inf-3"})
    assert "SEARCH turns USING INDEX turns_by_conv_inference_updated (conv_id=? AND inference_id=?)" in plan
    assert not [line for line in plan if line.startswith("SCAN turns")], plan


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_queries_run_where_arbitrary_sql_is_not_allowed(history_store, mode):
    async with serving(history_store, mode, settings={"default_allow_sql": False}) as ds:
        assert (await ds.client.get("/turns?sql=select+1" if ON_065
                                    else "/turns/-/query?sql=select+1")).status_code == 403
        assert await rows(ds, "/turns/runtime_history.json?conv_id=conv-1&_shape=array") == CONV_1_HISTORY


@pytest.mark.asyncio
async def test_plugin_registers_the_queries_on_every_configured_database(tmp_path):
    build_store(tmp_path / "prod_turns.db")
    async with serving(tmp_path / "prod_turns.db", "plugin",
                       plugin_config={"datasette-runtime-truth": {"database": "prod_turns"}}) as ds:
        assert await rows(ds, "/prod_turns/runtime_history.json?conv_id=conv-1&_shape=array") == CONV_1_HISTORY


@pytest.mark.asyncio
async def test_plugin_leaves_other_databases_alone(tmp_path):
    conn = sqlite3.connect(tmp_path / "other.db")
    conn.execute("CREATE TABLE t (conv_id TEXT)")
    conn.execute("INSERT INTO t VALUES ('conv-1')")
    conn.commit()
    conn.close()
    async with serving(tmp_path / "other.db", "plugin") as ds:
        assert (await ds.client.get("/other/runtime_history.json?conv_id=conv-1")).status_code == 404
        page = await ds.client.get("/other/t")
        assert "runtime_history" not in page.text
