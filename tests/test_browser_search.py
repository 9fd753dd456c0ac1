"""Issue 17 in Chromium at 390 px and 1280 px: the id box on the report finds a turn, and its
links lead to the turn's conversation; pages stay within the screen."""

import sqlite3

from browser import chromium, datasette_server
from datasette_runtime_truth.migration.apply import migrate_path

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def overflows(page):
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def test_search_box_finds_a_turn_and_leads_to_it(tmp_path, samples):
    sample = samples.copy(tmp_path / "data", turns=300, seed=5)
    migrate_path(sample.turns_path)
    conn = sqlite3.connect(sample.turns_path)
    conv_id, session_id, turn_id, runtime_key, inference_id = conn.execute(
        "SELECT conv_id, session_id, turn_id, runtime_key, inference_id FROM turns "
        "WHERE runtime_key <> '' AND inference_id <> '' ORDER BY turn_id LIMIT 1").fetchone()
    conn.close()
    debug_url = f"http://127.0.0.1:8001/api/debug/turn/{conv_id}/{session_id}/{turn_id}"
    with chromium() as browser, datasette_server(sample.turns_path, sample.timeline_path,
                                                 log_path=tmp_path / "datasette.log") as base:
        for viewport in (PHONE, DESKTOP):
            page = browser.new_page(viewport=viewport)
            page.goto(base + "/-/runtime-truth")
            page.fill("#rt-search-q", turn_id)
            page.click("form.rt-search button")
            page.wait_for_selector("tr.rt-result")
            assert page.eval_on_selector_all("tr.rt-result", "els => els.map(e => e.dataset.turnId)") == [turn_id]
            row = page.locator("tr.rt-result").first
            assert runtime_key in row.inner_text() and inference_id in row.inner_text()
            assert "final" in row.locator("td[data-label='phase snapshots']").inner_text()
            assert not overflows(page), viewport
            page.screenshot(path=str(tmp_path / f"search-{viewport['width']}.png"), full_page=True)

            # A whole debug URL: the turn it names first, then the rest of its conversation.
            page.fill("#rt-search-q", debug_url)
            page.press("#rt-search-q", "Enter")
            page.wait_for_url("**/search?q=*")
            found = page.eval_on_selector_all("tr.rt-result", "els => els.map(e => e.dataset.turnId)")
            assert found[0] == turn_id and len(found) > 1

            # The turn's inference_id, typed into the box of another plugin page.
            page.goto(base + "/-/runtime-truth/turns/switches")
            page.fill("#rt-search-q", inference_id)
            page.click("form.rt-search button")
            page.wait_for_selector("tr.rt-result")
            assert page.eval_on_selector_all("tr.rt-result", "els => els.map(e => e.dataset.turnId)") == [turn_id]
            page.click("tr.rt-result a.rt-timeline-link")
            page.wait_for_selector("svg.rt-timeline")
            assert conv_id in page.inner_text("h1 + p")
            assert not overflows(page), viewport
            page.go_back()
            page.click("tr.rt-result a.rt-debug")
            assert page.evaluate("JSON.parse(document.body.innerText).turn_id") == turn_id

            page.goto(base + "/-/runtime-truth/search?q=no-such-id-42")
            assert "No turn has no-such-id-42 as its turn_id" in page.inner_text(".rt-none-found")
    assert (tmp_path / "search-390.png").stat().st_size > 5_000
