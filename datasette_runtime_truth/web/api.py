"""The /api/debug/* and /api/timeline JSON routes of the upstream web-chat server, served from
turns.db and the timeline debug_reads.

``/api/debug/...`` answers for the default turns database (the plugin's ``database`` setting,
else the only attached turns database); ``/-/runtime-truth/{database}/api/debug/...`` for any
turns database. Conversations come from the timeline store when one is attached (the plugin's
``timeline_database`` setting, else the first database with a ``timeline_conversations`` table),
else they are derived from turns.db. Every answer is JSON, errors included.
"""

from dataclasses import dataclass
import re
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional
import sqlite3
import urllib.parse

from datasette.database import QueryInterrupted
from datasette.utils.asgi import Forbidden

from .. import config
from ..storage import debug_reads, timeline_store
from ..upstream import api_shapes, golang, protojson, schema
from . import links, offload, permissions, views
from .permissions import Actor, ensure_view_database, forbidden_tables

if TYPE_CHECKING:
    from datasette.app import Datasette
    from datasette.database import Database
    from datasette.utils.asgi import Request, Response

DEFAULT_TURNS_LIMIT = 200
CONVERSATIONS_LIMIT = 500
TURN_PATH_ERROR = "expected /api/debug/turn/:convId/:sessionId/:turnId"
READ_METHODS = ("GET", "HEAD", "OPTIONS")
TIMELINE_METHODS = ("GET", "OPTIONS")  # the upstream's timeline and events handlers refused HEAD too


class ApiError(Exception):
    """An answer other than 200: its status and the upstream's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Stores:
    """What one request reads: a turns database (with its TurnsShape) and a timeline store;
    either may be None."""

    turns: Optional["Database"]
    shape: Optional[schema.TurnsShape]
    timeline: Optional["Database"]

    def required_turns(self) -> tuple["Database", schema.TurnsShape]:
        """The turns database and its shape, for a request that required them (``_stores``
        answers 404 without)."""
        assert self.turns is not None and self.shape is not None
        return self.turns, self.shape


# --- routing ------------------------------------------------------------------------------------

PREFIXES = ("", r"/-/runtime-truth/(?P<database>[^/]+)")


def routes() -> list[tuple[str, Any]]:
    """``register_routes`` entries: each endpoint at the top level and under each database."""
    endpoints = (
        (r"/api/debug/conversations", conversations, READ_METHODS),
        (r"/api/debug/conversations/(?P<conv_id>.*)", conversation, READ_METHODS),
        (r"/api/debug/turns", turns, READ_METHODS),
        (r"/api/debug/turn(?:/(?P<turn_path>.*))?", turn, READ_METHODS),
        # Go's ServeMux: a pattern ending in "/" answers every path below it too.
        (r"/api/debug/events(?:/(?P<events_path>.*))?", events, TIMELINE_METHODS),
        (r"/api/(?:debug/)?timeline(?:/.*)?", timeline_snapshot, TIMELINE_METHODS),
    )
    return [(f"^{prefix}{path}$", ApiView(handler, methods).as_route())
            for prefix in PREFIXES for path, handler, methods in endpoints]


class ApiView(views.View):
    """An API route: every answer JSON, errors as the upstream wrote them."""

    async def get(self, datasette: "Datasette", request: "Request") -> "Response":
        try:
            return links.json_response(await _answer(self.handler, datasette, request))
        except ApiError as error:
            return _error_response(error.message, error.status)

    def method_not_allowed(self) -> "Response":
        return _error_response("method not allowed", 405)


def _error_response(message: str, status: int) -> "Response":
    return links.json_response(api_shapes.error_body(message, status), status=status)


async def _answer(handler: Callable[["Datasette", "Request"], Awaitable[Any]], datasette: "Datasette",
                  request: "Request") -> Any:
    try:
        return await handler(datasette, request)
    except QueryInterrupted:
        raise ApiError(503, views.time_limit_message(datasette)) from None
    except sqlite3.DatabaseError as error:
        raise ApiError(500, f"database error: {error}") from None


# --- the endpoints ------------------------------------------------------------------------------

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
    filters = {"conv_id": conv_id or None, "session_id": session_id or None, "phase": phase or None,
               "since_ms": since_ms, "limit": limit}
    job = offload.Job("turns", stores.required_turns()[1], filters, (conv_id, session_id, phase, since_ms))
    _, chars = await _size(datasette, stores, job, "ask for fewer snapshots (limit=, phase=, since_ms=)")
    return await _build(datasette, stores, job, chars)


async def turn(datasette: Any, request: Any) -> links.EncodedJSON:
    ids = _turn_ids(request.url_vars.get("turn_path"))
    stores = await _stores(datasette, request, require_turns=True)
    conv_id, session_id, turn_id = ids
    filters = {"conv_id": conv_id, "session_id": session_id, "turn_id": turn_id}
    job = offload.Job("turn", stores.required_turns()[1], filters, (conv_id, session_id, turn_id))
    count, chars = await _size(datasette, stores, job, "read it from turns.db directly")
    if not count and not await debug_reads.turn_exists(stores.turns, conv_id, session_id, turn_id):
        raise ApiError(404, "turn not found")
    return await _build(datasette, stores, job, chars)


async def _size(datasette: "Datasette", stores: Stores, job: offload.Job, advice: str) -> tuple[int, int]:
    """``(snapshots, characters of JSON)`` the job would read, from SQL; a 413 saying what to do
    (``advice``) when that is more than the ``max_payload_chars`` setting."""
    limit = config.setting(datasette, "max_payload_chars")
    count, chars = await debug_reads.size(*stores.required_turns(), **job.filters)
    if chars > limit:
        raise ApiError(413, f"payload too large: these snapshots hold {chars:,} characters of JSON, over "
                            f"the limit of {limit:,}, the max_payload_chars setting; {advice}")
    return count, chars


async def _build(datasette: "Datasette", stores: Stores, job: offload.Job, chars: int) -> links.EncodedJSON:
    try:
        return await offload.build(datasette, stores.required_turns()[0], job, chars)
    except offload.WorkerStopped as error:
        raise ApiError(503, str(error)) from None


async def events(datasette: Any, request: Any) -> dict[str, Any]:
    """The upstream's live event buffer: a store on disk holds no live conversation, so every
    well-formed id is the upstream's 404."""
    path = _unescape(request.url_vars.get("events_path") or "")
    if path is None:
        raise ApiError(400, "invalid conv_id")
    raw = path.strip("/")
    if not raw:
        raise ApiError(400, "missing conv_id")
    conv_id = _unescape(raw)
    if conv_id is None or not golang.trim_space(conv_id):
        raise ApiError(400, "invalid conv_id")
    raise ApiError(404, "conversation not found")


async def timeline_snapshot(datasette: Any, request: Any) -> links.EncodedJSON:
    """``GET /api/timeline``: the conversation's ``TimelineSnapshotV2`` from the timeline store,
    read and written in a worker thread as the upstream's store and handler did."""
    db = await _timeline_store(datasette, request)
    query = golang.parse_query(request.scope.get("query_string") or b"")
    conv_id = golang.trim_space_bytes(golang.query_get(query, b"conv_id"))
    if not conv_id:
        raise ApiError(400, "missing conv_id")
    since_version = golang.sscanf_uint(golang.trim_space_bytes(golang.query_get(query, b"since_version")))
    limit = golang.sscanf_int(golang.trim_space_bytes(golang.query_get(query, b"limit")))
    limit = limit if limit > 0 else timeline_store.DEFAULT_SNAPSHOT_LIMIT
    return await db.execute_fn(lambda conn: _snapshot_body(conn, conv_id, since_version, limit))


def _snapshot_body(conn: sqlite3.Connection, conv_id: bytes, since_version: int, limit: int) -> links.EncodedJSON:
    try:
        read = timeline_store.read_snapshot(conn, conv_id, since_version, limit)
        entities = [protojson.entity(raw) for raw in read.entities]
    except (timeline_store.SnapshotFailed, protojson.Invalid):
        raise ApiError(500, "timeline snapshot failed") from None
    try:
        body = protojson.snapshot(conv_id, read.version, time.time_ns() // 1_000_000, entities)
    except protojson.Invalid:
        raise ApiError(500, "timeline marshal failed") from None
    return links.EncodedJSON(body)


async def _timeline_store(datasette: "Datasette", request: "Request") -> "Database":
    """The timeline store a timeline request reads, once the actor may view it (and the database
    the URL names) and its entity tables."""
    db = await _timeline_database(datasette)
    named = await _database_in_url(datasette, request, db)
    if db is None:
        raise ApiError(404, "timeline service not enabled")
    for checked in {named.name: named, db.name: db}.values() if named else (db,):
        await _ensure_database(datasette, request.actor, checked)
    tables = await db.execute_fn(lambda conn: sorted(timeline_store.entity_tables(conn)))
    hidden = await forbidden_tables(datasette, request.actor, db.name, tables, database_checked=True)
    if hidden:
        raise ApiError(403, f"forbidden: you may not view the {hidden[0]} table of the {db.name} database")
    return db


async def _database_in_url(datasette: "Datasette", request: "Request", timeline_db: Optional["Database"]
                           ) -> Optional["Database"]:
    """The database ``/-/runtime-truth/{database}/api/timeline`` names: the timeline store itself
    or a turns database (which the store serves); None at the top level."""
    segment = request.url_vars.get("database")
    if segment is None:
        return None
    name, db = views.database_named(datasette, segment)
    if db is not None and not db.name.startswith("_") and (
            timeline_db is None or db.name == timeline_db.name
            or await config.is_turns_database(datasette, db.name)):
        return db
    raise ApiError(404, f"not a turns database or timeline store: {name}")


async def _ensure_database(datasette: "Datasette", actor: Actor, db: "Database") -> None:
    try:
        await ensure_view_database(datasette, actor, db.name)
    except Forbidden:
        raise ApiError(403, f"forbidden: you may not view the {db.name} database") from None


# --- stores and permissions ---------------------------------------------------------------------

async def _stores(datasette: "Datasette", request: "Request", with_timeline: bool = False,
                  require_turns: bool = False) -> Stores:
    """The databases this request reads, once the actor may view each of them and each table it
    reads there, as Datasette's own pages would require."""
    turns_db = await _turns_database(datasette, request.actor, request.url_vars.get("database"))
    timeline_db = await _timeline_database(datasette) if with_timeline else None
    for db in {db.name: db for db in (turns_db, timeline_db) if db is not None}.values():
        await _ensure_database(datasette, request.actor, db)
    shape = await debug_reads.turns_shape(turns_db) if turns_db is not None else None
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


def _tables_read(stores: Stores, snapshots: bool) -> list[tuple["Database", tuple[str, ...]]]:
    """[(database, tables)] that a request on ``stores`` reads: the timeline store's conversations
    (or turns.db's, without one), and with ``snapshots`` the turns and their snapshot tables."""
    read: list[tuple["Database", tuple[str, ...]]] = []
    if stores.timeline is not None:
        read.append((stores.timeline, ("timeline_conversations",)))
    if stores.turns is not None and (snapshots or stores.timeline is None):
        tables: tuple[str, ...] = ("turns",)
        if snapshots and stores.shape is not None and stores.shape.has_snapshots:
            tables += schema.SNAPSHOT_TABLES
        read.append((stores.turns, tables))
    return read


async def _turns_database(datasette: "Datasette", actor: Actor, route_name: Optional[str]) -> Optional["Database"]:
    """The turns database named in the URL, else the default one; None when there is none."""
    candidates = await config.turns_databases(datasette)
    if route_name is not None:
        name, db = views.database_named(datasette, route_name)
        if db not in candidates:
            raise ApiError(404, f"not a turns database: {name}")
        return db
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


async def _timeline_database(datasette: "Datasette") -> Optional["Database"]:
    """The timeline store the cutover report uses too; None when there is none."""
    try:
        return await timeline_store.database(datasette)
    except ValueError as error:
        raise ApiError(404, str(error)) from None


async def _conversation_rows(stores: Stores, limit: int, conv_id: Optional[str] = None) -> list[dict[str, Any]]:
    if stores.timeline is not None:
        return await debug_reads.timeline_conversations(stores.timeline, limit, conv_id=conv_id)
    if stores.turns is not None and stores.shape is not None:
        return await debug_reads.derived_conversations(stores.turns, stores.shape, limit, conv_id=conv_id)
    return []


def _conversation_item(row: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    return api_shapes.conversation_item(
        row["conv_id"], row["session_id"], row["runtime_key"], row["last_activity_ms"],
        row["has_timeline_source"], detail=detail,
    )


# --- request parsing ----------------------------------------------------------------------------

def _unescape(text: str) -> Optional[str]:
    """Percent-decode one path segment strictly (``%2F`` is ``/``); None when it is malformed."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        return None
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError:
        return None


def _turn_ids(turn_path: Optional[str]) -> list[str]:
    parts = (turn_path or "").split("/")
    if len(parts) != 3 or not all(parts):
        raise ApiError(400, TURN_PATH_ERROR)
    ids = [value for value in map(_unescape, parts) if value and value.strip()]
    if len(ids) != len(parts):
        raise ApiError(400, TURN_PATH_ERROR)
    return ids


def _whole_number(request: "Request", name: str, default: int) -> int:
    text = request.args.get(name) or ""
    if text == "":
        return default
    value = config.parse_int64(text)
    if value is None:
        raise ApiError(400, f"invalid {name}: expected a whole number, got {text!r}")
    return value


def _limit(datasette: "Datasette", request: "Request") -> int:
    text = request.args.get("limit") or ""
    if text == "":
        return min(DEFAULT_TURNS_LIMIT, _max_rows(datasette))
    value = config.parse_whole_number(text)
    if value is None or value < 1:
        raise ApiError(400, f"invalid limit: expected a whole number of at least 1, got {text!r}")
    return min(value, _max_rows(datasette))


def _max_rows(datasette: "Datasette") -> int:
    return datasette.setting("max_returned_rows")
