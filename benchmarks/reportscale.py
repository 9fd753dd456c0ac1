"""The cutover report at scale: cold, warm, after a write, and the check command, against a floor.

The floor is the report's aggregates computed by direct SQL on the same file (FLOOR_SQL): the counts
of missing values, the JSON validity of the rows still missing one, per-day coverage, switched
conversations, conversations and the pointer comparison. The report does all of that and, on top,
decodes in Python the metadata of every row still missing a value, as the upstream's Go code would.
"""

import os
import sqlite3
import statistics
import subprocess
import sys
import time

import httpx

from datasette_runtime_truth.report import figures

from measure import Row, Section
from routes import REQUEST_TIMEOUT_S, Server, served_copy

COLD_SERVERS = 3
WARM_REQUESTS = 20
TARGET_COLD_RATIO = 2.0
TARGET_WARM_MS = 100.0

FLOOR_SQL = {
    "missing values, and the JSON validity of rows missing one": """
        SELECT count(*), sum(runtime_key = ''), sum(inference_id = ''),
               sum((runtime_key = '' OR inference_id = '') AND json_valid(turn_metadata_json))
        FROM turns""",
    "coverage per UTC day": """
        SELECT strftime('%Y-%m-%d', updated_at_ms / 1000, 'unixepoch') AS day, count(*),
               sum(runtime_key != ''), sum(inference_id != '')
        FROM turns WHERE updated_at_ms > 0 GROUP BY day""",
    "switched conversations": figures.SWITCHES_SQL,
    "conversations": "SELECT count(DISTINCT conv_id) FROM turns",
    "pointers against newest turns": f"""
        SELECT count(*) FROM ({figures.NEWEST_SQL}) AS newest
        JOIN timeline.timeline_conversations AS pointer USING (conv_id)
        WHERE newest.runtime_key != '' AND pointer.runtime_key != newest.runtime_key""",
}


def floor(turns_path, timeline_path):
    """Seconds for all of FLOOR_SQL, each statement on a fresh read-only connection's cache."""
    conn = sqlite3.connect(f"file:{turns_path}?mode=ro", uri=True)
    conn.execute("ATTACH ? AS timeline", (f"file:{timeline_path}?mode=ro",))
    parts = {}
    for name, sql in FLOOR_SQL.items():
        started = time.perf_counter()
        conn.execute(sql).fetchall()
        parts[name] = time.perf_counter() - started
    conn.close()
    return sum(parts.values()), parts


def _get(client, url):
    started = time.perf_counter()
    response = client.get(url)
    response.content
    return (time.perf_counter() - started) * 1000, response


def measure(bench, turns_path, timeline_path, label):
    """Cold, warm, after-write and check times for one migrated store."""
    floors = [floor(turns_path, timeline_path) for _ in range(3)]
    floor_s = statistics.median(total for total, _ in floors)
    cold_ms, warm_ms, statuses = [], [], set()
    log = os.path.join(bench.workdir, f"report-{label}-datasette.log")
    for _ in range(COLD_SERVERS):
        with Server([turns_path, timeline_path], log) as server, \
                httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S) as client:
            ms, response = _get(client, "/-/runtime-truth.json")
            cold_ms.append(ms)
            statuses.add(response.status_code)
    with Server([turns_path, timeline_path], log) as server, \
            httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S) as client:
        first = _get(client, "/-/runtime-truth.json")[1].json()["databases"][0]
        for _ in range(WARM_REQUESTS):
            ms, response = _get(client, "/-/runtime-truth.json")
            warm_ms.append(ms)
            statuses.add(response.status_code)
        metrics_ms = [_get(client, "/-/runtime-truth/metrics")[0] for _ in range(WARM_REQUESTS)]
        writer = sqlite3.connect(turns_path)
        writer.execute("INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, updated_at_ms) "
                       "VALUES ('bench-conv', 'bench-session', 'bench-turn', 1, 1)")
        writer.commit()
        writer.close()
        stale_ms, stale = _get(client, "/-/runtime-truth.json")
        refresh_ms, fresh = _get(client, "/-/runtime-truth.json?refresh=1")
        moved = (stale.json()["databases"][0]["turns"], fresh.json()["databases"][0]["turns"])
    check_started = time.perf_counter()
    check = subprocess.run([sys.executable, "-m", "datasette", "runtime-truth", "check", turns_path,
                            "--timeline", timeline_path, "--json"], capture_output=True, text=True)
    check_s = time.perf_counter() - check_started
    return {
        "turns": first["turns"], "floor_s": floor_s, "floor_parts_s": floors[0][1],
        "cold_ms": cold_ms, "warm_ms": warm_ms, "metrics_ms": metrics_ms, "statuses": sorted(statuses),
        "after_write": {"stale_ms": stale_ms, "refresh_ms": refresh_ms, "turns_before_after": moved},
        "check_s": check_s, "check_exit": check.returncode,
    }


def report_at_scale(bench, results):
    """The report on a migrated copy of the sample, and of the sample a tenth its size."""
    sizes = {}
    for turns in (bench.turns, max(10, bench.turns // 10)):
        turns_path, timeline_path, _ = served_copy(bench, turns)
        sizes[turns] = measure(bench, turns_path, timeline_path, str(turns))
        bench.discard(turns_path)
        bench.discard(timeline_path)
    section = Section("The report at scale")
    for turns, data in sizes.items():
        cold = statistics.median(data["cold_ms"]) / 1000
        warm = statistics.median(data["warm_ms"])
        ratio = cold / data["floor_s"]
        check_ratio = data["check_s"] / data["floor_s"]
        big = turns == bench.turns
        section.rows += [
            Row(f"{turns:,} turns: floor (the report's aggregates by direct SQL)", f"{data['floor_s']:.2f} s"),
            Row(f"{turns:,} turns: report JSON cold (median of {COLD_SERVERS} fresh servers)",
                f"{cold:.2f} s, {ratio:.2f}x the floor", f"≤ {TARGET_COLD_RATIO:g}x" if big else "",
                ratio <= TARGET_COLD_RATIO if big else None),
            Row(f"{turns:,} turns: report JSON warm, nothing changed (median of {WARM_REQUESTS})",
                f"{warm:.1f} ms (max {max(data['warm_ms']):.1f} ms)", f"≤ {TARGET_WARM_MS:g} ms" if big else "",
                warm <= TARGET_WARM_MS if big else None),
            Row(f"{turns:,} turns: metrics warm (median of {WARM_REQUESTS})",
                f"{statistics.median(data['metrics_ms']):.1f} ms"),
            Row(f"{turns:,} turns: after one external write: the next load (last figures) / `?refresh=1`",
                f"{data['after_write']['stale_ms']:.1f} ms / {data['after_write']['refresh_ms'] / 1000:.2f} s "
                f"(turns {data['after_write']['turns_before_after'][0]:,} → "
                f"{data['after_write']['turns_before_after'][1]:,})"),
            Row(f"{turns:,} turns: `datasette runtime-truth check` (a subprocess, start-up included)",
                f"{data['check_s']:.2f} s, {check_ratio:.2f}x the floor (exit {data['check_exit']})"),
        ]
    section.notes = [
        "The floor runs these statements by direct SQL (sqlite3 module, read-only, timeline.db attached) "
        "on the same migrated file, median of 3 runs: "
        + "; ".join(f"{name}" for name in FLOOR_SQL) + ". It computes the report's aggregates but "
        "not what only Go's JSON decoder can say: which rows still missing a value a migrate run would "
        "fill. The report decodes each such row's metadata in Python as the upstream does.",
        "Cold: a fresh `datasette serve turns.db timeline.db` per measurement, its first "
        "`/-/runtime-truth.json`. Warm: the same server's later loads, nothing written in between: "
        "each answers from the kept figures after one `PRAGMA data_version` per file. After one "
        "external write (another connection commits a turn): the next load still answers the last "
        "figures at once (and, past `report_max_age`, starts one recomputation); `?refresh=1` waits "
        "for a fresh computation.",
    ]
    section.data = {str(turns): data for turns, data in sizes.items()}
    return section
