"""The cutover report inside Datasette: ``/-/runtime-truth``, its JSON, and a conversation timeline.

The views gather what each turns database's report needs (its connection, how Datasette opened
it, the timeline store's pointers) and hand it to :mod:`report`, the same code the ``check``
command runs. Every database the actor may not view is left out.
"""

import copy
import csv
import io
from urllib.parse import urlencode

from datasette.database import QueryInterrupted
from datasette.utils.asgi import BadRequest, Base400, Forbidden, NotFound, Response

from . import (charts, config, figures, links, metrics, permissions, preview, queries, report,
               reportcache, startup, timeline, times)
from .api import time_limit_message
from . import cors
from .cors import add_cors

PREFIX = links.PREFIX
SHOWN_TIMELINES = 5  # switched conversations drawn inline on the report
DB = rf"^{PREFIX}/(?P<database>[^/]+)"


def routes():
    return [
        (rf"^{PREFIX}$", _get_only(report_page)),
        (rf"^{PREFIX}\.json$", _get_only(report_json)),
        (rf"^{PREFIX}/metrics$", _get_only(metrics_view)),
        (rf"{DB}/conversation$", _get_only(conversation_page)),
        (rf"{DB}/preview(?P<format>\.json|\.csv)?$", _get_only(preview_page)),
        (rf"{DB}/pointers(?P<format>\.json)?$", _get_only(pointers_page)),
        (rf"{DB}/switches(?P<format>\.json)?$", _get_only(switches_page)),
    ]


class TooSlow(Base400):
    """A query ran past ``sql_time_limit_ms``: rendered by Datasette, HTML or JSON, as a 503."""

    status = 503


def _get_only(view):
    """``view`` for GET (and HEAD, answered without a body); 405 for any other method, as
    Datasette's own pages answer. Every answer carries the CORS headers under ``--cors``."""

    async def answer(datasette, request):
        if request.method not in ("GET", "HEAD"):
            response = Response.text("Method not allowed", status=405, headers={"Allow": "GET, HEAD"})
        else:
            try:
                response = await view(datasette, request)
            except QueryInterrupted:
                raise TooSlow(time_limit_message(datasette)) from None
            except Forbidden as error:
                response = await cors.forbidden(datasette, request, error)
        if request.method == "HEAD":
            response.body = b""
        return add_cors(datasette, response)

    answer.__name__ = view.__name__
    return answer


async def visible_turns_databases(datasette, actor):
    """The turns databases whose ``turns`` table the actor may view."""
    return [db for db in await config.turns_databases(datasette)
            if await permissions.can_view_table(datasette, actor, db.name, "turns")]


async def build_reports(datasette, actor, refresh=False):
    """A DatabaseReport for each turns database whose turns the actor may view, from the report
    cache; pointers only when the actor may view the timeline store's ``timeline_conversations``
    too."""
    databases = await config.turns_databases(datasette)
    visible = await visible_turns_databases(datasette, actor)
    if databases and not visible:
        raise Forbidden("You may not view any turns database")
    try:
        timeline_db = await timeline.database(datasette)
        timeline_name = timeline_db.name if timeline_db is not None else None
    except ValueError:
        timeline_db, timeline_name = None, config.setting(datasette, "timeline_database")
    hide_pointers = timeline_db is not None and not await permissions.can_view_table(
        datasette, actor, timeline_db.name, "timeline_conversations")
    rules, max_age = config.setting(datasette, "rules"), config.setting(datasette, "report_max_age")
    cache = reportcache.for_datasette(datasette)
    reports = []
    for db in visible:
        source = reportcache.Source(db, timeline_db, timeline_name, rules)
        entry = await cache.get(source, max_age, refresh=refresh)
        db_report = copy.deepcopy(entry.report)
        db_report.computed_at = report.iso_utc(entry.computed_at)
        reports.append(report.without_pointers(db_report) if hide_pointers else db_report)
    return reports


def _refresh(request):
    return request.args.get("refresh") not in (None, "", "0")


_query_url = links.query_url
timeline_url = links.timeline_url


def _migrated(db_report):
    return not db_report.problem and db_report.check("columns").value == len(queries.MIGRATED_COLUMNS)


def _preview_url(datasette, db_report):
    """The migration preview, or None where there is no turns table to preview."""
    return None if db_report.problem else links.plugin_url(datasette, db_report.database, "preview")


# Checks whose rows the migration preview shows while the store is not migrated.
PREVIEWED = {"missing_runtime_key", "missing_inference_id", "bad_metadata", "would_fill"}


def _links(datasette, db_report):
    """Each check's rows link (a query that cannot run yet is replaced by the migration preview,
    or by a note), its complete list, and each listed conversation's history and timeline."""
    migrated = _migrated(db_report)
    name = db_report.database
    for check in db_report.checks:
        query = queries.BY_NAME.get(check.query)
        check.note = None
        check.link_label = check.query
        if query is None:
            check.url = None
        elif migrated or not query.needs:
            check.url = _query_url(datasette, name, check.query)
        elif check.id in PREVIEWED:
            check.url = links.plugin_url(datasette, name, "preview")
            check.link_label = "migration preview"
        else:
            check.url = None
            check.note = f"{check.query} runs once the store is migrated"
        check.all_url = None
        if check.id == "pointer" and check.value is not None:
            check.url = check.all_url = links.plugin_url(datasette, name, "pointers")
            check.link_label = "all mismatches"
        if check.id == "runtime_switches" and migrated:
            check.all_url = links.plugin_url(datasette, name, "switches")
        for item in check.items:
            item["history_url"] = _query_url(datasette, name, "runtime_history", conv_id=item["conv_id"])
            item["timeline_url"] = timeline_url(datasette, name, item["conv_id"])


def _as_json(datasette, reports):
    databases = []
    for db_report in reports:
        _links(datasette, db_report)
        data = db_report.as_dict()
        for check, check_data in zip(db_report.checks, data["checks"]):
            check_data["url"] = check.url
            check_data["all_url"] = check.all_url
        data["coverage_url"] = _coverage_url(datasette, db_report)
        data["preview_url"] = _preview_url(datasette, db_report)
        data["startup_migration_error"] = startup.migration_not_run(datasette, db_report.database)
        databases.append(data)
    return {"status": report.overall_status(reports), "databases": databases}


def _coverage_url(datasette, db_report):
    """The backfill_coverage query, or None while it cannot run (a store not migrated)."""
    if not _migrated(db_report):
        return None
    return _query_url(datasette, db_report.database, "backfill_coverage")


async def report_json(datasette, request):
    reports = await build_reports(datasette, request.actor, refresh=_refresh(request))
    return links.json_response(_as_json(datasette, reports))


async def metrics_view(datasette, request):
    reports = await build_reports(datasette, request.actor, refresh=_refresh(request))
    openmetrics = metrics.wants_openmetrics(request.headers.get("accept"))
    response = Response.text(metrics.exposition(reports, openmetrics=openmetrics))
    response.content_type = metrics.OPENMETRICS_TYPE if openmetrics else metrics.TEXT_TYPE
    return response


async def report_page(datasette, request):
    reports = await build_reports(datasette, request.actor, refresh=_refresh(request))
    sections = []
    for db_report in reports:
        _links(datasette, db_report)
        db = datasette.databases[db_report.database]
        switched = [] if db_report.problem else db_report.check("runtime_switches").items[:SHOWN_TIMELINES]
        timelines = []
        for item in switched:
            rows = await db.execute_fn(lambda conn, c=item["conv_id"]: figures.conversation_history(conn, c))
            timelines.append({**item, "svg": charts.timeline_svg(rows)})
        sections.append({
            "report": db_report,
            "coverage_svg": charts.coverage_svg(db_report.coverage),
            "coverage_url": _coverage_url(datasette, db_report),
            "preview_url": _preview_url(datasette, db_report),
            "migrated": _migrated(db_report),
            "timelines": timelines,
            "startup_migration_error": startup.migration_not_run(datasette, db_report.database),
        })
    return Response.html(await datasette.render_template(
        "runtime_truth.html",
        {"status": report.overall_status(reports), "sections": sections,
         "json_url": datasette.urls.path(f"{PREFIX}.json")},
        request=request,
    ))


async def _turns_db(datasette, request):
    """The turns database named in the URL, once the actor may view it and its turns."""
    route = config.database_route(request.url_vars["database"])
    db = next((db for db in datasette.databases.values() if route in (db.route, db.name)), None)
    if db is None:
        raise NotFound(f"Database not found: {route}")
    await permissions.ensure_view_database(datasette, request.actor, db.name)
    if db not in await config.turns_databases(datasette) or not await config.holds_turns(db):
        raise NotFound(f"{db.name} is not a turns database")
    await permissions.ensure_view_table(datasette, request.actor, db.name, "turns")
    return db


def _crumbs(datasette, database, *more):
    """Breadcrumbs: home, the database, the report, then ``more`` (label, url) pairs."""
    return [("home", datasette.urls.instance()), (database, datasette.urls.database(database)),
            ("runtime truth report", datasette.urls.path(PREFIX)), *more]


async def _page(datasette, request, template, context, status=200):
    context = {**context, "rt_time": times.html}
    return Response.html(await datasette.render_template(template, context, request=request),
                         status=status)


async def conversation_page(datasette, request):
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
        raise NotFound(f"conversation not found: {conv_id}")
    switches = queries.switch_positions([row["runtime_key"] for row in rows])
    previous = {index: _last_known(rows, index) for index in switches}
    for index, row in enumerate(rows):
        row["switched_from"] = previous.get(index, "")
        row["debug_url"] = links.debug_turn_url(datasette, conv_id, row["session_id"], row["turn_id"])
        row["inference_url"] = links.cell_url(datasette, name, "inference_id", row["inference_id"])
    pointer = await _pointer(datasette, request.actor, conv_id)
    return await _page(datasette, request, "runtime_truth_conversation.html", {
        "database": name, "conv_id": conv_id, "rows": rows, "switches": len(switches),
        "pointer": pointer, "rt_crumbs": crumbs,
        "history_url": _query_url(datasette, name, "runtime_history", conv_id=conv_id),
        "report_url": datasette.urls.path(PREFIX)})


def _last_known(rows, index):
    return next(row["runtime_key"] for row in reversed(rows[:index]) if row["runtime_key"])


async def _timeline_db(datasette, actor):
    """The timeline store, when attached and the actor may view its conversations; else None."""
    try:
        timeline_db = await timeline.database(datasette)
    except ValueError:
        return None
    if timeline_db is None or not await permissions.can_view_table(
            datasette, actor, timeline_db.name, "timeline_conversations"):
        return None
    return timeline_db


async def _pointer(datasette, actor, conv_id):
    """{database, runtime_key} of the conversation's pointer in the timeline store, or None."""
    timeline_db = await _timeline_db(datasette, actor)
    if timeline_db is None:
        return None
    found = (await timeline_db.execute(
        "SELECT runtime_key FROM timeline_conversations WHERE conv_id = ?", [conv_id])).first()
    return {"database": timeline_db.name, "runtime_key": None if found is None else found[0]}


def _after(request, names):
    values = [request.args.get(name) for name in names]
    return tuple(values) if all(value is not None for value in values) else None


def _next_url(request, **after):
    args = {key: request.args.get(key) for key in request.args.keys() if not key.startswith("after_")}
    return request.path + "?" + urlencode({**args, **after})


async def preview_page(datasette, request):
    db = await _turns_db(datasette, request)
    rules = config.setting(datasette, "rules")
    limit = preview.page_size(request.args.get("limit"), datasette.setting("max_returned_rows"))
    after = _after(request, ("after_conv", "after_session", "after_turn"))
    page = await db.execute_fn(lambda conn: preview.read_page(conn, rules, after, limit))
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
    return await _list(datasette, request, db.name, "Migration preview", page.rows,
                       preview.COLUMNS, next_url, about=(
        f"For each row a migrate run looks at (runtime_key or inference_id empty), what it would "
        f"write with the {rules} rules: <em>writes</em> shows the new values, <em>unchanged</em> "
        f"rows keep theirs (their metadata gives nothing), <em>skipped: bad metadata</em> rows are "
        f"not valid JSON objects. Nothing is written by this page."), csv=True)


async def pointers_page(datasette, request):
    db = await _turns_db(datasette, request)
    timeline_db = await _timeline_db(datasette, request.actor)
    columns = await db.table_columns("turns")
    rows, next_url, problem = [], None, None
    if timeline_db is None:
        problem = "No timeline store to compare with (or you may not view its timeline_conversations)."
    elif "runtime_key" not in columns:
        problem = "This store has no runtime_key column yet: run the migration first."
    else:
        pointers = await timeline_db.execute_fn(timeline.read_pointers)
        differ, _, _ = await db.execute_fn(lambda conn: figures.pointer_mismatches(conn, pointers))
        after = request.args.get("after_conv")
        limit = preview.page_size(request.args.get("limit"), datasette.setting("max_returned_rows"))
        remaining = [row for row in differ if after is None or row["conv_id"] > after]
        rows = remaining[:limit]
        if len(remaining) > limit:
            next_url = _next_url(request, after_conv=rows[-1]["conv_id"])
    return await _list(datasette, request, db.name, "Conversation pointer vs newest turn", rows,
                       ("conv_id", "pointer", "newest_runtime_key"), next_url, problem=problem,
                       about="Conversations whose pointer in the timeline store "
                             "(<code>resolved_runtime_key</code>) differs from the runtime_key of "
                             "their newest turn, in conv_id order. Information only: the pointer "
                             "is never turn history.")


SWITCHES_PAGE_SQL = f"""
SELECT * FROM (
{queries.BY_NAME["runtime_switches"].sql})
WHERE :after_conv IS NULL OR switches < :after_switches
   OR (switches = :after_switches AND conv_id > :after_conv)
ORDER BY switches DESC, conv_id
LIMIT :limit
"""


async def switches_page(datasette, request):
    db = await _turns_db(datasette, request)
    columns = ("conv_id", "runtime_keys", "switches", "runtime_order", "first_switch_turn_id",
               "first_switch_at_ms")
    rows, next_url, problem = [], None, None
    if "runtime_key" not in await db.table_columns("turns"):
        problem = "This store has no runtime_key column yet: run the migration first."
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
                       columns, next_url, problem=problem,
                       about="Every conversation whose known runtime_key changes between turns "
                             "(the <code>runtime_switches</code> query's rows), most switches first.")


def _switches_count(text):
    """``after_switches`` as the whole number it must be; a 400 for anything else."""
    value = config.parse_int64(text)
    if value is None:
        raise BadRequest(f"invalid after_switches: expected a whole number, got {text!r}")
    return value


async def _list(datasette, request, database, title, rows, columns, next_url, about="",
                problem=None, csv=False):
    """A paged list as a page, or as JSON for the ``.json`` URL."""
    for row in rows:
        if "conv_id" in row:
            row["history_url"] = _query_url(datasette, database, "runtime_history", conv_id=row["conv_id"])
            row["timeline_url"] = timeline_url(datasette, database, row["conv_id"])
    if request.url_vars.get("format") == ".json":
        base = request.path.rsplit(".json", 1)[0]
        return links.json_response({"database": database, "rows": rows, "problem": problem,
                              "next": next_url and next_url.replace(base + "?", base + ".json?", 1)})
    path, qs = request.path, ("?" + request.query_string if request.query_string else "")
    return await _page(datasette, request, "runtime_truth_list.html", {
        "title": title, "about": about, "database": database, "rows": rows, "columns": columns,
        "next_url": next_url, "problem": problem,
        "rt_crumbs": _crumbs(datasette, database, (title, None)),
        "json_url": path + ".json" + qs, "csv_url": path + ".csv" + qs if csv else None})


async def menu_links(datasette, actor):
    if await visible_turns_databases(datasette, actor):
        return [{"href": datasette.urls.path(PREFIX), "label": "Runtime truth report"}]
    return []


def template_vars(datasette):
    """What every template sees with the plugin installed: the timeline function the
    runtime_history page's partial calls, and each database's file path for the migrate hint."""

    def db_path(database):
        db = datasette.databases.get(database)
        return db.path if db is not None and db.path else f"{database}.db"

    async def query_page(database, query):
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
        "runtime_truth_colour": charts.runtime_colour,
        "runtime_truth_query_page": query_page,
        "runtime_truth_debug_url": lambda conv_id, session_id, turn_id: links.debug_turn_url(
            datasette, conv_id, session_id, turn_id),
    }
