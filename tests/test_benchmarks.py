"""benchmarks/run.py keeps working: a small run, checked for structure and consistency, never speed."""

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).parent.parent / "benchmarks" / "run.py"
SECTIONS = ["Backfill vs the floor", "Backfill vs the floor, small rows", "Lock holding", "A live writer",
            "Memory", "Routes", "Canned queries", "Load", "A big turn beside other requests", "The report at scale",
            "The timeline snapshot"]


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
    assert set(stall["big_statuses"]) == {"200"}
    assert stall["busy_ms"]["count"] > 0 and stall["idle_ms"]["count"] == 50
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

    snapshot = sections["The timeline snapshot"]["data"]
    assert snapshot["written"] == snapshot["rows"] == snapshot["entities"] == 5000
    assert (snapshot["different"], snapshot["cold_statuses"]) == (0, {"200": 1})
    assert snapshot["route_ms"]["count"] == snapshot["sql_ms"]["count"] == 50 and snapshot["ratio"] > 0

    text = out.read_text()
    assert text.startswith("# Benchmarks\n")
    for heading in ["## Machine", "## Sample", "## Targets", *(f"## {title}" for title in SECTIONS)]:
        assert f"\n{heading}\n" in text
    assert "not measured" not in text


@pytest.mark.benchmark
def test_one_section_runs_alone(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    process = subprocess.run(
        [sys.executable, str(SCRIPT), "--turns", "100", "--json", "--out", str(out), "--sections", "timeline_snapshot"],
        capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stderr
    assert [section["title"] for section in json.loads(process.stdout)["sections"]] == ["The timeline snapshot"]
    process = subprocess.run([sys.executable, str(SCRIPT), "--sections", "nope"], capture_output=True, text=True)
    assert process.returncode == 2 and "unknown section nope" in process.stderr
