"""/-/runtime-truth/metrics, read back with prometheus_client's own parsers: every number equals
the JSON report's; OpenMetrics on request; the report's permissions; CORS with --cors."""

import pytest
from conftest import line_config
from datasette_test import Datasette, actor_cookie
from metrics_helpers import VERSION, expected_from_json, values, without_age
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from datasette_runtime_truth.migration.apply import migrate_path


@pytest.mark.asyncio
async def test_every_number_equals_the_json_report(sample):
    ds = Datasette([sample.turns_path, sample.timeline_path])
    data = (await ds.client.get("/-/runtime-truth.json")).json()
    response = await ds.client.get("/-/runtime-truth/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = values(text_string_to_metric_families(response.text))
    assert ("runtime_truth_report_age_seconds", (("database", "turns"),)) in found
    assert without_age(found) == expected_from_json(data)
    assert found[("runtime_truth_would_fill_rows", (("database", "turns"),))] == 271
    assert found[("runtime_truth_check_passing", (("check", "would_fill"), ("database", "turns")))] == 0
    assert found[("runtime_truth_report_outdated", (("database", "turns"),))] == 0
    assert f'runtime_truth_info{{version="{VERSION}"}} 1.0' in response.text.splitlines()
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert {name: family.type for name, family in families.items()} == {
        name: "gauge" for name in families
    }
    assert families["runtime_truth_turns"].documentation == "Turn rows in the turns database."


@pytest.mark.asyncio
async def test_pointer_mismatches_after_the_migration(sample):
    migrated = sample
    migrate_path(migrated.turns_path)
    ds = Datasette([migrated.turns_path, migrated.timeline_path])
    data = (await ds.client.get("/-/runtime-truth.json")).json()
    found = values(text_string_to_metric_families((await ds.client.get("/-/runtime-truth/metrics")).text))
    assert without_age(found) == expected_from_json(data)
    assert ("runtime_truth_pointer_mismatches", (("database", "turns"),)) in found


@pytest.mark.asyncio
async def test_openmetrics_when_the_scraper_asks(sample):
    ds = Datasette([sample.turns_path, sample.timeline_path])
    accept = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
    response = await ds.client.get("/-/runtime-truth/metrics", headers={"Accept": accept})
    assert response.headers["content-type"] == choose_encoder(accept)[1]
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert response.text.endswith("# EOF\n")
    assert "# TYPE runtime_truth info" in response.text.splitlines()
    plain = values(text_string_to_metric_families((await ds.client.get("/-/runtime-truth/metrics")).text))
    assert without_age(values(openmetrics_families(response.text))) == without_age(plain)


@pytest.mark.asyncio
async def test_same_permissions_as_the_report(sample):
    settings = {"databases": {"turns": {"allow": {"id": "admin"}}}}
    ds = Datasette([sample.turns_path, sample.timeline_path],
                   **line_config(settings))
    anonymous = await ds.client.get("/-/runtime-truth/metrics")
    assert anonymous.status_code == 403
    admin = await ds.client.get("/-/runtime-truth/metrics", cookies={"ds_actor": actor_cookie(ds, {"id": "admin"})})
    assert admin.status_code == 200
    assert 'runtime_truth_turns{database="turns"} 300.0' in admin.text.splitlines()


@pytest.mark.asyncio
@pytest.mark.parametrize("cors", [True, False])
async def test_cors_only_with_cors(sample, cors):
    ds = Datasette([sample.turns_path], cors=cors)
    response = await ds.client.get("/-/runtime-truth/metrics")
    assert response.headers.get("access-control-allow-origin") == ("*" if cors else None)


@pytest.mark.asyncio
async def test_no_turns_database_gives_the_families_and_no_samples(tmp_path):
    ds = Datasette([])
    response = await ds.client.get("/-/runtime-truth/metrics")
    assert response.status_code == 200
    assert values(text_string_to_metric_families(response.text)) == {
        ("runtime_truth_info", (("version", VERSION),)): 1}
    assert "# TYPE runtime_truth_turns gauge" in response.text
