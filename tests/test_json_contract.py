"""Every JSON answer of the plugin validates against the schema shipped in the package
(``contract/runtime-truth.schema.json``): the report JSON and ``check --json``, ``migrate --json``,
the preview / pointers / switches lists, and the /api/debug/* bodies and errors."""

import importlib.resources
import json
import shutil
import sqlite3
import urllib.parse

import jsonschema
import pytest
from click.testing import CliRunner
from datasette.cli import cli
from builders import cut_over_and_not
from datasette_test import Datasette

SCHEMA = json.loads(
    (importlib.resources.files("datasette_runtime_truth") / "contract" / "runtime-truth.schema.json").read_text())


def problems(definition, answer):
    """Every way ``answer`` breaks ``$defs/definition``, as messages (empty when it is valid)."""
    validator = jsonschema.Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{definition}"})
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(answer)]


@pytest.fixture(scope="module")
def stores(tmp_path_factory, samples):
    return cut_over_and_not(tmp_path_factory.mktemp("contract"), samples)


def run(*args):
    return CliRunner().invoke(cli, ["runtime-truth", *map(str, args)])


@pytest.mark.asyncio
async def test_every_http_answer_validates(stores):
    ds = Datasette([stores["turns"], stores["timeline"], stores["legacy"]])
    report = (await ds.client.get("/-/runtime-truth.json")).json()
    assert [(db["database"], db["status"]) for db in report["databases"]] == [
        ("turns", "passes"), ("legacy", "fails")]
    item_kinds = {check["id"] for db in report["databases"] for check in db["checks"] if check["items"]}
    assert item_kinds == {"runtime_switches", "pointer"}
    answers = [("report", report)]
    for database in ("turns", "legacy"):
        for page, definition in (("preview", "preview"), ("pointers", "pointers"), ("switches", "switches")):
            answers.append((definition, await _json(ds, f"/-/runtime-truth/{database}/{page}.json?limit=5")))
    conversations = await _json(ds, "/-/runtime-truth/turns/api/debug/conversations")
    conv = conversations["items"][0]
    turns = await _json(ds, f"/-/runtime-truth/turns/api/debug/turns?conv_id={conv['conv_id']}&limit=3")
    turn = turns["items"][0]
    detail_path = "/".join(urllib.parse.quote(turn[key], safe="") for key in ("conv_id", "session_id", "turn_id"))
    answers += [
        ("debug_conversations", conversations),
        ("debug_conversation_detail",
         await _json(ds, f"/-/runtime-truth/turns/api/debug/conversations/{conv['conv_id']}")),
        ("debug_turns", turns),
        ("debug_turn", await _json(ds, f"/-/runtime-truth/turns/api/debug/turn/{detail_path}")),
        ("debug_conversations", await _json(ds, "/-/runtime-truth/legacy/api/debug/conversations")),
        ("error", await _json(ds, "/-/runtime-truth/turns/api/debug/turns", status=400)),
        ("error", await _json(ds, "/-/runtime-truth/turns/api/debug/conversations/nope", status=404)),
    ]
    tiny = Datasette([stores["turns"]], plugin_config={"datasette-runtime-truth": {"max_payload_chars": 1}})
    answers.append(("error", await _json(tiny, f"/api/debug/turns?conv_id={conv['conv_id']}", status=413)))
    assert [(definition, problems(definition, answer)) for definition, answer in answers] == [
        (definition, []) for definition, _ in answers]


@pytest.mark.asyncio
async def test_a_database_with_nothing_to_check_validates(stores, tmp_path):
    """A database with no turns table yet, beside a turns database: its object has a problem and no
    checks, and a problem-free object with no checks does not validate."""
    chat = tmp_path / "chat.db"
    sqlite3.connect(chat).execute("CREATE TABLE notes (x)").connection.close()
    ds = Datasette([stores["turns"], chat], plugin_config={"datasette-runtime-truth": {"database": ["turns", "chat"]}})
    report = await _json(ds, "/-/runtime-truth.json")
    assert [(db["database"], db["status"], db["problem"]) for db in report["databases"]] == [
        ("turns", "passes", None), ("chat", "no turns table yet", "it has no turns table")]
    assert problems("report", report) == []
    chat_report = report["databases"][1]
    broken = problems("database", {**chat_report, "problem": None})
    assert sorted(message.split(":")[0] for message in broken) == ["['checks']", "['preview_url']", "['status']"]


async def _json(ds, path, status=200):
    response = await ds.client.get(path)
    assert response.status_code == status, (path, response.text[:200])
    return response.json()


def test_every_command_answer_validates(stores, tmp_path):
    checked = run("check", stores["turns"], stores["legacy"], "--timeline", stores["timeline"], "--json")
    assert checked.exit_code == 1
    copy = tmp_path / "legacy.db"
    shutil.copy(stores["legacy"], copy)
    dry_run = run("migrate", copy, "--dry-run", "--json")
    migrated = run("migrate", copy, "--json")
    answers = [("report", json.loads(checked.output)), ("migrate_report", json.loads(dry_run.output)),
               ("migrate_report", json.loads(migrated.output))]
    assert [problems(definition, answer) for definition, answer in answers] == [[], [], []]


def test_the_schema_holds_the_contract(stores):
    """Answers in the shapes before the contract (a bare database object from check, coverage
    named after the columns) do not validate."""
    checked = json.loads(run("check", stores["turns"], "--json").output)
    assert sorted(problems("report", checked["databases"][0])) == [
        "[]: 'databases' is a required property", "[]: 'format_version' is a required property",
        "[]: Additional properties are not allowed ('checks', 'computed_at', 'coverage', 'coverage_url', "
        "'database', 'outdated', 'path', 'preview_url', 'problem', 'rules', 'startup_migration_error', "
        "'timeline', 'turns' were unexpected)"]
    day = checked["databases"][0]["coverage"][0]
    old_day = {"day": day["day"], "turns": day["turns"], "runtime_key": day["with_runtime_key"],
               "inference_id": day["with_inference_id"]}
    assert problems("coverage_day", old_day) == [
        "[]: 'with_runtime_key' is a required property", "[]: 'with_inference_id' is a required property",
        "[]: 'with_neither' is a required property",
        "[]: Additional properties are not allowed ('inference_id', 'runtime_key' were unexpected)"]
