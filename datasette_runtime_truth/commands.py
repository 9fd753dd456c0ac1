"""The ``datasette runtime-truth`` command group."""

from concurrent.futures import ThreadPoolExecutor
import contextlib
import dataclasses
import json
import pathlib
import sys
import time
from typing import TYPE_CHECKING, Any, Optional, Union

import click

from .report import checks, metrics
from .migration import apply
from . import config, sample
from .storage import timeline_store
from .upstream import backfill
from .web import report_view

if TYPE_CHECKING:
    from datasette.app import Datasette


class CommandError(click.ClickException):
    """``Error: message`` on stderr and the given exit code, the click way."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it a ClassVar; the code is per error


Outcome = Union[checks.DatabaseReport, CommandError]


def register(cli: click.Group) -> None:
    cli.add_command(runtime_truth)


@click.group(name="runtime-truth")
def runtime_truth() -> None:
    """Migrate and inspect a pinocchio web-chat turns.db."""


@runtime_truth.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--turns", "turn_count", type=click.IntRange(min=1), default=2000, show_default=True,
              help="How many turns to write.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same rows.")
@click.option("--shape", type=click.Choice(sample.SHAPES), default="pre-cutover", show_default=True,
              help="pre-cutover: no runtime columns; partial: columns present, newer turns carry values.")
@click.option("--force", is_flag=True, help="Replace turns.db and timeline.db if they exist.")
def demo(directory: str, turn_count: int, seed: int, shape: str, force: bool) -> None:
    """Write a sample turns.db and timeline.db into DIRECTORY."""
    try:
        summary = sample.build(directory, turns=turn_count, seed=seed, shape=shape, force=force)
    except sample.SampleExists as error:
        raise click.ClickException(str(error))
    click.echo(
        f"wrote {summary.turns_path} ({shape}: {summary.conversations:,} conversations, "
        f"{summary.turns:,} turns, {summary.snapshots:,} snapshots, {summary.blocks:,} blocks) "
        f"and {summary.timeline_path}"
    )


@runtime_truth.command(name="bundle")
@click.argument("directory", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a file is missing or stale.")
@click.option("--force", is_flag=True, help="Replace files there that this command did not write.")
def write_bundle(directory: pathlib.Path, check: bool, force: bool) -> None:
    """Write the canned queries for Datasette without the plugin into DIRECTORY: metadata.yml
    (0.65), datasette.yaml (1.0) and templates/ (then: datasette turns.db -m DIRECTORY/metadata.yml
    --template-dir DIRECTORY/templates). Files there that it did not write are kept unless
    --force."""
    # Imported here: `python -m datasette_runtime_truth.canned.bundle` runs that module as __main__.
    from .canned import bundle

    files = bundle.bundle_files(directory)
    if check:
        stale = bundle.stale_files(files)
        if stale:
            raise CommandError("stale: " + ", ".join(stale) + f"; run `datasette runtime-truth bundle {directory}`")
        click.echo(f"{directory}: the bundle is up to date")
        return
    problem = bundle.conflict(files, force)
    if problem:
        raise CommandError(problem)
    try:
        written = bundle.write(files)
    except OSError as error:
        raise CommandError(f"{error.filename}: {error.strerror}") from None
    for path in written:
        click.echo(f"wrote {path}")


@runtime_truth.command()
@click.argument("path", type=click.Path(path_type=str))
@click.option("--dry-run", is_flag=True, help="Write nothing; report what a real run would change.")
@click.option("--rules", type=click.Choice(backfill.RULES), default=config.DEFAULT_RULES,
              show_default=True, help="Which upstream backfill rules to apply.")
@click.option("--batch-size", type=click.IntRange(min=1), default=apply.DEFAULT_BATCH_SIZE,
              show_default=True, help="Rows per write transaction.")
@click.option("--busy-timeout", "busy_timeout_ms",
              type=click.IntRange(min=0, max=apply.MAX_BUSY_TIMEOUT_MS),
              default=apply.DEFAULT_BUSY_TIMEOUT_MS, show_default=True,
              help="Milliseconds to wait for the write lock before giving up.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def migrate(path: str, dry_run: bool, rules: str, batch_size: int, busy_timeout_ms: int, as_json: bool) -> None:
    """Add runtime_key / inference_id and their indexes to the turns.db at PATH, and backfill them.

    PATH is checked before anything opens it: missing, a directory, a FIFO or device, not SQLite,
    truncated or read-only exits 1; an empty file or one without a turns table exits 2."""
    with contextlib.ExitStack() as stack:
        bar: dict[str, Any] = {}

        def on_start(total: int) -> None:
            if sys.stderr.isatty():  # a progress bar on a terminal; nothing in a pipe or a log
                bar["bar"] = stack.enter_context(
                    click.progressbar(length=total, label="backfill", file=sys.stderr))

        def progress(rows: int) -> None:
            if bar:
                bar["bar"].update(rows)

        try:
            report = apply.migrate_path(
                path, rules=rules, batch_size=batch_size, dry_run=dry_run,
                busy_timeout_ms=busy_timeout_ms, progress=progress, on_start=on_start,
            )
        except apply.MigrationError as error:
            raise CommandError(str(error), error.exit_code) from None
    click.echo(json.dumps(report.as_dict()) if as_json else migration_text(report))


@runtime_truth.command(name="alert-rules")
def alert_rules() -> None:
    """Print the Prometheus alerting rules for /-/runtime-truth/metrics (a rules file)."""
    click.echo(metrics.ALERT_RULES.read_text(), nl=False)


CHECK_WORKERS = 8  # files checked at once: SQLite reads release the GIL, the backfill scan does not


@runtime_truth.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--timeline", "timeline_path", type=click.Path(exists=True, dir_okay=False),
              help="A timeline.db whose conversation pointers to compare with each newest turn.")
@click.option("--rules", type=click.Choice(backfill.RULES), default=config.DEFAULT_RULES,
              show_default=True, help="The backfill rules a migrate run would use.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report JSON of /-/runtime-truth.json: one object, a database per PATH.")
def check(paths: tuple[str, ...], timeline_path: Optional[str], rules: str, as_json: bool) -> None:
    """Are the turns.db files at PATHS cut over? Checked concurrently, read-only. One PATH prints
    its report; several print one line each. Exit with the worst: 0 every check passes; 1 a check
    fails; 2 a PATH is not a turns.db."""
    pointers = _read_pointers(timeline_path) if timeline_path else None
    served = _served(paths + ((timeline_path,) if timeline_path else ()))
    names = {db.path: db.name for db in served.databases.values()}
    timeline_name = names.get(timeline_path)
    with ThreadPoolExecutor(max_workers=min(len(paths), CHECK_WORKERS)) as pool:
        outcomes = list(pool.map(
            lambda path: _check_one(path, names[path], rules, pointers, timeline_name), paths))
    reports = [outcome for outcome in outcomes if isinstance(outcome, checks.DatabaseReport)]
    if as_json:
        for error in outcomes:
            if isinstance(error, CommandError):
                click.echo(f"Error: {error.message}", err=True)
        click.echo(json.dumps(report_view.report_body(served, reports)))
    elif len(outcomes) == 1:
        if isinstance(outcomes[0], CommandError):
            raise outcomes[0]
        click.echo(report_text(outcomes[0]))
    else:
        for outcome in outcomes:
            click.echo(outcome.message if isinstance(outcome, CommandError) else summary(outcome))
    click.get_current_context().exit(max(map(_exit_code, outcomes)))


def _served(paths: tuple[str, ...]) -> "Datasette":
    """A Datasette over ``paths``, never started: it names each file as ``datasette PATHS`` does
    and builds its URLs."""
    from datasette.app import Datasette  # imported here: datasette.app loads this plugin

    return Datasette(list(paths))


def _check_one(path: str, name: str, rules: str, pointers: Optional[dict[str, Any]],
               timeline_name: Optional[str]) -> Outcome:
    """The DatabaseReport of the turns.db at ``path``, or the CommandError (exit 2) saying why
    it is not one."""
    try:
        conn = apply.open_turns_db(path, dry_run=True)
    except apply.NoSuchFile:
        return CommandError(f"{path}: no such file", 2)
    except apply.MigrationError as error:
        return CommandError(str(error), 2)
    try:
        started = time.time()
        result = checks.build(conn, name, path=path, rules=rules, opened="read-only",
                               pointers=pointers, timeline=timeline_name)
    finally:
        conn.close()
    return dataclasses.replace(result, computed_at_ms=int(started * 1000))


def _exit_code(outcome: Outcome) -> int:
    if isinstance(outcome, CommandError):
        return outcome.exit_code
    return 1 if outcome.status == checks.FAILS else 0


def _read_pointers(timeline_path: str) -> dict[str, Any]:
    try:
        return timeline_store.read_pointers_from_file(timeline_path)
    except timeline_store.NotATimelineStore as error:
        raise click.BadParameter(str(error), param_hint="--timeline") from None


# --- what the commands print --------------------------------------------------------------------

def migration_text(result: apply.Report) -> str:
    """A migrate run's report (a migrate.Report) as ``migrate`` prints it."""
    rules = f"with the {result.rules} rules"
    if result.dry_run:
        outcome = "a real run would change:" if result.changed else "a real run would change nothing"
        headline = f"dry run {rules}, nothing written; {outcome}"
    else:
        headline = f"migrated {rules}" if result.changed else f"already migrated {rules}; nothing changed"
    lines = [f"{result.database}: {headline}"]
    rows = _migration_rows(result)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        shown = f"{value:,}" if isinstance(value, int) else value
        lines.append(f"  {label + ':':<{width + 1}} {shown}")
    return "\n".join(lines)


def _migration_rows(result: apply.Report) -> list[tuple[str, Union[int, str]]]:
    """(label, value) of each figure ``migrate`` prints; the rare ones only when not zero."""
    verb = "to add" if result.dry_run else "added"
    rows: list[tuple[str, Union[int, str]]] = [
        (f"columns {verb}", ", ".join(result.columns_added) or "none"),
        (f"indexes {'to create' if result.dry_run else 'created'}", ", ".join(result.indexes_created) or "none"),
        ("rows scanned", result.rows_scanned),
        (f"rows {'to write' if result.dry_run else 'written'}", result.rows_written),
        ("runtime_key filled", result.runtime_key_filled),
        ("inference_id filled", result.inference_id_filled),
    ]
    rows += [(label, value) for label, value in (
        ("values trimmed", result.values_trimmed),
        ("turn_created_at_ms copied", result.turn_created_at_ms_copied),
        ("updated_at_ms filled", result.updated_at_ms_filled)) if value]
    rows += [
        ("still missing runtime_key", result.missing_runtime_key),
        ("still missing inference_id", result.missing_inference_id),
        ("skipped, bad metadata", result.skipped_bad_metadata),
    ]
    if result.skipped_unwritable:
        rows.append(("skipped, cannot write", f"{result.skipped_unwritable:,} ({result.unwritable_error})"))
    if result.journal_mode:
        rows.append(("journal mode", result.journal_mode))
    return rows


def headline(db_report: checks.DatabaseReport) -> str:
    """``turns.db: FAILS (3 of 9 checks fail)``, or why there is nothing to check."""
    if db_report.problem:
        return f"{db_report.path or db_report.database}: {db_report.status} ({db_report.problem})"
    failed = len(db_report.failures)
    verdict = (f"FAILS ({failed} of {len(db_report.checks)} checks fail)" if failed
               else f"PASSES (all {len(db_report.checks)} checks pass or are information)")
    return f"{db_report.path or db_report.database}: {verdict}"


def summary(db_report: checks.DatabaseReport) -> str:
    """The headline and the failing checks' ids: ``check``'s one line for a file among several."""
    failing = ", ".join(check.id for check in db_report.failures)
    return headline(db_report) + (f": {failing}" if failing else "")


def report_text(db_report: checks.DatabaseReport) -> str:
    """One database's cutover report as ``check`` prints it."""
    if db_report.problem:
        return headline(db_report)
    lines = [headline(db_report)]
    width = max(len(check.title) for check in db_report.checks)
    for check in db_report.checks:
        see = f"  [{check.query}]" if check.query else ""
        lines.append(f"  {check.status:<4}  {check.title:<{width}}  {check.figure}{see}")
        for item in check.items[:5]:
            lines.append(f"{'':<{width + 10}}  - {_describe_item(item)}")
        if len(check.items) > 5:
            lines.append(f"{'':<{width + 10}}  - ... ({check.value:,} in all)")
    return "\n".join(lines)


def _describe_item(item: dict[str, Any]) -> str:
    if "switches" in item:
        return f"{item['conv_id']}: {item['switches']} switch{'es' if item['switches'] != 1 else ''}"
    return (f"{item['conv_id']}: pointer {item['pointer']!r}, "
            f"newest turn's runtime_key {item['newest_runtime_key']!r}")
