"""Hostile configurations (issue 18): an unrelated ``turns`` table, settings given as strings or
misspelt, a configured database without a turns table, a database replaced at runtime, a trigger
that refuses updates, odd list parameters, an INTEGER ``0`` runtime_key, a busy timeout past
SQLite's int, a bundle over an operator's files, CORS on every JSON answer."""

import json
import os
import sqlite3
from unittest import mock

from click.testing import CliRunner
from datasette.cli import cli
from datasette.database import Database
from datasette.utils import StartupError
from datasette_test import Datasette
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from builders import create_store, dump, insert_turn, turns_rows
from datasette_runtime_truth import config
from datasette_runtime_truth.canned import bundle
from datasette_runtime_truth.migration import apply
from datasette_runtime_truth.upstream import schema

CANONICAL = {"geppetto.runtime@v1": {"runtime_key": "planner"}, "geppetto.inference_id@v1": "inf-1"}
PLUGIN = "datasette-runtime-truth"


def game_db(path):
    """A database of its own whose table happens to be called ``turns``."""
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE turns (id INTEGER PRIMARY KEY, player TEXT);"
                       "INSERT INTO turns (player) VALUES ('ada'), ('bob');")
    conn.close()
    return path


def turns_db(path, shape="pre-cutover", turns=(("c1", "s1", "t1"),)):
    conn = create_store(path, shape)
    for conv_id, session_id, turn_id in turns:
        insert_turn(conn, conv_id, session_id, turn_id, metadata=CANONICAL)
    conn.close()
    return path


def datasette(paths, cors=False, **settings):
    return Datasette([str(path) for path in paths], cors=cors, plugin_config={PLUGIN: settings})


async def report_json(ds):
    response = await ds.client.get("/-/runtime-truth.json")
    assert response.status_code == 200, response.text
    return response.json()


# --- 1. a table called turns that is not the upstream's ------------------------------------------

@pytest.mark.asyncio
async def test_an_unrelated_turns_table_is_left_alone_everywhere(tmp_path, capsys):
    store, game = turns_db(tmp_path / "turns.db"), game_db(tmp_path / "game.db")
    before = dump(game)
    ds = datasette([store, game], migrate_on_startup=True)
    await ds.invoke_startup()
    err = capsys.readouterr().err
    assert err.count("game") == 1
    assert ("datasette-runtime-truth: game is not a turns.db (its turns table has no conv_id, "
            "session_id, turn_id columns): the plugin leaves it alone\n") in err
    assert dump(game) == before
    assert [db["database"] for db in (await report_json(ds))["databases"]] == ["turns"]
    metrics = await ds.client.get("/-/runtime-truth/metrics")
    assert metrics.status_code == 200
    assert 'database="game"' not in metrics.text
    for url in ("/-/runtime-truth/game/preview", "/-/runtime-truth/game/switches.json",
                "/game/turns_schema", "/-/runtime-truth/game/api/debug/conversations"):
        assert (await ds.client.get(url)).status_code == 404, url
    assert (await ds.client.get("/api/debug/turns?conv_id=c1")).status_code == 200
    assert dump(game) == before


def test_a_turns_table_named_in_another_case_is_migrated_once(tmp_path):
    path = turns_db(tmp_path / "turns.db")
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE turns RENAME TO renamed")
    conn.execute("ALTER TABLE renamed RENAME TO Turns")
    conn.close()
    report = migrate_json(path)
    assert (report["columns_added"], report["runtime_key_filled"]) == (["runtime_key", "inference_id"], 1)
    assert migrate_json(path)["changed"] is False
    assert [row[3:] for row in turns_rows(path)] == [("planner", "inf-1")]


def view_db(path):
    """A database whose ``turns`` is a view with the upstream's key columns."""
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE chat (conv_id TEXT, session_id TEXT, turn_id TEXT);"
                       "INSERT INTO chat VALUES ('c1', 's1', 't1');"
                       "CREATE VIEW turns AS SELECT * FROM chat;")
    conn.close()
    return path


def without_rowid_db(path):
    """A database whose ``turns`` has the upstream's key columns but no rowid."""
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE turns (conv_id TEXT, session_id TEXT, turn_id TEXT, "
                       "turn_metadata_json TEXT, PRIMARY KEY (conv_id, session_id, turn_id)) WITHOUT ROWID;"
                       """INSERT INTO turns VALUES ('c1', 's1', 't1', '{"inference_id": "inf-1"}');""")
    conn.close()
    return path


@pytest.mark.asyncio
@pytest.mark.parametrize("build, name, problem", [
    (view_db, "view", "turns is a view, not a table"),
    (without_rowid_db, "norowid", "turns is a WITHOUT ROWID table, which no upstream version wrote"),
])
async def test_a_view_or_a_table_without_rowid_called_turns_is_left_alone(tmp_path, capsys, build, name, problem):
    path = build(tmp_path / f"{name}.db")
    before = dump(path)
    ds = datasette([path], migrate_on_startup=True)
    assert await report_json(ds) == {"format_version": 1, "status": "no turns database", "databases": []}
    assert capsys.readouterr().err == (
        f"datasette-runtime-truth: {name} is not a turns.db ({problem}): the plugin leaves it alone\n")
    for url in (f"/-/runtime-truth/{name}/preview", f"/-/runtime-truth/{name}/conversation?conv_id=c1",
                f"/{name}/runtime_history?conv_id=c1"):
        assert (await ds.client.get(url)).status_code == 404, url
    assert (await ds.client.get("/-/runtime-truth/search.json?q=inf-1")).json()["searched"] == []
    assert dump(path) == before


@pytest.mark.asyncio
async def test_a_turns_table_of_only_the_key_columns_is_shown_not_a_500(tmp_path):
    path = tmp_path / "turns.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE turns (conv_id TEXT, session_id TEXT, turn_id TEXT);"
                       "INSERT INTO turns VALUES ('c1', 's1', 't2'), ('c1', 's1', 't1');")
    conn.close()
    ds = Datasette([str(path)])
    page = await ds.client.get("/-/runtime-truth/turns/conversation?conv_id=c1")
    assert page.status_code == 200
    assert page.text.index('"turn_id">t1<') < page.text.index('"turn_id">t2<')


@pytest.mark.parametrize("command", ["migrate", "check"])
@pytest.mark.parametrize("build, problem", [
    (game_db, "its turns table has no conv_id, session_id, turn_id columns"),
    (view_db, "turns is a view, not a table"),
    (without_rowid_db, "turns is a WITHOUT ROWID table, which no upstream version wrote"),
])
def test_migrate_and_check_refuse_an_unrelated_turns_table(tmp_path, command, build, problem):
    other = build(tmp_path / "other.db")
    before = dump(other)
    result = CliRunner().invoke(cli, ["runtime-truth", command, str(other)])
    assert (result.exit_code, result.output) == (2, f"Error: {other}: not a turns.db ({problem})\n")
    assert dump(other) == before


@pytest.mark.asyncio
async def test_a_configured_unrelated_turns_table_is_reported_not_altered(tmp_path, capsys):
    game = game_db(tmp_path / "game.db")
    before = dump(game)
    ds = datasette([game], database="game", migrate_on_startup=True)
    data = await report_json(ds)
    assert capsys.readouterr().err == (
        "datasette-runtime-truth: game is not a turns.db (its turns table has no conv_id, "
        "session_id, turn_id columns): the plugin leaves it alone\n")
    assert data["status"] == "no turns database"
    assert [(db["database"], db["status"], db["problem"], db["checks"]) for db in data["databases"]] == [
        ("game", "not a turns.db", "its turns table has no conv_id, session_id, turn_id columns", [])]
    assert dump(game) == before


@pytest.mark.asyncio
async def test_a_migration_inside_datasette_refuses_an_unrelated_turns_table(tmp_path):
    game = game_db(tmp_path / "game.db")
    before = dump(game)
    ds = Datasette([str(game)])
    with pytest.raises(apply.NotATurnsDatabase) as error:
        await apply.migrate_database(ds.databases["game"])
    assert str(error.value) == "game: not a turns.db (its turns table has no conv_id, session_id, turn_id columns)"
    assert dump(game) == before


# --- 2. settings: strings read as numbers, anything else refuses to start in one line ------------

@pytest.mark.asyncio
async def test_numbers_and_booleans_given_as_strings_are_read_as_such(tmp_path):
    store = turns_db(tmp_path / "turns.db")
    ds = datasette([store], report_max_age="30", max_payload_chars=" 100 ", migrate_on_startup="true")
    await ds.invoke_startup()
    assert [config.setting(ds, name) for name in ("report_max_age", "max_payload_chars", "migrate_on_startup")] == [
        30.0, 100, True]
    assert turns_rows(store) == [("c1", "s1", "t1", "planner", "inf-1")]
    assert (await report_json(ds))["databases"][0]["turns"] == 1
    conn = sqlite3.connect(store)
    insert_turn(conn, "c1", "s1", "t2", metadata=CANONICAL)
    conn.close()
    assert (await report_json(ds))["databases"][0]["turns"] == 1  # the store moved: within 30 s, kept
    assert (await ds.client.get("/-/runtime-truth.json?refresh=1")).json()["databases"][0]["turns"] == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("settings, message", [
    ({"max_payload_chars": "abc"}, 'max_payload_chars is "abc": expected a whole number of at least 1'),
    ({"max_payload_chars": 0}, "max_payload_chars is 0: expected a whole number of at least 1"),
    ({"max_payload_chars": "99999999999999999999"},
     'max_payload_chars is "99999999999999999999": expected a whole number of at least 1'),
    ({"report_max_age": "soon"}, 'report_max_age is "soon": expected a number of seconds, 0 or more'),
    ({"report_max_age": "nan"}, 'report_max_age is "nan": expected a number of seconds, 0 or more'),
    ({"report_max_age": True}, "report_max_age is true: expected a number of seconds, 0 or more"),
    ({"report_max_age": 2**1024}, f"report_max_age is {2**1024}: expected a number of seconds, 0 or more"),
    ({"rules": "Legacy"}, 'rules is "Legacy": expected canonical or legacy'),
    ({"rules": None}, "rules is null (an unset $env variable gives null): expected canonical or legacy"),
    ({"migrate_on_startup": "yes"}, 'migrate_on_startup is "yes": expected true or false'),
    ({"database": ["turns", 3]}, 'database is ["turns", 3]: expected a database name or a list of names'),
    ({"timeline_database": ""}, 'timeline_database is "": expected a database name'),
    ({"Rules": "legacy"}, 'unknown setting "Rules" (did you mean "rules"?); the settings are database, '
                          "timeline_database, migrate_on_startup, rules, report_max_age, max_payload_chars, "
                          "payload_workers, payload_process_chars"),
    ({"payload_workers": -1}, "payload_workers is -1: expected a whole number, 0 or more"),
    ({"payload_process_chars": "1.5"}, 'payload_process_chars is "1.5": expected a whole number, 0 or more'),
    ({"database": "nope"}, "database 'nope' is not attached; attached: turns"),
])
async def test_a_setting_it_cannot_take_refuses_to_start_in_one_line(tmp_path, settings, message):
    ds = Datasette([str(turns_db(tmp_path / "turns.db"))], plugin_config={PLUGIN: settings})
    with pytest.raises(StartupError) as error:
        await ds.invoke_startup()
    assert str(error.value) == f"{PLUGIN}: {message}"


def test_datasette_serve_refuses_in_one_line_and_reads_env_strings(tmp_path):
    store = turns_db(tmp_path / "turns.db", "migrated")
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"plugins": {PLUGIN: {"report_max_age": {"$env": "RT_AGE"},
                                                         "rules": {"$env": "RT_RULES"}}}}))
    command = ["serve", str(store), "-m", str(metadata), "--get", "/-/runtime-truth.json"]
    good = CliRunner().invoke(cli, command, env={"RT_AGE": "30", "RT_RULES": "legacy"})
    assert good.exit_code == 0, good.output
    assert json.loads(good.output)["databases"][0]["rules"] == "legacy"
    bad = CliRunner().invoke(cli, command, env={"RT_AGE": "30"})
    assert (bad.exit_code, bad.output) == (1, (
        f"Error: {PLUGIN}: rules is null (an unset $env variable gives null): expected canonical or legacy\n"))


@pytest.mark.asyncio
async def test_a_timeline_database_without_timeline_conversations_is_no_timeline_store(tmp_path):
    store = turns_db(tmp_path / "turns.db", "migrated")
    apply.migrate_path(store)
    ds = datasette([store], timeline_database="turns")
    for url in ("/-/runtime-truth", "/-/runtime-truth/metrics",
                "/-/runtime-truth/turns/conversation?conv_id=c1", "/-/runtime-truth/turns/pointers"):
        assert (await ds.client.get(url)).status_code == 200, url
    data = await report_json(ds)
    pointer = next(check for check in data["databases"][0]["checks"] if check["id"] == "pointer")
    assert pointer["figure"] == (
        "timeline_database 'turns' is not attached, or has no timeline_conversations table")
    conversations = await ds.client.get("/api/debug/conversations")
    assert (conversations.status_code, conversations.json()["error"]) == (
        404, f"{PLUGIN}: timeline_database 'turns' has no timeline_conversations table")


@pytest.mark.asyncio
async def test_a_database_named_twice_is_reported_once(tmp_path):
    ds = datasette([turns_db(tmp_path / "turns.db")], database=["turns", "turns"])
    assert [db["database"] for db in (await report_json(ds))["databases"]] == ["turns"]
    metrics = await ds.client.get("/-/runtime-truth/metrics")
    assert metrics.text.count('runtime_truth_turns{database="turns"} 1.0\n') == 1


# --- 3. a configured database with no turns table yet ---------------------------------------------

@pytest.mark.asyncio
async def test_a_database_without_a_turns_table_yet_is_reported_per_database(tmp_path, capsys):
    store = turns_db(tmp_path / "turns.db", "migrated")
    chat = tmp_path / "chat.db"
    sqlite3.connect(chat).close()
    ds = datasette([store, chat], database=["turns", "chat"], migrate_on_startup=True)
    data = await report_json(ds)
    assert capsys.readouterr().err == (
        "datasette-runtime-truth: chat has no turns table yet: nothing to check or migrate until "
        "the chat server creates it\n")
    assert data["status"] == "fails"  # turns' own verdict: it still needs its backfill
    by_name = {db["database"]: db for db in data["databases"]}
    assert (by_name["turns"]["status"], by_name["turns"]["turns"]) == ("fails", 1)
    assert (by_name["chat"]["status"], by_name["chat"]["problem"], by_name["chat"]["checks"],
            by_name["chat"]["preview_url"]) == ("no turns table yet", "it has no turns table", [], None)
    page = await ds.client.get("/-/runtime-truth")
    assert page.status_code == 200
    assert "it has no turns table, so there is\n    nothing to check until the chat server creates it" in page.text
    metrics = await ds.client.get("/-/runtime-truth/metrics")
    assert metrics.status_code == 200
    assert 'runtime_truth_turns{database="turns"} 1.0\n' in metrics.text
    assert 'database="chat"' not in metrics.text
    assert (await ds.client.get("/-/runtime-truth/chat/preview")).status_code == 404
    assert sqlite3.connect(chat).execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


def test_check_refuses_a_database_without_turns(tmp_path):
    chat = tmp_path / "chat.db"
    sqlite3.connect(chat).execute("CREATE TABLE notes (x)").connection.close()
    result = CliRunner().invoke(cli, ["runtime-truth", "check", str(chat)])
    assert (result.exit_code, result.output) == (2, f"Error: {chat}: not a turns.db (it has no turns table)\n")


# --- 4. a database replaced at runtime under the same name ----------------------------------------

@pytest.mark.asyncio
async def test_a_database_replaced_under_the_same_name_is_reported_afresh(tmp_path):
    first = turns_db(tmp_path / "first.db")
    apply.migrate_path(first)
    second = turns_db(tmp_path / "second.db", "pre-cutover",
                      turns=(("c1", "s1", "t1"), ("c1", "s1", "t2"), ("c2", "s1", "t3")))
    ds = Datasette([str(first)])
    before = (await report_json(ds))["databases"]
    assert [(db["database"], db["path"], db["turns"], db["status"]) for db in before] == [
        ("first", str(first), 1, "passes")]
    ds.remove_database("first")
    ds.add_database(Database(ds, path=str(second), is_mutable=True), name="first")
    after = (await report_json(ds))["databases"]
    assert [(db["database"], db["path"], db["turns"], db["status"]) for db in after] == [
        ("first", str(second), 3, "fails")]


@pytest.mark.asyncio
async def test_a_configured_database_removed_at_runtime_leaves_the_others_served(tmp_path):
    first, second = turns_db(tmp_path / "first.db"), turns_db(tmp_path / "second.db")
    ds = datasette([first, second], database=["first", "second"])
    await ds.invoke_startup()
    ds.remove_database("first")
    assert [db["database"] for db in (await report_json(ds))["databases"]] == ["second"]
    for url in ("/-/runtime-truth", "/-/runtime-truth/metrics", "/-/runtime-truth/second/preview",
                "/-/runtime-truth/second/api/debug/turns?conv_id=c1"):
        assert (await ds.client.get(url)).status_code == 200, url
    default = await ds.client.get("/api/debug/turns?conv_id=c1")
    assert (default.status_code, default.json()["error"]) == (404, "turn store not enabled")


# --- 6. a trigger that refuses or ignores updates ---------------------------------------------------

@pytest.mark.parametrize("trigger, error", [
    ("SELECT RAISE(ABORT, 'turns are read-only here')", "turns are read-only here"),
    ("SELECT RAISE(IGNORE)", "a trigger left the row unchanged"),
])
def test_migrate_counts_only_what_was_written(tmp_path, trigger, error):
    path = turns_db(tmp_path / "turns.db", "current",
                    turns=(("c1", "s1", "t1"), ("c1", "s1", "t2"), ("c2", "s1", "t3")))
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TRIGGER frozen BEFORE UPDATE ON turns BEGIN {trigger}; END")
    conn.commit()
    conn.close()
    report = apply.migrate_path(path)
    assert (report.runtime_key_filled, report.inference_id_filled, report.skipped_unwritable,
            report.unwritable_error, report.missing_runtime_key, report.missing_inference_id) == (
        0, 0, 3, error, 3, 3)
    assert [row[3:] for row in turns_rows(path)] == [("", "")] * 3


def test_migrate_counts_the_rows_a_trigger_let_through(tmp_path):
    path = turns_db(tmp_path / "turns.db", "current",
                    turns=(("c1", "s1", "t1"), ("c1", "s1", "t2"), ("c2", "s1", "t3")))
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER frozen BEFORE UPDATE ON turns WHEN old.turn_id = 't2' "
                 "BEGIN SELECT RAISE(IGNORE); END")
    conn.commit()
    conn.close()
    report = apply.migrate_path(path)
    assert (report.runtime_key_filled, report.inference_id_filled, report.skipped_unwritable,
            report.missing_runtime_key) == (2, 2, 1, 1)
    assert [row[2:] for row in turns_rows(path)] == [
        ("t1", "planner", "inf-1"), ("t2", "", ""), ("t3", "planner", "inf-1")]


def with_trigger(path, sql):
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()
    return path


def migrate_json(path):
    result = CliRunner().invoke(cli, ["runtime-truth", "migrate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_trigger_refusing_the_timestamp_fill_costs_only_its_rows(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    for turn_id in ("t1", "t2"):
        insert_turn(conn, "c1", "s1", turn_id, metadata=CANONICAL, updated=0)
    conn.close()
    with_trigger(path, "CREATE TRIGGER frozen BEFORE UPDATE ON turns WHEN old.turn_id = 't2' "
                       "BEGIN SELECT RAISE(ABORT, 'turn t2 is frozen'); END")
    report = migrate_json(path)
    assert [report[key] for key in ("updated_at_ms_filled", "runtime_key_filled", "skipped_unwritable",
                                    "unwritable_error", "missing_runtime_key")] == [
        1, 1, 1, "turn t2 is frozen", 1]
    assert turns_rows(path, "turn_id, updated_at_ms, runtime_key") == [("t1", 1000, "planner"), ("t2", 0, "")]


@pytest.mark.asyncio
async def test_migrate_on_startup_says_which_rows_it_could_not_write(tmp_path, capsys):
    path = with_trigger(turns_db(tmp_path / "turns.db"),
                        "CREATE TRIGGER frozen BEFORE UPDATE ON turns BEGIN SELECT RAISE(ABORT, 'frozen'); END")
    await datasette([path], migrate_on_startup=True).invoke_startup()
    assert capsys.readouterr().err == (
        "datasette-runtime-truth: turns: migrated (0 runtime_key and 0 inference_id filled, 0 rows "
        "skipped for bad metadata, 1 that cannot be written: frozen)\n")


def test_a_trigger_undoing_the_backfill_is_not_counted_as_filled(tmp_path):
    path = with_trigger(turns_db(tmp_path / "turns.db", "current", turns=(("c1", "s1", "t1"), ("c1", "s1", "t2"))),
                        "CREATE TRIGGER undo AFTER UPDATE ON turns BEGIN "
                        "UPDATE turns SET runtime_key = '' WHERE rowid = new.rowid; END")
    report = migrate_json(path)
    assert [report[key] for key in ("runtime_key_filled", "inference_id_filled", "missing_runtime_key",
                                    "missing_inference_id")] == [0, 2, 2, 0]
    assert [row[3:] for row in turns_rows(path)] == [("", "inf-1")] * 2


def test_a_trigger_rolling_back_the_transaction_stops_migrate_in_one_line(tmp_path):
    path = with_trigger(turns_db(tmp_path / "turns.db", "current"),
                        "CREATE TRIGGER veto BEFORE UPDATE ON turns BEGIN SELECT RAISE(ROLLBACK, 'veto'); END")
    before = dump(path)
    result = CliRunner().invoke(cli, ["runtime-truth", "migrate", str(path)])
    assert (result.exit_code, result.output) == (1, (
        f"Error: {path}: a trigger on turns rolled back the transaction (veto): nothing of this step "
        "was written; every step before it is complete: change the trigger, then rerun\n"))
    assert dump(path) == before


# --- 7. the switches list's parameters and time limit --------------------------------------------

def switched_store(path, conversations=1):
    conn = create_store(path, "migrated")
    conn.executemany(
        "INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, updated_at_ms, runtime_key, "
        "inference_id) VALUES (?, 's', ?, 1000, ?, ?, 'i')",
        [(f"c{n:05}", f"t{turn}", 1000 + turn, runtime)
         for n in range(conversations) for turn, runtime in enumerate(("a", "b"))])
    conn.commit()
    conn.close()
    return path


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["²", "99999999999999999999", "1.5", "abc"])
@pytest.mark.parametrize("suffix", ["", ".json"])
async def test_switches_after_switches_must_be_a_whole_number(tmp_path, value, suffix):
    ds = Datasette([str(switched_store(tmp_path / "turns.db"))])
    response = await ds.client.get(f"/-/runtime-truth/turns/switches{suffix}",
                                   params={"after_switches": value, "after_conv": "c"})
    assert response.status_code == 400
    assert f"invalid after_switches: expected a whole number, got {value!r}" in (
        response.json()["error"] if suffix else response.text.replace("&#39;", "'"))


@pytest.mark.asyncio
async def test_switches_past_the_time_limit_is_a_503(tmp_path):
    ds = Datasette([str(switched_store(tmp_path / "turns.db", conversations=10_000))])
    await ds.invoke_startup()
    ds.sql_time_limit_ms = 1
    response = await ds.client.get("/-/runtime-truth/turns/switches.json")
    assert response.status_code == 503
    assert response.json()["error"] == (
        "the query took longer than sql_time_limit_ms (1 ms): raise it with --setting sql_time_limit_ms N")


# --- 8. an INTEGER runtime_key holding 0 is a value, as Go reads it -------------------------------

INTEGER_TURNS_DDL = """
CREATE TABLE turns (conv_id TEXT NOT NULL, session_id TEXT NOT NULL, turn_id TEXT NOT NULL,
  turn_created_at_ms INTEGER NOT NULL, turn_metadata_json TEXT NOT NULL DEFAULT '{}',
  turn_data_json TEXT NOT NULL DEFAULT '{}', runtime_key INTEGER NOT NULL DEFAULT 0,
  inference_id TEXT NOT NULL DEFAULT '', updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (conv_id, session_id, turn_id));
"""


@pytest.mark.asyncio
async def test_an_integer_zero_runtime_key_is_kept_and_every_figure_agrees(tmp_path):
    path = tmp_path / "turns.db"
    conn = sqlite3.connect(path)
    conn.executescript(INTEGER_TURNS_DDL)
    conn.execute("INSERT INTO turns VALUES ('c1', 's1', 't1', 1, ?, '{}', 0, '', 2)", (json.dumps(CANONICAL),))
    conn.commit()
    conn.close()
    check = CliRunner().invoke(cli, ["runtime-truth", "check", str(path), "--json"])
    would_fill = {c["id"]: c for c in json.loads(check.output)["databases"][0]["checks"]}["would_fill"]["counts"]
    assert would_fill == {"rows": 1, "runtime_key": 0, "inference_id": 1}
    ds = Datasette([str(path)])
    preview = (await ds.client.get("/-/runtime-truth/turns/preview.json")).json()["rows"]
    assert [(row["runtime_key"], row["action"], row["new_runtime_key"], row["new_inference_id"])
            for row in preview] == [(0, "writes", "0", "inf-1")]
    report = apply.migrate_path(path)
    assert (report.runtime_key_filled, report.inference_id_filled, report.values_trimmed,
            report.missing_runtime_key) == (0, 1, 0, 0)
    assert turns_rows(path) == [("c1", "s1", "t1", 0, "inf-1")]


# --- 9. a busy timeout SQLite cannot hold ---------------------------------------------------------

def test_busy_timeout_past_sqlites_int_is_refused(tmp_path):
    path = turns_db(tmp_path / "turns.db")
    before = dump(path)
    result = CliRunner().invoke(cli, ["runtime-truth", "migrate", str(path), "--busy-timeout", "2147483648"])
    assert result.exit_code == 2
    assert "Invalid value for '--busy-timeout': 2147483648 is not in the range 0<=x<=2147483647." in result.output
    assert dump(path) == before
    assert CliRunner().invoke(cli, ["runtime-truth", "migrate", str(path), "--busy-timeout",
                                    "2147483647"]).exit_code == 0


# --- 10. bundle over an operator's files ---------------------------------------------------------

def run_bundle(*args):
    return CliRunner().invoke(cli, ["runtime-truth", "bundle", *map(str, args)])


def test_bundle_never_writes_through_a_symbolic_link(tmp_path):
    directory, outside = tmp_path / "bundle", tmp_path / "outside.yml"
    directory.mkdir()
    (directory / "metadata.yml").symlink_to(outside)
    refused = run_bundle(directory)
    assert (refused.exit_code, refused.output) == (1, (
        f"Error: {directory / 'metadata.yml'} is a symbolic link (use --force to replace the link "
        "itself); nothing was written\n"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle"]
    assert [path.name for path in directory.iterdir()] == ["metadata.yml"]
    forced = run_bundle(directory, "--force")
    assert forced.exit_code == 0, forced.output
    assert not (directory / "metadata.yml").is_symlink()
    assert not outside.exists()


def test_bundle_keeps_an_operators_own_files_without_force(tmp_path):
    theirs = "databases:\n  turns:\n    allow:\n      id: root\n"
    (tmp_path / "metadata.yml").write_text(theirs)
    result = run_bundle(tmp_path)
    assert (result.exit_code, result.output) == (1, (
        f"Error: {tmp_path / 'metadata.yml'} already exists and was not written by this command "
        "(use --force to replace it); nothing was written\n"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metadata.yml"]
    assert (tmp_path / "metadata.yml").read_text() == theirs
    forced = run_bundle(tmp_path, "--force")
    assert forced.exit_code == 0
    assert (tmp_path / "metadata.yml").read_text() == bundle.config_file("0.65")
    assert run_bundle(tmp_path).output == ""  # its own files are rewritten freely, and are current


def test_bundle_keeps_an_operators_own_template(tmp_path):
    run_bundle(tmp_path)
    page = tmp_path / "templates" / "query-turns-turns_schema.html"
    page.write_text("{% extends 'query.html' %}\n")
    result = run_bundle(tmp_path)
    assert result.exit_code == 1
    assert page.read_text() == "{% extends 'query.html' %}\n"


@pytest.mark.parametrize("layout", ["below a file", "templates is a file"])
def test_bundle_where_it_cannot_write_says_so_and_writes_nothing(tmp_path, layout):
    if layout == "below a file":
        (tmp_path / "file").write_text("x")
        target, blocker = tmp_path / "file" / "bundle", tmp_path / "file"
    else:
        target = blocker = tmp_path / "bundle"
        target.mkdir()
        blocker = target / "templates"
        blocker.write_text("x")
    result = run_bundle(target)
    assert (result.exit_code, result.output) == (1, f"Error: {blocker} is not a directory; nothing was written\n")
    assert sorted(path.name for path in tmp_path.rglob("*")) == (
        ["file"] if layout == "below a file" else ["bundle", "templates"])
    assert run_bundle(target, "--check").exit_code == 1


# --- 11. CORS on every JSON answer -----------------------------------------------------------------

@pytest.mark.asyncio
async def test_every_json_answer_carries_cors_headers(tmp_path):
    store = switched_store(tmp_path / "turns.db")
    ds = Datasette([str(store)], cors=True)
    for url in ("/-/runtime-truth/turns/preview.json", "/-/runtime-truth/turns/switches.json",
                "/-/runtime-truth/turns/pointers.json", "/-/runtime-truth.json", "/-/runtime-truth/metrics",
                "/-/runtime-truth/turns/preview.csv", "/api/debug/conversations"):
        response = await ds.client.get(url)
        assert response.status_code == 200, url
        assert response.headers.get("access-control-allow-origin") == "*", url


@pytest.mark.asyncio
async def test_every_refusal_of_the_plugin_carries_cors_headers(tmp_path):
    store = switched_store(tmp_path / "turns.db")
    ds = Datasette([str(store)], cors=True,
                   metadata={"databases": {"turns": {"tables": {"turns": {"allow": {"id": "root"}}}}}})
    for url in ("/-/runtime-truth", "/-/runtime-truth.json", "/-/runtime-truth/metrics",
                "/-/runtime-truth/turns/conversation?conv_id=c1", "/-/runtime-truth/turns/preview",
                "/-/runtime-truth/turns/preview.csv", "/-/runtime-truth/turns/switches.json",
                "/-/runtime-truth/turns/pointers", "/api/debug/turns?conv_id=c1"):
        response = await ds.client.get(url)
        assert (response.status_code, response.headers.get("access-control-allow-origin")) == (403, "*"), url


# --- any settings: startup refuses in one line, or nothing answers 500 ----------------------------

SETTING_NAMES = ["database", "timeline_database", "migrate_on_startup", "rules", "report_max_age",
                 "max_payload_chars", "payload_workers", "payload_process_chars", "Rules", "RULES", "report-max-age", "x"]
setting_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-5, max_value=10**20), st.just(2**1024), st.floats(),
    st.text(max_size=6),
    st.sampled_from(["30", " 0 ", "1e3", "canonical", "legacy", "Legacy", "CANONICAL", "true", "False",
                     "turns", "timeline", "8000000", "-1", "nan", "inf", "2147483648"]),
    st.lists(st.sampled_from(["turns", "timeline", "nope"]), max_size=2),
    st.fixed_dictionaries({"$env": st.sampled_from(["RT_SETTING_30", "RT_SETTING_LEGACY", "RT_SETTING_UNSET"])}),
)
plugin_settings = st.one_of(st.dictionaries(st.sampled_from(SETTING_NAMES), setting_values, max_size=4),
                            st.sampled_from([None, "legacy", ["rules"]]))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("settings")
    store = switched_store(folder / "turns.db")
    timeline = folder / "timeline.db"
    conn = sqlite3.connect(timeline)
    conn.executescript(schema.TIMELINE_DDL)
    conn.execute("INSERT INTO timeline_conversations (conv_id, session_id, runtime_key, created_at_ms, "
                 "last_activity_ms) VALUES ('c00000', 's', 'a', 1, 2)")
    conn.commit()
    conn.close()
    return store, timeline


@pytest.mark.asyncio
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(drawn=plugin_settings)
async def test_any_settings_refuse_in_one_line_or_answer_below_500(stores, drawn):
    env = {"RT_SETTING_30": "30", "RT_SETTING_LEGACY": "legacy"}
    with mock.patch.dict(os.environ, env):
        ds = Datasette([str(path) for path in stores], plugin_config={PLUGIN: drawn})
        try:
            await ds.invoke_startup()
        except StartupError as error:
            assert str(error).startswith(f"{PLUGIN}: ") and "\n" not in str(error), str(error)
            return
        for url in ANY_SETTINGS_URLS:
            response = await ds.client.get(url)
            assert response.status_code < 500, (drawn, url, response.status_code, response.text[-500:])


ANY_SETTINGS_URLS = [
    "/-/runtime-truth", "/-/runtime-truth.json", "/-/runtime-truth/metrics",
    "/-/runtime-truth/turns/preview", "/-/runtime-truth/turns/preview.json", "/-/runtime-truth/turns/preview.csv",
    "/-/runtime-truth/turns/switches.json", "/-/runtime-truth/turns/pointers.json",
    "/-/runtime-truth/turns/conversation?conv_id=c00000", "/turns/runtime_history?conv_id=c00000",
    "/turns/runtime_switches.json?_shape=array", "/api/debug/conversations", "/api/debug/turns?conv_id=c00000",
    "/api/debug/turn/c00000/s/t0", "/-/runtime-truth/turns/api/debug/conversations/c00000", "/turns",
]
