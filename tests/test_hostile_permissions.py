"""Strict operators: the operator's query config wins, and table-level permissions hold on every
page, route and query of the plugin (issue 13, findings 1 and 3), on both Datasette lines."""

from datasette_test import actor_cookie
import pytest

from api_helpers import ON_065, build_timeline_db, build_turns_db, datasette, get_json

ROOT = {"id": "root"}
OPERATOR_SQL = "select turn_id, conv_id from turns where conv_id = :conv_id order by turn_id desc"


def cookies(ds, actor):
    return {"ds_actor": actor_cookie(ds, actor)}


@pytest.fixture
def paths(tmp_path):
    return build_turns_db(tmp_path / "turns.db"), build_timeline_db(tmp_path / "timeline.db")


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
