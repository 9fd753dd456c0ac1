"""The server-rendered SVG charts, and the timeline partial the runtime_history page includes."""

import re
import sqlite3

import pytest
from datasette_test import Datasette

from builders import create_store, insert_turn
from datasette_runtime_truth.canned import queries
from datasette_runtime_truth.web import charts


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
    assert ("<title>2026-03-19: 2 turns; runtime_key 50% (1), inference_id 100% (2)</title>") in svg
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
    colours = charts.assign_colours(["inventory@v1", "planner@v1"])
    fills = re.findall(r'class="rt-turn"[^>]*fill="([^"]+)"', svg)
    assert fills == [colours["inventory@v1"], charts.UNKNOWN_COLOUR, colours["planner@v1"]]
    assert attrs(svg, "rt-switch", "data-to") == ["planner@v1"]
    assert attrs(svg, "rt-legend", "data-runtime-key") == ["", "inventory@v1", "planner@v1"]
    assert attrs(svg, "rt-legend", "data-colour") == [charts.UNKNOWN_COLOUR, colours["inventory@v1"],
                                                     colours["planner@v1"]]
    assert attrs(svg, "rt-legend", "data-count") == ["1", "1", "1"]
    assert ("<title>turn turn-3: runtime_key planner@v1, inference_id inf-2, "
            "2026-03-20 00:00:02 UTC, session s-1</title>") in svg


DEMO_KEYS = ["agent", "inventory@v1", "default", "inventory", "planner", "planner@v1",
             "1", "2", "3", "4", "5", "6", "7", "8"]


def test_no_two_runtime_keys_of_a_page_share_a_colour():
    """Issue 17: on the demo's report agent and inventory both hashed to red, planner and 6 to
    orange. Each key starts from its hash and moves to the next free colour."""
    assert charts.runtime_colour("agent") == charts.runtime_colour("inventory")  # the collision
    for keys in (DEMO_KEYS, DEMO_KEYS[:5], ["agent", "inventory"], [f"runtime-{n}" for n in range(40)]):
        colours = charts.assign_colours(keys)
        assert len({colours[key] for key in keys}) == len(set(keys))
        assert charts.UNKNOWN_COLOUR not in {colours[key] for key in keys}
        assert colours[""] == charts.UNKNOWN_COLOUR
        assert charts.assign_colours(list(reversed(keys))) == colours  # order of appearance aside
    assert charts.assign_colours(["planner"])["planner"] == charts.runtime_colour("planner")
    hostile = [{"turn_id": "t1", "runtime_key": 0}, {"turn_id": "t2", "runtime_key": None},
               {"turn_id": "t3", "runtime_key": b"\xff"}, {"turn_id": "t4", "runtime_key": 1.5}]
    colours = charts.assign_colours(row["runtime_key"] for row in hostile)
    assert sorted(colours) == ["", "0", "1.5", "b'\\xff'"]
    assert 'data-turns="4"' in str(charts.timeline_svg(hostile, colours))


def test_timelines_given_a_pages_colours_keep_them():
    first = [{"turn_id": "t1", "runtime_key": "agent"}, {"turn_id": "t2", "runtime_key": "2"}]
    second = [{"turn_id": "t3", "runtime_key": "inventory"}, {"turn_id": "t4", "runtime_key": "agent"}]
    colours = charts.assign_colours(["agent", "2", "inventory"])
    for rows in (first, second):
        svg = str(charts.timeline_svg(rows, colours))
        assert re.findall(r'class="rt-turn" data-turn-id="[^"]*" data-runtime-key="([^"]*)"[^>]*fill="([^"]+)"', svg) == [
            (row["runtime_key"], colours[row["runtime_key"]]) for row in rows]


def test_switch_labels_clear_each_other_and_no_line_crosses_them():
    """Issue 17: "default" and "2" ran into each other, and switch lines cut through labels."""
    keys = ["planner", "default", "2", "default", "7", "default", "5", "default", "6", "default"] * 3
    svg = str(charts.timeline_svg([{"turn_id": f"t{n}", "runtime_key": key} for n, key in enumerate(keys)]))
    labels = [(float(x), float(y), text) for x, y, text in
              re.findall(r'<text class="rt-switch-label" x="([^"]+)" y="([^"]+)"[^>]*>([^<]*)</text>', svg)]
    assert len(labels) >= 10
    for i, (x, y, text) in enumerate(labels):
        right = x + charts.LABEL_CHAR_W * len(text)
        for x2, y2, _ in labels[i + 1:]:
            assert y2 != y or x2 > right + 6
    lines = [(float(y1), float(y2)) for y1, y2 in re.findall(r'<line x1="[^"]+" x2="[^"]+" y1="([^"]+)" y2="([^"]+)"', svg)]
    label_bottom = max(y for _, y, _ in labels) + 3  # below the baseline, the descenders
    assert all(top >= label_bottom for top, _ in lines), (lines, label_bottom)


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


def test_coverage_axis_labels_never_run_together():
    """Issue 17: the last two days' labels (04-08, 04-11) ran into each other."""
    import datetime
    start = datetime.date(2026, 2, 10)
    for count in (1, 2, 3, 7, 45, 61, 400):
        days = [{"day": (start + datetime.timedelta(days=n)).isoformat(), "turns": 1, "with_runtime_key": 1,
                 "with_inference_id": 1, "with_neither": 0} for n in range(count)]
        svg = str(charts.coverage_svg(days))
        labels = re.findall(r'<text class="rt-axis-day" x="([^"]+)" y="[^"]+" text-anchor="([^"]+)"[^>]*>([^<]+)</text>', svg)
        assert labels[0][2] == days[0]["day"][5:] and labels[-1][2] == days[-1]["day"][5:]
        extents = []
        for x, anchor, _ in labels:
            left = {"start": 0, "middle": -0.5, "end": -1}[anchor] * charts.AXIS_LABEL_W + float(x)
            extents.append((left, left + charts.AXIS_LABEL_W))
        assert all(a[1] + charts.AXIS_GAP <= b[0] for a, b in zip(extents, extents[1:])), (count, extents)
        assert (len(labels) >= 2) == (count >= 2)
