"""Every link from turns data to the plugin's pages and queries, built here and nowhere else:
ids in cells, times in cells, the database's actions, and the URLs the pages and templates use.

``render_cell`` returns a :class:`Cell`: the HTML to show, which still carries the plain value,
so a template that lays cells out itself reads ``cell.plain`` instead of taking HTML apart.
"""

from dataclasses import dataclass
import json
from urllib.parse import quote, urlencode
import weakref

from datasette.utils import tilde_encode
from datasette.utils.asgi import Response
from markupsafe import Markup

from . import config, permissions, queries, times

PREFIX = "/-/runtime-truth"

# column -> (query, parameter): a cell's value becomes that query's parameter.
CELL_LINKS = {
    "conv_id": ("runtime_history", "conv_id"),
    "inference_id": ("inference_lookup", "inference_id"),
}

# Which databases are turns databases, remembered per Datasette instance: render_cell runs per cell.
_turns_databases: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Cell(Markup):
    """A cell's HTML that remembers the value it shows (``plain``)."""

    plain = None

    @classmethod
    def of(cls, html, plain):
        cell = cls(html)
        cell.plain = plain
        return cell


def query_url(datasette, database, query, **params):
    url = datasette.urls.table(database, query)
    return url + ("?" + urlencode(params) if params else "")


def plugin_url(datasette, database, page, **params):
    """``/-/runtime-truth/{database}/{page}`` with ``params``."""
    path = f"{PREFIX}/{tilde_encode(database)}/{page}"
    return datasette.urls.path(path + ("?" + urlencode(params) if params else ""))


def timeline_url(datasette, database, conv_id):
    return plugin_url(datasette, database, "conversation", conv_id=conv_id)


def timeline_json_url(datasette, database, conv_id):
    """The upstream's ``/api/timeline`` snapshot of a conversation, for the store paired with
    ``database``."""
    return plugin_url(datasette, database, "api/timeline", conv_id=conv_id)


def debug_turn_url(datasette, conv_id, session_id, turn_id):
    """The upstream's turn detail route; each id percent-encoded (``/`` too) as the API reads it."""
    parts = "/".join(quote(str(part), safe="") for part in (conv_id, session_id, turn_id))
    return datasette.urls.path(f"/api/debug/turn/{parts}")


def cell_url(datasette, database, column, value):
    """Where a ``conv_id`` / ``inference_id`` value links, or None."""
    if column not in CELL_LINKS or not isinstance(value, str) or not value:
        return None
    query, parameter = CELL_LINKS[column]
    return query_url(datasette, database, query, **{parameter: value})


async def render_cell(datasette, database, column, value):
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


async def database_actions(datasette, actor, database):
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


async def _is_turns_database(datasette, database):
    known = _turns_databases.setdefault(datasette, {})
    if database not in known:
        known[database] = await config.is_turns_database(datasette, database)
    return known[database]


@dataclass(frozen=True)
class EncodedJSON:
    """A JSON body already encoded (by ``encode_json``), e.g. in a worker thread, so that a
    large one does not hold the event loop."""

    body: bytes


def encode_json(body):
    return EncodedJSON(json.dumps(body, default=_blob_as_text).encode("utf-8"))


def json_response(body, status=200):
    """A JSON answer in which any BLOB a hostile store holds (an id, a value) is its UTF-8 text,
    or hex where it is not UTF-8, instead of a 500. ``body`` may be an EncodedJSON."""
    if isinstance(body, EncodedJSON):
        return Response(body.body, status=status, content_type="application/json; charset=utf-8")
    return Response.json(body, status=status, default=_blob_as_text)


def _blob_as_text(value):
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.hex()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
