"""``/-/runtime-truth/metrics``: the cutover report's figures for Prometheus and Grafana.

The text exposition format 0.0.4, or OpenMetrics 1.0 when the scraper's ``Accept`` asks for it.
Every number is one the JSON report shows; the figures come from the same report cache.
"""

import calendar
import time

from . import report

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# name -> help; every metric is a gauge with a ``database`` label.
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
}


def samples(db_report):
    """(metric, labels, value) for one database's report; none where there is nothing to check."""
    if db_report.problem:
        return
    checks = {check.id: check for check in db_report.checks}
    base = {"database": db_report.database}
    yield "runtime_truth_turns", base, db_report.turns
    for column in ("runtime_key", "inference_id"):
        counts = checks[f"missing_{column}"].counts
        for recoverable, value in (("true", counts["recoverable"]),
                                   ("false", counts["missing"] - counts["recoverable"])):
            yield "runtime_truth_missing_rows", {**base, "column": column, "recoverable": recoverable}, value
    yield "runtime_truth_bad_metadata_rows", base, checks["bad_metadata"].value
    yield "runtime_truth_would_fill_rows", base, checks["would_fill"].value
    yield "runtime_truth_switched_conversations", base, checks["runtime_switches"].value
    if checks["pointer"].value is not None:
        yield "runtime_truth_pointer_mismatches", base, checks["pointer"].value
    for check in db_report.checks:
        yield "runtime_truth_check_passing", {**base, "check": check.id}, int(check.status != report.FAIL)
    if db_report.computed_at:
        yield "runtime_truth_computed_timestamp_seconds", base, _epoch(db_report.computed_at)


def _epoch(iso):
    return calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")) + int(iso[20:23]) / 1000


def exposition(reports, openmetrics=False):
    """The reports as one exposition, each metric family once, its samples by database."""
    by_metric = {name: [] for name in METRICS}
    for db_report in reports:
        for name, labels, value in samples(db_report):
            by_metric[name].append((labels, value))
    lines = []
    for name, help_text in METRICS.items():
        lines.append(f"# HELP {name} {_escape_help(help_text)}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in by_metric[name]:
            rendered = ",".join(f'{key}="{_escape_label(str(val))}"' for key, val in labels.items())
            lines.append(f"{name}{{{rendered}}} {_number(value)}")
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _number(value):
    return repr(value) if isinstance(value, float) else str(int(value))


def _escape_help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def wants_openmetrics(accept):
    return "application/openmetrics-text" in (accept or "")
