"""What the test modules share: the one Datasette-line flag, the one place settings go where the
installed line reads them, and fixtures.

``ds`` serves the upstream debug-API scenarios (api_helpers.build_turns_db, with and without a
timeline store) read-only, built once per module: every test that takes it only reads.
"""

from datasette.version import __version__
import pytest

ON_065 = __version__.startswith("0.")


def line_config(settings):
    """Datasette() keyword arguments putting ``settings`` (allow blocks, databases, queries) where
    the installed line reads them: ``metadata`` on 0.65, ``config`` on 1.0."""
    return {"metadata" if ON_065 else "config": settings}


@pytest.fixture(scope="module", params=["with timeline", "without timeline"])
def ds(request, tmp_path_factory):
    from api_helpers import build_timeline_db, build_turns_db, datasette

    folder = tmp_path_factory.mktemp("scenarios")
    paths = [build_turns_db(folder / "turns.db")]
    if request.param == "with timeline":
        paths.append(build_timeline_db(folder / "timeline.db"))
    return datasette(paths)
