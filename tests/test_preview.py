"""The migration preview: what a migrate run would write, row by row, before it runs."""

import csv
import io
import sqlite3

import pytest
from datasette_test import Datasette

from builders import create_store, insert_turn
from datasette_runtime_truth.migration import preview
from datasette_runtime_truth.migration.apply import migrate_path


async def all_rows(ds, limit=37):
    """Every preview row, following the JSON's next links."""
    rows, url = [], f"/-/runtime-truth/turns/preview.json?limit={limit}"
    while url:
        response = await ds.client.get(url)
        assert response.status_code == 200, response.text
        data = response.json()
        rows += data["rows"]
        url = data["next"]
    return rows


def stored(path):
    conn = sqlite3.connect(path)
    try:
        return {(c, s, t): (r, i) for c, s, t, r, i in conn.execute(
            "SELECT conv_id, session_id, turn_id, runtime_key, inference_id FROM turns")}
    finally:
        conn.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("rules", ["canonical", "legacy"])
async def test_preview_values_are_what_migrate_writes(sample, rules):
    config = {"datasette-runtime-truth": {"rules": rules}}
    ds = Datasette([sample.turns_path], plugin_config=config)
    rows = await all_rows(ds)
    assert len(rows) == 300  # a pre-cutover store: every row is a candidate
    keys = [(r["conv_id"], r["session_id"], r["turn_id"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == 300
    actions = {r["action"] for r in rows}
    assert actions == {"writes", "unchanged", "skipped: bad metadata"}
    migrate_path(sample.turns_path, rules=rules)
    after = stored(sample.turns_path)
    for row in rows:
        assert after[(row["conv_id"], row["session_id"], row["turn_id"])] == (
            row["new_runtime_key"], row["new_inference_id"]), row
    # After the migration, the preview lists only rows still missing a value, each left as it is.
    ds = Datasette([sample.turns_path], plugin_config=config)
    left = await all_rows(ds)
    assert [(r["turn_id"], r["action"]) for r in left] == [
        (r["turn_id"], "unchanged" if r["action"] == "writes" else r["action"])
        for r in rows if not (r["new_runtime_key"] and r["new_inference_id"])]


@pytest.mark.asyncio
async def test_preview_page_csv_and_paging(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "migrated")
    insert_turn(conn, "c1", "s1", "t1", {"geppetto.runtime@v1": {"runtime_key": "agent"},
                                         "inference_id": "inf-1"}, runtime_key="", inference_id="")
    insert_turn(conn, "c1", "s1", "t2", "not json", runtime_key="", inference_id="")
    insert_turn(conn, "c2", "s1", "t1", {}, runtime_key="", inference_id="", updated=1773964800000)
    insert_turn(conn, "c3", "s1", "t1", {}, runtime_key="done", inference_id="x")
    ds = Datasette([str(path)])
    first = (await ds.client.get("/-/runtime-truth/turns/preview.json?limit=2")).json()
    assert [(r["turn_id"], r["action"], r["new_runtime_key"], r["new_inference_id"]) for r in first["rows"]] == [
        ("t1", "writes", "agent", "inf-1"), ("t2", "skipped: bad metadata", "", "")]
    assert first["next"] == ("/-/runtime-truth/turns/preview.json?limit=2&after_conv=c1"
                             "&after_session=s1&after_turn=t2")
    second = (await ds.client.get(first["next"])).json()
    assert [(r["conv_id"], r["action"]) for r in second["rows"]] == [("c2", "unchanged")]
    assert second["next"] is None
    page = await ds.client.get("/-/runtime-truth/turns/preview?limit=2")
    assert page.status_code == 200
    assert 'class="rt-next" href="/-/runtime-truth/turns/preview?limit=2&amp;after_conv=c1' in page.text
    assert 'data-label="action"' in page.text
    second_page = (await ds.client.get("/-/runtime-truth/turns/preview?limit=2&after_conv=c1&after_session=s1&after_turn=t2")).text
    assert "2026-03-20 00:00:00 UTC" in second_page  # c2's updated_at_ms, in UTC
    response = await ds.client.get("/-/runtime-truth/turns/preview.csv")
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["turn_id"] for r in table] == ["t1", "t2", "t1"]
    assert table[0]["new_runtime_key"] == "agent" and table[2]["updated_at_ms"] == "1773964800000"


def test_page_size_is_capped():
    assert preview.page_size("5") == 5
    assert preview.page_size("0") == preview.page_size("abc") == preview.page_size(None) == 50
    assert preview.page_size("999999") == 1000
    assert preview.page_size("999999", cap=200) == 200
