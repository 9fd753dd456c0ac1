"""``datasette runtime-truth check``: the report on the terminal, and an exit code for scripts."""

import json
import os

import pytest
from click.testing import CliRunner
from datasette.cli import cli
from datasette_test import Datasette

from builders import create_store, dump, insert_turn


def run(*args):
    return CliRunner().invoke(cli, ["runtime-truth", "check", *map(str, args)])


def test_sample_exits_1_before_migration_and_0_after(sample):
    before = dump(sample.turns_path)
    result = run(sample.turns_path)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{sample.turns_path}: FAILS (3 of 9 checks fail)"
    assert lines[1].split()[:2] == ["fail", "runtime_key"]
    assert f"run `datasette runtime-truth migrate {sample.turns_path}`" in result.output
    assert dump(sample.turns_path) == before  # the check never writes

    migrated = CliRunner().invoke(cli, ["runtime-truth", "migrate", sample.turns_path])
    assert migrated.exit_code == 0, migrated.output
    result = run(sample.turns_path, "--timeline", sample.timeline_path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"{sample.turns_path}: PASSES (all 9 checks pass or are information)"
    )
    assert "have another pointer in timeline (" in result.output


def test_json_is_the_same_report(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "current")
    insert_turn(conn, "c1", "s1", "t1", metadata={"inference_id": "inf-1"}, runtime_key="agent")
    conn.close()
    result = run(path, "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert (data["format_version"], data["status"]) == (1, "fails")
    [db] = data["databases"]
    assert (db["database"], db["path"], db["turns"]) == ("turns", str(path), 1)
    by_id = {check["id"]: check for check in db["checks"]}
    assert by_id["would_fill"] == {
        "id": "would_fill", "title": "Rows a migrate run would still fill", "status": "fail",
        "figure": f"1 row (0 runtime_key, 1 inference_id, canonical rules): "
                  f"run `datasette runtime-truth migrate {path}`",
        "value": 1, "query": "missing_backfill_rows", "url": "/-/runtime-truth/turns/preview?only=writes",
        "all_url": None, "items": [], "counts": {"rows": 1, "runtime_key": 0, "inference_id": 1},
    }
    assert by_id["journal"]["figure"] == "wal, opened read-only"


@pytest.mark.asyncio
async def test_json_database_objects_are_the_report_json_s(sample):
    """``check --json`` and /-/runtime-truth.json give the same database object for the same
    store, but for when and how it was opened."""
    assert CliRunner().invoke(cli, ["runtime-truth", "migrate", sample.turns_path]).exit_code == 0
    result = run(sample.turns_path, "--timeline", sample.timeline_path, "--json")
    assert result.exit_code == 0
    checked = json.loads(result.output)
    served = (await Datasette([sample.turns_path, sample.timeline_path]).client.get(
        "/-/runtime-truth.json")).json()

    def comparable(body):
        body["databases"][0].pop("computed_at")
        for check in body["databases"][0]["checks"]:
            if check["id"] == "journal":
                check.pop("figure")
        return body

    assert comparable(checked) == comparable(served)
    db = checked["databases"][0]
    assert (db["preview_url"], db["startup_migration_error"]) == ("/-/runtime-truth/turns/preview", None)
    switched = next(check for check in db["checks"] if check["id"] == "runtime_switches")
    assert switched["items"][0]["history_url"].startswith("/turns/runtime_history?conv_id=")


def test_several_paths_one_line_each_and_the_worst_exit(tmp_path, samples):
    passing = samples.copy(tmp_path / "a")
    assert CliRunner().invoke(cli, ["runtime-truth", "migrate", passing.turns_path]).exit_code == 0
    failing = samples.copy(tmp_path / "b")
    result = run(passing.turns_path, failing.turns_path)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{passing.turns_path}: PASSES (all 9 checks pass or are information)",
        f"{failing.turns_path}: FAILS (3 of 9 checks fail): columns, indexes, would_fill",
    ]
    result = run(passing.turns_path, tmp_path / "missing.db", failing.turns_path)
    assert result.exit_code == 2
    assert result.output.splitlines()[1] == f"{tmp_path / 'missing.db'}: no such file"
    assert run(passing.turns_path, passing.turns_path).exit_code == 0


def test_several_paths_as_json_name_them_as_datasette_does(tmp_path, samples):
    first = samples.copy(tmp_path / "a")
    second = samples.copy(tmp_path / "b")
    result = CliRunner().invoke(cli, [
        "runtime-truth", "check", first.turns_path, str(tmp_path / "missing.db"), second.turns_path, "--json"])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'missing.db'}: no such file\n"
    data = json.loads(result.stdout)
    assert [(db["database"], db["path"], db["preview_url"]) for db in data["databases"]] == [
        ("turns", first.turns_path, "/-/runtime-truth/turns/preview"),
        ("turns_2", second.turns_path, "/-/runtime-truth/turns_2/preview"),
    ]


def test_exit_2_when_path_is_not_a_turns_db(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    other = create_store(tmp_path / "other.db", "current")
    other.execute("DROP TABLE turn_block_membership")
    other.execute("DROP TABLE turns")
    other.commit()
    for path, message in [
        (tmp_path / "missing.db", "no such file"),
        (tmp_path, "is a directory"),
        (tmp_path / "notes.txt", "not an SQLite database"),
        (tmp_path / "other.db", "not a turns.db (it has no turns table)"),
    ]:
        result = run(path)
        assert result.exit_code == 2, (path, result.output)
        assert message in result.output
    assert not os.path.exists(tmp_path / "missing.db")


def test_bad_timeline_is_a_usage_error(tmp_path):
    create_store(tmp_path / "turns.db", "current").close()
    result = run(tmp_path / "turns.db", "--timeline", tmp_path / "turns.db")
    assert result.exit_code == 2
    assert "has no timeline_conversations table" in result.output
    result = run(tmp_path / "turns.db", "--timeline", tmp_path / "nope.db")
    assert result.exit_code == 2
