"""The JSON shapes of the /api/debug/* routes, and the turn payload as YAML. Pure functions, no I/O.

Field names and field order are the upstream web-chat server's (``../shared/spec/turns-db.md``,
section 4), with the playbook's ``runtime_key`` on turn items. Every per-turn value comes from the
turn row; the conversation pointer only ever appears as a conversation's ``resolved_runtime_key``.

The payload is the upstream's turn map: JSON columns decoded as Go's ``encoding/json`` decodes them
(every number a float64), written as gopkg.in/yaml.v3 v3.0.1 ``Marshal`` writes it (``yamlv3``).
"""

from dataclasses import dataclass
from typing import Any, Callable

from . import golang, yamlv3
from .golang import JSON

Cell = Any  # a value as read from a SQLite column: a hostile store may put any type anywhere
Body = dict[str, Any]  # a JSON answer's object, keys in the order written
Dump = Callable[[JSON], str]  # writes a payload as YAML
Block = tuple[Cell, Cell, Cell, Cell, Cell]  # (block_id, kind, role, payload_json, block_metadata_json)

MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Snapshot:
    """One phase snapshot of a turn, with the turn row's runtime truth and the built payload."""

    conv_id: str
    session_id: str
    turn_id: str
    phase: str
    created_at_ms: int
    runtime_key: str
    inference_id: str
    payload: dict[str, JSON]


def conversation_item(conv_id: Cell, session_id: Cell, resolved_runtime_key: Cell, last_activity_ms: Cell,
                      has_timeline_source: Cell, detail: bool = False) -> Body:
    """One conversation as the upstream lists it. A store on disk has no live state, so the
    live-only fields are always 0 / false / ""."""
    item = {
        "conv_id": conv_id,
        "session_id": session_id,
        "resolved_runtime_key": resolved_runtime_key or "",
        "active_sockets": 0,
        "stream_running": False,
        "queue_depth": 0,
        "buffered_events": 0,
        "last_activity_ms": last_activity_ms,
        "has_timeline_source": bool(has_timeline_source),
        "source": "persisted",
    }
    if detail:
        item["active_request_key"] = ""
    return item


def turns_envelope(conv_id: str, session_id: str, phase: str, since_ms: int, items: list[Body]) -> Body:
    """The /api/debug/turns body: the filters echoed (``limit`` is not), keys in upstream order."""
    return {
        "conv_id": conv_id,
        "items": items,
        "phase": phase,
        "session_id": session_id,
        "since_ms": since_ms,
    }


def turns_item(snapshot: Snapshot, dump: Dump) -> Body:
    """One snapshot in the /api/debug/turns list; ``dump`` writes the payload (a
    PayloadBuilder's ``yaml``, or ``yamlv3.dump``)."""
    return {
        "conv_id": snapshot.conv_id,
        "session_id": snapshot.session_id,
        "turn_id": snapshot.turn_id,
        "phase": snapshot.phase,
        **_runtime_keys(snapshot),
        "inference_id": snapshot.inference_id or "",
        "created_at_ms": snapshot.created_at_ms,
        "payload": dump(snapshot.payload),
    }


def turn_envelope(conv_id: str, session_id: str, turn_id: str, items: list[Body]) -> Body:
    """The /api/debug/turn/{conv}/{session}/{turn} body."""
    return {"conv_id": conv_id, "items": items, "session_id": session_id, "turn_id": turn_id}


def turn_item(snapshot: Snapshot, dump: Dump) -> Body:
    """One phase snapshot in the turn detail: the payload as YAML (written by ``dump``) and as a
    JSON object."""
    return {
        "phase": snapshot.phase,
        "created_at_ms": snapshot.created_at_ms,
        **_runtime_keys(snapshot),
        "inference_id": snapshot.inference_id or "",
        "payload": dump(snapshot.payload),
        "parsed": snapshot.payload,
    }


def _runtime_keys(snapshot: Snapshot) -> dict[str, str]:
    """The playbook's ``runtime_key``, and the same value as the upstream code's own
    ``resolved_runtime_key``, left out when empty as the upstream did."""
    keys = {"runtime_key": snapshot.runtime_key or ""}
    if keys["runtime_key"]:
        keys["resolved_runtime_key"] = keys["runtime_key"]
    return keys


def error_body(message: str, status: int) -> Body:
    return {"ok": False, "error": message, "status": status}


class PayloadBuilder:
    """Builds the payloads of one read, and their YAML.

    The phase snapshots of a turn repeat its metadata, its data and most of its blocks, so each
    JSON text is decoded once and each block built once per read, and the YAML written for a
    decoded value or a block is reused wherever it recurs in the same place of a document
    (``yamlv3.Memo``). The builder holds every value it shared, which keeps the memo's ``id``
    keys true.
    """

    def __init__(self) -> None:
        self.decoded: dict[str, JSON] = {}
        self.blocks: dict[tuple[Any, ...], dict[str, JSON]] = {}
        self.memo = yamlv3.Memo()

    def turn_payload(self, turn_id: Cell, blocks: list[Block], metadata_json: Cell, data_json: Cell) -> dict[str, JSON]:
        """The upstream turn map ``{blocks: [{id, kind, metadata?, payload?, role?}], data?, id,
        metadata?}``, keys sorted at every level, optional keys left out when empty (``role``
        when blank). ``blocks`` are ``(block_id, kind, role, payload_json, block_metadata_json)``
        tuples in ordinal order. JSON columns are decoded with Go's rules; text Go refuses
        (upstream then fails the whole query) is kept as the string it is."""
        payload: dict[str, JSON] = {"blocks": [self.block(*block) for block in blocks]}
        _put_if_present(payload, "data", self.parse_json(data_json))
        payload["id"] = golang.scan_string(turn_id)
        _put_if_present(payload, "metadata", self.parse_json(metadata_json))
        return payload

    def block(self, block_id: Cell, kind: Cell, role: Cell, payload_json: Cell, metadata_json: Cell) -> dict[str, JSON]:
        columns = (block_id, kind, role, payload_json, metadata_json)
        key = columns + tuple(map(type, columns))  # a hostile store's 1 and 1.0 are not one id
        if key not in self.blocks:
            block: dict[str, JSON] = {"id": golang.scan_string(block_id), "kind": golang.scan_string(kind)}
            _put_if_present(block, "metadata", self.parse_json(metadata_json))
            _put_if_present(block, "payload", self.parse_json(payload_json))
            role = golang.scan_string(role)
            if golang.trim_space(role):
                block["role"] = role
            self.blocks[key] = self.memo.share(block)
        return self.blocks[key]

    def parse_json(self, text: Cell) -> JSON:
        """parse_json, keys sorted at every level, once per text."""
        if not isinstance(text, str):
            return _sorted(parse_json(text))
        if text not in self.decoded:
            self.decoded[text] = self.memo.share(_sorted(parse_json(text)))
        return self.decoded[text]

    def yaml(self, value: JSON) -> str:
        """``yamlv3.dump(value)``, reusing what this builder already wrote."""
        return yamlv3.dump(value, memo=self.memo)


def _put_if_present(mapping: dict[str, JSON], key: str, value: JSON) -> None:
    if value not in (None, "", {}, []):
        mapping[key] = value


def parse_json(text: Cell) -> JSON:
    """A JSON column's value as Go's ``encoding/json`` decodes it (numbers are floats);
    NULL and blank text give None; text Go refuses (``NaN`` included), or that nests deeper
    than MAX_JSON_DEPTH, stays a string."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return text
    if not golang.trim_space(text):
        return None
    try:
        value = golang.decode(text)
    except golang.InvalidJSON:
        return text
    if text.count("[") + text.count("{") >= MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        return text  # (a value counts as a level: n brackets nest at most n + 1 deep)
    return value


def _depth(value: JSON) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _sorted(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value
