"""datasette-runtime-truth: migrate, validate and inspect per-turn runtime truth in turns.db."""

from datasette import hookimpl

from . import cli as commands
from . import startup as on_startup


@hookimpl
def register_commands(cli):
    commands.register(cli)


@hookimpl
def startup(datasette):
    async def inner():
        await on_startup.run(datasette)

    return inner
