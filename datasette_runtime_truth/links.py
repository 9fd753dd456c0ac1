"""Links from turns data to the runtime-truth queries: ids in cells, and the database's actions."""

from urllib.parse import urlencode
import weakref

from markupsafe import Markup

from . import config, permissions, queries

# column -> (query, parameter): a cell's value becomes that query's parameter.
CELL_LINKS = {
    "conv_id": ("runtime_history", "conv_id"),
    "inference_id": ("inference_lookup", "inference_id"),
}

# Which databases are turns databases, remembered per Datasette instance: render_cell runs per cell.
_turns_databases: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def render_cell(datasette, database, column, value):
    """Link a ``conv_id`` to its runtime history and an ``inference_id`` to its turns."""
    if column not in CELL_LINKS or not isinstance(value, str) or not value:
        return None
    if not await _is_turns_database(datasette, database):
        return None
    query, parameter = CELL_LINKS[column]
    href = f"{datasette.urls.database(database)}/{query}?{urlencode({parameter: value})}"
    return Markup('<a href="{}">{}</a>').format(href, value)


async def database_actions(datasette, actor, database):
    """A turns database's action menu leads to the cutover report and each runtime-truth query."""
    if not await config.is_turns_database(datasette, database):
        return []
    if not await permissions.can_view_table(datasette, actor, database, "turns"):
        return []
    base = datasette.urls.database(database)
    report = {"href": datasette.urls.path("/-/runtime-truth"), "label": "Runtime truth: cutover report"}
    return [report] + [
        {"href": f"{base}/{query.name}", "label": f"Runtime truth: {query.title}"}
        for query in queries.QUERIES
    ]


async def _is_turns_database(datasette, database):
    known = _turns_databases.setdefault(datasette, {})
    if database not in known:
        known[database] = await config.is_turns_database(datasette, database)
    return known[database]
