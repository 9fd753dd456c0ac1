"""A payload worker process: ``python -m datasette_runtime_truth.web.worker`` (started by offload.py).

Reads ``(uri, Job)`` requests from stdin and answers each with the JSON body ``offload.chunks``
builds, in pieces, or the exception it raised, until stdin closes: when the server stops the pool, or dies.
Ctrl-C is left to the server, which then closes stdin.
"""

import pickle
import signal
import sys
from typing import BinaryIO

from datasette_runtime_truth.web import offload

CHUNK = 1024 * 1024


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the answer pipe
    try:
        serve(requests, answers)
    except BrokenPipeError:
        pass  # the server stopped reading this worker's answer: it stops the worker too


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    while True:
        try:
            _, message = offload.read_message(requests)
        except EOFError:
            return
        uri, job = pickle.loads(message)
        try:
            answer(uri, job, answers)
        except BrokenPipeError:
            raise
        except Exception as error:
            offload.write_message(answers, _picklable(error), ok=False)


def answer(uri: str, job: offload.Job, answers: BinaryIO) -> None:
    """Write the job's body in pieces of at most CHUNK bytes, then an empty piece."""
    conn = offload.connect(uri)
    try:
        for piece in offload.chunks(conn, job):
            view = memoryview(piece)
            for start in range(0, len(view), CHUNK):
                offload.write_message(answers, view[start:start + CHUNK])
    finally:
        conn.close()
    offload.write_message(answers, b"")


def _picklable(error: Exception) -> bytes:
    try:
        return pickle.dumps(error)
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))


if __name__ == "__main__":
    main()
