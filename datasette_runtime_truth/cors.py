"""CORS headers for the plugin's own routes: Datasette adds them only to its core views."""

from datasette.plugins import pm
from datasette.utils import add_cors_headers, await_me_maybe


def add_cors(datasette, response):
    """``response`` with Datasette's CORS headers when it runs with ``--cors``."""
    if datasette.cors:
        add_cors_headers(response.headers)
    return response


async def forbidden(datasette, request, error):
    """The answer Datasette gives a Forbidden ``error`` (its ``forbidden`` hook: an auth plugin's
    login redirect, else its 403 page), made here so that it can carry the CORS headers, which
    Datasette's own leaves out."""
    for response in pm.hook.forbidden(datasette=datasette, request=request, message=error.args[0]):
        return await await_me_maybe(response)
    raise error
