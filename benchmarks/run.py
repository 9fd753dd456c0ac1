"""Measure the migration at scale against the physical floor, and write BENCHMARKS.md.

    python benchmarks/run.py [--turns N] [--json] [--out BENCHMARKS.md] [--workdir DIR] [--load-seconds S]
                             [--only SECTION ...]

Builds a pre-cutover sample with the project's own generator, then measures, each on a fresh copy
of the same file (copied and fsync'd before the clock starts):

* backfill vs the floor: ``datasette runtime-truth migrate`` (a subprocess, start-up included)
  against one hand-written transaction reaching the same end state with one
  ``UPDATE ... json_extract`` statement;
* lock holding: the longest time a probing writer could not get the write lock;
* a live writer: a second process saving turns the upstream way during the whole migration;
* memory: the migration's peak RSS at N and at N/10 turns;
* routes, canned queries and load (benchmarks/routes.py): on a migrated copy served by a real
  ``datasette serve``, the debug API routes and the canned queries' JSON against the same SQL run
  directly, and 20 clients for 20 seconds (``--load-seconds``) against the debug routes;
* lookup by any id (benchmarks/lookup.py): the search box's route for each kind of id against its
  own SQL, everything the route reads, and a full scan.
* the timeline snapshot (benchmarks/timelinebench.py): ``/api/timeline`` of a 5,000-entity
  conversation against its SQL and the server's fixed cost.

Each section is a function in SECTIONS returning a Section (or a list of them): backfill.py (the
floor, small rows), locks.py (lock holding, a live writer), memory.py and the modules named above.
harness.py builds the sample and its copies and runs the sections; render.py writes the report.
Speed is measured here and never asserted in tests.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import backfill
import harness
import locks
import lookup
import memory
import render
import reportscale
import routes
import timelinebench

# Sections run in this order; each is a function (bench, results) -> Section (or a list of
# Sections, when several share one server), and may read what an earlier one left in ``results``.
# The routes, canned queries and load sections (benchmarks/routes.py) share one served copy.
SECTIONS = (backfill.backfill_vs_floor, backfill.small_rows_vs_floor, locks.lock_holding, locks.live_writer_section,
            memory.memory, routes.routes_and_queries,
            reportscale.report_at_scale, lookup.lookup_by_any_id,
            timelinebench.timeline_snapshot)
BY_NAME = {section.__name__: section for section in SECTIONS}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1_000_000, help="turns in the sample (default 1,000,000)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--out", default=os.path.join(harness.ROOT, "BENCHMARKS.md"), help="where to write BENCHMARKS.md")
    parser.add_argument("--workdir", help="where to build the sample and its copies (default: a temporary "
                        "directory, removed afterwards); needs about 7 KB per turn, twice")
    parser.add_argument("--batch-size", type=int, help="the migration's --batch-size (default: its own)")
    parser.add_argument("--load-seconds", type=float, default=routes.LOAD_SECONDS,
                        help=f"how long the load test's {routes.LOAD_CLIENTS} clients run "
                        f"(default {routes.LOAD_SECONDS:g})")
    parser.add_argument("--only", nargs="+", choices=list(BY_NAME), metavar="SECTION",
                        help=f"run only these sections, in their usual order ({', '.join(BY_NAME)})")
    args = parser.parse_args(argv)
    if args.turns < 10:
        parser.error("--turns must be at least 10")
    workdir = args.workdir or tempfile.mkdtemp(prefix="runtime-truth-bench-")
    os.makedirs(workdir, exist_ok=True)
    try:
        sections = tuple(s for s in SECTIONS if not args.only or s.__name__ in args.only)
        result = harness.run_all(args.turns, workdir, sections, args.batch_size, load_seconds=args.load_seconds)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    with open(args.out, "w") as f:
        f.write(render.markdown(result))
    print(json.dumps(result) if args.json else render.text_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
