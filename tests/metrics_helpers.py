"""The metrics a JSON report implies, to hold /-/runtime-truth/metrics (and what Prometheus scraped
from it) to the report's figures."""

import calendar
import importlib.metadata
import time

VERSION = importlib.metadata.version("datasette-runtime-truth")


def values(families):
    """{(metric, sorted label items): value}"""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families for sample in family.samples
    }


def epoch(iso):
    return calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")) + int(iso[20:23]) / 1000


def without_age(found):
    """``found`` less the report ages, which move with every scrape; each age is at least 0."""
    ages = {key: value for key, value in found.items() if key[0] == "runtime_truth_report_age_seconds"}
    assert all(value >= 0 for value in ages.values())
    return {key: value for key, value in found.items() if key not in ages}


def expected_from_json(data):
    """Every sample but the ages, as the JSON report gives its figures."""
    found = {("runtime_truth_info", (("version", VERSION),)): 1}
    for db in data["databases"]:
        checks = {check["id"]: check for check in db["checks"]}
        label = (("database", db["database"]),)
        found[("runtime_truth_turns", label)] = db["turns"]
        for column in ("runtime_key", "inference_id"):
            counts = checks[f"missing_{column}"]["counts"]
            for recoverable, value in (("true", counts["recoverable"]),
                                       ("false", counts["missing"] - counts["recoverable"])):
                key = tuple(sorted(label + (("column", column), ("recoverable", recoverable))))
                found[("runtime_truth_missing_rows", key)] = value
        found[("runtime_truth_bad_metadata_rows", label)] = checks["bad_metadata"]["value"]
        found[("runtime_truth_would_fill_rows", label)] = checks["would_fill"]["value"]
        found[("runtime_truth_switched_conversations", label)] = checks["runtime_switches"]["value"]
        if checks["pointer"]["value"] is not None:  # None: nothing compared, so no sample
            found[("runtime_truth_pointer_mismatches", label)] = checks["pointer"]["value"]
        for check in db["checks"]:
            key = tuple(sorted(label + (("check", check["id"]),)))
            found[("runtime_truth_check_passing", key)] = 0 if check["status"] == "fail" else 1
        found[("runtime_truth_computed_timestamp_seconds", label)] = epoch(db["computed_at"])
        found[("runtime_truth_report_outdated", label)] = int(db["outdated"])
    return found
