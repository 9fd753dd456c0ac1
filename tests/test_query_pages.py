"""The query pages people share: templates, cell links, database actions, the not-migrated hint."""

import html
import re

import pytest

from conftest import ON_065
from datasette_runtime_truth.canned import queries
from query_store import CUTOVER, MODES, build_store, serving

PAGES = {
    "turns_schema": "", "turns_runtime_indexes": "", "runtime_history": "?conv_id=conv-1",
    "missing_backfill_count": "", "missing_backfill_rows": "", "runtime_switches": "",
    "inference_lookup": "?inference_id=inf-3", "backfill_coverage": "",
}
# On an unmigrated store their SQL fails: Datasette 0.65 answers that with a 400, 1.0 with a 200.
NEEDS_THE_COLUMNS = set(PAGES) - {"turns_schema", "turns_runtime_indexes"}


@pytest.fixture
def old_store(tmp_path):
    return build_store(tmp_path / "turns.db", shape="pre-cutover")


def history_rows(page):
    """(turn_id, runtime_key cell, runtime change cell, debug href) for each table row."""
    body = page.split('<table class="rows-and-columns runtime-truth-history">')[1].split("</table>")[0]
    found = []
    for row in re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", body, re.S):
        cell = dict(re.findall(r'<td class="col-(\w+)">(.*?)</td>', row, re.S))
        href = re.search(r'href="([^"]+)">debug JSON', cell["debug"]).group(1) if "debug" in cell else None
        found.append((cell["turn_id"], cell["runtime_key"], cell["runtime_change"], href and html.unescape(href)))
    return found


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(PAGES))
async def test_each_page_says_what_the_check_means(history_store, mode, name):
    async with serving(history_store, mode) as ds:
        response = await ds.client.get(f"/turns/{name}{PAGES[name]}")
        assert response.status_code == 200
        assert '<p class="runtime-truth-meaning">' in response.text
        assert "<strong>A good answer:</strong>" in response.text
        assert "runtime-truth-not-migrated" not in response.text


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_runtime_history_marks_switches_and_unknown_runtimes(history_store, mode):
    async with serving(history_store, mode) as ds:
        page = (await ds.client.get("/turns/runtime_history?conv_id=conv-1")).text
    unknown = '<em class="runtime-unknown">unknown (pre-cutover)</em>'
    # The debug JSON is served by the plugin: without it the page links to nothing dead.
    debug = {
        "plugin": lambda session, turn: f"/api/debug/turn/conv-1/{session}/{turn}",
        "bundle": lambda session, turn: None,
    }[mode]
    assert history_rows(page) == [
        ("t1", "inventory@v1", "", debug("s-1", "t1")),
        ("t2", unknown, "", debug("s-1", "t2")),
        ("t3", "planner@v1", "<strong>switched from inventory@v1</strong>", debug("s-1", "t3")),
        ("t4", "inventory@v1", "<strong>switched from planner@v1</strong>", debug("s-2", "t4")),
    ]
    assert ('class="col-debug"' in page) == (mode == "plugin")
    assert page.count('<tr class="runtime-change">') == 2
    assert '<input type="text" id="runtime-truth-conv-id" name="conv_id" value="conv-1"' in page
    assert 'href="/turns/runtime_history.json?conv_id=conv-1&amp;_shape=array"' in page
    assert 'href="/turns/runtime_history.csv?conv_id=conv-1"' in page


@pytest.mark.asyncio
async def test_runtime_history_debug_links_encode_each_id(history_store):
    async with serving(history_store, "plugin") as ds:
        page = (await ds.client.get("/turns/runtime_history?conv_id=conv%2F3+%26+co")).text
    assert [(row[0], row[3]) for row in history_rows(page)] == [
        ("t 1", "/api/debug/turn/conv%2F3%20%26%20co/s%2F4/t%201"),
        ("t 2", "/api/debug/turn/conv%2F3%20%26%20co/s%2F4/t%202"),
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_runtime_history_without_conv_id_asks_for_one(history_store, mode):
    async with serving(history_store, mode) as ds:
        response = await ds.client.get("/turns/runtime_history")
    assert response.status_code == 200
    assert '<p class="zero-results">Enter a conv_id.</p>' in response.text
    assert "runtime-truth-history\">" not in response.text


@pytest.mark.asyncio
async def test_timeline_partial_renders_above_the_table_with_the_turns(history_store, tmp_path):
    partials = tmp_path / "partials"
    partials.mkdir()
    (partials / "_runtime_truth_timeline.html").write_text(
        '<div id="timeline">{% for turn in runtime_truth_rows %}'
        '{{ turn.turn_id }}:{{ turn.runtime_key or "?" }}:{{ turn.inference_id or "?" }}:'
        '{{ turn.updated_at_ms + 1 }}:{{ turn.runtime_changed }};{% endfor %}</div>'
    )
    async with serving(history_store, "plugin", template_dir=str(partials)) as ds:
        page = (await ds.client.get("/turns/runtime_history?conv_id=conv-1")).text
    timeline = re.search(r'<div id="timeline">(.*?)</div>', page).group(1)
    assert timeline == (
        f"t1:inventory@v1:inf-1:{CUTOVER - 86_400_000 + 1001}:False;"
        f"t2:?:?:{CUTOVER - 86_400_000 + 2001}:False;"
        f"t3:planner@v1:inf-3:{CUTOVER + 3001}:True;"
        f"t4:inventory@v1:inf-4:{CUTOVER + 4001}:True;"
    )
    assert page.index('<div id="timeline">') < page.index('<table class="rows-and-columns')


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["runtime_history", "missing_backfill_count", "missing_backfill_rows",
                                  "runtime_switches", "inference_lookup", "backfill_coverage",
                                  "turns_schema", "turns_runtime_indexes"])
async def test_unmigrated_database_page_names_the_migrate_command(old_store, mode, name):
    async with serving(old_store, mode) as ds:
        response = await ds.client.get(f"/turns/{name}{PAGES[name]}")
    assert response.status_code == (400 if ON_065 and name in NEEDS_THE_COLUMNS else 200)
    assert '<p class="message-error runtime-truth-not-migrated">' in response.text
    hint = {
        "plugin": f"Run <code>datasette runtime-truth migrate {old_store}</code>, then reload",
        "bundle": "Run <code>datasette runtime-truth migrate turns.db</code> (the path\nof this database file), then reload",
    }[mode]
    assert hint in response.text


@pytest.mark.asyncio
async def test_cells_link_ids_to_their_queries(history_store):
    async with serving(history_store, "plugin") as ds:
        lookup = (await ds.client.get("/turns/inference_lookup?inference_id=inf-7")).text
        switches = (await ds.client.get("/turns/runtime_switches")).text
        table = (await ds.client.get("/turns/turns?conv_id=conv-1&_sort=turn_id")).text
    conv_link = '<a href="/turns/runtime_history?conv_id=conv%2F3+%26+co">conv/3 &amp; co</a>'
    assert lookup.count(conv_link) == 2
    assert lookup.count('<a href="/turns/inference_lookup?inference_id=inf-7">inf-7</a>') == 2
    assert conv_link in switches
    assert '<a href="/turns/runtime_history?conv_id=conv-1">conv-1</a>' in switches
    assert '<a href="/turns/inference_lookup?inference_id=inf-3">inf-3</a>' in table
    assert '<a href="/turns/runtime_history?conv_id=conv-1">conv-1</a>' in table


@pytest.mark.asyncio
async def test_without_the_plugin_cells_stay_plain(history_store):
    async with serving(history_store, "bundle") as ds:
        lookup = (await ds.client.get("/turns/inference_lookup?inference_id=inf-3")).text
    assert "runtime_history?conv_id" not in lookup
    assert '<td class="col-conv_id">conv-1</td>' in lookup


@pytest.mark.asyncio
async def test_database_actions_lead_to_the_report_and_the_queries(history_store):
    async with serving(history_store, "plugin") as ds:
        page = (await ds.client.get("/turns")).text
    assert re.search(r'<a href="/-/runtime-truth"[^>]*>\s*Runtime truth: cutover report\s*</a>', page)
    for query in queries.QUERIES:
        assert f'href="/turns/{query.name}"' in page
        assert f"Runtime truth: {html.escape(query.title, quote=False)}" in page


@pytest.mark.asyncio
async def test_runtime_history_page_draws_the_conversation_timeline(history_store):
    async with serving(history_store, "plugin") as ds:
        page = (await ds.client.get("/turns/runtime_history?conv_id=conv-1")).text
    svg = re.search(r'<svg class="rt-timeline"[^>]*>', page).group(0)
    assert 'data-turns="4"' in svg
    assert 'data-switches="2"' in svg  # inventory@v1 -> planner@v1 -> inventory@v1, '' passed over
    assert page.index('class="rt-timeline"') < page.index('class="rows-and-columns runtime-truth-history"')
