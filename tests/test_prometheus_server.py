"""A real Prometheus (Debian's, installed by scripts/ensure-prometheus) scrapes a real
``datasette serve`` of two stores, one cut over and one not, with the shipped alerting rules:
every series it holds equals the report JSON's figure, and the store not cut over has its alerts
pending. Both processes run on 127.0.0.1, on free ports, and are stopped by PID."""

import contextlib
import json
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from browser import datasette_server, free_port, stop
from metrics_helpers import expected_from_json, without_age

from builders import cut_over_and_not

from datasette_runtime_truth.report.metrics import ALERT_RULES

PROMETHEUS = "/usr/bin/prometheus"
WAIT_S = 90  # the longest any wait below may take before the test fails


@pytest.fixture(scope="module")
def stores(tmp_path_factory, samples):
    return list(cut_over_and_not(tmp_path_factory.mktemp("scraped"), samples).values())


def config(target):
    """A scrape and evaluation every second, the shipped rules, one target."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [{"job_name": "runtime-truth", "metrics_path": "/-/runtime-truth/metrics",
                            "static_configs": [{"targets": [target]}]}],
    }


@contextlib.contextmanager
def prometheus(folder, target):
    """Run Debian's prometheus scraping ``target``; yield its base URL; stop it by PID."""
    config_path = folder / "prometheus.yml"
    config_path.write_text(json.dumps(config(target)))  # JSON is YAML
    port = free_port()
    log = open(folder / "prometheus.log", "wb")
    process = subprocess.Popen([
        PROMETHEUS, f"--config.file={config_path}", f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base, process), "prometheus to be ready", folder)
        yield base
    finally:
        stop(process, timeout_s=20)
        log.close()


def _ready(base, process):
    if process.poll() is not None:
        raise RuntimeError(f"prometheus exited with {process.returncode}")
    try:
        with urllib.request.urlopen(base + "/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_for(found, what, folder=None):
    """Poll ``found()`` until it gives something truthy, for at most WAIT_S seconds."""
    deadline = time.monotonic() + WAIT_S
    while True:
        result = found()
        if result:
            return result
        if time.monotonic() > deadline:
            log = (folder / "prometheus.log").read_text()[-3000:] if folder else ""
            raise AssertionError(f"waited {WAIT_S} s for {what}\n{log}")
        time.sleep(0.25)


def api(base, path, **params):
    with urllib.request.urlopen(f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]


def scraped(base):
    """{(metric, sorted labels): value} of every runtime_truth series, without instance and job."""
    result = api(base, "query", query='{__name__=~"runtime_truth_.*", job="runtime-truth"}')["result"]
    found = {}
    for series in result:
        labels = {k: v for k, v in series["metric"].items() if k not in ("__name__", "instance", "job")}
        found[(series["metric"]["__name__"], tuple(sorted(labels.items())))] = float(series["value"][1])
    return found


def alerts(base):
    """{(alertname, database, check, state)} of the alerts Prometheus holds."""
    return {(a["labels"]["alertname"], a["labels"]["database"], a["labels"].get("check"), a["state"])
            for a in api(base, "alerts")["alerts"]}


EXPECTED_ALERTS = {
    ("RuntimeTruthNotCutOver", "legacy", "columns", "pending"),
    ("RuntimeTruthNotCutOver", "legacy", "indexes", "pending"),
    ("RuntimeTruthValuesToFill", "legacy", None, "pending"),
}


def test_prometheus_scrapes_every_figure_and_alerts_on_the_store_not_cut_over(stores, tmp_path):
    with datasette_server(*stores, log_path=tmp_path / "datasette.log") as datasette:
        target = urllib.parse.urlsplit(datasette).netloc
        with urllib.request.urlopen(datasette + "/-/runtime-truth.json") as response:
            report = json.load(response)
        assert [(db["database"], db["status"]) for db in report["databases"]] == [
            ("turns", "passes"), ("legacy", "fails")]
        with prometheus(tmp_path, target) as base:
            expected = expected_from_json(report)
            wait_for(lambda: len(scraped(base)) == len(expected) + 2, "every series (and both ages)", tmp_path)
            found = scraped(base)
            assert without_age(found) == expected
            seen = wait_for(lambda: (lambda now: now if now >= EXPECTED_ALERTS else None)(alerts(base)),
                            "the alerts on legacy", tmp_path)
            assert seen == EXPECTED_ALERTS
            rule_alerts = api(base, "alerts")["alerts"]
            values_to_fill = next(a for a in rule_alerts if a["labels"]["alertname"] == "RuntimeTruthValuesToFill")
            assert values_to_fill["annotations"]["page_url"] == f"http://{target}/-/runtime-truth/legacy/preview"
            assert values_to_fill["annotations"]["report_url"] == f"http://{target}/-/runtime-truth"
            targets = api(base, "targets")["activeTargets"]
            assert [(t["health"], t["scrapeUrl"]) for t in targets] == [
                ("up", f"http://{target}/-/runtime-truth/metrics")]
