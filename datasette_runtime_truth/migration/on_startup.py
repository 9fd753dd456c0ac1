"""What the plugin does when Datasette starts: check turns databases, migrate them if asked.

Startup never dies for the plugin: a migration that cannot run (a busy lock, a bad row, any error)
is logged in one line and remembered per database, so the cutover report can say why, and
Datasette serves the store as it is.
"""

import sys
from typing import TYPE_CHECKING, Optional
import weakref

from .. import config
from . import apply
from ..upstream import schema

if TYPE_CHECKING:
    from datasette.app import Datasette
    from datasette.database import Database

# Per Datasette instance: {database name: why migrate_on_startup did not migrate it}.
_not_migrated: "weakref.WeakKeyDictionary[Datasette, dict[str, str]]" = weakref.WeakKeyDictionary()


def migration_not_run(datasette: "Datasette", database: str) -> Optional[str]:
    """Why ``migrate_on_startup`` did not migrate ``database`` on this instance, or None."""
    return _not_migrated.get(datasette, {}).get(database)


async def run(datasette: "Datasette") -> None:
    config.check(datasette)
    config.check_attached(datasette)
    databases = await config.turns_databases(datasette)
    await _name_what_is_left_alone(datasette, databases)
    not_migrated = _not_migrated.setdefault(datasette, {})
    migrated = False
    for db in databases:
        if not await config.holds_turns(db):
            continue
        # Indexes are created last, so a complete schema also means a completed backfill pass.
        if not await db.execute_fn(schema.needs_schema_migration):
            continue
        if not config.setting(datasette, "migrate_on_startup"):
            _log(f"{db.name} needs the runtime-truth migration: run "
                 f"`datasette runtime-truth migrate {db.path or db.name}`")
        elif not db.is_mutable:
            not_migrated[db.name] = "the database is immutable (opened with -i)"
            _log(f"{db.name} is immutable, so migrate_on_startup skips it; serve it mutable "
                 f"or run `datasette runtime-truth migrate {db.path}`")
        else:
            try:
                report = await apply.migrate_database(db, rules=config.setting(datasette, "rules"))
            except Exception as error:  # noqa: BLE001 - startup must survive any migration failure
                reason = _one_line(error)
                not_migrated[db.name] = reason
                migrated = True  # a failed run may still have changed the schema
                _log(f"{db.name}: migrate_on_startup did not run ({reason}); serving it as it is: "
                     f"run `datasette runtime-truth migrate {db.path}`")
                continue
            _log(f"{db.name}: migrated ({report.runtime_key_filled:,} runtime_key and "
                 f"{report.inference_id_filled:,} inference_id filled, "
                 f"{report.skipped_bad_metadata:,} rows skipped for bad metadata{_unwritable(report)})")
            migrated = True
    if migrated:
        await datasette.refresh_schemas()


async def _name_what_is_left_alone(datasette: "Datasette", databases: list["Database"]) -> None:
    """Log once each attached database whose turns table is not the upstream's, and each
    configured one that has no turns table yet."""
    for name, db in datasette.databases.items():
        if name.startswith("_"):
            continue
        problem = await config.turns_problem(db)
        if problem == schema.NO_TURNS_TABLE and db in databases:
            _log(f"{name} has no turns table yet: nothing to check or migrate until the chat "
                 "server creates it")
        elif problem and problem != schema.NO_TURNS_TABLE:
            _log(f"{name} is not a turns.db ({problem}): the plugin leaves it alone")


def _unwritable(report: apply.Report) -> str:
    if not report.skipped_unwritable:
        return ""
    return f", {report.skipped_unwritable:,} that cannot be written: {' '.join(report.unwritable_error.split())}"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _log(message: str) -> None:
    print(f"datasette-runtime-truth: {message}", file=sys.stderr, flush=True)
