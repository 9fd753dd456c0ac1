"""The plugin's one view wrapper: GET, HEAD, OPTIONS, 405 and CORS for every route and page.

Shaped like Datasette 1.0's ``View`` (``datasette/views/base.py``), which 0.65 lacks: ``get``
answers, ``head`` is that answer without its body, ``options`` a CORS preflight's ``ok``, and
``method_not_allowed`` any method not in ``methods``. Subclasses say how errors look: the API's
as the upstream's JSON, the pages' through Datasette's own HTML or JSON error pages.
"""

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from datasette.database import QueryInterrupted
from datasette.utils import add_cors_headers, await_me_maybe, tilde_decode
from datasette.utils.asgi import Base400, Forbidden, Response

if TYPE_CHECKING:
    from datasette.app import Datasette
    from datasette.database import Database
    from datasette.utils.asgi import Request

Handler = Callable[["Datasette", "Request"], Awaitable[Response]]


def add_cors(datasette: "Datasette", response: Response) -> Response:
    """``response`` with Datasette's CORS headers when it runs with ``--cors`` (Datasette adds
    them only to its core views)."""
    if datasette.cors:
        add_cors_headers(response.headers)
    return response


def database_route(segment: str) -> str:
    """The database route a URL path segment names, decoded as Datasette decodes it: tilde-encoding
    (``my~20turns``), and a percent-encoded segment (``my%20turns``) read as Datasette's 404
    handler reads it, ``%`` as ``~`` and ``~`` as ``~7E``, before its redirect."""
    if "%" in segment:
        segment = segment.replace("~", "~7E").replace("%", "~")
    return tilde_decode(segment)


def database_named(datasette: "Datasette", segment: str) -> tuple[str, Optional["Database"]]:
    """``(name, database)``: the name a URL's ``{database}`` segment gives, and the attached
    database of that name or route (None when there is none). Each route then says which
    databases it serves, and its own 404 for the rest."""
    name = database_route(segment)
    found = next((db for db in datasette.databases.values()
                  if name in (db.name, getattr(db, "route", db.name))), None)
    return name, found


class View:
    """One route: ``handler(datasette, request)`` answers GET; ``methods`` are the ones it takes
    (OPTIONS among them for a route a browser may preflight)."""

    def __init__(self, handler: Handler, methods: tuple[str, ...] = ("GET", "HEAD")) -> None:
        self.handler = handler
        self.methods = methods

    def as_route(self) -> Any:
        """The plain function ``register_routes`` takes (Datasette wraps functions and classes only)."""

        async def route(datasette: "Datasette", request: "Request") -> Response:
            return add_cors(datasette, await self.dispatch(datasette, request))

        route.__name__ = self.handler.__name__
        return route

    async def dispatch(self, datasette: "Datasette", request: "Request") -> Response:
        """The answer to this request's method; for HEAD, its headers only."""
        if request.method not in self.methods:
            response = self.method_not_allowed()
            response.headers["Allow"] = ", ".join(self.methods)
        elif request.method == "OPTIONS":
            response = self.options()
        else:
            response = await self.get(datasette, request)
        return self.head(response) if request.method == "HEAD" else with_length(response)

    async def get(self, datasette: "Datasette", request: "Request") -> Response:
        return await self.handler(datasette, request)

    @staticmethod
    def head(response: Response) -> Response:
        """The answer's headers only."""
        response.body = b""
        if getattr(response, "rest", None) is not None:
            response.rest = None
        return response

    def options(self) -> Response:
        """A CORS preflight: Datasette's own views answer it ``ok``."""
        return Response.text("ok", headers={"Allow": ", ".join(self.methods)})

    def method_not_allowed(self) -> Response:
        return Response.text("Method not allowed", status=405)


def with_length(response: Response) -> Response:
    """A whole body with its Content-Length: a known length spares a large answer the chunked
    encoding of a pure-Python server. A streamed one (``rest``) goes chunked."""
    if getattr(response, "rest", None) is None:
        body = response.body
        response.headers["content-length"] = str(len(body.encode() if isinstance(body, str) else body))
    return response


def time_limit_message(datasette: "Datasette") -> str:
    """What a 503 says when a query ran past Datasette's ``sql_time_limit_ms``."""
    return (f"the query took longer than sql_time_limit_ms ({datasette.sql_time_limit_ms} ms): "
            "raise it with --setting sql_time_limit_ms N")


class TooSlow(Base400):
    """A query ran past ``sql_time_limit_ms``: rendered by Datasette, HTML or JSON, as a 503."""

    status = 503


class PageView(View):
    """A page (or its ``.json`` / ``.csv``): errors are Datasette's exceptions, which Datasette
    renders as its own HTML or JSON error pages."""

    async def get(self, datasette: "Datasette", request: "Request") -> Response:
        try:
            return await self.handler(datasette, request)
        except QueryInterrupted:
            raise TooSlow(time_limit_message(datasette)) from None
        except Forbidden as error:
            return await forbidden(datasette, request, error)


async def forbidden(datasette: "Datasette", request: "Request", error: Forbidden) -> Response:
    """The answer Datasette gives a Forbidden ``error`` (its ``forbidden`` hook: an auth plugin's
    login redirect, else its 403 page), made here so that it can carry the CORS headers, which
    Datasette's own leaves out."""
    # Imported here: datasette.plugins loads every plugin, this package among them, on import.
    from datasette.plugins import pm

    for response in pm.hook.forbidden(datasette=datasette, request=request, message=error.args[0]):
        return await await_me_maybe(response)
    raise error


def page(handler: Handler) -> Any:
    """``register_routes``' function for a page that answers GET and HEAD."""
    return PageView(handler).as_route()
