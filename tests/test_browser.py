"""The report and a conversation timeline as a person sees them: a real server, headless Chromium."""

import re
import subprocess
import sys

from browser import chromium, datasette_server
from conftest import ON_065

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1100, "height": 900}


def migrate(path):
    subprocess.run([sys.executable, "-m", "datasette", "runtime-truth", "migrate", path],
                   check=True, capture_output=True)


def overflows(page):
    """True when the page scrolls sideways: what makes a page unreadable on a phone."""
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def test_report_and_timeline_in_chromium(tmp_path, samples):
    sample = samples.copy(tmp_path / "data")
    log = tmp_path / "datasette.log"
    with chromium() as browser:
        with datasette_server(sample.turns_path, sample.timeline_path, log_path=log) as base:
            page = browser.new_page(viewport=DESKTOP)
            page.goto(base + "/-/runtime-truth")
            assert page.inner_text(".rt-overall .rt-verdict") == "fails"
            failing = page.eval_on_selector_all(
                '.rt-check[data-status="fail"]', "els => els.map(e => e.dataset.check)"
            )
            assert failing == ["columns", "indexes", "would_fill"]
            page.screenshot(path=str(tmp_path / "report-before.png"), full_page=True)

        migrate(sample.turns_path)
        with datasette_server(sample.turns_path, sample.timeline_path, log_path=log) as base:
            page = browser.new_page(viewport=DESKTOP)
            page.goto(base + "/")
            page.click("details.nav-menu > summary")
            page.get_by_role("link", name="Runtime truth report").click()
            page.wait_for_url(base + "/-/runtime-truth")
            assert page.inner_text(".rt-overall .rt-verdict") == "passes"
            assert page.eval_on_selector_all(".rt-check", "els => els.length") == 9
            assert page.eval_on_selector_all('.rt-check[data-status="fail"]', "els => els.length") == 0
            rows = page.get_attribute('.rt-check[data-check="columns"] a.rt-rows', "href")
            assert rows == "/turns/turns_schema"

            # The coverage chart: one mark per UTC day, adding up to every turn in the store.
            chart = page.locator("svg.rt-coverage")
            assert chart.is_visible()
            box = chart.bounding_box()
            assert box["width"] > 400 and box["height"] > 100
            day_turns = page.eval_on_selector_all(
                "svg.rt-coverage g.rt-day", "els => els.map(e => Number(e.dataset.turns))"
            )
            assert sum(day_turns) == 300
            assert int(chart.get_attribute("data-days")) == len(day_turns)
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

            # Follow a switched conversation to its timeline.
            switched = page.get_attribute('.rt-check[data-check="runtime_switches"]', "data-value")
            first = page.locator('.rt-check[data-check="runtime_switches"] .rt-items li').first
            expected_switches = int(re.search(r": (\d+) switch", first.inner_text()).group(1))
            first.get_by_text("timeline").click()
            page.wait_for_selector("svg.rt-timeline")
            timeline = page.locator("svg.rt-timeline")
            assert timeline.is_visible()
            assert int(timeline.get_attribute("data-switches")) == expected_switches
            marks = page.eval_on_selector_all("svg.rt-timeline rect.rt-turn", "els => els.length")
            assert marks == int(timeline.get_attribute("data-turns")) > expected_switches
            assert page.eval_on_selector_all("svg.rt-timeline g.rt-switch", "els => els.length") == expected_switches
            assert int(switched) >= 1
            page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)

            # A phone-width window: nothing scrolls sideways, the checklist stays readable.
            phone = browser.new_page(viewport=PHONE)
            phone.goto(base + "/-/runtime-truth")
            assert not overflows(phone)
            title = phone.locator('.rt-check[data-check="would_fill"] .rt-title').bounding_box()
            assert title["x"] >= 0 and title["x"] + title["width"] <= PHONE["width"]
            phone.screenshot(path=str(tmp_path / "report-phone.png"), full_page=True)
            phone.goto(page.url)
            assert not overflows(phone)
    for name in ("report-before.png", "report.png", "timeline.png", "report-phone.png"):
        assert (tmp_path / name).stat().st_size > 10_000


LABELS_MATCH = """() => {
  const table = document.querySelector('table.runtime-truth-history');
  const heads = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim());
  const row = table.querySelector('tbody tr');
  return [...row.querySelectorAll('td')].map((td, i) => [heads[i],
    getComputedStyle(td, '::before').content.replace(/^"|"$/g, '')]);
}"""


def test_incident_pages_in_chromium(tmp_path, samples):
    """Issue 11 at 390 px and at desktop width: before the migration no report link is dead; the
    preview's values are what migrate writes; after it, every pointer mismatch is reachable, times
    read as UTC dates, the history page's phone labels match their cells, and a runtime_key has
    one colour in two charts."""
    import sqlite3
    sample = samples.copy(tmp_path / "data")
    log = tmp_path / "datasette.log"
    with chromium() as browser:
        with datasette_server(sample.turns_path, sample.timeline_path, log_path=log) as base:
            for viewport in (PHONE, DESKTOP):
                page = browser.new_page(viewport=viewport)
                page.goto(base + "/-/runtime-truth")
                links = sorted(set(page.eval_on_selector_all(
                    "main a[href^='/'], section a[href^='/']", "els => els.map(e => e.getAttribute('href'))")))
                assert "/-/runtime-truth/turns/preview" in links
                for link in links:
                    response = page.goto(base + link)
                    assert response.status < 400, (link, response.status)
            page = browser.new_page(viewport=PHONE)
            preview, url = [], "/-/runtime-truth/turns/preview?limit=150"
            while url:
                page.goto(base + url)
                preview += page.eval_on_selector_all("table.rt-table tbody tr", """els => els.map(tr =>
                    Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.dataset.label, td.innerText.trim()])))""")
                url = page.get_attribute("a.rt-next", "href") if page.locator("a.rt-next").count() else None
            assert len(preview) == 300
            assert not overflows(page)

        migrate(sample.turns_path)
        conn = sqlite3.connect(sample.turns_path)
        stored = {(t, s): (r, i) for t, s, r, i in conn.execute(
            "SELECT turn_id, session_id, runtime_key, inference_id FROM turns")}
        empty = "(empty)"
        for row in preview:
            want = tuple("" if v == empty else v for v in (row["new_runtime_key"], row["new_inference_id"]))
            assert stored[(row["turn_id"], row["session_id"])] == want, row

        with datasette_server(sample.turns_path, sample.timeline_path, log_path=log) as base:
            for viewport in (PHONE, DESKTOP):
                page = browser.new_page(viewport=viewport)
                page.goto(base + "/-/runtime-truth")
                pointer = int(page.get_attribute('.rt-check[data-check="pointer"]', "data-value"))
                page.click('.rt-check[data-check="pointer"] a.rt-rows')
                seen = []
                while True:
                    seen += page.eval_on_selector_all("td.col-conv_id a.rt-conv-id", "els => els.map(e => e.innerText)")
                    if not page.locator("a.rt-next").count():
                        break
                    page.click("a.rt-next")
                assert len(seen) == len(set(seen)) == pointer > 0

                # The history page of a switched conversation: phone labels match their cells.
                page.goto(base + "/-/runtime-truth/turns/switches")
                conv_id = page.locator("td.col-conv_id a.rt-conv-id").first.inner_text()
                page.goto(base + f"/turns/runtime_history?conv_id={conv_id}")
                pairs = page.evaluate(LABELS_MATCH)
                if viewport is PHONE:
                    assert [label for label, _ in pairs] == [shown for _, shown in pairs], pairs
                assert re.search(r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC",
                                 page.inner_text("td.col-updated_at_ms"))
                history_colours = dict(page.eval_on_selector_all(
                    "li.rt-legend", "els => els.map(e => [e.dataset.runtimeKey, e.dataset.colour])"))
                rect_colours = dict(page.eval_on_selector_all(
                    "svg.rt-timeline rect.rt-turn", "els => els.map(e => [e.dataset.runtimeKey, e.getAttribute('fill')])"))
                page.goto(base + f"/-/runtime-truth/turns/conversation?conv_id={conv_id}")
                conversation_colours = dict(page.eval_on_selector_all(
                    "svg.rt-timeline rect.rt-turn", "els => els.map(e => [e.dataset.runtimeKey, e.getAttribute('fill')])"))
                known = [key for key in conversation_colours if key]
                assert len(known) >= 2
                for key in known:
                    assert conversation_colours[key] == rect_colours[key] == history_colours[key]
                assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page.inner_text("table.rt-turns"))
                labels = page.eval_on_selector_all("svg.rt-timeline text.rt-switch-label", """els =>
                    els.map(e => { const b = e.getBoundingClientRect(); return [b.left, b.right, b.top]; })""")
                for i, a in enumerate(labels):
                    for b in labels[i + 1:]:
                        assert a[2] != b[2] or a[1] <= b[0] or b[1] <= a[0], (a, b)
                page.screenshot(path=str(tmp_path / f"conversation-{viewport['width']}.png"), full_page=True)

        # The no-plugin bundle's history page labels its cells right too.
        root = __import__("pathlib").Path(__file__).parent.parent / "bundle"
        config = ["-m", root / "metadata.yml"] if ON_065 else ["-c", root / "datasette.yaml"]
        with datasette_server(sample.turns_path, *config, "--template-dir", root / "templates",
                              "--setting", "default_allow_sql", "on", log_path=log,
                              env_no_plugin=True) as base:
            page = browser.new_page(viewport=PHONE)
            page.goto(base + f"/turns/runtime_history?conv_id={conv_id}")
            pairs = page.evaluate(LABELS_MATCH)
            assert [label for label, _ in pairs] == [shown for _, shown in pairs], pairs
