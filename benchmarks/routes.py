"""The debug API routes, the canned queries and a load test, over a real Datasette server.

A migrated copy of the sample (the real ``datasette runtime-truth migrate``) is served by
``datasette serve`` in a subprocess on 127.0.0.1, with the sample's timeline.db attached. Each route
is timed over a fixed, seeded set of requests against the same SQL (built by ``debug_reads.py`` or taken
from ``queries.py``) run directly through the sqlite3 module on the same file, one after the other,
request by request. Everything here is loopback only and stops by itself.
"""

import asyncio
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse

import httpx
import yaml

from datasette_runtime_truth.canned import queries
from datasette_runtime_truth.storage import debug_reads, timeline_store
from datasette_runtime_truth.upstream import schema, yamlv3
from datasette_runtime_truth.web import api

from measure import Row, Section, percentile, summary
import bigturn

ROUTE_REQUESTS = 200  # per cheap route: turns of a conversation, a turn, the timeline's conversations
SCAN_REQUESTS = 20  # per route whose SQL reads a whole index: derived conversations, inference lookup
REPORT_REQUESTS = 3
WARM_UP = 3  # requests sent (and SQL run) before each measured set, not counted
LOAD_CLIENTS = 20
LOAD_SECONDS = 20.0
REQUEST_TIMEOUT_S = 60.0
TARGET_ROUTE_RATIO = 2.0
TARGET_CONVERSATIONS_S = 1.0
TARGET_LOAD_RPS = 85  # 5x the 17 requests/s the routes managed with PyYAML at 1M turns
SEED = 1


class Server:
    """``datasette serve PATHS`` on a free loopback port, for the length of a ``with`` block."""

    def __init__(self, paths, log_path):
        self.paths = paths
        self.log_path = log_path
        self.process = None
        self.url = None

    def __enter__(self):
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "datasette", "serve", *self.paths, "-h", "127.0.0.1", "-p", str(port)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/-/versions.json", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        with open(self.log_path) as f:
            raise RuntimeError(f"datasette serve did not start: {f.read()[-2000:]}")

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_copy(bench, turns=None):
    """A migrated copy of the sample (of ``turns`` turns, default the bench's) as ``turns.db``
    beside a copy of its ``timeline.db``, in a directory of their own; returns (turns path,
    timeline path, the migration's report)."""
    turns = turns or bench.turns
    bench.sample(turns)
    summary_ = bench.samples[turns][0]
    directory = os.path.join(bench.workdir, "served")
    os.makedirs(directory, exist_ok=True)
    turns_path = bench.copy(os.path.join("served", "turns"), turns=turns)
    timeline_path = os.path.join(directory, "timeline.db")
    for suffix in ("", "-wal", "-shm"):
        _remove(timeline_path + suffix)
    shutil.copyfile(summary_.timeline_path, timeline_path)
    process = subprocess.run(bench.migrate_command(turns_path), capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"migrate exited {process.returncode}: {process.stderr.strip()}")
    return turns_path, timeline_path, json.loads(process.stdout)


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _connect(path):
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row  # as Datasette reads
    return conn


def _shape(conn):
    return schema.TurnsShape.read(conn, prefix="t.")


def pick_turns(conn, count, seed):
    """Up to ``count`` turns from distinct conversations, chosen by seeded random rowids."""
    rng = random.Random(seed)
    top = conn.execute("SELECT max(rowid) FROM turns").fetchone()[0] or 0
    picked, conversations = [], set()
    for _ in range(count * 20):
        if len(picked) == count or top == 0:
            break
        row = conn.execute("SELECT conv_id, session_id, turn_id, inference_id FROM turns WHERE rowid = ?",
                           (rng.randint(1, top),)).fetchone()
        if row is not None and row["conv_id"] not in conversations:
            conversations.add(row["conv_id"])
            picked.append(tuple(row))
    return picked


class Case:
    """One route measured against its SQL: a list of (url, connection, sql, params, expected) calls,
    where ``expected(rows, body)`` says whether the route's answer agrees with the SQL's rows."""

    def __init__(self, label, calls, expected, aside=None):
        self.label, self.calls, self.expected = label, calls, expected
        self.aside = aside  # optional: aside(body) -> ms of some part of the route's work, redone here


def compare(client, case):
    """Warm up, then time each call's SQL and then its request; milliseconds and agreement."""
    for url, conn, sql, params in case.calls[:WARM_UP]:
        conn.execute(sql, params).fetchall()
        client.get(url)
    sql_ms, route_ms, aside_ms, statuses, disagreements = [], [], [], {}, 0
    for url, conn, sql, params in case.calls:
        started = time.perf_counter()
        rows = conn.execute(sql, params).fetchall()
        sql_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        response = client.get(url)
        body = response.content
        route_ms.append((time.perf_counter() - started) * 1000)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        decoded = json.loads(body) if response.status_code == 200 else None
        if decoded is None or not case.expected(rows, decoded):
            disagreements += 1
        elif case.aside is not None:
            aside_ms.append(case.aside(decoded))
    asides = None
    if case.aside is not None:
        snapshots = sum(count for _, _, count in aside_ms) or 1
        asides = {"ours_ms": summary([ours for ours, _, _ in aside_ms]),
                  "ours_per_snapshot_ms": sum(ours for ours, _, _ in aside_ms) / snapshots,
                  "pyyaml_per_snapshot_ms": sum(theirs for _, theirs, _ in aside_ms) / snapshots,
                  "snapshots": snapshots}
    return {"requests": len(case.calls), "sql_ms": summary(sql_ms), "route_ms": summary(route_ms),
            "aside": asides,
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "disagreements": disagreements,
            "ratio_median": _ratio(percentile(route_ms, 50), percentile(sql_ms, 50)),
            "ratio_p95": _ratio(percentile(route_ms, 95), percentile(sql_ms, 95))}


def _ratio(a, b):
    return a / b if b > 0 else float("inf")


def _snapshot_count(rows, body):
    return len({tuple(row)[:5] for row in rows}) == len(body["items"])


def _yaml_ms(body):
    """How long writing the YAML bodies of a turn detail takes: ``yamlv3.dump`` redone on each
    snapshot's parsed payload, each alone (the route's PayloadBuilder also reuses the text of parts
    its snapshots share), and PyYAML's pure-Python emitter on the same."""
    values = [item["parsed"] for item in body["items"]]
    started = time.perf_counter()
    for value in values:
        yamlv3.dump(value)
    ours = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    for value in values:
        yaml.dump(value, Dumper=yaml.SafeDumper, indent=4, sort_keys=True, allow_unicode=True,
                  default_flow_style=False, width=float("inf"))
    return ours, (time.perf_counter() - started) * 1000, len(values)


def _same_count(rows, body):
    return len(rows) == len(body["items"] if isinstance(body, dict) else body)


def _timed_requests(client, url, count):
    times, statuses = [], {}
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        response.content
        times.append((time.perf_counter() - started) * 1000)
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
    return times, statuses


def _pct(stats):
    return f"{stats['median']:.1f} / {stats['p95']:.1f} ms"


def _all_ok(measured):
    return measured["disagreements"] == 0 and set(measured["statuses"]) == {"200"}


def route_cases(turns_conn, timeline_conn, picked, database):
    shape = _shape(turns_conn)
    turns_calls, turn_calls, history_calls = [], [], []
    for conv_id, session_id, turn_id, _ in picked:
        sql, params = debug_reads.snapshots_query(shape, conv_id=conv_id, limit=200)
        turns_calls.append((f"/api/debug/turns?{urllib.parse.urlencode({'conv_id': conv_id})}",
                            turns_conn, sql, params))
        sql, params = debug_reads.snapshots_query(shape, conv_id=conv_id, session_id=session_id, turn_id=turn_id)
        path = "/".join(urllib.parse.quote(part, safe="") for part in (conv_id, session_id, turn_id))
        turn_calls.append((f"/api/debug/turn/{path}", turns_conn, sql, params))
        history_calls.append((f"/{database}/runtime_history.json?"
                              + urllib.parse.urlencode({"conv_id": conv_id, "_shape": "array"}),
                              turns_conn, queries.BY_NAME["runtime_history"].sql, {"conv_id": conv_id}))
    inference_ids = [inference_id for *_, inference_id in picked if inference_id][:SCAN_REQUESTS]
    lookup_calls = [(f"/{database}/inference_lookup.json?"
                     + urllib.parse.urlencode({"inference_id": inference_id, "_shape": "array"}),
                     turns_conn, queries.BY_NAME["inference_lookup"].sql, {"inference_id": inference_id})
                    for inference_id in inference_ids]
    columns = frozenset(row[0] for row in timeline_conn.execute(
        "SELECT name FROM pragma_table_info('timeline_conversations')"))
    sql, params = timeline_store.conversations_query(columns, api_conversations_limit())
    conversations_calls = [("/api/debug/conversations", timeline_conn, sql, params)] * len(picked)
    return {
        "turns": Case("/api/debug/turns?conv_id=...", turns_calls, _snapshot_count),
        "turn": Case("/api/debug/turn/{conv}/{session}/{turn}", turn_calls, _snapshot_count, aside=_yaml_ms),
        "conversations_timeline": Case("/api/debug/conversations (timeline store attached)",
                                       conversations_calls, _same_count),
        "runtime_history": Case("runtime_history .json?_shape=array", history_calls, _same_count),
        "inference_lookup": Case("inference_lookup .json?_shape=array", lookup_calls, _same_count),
    }


def api_conversations_limit():
    return min(api.CONVERSATIONS_LIMIT, 1000)  # as the route, under Datasette's default max_returned_rows


def routes_and_queries(bench, results):
    """Routes and canned queries on one served, migrated copy; the load test reuses the server."""
    turns_path, timeline_path, report = served_copy(bench)
    database = os.path.splitext(os.path.basename(turns_path))[0]
    turns_conn, timeline_conn = _connect(turns_path), _connect(timeline_path)
    picked = pick_turns(turns_conn, ROUTE_REQUESTS, seed=SEED)
    big_chars = bigturn.add_big_turn(turns_path)  # after the draw, so no measured route reads it
    cases = route_cases(turns_conn, timeline_conn, picked, database)
    measured = {}
    load = None
    with Server([turns_path, timeline_path], os.path.join(bench.workdir, "served-datasette.log")) as server, \
            httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S) as client:
        for name, case in cases.items():
            measured[name] = compare(client, case)
        baseline_ms, _ = _timed_requests(client, "/-/versions.json", ROUTE_REQUESTS)
        checks_ms, checks_statuses = _timed_requests(client, "/api/debug/turns?conv_id=not-a-conversation",
                                                     ROUTE_REQUESTS)
        report_ms, report_statuses = _timed_requests(client, "/-/runtime-truth.json", REPORT_REQUESTS)
        load = run_load(server.url, picked, bench.load_seconds)
        stall = bigturn.measure_all(server.url, min(bigturn.STALL_SECONDS, max(2.0, bench.load_seconds)))
    # Without a timeline store the list is derived from turns.db: a second server on turns.db alone.
    shape = _shape(turns_conn)
    sql, params = debug_reads.derived_conversations_query(shape, api_conversations_limit())
    derived = Case("/api/debug/conversations (derived from turns.db, no timeline store)",
                   [("/api/debug/conversations", turns_conn, sql, params)] * SCAN_REQUESTS, _same_count)
    with Server([turns_path], os.path.join(bench.workdir, "served-no-timeline-datasette.log")) as server, \
            httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S) as client:
        measured["conversations_derived"] = compare(client, derived)
    cases["conversations_derived"] = derived
    turns_conn.close()
    timeline_conn.close()
    bench.discard(turns_path)
    bench.discard(timeline_path)
    results["load"] = load
    baseline = summary(baseline_ms)
    measured["checks"] = {**summary(checks_ms), "statuses": checks_statuses}
    return [
        routes_section(bench, cases, measured, baseline, summary(report_ms), report_statuses, report),
        canned_section(cases, measured, baseline),
        load_section(load),
        bigturn.section(stall, big_chars),
    ]


def _route_row(case, measured, baseline=None):
    """A route against its SQL; with ``baseline`` (the server's fixed cost per request), the
    target: the route's median within TARGET_ROUTE_RATIO x (the SQL's median + that fixed cost)."""
    value = (f"route {_pct(measured['route_ms'])}, SQL {_pct(measured['sql_ms'])} "
             f"(median / p95, {measured['requests']:,} requests); "
             f"route / SQL {measured['ratio_median']:.2f}x / {measured['ratio_p95']:.2f}x")
    if not _all_ok(measured):
        value += f"; statuses {measured['statuses']}, {measured['disagreements']} answers disagreeing"
    if baseline is None:  # information only, unless a request failed
        return Row(case.label, value, "", None if _all_ok(measured) else False)
    floor = measured["sql_ms"]["median"] + baseline["median"]
    ratio = measured["route_ms"]["median"] / floor
    measured["ratio_to_floor"] = ratio
    value += f"; route / (SQL + fixed cost) {ratio:.2f}x"
    return Row(case.label, value, f"median ≤ {TARGET_ROUTE_RATIO:g}x (SQL + fixed cost)",
               ratio <= TARGET_ROUTE_RATIO and _all_ok(measured))


def _list_row(case, measured):
    median_s = measured["route_ms"]["median"] / 1000
    p95_s = measured["route_ms"]["p95"] / 1000
    value = (f"route {_pct(measured['route_ms'])}, SQL {_pct(measured['sql_ms'])} "
             f"(median / p95, {measured['requests']:,} requests)")
    if not _all_ok(measured):
        value += f"; statuses {measured['statuses']}, {measured['disagreements']} answers disagreeing"
    return Row(case.label, value, f"median and p95 < {TARGET_CONVERSATIONS_S:g} s",
               p95_s < TARGET_CONVERSATIONS_S and median_s < TARGET_CONVERSATIONS_S and _all_ok(measured))


def routes_section(bench, cases, measured, baseline, report_ms, report_statuses, report):
    section = Section("Routes")
    section.rows = [
        _route_row(cases["turns"], measured["turns"], baseline),
        _route_row(cases["turn"], measured["turn"], baseline),
        _list_row(cases["conversations_timeline"], measured["conversations_timeline"]),
        _list_row(cases["conversations_derived"], measured["conversations_derived"]),
        Row("of the turn detail's time: writing its YAML bodies each alone (`yamlv3.dump`, redone here)",
            _pct(measured["turn"]["aside"]["ours_ms"])),
        Row("YAML per snapshot: `yamlv3.dump` / PyYAML's pure-Python emitter on the same payloads",
            f"{measured['turn']['aside']['ours_per_snapshot_ms']:.3f} ms / "
            f"{measured['turn']['aside']['pyyaml_per_snapshot_ms']:.3f} ms "
            f"({measured['turn']['aside']['pyyaml_per_snapshot_ms'] / max(measured['turn']['aside']['ours_per_snapshot_ms'], 1e-9):.1f}x faster; "
            f"{measured['turn']['aside']['snapshots']:,} snapshots)"),
        Row("a request to `/-/versions.json` (the server's fixed cost per request)", _pct(baseline)),
        Row("`/api/debug/turns` for a conversation that is not there (the route's permission checks, "
            "schema reads and a snapshot query that finds nothing)",
            f"{_pct(measured['checks'])} (statuses {measured['checks']['statuses']})", "every answer 200",
            set(measured["checks"]["statuses"]) == {"200"}),
        Row("the cutover report, `/-/runtime-truth.json`",
            f"{report_ms['median'] / 1000:.2f} s median, {report_ms['max'] / 1000:.2f} s max "
            f"({report_ms['count']} requests; statuses {report_statuses})"),
    ]
    section.notes = [
        f"A migrated copy of the sample (`datasette runtime-truth migrate`, {report['rows_scanned']:,} rows "
        "scanned) served by `datasette serve turns.db timeline.db` in a subprocess on 127.0.0.1, default "
        "settings; requests from one `httpx` client, one at a time, each timed to the last byte of its "
        "body. Each request's SQL is run first, directly through the sqlite3 module on the same file "
        "(`mode=ro`, `sqlite3.Row`, every row fetched): the SQL `debug_reads.py` builds for that route "
        "(`snapshots_query`, `timeline_conversations_query`, `derived_conversations_query`), not "
        "counting the route's small schema look-ups.",
        f"Requests are spread over conversations chosen by a seeded random draw of turns "
        f"({len(cases['turns'].calls):,} distinct conversations, one turn each); each set starts after "
        f"{WARM_UP} uncounted warm-up requests. An answer agrees with the SQL when it has as many "
        "snapshots (or rows) as the SQL's result; every request must answer 200 and agree.",
        "A route's time includes the server's fixed cost per request (HTTP on loopback, Datasette's "
        "ASGI stack), measured as the median of `/-/versions.json` in the same run, and the route's "
        "own work: the checks Datasette's own pages make (view-instance, view-database and each table "
        "read; on Datasette 1.0 each is a query of its internal database), finding the turns database "
        "and reading its shape (shown alone by a conversation that is not there), then decoding each "
        "snapshot's JSON as Go does and writing its payload as yaml.v3 does (`yamlv3.py`, once per "
        "part the snapshots of a read share), in a worker thread. The "
        "target compares the route's median with its SQL's median plus that fixed cost; route / SQL "
        "alone is shown as information. The YAML row times the emitter alone on the turn detail's "
        "payloads, against PyYAML's pure-Python emitter (which the routes used before) on the same "
        "values.",
        "Without a timeline store the conversations list is derived from turns.db (a second server "
        "with turns.db alone): one pass over the `turns_by_conv_session` index, so its time grows with "
        "the number of turns. Datasette stops a read at `sql_time_limit_ms` (default 1,000 ms) and the "
        "route then answers 503; that is the limit this target meets or misses.",
        "The cutover report is information without a target: it counts and checks the whole store "
        "(coverage, switched conversations, pointers), so its time grows with the turns.",
    ]
    section.data = {name: measured[name] for name in ("turns", "turn", "conversations_timeline",
                                                       "conversations_derived")}
    section.data.update({"baseline_ms": baseline, "report_ms": report_ms, "report_statuses": report_statuses,
                         "conversations": len(cases["turns"].calls), "migration": report})
    return section


def canned_section(cases, measured, baseline):
    section = Section("Canned queries")
    section.rows = [
        _route_row(cases["runtime_history"], measured["runtime_history"]),
        _route_row(cases["inference_lookup"], measured["inference_lookup"]),
    ]
    section.notes = [
        "Each canned query's JSON page (`/turns/<query>.json?...&_shape=array`) on the same server, "
        "against the query's SQL from `queries.BY_NAME` run directly through sqlite3 with the same "
        "parameters; `runtime_history` for the same conversations as the routes, `inference_lookup` for "
        f"up to {SCAN_REQUESTS} inference ids of those conversations' turns. The issue sets no target "
        "for these: the ratio is reported as information; every request must answer 200 with as many "
        "rows as the SQL.",
        f"The server's fixed cost per request (`/-/versions.json`) is {_pct(baseline)} (median / p95).",
    ]
    section.data = {name: measured[name] for name in ("runtime_history", "inference_lookup")}
    return section


# --- load ---------------------------------------------------------------------------------------

def load_urls(picked):
    """The mix the load clients cycle through: each picked conversation's turns, one of its turns,
    and the conversations list."""
    urls = []
    for conv_id, session_id, turn_id, _ in picked:
        path = "/".join(urllib.parse.quote(part, safe="") for part in (conv_id, session_id, turn_id))
        urls += [f"/api/debug/turns?{urllib.parse.urlencode({'conv_id': conv_id})}",
                 f"/api/debug/turn/{path}", "/api/debug/conversations"]
    return urls


def run_load(base_url, picked, seconds, clients=LOAD_CLIENTS):
    return asyncio.run(_load(base_url, load_urls(picked), seconds, clients))


async def _load(base_url, urls, seconds, clients):
    latencies, statuses, errors = [], {}, []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.perf_counter()
    deadline = started + seconds

    async def client_loop(number, client):
        rng = random.Random(number)
        while time.perf_counter() < deadline:
            url = urls[rng.randrange(len(urls))]
            sent = time.perf_counter()
            try:
                response = await client.get(url)
            except httpx.HTTPError as error:
                errors.append(f"{type(error).__name__}: {error}")
                continue
            latencies.append((time.perf_counter() - sent) * 1000)
            key = str(response.status_code)
            statuses[key] = statuses.get(key, 0) + 1

    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        await asyncio.gather(*(client_loop(number, client) for number in range(clients)))
    elapsed = time.perf_counter() - started
    server_errors = sum(count for status, count in statuses.items() if status.startswith("5"))
    other = sum(count for status, count in statuses.items() if status != "200" and not status.startswith("5"))
    return {"clients": clients, "seconds": seconds, "elapsed_s": elapsed, "requests": len(latencies),
            "throughput_rps": len(latencies) / elapsed if elapsed else 0.0,
            "latency_ms": {**summary(latencies), "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
            "statuses": statuses, "server_errors": server_errors, "other_statuses": other,
            "transport_errors": len(errors), "error_examples": sorted(set(errors))[:5], "urls": len(urls)}


def load_section(load):
    latency = load["latency_ms"]
    section = Section("Load")
    section.rows = [
        Row("clients, duration", f"{load['clients']} clients, {load['seconds']:g} s "
            f"({load['elapsed_s']:.1f} s until the last answer)"),
        Row("requests answered", f"{load['requests']:,}"),
        Row("throughput", f"{load['throughput_rps']:.0f} requests/s", f"≥ {TARGET_LOAD_RPS} requests/s",
            load["throughput_rps"] >= TARGET_LOAD_RPS),
        Row("latency p50 / p99 / max", f"{latency['p50']:.0f} / {latency['p99']:.0f} / {latency['max']:.0f} ms"),
        Row("5xx answers", f"{load['server_errors']:,}", "0", load["server_errors"] == 0),
        Row("other errors (non-200 answers, failed connections)",
            f"{load['other_statuses'] + load['transport_errors']:,}", "0",
            load["other_statuses"] + load["transport_errors"] == 0),
    ]
    section.notes = [
        f"{load['clients']} concurrent clients (asyncio tasks sharing one `httpx.AsyncClient` pool of "
        f"{load['clients']} connections) against the server of the routes section, loopback only, for "
        f"{load['seconds']:g} s, after which no request is sent; each client repeatedly sends a request "
        f"drawn (seeded) from {load['urls']:,}: the turns of each measured conversation, one of its "
        "turns, and the conversations list (from the timeline store).",
        "The clients run in the benchmark's process on the same 2-core machine as the server, so "
        "throughput is a lower bound of what the server alone could do.",
    ]
    if load["error_examples"]:
        section.notes.append("Errors: " + "; ".join(load["error_examples"]))
    section.data = load
    return section
