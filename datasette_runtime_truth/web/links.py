"""Every link from turns data to the plugin's pages and queries, built here and nowhere else:
ids in cells, times in cells, the database's actions, and the URLs the pages and templates use.

``render_cell`` returns a :class:`Cell`: the HTML to show, which still carries the plain value,
so a template that lays cells out itself reads ``cell.plain`` instead of taking HTML apart.
"""

from dataclasses import dataclass
import json
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Iterator, Optional, Union
import uuid
from urllib.parse import quote, urlencode
import weakref

from datasette.utils import tilde_encode
from datasette.utils.asgi import Response
from markupsafe import Markup

from .. import config, times
from ..canned import queries
from ..storage import debug_reads
from . import permissions

if TYPE_CHECKING:
    from datasette.app import Datasette

PREFIX = "/-/runtime-truth"

# column -> (query, parameter): a cell's value becomes that query's parameter.
CELL_LINKS = {
    "conv_id": ("runtime_history", "conv_id"),
    "inference_id": ("inference_lookup", "inference_id"),
}

# Report checks whose rows are the migration preview's with this ``only`` filter (preview.ONLY),
# migrated or not: each figure's link leads to the rows it counts.
FIGURE_ROWS = {"missing_runtime_key": "runtime_key", "missing_inference_id": "inference_id",
               "bad_metadata": "bad_metadata", "would_fill": "writes"}

# Which databases are turns databases, remembered per Datasette instance: render_cell runs per cell.
_turns_databases: "weakref.WeakKeyDictionary[Datasette, dict[str, tuple[Any, bool]]]" = weakref.WeakKeyDictionary()


class Cell(Markup):
    """A cell's HTML that remembers the value it shows (``plain``)."""

    plain: Any = None

    @classmethod
    def of(cls, html: str, plain: Any) -> "Cell":
        cell = cls(html)
        cell.plain = plain
        return cell


def query_url(datasette: "Datasette", database: str, query: str, **params: Any) -> str:
    url = datasette.urls.table(database, query)
    return url + ("?" + urlencode(params) if params else "")


def plugin_url(datasette: "Datasette", database: str, page: str, **params: Any) -> str:
    """``/-/runtime-truth/{database}/{page}`` with ``params``."""
    path = f"{PREFIX}/{tilde_encode(database)}/{page}"
    return datasette.urls.path(path + ("?" + urlencode(params) if params else ""))


def figure_rows_path(database: str, check_id: str) -> str:
    """Where a report check's figure's rows are listed (FIGURE_ROWS), before Datasette's base URL."""
    return f"{PREFIX}/{tilde_encode(database)}/preview?{urlencode({'only': FIGURE_ROWS[check_id]})}"


def timeline_url(datasette: "Datasette", database: str, conv_id: str) -> str:
    return plugin_url(datasette, database, "conversation", conv_id=conv_id)


def history_url(datasette: "Datasette", database: str, conv_id: str, migrated: bool = True) -> Optional[str]:
    """The conversation's runtime_history query, or None before the migration (it cannot run)."""
    return query_url(datasette, database, "runtime_history", conv_id=conv_id) if migrated else None


def conversation_links(datasette: "Datasette", database: str, conv_id: str,
                       migrated: bool = True) -> dict[str, Optional[str]]:
    """A listed conversation's ``history_url`` (history_url) and ``timeline_url`` (its page)."""
    return {"history_url": history_url(datasette, database, conv_id, migrated),
            "timeline_url": timeline_url(datasette, database, conv_id)}


def timeline_json_url(datasette: "Datasette", database: str, conv_id: str) -> str:
    """The upstream's ``/api/timeline`` snapshot of a conversation, for the store paired with
    ``database``."""
    return plugin_url(datasette, database, "api/timeline", conv_id=conv_id)


def debug_turn_url(datasette: "Datasette", conv_id: Any, session_id: Any, turn_id: Any,
                   database: Optional[str] = None) -> str:
    """The upstream's turn detail route; each id percent-encoded (``/`` too) as the API reads it.
    With ``database``: that turns database's own copy of the route."""
    parts = "/".join(quote(str(part), safe="") for part in (conv_id, session_id, turn_id))
    prefix = "" if database is None else f"{PREFIX}/{tilde_encode(database)}"
    return datasette.urls.path(f"{prefix}/api/debug/turn/{parts}")


def debug_turns_url(datasette: "Datasette", database: str, **params: Any) -> str:
    """A turns database's copy of the upstream's turns list, with ``params``."""
    return datasette.urls.path(f"{PREFIX}/{tilde_encode(database)}/api/debug/turns?{urlencode(params)}")


def cell_url(datasette: "Datasette", database: str, column: str, value: Any) -> Optional[str]:
    """Where a ``conv_id`` / ``inference_id`` value links, or None."""
    if column not in CELL_LINKS or not isinstance(value, str) or not value:
        return None
    query, parameter = CELL_LINKS[column]
    return query_url(datasette, database, query, **{parameter: value})


async def render_cell(datasette: "Datasette", database: str, column: str, value: Any) -> Optional[Cell]:
    """In a turns database: a ``conv_id`` links to its runtime history, an ``inference_id`` to
    its turns, and a ``*_ms`` time shows its UTC date beside the number."""
    if not (column in CELL_LINKS or str(column).endswith("_ms")):
        return None
    if not await _is_turns_database(datasette, database):
        return None
    if column in CELL_LINKS:
        href = cell_url(datasette, database, column, value)
        if href is None:
            return None
        return Cell.of(Markup('<a href="{}">{}</a>').format(href, value), value)
    if times.utc(value) is None:
        return None
    return Cell.of(times.html(value), value)


async def database_actions(datasette: "Datasette", actor: permissions.Actor, database: str
                           ) -> list[dict[str, str]]:
    """A turns database's action menu leads to the cutover report, the migration preview and
    each runtime-truth query; a query that needs the migration says so while it has not run."""
    if not await config.is_turns_database(datasette, database):
        return []
    if not await permissions.can_view_table(datasette, actor, database, "turns"):
        return []
    columns = await datasette.databases[database].table_columns("turns")
    report = {"href": datasette.urls.path(PREFIX), "label": "Runtime truth: cutover report"}
    preview = {"href": plugin_url(datasette, database, "preview"),
               "label": "Runtime truth: migration preview"}
    return [report, preview] + [
        {"href": query_url(datasette, database, query.name),
         "label": f"Runtime truth: {query.title}"
                  + ("" if query.runs_on(columns) else " (runs once migrated)")}
        for query in queries.QUERIES
    ]


async def _is_turns_database(datasette: "Datasette", database: str) -> bool:
    """config.is_turns_database, remembered per Database object (one replaced under the same
    name is asked again)."""
    known = _turns_databases.setdefault(datasette, {})
    db = datasette.databases.get(database)
    if database not in known or known[database][0] is not db:
        known[database] = (db, await config.is_turns_database(datasette, database))
    return known[database][1]


@dataclass(frozen=True)
class EncodedJSON:
    """A JSON body already encoded (by ``json_chunks``), e.g. in a worker thread, so that a
    large one does not hold the event loop. ``rest``: more of the body, sent as it comes;
    ``release`` is called once when sending ends, however it ends."""

    body: bytes
    rest: Optional[AsyncIterator[bytes]] = None
    release: Optional[Callable[[], Any]] = None


def json_chunks(body: dict[str, Any], key: str = "items") -> Iterator[bytes]:
    """``json.dumps(body)`` as UTF-8 bytes (BLOBs as text), in pieces: the envelope around
    ``body[key]``, and each member of each item of that list on its own, so that no more than
    one value's text (a payload's YAML, its parsed form) is held at a time."""
    token = uuid.uuid4().hex

    def items_as_token(value: Any) -> Any:
        return token if value is _ITEMS else _blob_as_text(value)

    head, tail = json.dumps({**body, key: _ITEMS}, default=items_as_token).split(f'"{token}"')
    yield head.encode("utf-8") + b"["
    for number, item in enumerate(body[key]):
        if number:
            yield b", "
        yield from _dict_chunks(item)
    yield b"]" + tail.encode("utf-8")


def _dict_chunks(value: dict[str, Any]) -> Iterator[bytes]:
    """``json.dumps(value)`` of a dict with text keys, one member at a time."""
    yield b"{"
    for number, (key, member) in enumerate(value.items()):
        yield (", " if number else "").encode("utf-8") + json.dumps(key).encode("utf-8") + b": "
        yield json.dumps(member, default=_blob_as_text).encode("utf-8")
    yield b"}"


_ITEMS = object()


def json_response(body: Union[EncodedJSON, Any], status: int = 200) -> "SentResponse":
    """A JSON answer in which any BLOB a hostile store holds (an id, a value) is its UTF-8 text,
    or hex where it is not UTF-8, instead of a 500. ``body`` may be an EncodedJSON."""
    if isinstance(body, EncodedJSON):
        return SentResponse(body.body, status=status, content_type="application/json; charset=utf-8",
                            rest=body.rest, release=body.release)
    return SentResponse(json.dumps(body, default=_blob_as_text), status=status,
                        content_type="application/json; charset=utf-8")


class SentResponse(Response):
    """A Response whose body may go on in ``rest`` (sent piece by piece), and which calls
    ``release`` once, when sending ends (or fails)."""

    def __init__(self, *args: Any, rest: Optional[AsyncIterator[bytes]] = None,
                 release: Optional[Callable[[], Any]] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rest = rest
        # Called when sending ends, or when the response is dropped unsent (a cancelled request).
        self.release = weakref.finalize(self, release) if release is not None else None

    async def asgi_send(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        rest = self.rest

        async def send_first(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and rest is not None:
                message = {**message, "more_body": True}
            await send(message)

        try:
            await super().asgi_send(send_first)
            if rest is not None:
                async for chunk in rest:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        finally:
            if self.release is not None:
                self.release()


def _blob_as_text(value: Any) -> Any:
    """``json.dumps``' default: a BLOB as debug_reads.text gives it; anything else is not JSON."""
    if isinstance(value, bytes):
        return debug_reads.text(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
