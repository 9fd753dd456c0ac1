"""Where a debug answer is built: small ones in one of Datasette's worker threads, big ones in a
pool of worker processes, so that decoding and writing megabytes never holds the server's GIL.

The size of an answer is known from SQL before anything is built (``store.size``). An answer of
at least ``payload_process_chars`` characters goes to a pool of up to ``payload_workers`` worker
processes (``python -m datasette_runtime_truth.worker``, each started when first needed: a fresh
interpreter, never a fork of the threaded server, and never a re-import of the server's
``__main__``), and holds one of ``payload_workers`` slots from the moment it is queued until its
body is sent, so at most that many big answers are in memory at once. Both paths run
:func:`encode`, so the bytes never depend on where they were built.
"""

import asyncio
from dataclasses import dataclass, field
import pathlib
import pickle
import sqlite3
import struct
import subprocess
import sys
import threading
from typing import Any, Callable, Optional
import weakref

from . import config, links, payload, schema, store

DEFAULT_WORKERS = 2
DEFAULT_PROCESS_CHARS = 500_000
PARENT_CHECK_S = 1.0  # how long a stopped worker's exit status is awaited

ROUTES: dict[str, tuple[Callable, Callable]] = {
    "turns": (payload.turns_item, payload.turns_envelope),
    "turn": (payload.turn_item, payload.turn_envelope),
}


class WorkerStopped(Exception):
    """A worker process died while building an answer (killed, out of memory)."""


@dataclass(frozen=True)
class Job:
    """One answer to build, in plain values a worker process can receive: the route (a key of
    ROUTES), the store's shape, the snapshot filters and the values the envelope echoes."""

    route: str
    shape: schema.TurnsShape
    filters: dict = field(default_factory=dict)
    echo: tuple = ()


def encode(conn: sqlite3.Connection, job: Job) -> bytes:
    """The answer's JSON body, read and built from ``conn``."""
    build, envelope = ROUTES[job.route]
    return store.encode_snapshots(
        conn, job.shape, build, lambda items: links.encode_json(envelope(*job.echo, items)).body,
        **job.filters,
    )


def encode_file(uri: str, job: Job) -> bytes:
    """:func:`encode` on a read-only connection of its own: what a worker process runs."""
    conn = sqlite3.connect(uri, uri=True)
    try:
        return encode(conn, job)
    finally:
        conn.close()


async def build(datasette: Any, db: Any, job: Job, chars: int) -> links.EncodedJSON:
    """The answer ``job`` asks for, built where its size (``chars``, from SQL) says."""
    pool = _pool(datasette)
    uri = read_uri(datasette, db)
    if pool is None or uri is None or chars < process_chars(datasette):
        return links.EncodedJSON(await db.execute_fn(lambda conn: encode(conn, job)))
    return await pool.build(uri, job)


def workers(datasette: Any) -> int:
    return config.plugin_config(datasette).get("payload_workers", DEFAULT_WORKERS)


def process_chars(datasette: Any) -> int:
    return config.plugin_config(datasette).get("payload_process_chars", DEFAULT_PROCESS_CHARS)


def read_uri(datasette: Any, db: Any) -> Optional[str]:
    """The URI another process opens ``db`` with, as Datasette opens its read connections
    (``mode=ro``, or ``immutable=1``); None for an in-memory database, which only this process
    can read."""
    if db.is_memory or getattr(db, "memory_name", None) or not db.path:
        return None
    query = "mode=ro" + ("&nolock=1" if getattr(datasette, "nolock", False) else "")
    if not db.is_mutable:
        query = "immutable=1"
    return f"{pathlib.Path(db.path).resolve().as_uri()}?{query}"


# --- the pool -----------------------------------------------------------------------------------

_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pool(datasette: Any) -> Optional["Pool"]:
    """This Datasette's pool (no process started until it builds), or None with
    ``payload_workers: 0``."""
    count = workers(datasette)
    if count < 1:
        return None
    if datasette not in _pools:
        pool = Pool(count)
        _pools[datasette] = pool
        weakref.finalize(datasette, pool.shutdown)  # also run at interpreter exit
    return _pools[datasette]


class Pool:
    """Up to ``size`` worker processes, each started when a build finds none idle, and as many
    slots: a build waits for a slot, so at most ``size`` big answers are in memory at once."""

    def __init__(self, size: int):
        self.size = size
        self.idle: list[Worker] = []
        self.started: list[Worker] = []
        self.lock = threading.Lock()
        self.slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def build(self, uri: str, job: Job) -> links.EncodedJSON:
        slots = self._slots()
        await slots.acquire()
        try:
            body = await asyncio.to_thread(self._run, uri, job)
        except BaseException:
            slots.release()
            raise
        return links.EncodedJSON(body, release=slots.release)

    def _slots(self) -> asyncio.Semaphore:
        """The slots of the running event loop (a server has one; tests start several)."""
        loop = asyncio.get_running_loop()
        if loop not in self.slots:
            self.slots[loop] = asyncio.Semaphore(self.size)
        return self.slots[loop]

    def _run(self, uri: str, job: Job) -> bytes:
        worker = self._take()
        try:
            body = worker.run(uri, job)
        except WorkerStopped:
            self._forget(worker)
            raise
        with self.lock:
            self.idle.append(worker)
        return body

    def _take(self) -> "Worker":
        with self.lock:
            if self.idle:
                return self.idle.pop()
            worker = Worker()
            self.started.append(worker)
            return worker

    def _forget(self, worker: "Worker") -> None:
        with self.lock:
            self.started.remove(worker)
        worker.stop()

    def pids(self) -> list[int]:
        with self.lock:
            return [worker.process.pid for worker in self.started]

    def shutdown(self) -> None:
        """Stop every worker: each exits when its input closes."""
        with self.lock:
            started, self.started, self.idle = self.started, [], []
        for worker in started:
            worker.stop()


class Worker:
    """One ``python -m datasette_runtime_truth.worker`` process and its pipes (see worker.py)."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "datasette_runtime_truth.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        )

    def run(self, uri: str, job: Job) -> bytes:
        """The body the worker builds for ``job``; an exception it raised is raised here."""
        try:
            write_message(self.process.stdin, pickle.dumps((uri, job)))
            ok, message = read_message(self.process.stdout)
        except (OSError, EOFError):
            raise WorkerStopped(
                f"a payload worker process stopped while building this answer ({self._ended()}); "
                "another one starts on the next request: retry"
            ) from None
        if not ok:
            raise pickle.loads(message)
        return message

    def _ended(self) -> str:
        try:
            code = self.process.wait(timeout=PARENT_CHECK_S)
        except subprocess.TimeoutExpired:
            return "its pipe closed"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def stop(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the pipe protocol: a status byte, an 8-byte length, then that many bytes -----------------------

HEADER = struct.Struct(">?Q")


def write_message(pipe: Any, data: bytes, ok: bool = True) -> None:
    pipe.write(HEADER.pack(ok, len(data)))
    pipe.write(data)
    pipe.flush()


def read_message(pipe: Any) -> tuple[bool, bytes]:
    """``(ok, data)``; EOFError when the other end closed before a whole message."""
    header = pipe.read(HEADER.size)
    if len(header) < HEADER.size:
        raise EOFError("pipe closed")
    ok, length = HEADER.unpack(header)
    data = pipe.read(length)
    if len(data) < length:
        raise EOFError("pipe closed")
    return ok, data
