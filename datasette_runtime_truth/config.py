"""Plugin configuration: which attached databases are turns databases, and what to do with them."""

from datasette.utils import tilde_decode

PLUGIN = "datasette-runtime-truth"


# The debug routes' big answers (README, "Big turns"). Building takes up to about 9 bytes of
# memory per character of JSON counted (benchmarks/payloadmemory.py), so the limit keeps one build
# under about 580 MB, and payload_workers of them at once.
DEFAULT_MAX_PAYLOAD_CHARS = 64_000_000
DEFAULT_PAYLOAD_WORKERS = 1
DEFAULT_PAYLOAD_PROCESS_CHARS = 500_000


def plugin_config(datasette):
    return datasette.plugin_config(PLUGIN) or {}


def max_payload_chars(datasette):
    """Characters of JSON one debug answer may be built from; past it, a 413."""
    return plugin_config(datasette).get("max_payload_chars", DEFAULT_MAX_PAYLOAD_CHARS)


def payload_workers(datasette):
    """How many worker processes build big debug answers (0: none, all in threads)."""
    return plugin_config(datasette).get("payload_workers", DEFAULT_PAYLOAD_WORKERS)


def payload_process_chars(datasette):
    """The size from which a debug answer is built in a worker process."""
    return plugin_config(datasette).get("payload_process_chars", DEFAULT_PAYLOAD_PROCESS_CHARS)


def configured_names(datasette):
    """The ``database`` setting as a list of names, or None when it is not set."""
    names = plugin_config(datasette).get("database")
    if names is None:
        return None
    return [names] if isinstance(names, str) else list(names)


async def turns_databases(datasette):
    """The attached databases that hold turns: the configured ones, else every one with a
    ``turns`` table (Datasette's internal database excluded)."""
    names = configured_names(datasette)
    if names is not None:
        unknown = [name for name in names if name not in datasette.databases]
        if unknown:
            attached = sorted(name for name in datasette.databases if not name.startswith("_"))
            raise ValueError(
                f"{PLUGIN}: database {', '.join(map(repr, unknown))} is not attached; "
                f"attached: {', '.join(attached) or 'none'}"
            )
        return [datasette.databases[name] for name in names]
    found = []
    for name, db in datasette.databases.items():
        if name.startswith("_"):
            continue
        if await db.table_exists("turns"):
            found.append(db)
    return found


async def is_turns_database(datasette, name):
    """True when ``name`` is one of the plugin's turns databases (see turns_databases)."""
    names = configured_names(datasette)
    if names is not None:
        return name in names
    if name.startswith("_") or name not in datasette.databases:
        return False
    return await datasette.databases[name].table_exists("turns")


def database_route(segment):
    """The database route a URL path segment names, decoded as Datasette decodes it: tilde-encoding
    (``my~20turns``), and a percent-encoded segment (``my%20turns``) read as Datasette's 404
    handler reads it, ``%`` as ``~`` and ``~`` as ``~7E``, before its redirect."""
    if "%" in segment:
        segment = segment.replace("~", "~7E").replace("%", "~")
    return tilde_decode(segment)
