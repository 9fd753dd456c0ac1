"""Stores built from hostile rows (any SQLite type in any column, huge and odd timestamps, BLOBs,
invalid or deep JSON, odd text): every route and page answers below 500, JSON where JSON is
promised and HTML where a page is."""

import json
import sqlite3
import urllib.parse

from datasette_test import Datasette
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from datasette_runtime_truth.upstream import backfill, schema
from datasette_runtime_truth.migration.apply import migrate_path

TYPELESS_DDL = """
CREATE TABLE turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json,
                    turn_data_json, runtime_key, inference_id, updated_at_ms,
                    PRIMARY KEY (conv_id, session_id, turn_id));
CREATE TABLE blocks (block_id, content_hash, hash_algorithm, kind, role, payload_json,
                     block_metadata_json, first_seen_at_ms, PRIMARY KEY (block_id, content_hash));
CREATE TABLE turn_block_membership (conv_id, session_id, turn_id, phase, snapshot_created_at_ms,
                                    ordinal, block_id, content_hash);
CREATE TABLE timeline_conversations (conv_id, session_id, runtime_key, created_at_ms,
                                     last_activity_ms, last_seen_version, has_timeline, status,
                                     last_error);
"""

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
ids = st.sampled_from(["c1", "c2", "s1", "t1", "", " ", "a/b", "%2F", "~7E", "ü", "1"]) | text
json_texts = st.one_of(
    st.sampled_from(["{}", "null", "", "{", "[]", '"x"', "NaN", '{"a": 1e400}', "\ufeff{}",
                     '{"geppetto.runtime@v1": {"runtime_key": 1e6}, "inference_id": ["x", 2]}',
                     '{"a": "\\ud800"}', "[" * 3000 + "]" * 3000]),
    st.dictionaries(text, st.one_of(text, st.integers(), st.floats(allow_nan=False), st.none()),
                    max_size=3).map(json.dumps),
)
values = st.one_of(
    st.none(), st.integers(min_value=-2**63, max_value=2**63 - 1), st.floats(allow_nan=False),
    text, st.binary(max_size=8), json_texts,
)
times = st.one_of(
    st.sampled_from([0, -5, 1, 1774000000000, 1774000000000000, 2**63 - 1, -2**63, 1e308,
                     float("inf"), "2026-01-01", None, b"\x00"]),
    st.integers(min_value=-2**63, max_value=2**63 - 1),
)
turn_rows = st.tuples(ids, ids, ids, times, json_texts | values, json_texts | values, values, values, times)
block_rows = st.tuples(ids, values, values, values, json_texts | values, json_texts | values)


def build(path, turns, blocks):
    conn = sqlite3.connect(path)
    conn.executescript(TYPELESS_DDL)
    conn.executemany("INSERT OR IGNORE INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", turns)
    for number, (block_id, kind, role, payload_json, metadata_json, _) in enumerate(blocks):
        conn.execute("INSERT OR IGNORE INTO blocks VALUES (?, ?, 'x', ?, ?, ?, ?, 1)",
                     (block_id, f"h{number}", kind, role, payload_json, metadata_json))
        for conv_id, session_id, turn_id, *_ in turns[:2]:
            conn.execute("INSERT INTO turn_block_membership VALUES (?, ?, ?, 'final', ?, ?, ?, ?)",
                         (conv_id, session_id, turn_id, blocks[number][5], number, block_id, f"h{number}"))
    for conv_id, session_id, _, created, _, _, runtime_key, _, updated in turns:
        conn.execute("INSERT INTO timeline_conversations VALUES (?, ?, ?, ?, ?, 0, 1, 'active', '')",
                     (conv_id, session_id, runtime_key, created, updated))
    conn.commit()
    conn.close()


def urls(turns):
    conv_id, session_id, turn_id = (str(part) for part in turns[0][:3]) if turns else ("c1", "s1", "t1")
    quoted = [urllib.parse.quote(part, safe="") for part in (conv_id, session_id, turn_id)]
    conv = urllib.parse.urlencode({"conv_id": conv_id})
    pages = [
        "/-/runtime-truth", f"/-/runtime-truth/turns/conversation?{conv}", "/-/runtime-truth/turns/preview",
        "/-/runtime-truth/turns/pointers", "/-/runtime-truth/turns/switches",
        f"/turns/runtime_history?{conv}", "/turns/missing_backfill_rows", "/turns/backfill_coverage",
        "/turns/runtime_switches", "/turns/turns", "/turns",
        "/-/runtime-truth/search?" + urllib.parse.urlencode({"q": turn_id}),
        "/-/runtime-truth/turns/preview?only=bad_metadata",
    ]
    data = [
        "/-/runtime-truth.json", "/-/runtime-truth/turns/preview.json", "/-/runtime-truth/turns/pointers.json",
        "/api/debug/conversations", f"/api/debug/conversations/{quoted[0]}", f"/api/debug/turns?{conv}",
        f"/api/debug/turn/{'/'.join(quoted)}", f"/turns/runtime_history.json?{conv}",
        "/turns/backfill_coverage.json", "/turns/runtime_switches.json",
        "/-/runtime-truth/turns/search.json?" + urllib.parse.urlencode({"q": f"{conv_id} {session_id}"}),
    ]
    return pages, data


@pytest.mark.asyncio
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(turns=st.lists(turn_rows, min_size=1, max_size=4), blocks=st.lists(block_rows, max_size=3))
async def test_every_route_and_page_answers_below_500(tmp_path_factory, turns, blocks):
    path = tmp_path_factory.mktemp("hostile") / "turns.db"
    build(path, turns, blocks)
    ds = Datasette([str(path)])
    pages, data = urls(turns)
    for url in pages:
        response = await ds.client.get(url)
        assert response.status_code < 500, (url, response.status_code, response.text[-800:])
        assert response.headers["content-type"].startswith("text/html"), url
    for url in data:
        response = await ds.client.get(url)
        assert response.status_code < 500, (url, response.status_code, response.text[-800:])
        assert response.headers["content-type"].startswith("application/json"), url
    metrics = await ds.client.get("/-/runtime-truth/metrics")
    assert metrics.status_code == 200


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=st.lists(turn_rows, min_size=1, max_size=6), rules=st.sampled_from(backfill.RULES))
def test_no_row_stops_a_migration(tmp_path_factory, turns, rules):
    path = tmp_path_factory.mktemp("hostile-migrate") / "turns.db"
    build(path, turns, [])
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT count(*) FROM turns").fetchone()[0]
    report = migrate_path(path, rules=rules, batch_size=2)
    assert report.indexes_created == [index.name for index in schema.INDEXES]
    assert report.rows_scanned == rows
    again = migrate_path(path, rules=rules)
    assert (again.changed, again.skipped_unwritable) == (False, report.skipped_unwritable)
