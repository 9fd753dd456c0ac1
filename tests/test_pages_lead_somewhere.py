"""Issue 17, part 3, over HTTP on both Datasette lines: every link of the plugin's pages leads
somewhere, and each page says what is true of the store it shows."""

import re
import sqlite3

import pytest
from datasette_test import Datasette

from datasette_runtime_truth.migration.apply import migrate_path


def hrefs(html):
    return sorted({h.replace("&amp;", "&") for h in re.findall(r'href="(/[^"#]*)"', html)
                   if not h.startswith("/-/static")})


async def assert_links_answer(ds, html, page):
    for link in hrefs(html):
        response = await ds.client.get(link)
        assert response.status_code < 400, (page, link, response.status_code)


@pytest.fixture(scope="module")
def pre_cutover(tmp_path_factory, samples):
    sample = samples.copy(tmp_path_factory.mktemp("pre"), turns=200, seed=2)
    conn = sqlite3.connect(sample.turns_path)
    conv_id = conn.execute("SELECT conv_id FROM turns ORDER BY conv_id LIMIT 1").fetchone()[0]
    conn.close()
    return sample, conv_id


@pytest.mark.asyncio
async def test_before_the_migration_the_conversation_page_says_so_and_leads_to_the_preview(pre_cutover):
    sample, conv_id = pre_cutover
    ds = Datasette([sample.turns_path, sample.timeline_path])
    url = f"/-/runtime-truth/turns/conversation?conv_id={conv_id}"
    html = (await ds.client.get(url)).text
    assert "This store is not migrated yet" in html
    assert "runtime switch" not in html.split("rt-not-migrated")[0].split("<h1>")[1]  # no "0 runtime switches"
    assert f"datasette runtime-truth migrate {sample.turns_path}" in html
    assert 'href="/-/runtime-truth/turns/preview"' in html
    assert "/turns/runtime_history" not in html
    await assert_links_answer(ds, html, url)


@pytest.mark.asyncio
async def test_before_the_migration_the_preview_and_search_link_no_query(pre_cutover):
    sample, conv_id = pre_cutover
    ds = Datasette([sample.turns_path, sample.timeline_path])
    for url in ("/-/runtime-truth/turns/preview?limit=20", f"/-/runtime-truth/search?q={conv_id}"):
        html = (await ds.client.get(url)).text
        assert f'href="/-/runtime-truth/turns/conversation?conv_id={conv_id}"' in html, url
        assert "/turns/runtime_history" not in html and "/turns/inference_lookup" not in html, url
        await assert_links_answer(ds, html, url)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory, samples):
    sample = samples.copy(tmp_path_factory.mktemp("migrated"), turns=600, seed=1)
    migrate_path(sample.turns_path)
    return sample


def canned_urls():
    from datasette_runtime_truth.canned import queries
    params = {"runtime_history": "?conv_id=x", "inference_lookup": "?inference_id=x"}
    return [(query, f"/turns/{query.name}{params.get(query.name, '')}") for query in queries.QUERIES]


@pytest.mark.asyncio
async def test_canned_pages_are_titled_by_their_title_with_the_sql_folded(migrated):
    ds = Datasette([migrated.turns_path])
    await ds.invoke_startup()
    for query, url in canned_urls():
        html = (await ds.client.get(url)).text
        title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
        assert title == f"{query.title}: turns".replace("'", "&#39;"), (url, title)
        shown = html.replace("&#39;", "'").replace("&gt;", ">")
        if query.name == "runtime_history":  # folded inside a <details>
            shown = shown.split("<details><summary>SQL</summary>")[0]
        assert query.sql.strip().splitlines()[0] not in shown, url
        if query.name != "runtime_history":
            assert re.search(r'class="show-hide-sql">\(<a href="[^"]*_show_sql=1">show</a>\)', html), url


async def walk(ds, url):
    """Every row of a paged canned page, following its next links."""
    seen, pages = [], 0
    while url:
        html = (await ds.client.get(url)).text
        json_url = url.replace("?", ".json?", 1) + "&_shape=array"
        seen += (await ds.client.get(json_url)).json()
        found = re.search(r'<a class="rt-next" href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
        pages += 1
    return seen, pages


@pytest.mark.asyncio
async def test_paged_canned_pages_lead_to_every_row(migrated):
    ds = Datasette([migrated.turns_path])
    await ds.invoke_startup()
    switches, pages = await walk(ds, "/turns/runtime_switches?limit=7")
    report = (await ds.client.get("/-/runtime-truth.json")).json()["databases"][0]
    counted = {check["id"]: check["value"] for check in report["checks"]}["runtime_switches"]
    assert len(switches) == len({row["conv_id"] for row in switches}) == counted > 7
    assert pages == -(-counted // 7) + (counted % 7 == 0)
    assert [row["first_switch_at_ms"] for row in switches] == sorted(
        (row["first_switch_at_ms"] for row in switches), reverse=True)
    missing, _ = await walk(ds, "/turns/missing_backfill_rows?limit=40")
    count = (await ds.client.get("/turns/missing_backfill_count.json?_shape=array")).json()[0]
    assert len(missing) == len({(r["conv_id"], r["session_id"], r["turn_id"]) for r in missing})
    assert len(missing) == count["missing_runtime_or_inference"] > 40


async def walk_json(ds, url):
    rows = []
    while url:
        page = (await ds.client.get(url)).json()
        rows += page["rows"]
        url = page["next"]
    return rows


@pytest.mark.asyncio
@pytest.mark.parametrize("state", ["pre-cutover", "migrated"])
async def test_each_backfill_figure_leads_to_the_rows_it_counts(pre_cutover, migrated, state):
    """Issue 17: "rows without inference_id: N" led to one count, "rows with invalid metadata: N"
    to every row still missing a value. Each now leads to exactly its N rows."""
    sample = pre_cutover[0] if state == "pre-cutover" else migrated
    ds = Datasette([sample.turns_path])
    await ds.invoke_startup()
    report = (await ds.client.get("/-/runtime-truth.json")).json()["databases"][0]
    page = (await ds.client.get("/-/runtime-truth")).text
    checks = {check["id"]: check for check in report["checks"]}
    for check_id, only in (("missing_runtime_key", "runtime_key"), ("missing_inference_id", "inference_id"),
                           ("bad_metadata", "bad_metadata"), ("would_fill", "writes")):
        url = checks[check_id]["url"]
        assert url == f"/-/runtime-truth/turns/preview?only={only}"
        assert f'href="{url}"' in page
        rows = await walk_json(ds, url.replace("/preview?", "/preview.json?") + "&limit=37")
        assert len(rows) == checks[check_id]["value"], check_id
        assert len({(r["conv_id"], r["session_id"], r["turn_id"]) for r in rows}) == len(rows)
        figure = checks[check_id]["figure"]
        if checks[check_id]["value"] or check_id != "would_fill":
            assert figure.startswith(f"{checks[check_id]['value']:,} "), figure
            assert re.match(r"[\d,]+ (of [\d,]+ rows \([\d.]+%\)|rows \()", figure), figure
    assert checks["bad_metadata"]["value"] > 0
    bad = await walk_json(ds, "/-/runtime-truth/turns/preview.json?only=bad_metadata")
    assert {row["action"] for row in bad} == {"skipped: bad metadata"}


@pytest.mark.asyncio
async def test_an_unknown_preview_filter_is_a_400_saying_what_is_known(migrated):
    ds = Datasette([migrated.turns_path])
    response = await ds.client.get("/-/runtime-truth/turns/preview?only=nope")
    assert response.status_code == 400
    assert "unknown only=&#39;nope&#39;: expected one of runtime_key, inference_id, bad_metadata, writes" in response.text
    response = await ds.client.get("/-/runtime-truth/turns/preview.json?only=nope")
    assert response.status_code == 400 and response.json()["rows"] == []


@pytest.mark.asyncio
async def test_an_unknown_conversation_gets_the_plugins_404_with_ways_back(migrated):
    ds = Datasette([migrated.turns_path, migrated.timeline_path])
    url = "/-/runtime-truth/turns/conversation?conv_id=no-such-conversation"
    response = await ds.client.get(url)
    assert response.status_code == 404
    html = response.text
    assert "conversation not found: no-such-conversation has no turns in turns." in html
    assert '<form class="rt-search"' in html and 'value="no-such-conversation"' in html
    assert 'href="/-/runtime-truth/search?q=no-such-conversation"' in html
    assert 'href="/-/runtime-truth"' in html and 'href="/turns"' in html
    await assert_links_answer(ds, html, url)
