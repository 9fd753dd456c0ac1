"""The /api/debug/* JSON routes of the upstream web-chat server, served from turns.db.

``/api/debug/...`` answers for the default turns database (the plugin's ``database`` setting,
else the only attached turns database); ``/-/runtime-truth/{database}/api/debug/...`` for any
turns database. Conversations come from the timeline store when one is attached (the plugin's
``timeline_database`` setting, else the first database with a ``timeline_conversations`` table),
else they are derived from turns.db. Every answer is JSON, errors included.
"""

from dataclasses import dataclass
import re
from typing import Any
import sqlite3
import urllib.parse

from datasette.database import QueryInterrupted
from datasette.utils.asgi import Forbidden, Response

from . import config, golang, links, permissions, schema, store, timeline
from . import payload as shapes
from .cors import add_cors
from .permissions import ensure_view_database, forbidden_tables

DEFAULT_TURNS_LIMIT = 200
CONVERSATIONS_LIMIT = 500
TURN_PATH_ERROR = "expected /api/debug/turn/:convId/:sessionId/:turnId"
ALLOWED_METHODS = "GET, HEAD, OPTIONS"


class ApiError(Exception):
    """An answer other than 200: its status and the upstream's message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Stores:
    """What one request reads: a turns database (with its TurnsShape) and a timeline store;
    either may be None."""

    turns: object
    shape: object
    timeline: object


# --- routing ------------------------------------------------------------------------------------

PREFIXES = ("", r"/-/runtime-truth/(?P<database>[^/]+)")


def routes() -> list[tuple[str, Any]]:
    """``register_routes`` entries: each endpoint at the top level and under each database."""
    endpoints = (
        (r"/api/debug/conversations", conversations),
        (r"/api/debug/conversations/(?P<conv_id>.*)", conversation),
        (r"/api/debug/turns", turns),
        (r"/api/debug/turn(?:/(?P<turn_path>.*))?", turn),
    )
    return [(f"^{prefix}{path}$", _json_view(handler)) for prefix in PREFIXES for path, handler in endpoints]


def _json_view(handler):
    async def view(datasette, request):
        if request.method == "OPTIONS":
            # A CORS preflight: Datasette's own views answer it "ok", with the CORS headers.
            return add_cors(datasette, Response.text("ok", headers={"Allow": ALLOWED_METHODS}))
        try:
            response = links.json_response(await _answer(handler, datasette, request))
        except ApiError as error:
            response = links.json_response(shapes.error_body(error.message, error.status), status=error.status)
            if error.status == 405:
                response.headers["Allow"] = ALLOWED_METHODS
        if request.method == "HEAD":
            response.body = b""
        return add_cors(datasette, response)

    view.__name__ = handler.__name__
    return view


async def _answer(handler, datasette, request):
    if request.method not in ("GET", "HEAD"):
        raise ApiError(405, "method not allowed")
    try:
        return await handler(datasette, request)
    except QueryInterrupted:
        raise ApiError(503, time_limit_message(datasette)) from None
    except sqlite3.DatabaseError as error:
        raise ApiError(500, f"database error: {error}") from None


def time_limit_message(datasette):
    """What a 503 says when a query ran past Datasette's ``sql_time_limit_ms``."""
    return (f"the query took longer than sql_time_limit_ms ({datasette.sql_time_limit_ms} ms): "
            "raise it with --setting sql_time_limit_ms N")


# --- the four endpoints -------------------------------------------------------------------------

async def conversations(datasette: Any, request: Any) -> dict[str, Any]:
    stores = await _stores(datasette, request, with_timeline=True)
    limit = min(CONVERSATIONS_LIMIT, _max_rows(datasette))
    return {"items": [_conversation_item(row) for row in await _conversation_rows(stores, limit)]}


async def conversation(datasette: Any, request: Any) -> dict[str, Any]:
    raw = request.url_vars["conv_id"]
    if raw == "":
        raise ApiError(400, "missing conv_id")
    conv_id = _unescape(raw)
    if conv_id is None or not conv_id.strip():
        raise ApiError(400, "invalid conv_id")
    stores = await _stores(datasette, request, with_timeline=True)
    rows = await _conversation_rows(stores, 1, conv_id=conv_id)
    if not rows:
        raise ApiError(404, "conversation not found")
    return _conversation_item(rows[0], detail=True)


async def turns(datasette: Any, request: Any) -> links.EncodedJSON:
    conv_id, session_id, phase = (golang.trim_space(request.args.get(name) or "")
                                  for name in ("conv_id", "session_id", "phase"))
    since_ms = max(0, _whole_number(request, "since_ms", 0))
    limit = _limit(datasette, request)
    if not conv_id and not session_id:
        raise ApiError(400, "missing conv_id or session_id")
    stores = await _stores(datasette, request, require_turns=True)
    _, body = await _snapshots(
        datasette, stores, shapes.turns_item, "ask for fewer snapshots (limit=, phase=, since_ms=)",
        lambda items: shapes.turns_envelope(conv_id, session_id, phase, since_ms, items),
        conv_id=conv_id or None, session_id=session_id or None, phase=phase or None,
        since_ms=since_ms, limit=limit,
    )
    return body


async def turn(datasette: Any, request: Any) -> links.EncodedJSON:
    ids = _turn_ids(request.url_vars.get("turn_path"))
    stores = await _stores(datasette, request, require_turns=True)
    conv_id, session_id, turn_id = ids
    count, body = await _snapshots(
        datasette, stores, shapes.turn_item, "read it from turns.db directly",
        lambda items: shapes.turn_envelope(conv_id, session_id, turn_id, items),
        conv_id=conv_id, session_id=session_id, turn_id=turn_id,
    )
    if not count and not await store.turn_exists(stores.turns, conv_id, session_id, turn_id):
        raise ApiError(404, "turn not found")
    return body


async def _snapshots(datasette, stores, build, advice, envelope, **filters):
    """``(snapshots found, the answer's EncodedJSON)``: ``build`` makes each item and
    ``envelope`` the body from them, and the body is encoded in the same worker thread."""
    limit = config.setting(datasette, "max_payload_chars")

    def finish(items):
        return len(items), links.encode_json(envelope(items))

    try:
        return await store.snapshots(stores.turns, stores.shape, build=build, finish=finish,
                                     max_chars=limit, **filters)
    except store.TooLarge as error:
        raise ApiError(413, f"payload too large: these snapshots hold {error}, the max_payload_chars "
                            f"setting; {advice}") from None


# --- stores and permissions ---------------------------------------------------------------------

async def _stores(datasette, request, with_timeline=False, require_turns=False):
    """The databases this request reads, once the actor may view each of them and each table it
    reads there, as Datasette's own pages would require."""
    turns_db = await _turns_database(datasette, request.actor, request.url_vars.get("database"))
    timeline_db = await _timeline_database(datasette) if with_timeline else None
    for db in {db.name: db for db in (turns_db, timeline_db) if db is not None}.values():
        try:
            await ensure_view_database(datasette, request.actor, db.name)
        except Forbidden:
            raise ApiError(403, f"forbidden: you may not view the {db.name} database") from None
    shape = await store.turns_shape(turns_db) if turns_db is not None else None
    if shape is None or not shape.has_turns:
        if require_turns:
            raise ApiError(404, "turn store not enabled")
        turns_db, shape = None, None
    stores = Stores(turns_db, shape, timeline_db)
    for db, tables in _tables_read(stores, require_turns):
        hidden = await forbidden_tables(datasette, request.actor, db.name, tables, database_checked=True)
        if hidden:
            raise ApiError(403, f"forbidden: you may not view the {hidden[0]} table of the "
                                f"{db.name} database")
    return stores


def _tables_read(stores, snapshots):
    """[(database, tables)] that a request on ``stores`` reads: the timeline store's conversations
    (or turns.db's, without one), and with ``snapshots`` the turns and their snapshot tables."""
    read = []
    if stores.timeline is not None:
        read.append((stores.timeline, ("timeline_conversations",)))
    if stores.turns is not None and (snapshots or stores.timeline is None):
        tables = ("turns",)
        if snapshots and stores.shape.has_snapshots:
            tables += schema.SNAPSHOT_TABLES
        read.append((stores.turns, tables))
    return read


async def _turns_database(datasette, actor, route_name):
    """The turns database named in the URL, else the default one; None when there is none."""
    candidates = await config.turns_databases(datasette)
    if route_name is not None:
        name = config.database_route(route_name)
        for db in candidates:
            if name in (db.name, getattr(db, "route", db.name)):
                return db
        raise ApiError(404, f"not a turns database: {name}")
    names = config.configured_names(datasette)
    if names:
        return datasette.databases.get(names[0])
    if len(candidates) > 1:
        visible = [db.name for db in candidates
                   if await permissions.can_view_database(datasette, actor, db.name)]
        listed = f" ({', '.join(visible)})" if visible else ""
        raise ApiError(404, f"turn store not enabled: several turns databases are attached{listed}; "
                            "set the plugin's database option or use /-/runtime-truth/<database>/api/debug/...")
    return candidates[0] if candidates else None


async def _timeline_database(datasette):
    """The timeline store the cutover report uses too; None when there is none."""
    try:
        return await timeline.database(datasette)
    except ValueError as error:
        raise ApiError(404, str(error)) from None


async def _conversation_rows(stores, limit, conv_id=None):
    if stores.timeline is not None:
        return await store.timeline_conversations(stores.timeline, limit, conv_id=conv_id)
    if stores.turns is not None:
        return await store.derived_conversations(stores.turns, stores.shape, limit, conv_id=conv_id)
    return []


def _conversation_item(row, detail=False):
    return shapes.conversation_item(
        row["conv_id"], row["session_id"], row["runtime_key"], row["last_activity_ms"],
        row["has_timeline_source"], detail=detail,
    )


# --- request parsing ----------------------------------------------------------------------------

def _unescape(text):
    """Percent-decode one path segment strictly (``%2F`` is ``/``); None when it is malformed."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        return None
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError:
        return None


def _turn_ids(turn_path):
    parts = (turn_path or "").split("/")
    if len(parts) != 3 or not all(parts):
        raise ApiError(400, TURN_PATH_ERROR)
    ids = [_unescape(part) for part in parts]
    if any(not value or not value.strip() for value in ids):
        raise ApiError(400, TURN_PATH_ERROR)
    return ids


def _whole_number(request, name, default):
    text = request.args.get(name) or ""
    if text == "":
        return default
    value = config.parse_int64(text)
    if value is None:
        raise ApiError(400, f"invalid {name}: expected a whole number, got {text!r}")
    return value


def _limit(datasette, request):
    text = request.args.get("limit") or ""
    if text == "":
        return min(DEFAULT_TURNS_LIMIT, _max_rows(datasette))
    value = config.parse_whole_number(text)
    if value is None or value < 1:
        raise ApiError(400, f"invalid limit: expected a whole number of at least 1, got {text!r}")
    return min(value, _max_rows(datasette))


def _max_rows(datasette):
    return datasette.setting("max_returned_rows")
