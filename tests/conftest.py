"""Fixtures shared by the test modules.

``ds`` serves the upstream debug-API scenarios (api_helpers.build_turns_db, with and without a
timeline store) read-only, built once per module: every test that takes it only reads.
"""

import pytest

from api_helpers import build_timeline_db, build_turns_db, datasette


@pytest.fixture(scope="module", params=["with timeline", "without timeline"])
def ds(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenarios")
    paths = [build_turns_db(folder / "turns.db")]
    if request.param == "with timeline":
        paths.append(build_timeline_db(folder / "timeline.db"))
    return datasette(paths)
