"""The SQL behind the debug routes reads indexes, never whole tables (EXPLAIN QUERY PLAN)."""

import re
import sqlite3

import pytest

from api_helpers import build_turns_db
from datasette_runtime_truth.storage import debug_reads, id_lookup
from datasette_runtime_truth.upstream import schema

BASE_TABLE = re.compile(r"^(SCAN|SEARCH) (t|m|b|turns|turn_block_membership|blocks)\b")


@pytest.fixture(params=["current", "migrated", "pre-cutover"])
def conn_and_shape(request, tmp_path):
    conn = sqlite3.connect(build_turns_db(tmp_path / "turns.db", request.param))
    yield conn, schema.TurnsShape.read(conn, prefix="t.")
    conn.close()


def plan(conn, sql, params):
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


def table_steps(lines):
    return [line for line in lines if BASE_TABLE.match(line)]


@pytest.mark.parametrize("filters, first_index", [
    ({"conv_id": "conv-1", "limit": 200}, "turn_block_membership_by_turn_phase"),
    ({"session_id": "session-1", "limit": 200}, "turns_by_session"),
    ({"conv_id": "conv-1", "session_id": "session-1", "phase": "final", "since_ms": 100, "limit": 1},
     "turn_block_membership_by_turn_phase"),
    ({"conv_id": "conv-1", "session_id": "session-1", "turn_id": "turn-1"}, None),
])
def test_turns_list_and_turn_detail_only_search_indexes(conn_and_shape, filters, first_index):
    conn, shape = conn_and_shape
    steps = table_steps(plan(conn, *debug_reads.snapshots_query(shape, **filters)))
    assert len(steps) == 4, steps
    assert all(step.startswith("SEARCH ") and " USING " in step and "INDEX" in step for step in steps), steps
    if first_index:
        assert first_index in steps[0]
    assert any("sqlite_autoindex_blocks_1 (block_id=? AND content_hash=?)" in step for step in steps)


def test_conversations_list_reads_a_covering_index_and_then_searches(conn_and_shape):
    conn, shape = conn_and_shape
    steps = table_steps(plan(conn, *debug_reads.derived_conversations_query(shape, 500)))
    assert len(steps) == 2, steps
    assert steps[0].startswith("SCAN t USING COVERING INDEX turns_by_conv_"), steps
    assert steps[1].startswith("SEARCH t USING INDEX turns_by_conv_") and "(conv_id=?)" in steps[1], steps


def test_conversation_detail_only_searches(conn_and_shape):
    conn, shape = conn_and_shape
    steps = table_steps(plan(conn, *debug_reads.derived_conversations_query(shape, 1, conv_id="conv-1")))
    assert len(steps) == 2 and all(step.startswith("SEARCH t USING") and "(conv_id=?)" in step for step in steps), steps


@pytest.mark.parametrize("filters", [
    {"conv_id": "conv-1", "limit": 200},
    {"session_id": "session-1", "limit": 200},
    {"conv_id": "conv-1", "session_id": "session-1", "phase": "final", "since_ms": 100, "limit": 1},
    {"conv_id": "conv-1", "session_id": "session-1", "turn_id": "turn-1"},
])
def test_the_size_of_an_answer_only_searches_indexes(conn_and_shape, filters):
    conn, shape = conn_and_shape
    steps = table_steps(plan(conn, *debug_reads.size_query(shape, **filters)))
    assert steps and all(step.startswith("SEARCH ") and " USING " in step for step in steps), steps


@pytest.mark.parametrize("kind", id_lookup.KINDS)
def test_search_never_scans_the_turn_rows(conn_and_shape, kind):
    """Issue 17: no kind of id reads the turn rows wholesale. conv_id and session_id are index
    searches; inference_id and turn_id, which have no index of their own, read the entries of an
    index holding them (turns_by_conv_inference_updated, the primary key's), and only a match's
    row by its rowid."""
    conn, shape = conn_and_shape
    if kind not in id_lookup.searchable(shape):
        assert kind == "inference_id" and "inference_id" not in shape.columns
        return
    lines = plan(conn, id_lookup.lookup_sql(shape, kind), {"id": "turn-1", "limit": 101})
    steps = [line for line in lines if re.match(r"(SCAN|SEARCH) (t|turns)\b", line)]
    expected = {
        "conv_id": [r"SEARCH t USING INDEX \w+ \(conv_id=\?\)"],
        "session_id": [r"SEARCH t USING INDEX turns_by_session \(session_id=\?\)"],
        "inference_id": [r"SEARCH t USING INTEGER PRIMARY KEY \(rowid=\?\)",
                         r"SCAN turns USING COVERING INDEX turns_by_conv_inference_updated"],
        "turn_id": [r"SEARCH t USING INTEGER PRIMARY KEY \(rowid=\?\)",
                    r"SCAN turns USING COVERING INDEX sqlite_autoindex_turns_1"],
    }[kind]
    assert len(steps) == len(expected) and all(map(re.fullmatch, expected, steps)), lines


def test_search_finds_a_turn_by_each_kind_of_id(conn_and_shape):
    conn, shape = conn_and_shape
    expected = {"turn_id": "turn-a", "conv_id": "conv-tie-b", "session_id": "session-u", "inference_id": "inf-b"}
    for kind, token in expected.items():
        found = id_lookup.find(conn, [(token, None)], with_snapshots=False)
        if kind not in found.kinds:
            assert found.turns == [] and "inference_id" not in shape.columns
            continue
        assert [(t["turn_id"], t["matched"]) for t in found.turns] == [
            ({"turn_id": "turn-a", "conv_id": "turn-u", "session_id": "turn-u", "inference_id": "turn-b"}[kind],
             [{"kind": kind, "id": token}])]
