"""The startup hook: a hint by default, the migration when asked, never on an immutable file."""

import pytest
from datasette.utils import StartupError
from datasette_test import Datasette

from builders import create_store, dump, insert_turn, turns_rows

CANONICAL = {"geppetto.runtime@v1": {"runtime_key": "planner"}, "geppetto.inference_id@v1": "inf-42"}
LEGACY = {"geppetto.runtime@v1": "agent", "inference_id": "inf-7"}


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "pre-cutover")
    insert_turn(conn, "conv-1", "session-1", "turn-1", metadata=CANONICAL)
    insert_turn(conn, "conv-1", "session-1", "turn-2", metadata=LEGACY)
    conn.close()
    return path


@pytest.mark.asyncio
async def test_default_writes_nothing_and_names_the_command(store, capsys):
    before = dump(store)
    ds = Datasette([str(store)])
    await ds.invoke_startup()
    assert capsys.readouterr().err == (
        "datasette-runtime-truth: turns needs the runtime-truth migration: "
        f"run `datasette runtime-truth migrate {store}`\n"
    )
    response = await ds.client.get("/turns/turns.json?_shape=array")
    assert response.status_code == 200
    assert dump(store) == before


@pytest.mark.asyncio
async def test_migrated_store_starts_quietly(tmp_path, capsys):
    path = tmp_path / "turns.db"
    create_store(path, "migrated").close()
    ds = Datasette([str(path)], plugin_config={"datasette-runtime-truth": {"migrate_on_startup": True}})
    await ds.invoke_startup()
    assert capsys.readouterr().err == ""


@pytest.mark.asyncio
async def test_migrate_on_startup(store, capsys):
    ds = Datasette([str(store)], plugin_config={"datasette-runtime-truth": {"migrate_on_startup": True}})
    await ds.invoke_startup()
    assert capsys.readouterr().err == (
        "datasette-runtime-truth: turns: migrated (1 runtime_key and 2 inference_id filled, "
        "0 rows skipped for bad metadata)\n"
    )
    assert turns_rows(store) == [
        ("conv-1", "session-1", "turn-1", "planner", "inf-42"),
        ("conv-1", "session-1", "turn-2", "", "inf-7"),
    ]
    # Datasette sees the new columns without a restart.
    rows = (await ds.client.get("/turns/turns.json?_shape=array&_sort=turn_id")).json()
    assert [(row["turn_id"], row["runtime_key"], row["inference_id"]) for row in rows] == [
        ("turn-1", "planner", "inf-42"),
        ("turn-2", "", "inf-7"),
    ]
    assert list(rows[0])[-2:] == ["runtime_key", "inference_id"]


@pytest.mark.asyncio
async def test_migrate_on_startup_with_legacy_rules(store):
    ds = Datasette([str(store)], plugin_config={
        "datasette-runtime-truth": {"migrate_on_startup": True, "rules": "legacy"}})
    await ds.invoke_startup()
    assert turns_rows(store)[1] == ("conv-1", "session-1", "turn-2", "agent", "inf-7")


@pytest.mark.asyncio
async def test_immutable_database_is_skipped(store, capsys):
    before = dump(store)
    ds = Datasette([], immutables=[str(store)],
                   plugin_config={"datasette-runtime-truth": {"migrate_on_startup": True}})
    await ds.invoke_startup()
    assert capsys.readouterr().err == (
        "datasette-runtime-truth: turns is immutable, so migrate_on_startup skips it; serve it mutable "
        f"or run `datasette runtime-truth migrate {store}`\n"
    )
    assert dump(store) == before


@pytest.mark.asyncio
async def test_configured_database_only(tmp_path, store, capsys):
    other = tmp_path / "other_turns.db"
    conn = create_store(other, "pre-cutover")
    insert_turn(conn, "c", "s", "t", metadata=CANONICAL)
    conn.close()
    before = dump(other)
    ds = Datasette([str(store), str(other)], plugin_config={
        "datasette-runtime-truth": {"database": ["turns"], "migrate_on_startup": True}})
    await ds.invoke_startup()
    assert turns_rows(store)[0][3:] == ("planner", "inf-42")
    assert dump(other) == before
    assert "other_turns" not in capsys.readouterr().err


@pytest.mark.asyncio
async def test_unknown_configured_database_is_a_clear_error(store):
    ds = Datasette([str(store)], plugin_config={"datasette-runtime-truth": {"database": "nope"}})
    with pytest.raises(StartupError) as error:
        await ds.invoke_startup()
    assert str(error.value) == "datasette-runtime-truth: database 'nope' is not attached; attached: turns"
