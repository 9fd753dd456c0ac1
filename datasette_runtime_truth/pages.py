"""The cutover report inside Datasette: ``/-/runtime-truth``, its JSON, and a conversation timeline.

The views gather what each turns database's report needs (its connection, how Datasette opened
it, the timeline store's pointers) and hand it to :mod:`report`, the same code the ``check``
command runs. Every database the actor may not view is left out.
"""

import copy
from urllib.parse import urlencode

from datasette.utils import add_cors_headers, tilde_encode
from datasette.utils.asgi import Forbidden, NotFound, Response

from . import charts, config, metrics, permissions, report, reportcache, startup, timeline

PREFIX = "/-/runtime-truth"
SHOWN_TIMELINES = 5  # switched conversations drawn inline on the report


def routes():
    return [
        (rf"^{PREFIX}$", _get_only(report_page)),
        (rf"^{PREFIX}\.json$", _get_only(report_json)),
        (rf"^{PREFIX}/metrics$", _get_only(metrics_view)),
        (rf"^{PREFIX}/(?P<database>[^/]+)/conversation$", _get_only(conversation_page)),
    ]


def _get_only(view):
    """``view`` for GET (and HEAD, answered without a body); 405 for any other method, as
    Datasette's own pages answer."""

    async def answer(datasette, request):
        if request.method not in ("GET", "HEAD"):
            response = Response.text("Method not allowed", status=405, headers={"Allow": "GET, HEAD"})
        else:
            response = await view(datasette, request)
        if request.method == "HEAD":
            response.body = b""
        return response

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
        timeline_db, timeline_name = None, config.plugin_config(datasette)["timeline_database"]
    hide_pointers = timeline_db is not None and not await permissions.can_view_table(
        datasette, actor, timeline_db.name, "timeline_conversations")
    settings = config.plugin_config(datasette)
    cache = reportcache.for_datasette(datasette)
    reports = []
    for db in visible:
        source = reportcache.Source(db, timeline_db, timeline_name, settings.get("rules", "canonical"))
        entry = await cache.get(source, settings.get("report_max_age", reportcache.DEFAULT_MAX_AGE_S),
                                refresh=refresh)
        db_report = copy.deepcopy(entry.report)
        db_report.computed_at = report.iso_utc(entry.computed_at)
        reports.append(report.without_pointers(db_report) if hide_pointers else db_report)
    return reports


def _refresh(request):
    return request.args.get("refresh") not in (None, "", "0")


def _query_url(datasette, database, query, **params):
    url = datasette.urls.table(database, query)
    return url + ("?" + urlencode(params) if params else "")


def timeline_url(datasette, database, conv_id):
    return datasette.urls.path(
        f"{PREFIX}/{tilde_encode(database)}/conversation?{urlencode({'conv_id': conv_id})}"
    )


def _links(datasette, db_report, timeline):
    """Each check's rows link, and each listed conversation's history and timeline links."""
    for check in db_report.checks:
        check.url = _query_url(datasette, db_report.database, check.query) if check.query else None
        if check.id == "pointer" and timeline in datasette.databases:
            check.url = datasette.urls.table(timeline, "timeline_conversations")
        for item in check.items:
            item["history_url"] = _query_url(datasette, db_report.database, "runtime_history",
                                             conv_id=item["conv_id"])
            item["timeline_url"] = timeline_url(datasette, db_report.database, item["conv_id"])


def _as_json(datasette, reports):
    databases = []
    for db_report in reports:
        _links(datasette, db_report, db_report.timeline)
        data = db_report.as_dict()
        for check, check_data in zip(db_report.checks, data["checks"]):
            check_data["url"] = check.url
        data["coverage_url"] = _query_url(datasette, db_report.database, "backfill_coverage")
        data["startup_migration_error"] = startup.migration_not_run(datasette, db_report.database)
        databases.append(data)
    return {"status": report.overall_status(reports), "databases": databases}


async def report_json(datasette, request):
    reports = await build_reports(datasette, request.actor, refresh=_refresh(request))
    response = Response.json(_as_json(datasette, reports))
    if datasette.cors:
        add_cors_headers(response.headers)
    return response


async def metrics_view(datasette, request):
    reports = await build_reports(datasette, request.actor, refresh=_refresh(request))
    openmetrics = metrics.wants_openmetrics(request.headers.get("accept"))
    response = Response.text(metrics.exposition(reports, openmetrics=openmetrics))
    response.content_type = metrics.OPENMETRICS_TYPE if openmetrics else metrics.TEXT_TYPE
    if datasette.cors:
        add_cors_headers(response.headers)
    return response


async def report_page(datasette, request):
    reports = await build_reports(datasette, request.actor, refresh=_refresh(request))
    sections = []
    for db_report in reports:
        _links(datasette, db_report, db_report.timeline)
        db = datasette.databases[db_report.database]
        switched = db_report.check("runtime_switches").items[:SHOWN_TIMELINES]
        timelines = []
        for item in switched:
            rows = await db.execute_fn(lambda conn, c=item["conv_id"]: report.conversation_history(conn, c))
            timelines.append({**item, "svg": charts.timeline_svg(rows)})
        sections.append({
            "report": db_report,
            "coverage_svg": charts.coverage_svg(db_report.coverage),
            "coverage_url": _query_url(datasette, db_report.database, "backfill_coverage"),
            "timelines": timelines,
            "startup_migration_error": startup.migration_not_run(datasette, db_report.database),
        })
    return Response.html(await datasette.render_template(
        "runtime_truth.html",
        {"status": report.overall_status(reports), "sections": sections,
         "json_url": datasette.urls.path(f"{PREFIX}.json")},
        request=request,
    ))


async def conversation_page(datasette, request):
    route = config.database_route(request.url_vars["database"])
    db = next((db for db in datasette.databases.values() if route in (db.route, db.name)), None)
    if db is None:
        raise NotFound(f"Database not found: {route}")
    name = db.name
    await permissions.ensure_view_database(datasette, request.actor, name)
    if db not in await config.turns_databases(datasette):
        raise NotFound(f"{name} is not a turns database")
    await permissions.ensure_view_table(datasette, request.actor, name, "turns")
    conv_id = request.args.get("conv_id", "")
    if not conv_id:
        return Response.text("missing conv_id: add ?conv_id=... to the URL", status=400)
    rows = await db.execute_fn(lambda conn: report.conversation_history(conn, conv_id))
    if not rows:
        raise NotFound(f"conversation not found: {conv_id}")
    switches = charts.switch_positions([row["runtime_key"] for row in rows])
    return Response.html(await datasette.render_template(
        "runtime_truth_conversation.html",
        {"database": name, "conv_id": conv_id, "rows": rows, "switches": len(switches),
         "history_url": _query_url(datasette, name, "runtime_history", conv_id=conv_id),
         "report_url": datasette.urls.path(PREFIX)},
        request=request,
    ))


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

    return {
        "runtime_truth_plugin": True,
        "runtime_truth_timeline": charts.timeline_svg,
        "runtime_truth_db_path": db_path,
    }
