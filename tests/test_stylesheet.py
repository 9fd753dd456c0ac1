"""The plugin's pages take their CSS from the plugin's static/ folder, served by Datasette."""

import pytest

from api_helpers import build_turns_db, datasette

CSS_URL = "/-/static-plugins/datasette-runtime-truth/runtime-truth.css"
PAGES = ["/-/runtime-truth", "/-/runtime-truth/turns/conversation?conv_id=conv-1",
         "/-/runtime-truth/turns/preview", "/-/runtime-truth/search?q=conv-1",
         "/turns/runtime_history?conv_id=conv-1"]


@pytest.mark.asyncio
async def test_every_page_links_the_stylesheet_and_it_is_served(tmp_path):
    ds = datasette([build_turns_db(tmp_path / "turns.db")])
    for page in PAGES:
        response = await ds.client.get(page)
        assert (response.status_code, f'<link rel="stylesheet" href="{CSS_URL}">' in response.text) == (200, True), page
        assert "<style>\n.rt-" not in response.text, page
    css = await ds.client.get(CSS_URL)
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ".rt-verdict {" in css.text and ".rt-search {" in css.text
