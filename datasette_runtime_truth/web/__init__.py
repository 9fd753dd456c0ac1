"""What Datasette serves: the /api/debug/* and /api/timeline routes, the report pages,
links, permissions, CORS, charts, and the payload worker processes."""
