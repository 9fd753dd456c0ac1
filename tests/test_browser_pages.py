"""Issue 17, part 3, in Chromium at 390 px and 1280 px: colours, labels and hints on the charts,
the canned query pages' titles and width (with the plugin and with the no-plugin bundle), and the
pages before the migration."""

import pathlib
import sqlite3

from browser import chromium, datasette_server
from datasette_runtime_truth.canned import queries
from datasette_runtime_truth.migration.apply import migrate_path

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

OVERFLOWS = "document.documentElement.scrollWidth > window.innerWidth"

CHART_FACTS = """() => {
  const box = e => { const b = e.getBoundingClientRect(); return {l: b.left, r: b.right, t: b.top, b: b.bottom}; };
  const timelines = [...document.querySelectorAll('svg.rt-timeline')].map(svg => ({
    marks: [...svg.querySelectorAll('rect.rt-turn')].map(r => [r.dataset.runtimeKey, r.getAttribute('fill')]),
    labels: [...svg.querySelectorAll('text.rt-switch-label')].map(box),
    lines: [...svg.querySelectorAll('g.rt-switch > line')].map(box),
  }));
  const axis = [...document.querySelectorAll('svg.rt-coverage text.rt-axis-day')].map(box);
  const hints = [...document.querySelectorAll('.rt-scroll-hint')].map(hint => {
    const holder = hint.closest('.rt-chart, .rt-timeline-box');
    return [hint.offsetParent !== null, holder.scrollWidth > holder.clientWidth];
  });
  return {timelines, axis, hints};
}"""


def apart(a, b):
    return a["r"] <= b["l"] or b["r"] <= a["l"] or a["b"] <= b["t"] or b["b"] <= a["t"]


def check_charts(page):
    facts = page.evaluate(CHART_FACTS)
    colours = {}
    for timeline in facts["timelines"]:
        for key, colour in timeline["marks"]:
            assert colours.setdefault(key, colour) == colour, key  # one colour per key on the page
        for i, label in enumerate(timeline["labels"]):
            assert all(apart(label, other) for other in timeline["labels"][i + 1:]), label
            assert all(apart(label, line) for line in timeline["lines"]), label
    known = [colour for key, colour in colours.items() if key]
    assert len(known) == len(set(known)), colours  # no two keys share a colour
    for i, label in enumerate(facts["axis"]):
        assert all(apart(label, other) for other in facts["axis"][i + 1:]), facts["axis"]
    for shown, scrolls in facts["hints"]:
        assert shown == scrolls, facts["hints"]
    return facts


def test_charts_canned_pages_and_pre_migration_pages(tmp_path, samples):
    sample = samples.copy(tmp_path / "data", turns=3000, seed=1)
    conn = sqlite3.connect(sample.turns_path)
    conv_id = conn.execute("SELECT conv_id FROM turns ORDER BY conv_id LIMIT 1").fetchone()[0]
    conn.close()
    log = tmp_path / "datasette.log"
    with chromium() as browser:
        with datasette_server(sample.turns_path, sample.timeline_path, log_path=log) as base:
            for viewport in (PHONE, DESKTOP):
                page = browser.new_page(viewport=viewport)
                for url in (f"/-/runtime-truth/turns/conversation?conv_id={conv_id}",
                            "/-/runtime-truth/turns/preview"):
                    response = page.goto(base + url)
                    assert response.status == 200 and not page.evaluate(OVERFLOWS), url
                    if "conversation" in url:
                        assert "This store is not migrated yet" in page.inner_text(".rt-not-migrated")
                        assert "runtime switch" not in page.inner_text("h1 + p")
                    links = sorted(set(page.eval_on_selector_all(
                        "section.content a[href^='/']", "els => els.map(e => e.getAttribute('href'))")))
                    assert "/-/runtime-truth/turns/preview" in links or "preview" in url
                    for link in links:
                        assert page.request.get(base + link).status < 400, (url, link)
                page.goto(base + f"/-/runtime-truth/turns/conversation?conv_id={conv_id}")
                page.screenshot(path=str(tmp_path / f"pre-conversation-{viewport['width']}.png"), full_page=True)

        migrate_path(sample.turns_path)
        with datasette_server(sample.turns_path, sample.timeline_path, log_path=log) as base:
            for viewport in (PHONE, DESKTOP):
                page = browser.new_page(viewport=viewport)
                page.goto(base + "/-/runtime-truth")
                facts = check_charts(page)
                assert len(facts["timelines"]) == 5 and len(facts["axis"]) >= 2
                assert [shown for shown, _ in facts["hints"]][0] == (viewport is PHONE)  # the coverage chart
                page.screenshot(path=str(tmp_path / f"report-{viewport['width']}.png"), full_page=True)
                page.click(".rt-timeline-box a.rt-conv-id >> nth=0")
                page.wait_for_selector("svg.rt-timeline")
                check_charts(page)
                swatches = dict(page.eval_on_selector_all(
                    "table.rt-turns tbody tr", """rows => rows.filter(r => r.querySelector('.rt-swatch')).map(r =>
                        [r.querySelector('td[data-label=runtime_key]').innerText.trim(),
                         r.querySelector('.rt-swatch').style.background])"""))
                fills = dict(page.eval_on_selector_all(
                    "svg.rt-timeline rect.rt-turn", "els => els.map(e => [e.dataset.runtimeKey, e.getAttribute('fill')])"))
                for key, background in swatches.items():
                    rgb = tuple(int(fills[key][i:i + 2], 16) for i in (1, 3, 5))
                    assert background == "rgb(%d, %d, %d)" % rgb, key

                for query in queries.QUERIES:
                    params = {"runtime_history": f"?conv_id={conv_id}", "inference_lookup": "?inference_id=x"}
                    page.goto(base + f"/turns/{query.name}" + params.get(query.name, ""))
                    assert page.title() == f"{query.title}: turns", query.name
                    assert not page.evaluate(OVERFLOWS), (query.name, viewport)
                    clipped = page.eval_on_selector_all("form.sql label", """els => els.filter(l => {
                        const input = document.getElementById(l.htmlFor);
                        const a = l.getBoundingClientRect(), b = input ? input.getBoundingClientRect() : null;
                        return l.scrollWidth > l.clientWidth + 1 ||
                               (b && a.right > b.left + 1 && a.bottom > b.top + 1 && b.bottom > a.top + 1);
                    }).map(l => l.innerText)""")
                    assert clipped == [], (query.name, clipped)
                    if query.name in ("runtime_switches", "missing_backfill_rows"):
                        assert page.locator("a.rt-next").count() == 1, query.name
                    page.screenshot(path=str(tmp_path / f"query-{query.name}-{viewport['width']}.png"), full_page=True)


def test_the_no_plugin_bundle_pages_are_titled_folded_and_paged(tmp_path, samples):
    from datasette.version import __version__
    root = pathlib.Path(__file__).parent.parent / "bundle"
    sample = samples.copy(tmp_path / "data", turns=600, seed=1)
    migrate_path(sample.turns_path)
    config = ["-m", root / "metadata.yml"] if __version__.startswith("0.") else ["-c", root / "datasette.yaml"]
    with chromium() as browser, datasette_server(sample.turns_path, *config, "--template-dir", root / "templates",
                                                 log_path=tmp_path / "datasette.log", env_no_plugin=True) as base:
        page = browser.new_page(viewport=PHONE)
        for query in queries.QUERIES:
            page.goto(base + f"/turns/{query.name}")
            assert page.title() == f"{query.title}: turns", query.name
            assert page.locator("form.rt-search").count() == 0  # the box needs the plugin
            if query.name != "runtime_history":
                assert page.locator("span.show-hide-sql").inner_text() == "(show)", query.name
            assert not page.evaluate(OVERFLOWS), query.name
        seen, url = [], "/turns/runtime_switches?limit=9"
        while url:
            page.goto(base + url)
            seen += page.eval_on_selector_all("table.rows-and-columns td.col-conv_id", "els => els.map(e => e.innerText)")
            url = page.get_attribute("a.rt-next", "href") if page.locator("a.rt-next").count() else None
        with sqlite3.connect(sample.turns_path) as conn:
            total = conn.execute(f"SELECT count(*) FROM ({queries.RUNTIME_SWITCHES_SQL})").fetchone()[0]
        assert len(seen) == len(set(seen)) == total > 9
