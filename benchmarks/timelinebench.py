"""The timeline snapshot route at a 5,000-entity conversation, over a real Datasette server.

A timeline store written with the project's own generator (``sample.timeline_entities``) holds
one conversation of 5,000 entities (1,250 turns, each a question, a tool call, its result and a
streamed reply); ``datasette serve`` answers ``/api/timeline`` for it, timed against the route's
own SQL run directly through the sqlite3 module on the same file and the server's fixed cost per
request (``/-/versions.json``). The first request (nothing re-encoded yet) is reported apart.
"""

import os
import random
import re
import sqlite3
import time
import urllib.parse

import httpx

from datasette_runtime_truth import sample
from datasette_runtime_truth.storage import timeline_store
from datasette_runtime_truth.upstream import schema

from measure import Row, Section, summary
from routes import REQUEST_TIMEOUT_S, WARM_UP, Server, _timed_requests

ENTITIES = 5000
CONV_ID = "bench-timeline-conversation"
REQUESTS = 50
TARGET_RATIO = 2.0
SEED = 1
SERVER_TIME = re.compile(rb'"serverTimeMs":"[0-9]+"')


def build_store(path):
    """A timeline store holding CONV_ID's ENTITIES entities; returns the row count written."""
    rng = random.Random(SEED)
    at = sample.START_MS
    exchanges = []
    for _ in range(ENTITIES // 4):
        tool = {"id": sample.uuid4(rng), "name": rng.choice(("search", "lookup_sku", "calendar")),
                "args": {"q": rng.choice(sample._WORDS)}, "result": sample._sentence(rng)}
        started, at = at, at + rng.randrange(5_000, 60_000)
        exchanges.append(sample.Exchange(sample.uuid4(rng), sample.uuid4(rng), started, at - 1,
                                         sample._sentence(rng), tool, sample._sentence(rng)))
    rows = sample.timeline_entities(CONV_ID, exchanges)
    conn = sqlite3.connect(path)
    conn.executescript(schema.TIMELINE_DDL + schema.TIMELINE_ENTITY_DDL)
    conn.executemany("INSERT INTO timeline_entities VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("INSERT INTO timeline_versions VALUES (?, ?)", (CONV_ID, max(row[5] for row in rows)))
    conn.execute("INSERT INTO timeline_conversations VALUES (?, 's', 'default', 1, 2, 0, 1, 'active', '')",
                 (CONV_ID,))
    conn.commit()
    conn.close()
    return len(rows)


def run_sql(conn):
    """The route's SQL, run directly: the version, then every entity row."""
    conn.execute(timeline_store.VERSION_SQL, {"conv_id": CONV_ID.encode()}).fetchall()
    sql = timeline_store.ENTITIES_SQL.format(since="")
    return conn.execute(sql, {"conv_id": CONV_ID.encode(), "limit": timeline_store.DEFAULT_SNAPSHOT_LIMIT}).fetchall()


def measure(base_url, conn, url):
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        cold_ms, cold_statuses = _timed_requests(client, url, 1)
        first = SERVER_TIME.sub(b"", client.get(url).content)
        for _ in range(WARM_UP):
            run_sql(conn)
            client.get(url)
        sql_ms, route_ms, different, rows = [], [], 0, 0
        for _ in range(REQUESTS):
            started = time.perf_counter()
            rows = len(run_sql(conn))
            sql_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            response = client.get(url)
            body = response.content
            route_ms.append((time.perf_counter() - started) * 1000)
            different += response.status_code != 200 or SERVER_TIME.sub(b"", body) != first
        fixed_ms, _ = _timed_requests(client, "/-/versions.json", REQUESTS)
    return {"cold_ms": cold_ms[0], "cold_statuses": cold_statuses, "sql_ms": summary(sql_ms),
            "route_ms": summary(route_ms), "fixed_ms": summary(fixed_ms), "different": different,
            "rows": rows, "entities": first.count(b'"kind":'), "body_bytes": len(first)}


def timeline_snapshot(bench, results):
    directory = os.path.join(bench.workdir, "timeline-bench")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "timeline.db")
    for suffix in ("", "-journal", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    written = build_store(path)
    url = "/api/timeline?" + urllib.parse.urlencode({"conv_id": CONV_ID})
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with Server([path], os.path.join(directory, "datasette.log")) as server:
        measured = measure(server.url, conn, url)
    conn.close()
    floor = measured["sql_ms"]["median"] + measured["fixed_ms"]["median"]
    ratio = measured["route_ms"]["median"] / floor
    ok = measured["different"] == 0 and measured["entities"] == measured["rows"] == written
    return Section("The timeline snapshot", rows=[
        Row(f"`/api/timeline` of a {written:,}-entity conversation: median / p95",
            f"{measured['route_ms']['median']:.1f} / {measured['route_ms']['p95']:.1f} ms "
            f"({REQUESTS} requests, {measured['body_bytes']:,} bytes each)"),
        Row("its SQL run directly: median / p95",
            f"{measured['sql_ms']['median']:.1f} / {measured['sql_ms']['p95']:.1f} ms"),
        Row("the server's fixed cost (`/-/versions.json`): median",
            f"{measured['fixed_ms']['median']:.1f} ms"),
        Row("route / (SQL + fixed cost), medians", f"{ratio:.2f}x",
            f"≤ {TARGET_RATIO:g}x", ratio <= TARGET_RATIO and ok),
        Row("the first request (every entity re-encoded)", f"{measured['cold_ms']:.1f} ms"),
        Row("answers identical but for the clock, entities = SQL rows",
            "yes" if ok else f"no: {measured['different']} differing, {measured['entities']} entities, "
                             f"{measured['rows']} rows", "yes", ok),
    ], notes=[
        "The route re-encodes each entity's `entity_json` as protojson; re-encoding is a pure function "
        "of the text, so repeated answers reuse it (the first request pays for all of it).",
    ], data={**measured, "ratio": ratio, "written": written})
