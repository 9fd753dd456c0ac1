"""The no-plugin bundle: generated files match queries.py, and the README's links work as written."""

import re
import subprocess
import sys

from click.testing import CliRunner
from datasette.cli import cli
import pytest
import yaml

from builders import DEMO
from datasette_runtime_truth.canned import bundle, queries
from datasette_runtime_truth.migration import apply
from query_store import MODES, ROOT, serving

BUNDLE = ROOT / "bundle"

README_LINK = re.compile(r"http://127\.0\.0\.1:8001(/turns/[^\s|`)]+)")


def test_committed_bundle_matches_queries_py():
    assert bundle.stale_files(bundle.bundle_files(BUNDLE)) == []
    assert bundle.stale_files(bundle.package_files()) == []
    result = CliRunner().invoke(cli, ["runtime-truth", "bundle", str(BUNDLE), "--check"])
    assert (result.exit_code, result.output) == (0, f"{BUNDLE}: the bundle is up to date\n")
    assert subprocess.run([sys.executable, "-m", "datasette_runtime_truth.canned.bundle", "--check"]).returncode == 0


def test_bundle_writes_where_it_is_told_and_check_finds_a_stale_file(tmp_path):
    target = tmp_path / "bundle"
    result = CliRunner().invoke(cli, ["runtime-truth", "bundle", str(target)])
    assert result.exit_code == 0
    written = sorted(path.relative_to(target).as_posix() for path in target.rglob("*") if path.is_file())
    assert written == sorted(["metadata.yml", "datasette.yaml",
                              *(f"templates/query-turns-{query.name}.html" for query in queries.QUERIES),
                              *(f"templates/{name}" for name in bundle.BASE_TEMPLATES)])
    assert (target / "metadata.yml").read_text() == (BUNDLE / "metadata.yml").read_text()
    (target / "metadata.yml").write_text(f"# {bundle.HEADER}\ndatabases: {{}}\n")  # an older bundle's
    stale = CliRunner().invoke(cli, ["runtime-truth", "bundle", str(target), "--check"])
    assert stale.exit_code == 1
    assert stale.output == (f"Error: stale: {target / 'metadata.yml'}; run `datasette runtime-truth bundle {target}`\n")
    assert CliRunner().invoke(cli, ["runtime-truth", "bundle", str(target)]).output == f"wrote {target / 'metadata.yml'}\n"


def test_both_config_files_hold_every_query():
    for name in ("metadata.yml", "datasette.yaml"):
        loaded = yaml.safe_load((BUNDLE / name).read_text())
        assert loaded == {"databases": {"turns": {"queries": queries.as_config()}}}
    assert list(queries.as_config()) == [
        "turns_schema", "turns_runtime_indexes", "runtime_history", "missing_backfill_count",
        "missing_backfill_rows", "runtime_switches", "inference_lookup", "backfill_coverage"]


def readme_links():
    return README_LINK.findall((ROOT / "README.md").read_text())


def test_readme_lists_page_json_and_csv_for_every_query():
    by_query = {}
    for link in readme_links():
        name = re.match(r"/turns/(\w+)", link).group(1)
        kind = "json" if ".json?" in link else "csv" if ".csv" in link else "page"
        by_query.setdefault(name, set()).add(kind)
        if kind == "json":
            assert link.endswith("_shape=array")
    assert by_query == {query.name: {"page", "json", "csv"} for query in queries.QUERIES}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory, samples):
    """The demo's data, migrated."""
    demo = samples.copy(tmp_path_factory.mktemp("demo"), **DEMO)
    apply.migrate_path(demo.turns_path)
    return demo.turns_path


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", MODES)
async def test_readme_links_work_as_written(demo_store, mode):
    async with serving(demo_store, mode) as ds:
        for link in readme_links():
            response = await ds.client.get(link)
            assert response.status_code == 200, link
            if ".json?" in link:
                assert len(response.json()) >= 1, link
            elif ".csv" in link:
                assert len(response.text.splitlines()) >= 2, link
            else:
                assert '<p class="runtime-truth-meaning">' in response.text, link
                assert "runtime-truth-not-migrated" not in response.text, link
