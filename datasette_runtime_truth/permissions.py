"""One permission check for every page and route of the plugin, on both Datasette lines."""

from datasette.utils.asgi import Forbidden

try:  # Datasette 1.0a20+
    from datasette.resources import DatabaseResource
except ImportError:  # Datasette 0.65
    DatabaseResource = None


async def can_view_database(datasette, actor, database):
    """True when ``actor`` may see ``database``: the check Datasette applies to its own pages."""
    try:
        await ensure_view_database(datasette, actor, database)
    except Forbidden:
        return False
    return True


async def ensure_view_database(datasette, actor, database):
    """Raise Forbidden unless ``actor`` may view the instance and ``database``."""
    if DatabaseResource is None:
        await datasette.ensure_permissions(actor, [("view-database", database), "view-instance"])
        return
    await datasette.ensure_permission(action="view-instance", actor=actor)
    await datasette.ensure_permission(
        action="view-database", resource=DatabaseResource(database), actor=actor
    )
