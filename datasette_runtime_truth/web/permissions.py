"""The permission checks of every page and route of the plugin, on both Datasette lines.

Each view asks the same questions Datasette's own pages ask before showing data: may the actor
view the instance and the database, and each table it reads (``view-table``); a canned query's
``view-query`` stays Datasette's own check. 0.65 answers through ``ensure_permissions``; 1.0 through
``ensure_permission`` and ``allowed_resources`` with resource objects.
"""

from typing import TYPE_CHECKING, Any, Awaitable, Iterable, Optional

from datasette.utils.asgi import Forbidden

from ..upstream import schema

if TYPE_CHECKING:
    from datasette.app import Datasette

Actor = Optional[dict[str, Any]]

try:  # Datasette 1.0a20+
    from datasette.resources import DatabaseResource, TableResource
except ImportError:  # Datasette 0.65
    DatabaseResource = TableResource = None


async def can_view_database(datasette: "Datasette", actor: Actor, database: str) -> bool:
    """True when ``actor`` may see ``database``: the check Datasette applies to its own pages."""
    return await _allowed(ensure_view_database(datasette, actor, database))


async def ensure_view_database(datasette: "Datasette", actor: Actor, database: str) -> None:
    """Raise Forbidden unless ``actor`` may view the instance and ``database``."""
    if DatabaseResource is None:
        await datasette.ensure_permissions(actor, [("view-database", database), "view-instance"])
        return
    await datasette.ensure_permission(action="view-instance", actor=actor)
    await datasette.ensure_permission(
        action="view-database", resource=DatabaseResource(database), actor=actor
    )


async def can_view_table(datasette: "Datasette", actor: Actor, database: str, table: str) -> bool:
    """True when ``actor`` may see ``table`` of ``database``, as on Datasette's table page."""
    return await _allowed(ensure_view_table(datasette, actor, database, table))


async def ensure_view_table(datasette: "Datasette", actor: Actor, database: str, table: str) -> None:
    """Raise Forbidden unless ``actor`` may view the instance, ``database`` and its ``table``."""
    if TableResource is None:
        await datasette.ensure_permissions(
            actor, [("view-table", (database, table)), ("view-database", database), "view-instance"]
        )
        return
    await ensure_view_database(datasette, actor, database)
    if await forbidden_tables(datasette, actor, database, [table], database_checked=True):
        raise Forbidden(f"view-table {database}/{table}")


async def forbidden_tables(datasette: "Datasette", actor: Actor, database: str, tables: Iterable[str],
                           database_checked: bool = False) -> list[str]:
    """The tables of ``tables`` (in order) that ``actor`` may not view. On 1.0 the instance and the
    database are asked once (not at all when the caller has just done so: ``database_checked``),
    then the tables in one query, each under the name the database stores it by (a ``Turns`` table
    is the ``turns`` the plugin reads, and the operator's rules name it ``Turns``); 0.65 asks all
    three together for each table, as its pages do."""
    if TableResource is None:
        return [table for table in tables
                if not await can_view_table(datasette, actor, database, table)]
    if not database_checked and not await can_view_database(datasette, actor, database):
        return list(tables)
    visible: set[str] = set()
    page = await datasette.allowed_resources("view-table", actor, parent=database, limit=1000)
    while True:
        visible.update(schema.name_key(resource.child) for resource in page.resources)
        if page.next is None:
            break
        page = await datasette.allowed_resources("view-table", actor, parent=database, limit=1000,
                                                 next=page.next)
    hidden = [table for table in tables if schema.name_key(table) not in visible]
    if not hidden:
        return []
    # allowed_resources lists only tables that exist: one not created yet is asked of by name.
    existing = {schema.name_key(name) for name in await datasette.get_database(database).table_names()}
    return [table for table in hidden if schema.name_key(table) in existing or not await _allowed(
        datasette.ensure_permission(action="view-table", resource=TableResource(database, table), actor=actor))]


async def _allowed(check: Awaitable[None]) -> bool:
    try:
        await check
    except Forbidden:
        return False
    return True
