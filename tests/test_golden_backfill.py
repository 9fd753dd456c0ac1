"""Every case of ../shared/golden/backfill-cases.jsonl, produced by running the upstream store
itself: after a migration each row holds exactly the upstream's values, by both rule sets, through
the CLI runner and through migrate_on_startup, from a pre-cutover store and from one whose
columns already hold the cases' before-values."""

import json
import pathlib
import sqlite3

import pytest
from datasette_test import Datasette

from builders import create_store, insert_turn
from datasette_runtime_truth.upstream import backfill
from datasette_runtime_truth.migration.apply import migrate_path

GOLDEN = pathlib.Path(__file__).parents[2] / "shared" / "golden" / "backfill-cases.jsonl"
CASES = [json.loads(line) for line in GOLDEN.read_text().splitlines()]
NEVER_FILLED = [case for case in CASES if not case["runtime_key_before"] and not case["inference_id_before"]]
RULES = ("canonical", "legacy")


def test_the_golden_file_is_there():
    assert (len(CASES), len(NEVER_FILLED)) == (265, 227)


@pytest.mark.parametrize("rules", RULES)
@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_rules_on_each_case(case, rules):
    before = (case["runtime_key_before"], case["inference_id_before"])
    runtime_key, inference_id = backfill.decide(case["turn_metadata_json"], *before, rules).values or before
    assert {"runtime_key": runtime_key, "inference_id": inference_id} == case[rules]


def _store(path, shape, cases):
    conn = create_store(path, shape, journal_mode="delete")
    for case in cases:
        insert_turn(conn, "conv", "session", case["id"], metadata=case["turn_metadata_json"],
                    runtime_key=case["runtime_key_before"], inference_id=case["inference_id_before"])
    conn.close()
    return path


def _values(path):
    conn = sqlite3.connect(path)
    try:
        return {turn_id: {"runtime_key": runtime_key, "inference_id": inference_id}
                for turn_id, runtime_key, inference_id
                in conn.execute("SELECT turn_id, runtime_key, inference_id FROM turns")}
    finally:
        conn.close()


def _differences(path, cases, rules):
    values = _values(path)
    return {case["id"]: (values[case["id"]], case[rules]) for case in cases if values[case["id"]] != case[rules]}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("golden")
    return {
        "pre-cutover": lambda name: _store(folder / f"pre-{name}.db", "pre-cutover", NEVER_FILLED),
        "columns-present": lambda name: _store(folder / f"cols-{name}.db", "migrated", CASES),
    }


@pytest.mark.parametrize("rules", RULES)
@pytest.mark.parametrize("route", ["pre-cutover", "columns-present"])
def test_migrate_leaves_the_upstream_values_in_every_row(stores, route, rules):
    path = stores[route](f"cli-{rules}")
    cases = NEVER_FILLED if route == "pre-cutover" else CASES
    report = migrate_path(path, rules=rules, batch_size=50)
    assert _differences(path, cases, rules) == {}
    assert report.journal_mode == "switched from delete to wal, as the upstream store does on open"
    assert (report.skipped_unwritable, report.rows_scanned) == (0, len(cases))
    assert migrate_path(path, rules=rules).changed is False


@pytest.mark.parametrize("rules", RULES)
def test_dry_run_counts_what_the_real_run_writes(stores, rules):
    path = stores["columns-present"](f"dry-{rules}")
    preview = migrate_path(path, rules=rules, dry_run=True)
    real = migrate_path(path, rules=rules)
    fields = ("runtime_key_filled", "inference_id_filled", "values_trimmed", "missing_runtime_key",
              "missing_inference_id", "skipped_bad_metadata")
    assert [getattr(preview, name) for name in fields] == [getattr(real, name) for name in fields]
    assert preview.journal_mode == "delete; a real run switches it to wal, as the upstream store does on open"


@pytest.mark.asyncio
@pytest.mark.parametrize("rules", RULES)
async def test_migrate_on_startup_leaves_the_upstream_values(stores, rules):
    path = stores["columns-present"](f"startup-{rules}")
    with sqlite3.connect(path) as conn:  # the startup hook migrates a store whose shape is incomplete
        conn.execute("DROP INDEX turns_by_conv_runtime_updated")
    ds = Datasette([str(path)], plugin_config={
        "datasette-runtime-truth": {"migrate_on_startup": True, "rules": rules},
    })
    await ds.invoke_startup()
    assert _differences(path, CASES, rules) == {}
    with sqlite3.connect(path) as conn:  # switched from the rollback journal, as upstream does
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
