"""The sample generator: the upstream DDL, every metadata form, and determinism."""

import json
import re
import sqlite3

from builders import dump, table_info
from datasette_runtime_truth import sample
from datasette_runtime_truth.upstream import backfill, schema

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def opened(samples, tmp_path, **kwargs):
    """A copy of a 1,500-turn sample (seed 11), and its two databases opened."""
    summary = samples.copy(tmp_path, **{"turns": 1500, "seed": 11, **kwargs})
    return summary, sqlite3.connect(summary.turns_path), sqlite3.connect(summary.timeline_path)


def test_same_seed_same_rows_and_another_seed_other_rows(tmp_path):
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        sample.build(tmp_path / name, turns=1500, seed=seed)
    assert dump(tmp_path / "a" / "turns.db") == dump(tmp_path / "b" / "turns.db")
    assert dump(tmp_path / "a" / "timeline.db") == dump(tmp_path / "b" / "timeline.db")
    assert dump(tmp_path / "a" / "turns.db") != dump(tmp_path / "c" / "turns.db")


def test_pre_cutover_shape_uses_the_upstream_ddl(tmp_path, samples):
    summary, turns, timeline = opened(samples, tmp_path)
    expected = sqlite3.connect(":memory:")
    schema.create_turns_db(expected, "pre-cutover")
    sql = "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
    assert turns.execute(sql).fetchall() == expected.execute(sql).fetchall()
    assert turns.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert [row[1] for row in table_info(summary.turns_path)] == [
        "conv_id", "session_id", "turn_id", "turn_created_at_ms", "turn_metadata_json",
        "turn_data_json", "updated_at_ms"]
    expected_timeline = sqlite3.connect(":memory:")
    expected_timeline.executescript(schema.TIMELINE_DDL + schema.TIMELINE_ENTITY_DDL)
    assert timeline.execute(sql).fetchall() == expected_timeline.execute(sql).fetchall()


def test_counts_match_the_summary(tmp_path, samples):
    summary, turns, timeline = opened(samples, tmp_path)
    assert turns.execute("SELECT count(*) FROM turns").fetchone() == (summary.turns,) == (1500,)
    assert turns.execute("SELECT count(DISTINCT conv_id) FROM turns").fetchone() == (summary.conversations,)
    assert timeline.execute("SELECT count(*) FROM timeline_conversations").fetchone() == (summary.conversations,)
    assert turns.execute("SELECT count(*) FROM blocks").fetchone() == (summary.blocks,)
    snapshots = turns.execute(
        "SELECT count(*) FROM (SELECT DISTINCT conv_id, session_id, turn_id, phase, snapshot_created_at_ms"
        " FROM turn_block_membership)").fetchone()[0]
    assert snapshots == summary.snapshots
    assert 2.5 < summary.snapshots / summary.turns < 3.5


def test_ids_are_uuid4_and_phases_are_upstream_ones(tmp_path, samples):
    _, turns, _ = opened(samples, tmp_path)
    for conv_id, session_id, turn_id in turns.execute("SELECT conv_id, session_id, turn_id FROM turns"):
        assert UUID4.match(conv_id) and UUID4.match(session_id) and UUID4.match(turn_id)
    phases = {row[0] for row in turns.execute("SELECT DISTINCT phase FROM turn_block_membership")}
    assert phases == {"pre_inference", "post_tools", "post_inference", "final"}
    assert turns.execute("PRAGMA foreign_key_check").fetchall() == []
    ordinals_ok = turns.execute(
        """SELECT count(*) FROM (SELECT max(ordinal) + 1 = count(*) AS ok FROM turn_block_membership
           GROUP BY conv_id, session_id, turn_id, phase, snapshot_created_at_ms) WHERE NOT ok""").fetchone()
    assert ordinals_ok == (0,)


def test_every_metadata_form_appears(tmp_path, samples):
    _, turns, _ = opened(samples, tmp_path, turns=4000)
    forms = set()
    for (text,) in turns.execute("SELECT turn_metadata_json FROM turns"):
        forms.add(_form(text))
    assert forms == {"canonical", "legacy_string", "legacy_object", "top_level", "bare_inference",
                     "missing", "null", "number", "invalid_json", "non_object", "empty"}


def _form(text):
    if text == "":
        return "empty"
    try:
        meta = json.loads(text)
    except ValueError:
        return "invalid_json"
    if not isinstance(meta, dict):
        return "non_object"
    runtime = meta.get("geppetto.runtime@v1", "absent")
    if runtime is None:
        return "null"
    if isinstance(runtime, str) and runtime != "absent":
        return "legacy_string"
    if isinstance(runtime, dict):
        if "slug" in runtime and "runtime_key" not in runtime:
            return "legacy_object"
        return "number" if isinstance(runtime["runtime_key"], int) else "canonical"
    if "runtime" in meta:
        return "top_level"
    return "bare_inference" if "inference_id" in meta else "missing"


def test_runtime_switches_and_the_pointer_is_the_latest_runtime(tmp_path, samples):
    _, turns, timeline = opened(samples, tmp_path)
    runtimes = {}  # conv_id -> [(updated_at_ms, runtime recovered from canonical metadata)]
    for conv_id, updated, metadata in turns.execute(
            "SELECT conv_id, updated_at_ms, turn_metadata_json FROM turns ORDER BY conv_id, updated_at_ms"):
        runtime = (backfill.decide(metadata, "", "").values or ("", ""))[0]
        runtimes.setdefault(conv_id, []).append((updated, runtime))
    switched = [c for c, seq in runtimes.items() if len({r for _, r in seq if r and not r.isdigit()}) > 1]
    assert len(switched) > 10
    pointers = dict(timeline.execute("SELECT conv_id, runtime_key FROM timeline_conversations").fetchall())
    checked = 0
    for conv_id, seq in runtimes.items():
        newest = seq[-1][1]
        if newest and not newest.isdigit():
            assert pointers[conv_id] == newest
            checked += 1
    assert checked > 50


def test_partial_shape_carries_values(tmp_path, samples):
    summary, turns, _ = opened(samples, tmp_path, shape="partial")
    names = [row[1] for row in table_info(summary.turns_path)]
    assert names[-2:] == ["runtime_key", "inference_id"]
    carried = turns.execute(
        "SELECT count(*) FROM turns WHERE updated_at_ms >= ? AND runtime_key != '' AND inference_id != ''",
        (sample.CUTOVER_MS,)).fetchone()[0]
    after_cutover = turns.execute("SELECT count(*) FROM turns WHERE updated_at_ms >= ?", (sample.CUTOVER_MS,)).fetchone()[0]
    assert carried == after_cutover > 0
    assert turns.execute("SELECT count(*) FROM turns WHERE runtime_key = 'ops-restored'").fetchone()[0] > 0


def test_the_timeline_store_holds_each_timeline_as_the_upstream_projection_wrote_it(tmp_path, samples):
    _, turns, timeline = opened(samples, tmp_path)
    with_timeline = {row[0] for row in timeline.execute("SELECT conv_id FROM timeline_conversations WHERE has_timeline")}
    versions = dict(timeline.execute("SELECT conv_id, version FROM timeline_versions"))
    assert set(versions) == with_timeline
    rows = timeline.execute(
        "SELECT conv_id, entity_id, kind, created_at_ms, updated_at_ms, version, entity_json FROM timeline_entities"
    ).fetchall()
    assert {row[0] for row in rows} == with_timeline
    newest = {}
    for conv_id, entity_id, kind, created, updated, version, text in rows:
        newest[conv_id] = max(newest.get(conv_id, 0), version)
        assert version // 1_000_000 == updated and version % 1_000_000 < 8  # a stream id
        assert created <= updated
        assert json.loads(text) == {"id": entity_id, "kind": kind, "createdAtMs": str(created),
                                    "updatedAtMs": str(updated), "props": json.loads(text)["props"]}
        assert ", " in text  # the spaced protojson the upstream store wrote
    assert newest == versions
    kinds = {kind: count for kind, count in timeline.execute(
        "SELECT kind, count(*) FROM timeline_entities GROUP BY kind")}
    turns_with_timeline = turns.execute(
        f"SELECT count(*) FROM turns WHERE conv_id IN ({','.join('?' * len(with_timeline))})",
        sorted(with_timeline)).fetchone()[0]
    assert kinds["message"] == 2 * turns_with_timeline
    assert kinds["tool_call"] == kinds["tool_result"] > 0


def test_summarize_counts_a_sample_as_build_returned_it(tmp_path):
    built = sample.build(tmp_path, turns=120, seed=5)
    assert sample.summarize(str(tmp_path)) == built
