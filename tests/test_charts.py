"""The server-rendered SVG charts, and the timeline partial the runtime_history page includes."""

import re
import sqlite3

import pytest
from datasette_test import Datasette

from builders import create_store, insert_turn
from datasette_runtime_truth import charts, queries


def attrs(svg, css_class, name):
    return re.findall(rf'class="{css_class}"[^>]*?\b{name}="([^"]*)"', str(svg))


DAYS = [
    {"day": "2026-03-18", "turns": 4, "with_runtime_key": 0, "with_inference_id": 1, "with_neither": 3},
    {"day": "2026-03-19", "turns": 2, "with_runtime_key": 1, "with_inference_id": 2, "with_neither": 0},
    {"day": "2026-03-20", "turns": 5, "with_runtime_key": 5, "with_inference_id": 5, "with_neither": 0},
    {"day": "2026-03-22", "turns": 3, "with_runtime_key": 3, "with_inference_id": 2, "with_neither": 0},
]


def test_coverage_chart_has_one_mark_per_day_with_its_counts():
    svg = str(charts.coverage_svg(DAYS))
    assert svg.startswith('<svg class="rt-coverage"')
    assert 'data-days="4"' in svg
    assert attrs(svg, "rt-day", "data-day") == ["2026-03-18", "2026-03-19", "2026-03-20", "2026-03-22"]
    assert attrs(svg, "rt-day", "data-runtime-key") == ["0", "1", "5", "3"]
    assert attrs(svg, "rt-day", "data-inference-id") == ["1", "2", "5", "2"]
    assert ("<title>2026-03-19: 2 turns; runtime_key 50.0% (1), inference_id 100% (2)</title>") in svg
    assert attrs(svg, "rt-cutover", "data-day") == ["2026-03-20"]


def test_cutover_day_is_the_start_of_the_final_full_run():
    assert charts.cutover_day(DAYS) == "2026-03-20"
    assert charts.cutover_day(DAYS[2:]) is None  # full from the first day: nothing to mark
    assert charts.cutover_day(DAYS[:2]) is None
    relapse = DAYS + [{"day": "2026-03-23", "turns": 2, "with_runtime_key": 1, "with_inference_id": 2, "with_neither": 0}]
    assert charts.cutover_day(relapse) is None


def test_coverage_chart_without_days_says_so():
    assert str(charts.coverage_svg([])) == '<p class="rt-empty">No turns with a timestamp yet.</p>'


def test_switch_positions_pass_over_unknown_runtime():
    assert queries.switch_positions(["a", "", "a", "b", "b", "", "a"]) == [3, 6]
    assert queries.switch_positions(["", "", "a"]) == []


def test_timeline_marks_each_turn_coloured_by_runtime_and_marks_switches():
    rows = [
        {"turn_id": "turn-1", "runtime_key": "inventory@v1", "inference_id": "inf-1", "updated_at_ms": 1_773_964_800_000},
        {"turn_id": "turn-2", "runtime_key": "", "inference_id": "", "updated_at_ms": 1_773_964_801_000},
        {"turn_id": "turn-3", "runtime_key": "planner@v1", "inference_id": "inf-2", "updated_at_ms": 1_773_964_802_000, "session_id": "s-1"},
    ]
    svg = str(charts.timeline_svg(rows))
    assert 'data-turns="3" data-switches="1"' in svg
    assert attrs(svg, "rt-turn", "data-turn-id") == ["turn-1", "turn-2", "turn-3"]
    assert attrs(svg, "rt-turn", "data-runtime-key") == ["inventory@v1", "", "planner@v1"]
    fills = re.findall(r'class="rt-turn"[^>]*fill="([^"]+)"', svg)
    assert fills == [charts.runtime_colour("inventory@v1"), charts.UNKNOWN_COLOUR,
                     charts.runtime_colour("planner@v1")]
    assert attrs(svg, "rt-switch", "data-to") == ["planner@v1"]
    assert attrs(svg, "rt-legend", "data-runtime-key") == ["", "inventory@v1", "planner@v1"]
    assert attrs(svg, "rt-legend", "data-colour") == [charts.UNKNOWN_COLOUR, charts.runtime_colour("inventory@v1"),
                                                     charts.runtime_colour("planner@v1")]
    assert attrs(svg, "rt-legend", "data-count") == ["1", "1", "1"]
    assert ("<title>turn turn-3: runtime_key planner@v1, inference_id inf-2, "
            "2026-03-20 00:00:02 UTC, session s-1</title>") in svg


def test_timeline_escapes_what_it_shows():
    svg = str(charts.timeline_svg([{"turn_id": '"><script>x</script>', "runtime_key": "<b>", "inference_id": "&"}]))
    assert "<script>" not in svg and "<b>" not in svg
    assert 'data-runtime-key="&lt;b&gt;"' in svg


def test_timeline_takes_sqlite_rows(tmp_path):
    conn = create_store(tmp_path / "turns.db", "current")
    insert_turn(conn, "c1", "s1", "t1", updated=1, runtime_key="agent", inference_id="i1")
    insert_turn(conn, "c1", "s1", "t2", updated=2, runtime_key="planner", inference_id="i2")
    conn.row_factory = sqlite3.Row
    rows = conn.execute(
        "SELECT turn_id, runtime_key, inference_id, updated_at_ms FROM turns ORDER BY updated_at_ms"
    ).fetchall()
    svg = str(charts.timeline_svg(rows))
    assert attrs(svg, "rt-turn", "data-turn-id") == ["t1", "t2"]
    assert 'data-switches="1"' in svg


def test_timeline_without_rows_says_so():
    assert str(charts.timeline_svg([])) == '<p class="rt-empty">No turns in this conversation.</p>'


@pytest.mark.asyncio
async def test_partial_renders_the_timeline_from_a_query_pages_rows(tmp_path):
    """The runtime_history page includes the partial with ``ignore missing``; render it the same way."""
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    insert_turn(conn, "c1", "s1", "t1", updated=1, runtime_key="agent", inference_id="i1")
    insert_turn(conn, "c1", "s1", "t2", updated=2, runtime_key="planner", inference_id="i2")
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT turn_id, runtime_key, inference_id, updated_at_ms FROM turns").fetchall()
    ds = Datasette([str(path)])
    await ds.invoke_startup()
    environment = ds.get_jinja_environment(None) if hasattr(ds, "get_jinja_environment") else ds.jinja_env
    template = environment.from_string(
        '<main>{% include "_runtime_truth_timeline.html" ignore missing %}</main>'
    )
    html = await ds.render_template(template, {"rows": rows})
    assert attrs(html, "rt-turn", "data-turn-id") == ["t1", "t2"]
    assert 'data-switches="1"' in html
    assert (await ds.render_template(template, {"rows": []})).replace("\n", "") == "<main></main>"
