"""A big turn beside other requests: ``/-/versions.json`` while clients fetch a 3 MB turn.

    python benchmarks/bigturn.py [--turns N] [--seconds S] [--update BENCHMARKS.md] [--json]

Run where the plugin is installed (e.g. ``.venv/datasette-1.0a41/bin/python``). Alone, it builds a
migrated sample of N turns (default 10,000) in a temporary directory, adds the big turn, serves
both with ``datasette serve`` on 127.0.0.1 and measures with one client, then four;
``--update`` replaces this section (and its line in the targets table) of BENCHMARKS.md.
``run.py`` measures the same on its routes' server.
"""

import argparse
import datetime
import json
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time

import httpx

from measure import Row, Section, summary

BIG_TURN_CHARS = 3_000_000
BIG_TURN_IDS = ("bench-big-conv", "bench-big-session", "bench-big-turn")
BIG_TURN_PHASES = ("pre_inference", "post_inference", "final")
STALL_SECONDS = 10.0
STALL_FETCH_EVERY_S = 0.25
STALL_CLIENTS = (1, 4)
PROBE_EVERY_S = 0.02
REQUEST_TIMEOUT_S = 120.0
TARGET_STALL_MEDIAN_MS = 100.0
TARGET_STALL_P95_MS = 300.0
TITLE = "A big turn beside other requests"
SEED = 1


def add_big_turn(turns_path):
    """A turn with 3 MB of metadata (a long transcript, a list of tool results) in three phase
    snapshots of three blocks, as a hostile or unlucky store holds; returns the metadata's size."""
    conv_id, session_id, turn_id = BIG_TURN_IDS
    rng = random.Random(SEED)
    results = [{"tool": f"search-{n}", "ok": n % 7 != 0, "score": rng.random(),
                "summary": "".join(rng.choice("abcdefghij klmnop\n") for _ in range(180))} for n in range(9000)]
    metadata = {"geppetto.runtime@v1": {"runtime_key": "planner"}, "geppetto.inference_id@v1": "inf-big",
                "tool_results": results}
    metadata["transcript"] = "a line of the conversation so far\n" * max(
        0, (BIG_TURN_CHARS - len(json.dumps(metadata))) // 34)
    conn = sqlite3.connect(turns_path)
    conn.execute("INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json, "
                 "turn_data_json, runtime_key, inference_id, updated_at_ms) "
                 "VALUES (?, ?, ?, 1, ?, '{}', 'planner', 'inf-big', 3)",
                 (conv_id, session_id, turn_id, json.dumps(metadata)))
    for at_ms, phase in enumerate(BIG_TURN_PHASES, start=1):
        for ordinal in range(3):
            conn.execute("INSERT OR IGNORE INTO blocks (block_id, content_hash, kind, role, payload_json, "
                         "first_seen_at_ms) VALUES (?, ?, 'llm_text', 'assistant', ?, 1)",
                         (f"big-{ordinal}", f"big-{ordinal}", json.dumps({"text": f"part {ordinal}"})))
            conn.execute("INSERT INTO turn_block_membership VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (conv_id, session_id, turn_id, phase, at_ms, ordinal, f"big-{ordinal}", f"big-{ordinal}"))
    conn.commit()
    conn.close()
    return len(json.dumps(metadata))


def _timed(client, url):
    started = time.perf_counter()
    response = client.get(url)
    response.content
    return (time.perf_counter() - started) * 1000, str(response.status_code)


def measure(base_url, seconds=STALL_SECONDS, clients=1):
    """``/-/versions.json`` latency while ``clients`` clients each fetch the big turn's detail and
    its conversation's list, one after the other, every STALL_FETCH_EVERY_S."""
    conv_id, session_id, turn_id = BIG_TURN_IDS
    big_urls = [f"/api/debug/turn/{conv_id}/{session_id}/{turn_id}", f"/api/debug/turns?conv_id={conv_id}"]
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        idle = [_timed(client, "/-/versions.json")[0] for _ in range(50)]
    stop = threading.Event()
    big = {"ms": [], "statuses": {}}
    lock = threading.Lock()

    def fetch_big():
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
            while not stop.is_set():
                for url in big_urls:
                    ms, status = _timed(client, url)
                    with lock:
                        big["ms"].append(ms)
                        big["statuses"][status] = big["statuses"].get(status, 0) + 1
                stop.wait(STALL_FETCH_EVERY_S)

    fetchers = [threading.Thread(target=fetch_big) for _ in range(clients)]
    for fetcher in fetchers:
        fetcher.start()
    busy = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        while time.monotonic() < deadline:
            busy.append(_timed(client, "/-/versions.json")[0])
            time.sleep(PROBE_EVERY_S)
    stop.set()
    for fetcher in fetchers:
        fetcher.join()
    return {"clients": clients, "idle_ms": summary(idle), "busy_ms": summary(busy), "big_ms": summary(big["ms"]),
            "big_statuses": big["statuses"], "seconds": seconds}


def measure_all(base_url, seconds=STALL_SECONDS):
    return [measure(base_url, seconds, clients) for clients in STALL_CLIENTS]


def _pct(stats):
    return f"{stats['median']:.1f} / {stats['p95']:.1f} ms"


def section(runs, chars, load_average=None, alone=None):
    result = Section(TITLE)
    for run in runs:
        busy, big = run["busy_ms"], run["big_ms"]
        who = f"{run['clients']} client" + ("s" if run["clients"] > 1 else "")
        result.rows += [
            Row(f"{who}: `/-/versions.json` idle", _pct(run["idle_ms"])),
            Row(f"{who}: the big turn's detail and its conversation's list",
                f"{_pct(big)} ({big['count']} requests, statuses {run['big_statuses']})", "every answer 200",
                set(run["big_statuses"]) == {"200"}),
            Row(f"{who}: `/-/versions.json` meanwhile: median", f"{busy['median']:.1f} ms ({busy['count']} requests)",
                f"≤ {TARGET_STALL_MEDIAN_MS:g} ms", busy["median"] <= TARGET_STALL_MEDIAN_MS),
            Row(f"{who}: `/-/versions.json` meanwhile: p95", f"{busy['p95']:.1f} ms (max {busy['max']:.1f} ms)",
                f"≤ {TARGET_STALL_P95_MS:g} ms", busy["p95"] <= TARGET_STALL_P95_MS),
        ]
    result.notes = [
        f"A turn whose metadata is {chars:,} characters of JSON (a transcript and 9,000 tool results), in "
        f"{len(BIG_TURN_PHASES)} phase snapshots of three blocks: {len(BIG_TURN_PHASES) * chars / 1e6:.1f} million "
        "characters for each answer to build, past the old 8,000,000 limit. Each client fetches its detail and its "
        f"conversation's `/api/debug/turns` list, one after the other, then waits {STALL_FETCH_EVERY_S:g} s, for "
        f"{runs[0]['seconds']:g} s, while another requests `/-/versions.json` every {PROBE_EVERY_S * 1000:g} ms: how "
        f"long a cheap request waits while big payloads are built; with {', then '.join(map(str, STALL_CLIENTS))} "
        "such clients.",
        "The server runs with default settings: answers of 500,000 characters or more are built by its "
        "payload worker process and streamed, so building them never holds the server's GIL; the clients run "
        "in the benchmark's process on the same machine.",
    ]
    if alone is not None:
        result.notes.insert(0, alone)
    if load_average is not None:
        result.notes.append(f"Load average when this section started: {', '.join(map(str, load_average))} "
                            f"({os.cpu_count()} cores, shared with other work).")
    result.data = {"runs": runs, "chars": chars}
    return result


# --- alone --------------------------------------------------------------------------------------

def run_alone(turns, seconds):
    import routes  # noqa: the routes' server and sample, shared with run.py
    from harness import Bench

    load_average = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="runtime-truth-bigturn-") as workdir:
        bench = Bench(turns, workdir)
        turns_path, timeline_path, _ = routes.served_copy(bench)
        chars = add_big_turn(turns_path)
        with routes.Server([turns_path, timeline_path], os.path.join(workdir, "datasette.log")) as server:
            runs = measure_all(server.url, seconds)
    from harness import machine

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info = machine()
    alone = (f"Measured on its own by `python benchmarks/bigturn.py --turns {turns}` on {when} (Datasette "
             f"{info['datasette']}, commit {info['commit']}), beside a migrated sample of {turns:,} turns, not "
             "in the run that wrote the rest of this file.")
    return section(runs, chars, load_average, alone)


def update(path, measured):
    """Replace this section and its targets line in the BENCHMARKS.md at ``path``."""
    from render import section_markdown, verdict

    with open(path) as f:
        text = f.read()
    start = text.index(f"## {TITLE}\n")
    end = text.find("\n## ", start + 1)
    text = text[:start] + section_markdown(measured) + (text[end + 1:] if end != -1 else "")
    old_line = next(line for line in text.splitlines() if line.startswith(f"| {TITLE} |"))
    text = text.replace(old_line, f"| {TITLE} | {verdict(measured.met) or 'no target (information)'} |")
    with open(path, "w") as f:
        f.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10_000, help="turns in the sample beside it (default 10,000)")
    parser.add_argument("--seconds", type=float, default=STALL_SECONDS, help="per client count (default 10)")
    parser.add_argument("--update", help="a BENCHMARKS.md whose section to replace")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    measured = run_alone(args.turns, args.seconds)
    if args.update:
        update(args.update, measured)
    if args.json:
        print(json.dumps({"title": measured.title, "met": measured.met, "data": measured.data}))
    else:
        from render import section_markdown
        print(section_markdown(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
