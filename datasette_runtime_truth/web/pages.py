"""The cutover report inside Datasette: ``/-/runtime-truth``, its JSON, and a conversation timeline_store.

The views gather what each turns database's report needs (its connection, how Datasette opened
it, the timeline store's pointers) and hand it to :mod:`report`, the same code the ``check``
command runs. Every database the actor may not view is left out.
"""

import csv
from dataclasses import replace
import io
from typing import TYPE_CHECKING, Any, Optional, Sequence
from urllib.parse import urlencode

from datasette.utils.asgi import BadRequest, Forbidden, NotFound, Response

from .. import config, times
from ..canned import queries
from ..migration import preview
from ..report import cache, checks, figures, metrics
from ..storage import id_lookup, timeline_store
from ..upstream import schema
from . import charts, links, permissions, report_view, views

if TYPE_CHECKING:
    from datasette.app import Datasette
    from datasette.database import Database
    from datasette.utils.asgi import Request

Row = dict[str, Any]

PREFIX = links.PREFIX
SHOWN_TIMELINES = 5  # switched conversations drawn inline on the report
DB = rf"^{PREFIX}/(?P<database>[^/]+)"
NOT_MIGRATED = "This store has no runtime_key column yet: run the migration first."


def routes() -> list[tuple[str, Any]]:
    return [
        (rf"^{PREFIX}$", views.page(report_page)),
        (rf"^{PREFIX}\.json$", views.page(report_json)),
        (rf"^{PREFIX}/metrics$", views.page(metrics_view)),
        (rf"^{PREFIX}/search(?P<format>\.json)?$", views.page(search_page)),
        (rf"{DB}/search(?P<format>\.json)?$", views.page(search_page)),
        (rf"{DB}/conversation$", views.page(conversation_page)),
        (rf"{DB}/preview(?P<format>\.json|\.csv)?$", views.page(preview_page)),
        (rf"{DB}/pointers(?P<format>\.json)?$", views.page(pointers_page)),
        (rf"{DB}/switches(?P<format>\.json)?$", views.page(switches_page)),
    ]


async def visible_turns_databases(datasette: "Datasette", actor: permissions.Actor) -> list["Database"]:
    """The turns databases whose ``turns`` table the actor may view."""
    return [db for db in await config.turns_databases(datasette)
            if await permissions.can_view_table(datasette, actor, db.name, "turns")]


async def build_reports(datasette: "Datasette", actor: permissions.Actor,
                        refresh: bool = False) -> list[checks.DatabaseReport]:
    """A DatabaseReport for each turns database whose turns the actor may view, from the report
    cache; pointers only when the actor may view the timeline store's ``timeline_conversations``
    too."""
    databases = await config.turns_databases(datasette)
    visible = await visible_turns_databases(datasette, actor)
    if databases and not visible:
        raise Forbidden("You may not view any turns database")
    timeline_db, timeline_name = await _timeline_store(datasette)
    hide_pointers = timeline_db is not None and not await _may_view_pointers(datasette, actor, timeline_db)
    rules, max_age = config.setting(datasette, "rules"), config.setting(datasette, "report_max_age")
    report_cache = cache.for_datasette(datasette)
    reports = []
    for db in visible:
        source = cache.Source(db, timeline_db, timeline_name, rules)
        entry = await report_cache.get(source, max_age, refresh=refresh)
        db_report = replace(entry.report, computed_at_ms=int(entry.computed_at * 1000),
                            outdated=entry.outdated)
        reports.append(checks.without_pointers(db_report) if hide_pointers else db_report)
    return reports


def _refresh(request: "Request") -> bool:
    return request.args.get("refresh") not in (None, "", "0")


async def _is_migrated(db: "Database") -> bool:
    return schema.is_migrated(await db.table_columns("turns"))


async def report_json(datasette: "Datasette", request: "Request") -> Response:
    reports = await build_reports(datasette, request.actor, refresh=_refresh(request))
    return links.json_response(report_view.report_body(datasette, reports))


async def metrics_view(datasette: "Datasette", request: "Request") -> Response:
    reports = await build_reports(datasette, request.actor, refresh=_refresh(request))
    body, content_type = metrics.exposition(reports, accept=request.headers.get("accept"))
    return Response(body, content_type=content_type)


async def report_page(datasette: "Datasette", request: "Request") -> Response:
    reports = await build_reports(datasette, request.actor, refresh=_refresh(request))
    sections = []
    for db_report in reports:
        view = report_view.database_view(datasette, db_report)
        sections.append({"view": view, "report": db_report,
                         "coverage_svg": charts.coverage_svg(db_report.coverage),
                         "timelines": await _switched_timelines(datasette, view)})
    return Response.html(await datasette.render_template(
        "runtime_truth.html",
        {"status": checks.overall_status(reports), "sections": sections,
         "json_url": datasette.urls.path(f"{PREFIX}.json"),
         "rt_crumbs": [("home", datasette.urls.instance()), ("runtime truth report", None)]},
        request=request,
    ))


async def _switched_timelines(datasette: "Datasette", view: report_view.DatabaseView) -> list[Row]:
    """The first switched conversations' runtime timelines, drawn in one set of colours."""
    if view.report.problem:
        return []
    switched = next(check for check in view.checks if check.check.id == "runtime_switches").items
    db = datasette.databases[view.report.database]
    histories = [await db.execute_fn(lambda conn, c=item["conv_id"]: figures.conversation_history(conn, c))
                 for item in switched[:SHOWN_TIMELINES]]
    colours = charts.assign_colours(row["runtime_key"] for rows in histories for row in rows)
    return [{**item, "svg": charts.timeline_svg(rows, colours)} for item, rows in zip(switched, histories)]


async def _turns_db(datasette: "Datasette", request: "Request") -> "Database":
    """The turns database named in the URL, once the actor may view it and its turns."""
    route, db = views.database_named(datasette, request.url_vars["database"])
    if db is None:
        raise NotFound(f"Database not found: {route}")
    await permissions.ensure_view_database(datasette, request.actor, db.name)
    if db not in await config.turns_databases(datasette) or not await config.holds_turns(db):
        raise NotFound(f"{db.name} is not a turns database")
    await permissions.ensure_view_table(datasette, request.actor, db.name, "turns")
    return db


def _crumbs(datasette: "Datasette", database: str, *more: tuple[str, Optional[str]]
            ) -> list[tuple[str, Optional[str]]]:
    """Breadcrumbs: home, the database, the report, then ``more`` (label, url) pairs."""
    return [("home", datasette.urls.instance()), (database, datasette.urls.database(database)),
            ("runtime truth report", datasette.urls.path(PREFIX)), *more]


async def _page(datasette: "Datasette", request: "Request", template: str, context: dict[str, Any],
                status: int = 200) -> Response:
    return Response.html(await datasette.render_template(template, context, request=request),
                         status=status)


async def conversation_page(datasette: "Datasette", request: "Request") -> Response:
    db = await _turns_db(datasette, request)
    name = db.name
    conv_id = request.args.get("conv_id", "")
    crumbs = _crumbs(datasette, name)
    if not conv_id:
        return await _page(datasette, request, "runtime_truth_conversation.html", {
            "database": name, "conv_id": "", "rt_crumbs": crumbs,
            "problem": "missing conv_id: this page shows one conversation; add ?conv_id=... to "
                       "the URL, or pick a conversation from the report's lists."}, status=400)
    rows = await db.execute_fn(lambda conn: figures.conversation_history(conn, conv_id))
    if not rows:
        search_url = datasette.urls.path(f"{PREFIX}/search?{urlencode({'q': conv_id})}")
        return await _page(datasette, request, "runtime_truth_conversation.html", {
            "database": name, "conv_id": conv_id, "rt_crumbs": crumbs, "rt_q": conv_id,
            "problem": f"conversation not found: {conv_id} has no turns in {name}.",
            "ways_back": [("search for it as any id", search_url),
                          ("the runtime truth report", datasette.urls.path(PREFIX)),
                          (f"the {name} database", datasette.urls.database(name))]}, status=404)
    migrated = await _is_migrated(db)
    switches = queries.switch_positions([row["runtime_key"] for row in rows])
    previous = {index: _last_known(rows, index) for index in switches}
    for index, row in enumerate(rows):
        row["switched_from"] = previous.get(index, "")
        row["debug_url"] = links.debug_turn_url(datasette, conv_id, row["session_id"], row["turn_id"])
        row["inference_url"] = links.cell_url(datasette, name, "inference_id", row["inference_id"])
    pointer = await _pointer(datasette, request.actor, conv_id)
    return await _page(datasette, request, "runtime_truth_conversation.html", {
        "database": name, "conv_id": conv_id, "rows": rows, "switches": len(switches),
        "pointer": pointer, "rt_crumbs": crumbs, "migrated": migrated,
        "rt_colours": charts.assign_colours(row["runtime_key"] for row in rows),
        "preview_url": links.plugin_url(datasette, name, "preview"),
        "timeline_json_url": None if pointer is None else links.timeline_json_url(datasette, name, conv_id),
        "history_url": links.history_url(datasette, name, conv_id, migrated),
        "report_url": datasette.urls.path(PREFIX)})


def _last_known(rows: list[Row], index: int) -> Any:
    return next(row["runtime_key"] for row in reversed(rows[:index]) if row["runtime_key"])


async def _timeline_store(datasette: "Datasette") -> tuple[Optional["Database"], Optional[str]]:
    """``(store, name)``: the timeline store (timeline_store.database) and its name; the configured
    name and no store when that one is not attached; (None, None) when there is none."""
    try:
        timeline_db = await timeline_store.database(datasette)
    except ValueError:
        return None, config.setting(datasette, "timeline_database")
    return timeline_db, None if timeline_db is None else timeline_db.name


async def _may_view_pointers(datasette: "Datasette", actor: permissions.Actor, timeline_db: "Database") -> bool:
    return await permissions.can_view_table(datasette, actor, timeline_db.name, timeline_store.TABLE)


async def _timeline_db(datasette: "Datasette", actor: permissions.Actor) -> Optional["Database"]:
    """The timeline store, when attached and the actor may view its conversations; else None."""
    timeline_db, _ = await _timeline_store(datasette)
    if timeline_db is None or not await _may_view_pointers(datasette, actor, timeline_db):
        return None
    return timeline_db


async def _pointer(datasette: "Datasette", actor: permissions.Actor, conv_id: str) -> Optional[Row]:
    """{database, runtime_key} of the conversation's pointer in the timeline store, or None."""
    timeline_db = await _timeline_db(datasette, actor)
    if timeline_db is None:
        return None
    found = (await timeline_db.execute(
        "SELECT runtime_key FROM timeline_conversations WHERE conv_id = ?", [conv_id])).first()
    return {"database": timeline_db.name, "runtime_key": None if found is None else found[0]}


def _after(request: "Request", names: Sequence[str]) -> Optional[tuple[str, ...]]:
    values = [request.args.get(name) for name in names]
    return tuple(values) if all(value is not None for value in values) else None


def _preview_key(request: "Request") -> Optional[preview.Key]:
    """The preview's ``(after_conv, after_session, after_turn)``, when all three are given."""
    after = _after(request, ("after_conv", "after_session", "after_turn"))
    return None if after is None else (after[0], after[1], after[2])


def _next_url(request: "Request", **after: Any) -> str:
    args = {key: request.args.get(key) for key in request.args.keys() if not key.startswith("after_")}
    return request.path + "?" + urlencode({**args, **after})


async def preview_page(datasette: "Datasette", request: "Request") -> Response:
    db = await _turns_db(datasette, request)
    rules = config.setting(datasette, "rules")
    limit = preview.page_size(request.args.get("limit"), datasette.setting("max_returned_rows"))
    after = _preview_key(request)
    only = request.args.get("only") or None
    if only is not None and only not in preview.ONLY:
        problem = f"unknown only={only!r}: expected one of {', '.join(preview.ONLY)}, or none for every row"
        if request.url_vars.get("format") == ".json":
            return links.json_response({"database": db.name, "rows": [], "next": None, "problem": problem},
                                       status=400)
        return await _list(datasette, request, db.name, "Migration preview", [], preview.COLUMNS,
                           None, "preview", about={"rules": rules}, problem=problem, status=400)
    page = await db.execute_fn(lambda conn: preview.read_page(conn, rules, after, limit, only))
    next_url = None
    if page.next_after:
        next_url = _next_url(request, **dict(zip(("after_conv", "after_session", "after_turn"),
                                                 page.next_after)))
    fmt = request.url_vars.get("format")
    if fmt == ".json":
        return links.json_response({"database": db.name, "rules": rules, "rows": page.rows,
                              "next": next_url and next_url.replace("/preview?", "/preview.json?", 1)})
    if fmt == ".csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=preview.COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(page.rows)
        return Response(out.getvalue(), content_type="text/csv; charset=utf-8")
    title = "Migration preview" + (f": {preview.ONLY[only][0]}" if only else "")
    return await _list(datasette, request, db.name, title, page.rows, preview.COLUMNS, next_url,
                       "preview", migrated=await _is_migrated(db), csv=True, about={
                           "rules": rules, "only_label": preview.ONLY[only][0] if only else None,
                           "every_row_url": request.path})


async def pointers_page(datasette: "Datasette", request: "Request") -> Response:
    db = await _turns_db(datasette, request)
    timeline_db = await _timeline_db(datasette, request.actor)
    rows: list[Row] = []
    next_url: Optional[str] = None
    problem: Optional[str] = None
    if timeline_db is None:
        problem = "No timeline store to compare with (or you may not view its timeline_conversations)."
    elif not await _is_migrated(db):
        problem = NOT_MIGRATED
    else:
        pointers = await timeline_db.execute_fn(timeline_store.read_pointers)
        differ, _, _ = await db.execute_fn(lambda conn: figures.pointer_mismatches(conn, pointers))
        after = request.args.get("after_conv")
        limit = preview.page_size(request.args.get("limit"), datasette.setting("max_returned_rows"))
        remaining = [row for row in differ if after is None or row["conv_id"] > after]
        rows = remaining[:limit]
        if len(remaining) > limit:
            next_url = _next_url(request, after_conv=rows[-1]["conv_id"])
    return await _list(datasette, request, db.name, "Conversation pointer vs newest turn", rows,
                       ("conv_id", "pointer", "newest_runtime_key"), next_url, "pointers",
                       problem=problem)


SWITCHES_PAGE_SQL = f"""
SELECT * FROM (
{queries.RUNTIME_SWITCHES_SQL})
WHERE :after_conv IS NULL OR switches < :after_switches
   OR (switches = :after_switches AND conv_id > :after_conv)
ORDER BY switches DESC, conv_id
LIMIT :limit
"""


async def switches_page(datasette: "Datasette", request: "Request") -> Response:
    db = await _turns_db(datasette, request)
    rows: list[Row] = []
    next_url: Optional[str] = None
    problem: Optional[str] = None
    if not await _is_migrated(db):
        problem = NOT_MIGRATED
    else:
        limit = preview.page_size(request.args.get("limit"), datasette.setting("max_returned_rows"))
        after = _after(request, ("after_switches", "after_conv"))
        params = {"after_switches": _switches_count(after[0]) if after else None,
                  "after_conv": after[1] if after else None, "limit": limit + 1}
        found = [dict(row) for row in (await db.execute(SWITCHES_PAGE_SQL, params)).rows]
        rows = found[:limit]
        if len(found) > limit:
            next_url = _next_url(request, after_switches=rows[-1]["switches"],
                                 after_conv=rows[-1]["conv_id"])
    return await _list(datasette, request, db.name, "Conversations that switched runtime", rows,
                       queries.RUNTIME_SWITCHES_COLUMNS, next_url, "switches", problem=problem)


def _switches_count(text: str) -> int:
    """``after_switches`` as the whole number it must be; a 400 for anything else."""
    value = config.parse_int64(text)
    if value is None:
        raise BadRequest(f"invalid after_switches: expected a whole number, got {text!r}")
    return value


async def _list(datasette: "Datasette", request: "Request", database: str, title: str, rows: list[Row],
                columns: Sequence[str], next_url: Optional[str], list_kind: str,
                about: Optional[dict[str, Any]] = None, problem: Optional[str] = None, csv: bool = False,
                migrated: bool = True, status: int = 200) -> Response:
    """A paged list as a page (``list_kind`` picks its explanation, given ``about``), or as JSON
    for the ``.json`` URL. Before the migration a conversation links to its timeline page only
    (its runtime_history query cannot run yet)."""
    for row in rows:
        if "conv_id" in row:
            row.update(links.conversation_links(datasette, database, row["conv_id"], migrated))
    if request.url_vars.get("format") == ".json":
        base = request.path.rsplit(".json", 1)[0]
        return links.json_response({"database": database, "rows": rows, "problem": problem,
                              "next": next_url and next_url.replace(base + "?", base + ".json?", 1)})
    path, qs = request.path, ("?" + request.query_string if request.query_string else "")
    return await _page(datasette, request, "runtime_truth_list.html", {
        **(about or {}), "title": title, "list_kind": list_kind, "database": database, "rows": rows, "columns": columns,
        "next_url": next_url, "problem": problem,
        "rt_crumbs": _crumbs(datasette, database, (title, None)),
        "json_url": path + ".json" + qs, "csv_url": path + ".csv" + qs if csv else None},
        status=status)


async def _searched_databases(datasette: "Datasette", request: "Request") -> list["Database"]:
    """The database named in the URL, else every turns database whose turns the actor may view."""
    if "database" in request.url_vars:
        return [await _turns_db(datasette, request)]
    visible = await visible_turns_databases(datasette, request.actor)
    if not visible and await config.turns_databases(datasette):
        raise Forbidden("You may not view any turns database")
    return [db for db in visible if await config.holds_turns(db)]


async def search_page(datasette: "Datasette", request: "Request") -> Response:
    """The turns any pasted id names, in every turns database searched (see :mod:`search`)."""
    databases = await _searched_databases(datasette, request)
    q = request.args.get("q", "")
    problem: Optional[str] = None
    parsed: list[tuple[str, Optional[str]]] = []
    try:
        parsed = id_lookup.parse(q)
    except id_lookup.BadQuery as error:
        problem = str(error)
    ids, named = [token for token, _ in parsed], {token: kind for token, kind in parsed if kind}
    searched: list[Row] = []
    turns: list[Row] = []
    more: list[Row] = []
    for db in databases if parsed else []:
        snapshots = await permissions.can_view_table(datasette, request.actor, db.name,
                                                     "turn_block_membership")
        found = await db.execute_fn(lambda conn: id_lookup.find(conn, parsed, snapshots))
        migrated = await _is_migrated(db)
        searched.append({"database": db.name, "kinds": list(found.kinds), "note": _search_note(found)})
        turns += [_search_links(datasette, db.name, turn, migrated) for turn in found.turns]
        more += [_more_link(datasette, db.name, kind, id_) for kind, id_ in found.more]
    body = {"q": q, "ids": ids, "named": named, "searched": searched, "turns": turns, "more": more,
            "problem": problem}
    status = 400 if problem else 200
    if request.url_vars.get("format") == ".json":
        return links.json_response(body, status=status)
    path, qs = request.path, ("?" + request.query_string if request.query_string else "")
    return await _page(datasette, request, "runtime_truth_search.html", {
        **body, "rt_q": q, "per_lookup": id_lookup.PER_LOOKUP, "all_kinds": id_lookup.KINDS,
        "rt_colours": charts.assign_colours(turn["runtime_key"] for turn in turns),
        "rt_crumbs": [("home", datasette.urls.instance()),
                      ("runtime truth report", datasette.urls.path(PREFIX)), ("find turns", None)],
        "json_url": path + ".json" + qs}, status=status)


def _search_note(found: id_lookup.Found) -> Optional[str]:
    if "inference_id" in found.kinds:
        return None
    return "inference_id is not searched here: this store has no inference_id column until it is migrated."


def _search_links(datasette: "Datasette", database: str, turn: Row, migrated: bool) -> Row:
    """A found turn with its database, UTC time and the links to its history (None before the
    migration), timeline and debug JSON."""
    turn.setdefault("snapshots", None)
    return {"database": database, **turn,
            "updated_at": times.iso(turn["updated_at_ms"]),
            **links.conversation_links(datasette, database, turn["conv_id"], migrated),
            "debug_url": links.debug_turn_url(datasette, turn["conv_id"], turn["session_id"],
                                              turn["turn_id"], database=database)}


def _more_link(datasette: "Datasette", database: str, kind: str, id_: str) -> Row:
    """An id that named more turns than one lookup lists, and where all of them are."""
    url, label = None, None
    if kind == "conv_id":
        url, label = links.history_url(datasette, database, id_), "its runtime history"
    elif kind == "session_id":
        url, label = links.debug_turns_url(datasette, database, session_id=id_), "the session's debug turns list"
    return {"database": database, "kind": kind, "id": id_, "url": url, "link_label": label}


async def menu_links(datasette: "Datasette", actor: permissions.Actor) -> list[dict[str, str]]:
    if await visible_turns_databases(datasette, actor):
        return [{"href": datasette.urls.path(PREFIX), "label": "Runtime truth report"}]
    return []


def template_vars(datasette: "Datasette") -> dict[str, Any]:
    """What every template sees with the plugin installed: the timeline function the
    runtime_history page's partial calls, and each database's file path for the migrate hint."""

    def db_path(database: str) -> str:
        db = datasette.databases.get(database)
        return db.path if db is not None and db.path else f"{database}.db"

    async def query_page(database: str, query: str) -> Optional[str]:
        """The plugin's page template for ``query`` on ``database``, when it is a turns
        database (any name): Datasette looks pages up by database name, the plugin's are
        written once, for ``turns``."""
        if query in queries.BY_NAME and await config.is_turns_database(datasette, database):
            return f"query-turns-{query}.html"
        return None

    return {
        "runtime_truth_plugin": True,
        "runtime_truth_timeline": charts.timeline_svg,
        "runtime_truth_db_path": db_path,
        "runtime_truth_time": times.html,
        "runtime_truth_query_page": query_page,
        "runtime_truth_search_url": datasette.urls.path(f"{PREFIX}/search"),
        "runtime_truth_css_url": datasette.urls.static_plugins(config.PLUGIN, "runtime-truth.css"),
        "runtime_truth_debug_url": lambda conv_id, session_id, turn_id: links.debug_turn_url(
            datasette, conv_id, session_id, turn_id),
    }
