"""Where a debug answer is built: small ones in one of Datasette's worker threads, big ones in a
pool of worker processes, so that decoding and writing megabytes never holds the server's GIL.

The size of an answer is known from SQL before anything is built (``debug_reads.size``). An answer of
at least ``payload_process_chars`` characters goes to a pool of up to ``payload_workers`` worker
processes (``python -m datasette_runtime_truth.web.worker``, each started when first needed: a fresh
interpreter, never a fork of the threaded server, and never a re-import of the server's
``__main__``), and holds one of ``payload_workers`` slots from the moment it is queued until its
body is sent, so at most that many big answers are in memory at once. Both paths run
:func:`encode`, so the bytes never depend on where they were built.
"""

import asyncio
from dataclasses import dataclass, field
import pickle
import sqlite3
import struct
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator, Optional, Union
import weakref

from .. import config
from ..storage import debug_reads, sqlitefile
from ..upstream import api_shapes, schema
from . import links

if TYPE_CHECKING:
    from datasette.app import Datasette
    from datasette.database import Database

EXIT_WAIT_S = 1.0  # how long a stopped worker's exit status is awaited, to name it

ROUTES: dict[str, tuple[Callable, Callable]] = {
    "turns": (api_shapes.turns_item, api_shapes.turns_envelope),
    "turn": (api_shapes.turn_item, api_shapes.turn_envelope),
}


class WorkerStopped(Exception):
    """A worker process died while building an answer (killed, out of memory), or could not
    start."""


@dataclass(frozen=True)
class Job:
    """One answer to build, in plain values a worker process can receive: the route (a key of
    ROUTES), the store's shape, the snapshot filters and the values the envelope echoes."""

    route: str
    shape: schema.TurnsShape
    filters: dict = field(default_factory=dict)
    echo: tuple = ()


def chunks(conn: sqlite3.Connection, job: Job) -> Iterator[bytes]:
    """The answer's JSON body, in pieces (``links.json_chunks``), read and built from ``conn``:
    every item is built before the first piece is given."""
    build, envelope = ROUTES[job.route]
    return debug_reads.encode_snapshots(
        conn, job.shape, build, lambda items: links.json_chunks(envelope(*job.echo, items)), **job.filters,
    )


def encode(conn: sqlite3.Connection, job: Job) -> bytes:
    return b"".join(chunks(conn, job))


def connect(uri: str) -> sqlite3.Connection:
    return sqlite3.connect(uri, uri=True)


async def build(datasette: "Datasette", db: "Database", job: Job, chars: int) -> links.EncodedJSON:
    """The answer ``job`` asks for, built where its size (``chars``, from SQL) says."""
    pool = _pool(datasette)
    uri = read_uri(datasette, db)
    if pool is None or uri is None or chars < config.setting(datasette, "payload_process_chars"):
        return links.EncodedJSON(await db.execute_fn(lambda conn: encode(conn, job)))
    return await pool.build(uri, job)


def read_uri(datasette: "Datasette", db: "Database") -> Optional[str]:
    """The URI another process opens ``db`` with, as Datasette opens its read connections
    (``mode=ro``, or ``immutable=1``); None for an in-memory database, which only this process
    can read."""
    if db.is_memory or getattr(db, "memory_name", None) or not db.path:
        return None
    if not db.is_mutable:
        return sqlitefile.read_only_uri(db.path, immutable=True)
    return sqlitefile.uri(db.path, "ro", *(("nolock=1",) if getattr(datasette, "nolock", False) else ()))


# --- the pool -----------------------------------------------------------------------------------

_pools: "weakref.WeakKeyDictionary[Datasette, Pool]" = weakref.WeakKeyDictionary()


def _pool(datasette: "Datasette") -> Optional["Pool"]:
    """This Datasette's pool (no process started until it builds), or None with
    ``payload_workers: 0``."""
    count = config.setting(datasette, "payload_workers")
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
        """The answer, its first piece read (so a worker that stops while building is a
        WorkerStopped here), the rest sent as the worker writes it. The slot and the worker are
        held until the answer is sent, or given up."""
        slots = self._slots()
        await slots.acquire()
        worker = None
        try:
            worker = self._take()
            first = await asyncio.to_thread(worker.start, uri, job)
        except BaseException as error:
            # A worker that answered with an error waits for the next job; any other is stopped.
            answered = isinstance(error, Exception) and not isinstance(error, WorkerStopped)
            if worker is not None:
                (self.give_back if answered else self.forget)(worker)
            slots.release()
            raise
        sent = Sent(self, worker, slots)
        return links.EncodedJSON(first, rest=sent.rest(), release=sent.release)

    def _slots(self) -> asyncio.Semaphore:
        """The slots of the running event loop (a server has one; tests start several)."""
        loop = asyncio.get_running_loop()
        if loop not in self.slots:
            self.slots[loop] = asyncio.Semaphore(self.size)
        return self.slots[loop]

    def give_back(self, worker: "Worker") -> None:
        with self.lock:
            if worker in self.started:
                self.idle.append(worker)

    def _take(self) -> "Worker":
        with self.lock:
            if self.idle:
                return self.idle.pop()
            worker = Worker()
            self.started.append(worker)
            return worker

    def forget(self, worker: "Worker") -> None:
        """Stop a worker that stopped, or whose answer was not read to its end; in a thread of
        its own, since it may take a moment to notice (this may run on the event loop)."""
        with self.lock:
            if worker in self.started:
                self.started.remove(worker)
        threading.Thread(target=worker.stop, daemon=True).start()

    def shutdown(self) -> None:
        """Stop every worker: each exits when its input closes."""
        with self.lock:
            started, self.started, self.idle = self.started, [], []
        for worker in started:
            worker.stop()


class Sent:
    """The rest of one answer a worker is writing, and what ending it gives back: the worker to
    the pool when it wrote everything, else it is stopped (its pipe holds the unsent rest)."""

    def __init__(self, pool: Pool, worker: "Worker", slots: asyncio.Semaphore):
        self.pool, self.worker, self.slots = pool, worker, slots
        self.loop = asyncio.get_running_loop()
        self.done = False

    async def rest(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await asyncio.to_thread(self.worker.next_chunk)
            if not chunk:
                self.done = True
                return
            yield chunk

    def release(self) -> None:
        """Once, from the event loop or (a response dropped unsent) any thread."""
        if self.done:
            self.pool.give_back(self.worker)
        else:
            self.pool.forget(self.worker)
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self.slots.release()
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.slots.release)


class Worker:
    """One ``python -m datasette_runtime_truth.web.worker`` process and its pipes (see worker.py)."""

    def __init__(self) -> None:
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "datasette_runtime_truth.web.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
            )
        except OSError as error:
            raise WorkerStopped(f"could not start a payload worker process ({error}): set payload_workers "
                                "to 0 to build every answer in the server") from None

    def start(self, uri: str, job: Job) -> bytes:
        """Send the job; the first piece of its body once the worker has built it. An exception
        the worker raised is raised here."""
        try:
            write_message(self.process.stdin, pickle.dumps((uri, job)))
        except OSError:
            raise self._stopped() from None
        return self.next_chunk()

    def next_chunk(self) -> bytes:
        """The next piece of the body, ``b""`` after the last."""
        try:
            ok, message = read_message(self.process.stdout)
        except (OSError, EOFError, ValueError):
            raise self._stopped() from None
        if not ok:
            raise pickle.loads(message)
        return message

    def _stopped(self) -> WorkerStopped:
        return WorkerStopped(f"a payload worker process stopped while building this answer ({self._ended()}); "
                             "another one starts on the next request: retry")

    def _ended(self) -> str:
        try:
            code = self.process.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            return "its pipe closed"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def stop(self) -> None:
        for pipe in filter(None, (self.process.stdin, self.process.stdout)):
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


def write_message(pipe: Any, data: Union[bytes, memoryview], ok: bool = True) -> None:
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
