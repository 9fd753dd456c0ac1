"""What a fleet of hosts costs Prometheus per scrape of ``/-/runtime-truth/metrics``.

    python benchmarks/scrape.py [--turns 20000] [--hosts 100] [--interval 30] [--json] [--out BENCHMARKS.md]

Builds the demo-sized sample (``make demo``'s 20,000 turns, seed 1) and serves it as a host does,
with a real ``datasette serve turns.db timeline.db`` on 127.0.0.1, before and after the migration;
scrapes the metrics as Prometheus asks for them (OpenMetrics) and as the text format; counts the
series (samples) and the bytes of each answer, raw and gzipped; and multiplies by the fleet.
``--out`` writes (or replaces) this section in that markdown file; run it after ``run.py``, which
rewrites the file.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from datasette_runtime_truth import sample

from measure import Row, Section
from routes import REQUEST_TIMEOUT_S, Server

TITLE = "A fleet of hosts, per scrape"
# What Prometheus 2.x sends, so the plugin negotiates OpenMetrics as it does for a real scrape.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
FORMATS = {
    "OpenMetrics (what Prometheus asks for)": (PROMETHEUS_ACCEPT, openmetrics_families),
    "text 0.0.4": ("text/plain;version=0.0.4", text_string_to_metric_families),
}


def scrape(url):
    """{format: {bytes, gzip_bytes, series, families}} of one host's metrics."""
    found = {}
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        client.get("/-/runtime-truth.json").raise_for_status()  # the figures, computed once
        for name, (accept, parse) in FORMATS.items():
            response = client.get("/-/runtime-truth/metrics", headers={"Accept": accept})
            response.raise_for_status()
            families = list(parse(response.text))
            found[name] = {
                "content_type": response.headers["content-type"],
                "bytes": len(response.content),
                "gzip_bytes": len(gzip.compress(response.content)),
                "series": sum(len(family.samples) for family in families),
                "families": len(families),
            }
    return found


def measure(turns, workdir):
    """Scrapes of the demo-sized store before and after its migration."""
    built = sample.build(os.path.join(workdir, "demo"), turns=turns, seed=1, force=True)
    paths = [built.turns_path, built.timeline_path]
    log = os.path.join(workdir, "datasette.log")
    with Server(paths, log) as server:
        before = scrape(server.url)
    subprocess.run([sys.executable, "-m", "datasette", "runtime-truth", "migrate", built.turns_path],
                   check=True, capture_output=True)
    with Server(paths, log) as server:
        after = scrape(server.url)
    return {"turns": turns, "before migration": before, "migrated": after}


def section(data, hosts, interval_s):
    """The measurements as a benchmark Section, multiplied by ``hosts`` scraped every ``interval_s``."""
    rows = []
    for state in ("migrated", "before migration"):
        for name, figures in data[state].items():
            per_day = figures["bytes"] * hosts * 86400 / interval_s
            rows.append(Row(
                f"{state}, {name}: one host",
                f"{figures['series']} series, {figures['bytes']:,} bytes ({figures['gzip_bytes']:,} gzipped)"))
            rows.append(Row(
                f"{state}, {name}: {hosts} hosts",
                f"{figures['series'] * hosts:,} series, {figures['bytes'] * hosts / 1024:,.1f} KiB per scrape "
                f"({figures['gzip_bytes'] * hosts / 1024:,.1f} KiB gzipped), "
                f"{per_day / 1024 ** 2:,.0f} MiB a day at a {interval_s} s interval"))
    return Section(TITLE, rows=rows, notes=[
        f"`python benchmarks/scrape.py --turns {data['turns']} --hosts {hosts}`: the demo-sized sample "
        f"({data['turns']:,} turns, seed 1) served by `datasette serve turns.db timeline.db` on 127.0.0.1, "
        "before and after `migrate`; one scrape per format after the report was computed.",
        "Series do not grow with the store: a turns database gives 21 whatever its size (20 while "
        "there is no pointer comparison: before the migration, or without a timeline store), and a "
        "host adds one, `runtime_truth_info`. Most bytes are the families' HELP and TYPE lines, "
        "sent once per scrape.",
        "Bytes are the answer's body as Datasette sends it (it does not compress); gzipped is what a "
        "compressing proxy in front of it would send.",
    ], data=data)


def markdown(result):
    lines = [f"## {result.title}", "", "| measure | value |", "| --- | --- |"]
    lines += [f"| {row.measure} | {row.value} |" for row in result.rows]
    return "\n".join(lines + [""] + [f"- {note}" for note in result.notes] + [""])


def write_section(path, text):
    """Replace this section in the markdown file at ``path``, or append it."""
    old = open(path).read() if os.path.exists(path) else ""
    start = old.find(f"## {TITLE}\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + 1)
        new = old[:start] + text + (old[end + 1:] if end >= 0 else "")
    with open(path, "w") as f:
        f.write(new)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=20000, help="turns in the sample (make demo's 20,000)")
    parser.add_argument("--hosts", type=int, default=100, help="hosts in the fleet")
    parser.add_argument("--interval", type=int, default=30, help="scrape interval in seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", help="write (or replace) this section in that markdown file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scrape-bench-") as workdir:
        result = section(measure(args.turns, workdir), args.hosts, args.interval)
    text = markdown(result)
    if args.out:
        write_section(args.out, text)
    if args.json:
        print(json.dumps({"title": result.title, "rows": [vars(row) for row in result.rows],
                          "notes": result.notes, "data": result.data}))
    else:
        print(text)


if __name__ == "__main__":
    main()
