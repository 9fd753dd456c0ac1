"""CORS headers for the plugin's own routes: Datasette adds them only to its core views."""

from datasette.utils import add_cors_headers


def add_cors(datasette, response):
    """``response`` with Datasette's CORS headers when it runs with ``--cors``."""
    if datasette.cors:
        add_cors_headers(response.headers)
    return response
