"""The upstream debug-API scenarios as real turns.db / timeline.db files, and a Datasette over them."""

import hashlib
import json
import sqlite3

from datasette_test import Datasette

from builders import create_store, insert_turn
from conftest import line_config
from datasette_runtime_truth.upstream import schema

USER = ("b-user", "user", "user", {"text": "hello"})
ANSWER = ("b-answer", "llm_text", "assistant", {"text": "hi there"})
PLAN = ("b-plan", "user", "user", {"text": "plan my week"})
PLAN_ANSWER = ("b-plan-answer", "llm_text", "assistant", {"text": "Monday: restock"})


def metadata(runtime_key, inference_id):
    return {"geppetto.runtime@v1": {"runtime_key": runtime_key}, "geppetto.inference_id@v1": inference_id}


def add_snapshot(conn, conv_id, session_id, turn_id, phase, at_ms, blocks):
    """One phase snapshot: content-addressed blocks and their membership rows, by ordinal."""
    for ordinal, (block_id, kind, role, payload) in enumerate(blocks):
        payload_json = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        content_hash = hashlib.sha256(payload_json.encode()).hexdigest()
        conn.execute(
            "INSERT OR IGNORE INTO blocks (block_id, content_hash, kind, role, payload_json, first_seen_at_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (block_id, content_hash, kind, role, payload_json, at_ms),
        )
        conn.execute(
            "INSERT INTO turn_block_membership VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (conv_id, session_id, turn_id, phase, at_ms, ordinal, block_id, content_hash),
        )
    conn.commit()


def build_turns_db(path, shape="current"):
    """The upstream scenarios in one turns.db.

    conv-1 switches runtime: turn-1 (session-1) ran under inventory@v1 as inf-1, with a ``draft``
    snapshot at 100 and a ``final`` one at 200; turn-2 (session-2) ran under planner@v1 as inf-2,
    ``pre_inference`` at 300, ``final`` at 400. conv-tie has two turns whose ``final`` snapshots
    share the time 700; conv-tie-b ties conv-tie on last activity.
    """
    conn = create_store(path, shape)
    values = shape != "pre-cutover"

    def turn(conv_id, session_id, turn_id, runtime_key, inference_id, created, updated):
        insert_turn(conn, conv_id, session_id, turn_id, metadata=metadata(runtime_key, inference_id),
                    created=created, updated=updated,
                    runtime_key=runtime_key if values else None,
                    inference_id=inference_id if values else None)

    turn("conv-1", "session-1", "turn-1", "inventory@v1", "inf-1", 100, 200)
    add_snapshot(conn, "conv-1", "session-1", "turn-1", "draft", 100, [USER])
    add_snapshot(conn, "conv-1", "session-1", "turn-1", "final", 200, [USER, ANSWER])
    turn("conv-1", "session-2", "turn-2", "planner@v1", "inf-2", 300, 400)
    add_snapshot(conn, "conv-1", "session-2", "turn-2", "pre_inference", 300, [PLAN])
    add_snapshot(conn, "conv-1", "session-2", "turn-2", "final", 400, [PLAN, PLAN_ANSWER])
    turn("conv-tie", "session-t", "turn-b", "agent", "inf-b", 600, 700)
    turn("conv-tie", "session-t", "turn-a", "default", "inf-a", 600, 700)
    add_snapshot(conn, "conv-tie", "session-t", "turn-b", "final", 700, [USER])
    add_snapshot(conn, "conv-tie", "session-t", "turn-a", "final", 700, [USER])
    turn("conv-tie-b", "session-u", "turn-u", "agent", "inf-u", 650, 700)
    add_snapshot(conn, "conv-tie-b", "session-u", "turn-u", "final", 700, [USER])
    conn.close()
    return str(path)


def build_timeline_db(path):
    """conv-past is the upstream's persisted conversation; conv-1's pointer moved to planner@v1."""
    conn = sqlite3.connect(path)
    conn.executescript(schema.TIMELINE_DDL)
    conn.executemany(
        "INSERT INTO timeline_conversations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("conv-past", "session-past", "default", 1000, 5000, 12, 1, "active", ""),
            ("conv-1", "session-2", "planner@v1", 100, 400, 0, 0, "active", ""),
            ("conv-quiet", "session-q", "", 50, 400, 3, 0, "closed", ""),
        ],
    )
    conn.commit()
    conn.close()
    return str(path)


def datasette(paths, **kwargs):
    """A Datasette over ``paths``; ``databases=`` settings go where the installed line reads them."""
    databases = kwargs.pop("databases", None)
    if databases:
        kwargs.update(line_config({"databases": databases}))
    return Datasette([str(path) for path in paths], **kwargs)


async def get_json(ds, path, **kwargs):
    response = await ds.client.get(path, **kwargs)
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.status_code, response.json()
