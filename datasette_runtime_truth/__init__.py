"""datasette-runtime-truth: migrate, validate and inspect per-turn runtime truth in turns.db."""

from datasette import hookimpl

from . import cli as commands
from . import pages as report_pages
from . import startup as on_startup


@hookimpl
def register_commands(cli):
    commands.register(cli)


@hookimpl
def startup(datasette):
    async def inner():
        await on_startup.run(datasette)

    return inner


@hookimpl
def register_routes(datasette):
    return report_pages.routes()


@hookimpl
def menu_links(datasette, actor):
    async def inner():
        return await report_pages.menu_links(datasette, actor)

    return inner


@hookimpl
def extra_template_vars():
    return report_pages.template_vars()
