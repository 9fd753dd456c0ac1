"""The report's figures are computed once and reused until the store changes: warm loads, stale
figures while one recomputation runs, ?refresh=1, report_max_age, changes from other processes."""

import asyncio
import subprocess
import sys

import pytest
from datasette_test import Datasette

from builders import create_store, insert_turn
from datasette_runtime_truth.report import cache

CANONICAL = {"geppetto.runtime@v1": {"runtime_key": "planner"}, "geppetto.inference_id@v1": "inf-1"}


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "turns.db"
    conn = create_store(path, "migrated")
    insert_turn(conn, "c1", "s1", "t1", metadata=CANONICAL, runtime_key="planner", inference_id="inf-1")
    conn.close()
    return path


def add_turn_elsewhere(path, turn_id):
    """Commit a turn from another process, as the chat server would."""
    subprocess.run([sys.executable, "-c", (
        "import sqlite3, sys; conn = sqlite3.connect(sys.argv[1]); "
        "conn.execute(\"INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, updated_at_ms) "
        "VALUES ('c1', 's1', ?, 5000, 5000)\", (sys.argv[2],)); conn.commit()"
    ), str(path), turn_id], check=True)


def datasette(path, **settings):
    return Datasette([str(path)], plugin_config={"datasette-runtime-truth": settings})


async def figures(ds, query=""):
    data = (await ds.client.get(f"/-/runtime-truth.json{query}")).json()
    db = data["databases"][0]
    return db["turns"], db["computed_at"]


async def outdated(ds):
    """The JSON's ``outdated`` and the metric's, which must agree."""
    data = (await ds.client.get("/-/runtime-truth.json")).json()
    metrics = (await ds.client.get("/-/runtime-truth/metrics")).text.splitlines()
    return data["databases"][0]["outdated"], 'runtime_truth_report_outdated{database="turns"} 1.0' in metrics


@pytest.mark.asyncio
async def test_nothing_changed_answers_from_the_last_computation(store):
    ds = datasette(store)
    first = await figures(ds)
    assert first[0] == 1
    assert await figures(ds) == first
    page = await ds.client.get("/-/runtime-truth")
    assert f'<time datetime="{first[1]}">{first[1][:10]} {first[1][11:19]} UTC</time>' in page.text


@pytest.mark.asyncio
async def test_a_commit_from_another_process_waits_for_max_age_or_refresh(store):
    ds = datasette(store)  # report_max_age defaults to 30 s
    first = await figures(ds)
    assert await outdated(ds) == (False, False)
    add_turn_elsewhere(store, "t2")
    assert await figures(ds) == first
    assert await outdated(ds) == (True, True)
    turns, computed_at = await figures(ds, "?refresh=1")
    assert (turns, computed_at > first[1]) == (2, True)
    assert await figures(ds) == (turns, computed_at)
    assert await outdated(ds) == (False, False)


@pytest.mark.asyncio
async def test_after_max_age_a_load_answers_stale_and_starts_one_recomputation(store):
    ds = datasette(store, report_max_age=0)
    first = await figures(ds)
    add_turn_elsewhere(store, "t2")
    assert await figures(ds) == first  # served at once, while the recomputation runs
    for _ in range(200):
        turns, computed_at = await figures(ds)
        if turns == 2:
            break
        await asyncio.sleep(0.05)
    assert (turns, computed_at > first[1]) == (2, True)


@pytest.mark.asyncio
async def test_concurrent_cold_loads_share_one_computation(store):
    ds = datasette(store)
    answers = await asyncio.gather(*(figures(ds) for _ in range(6)))
    assert len(set(answers)) == 1


@pytest.mark.asyncio
async def test_concurrent_refreshes_after_a_commit_all_see_it(store):
    ds = datasette(store)
    await figures(ds)
    add_turn_elsewhere(store, "t2")
    answers = await asyncio.gather(*(figures(ds, "?refresh=1") for _ in range(4)))
    assert {turns for turns, _ in answers} == {2}


@pytest.mark.asyncio
async def test_an_immutable_store_is_computed_once(store):
    ds = Datasette([], immutables=[str(store)])
    first = await figures(ds)
    assert await figures(ds) == first
    assert (await figures(ds, "?refresh=1"))[1] > first[1]


async def cache_and_source(store):
    """The report cache of a started Datasette serving ``store``, and that store's Source."""
    ds = datasette(store)
    await ds.invoke_startup()
    return cache.for_datasette(ds), cache.Source(ds.get_database("turns"), None, "timeline", "canonical")


@pytest.mark.asyncio
async def test_a_refresh_arriving_as_a_computation_finishes_computes_again(store):
    # Pollers that resume in the very loop turn in which the computation finishes ask for a
    # refresh there. The finished computation must no longer be listed as running: awaiting a
    # finished task does not yield, so a refresh waiting on it would spin for ever.
    report_cache, source = await cache_and_source(store)
    _, task = report_cache._task(source)
    asked = []

    async def poll():
        while not task.done():
            await asyncio.sleep(0)
        asked.append(report_cache.running.get(source.key, (0, None))[1] is task)
        return await report_cache.get(source, refresh=True)

    answers = await asyncio.gather(*(poll() for _ in range(4)))
    assert asked == [False] * 4
    assert {entry.computed_at > (await task).computed_at for entry in answers} == {True}


@pytest.mark.asyncio
async def test_a_computation_cancelled_before_it_ran_does_not_block_the_next(store):
    # As when a loop shuts down with the computation scheduled: its coroutine never starts.
    report_cache, source = await cache_and_source(store)
    _, task = report_cache._task(source)
    task.cancel()
    await asyncio.sleep(0)
    assert task.cancelled()
    assert (await report_cache.get(source)).report.turns == 1
    assert (await report_cache.get(source, refresh=True)).report.turns == 1
    assert report_cache.running == {}
