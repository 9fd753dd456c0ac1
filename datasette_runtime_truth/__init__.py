"""datasette-runtime-truth: migrate, validate and inspect per-turn runtime truth in turns.db."""

from datasette import hookimpl

from .web import api, links, pages
from . import commands
from .canned import queries
from .migration import on_startup


@hookimpl
def register_commands(cli):
    commands.register(cli)


@hookimpl
def startup(datasette):
    async def inner():
        await on_startup.run(datasette)
        await queries.register(datasette)

    return inner


@hookimpl
def canned_queries(datasette, database, actor):
    # Datasette 0.65 only; 1.0 has no such hook, so startup registers the queries there.
    return queries.canned_queries(datasette, database, actor)


@hookimpl
def permission_resources_sql(datasette, actor, action):
    # Datasette 1.0 only: its counterpart of the table check canned_queries makes on 0.65.
    async def inner():
        return await queries.denied_query_rules(datasette, actor, action)

    return inner


@hookimpl
def render_cell(datasette, database, column, value):
    return links.render_cell(datasette, database, column, value)


@hookimpl
def database_actions(datasette, actor, database):
    return links.database_actions(datasette, actor, database)


@hookimpl
def register_routes(datasette):
    return pages.routes() + api.routes()


@hookimpl
def menu_links(datasette, actor):
    async def inner():
        return await pages.menu_links(datasette, actor)

    return inner


@hookimpl
def extra_template_vars(datasette):
    return pages.template_vars(datasette)
