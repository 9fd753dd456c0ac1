"""``/-/runtime-truth/metrics``: the cutover report's figures for Prometheus and Grafana.

A custom ``prometheus_client`` collector over the reports, rendered by the library's own writers:
the text format, or OpenMetrics when the scraper's ``Accept`` asks for it, negotiated as
``prometheus_client`` does. Every number is one the JSON report shows; the figures come from the
same report cache.
"""

import importlib.metadata
import importlib.resources
import time
from typing import Iterable, Iterator, Optional, cast

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from .. import config
from . import checks

Sample = tuple[str, list[str], float]  # (metric, label values, value)

# name -> help; every metric but the info is a gauge with a ``database`` label.
METRICS = {
    "runtime_truth_turns": "Turn rows in the turns database.",
    "runtime_truth_missing_rows": "Turn rows whose column is still '', by whether a migrate run "
                                  "would fill it from the row's own metadata.",
    "runtime_truth_bad_metadata_rows": "Turn rows still missing a value whose metadata the backfill "
                                       "cannot decode (invalid or non-object JSON).",
    "runtime_truth_would_fill_rows": "Turn rows a migrate run would still write.",
    "runtime_truth_switched_conversations": "Conversations whose known runtime_key changes between turns.",
    "runtime_truth_pointer_mismatches": "Conversations whose pointer in the timeline store differs from "
                                        "their newest turn's runtime_key.",
    "runtime_truth_check_passing": "1 when the report's check passes or is information, 0 when it fails.",
    "runtime_truth_computed_timestamp_seconds": "When the figures were computed (Unix time).",
    "runtime_truth_report_age_seconds": "Seconds since the figures were computed, at this scrape.",
    "runtime_truth_report_outdated": "1 when the store has committed since the figures were computed "
                                     "(a recomputation is due or running), else 0.",
}
LABELS = {
    "runtime_truth_missing_rows": ["database", "column", "recoverable"],
    "runtime_truth_check_passing": ["database", "check"],
}
INFO_HELP = f"The {config.PLUGIN} plugin serving these figures."
ALERT_RULES = importlib.resources.files("datasette_runtime_truth") / "prometheus" / "runtime-truth.rules.yml"


def version() -> str:
    return importlib.metadata.version(config.PLUGIN)


def samples(db_report: checks.DatabaseReport, now: float) -> Iterator[Sample]:
    """(metric, label values, value) for one database's report, ``now`` in Unix seconds; none
    where there is nothing to check."""
    if db_report.problem:
        return
    by_id = {check.id: check for check in db_report.checks}
    base = [db_report.database]
    yield "runtime_truth_turns", base, db_report.turns
    for column in ("runtime_key", "inference_id"):
        counts = by_id[f"missing_{column}"].counts
        for recoverable, value in (("true", counts["recoverable"]),
                                   ("false", counts["missing"] - counts["recoverable"])):
            yield "runtime_truth_missing_rows", base + [column, recoverable], value
    yield "runtime_truth_bad_metadata_rows", base, _figure(by_id["bad_metadata"])
    yield "runtime_truth_would_fill_rows", base, _figure(by_id["would_fill"])
    yield "runtime_truth_switched_conversations", base, _figure(by_id["runtime_switches"])
    if by_id["pointer"].value is not None:
        yield "runtime_truth_pointer_mismatches", base, by_id["pointer"].value
    for check in db_report.checks:
        yield "runtime_truth_check_passing", base + [check.id], int(check.status != checks.FAIL)
    if db_report.computed_at_ms:
        computed = db_report.computed_at_ms / 1000
        yield "runtime_truth_computed_timestamp_seconds", base, computed
        yield "runtime_truth_report_age_seconds", base, max(0.0, now - computed)
    yield "runtime_truth_report_outdated", base, int(db_report.outdated)


def _figure(check: checks.Check) -> int:
    """The number of a check that has one (every check but the pointer's always does)."""
    return cast(int, check.value)


class ReportCollector:
    """A collector over already computed reports: each metric family once, its samples by
    database, and the plugin's version as ``runtime_truth_info``."""

    def __init__(self, reports: Iterable[checks.DatabaseReport], now: float) -> None:
        self.reports = reports
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily("runtime_truth", INFO_HELP, value={"version": version()})
        families = {name: GaugeMetricFamily(name, help_text, labels=LABELS.get(name, ["database"]))
                    for name, help_text in METRICS.items()}
        for db_report in self.reports:
            for name, labels, value in samples(db_report, self.now):
                families[name].add_metric(labels, value)
        yield from families.values()


def exposition(reports: Iterable[checks.DatabaseReport], accept: Optional[str] = None,
               now: Optional[float] = None) -> tuple[bytes, str]:
    """(body bytes, content type) of the reports, in the format ``accept`` asks for."""
    encoder, content_type = choose_encoder(accept or "")
    collector = ReportCollector(reports, time.time() if now is None else now)
    return encoder(collector), content_type
