"""The ``datasette runtime-truth`` command group."""

import contextlib
import json
import os
import sqlite3
import sys
import time
import urllib.parse

import click

from . import migrate as migration
from . import report as cutover
from . import sample, sqlitefile


def register(cli):
    cli.add_command(runtime_truth)


@click.group(name="runtime-truth")
def runtime_truth():
    """Migrate and inspect a pinocchio web-chat turns.db."""


@runtime_truth.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--turns", "turn_count", type=click.IntRange(min=1), default=2000, show_default=True,
              help="How many turns to write.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same rows.")
@click.option("--shape", type=click.Choice(sample.SHAPES), default="pre-cutover", show_default=True,
              help="pre-cutover: no runtime columns; partial: columns present, newer turns carry values.")
@click.option("--force", is_flag=True, help="Replace turns.db and timeline.db if they exist.")
def demo(directory, turn_count, seed, shape, force):
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


@runtime_truth.command()
@click.argument("path", type=click.Path(dir_okay=True))
@click.option("--dry-run", is_flag=True, help="Write nothing; report what a real run would change.")
@click.option("--rules", type=click.Choice(["canonical", "legacy"]), default="canonical",
              show_default=True, help="Which upstream backfill rules to apply.")
@click.option("--batch-size", type=click.IntRange(min=1), default=migration.DEFAULT_BATCH_SIZE,
              show_default=True, help="Rows per write transaction.")
@click.option("--busy-timeout", "busy_timeout_ms", type=click.IntRange(min=0),
              default=migration.DEFAULT_BUSY_TIMEOUT_MS, show_default=True,
              help="Milliseconds to wait for the write lock before giving up.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def migrate(path, dry_run, rules, batch_size, busy_timeout_ms, as_json):
    """Add runtime_key / inference_id and their indexes to the turns.db at PATH, and backfill them."""
    with _progress_bar() as (on_start, progress):
        try:
            report = migration.migrate_path(
                path, rules=rules, batch_size=batch_size, dry_run=dry_run,
                busy_timeout_ms=busy_timeout_ms, progress=progress, on_start=on_start,
            )
        except migration.MigrationError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(error.exit_code)
    click.echo(json.dumps(report.as_dict()) if as_json else report.text())


@runtime_truth.command()
@click.argument("path", type=click.Path(dir_okay=True))
@click.option("--timeline", "timeline_path", type=click.Path(exists=True, dir_okay=False),
              help="A timeline.db whose conversation pointers to compare with each newest turn.")
@click.option("--rules", type=click.Choice(["canonical", "legacy"]), default="canonical",
              show_default=True, help="The backfill rules a migrate run would use.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def check(path, timeline_path, rules, as_json):
    """Is the turns.db at PATH cut over? Exit 0: every check passes; 1: a check fails;
    2: PATH is not a turns.db."""
    try:
        conn = migration.open_turns_db(path, dry_run=True)
    except migration.MigrationError as error:
        click.echo(f"Error: {error}".replace(" (migrate never creates a database)", ""), err=True)
        sys.exit(2)
    try:
        pointers = _read_pointers(timeline_path) if timeline_path else None
        started = time.time()
        result = cutover.build(conn, os.path.basename(path), path=path, rules=rules,
                               opened="read-only", pointers=pointers, timeline=timeline_path)
    finally:
        conn.close()
    result.computed_at = cutover.iso_utc(started)
    if as_json:
        data = result.as_dict()
        # The URLs the same store has under `datasette PATH`, which names it by its file stem.
        base = "/" + urllib.parse.quote(os.path.splitext(os.path.basename(path))[0])
        for check in data["checks"]:
            check["url"] = f"{base}/{check['query']}" if check["query"] else None
        data["coverage_url"] = f"{base}/backfill_coverage"
        click.echo(json.dumps(data))
    else:
        click.echo(result.text())
    sys.exit(1 if result.status == cutover.FAILS else 0)


def _read_pointers(timeline_path):
    kind = sqlitefile.special_kind(timeline_path)
    if kind:
        raise click.BadParameter(f"{timeline_path} is {kind}, not a timeline.db", param_hint="--timeline")
    uri = f"file:{urllib.parse.quote(os.path.abspath(timeline_path))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            if not cutover.is_timeline_store(conn):
                raise click.BadParameter(f"{timeline_path} has no timeline_conversations table",
                                         param_hint="--timeline")
            return cutover.read_pointers(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise click.BadParameter(f"{timeline_path}: not a readable SQLite database ({error})",
                                 param_hint="--timeline")


@contextlib.contextmanager
def _progress_bar():
    """A backfill progress bar on stderr when it is a terminal; no bar otherwise."""
    if not sys.stderr.isatty():
        yield None, None
        return
    state = {}

    def on_start(total):
        state["bar"] = click.progressbar(length=total, label="backfill", file=sys.stderr)
        state["bar"].__enter__()

    def progress(rows):
        state["bar"].update(rows)

    try:
        yield on_start, progress
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)
