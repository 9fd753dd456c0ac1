"""datasette-runtime-truth: migrate, validate and inspect per-turn runtime truth in turns.db."""

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

import click
from datasette import hookimpl

from .web import api, links, pages
from . import commands
from .canned import queries
from .migration import on_startup

if TYPE_CHECKING:
    from datasette.app import Datasette


@hookimpl
def register_commands(cli: click.Group) -> None:
    commands.register(cli)


@hookimpl
def startup(datasette: "Datasette") -> Callable[[], Awaitable[None]]:
    async def inner() -> None:
        await on_startup.run(datasette)
        await queries.register(datasette)

    return inner


@hookimpl
def canned_queries(datasette: "Datasette", database: str, actor: Optional[dict[str, Any]]
                   ) -> Awaitable[dict[str, dict[str, Any]]]:
    # Datasette 0.65 only; 1.0 has no such hook, so startup registers the queries there.
    return queries.canned_queries(datasette, database, actor)


@hookimpl
def permission_resources_sql(datasette: "Datasette", actor: Optional[dict[str, Any]], action: str
                             ) -> Callable[[], Awaitable[Any]]:
    # Datasette 1.0 only: its counterpart of the table check canned_queries makes on 0.65.
    async def inner() -> Any:
        return await queries.denied_query_rules(datasette, actor, action)

    return inner


@hookimpl
def render_cell(datasette: "Datasette", database: str, column: str, value: Any) -> Awaitable[Any]:
    return links.render_cell(datasette, database, column, value)


@hookimpl
def database_actions(datasette: "Datasette", actor: Optional[dict[str, Any]], database: str
                     ) -> Awaitable[Any]:
    return links.database_actions(datasette, actor, database)


@hookimpl
def register_routes(datasette: "Datasette") -> list[tuple[str, Any]]:
    return pages.routes() + api.routes()


@hookimpl
def menu_links(datasette: "Datasette", actor: Optional[dict[str, Any]]
               ) -> Callable[[], Awaitable[list[dict[str, str]]]]:
    async def inner() -> list[dict[str, str]]:
        return await pages.menu_links(datasette, actor)

    return inner


@hookimpl
def extra_template_vars(datasette: "Datasette") -> dict[str, Any]:
    return pages.template_vars(datasette)
