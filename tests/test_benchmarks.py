"""benchmarks/run.py keeps working: a small run, checked for structure and consistency, never speed."""

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).parent.parent / "benchmarks" / "run.py"
SECTIONS = ["Backfill vs the floor", "Backfill vs the floor, small rows", "Lock holding", "A live writer",
            "Memory", "Routes", "Canned queries", "Load", "A big turn beside other requests", "The report at scale",
            "Lookup by any id", "The timeline snapshot"]


@pytest.mark.benchmark
def test_small_run_is_consistent(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    process = subprocess.run(
        [sys.executable, str(SCRIPT), "--turns", "1000", "--json", "--out", str(out), "--load-seconds", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stderr
    result = json.loads(process.stdout)
    assert result["sample"]["turns"] == 1000
    assert set(result["machine"]) >= {"cpu", "cores", "ram_gb", "python", "sqlite", "datasette"}
    sections = {section["title"]: section for section in result["sections"]}
    assert list(sections) == SECTIONS
    for section in result["sections"]:
        for row in section["rows"]:
            assert set(row) == {"measure", "value", "target", "met"}

    floor = sections["Backfill vs the floor"]["data"]
    report, counts = floor["report"], floor["values"]
    assert report["rows_scanned"] == counts["rows"] == 1000
    assert counts["rows_differing"] == 0
    assert counts["migration_runtime_key"] == report["runtime_key_filled"]
    assert counts["migration_inference_id"] == report["inference_id_filled"]
    # The SQL floor cannot print numbers and objects as Go does: its values are information only.

    small = sections["Backfill vs the floor, small rows"]["data"]
    assert small["report"]["rows_scanned"] == small["values"]["rows"] == 1000
    assert small["values"]["rows_differing"] == 0
    assert small["report"]["runtime_key_filled"] == report["runtime_key_filled"]

    writer = sections["A live writer"]["data"]
    assert writer["saves"] > 0
    assert (writer["failures"], writer["missing"], writer["wrong"], writer["integrity"]) == ([], [], 0, "ok")

    lock = sections["Lock holding"]["data"]
    assert {build["added"][0] for build in lock["index_builds"]} <= {
        "index:turns_by_conv_runtime_updated", "index:turns_by_conv_inference_updated"}
    assert sections["Memory"]["data"]["small_turns"] == 100

    routes = sections["Routes"]["data"]
    assert routes["migration"]["rows_scanned"] == 1000
    conversations = routes["conversations"]
    assert conversations > 50  # distinct conversations drawn from the sample's
    canned = sections["Canned queries"]["data"]
    measured = {**{name: routes[name] for name in ("turns", "turn", "conversations_timeline",
                                                    "conversations_derived")}, **canned}
    for name, figures in measured.items():
        assert figures["statuses"] == {"200": figures["requests"]}, name
        assert figures["disagreements"] == 0, name
    assert [routes[name]["requests"] for name in ("turns", "turn", "conversations_timeline")] == [conversations] * 3
    assert canned["runtime_history"]["requests"] == conversations
    assert routes["conversations_derived"]["requests"] == canned["inference_lookup"]["requests"] == 20
    assert routes["turn"]["aside"]["ours_ms"]["count"] == conversations
    assert routes["turn"]["aside"]["snapshots"] >= conversations
    assert routes["turns"]["ratio_to_floor"] > 0 and routes["turn"]["ratio_to_floor"] > 0

    stall = sections["A big turn beside other requests"]["data"]
    assert stall["chars"] > 3_000_000
    assert [run["clients"] for run in stall["runs"]] == [1, 4]
    for run in stall["runs"]:
        assert set(run["big_statuses"]) == {"200"}
        assert run["busy_ms"]["count"] > 0 and run["idle_ms"]["count"] == 50
    assert routes["report_statuses"] == {"200": 3}

    load = sections["Load"]["data"]
    assert (load["clients"], load["seconds"]) == (20, 2)
    assert load["requests"] > 0
    assert load["statuses"] == {"200": load["requests"]}
    assert (load["server_errors"], load["other_statuses"], load["transport_errors"]) == (0, 0, 0)

    scale = sections["The report at scale"]["data"]
    assert sorted(scale) == ["100", "1000"]
    for turns, figures in scale.items():
        assert figures["turns"] == int(turns)
        assert figures["statuses"] == [200]
        assert (len(figures["cold_ms"]), len(figures["warm_ms"])) == (3, 20)
        assert figures["after_write"]["turns_before_after"] == [int(turns), int(turns) + 1]
        assert figures["check_exit"] == 0

    lookup = sections["Lookup by any id"]["data"]["kinds"]
    assert list(lookup) == ["turn_id", "inference_id", "conv_id", "session_id"]
    for kind, figures in lookup.items():
        assert figures["requests"] > 0 and figures["missed"] == 0, kind
        assert figures["statuses"] == {"200": figures["requests"]}, kind
        assert figures["scan_ms"]["count"] == 3, kind

    snapshot = sections["The timeline snapshot"]["data"]
    assert snapshot["written"] == snapshot["rows"] == snapshot["entities"] == 5000
    assert (snapshot["different"], snapshot["cold_statuses"]) == (0, {"200": 1})
    assert snapshot["route_ms"]["count"] == snapshot["sql_ms"]["count"] == 50 and snapshot["ratio"] > 0

    text = out.read_text()
    assert text.startswith("# Benchmarks\n")
    for heading in ["## Machine", "## Sample", "## Targets", *(f"## {title}" for title in SECTIONS)]:
        assert f"\n{heading}\n" in text
    assert "not measured" not in text


SCRAPE = pathlib.Path(__file__).parent.parent / "benchmarks" / "scrape.py"


@pytest.mark.benchmark
def test_scrape_cost_counts_every_series(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n## Machine\n\nsome machine\n")
    process = subprocess.run([sys.executable, str(SCRAPE), "--turns", "200", "--hosts", "10", "--json",
                              "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr
    result = json.loads(process.stdout)
    data = result["data"]
    assert data["turns"] == 200
    for state, series in (("migrated", 22), ("before migration", 21)):
        for name, figures in data[state].items():
            assert (figures["series"], figures["families"]) == (series, 11), (state, name)
            assert 0 < figures["gzip_bytes"] < figures["bytes"]
    formats = list(data["migrated"])
    assert [data["migrated"][name]["content_type"].split(";")[0] for name in formats] == [
        "application/openmetrics-text", "text/plain"]
    assert len(result["rows"]) == 8
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\n## Machine\n\nsome machine\n\n## A fleet of hosts, per scrape\n")
    assert "| migrated, text 0.0.4: 10 hosts | 220 series," in text


@pytest.mark.benchmark
def test_the_big_turn_section_runs_alone_and_replaces_its_section(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text((SCRIPT.parent.parent / "BENCHMARKS.md").read_text())
    process = subprocess.run(
        [sys.executable, str(SCRIPT.parent / "bigturn.py"), "--turns", "100", "--seconds", "1", "--json",
         "--update", str(out)], capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stderr
    result = json.loads(process.stdout)
    assert [run["clients"] for run in result["data"]["runs"]] == [1, 4]
    assert all(set(run["big_statuses"]) == {"200"} for run in result["data"]["runs"])
    text = out.read_text()
    assert text.count("\n## A big turn beside other requests\n") == 1
    assert "| 4 clients: `/-/versions.json` meanwhile: p95 |" in text
    assert text.index("## A big turn beside other requests") < text.index("## The report at scale")


@pytest.mark.benchmark
def test_payload_memory_runs(tmp_path):
    process = subprocess.run(
        [sys.executable, str(SCRIPT.parent / "payloadmemory.py"), "--sizes", "1", "--concurrent", "2",
         "--block-mb", "2", "--json"], capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stderr
    result = json.loads(process.stdout)
    assert [(row["form"], row["mb"]) for row in result["per_mb"]] == [("text", 1), ("objects", 1)]
    assert all(row["chars"] > 3 * 1024 * 1024 and row["worker_peak_growth_mb"] > 0 for row in result["per_mb"])
    concurrent = result["concurrent"]
    assert concurrent["refused"]["statuses"] == {"413": 20}
    assert concurrent["served"]["statuses"] == {"200": 2}


@pytest.mark.benchmark
@pytest.mark.parametrize("name, title", [("timeline_snapshot", "The timeline snapshot"), ("memory", "Memory")])
def test_one_section_runs_alone(tmp_path, name, title):
    out = tmp_path / "BENCHMARKS.md"
    process = subprocess.run(
        [sys.executable, str(SCRIPT), "--turns", "100", "--json", "--out", str(out), "--only", name],
        capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stderr
    assert [section["title"] for section in json.loads(process.stdout)["sections"]] == [title]


def test_an_unknown_section_is_refused():
    process = subprocess.run([sys.executable, str(SCRIPT), "--only", "nope"], capture_output=True, text=True)
    assert process.returncode == 2 and "argument --only: invalid choice: 'nope'" in process.stderr
