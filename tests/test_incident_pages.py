"""Issue 11's pages as an operator in an incident uses them: before the migration, under any
database name, with readable times, complete lists, and explanations true of the data."""

import json
import re
import sqlite3

import pytest
from click.testing import CliRunner
from datasette.cli import cli
from datasette_test import Datasette

from builders import DEMO, create_store, insert_turn
from conftest import line_config
from datasette_runtime_truth.canned import queries
from datasette_runtime_truth.upstream import backfill
from datasette_runtime_truth.migration.apply import migrate_path
from datasette_runtime_truth.sample import CUTOVER_MS


def hrefs(html):
    return [h.replace("&amp;", "&") for h in re.findall(r'href="(/[^"#]*)"', html)]


@pytest.mark.asyncio
async def test_unmigrated_report_has_no_dead_links(sample):
    ds = Datasette([sample.turns_path, sample.timeline_path])
    page = (await ds.client.get("/-/runtime-truth")).text
    links = set(hrefs(page))
    assert "/-/runtime-truth/turns/preview" in links
    assert not {"/turns/missing_backfill_rows", "/turns/missing_backfill_count",
                "/turns/runtime_switches", "/turns/backfill_coverage"} & links
    assert "runtime_switches runs once the store is migrated" in page
    assert "backfill_coverage runs once the store is migrated" in page
    for link in sorted(links):
        response = await ds.client.get(link)
        assert response.status_code < 400, (link, response.status_code)
    data = (await ds.client.get("/-/runtime-truth.json")).json()["databases"][0]
    assert data["coverage_url"] is None
    assert {c["id"]: c["url"] for c in data["checks"]}["would_fill"] == "/-/runtime-truth/turns/preview?only=writes"


@pytest.mark.asyncio
async def test_every_pointer_mismatch_and_switch_is_listed(tmp_path, samples):
    sample = samples.copy(tmp_path, **DEMO)  # three pointer mismatches: more than a page of two
    migrate_path(sample.turns_path)
    ds = Datasette([sample.turns_path, sample.timeline_path])
    data = (await ds.client.get("/-/runtime-truth.json")).json()["databases"][0]
    checks = {c["id"]: c for c in data["checks"]}
    for check_id, url in (("pointer", "/-/runtime-truth/turns/pointers.json?limit=2"),
                          ("runtime_switches", "/-/runtime-truth/turns/switches.json?limit=2")):
        seen = []
        while url:
            page = (await ds.client.get(url)).json()
            seen += page["rows"]
            url = page["next"]
        assert len(seen) == checks[check_id]["value"] > 2
        assert len({row["conv_id"] for row in seen}) == len(seen)
        assert [item["conv_id"] for item in checks[check_id]["items"]] == [
            row["conv_id"] for row in seen][:len(checks[check_id]["items"])]
    assert checks["pointer"]["all_url"] == "/-/runtime-truth/turns/pointers"
    report = (await ds.client.get("/-/runtime-truth")).text
    assert "newest turn's runtime_key" in report


@pytest.mark.asyncio
async def test_queries_get_the_plugin_pages_under_any_database_name(tmp_path):
    path = tmp_path / "prod-turns.db"
    conn = create_store(path, "current")
    insert_turn(conn, "c1", "s1", "t1", updated=1773964800000, runtime_key="agent", inference_id="i1")
    insert_turn(conn, "c1", "s1", "t2", updated=1773964801000, runtime_key="planner", inference_id="i2")
    ds = Datasette([str(path)])
    page = (await ds.client.get("/prod-turns/runtime_history?conv_id=c1")).text
    assert 'class="runtime-truth-meaning"' in page
    assert 'class="rt-timeline"' in page and 'data-switches="1"' in page
    assert "switched from agent" in page
    assert "2026-03-20 00:00:01 UTC" in page
    count = (await ds.client.get("/prod-turns/missing_backfill_count")).text
    assert 'class="runtime-truth-good-answer"' in count
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    config = {"databases": {"other": {"queries": {"q": "select 1 as one"}}}}
    plain = Datasette([str(other)], **line_config(config))
    response = await plain.client.get("/other/q")
    assert response.status_code == 200 and "runtime-truth-meaning" not in response.text


@pytest.mark.asyncio
async def test_times_are_utc_and_odd_values_stay_raw(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    for n, stamp in enumerate([1773964800000, 10**17, -5, "abc", 1.5]):
        insert_turn(conn, "c1", "s1", f"t{n}", updated=stamp, runtime_key="agent", inference_id="inf")
    ds = Datasette([str(path)])
    for url in ("/turns/inference_lookup?inference_id=inf", "/turns/runtime_history?conv_id=c1",
                "/-/runtime-truth/turns/conversation?conv_id=c1", "/turns/turns"):
        response = await ds.client.get(url)
        assert response.status_code == 200, url
        assert "2026-03-20 00:00:00 UTC" in response.text, url
        assert "100000000000000000" in response.text, url
    rows = (await ds.client.get("/turns/inference_lookup.json?inference_id=inf&_shape=array")).json()
    assert [row["updated_at_ms"] for row in rows] == [-5, 1.5, 1773964800000, 10**17, "abc"]


@pytest.mark.asyncio
async def test_conversation_page_has_pointer_turns_and_crumbs(sample):
    migrate_path(sample.turns_path)
    conv_id = sqlite3.connect(sample.timeline_path).execute(
        "SELECT conv_id, runtime_key FROM timeline_conversations ORDER BY conv_id LIMIT 1").fetchone()
    ds = Datasette([sample.turns_path, sample.timeline_path])
    page = (await ds.client.get(f"/-/runtime-truth/turns/conversation?conv_id={conv_id[0]}")).text
    assert f'<code class="rt-pointer-key">{conv_id[1]}</code>' in page
    turns = sqlite3.connect(sample.turns_path).execute(
        "SELECT count(*) FROM turns WHERE conv_id = ?", [conv_id[0]]).fetchone()[0]
    assert page.count('<td data-label="turn_id">') == turns
    assert '<a href="/">home</a> / <a href="/turns">turns</a>' in page
    missing = await ds.client.get("/-/runtime-truth/turns/conversation")
    assert missing.status_code == 400
    assert missing.headers["content-type"].startswith("text/html")
    assert "missing conv_id" in missing.text


def test_check_json_has_the_urls_the_report_gives_a_store_not_migrated(sample):
    result = CliRunner().invoke(cli, ["runtime-truth", "check", sample.turns_path, "--json"])
    [data] = json.loads(result.output)["databases"]
    assert (data["coverage_url"], data["preview_url"]) == (None, "/-/runtime-truth/turns/preview")
    assert {c["id"]: c["url"] for c in data["checks"]} == {
        "columns": "/turns/turns_schema", "indexes": "/turns/turns_runtime_indexes",
        "missing_runtime_key": "/-/runtime-truth/turns/preview?only=runtime_key",
        "missing_inference_id": "/-/runtime-truth/turns/preview?only=inference_id",
        "bad_metadata": "/-/runtime-truth/turns/preview?only=bad_metadata",
        "would_fill": "/-/runtime-truth/turns/preview?only=writes",
        "runtime_switches": None, "pointer": None, "journal": None}


@pytest.mark.asyncio
async def test_explanations_hold_on_the_demo_data(tmp_path, samples):
    sample = samples.copy(tmp_path / "pre", **DEMO)
    migrate_path(sample.turns_path)
    conn = sqlite3.connect(sample.turns_path)
    # missing_backfill_rows / _count: after a migrate run, every row listed is one the configured
    # rules recover nothing from (or whose metadata is not valid JSON).
    rows = conn.execute("SELECT turn_metadata_json, runtime_key, inference_id FROM turns "
                        "WHERE runtime_key = '' OR inference_id = ''").fetchall()
    assert rows
    assert [backfill.decide(*row, "canonical").values for row in rows] == [None] * len(rows)
    # "none recoverable with the canonical rules" is about those rules: the legacy rules recover more.
    assert sum(backfill.decide(*row, "legacy").action == backfill.WRITES for row in rows) > 0
    ds = Datasette([sample.turns_path])
    figure = {c["id"]: c for c in (await ds.client.get("/-/runtime-truth.json")).json()["databases"][0]["checks"]}
    assert "none recoverable by a migrate run with the canonical rules" in figure["missing_runtime_key"]["figure"]
    # backfill_coverage: a store migrated from pre-cutover history has days after the cutover with
    # turns carrying neither value, as the good answer says; on a store the new server wrote after
    # the cutover ("partial"), those turns carry both.
    after = conn.execute("SELECT sum(runtime_key = '' AND inference_id = '') FROM turns "
                         "WHERE updated_at_ms >= ?", [CUTOVER_MS]).fetchone()[0]
    assert after > 0
    partial = samples.copy(tmp_path / "partial", **DEMO, shape="partial")
    missing_after = sqlite3.connect(partial.turns_path).execute(
        "SELECT count(*) FROM turns WHERE updated_at_ms >= ? AND (runtime_key = '' OR inference_id = '')",
        [CUTOVER_MS]).fetchone()[0]
    assert missing_after == 0
    good = queries.BY_NAME["backfill_coverage"].good_answer
    assert "migrated from pre-cutover history" in good and "`with_neither` is expected" in good
    # Descriptions on the database page are plain text: no literal backticks.
    page = (await ds.client.get("/turns")).text
    for query in queries.QUERIES:
        assert "`" not in query.description
    assert "`runtime_key" not in page
