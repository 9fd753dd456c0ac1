"""Peak memory per MB of debug payload served, and 12 concurrent requests for a 50 MB block.

    python benchmarks/payloadmemory.py [--sizes 1,5,20,50] [--concurrent 12] [--block-mb 50] [--workers N] [--json]

Run where the plugin is installed (e.g. ``.venv/datasette-1.0a41/bin/python``). Everything is on
127.0.0.1 and in a temporary directory.

* per MB: for each size, a turns.db holding one turn of that many MB of JSON in two forms (one
  long text in a block; a list of small objects in the turn metadata), three phase snapshots
  sharing them. A fresh worker process (``python -m datasette_runtime_truth.web.worker``, what the
  server's pool runs) builds the turn detail; its peak RSS (``VmHWM``) above what it had before
  the build, per MB of JSON text the answer is built from (``debug_reads.size``). The server then holds
  the body while sending it: its size per MB is shown too.
* concurrent: a real ``datasette serve`` on a turns.db with one turn holding a ``--block-mb`` MB
  block in one snapshot; ``--concurrent`` clients ask for it at once, first with ``max_payload_chars`` below its
  size (every answer a 413, each client asking REFUSED_ROUNDS times), then with the default (served): the server's and its workers' peak
  RSS, and ``/-/versions.json`` meanwhile.
"""

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

import httpx

from datasette_runtime_truth import config
from datasette_runtime_truth.storage import debug_reads
from datasette_runtime_truth.upstream import schema
from datasette_runtime_truth.web import offload

from measure import summary

MB = 1024 * 1024
SNAPSHOTS = ("pre_inference", "post_inference", "final")
IDS = ("conv-big", "session-big", "turn-big")
REFUSED_ROUNDS = 10  # each client's refused requests, one after the other: long enough to probe


def build_store(path, chars, form, snapshots=SNAPSHOTS):
    """A turns.db with one turn of about ``chars`` characters of JSON (``text``: one string in a
    block's payload; ``objects``: small objects in the turn metadata), in these snapshots."""
    conn = sqlite3.connect(path)
    schema.create_turns_db(conn)
    metadata, block = {"geppetto.runtime@v1": {"runtime_key": "planner"}}, {"text": "hi"}
    if form == "text":
        block = {"text": "a line of a long tool output\n" * (chars // 29)}
    else:
        metadata["tool_results"] = [{"tool": f"search-{n}", "ok": n % 7 != 0, "score": n / 7,
                                     "summary": "lorem ipsum dolor sit amet " * 3} for n in range(chars // 140)]
    conv_id, session_id, turn_id = IDS
    conn.execute("INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json, "
                 "turn_data_json, runtime_key, inference_id, updated_at_ms) VALUES (?, ?, ?, 1, ?, '{}', "
                 "'planner', 'inf-big', 9)", (conv_id, session_id, turn_id, json.dumps(metadata)))
    conn.execute("INSERT INTO blocks (block_id, content_hash, kind, role, payload_json, first_seen_at_ms) "
                 "VALUES ('big', 'big', 'tool_result', 'tool', ?, 1)", (json.dumps(block),))
    for at_ms, phase in enumerate(snapshots, start=1):
        conn.execute("INSERT INTO turn_block_membership VALUES (?, ?, ?, ?, ?, 0, 'big', 'big')",
                     (conv_id, session_id, turn_id, phase, at_ms))
    conn.commit()
    conn.close()


def _job(conn):
    shape = schema.TurnsShape.read(conn, prefix="t.")
    filters = dict(zip(("conv_id", "session_id", "turn_id"), IDS))
    sql, params = debug_reads.size_query(shape, **filters)
    _, chars = conn.execute(sql, params).fetchone()
    return offload.Job("turn", shape, filters, IDS), chars


def _status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def per_mb(path):
    """One worker's peak RSS growth building the turn detail of ``path``, and the body size."""
    conn = sqlite3.connect(path)
    job, chars = _job(conn)
    conn.close()
    worker = offload.Worker()
    try:
        _read_all(worker, f"file:{path}?mode=ro", offload.Job("turn", job.shape, dict.fromkeys(
            ("conv_id", "session_id", "turn_id"), "none"), IDS))
        before = _status_kb(worker.process.pid, "VmHWM")
        body = _read_all(worker, f"file:{path}?mode=ro", job)
        peak = _status_kb(worker.process.pid, "VmHWM")
    finally:
        worker.stop()
    return {"chars": chars, "body_bytes": len(body), "worker_peak_growth_mb": (peak - before) / 1024,
            "worker_peak_mb": peak / 1024, "worker_before_mb": before / 1024}


def _read_all(worker, uri, job):
    pieces = [worker.start(uri, job)]
    while pieces[-1]:
        pieces.append(worker.next_chunk())
    return b"".join(pieces)


# --- 12 concurrent requests on a real server ----------------------------------------------------

def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


class Server:
    """``datasette serve turns.db -m metadata.json`` on a free loopback port."""

    def __init__(self, directory, path, plugin_config):
        self.directory, self.path, self.plugin_config = directory, path, plugin_config

    def __enter__(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        settings = os.path.join(self.directory, "metadata.json")
        with open(settings, "w") as f:
            json.dump({"plugins": {"datasette-runtime-truth": self.plugin_config}}, f)
        flag = "-c" if not _datasette_065() else "-m"
        self.log = open(os.path.join(self.directory, "server.log"), "w")
        self.process = subprocess.Popen([sys.executable, "-m", "datasette", "serve", self.path, flag, settings,
                                         "-h", "127.0.0.1", "-p", str(port)], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/-/versions.json", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("datasette did not start")

    def peak_mb(self):
        """The server's peak RSS and the sum of its worker processes' peaks, in MB."""
        workers = [pid for pid in _children(self.process.pid)]
        return (_status_kb(self.process.pid, "VmHWM") / 1024,
                sum(_status_kb(pid, "VmHWM") for pid in workers) / 1024, len(workers))

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def _datasette_065():
    import datasette.version
    return datasette.version.__version__.startswith("0.")


async def _concurrent(url, clients, path, rounds=1):
    stop = asyncio.Event()
    versions = []

    async def probe(client):
        while not stop.is_set():
            started = time.perf_counter()
            await client.get("/-/versions.json")
            versions.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)

    async def fetch(client):
        answers = []
        for _ in range(rounds):
            started = time.perf_counter()
            response = await client.get(path)
            await response.aread()
            answers.append((response.status_code, (time.perf_counter() - started) * 1000, len(response.content)))
        return answers

    limits = httpx.Limits(max_connections=clients + 1)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        prober = asyncio.create_task(probe(client))
        answers = [answer for answers in await asyncio.gather(*(fetch(client) for _ in range(clients)))
                   for answer in answers]
        stop.set()
        await prober
    return answers, versions


def concurrent(directory, block_mb, clients, workers=None):
    path = os.path.join(directory, "turns.db")
    build_store(path, block_mb * MB, "text", snapshots=("final",))
    conn = sqlite3.connect(path)
    _, chars = _job(conn)
    conn.close()
    url_path = "/api/debug/turn/" + "/".join(IDS)
    results = {"chars": chars, "clients": clients, "block_mb": block_mb}
    served = {} if workers is None else {"payload_workers": workers}
    for name, plugin_config, rounds in (("refused", {"max_payload_chars": chars - 1}, REFUSED_ROUNDS),
                                        ("served", served, 1)):
        with Server(directory, path, plugin_config) as server:
            idle_mb = server.peak_mb()[0]
            started = time.perf_counter()
            answers, versions = asyncio.run(_concurrent(server.url, clients, url_path, rounds))
            elapsed = time.perf_counter() - started
            server_mb, workers_mb, workers = server.peak_mb()
        statuses = {}
        for status, _, _ in answers:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        results[name] = {"statuses": statuses, "elapsed_s": elapsed, "server_idle_mb": idle_mb,
                         "server_peak_mb": server_mb, "workers_peak_mb": workers_mb, "workers": workers,
                         "answer_ms": summary([ms for _, ms, _ in answers]),
                         "body_bytes": max(size for _, _, size in answers), "versions_ms": summary(versions)}
    return results


def run(sizes, block_mb, clients, workers=None):
    result = {"default_max_payload_chars": config.DEFAULT_MAX_PAYLOAD_CHARS,
              "default_payload_workers": config.DEFAULT_PAYLOAD_WORKERS, "per_mb": [],
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="runtime-truth-payload-memory-") as directory:
        for size in sizes:
            for form in ("text", "objects"):
                path = os.path.join(directory, f"{form}-{size}.db")
                build_store(path, size * MB, form)
                measured = per_mb(path)
                os.remove(path)
                measured.update({"form": form, "mb": size,
                                 "rss_mb_per_mb": measured["worker_peak_growth_mb"] / (measured["chars"] / MB),
                                 "body_mb_per_mb": measured["body_bytes"] / measured["chars"]})
                result["per_mb"].append(measured)
        if clients:
            result["concurrent"] = concurrent(directory, block_mb, clients, workers)
    return result


def text_table(result):
    lines = ["form     MB  chars        worker peak growth  per MB  body per MB"]
    for row in result["per_mb"]:
        lines.append(f"{row['form']:<8} {row['mb']:>3} {row['chars']:>12,} {row['worker_peak_growth_mb']:>10.1f} MB"
                     f"   {row['rss_mb_per_mb']:>6.2f}  {row['body_mb_per_mb']:>6.2f}")
    if "concurrent" in result:
        c = result["concurrent"]
        for name in ("refused", "served"):
            r = c[name]
            lines.append(f"{c['clients']} x {c['block_mb']} MB block, {name}: statuses {r['statuses']}, "
                         f"server peak {r['server_peak_mb']:.0f} MB (idle {r['server_idle_mb']:.0f}), "
                         f"{r['workers']} workers' peaks {r['workers_peak_mb']:.0f} MB, "
                         f"{r['elapsed_s']:.1f} s, versions.json median {r['versions_ms']['median']:.1f} / "
                         f"p95 {r['versions_ms']['p95']:.1f} / max {r['versions_ms']['max']:.1f} ms "
                         f"({r['versions_ms']['count']})")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,5,20,50", help="MB of JSON per measured turn (default 1,5,20,50)")
    parser.add_argument("--concurrent", type=int, default=12, help="clients asking at once (0: skip)")
    parser.add_argument("--block-mb", type=int, default=50, help="MB of the concurrent test's block")
    parser.add_argument("--workers", type=int, help="the served run's payload_workers (default: the plugin's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]
    result = run(sizes, args.block_mb, args.concurrent, args.workers)
    print(json.dumps(result, indent=1) if args.json else text_table(result))


if __name__ == "__main__":
    main()
