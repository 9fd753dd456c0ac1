"""The harness of benchmarks/run.py: the sample and its fresh copies, a measured child process,
a function run alongside the migration, the machine's description, and running the sections.

Every section module takes the Bench and the results dict that run_all hands it.
"""

from dataclasses import asdict, dataclass
import datetime
import importlib.metadata
import json
import multiprocessing
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from datasette_runtime_truth import sample
from datasette_runtime_truth.upstream import schema

import routes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 1
MB = 1024 * 1024


class Bench:
    """The sample and its copies; every measurement starts from a fresh copy of the same file."""

    def __init__(self, turns, workdir, batch_size=None, load_seconds=routes.LOAD_SECONDS):
        self.turns = turns
        self.workdir = workdir
        self.batch_size = batch_size
        self.load_seconds = load_seconds
        self.samples = {}

    def sample(self, turns):
        """Build (once) the pre-cutover sample of ``turns`` turns and return its turns.db path."""
        if turns not in self.samples:
            directory = os.path.join(self.workdir, f"sample-{turns}")
            started = time.perf_counter()
            try:
                summary = sample.build(directory, turns=turns, seed=SEED)
                built_s = time.perf_counter() - started
            except sample.SampleExists:  # a --workdir kept from an earlier run: same seed, same rows
                summary, built_s = sample.summarize(directory), None
            self.samples[turns] = (summary, built_s)
        return self.samples[turns][0].turns_path

    def copy(self, name, turns=None):
        """A fresh, fsync'd copy of the sample, so no measurement pays for writing back the copy."""
        source = self.sample(turns or self.turns)
        target = os.path.join(self.workdir, f"{name}.db")
        for suffix in ("", "-wal", "-shm"):
            _remove(target + suffix)
        shutil.copyfile(source, target)
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return target

    def small_rows_copy(self, name):
        """A fresh copy of a store holding only the sample's turn rows (metadata, no blocks, no
        snapshots), built once: where the migration's per-row work is all that is left."""
        source = os.path.join(self.workdir, f"small-rows-{self.turns}.db")
        if not os.path.exists(source):
            sample_path = self.sample(self.turns)
            conn = sqlite3.connect(source)
            schema.create_turns_db(conn, "pre-cutover")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("ATTACH ? AS sample", (f"file:{sample_path}?mode=ro",))
            conn.execute("INSERT INTO turns SELECT * FROM sample.turns ORDER BY rowid")
            conn.commit()
            conn.execute("DETACH sample")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        target = os.path.join(self.workdir, f"{name}.db")
        for suffix in ("", "-wal", "-shm"):
            _remove(target + suffix)
        shutil.copyfile(source, target)
        return target

    def discard(self, path):
        for suffix in ("", "-wal", "-shm"):
            _remove(path + suffix)

    def migrate_command(self, path):
        command = [sys.executable, "-m", "datasette", "runtime-truth", "migrate", path, "--json"]
        if self.batch_size:
            command += ["--batch-size", str(self.batch_size)]
        return command


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


@dataclass
class Run:
    """A finished subprocess: its wall time, CPU time, peak RSS and output."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    returncode: int


# On Linux a child's ru_maxrss starts from its parent's peak RSS (exec records the old image's
# high-water mark), so a child of this process would report this process's size. A small
# intermediary forks the measured program and reports its wait4() figures instead.
MEASURE_CHILD = r"""
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
               "maxrss_kb": usage.ru_maxrss}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(command):
    """Run ``command`` to completion; wall time, CPU time and peak RSS of that program alone."""
    with tempfile.TemporaryDirectory() as directory:
        figures = os.path.join(directory, "figures.json")
        process = subprocess.run([sys.executable, "-c", MEASURE_CHILD, figures, *command],
                                 capture_output=True, text=True)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {process.stderr.strip()}")
        with open(figures) as f:
            measured = json.load(f)
    return Run(measured["wall_s"], measured["cpu_s"], measured["maxrss_kb"] / 1024, process.stdout,
               process.stderr, process.returncode)


def run_data(run):
    """A Run's figures as the JSON result holds them."""
    return {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mb": run.peak_rss_mb}


def alongside(function, path, migrate_command):
    """Run ``function`` in its own process for the whole migration; return (migration Run, result)."""
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    process = context.Process(target=function, args=(path, stop, results))
    process.start()
    time.sleep(0.5)  # let it start before the migration does
    try:
        migration = run_child(migrate_command)
    finally:
        time.sleep(0.2)
        stop.set()
    result = results.get(timeout=60)
    process.join(timeout=60)
    return migration, result


def machine():
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "datasette": importlib.metadata.version("datasette"),
        "plugin": importlib.metadata.version("datasette-runtime-truth"),
        "commit": _git_commit(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def run_all(turns, workdir, sections, batch_size=None, load_seconds=routes.LOAD_SECONDS):
    bench = Bench(turns, workdir, batch_size, load_seconds)
    bench.sample(turns)
    summary, build_s = bench.samples[turns]
    results = {}
    done = []
    for section in sections:
        measured = section(bench, results)
        done += measured if isinstance(measured, list) else [measured]
    return {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "sample": {"turns": summary.turns, "conversations": summary.conversations,
                   "snapshots": summary.snapshots, "blocks": summary.blocks, "seed": SEED,
                   "turns_db_mb": round(os.path.getsize(summary.turns_path) / MB, 1),
                   "build_s": None if build_s is None else round(build_s, 1)},
        "batch_size": batch_size,
        "sections": [{"title": s.title, "met": s.met, "rows": [asdict(r) for r in s.rows],
                      "notes": s.notes, "data": s.data} for s in done],
        "all_met": all(s.met is not False for s in done),
    }
