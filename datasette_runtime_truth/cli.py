"""The ``datasette runtime-truth`` command group."""

import contextlib
import json
import sys

import click

from . import migrate as migration
from . import sample


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
