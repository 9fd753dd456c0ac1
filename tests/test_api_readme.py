"""The README's curl session against `make demo`, run as written against the same sample data.

`make demo` writes seed 1 with 20,000 turns; builders.DEMO is its first 600.
"""

import json
import pathlib
import re
import shlex

import pytest

from api_helpers import datasette
from builders import DEMO
from datasette_runtime_truth.migration import apply

README = pathlib.Path(__file__).parent.parent / "README.md"
SERVER = "http://127.0.0.1:8001"


def session_section():
    text = README.read_text()
    return text.split("### A session against `make demo`", 1)[1].split("\n## ", 1)[0]


def curl_urls():
    bash = re.search(r"```bash\n(.*?)```", session_section(), re.S).group(1)
    urls = []
    for line in bash.splitlines():
        words = shlex.split(line)
        assert words[:2] == ["curl", "-s"] and len(words) == 3, line
        assert words[2].startswith(SERVER + "/"), line
        urls.append(words[2][len(SERVER):])
    return urls


@pytest.fixture(scope="module")
def demo(tmp_path_factory, samples):
    summary = samples.copy(tmp_path_factory.mktemp("demo"), **DEMO)
    apply.migrate_path(summary.turns_path)
    return summary.turns_path, summary.timeline_path


@pytest.mark.asyncio
async def test_every_curl_in_the_readme_answers_as_described(demo):
    ds = datasette(demo)
    urls = curl_urls()
    assert len(urls) == 11
    responses = [await ds.client.get(url) for url in urls]
    assert [response.status_code for response in responses] == [200, 200, 200, 200, 200, 400,
                                                                200, 200, 200, 400, 404]
    conversations, conversation, turns, turn, by_session, bad = [response.json() for response in responses[:6]]
    timeline, since, unknown, missing, events = responses[6:]

    assert len(conversations["items"]) > 0
    shown = re.search(r"```json\n(.*?)```", session_section(), re.S).group(1)
    assert conversation == json.loads(shown)

    assert [(item["turn_id"][:8], item["runtime_key"]) for item in turns["items"]] == [
        ("cb03be7f", "agent"), ("9dfcba4e", ""),
    ]
    assert [(item["phase"], item["runtime_key"], item["inference_id"]) for item in turn["items"]] == [
        (phase, "planner@v1", "7a436450-613e-4b56-85fa-3fadff720bc4")
        for phase in ("final", "post_inference", "post_tools", "pre_inference")
    ]
    yaml_lines = re.search(r"```yaml\n(blocks:.*?)```", session_section(), re.S).group(1).splitlines()
    payload_lines = turn["items"][0]["payload"].splitlines()
    shown_lines = [line for line in yaml_lines if line.strip() != "..."]
    assert all(line in payload_lines for line in shown_lines)

    assert by_session["since_ms"] == 1772556300000
    assert {item["turn_id"][:8] for item in by_session["items"]} == {"f904281a", "9dfcba4e", "cb03be7f"}

    error = re.search(r"answers `400` with\n`(.*?)`", session_section(), re.S).group(1)
    assert bad == json.loads(error)

    shown = re.findall(r"```json\n(.*?)```", session_section(), re.S)[1].strip()
    clock = re.compile(r'"serverTimeMs":"[0-9]+"')
    assert clock.sub('"serverTimeMs":"…"', timeline.text) == shown
    assert [entity["kind"] for entity in since.json()["entities"]] == ["tool_result"]
    assert clock.sub('"serverTimeMs":"…"', unknown.text) == '{"convId":"nope","serverTimeMs":"…"}'
    assert (missing.json()["error"], events.json()["error"]) == ("missing conv_id", "conversation not found")
