"""Big debug answers: their size known from SQL before a row is read, built by worker processes
(payload_workers, payload_process_chars), streamed, and the same bytes as when built in a thread.

The worker tests run a real ``datasette serve`` and find its workers as its child processes."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from datasette_test import Datasette

from api_helpers import build_turns_db
from conftest import ON_065
from browser import free_port
from builders import create_store
from datasette_runtime_truth.web import links

WORKER_COMMAND = "-m\0datasette_runtime_truth.web.worker"
BIG_URL = "/api/debug/turn/c/s/t"
LINE = "line of a long tool output\n"


def big_turn_store(path, metadata_chars, phases=("final",)):
    """One turn ``c/s/t`` whose metadata is a transcript of about ``metadata_chars`` characters,
    in a snapshot per phase of one small block."""
    conn = create_store(path, "current")
    text = json.dumps({"transcript": LINE * (metadata_chars // len(LINE))})
    conn.execute("INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json, "
                 "updated_at_ms) VALUES ('c', 's', 't', 1, ?, 2)", (text,))
    conn.execute("INSERT INTO blocks (block_id, content_hash, kind, payload_json, first_seen_at_ms) "
                 "VALUES ('b', 'h', 'user', '{\"text\": \"hi\"}', 1)")
    for at_ms, phase in enumerate(phases, start=5):
        conn.execute("INSERT INTO turn_block_membership VALUES ('c', 's', 't', ?, ?, 0, 'b', 'h')", (phase, at_ms))
    conn.commit()
    conn.close()
    return text


def expected_yaml(metadata_chars):
    return ("blocks:\n    - id: b\n      kind: user\n      payload:\n        text: hi\nid: t\nmetadata:\n"
            "    transcript: |\n" + ("        " + LINE) * (metadata_chars // len(LINE)))


def plugin(**settings):
    return {"datasette-runtime-truth": settings}


# --- the body: the same bytes, in pieces -----------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"conv_id": "c", "items": [], "phase": "", "session_id": "s", "since_ms": 0},
    {"conv_id": "c\u2028\"", "items": [{"phase": "final", "payload": "a: 1\n", "parsed": {"a": 1.0, "b": [None]}},
                                       {"phase": "x", "parsed": {}, "blob": b"\xff\x00"}], "turn_id": "t"},
    {"items": [{}, {"n": 1e300, "s": "\U0001F600"}], "z": {"items": "not the list"}},
])
def test_json_in_pieces_is_json_dumps(body):
    whole = json.dumps(body, default=lambda value: value.hex() if isinstance(value, bytes) else None)
    assert b"".join(links.json_chunks(body)) == whole.encode("utf-8")


# --- size from SQL --------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_the_size_counts_the_metadata_once_per_snapshot(tmp_path):
    text = big_turn_store(tmp_path / "turns.db", 1_000_000, phases=("pre_inference", "post_inference", "final"))
    ds = Datasette([str(tmp_path / "turns.db")], plugin_config=plugin(max_payload_chars=3_000_000))
    response = await ds.client.get(BIG_URL)
    size = 3 * (len(text) + len("{}") + len('{"text": "hi"}') + len("{}"))
    assert (response.status_code, response.json()["error"]) == (413, (
        f"payload too large: these snapshots hold {size:,} characters of JSON, over the limit of 3,000,000, "
        "the max_payload_chars setting; read it from turns.db directly"))


@pytest.mark.asyncio
async def test_a_store_without_snapshot_tables_is_sized_by_its_turn_rows(tmp_path):
    path = tmp_path / "turns.db"
    big_turn_store(path, 100_000)
    import sqlite3
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE turn_block_membership; DROP TABLE blocks;")
    text = conn.execute("SELECT turn_metadata_json FROM turns").fetchone()[0]
    conn.close()
    ds = Datasette([str(path)], plugin_config=plugin(max_payload_chars=100_000))
    response = await ds.client.get("/api/debug/turns?conv_id=c")
    assert response.json()["error"].startswith(
        f"payload too large: these snapshots hold {len(text) + 2:,} characters of JSON, over the limit of 100,000")


@pytest.mark.asyncio
async def test_an_eight_megabyte_turn_is_served_by_default(tmp_path):
    big_turn_store(tmp_path / "turns.db", 9_000_000)
    ds = Datasette([str(tmp_path / "turns.db")])
    response = await ds.client.get(BIG_URL)
    assert response.status_code == 200
    assert response.json()["items"][0]["payload"] == expected_yaml(9_000_000)


# --- the same bytes from a thread and from a worker ------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("url", [
    "/api/debug/turns?conv_id=conv-1", "/api/debug/turns?session_id=session-t&limit=1",
    "/api/debug/turn/conv-1/session-1/turn-1", "/api/debug/turn/conv-tie/session-t/turn-a",
])
async def test_a_worker_process_answers_the_bytes_a_thread_does(tmp_path, url):
    path = build_turns_db(tmp_path / "turns.db")
    in_thread = Datasette([path], plugin_config=plugin(payload_workers=0))
    in_worker = Datasette([path], plugin_config=plugin(payload_process_chars=0))
    threaded, worked = await in_thread.client.get(url), await in_worker.client.get(url)
    assert (threaded.status_code, worked.status_code) == (200, 200)
    assert worked.content == threaded.content
    assert worked.headers["content-type"] == threaded.headers["content-type"] == "application/json; charset=utf-8"


# --- a real server and its workers -----------------------------------------------------------------

class Server:
    """``datasette serve turns.db`` with these plugin settings, on a free loopback port."""

    def __init__(self, tmp_path, path, **settings):
        config = tmp_path / "settings.json"
        config.write_text(json.dumps({"plugins": plugin(**settings)}))
        self.log = tmp_path / "server.log"
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "datasette", "serve", str(path), "-m" if ON_065 else "-c", str(config),
                 "-h", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self._wait_until_up()

    def _wait_until_up(self):
        for _ in range(600):
            if self.process.poll() is not None:
                raise RuntimeError(self.log.read_text())
            try:
                if self.get("/-/versions.json")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("datasette did not start")

    def get(self, path, method="GET"):
        request = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def workers(self):
        """Pids of the server's payload worker processes."""
        with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as f:
            children = [int(pid) for pid in f.read().split()]
        return [pid for pid in children if WORKER_COMMAND in _cmdline(pid)]

    def stop(self, sig=signal.SIGTERM, group=False):
        """Signal the server (``group``: and its workers, as Ctrl-C in a terminal does)."""
        if self.process.poll() is None:
            if group:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)
            self.process.wait(timeout=60)


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""


def _alive(pid):
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid):
    for _ in range(300):
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def big_store(tmp_path):
    path = tmp_path / "turns.db"
    big_turn_store(path, 2_000_000)
    return path


def test_a_big_answer_is_built_by_a_worker_process_and_a_small_one_is_not(tmp_path, big_store):
    server = Server(tmp_path, big_store, payload_process_chars=1_000_000, payload_workers=1)
    try:
        small = server.get("/api/debug/turns?conv_id=none")
        assert small == (200, b'{"conv_id": "none", "items": [], "phase": "", "session_id": "", "since_ms": 0}')
        assert server.workers() == []
        status, body = server.get(BIG_URL)
        assert status == 200
        assert json.loads(body)["items"][0]["payload"] == expected_yaml(2_000_000)
        assert len(server.workers()) == 1
    finally:
        server.stop()


def test_a_killed_worker_is_a_503_and_the_next_request_is_served(tmp_path, big_store):
    server = Server(tmp_path, big_store, payload_workers=1)
    try:
        assert server.get(BIG_URL)[0] == 200
        [worker] = server.workers()
        os.kill(worker, signal.SIGKILL)
        assert _wait_gone(worker)
        status, body = server.get(BIG_URL)
        assert (status, json.loads(body)) == (503, {
            "ok": False, "status": 503,
            "error": "a payload worker process stopped while building this answer (killed by signal 9); "
                     "another one starts on the next request: retry"})
        status, body = server.get(BIG_URL)
        assert status == 200
        assert json.loads(body)["items"][0]["payload"] == expected_yaml(2_000_000)
        assert server.workers() != [worker] and len(server.workers()) == 1
    finally:
        server.stop()


def test_head_and_concurrent_requests_share_the_workers(tmp_path, big_store):
    server = Server(tmp_path, big_store, payload_workers=2)
    try:
        assert server.get(BIG_URL, method="HEAD") == (200, b"")
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(server.get(BIG_URL))) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [status for status, _ in answers] == [200] * 6
        assert len({body for _, body in answers}) == 1
        assert len(server.workers()) <= 2
    finally:
        server.stop()


@pytest.mark.parametrize("sig, group", [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["term", "ctrl-c"])
def test_stopping_the_server_stops_its_workers(tmp_path, big_store, sig, group):
    server = Server(tmp_path, big_store)
    assert server.get(BIG_URL)[0] == 200
    [worker] = server.workers()
    server.stop(sig, group=group)
    assert _wait_gone(worker)
    log = server.log.read_text()
    assert "Finished server process" in log
    assert "Traceback" not in log


def test_a_worker_whose_server_died_exits(tmp_path, big_store):
    server = Server(tmp_path, big_store)
    assert server.get(BIG_URL)[0] == 200
    [worker] = server.workers()
    server.stop(signal.SIGKILL)
    assert _wait_gone(worker)


def test_twelve_refusals_of_a_big_block_read_no_rows(tmp_path):
    """Twelve concurrent 413s for a 20 MB block: the server's peak memory grows by a few copies of
    the block (SQLite's length() in each of Datasette's SQL threads), not by twelve builds."""
    path = tmp_path / "turns.db"
    big_turn_store(path, 20_000_000)
    server = Server(tmp_path, path, max_payload_chars=1_000_000)
    try:
        before = _peak_kb(server.process.pid)
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(server.get(BIG_URL)[0])) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        growth_mb = (_peak_kb(server.process.pid) - before) / 1024
        assert answers == [413] * 12
        assert growth_mb < 6 * 20, growth_mb
        assert server.workers() == []
    finally:
        server.stop()


def _peak_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
