"""A payload worker process: ``python -m datasette_runtime_truth.worker`` (started by offload.py).

Reads ``(uri, Job)`` requests from stdin and answers each with the JSON body ``offload.encode_file``
builds, or the exception it raised, until stdin closes: when the server stops the pool, or dies.
Ctrl-C is left to the server, which then closes stdin.
"""

import pickle
import signal
import sys

from datasette_runtime_truth import offload


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the answer pipe
    while True:
        try:
            _, message = offload.read_message(requests)
        except EOFError:
            return
        uri, job = pickle.loads(message)
        try:
            body = offload.encode_file(uri, job)
        except Exception as error:
            offload.write_message(answers, _picklable(error), ok=False)
        else:
            offload.write_message(answers, body)


def _picklable(error: Exception) -> bytes:
    try:
        return pickle.dumps(error)
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))


if __name__ == "__main__":
    main()
