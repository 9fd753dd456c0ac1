"""The cutover report as one request shows it: each check with its links, built per request
beside the cached report, which stays untouched (no web state on the domain objects).

The report page renders a :class:`DatabaseView` per database; ``/-/runtime-truth.json`` and
``check --json`` serialise the same views (:func:`report_body`), so the links agree.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from .. import times
from ..canned import queries
from ..migration import on_startup
from ..report import checks
from . import links

if TYPE_CHECKING:
    from datasette.app import Datasette


@dataclass(frozen=True)
class CheckView:
    """One check and where it leads: ``url`` (its rows, ``link_label`` naming them), or a
    ``note`` saying why its query cannot run yet; ``all_url`` (every listed item); ``items``,
    each listed conversation with its history and timeline."""

    check: checks.Check
    url: Optional[str]
    link_label: Optional[str]
    note: Optional[str]
    all_url: Optional[str]
    items: list


@dataclass(frozen=True)
class DatabaseView:
    """One database's report and its links, for one request."""

    report: checks.DatabaseReport
    checks: list
    coverage_url: Optional[str]
    preview_url: Optional[str]
    startup_migration_error: Optional[str]

    @property
    def migrated(self) -> bool:
        return self.report.migrated

    @property
    def computed_at(self) -> Optional[str]:
        """When the figures were computed, ISO 8601 UTC."""
        return times.iso(self.report.computed_at_ms)

    @property
    def computed_text(self) -> Optional[str]:
        return times.utc(self.report.computed_at_ms)


def database_view(datasette: "Datasette", db_report: checks.DatabaseReport) -> DatabaseView:
    name = db_report.database
    return DatabaseView(
        report=db_report,
        checks=[_check_view(datasette, db_report, check) for check in db_report.checks],
        coverage_url=(links.query_url(datasette, name, "backfill_coverage")
                      if db_report.migrated else None),
        preview_url=None if db_report.problem else links.plugin_url(datasette, name, "preview"),
        startup_migration_error=on_startup.migration_not_run(datasette, name),
    )


def _check_view(datasette: "Datasette", db_report: checks.DatabaseReport, check: checks.Check) -> CheckView:
    """Each check's rows link (the rows its figure counts: for the backfill figures, the
    migration preview filtered to them; a query that cannot run yet is replaced by a note), its
    complete list, and each listed conversation's history and timeline."""
    name, migrated = db_report.database, db_report.migrated
    query = queries.BY_NAME.get(check.query) if check.query is not None else None
    url, label, note, all_url = None, check.query, None, None
    if check.id in links.FIGURE_ROWS:
        url, label = datasette.urls.path(links.figure_rows_path(name, check.id)), "rows"
    elif query is not None and (migrated or not query.needs):
        url = links.query_url(datasette, name, query.name)
    elif query is not None:
        note = f"{check.query} runs once the store is migrated"
    if check.id == "pointer" and check.value is not None:
        url = all_url = links.plugin_url(datasette, name, "pointers")
        label = "all mismatches"
    if check.id == "runtime_switches" and migrated:
        all_url = links.plugin_url(datasette, name, "switches")
    items = [{**item, **links.conversation_links(datasette, name, item["conv_id"])}
             for item in check.items]
    return CheckView(check, url, label, note, all_url, items)


def report_body(datasette: "Datasette", reports: list[checks.DatabaseReport]) -> dict[str, Any]:
    """The report JSON (``/-/runtime-truth.json``, ``check --json``): the format version, the
    overall status, and one object per database with its links as ``datasette`` serves them."""
    return {"format_version": checks.FORMAT_VERSION, "status": checks.overall_status(reports),
            "databases": [_database_body(database_view(datasette, db_report)) for db_report in reports]}


def _database_body(view: DatabaseView) -> dict[str, Any]:
    data = view.report.as_dict()
    data["checks"] = [{**check_data, "items": check.items, "url": check.url, "all_url": check.all_url}
                      for check, check_data in zip(view.checks, data["checks"])]
    data["coverage_url"] = view.coverage_url
    data["preview_url"] = view.preview_url
    data["startup_migration_error"] = view.startup_migration_error
    return data
