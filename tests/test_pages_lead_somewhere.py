"""Issue 17, part 3, over HTTP on both Datasette lines: every link of the plugin's pages leads
somewhere, and each page says what is true of the store it shows."""

import re
import sqlite3

import pytest
from datasette_test import Datasette

from datasette_runtime_truth.migrate import migrate_path
from datasette_runtime_truth.sample import build as build_sample


def hrefs(html):
    return sorted({h.replace("&amp;", "&") for h in re.findall(r'href="(/[^"#]*)"', html)
                   if not h.startswith("/-/static")})


async def assert_links_answer(ds, html, page):
    for link in hrefs(html):
        response = await ds.client.get(link)
        assert response.status_code < 400, (page, link, response.status_code)


@pytest.fixture(scope="module")
def pre_cutover(tmp_path_factory):
    sample = build_sample(tmp_path_factory.mktemp("pre"), turns=200, seed=2)
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
