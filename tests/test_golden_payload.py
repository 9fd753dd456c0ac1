"""Every case of ../shared/golden/yaml-cases.jsonl through the real routes: a store holding each
case's turn (its blocks, one snapshot), served by Datasette; /api/debug/turn/... and
/api/debug/turns serve the upstream's payload bytes for each, built in a worker thread and built
by a payload worker process."""

import json
import urllib.parse

import pytest
from datasette_test import Datasette

from builders import create_store
from test_yamlv3 import CASES


BUILT_IN = {"thread": {"payload_workers": 0}, "worker process": {"payload_process_chars": 0}}


@pytest.fixture(scope="module", params=list(BUILT_IN))
def ds(tmp_path_factory, request):
    path = tmp_path_factory.mktemp("golden-payload") / "turns.db"
    conn = create_store(path, "current")
    for number, case in enumerate(CASES):
        turn = case["input"]
        conv_id = f"conv-{number:03d}"
        conn.execute(
            "INSERT INTO turns (conv_id, session_id, turn_id, turn_created_at_ms, turn_metadata_json, "
            "turn_data_json, updated_at_ms) VALUES (?, 's', ?, 1000, ?, ?, 2000)",
            (conv_id, turn["turn_id"], turn["turn_metadata_json"], turn["turn_data_json"]),
        )
        for ordinal, block in enumerate(turn["blocks"]):
            content_hash = f"{number}-{ordinal}"
            conn.execute(
                "INSERT INTO blocks (block_id, content_hash, kind, role, payload_json, block_metadata_json, "
                "first_seen_at_ms) VALUES (?, ?, ?, ?, ?, ?, 1000)",
                (block["block_id"], content_hash, block["kind"], block["role"], block["payload_json"],
                 block["block_metadata_json"]),
            )
            conn.execute("INSERT INTO turn_block_membership VALUES (?, 's', ?, 'final', 1500, ?, ?, ?)",
                         (conv_id, turn["turn_id"], ordinal, block["block_id"], content_hash))
    conn.commit()
    conn.close()
    return Datasette([str(path)], plugin_config={"datasette-runtime-truth": BUILT_IN[request.param]})


@pytest.mark.asyncio
@pytest.mark.parametrize("number", range(len(CASES)), ids=[case["id"] for case in CASES])
async def test_both_routes_serve_the_upstream_bytes(ds, number):
    case = CASES[number]
    conv_id, turn_id = f"conv-{number:03d}", case["input"]["turn_id"]
    path = "/".join(urllib.parse.quote(part, safe="") for part in (conv_id, "s", turn_id))
    detail = await ds.client.get(f"/api/debug/turn/{path}")
    listed = await ds.client.get(f"/api/debug/turns?conv_id={conv_id}")
    assert (detail.status_code, listed.status_code) == (200, 200)
    assert [item["payload"] for item in json.loads(detail.text)["items"]] == [case["yaml"]]
    assert [item["payload"] for item in json.loads(listed.text)["items"]] == [case["yaml"]]
