"""The report and a conversation timeline as a person sees them: a real server, headless Chromium."""

import re
import subprocess
import sys

from browser import chromium, datasette_server
from datasette_runtime_truth.sample import build as build_sample

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1100, "height": 900}


def migrate(path):
    subprocess.run([sys.executable, "-m", "datasette", "runtime-truth", "migrate", path],
                   check=True, capture_output=True)


def overflows(page):
    """True when the page scrolls sideways: what makes a page unreadable on a phone."""
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def test_report_and_timeline_in_chromium(tmp_path):
    sample = build_sample(tmp_path / "data", turns=400, seed=11)
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
            assert sum(day_turns) == 400
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
