"""What the plugin does when Datasette starts: check turns databases, migrate them if asked."""

import sys

from . import config, migrate, schema


async def run(datasette):
    databases = await config.turns_databases(datasette)
    settings = config.plugin_config(datasette)
    migrated = False
    for db in databases:
        # Indexes are created last, so a complete schema also means a completed backfill pass.
        if not await db.execute_fn(schema.needs_schema_migration):
            continue
        if not settings.get("migrate_on_startup"):
            _log(f"{db.name} needs the runtime-truth migration: run "
                 f"`datasette runtime-truth migrate {db.path or db.name}`")
        elif not db.is_mutable:
            _log(f"{db.name} is immutable, so migrate_on_startup skips it; serve it mutable "
                 f"or run `datasette runtime-truth migrate {db.path}`")
        else:
            report = await migrate.migrate_database(db, rules=settings.get("rules", "canonical"))
            _log(f"{db.name}: migrated ({report.runtime_key_filled:,} runtime_key and "
                 f"{report.inference_id_filled:,} inference_id filled, "
                 f"{report.skipped_bad_metadata:,} rows skipped for bad metadata)")
            migrated = True
    if migrated:
        await datasette.refresh_schemas()


def _log(message):
    print(f"datasette-runtime-truth: {message}", file=sys.stderr, flush=True)
