"""What the test modules share: the one Datasette-line flag, the one place settings go where the
installed line reads them, and fixtures.

``sample`` is a copy of the sample (300 turns, seed 3, pre-cutover), which ``samples`` builds once
a session; ``samples.copy(folder, turns=..., seed=..., shape=...)`` copies another, also built once.
``paths`` are the upstream debug-API scenarios (api_helpers) as a turns.db and a timeline.db, and
``ds`` serves them read-only, built once per module: every test that takes it only reads.
``history_store`` is query_store's migrated turns.db with its known runtime history.
"""

from datasette.version import __version__
import pytest

from builders import Samples

ON_065 = __version__.startswith("0.")


def line_config(settings):
    """Datasette() keyword arguments putting ``settings`` (allow blocks, databases, queries) where
    the installed line reads them: ``metadata`` on 0.65, ``config`` on 1.0."""
    return {"metadata" if ON_065 else "config": settings}


@pytest.fixture(scope="session")
def samples(tmp_path_factory):
    return Samples(tmp_path_factory.mktemp)


@pytest.fixture
def sample(samples, tmp_path):
    return samples.copy(tmp_path)


@pytest.fixture
def paths(tmp_path):
    from api_helpers import build_timeline_db, build_turns_db

    return build_turns_db(tmp_path / "turns.db"), build_timeline_db(tmp_path / "timeline.db")


@pytest.fixture
def history_store(tmp_path):
    from query_store import build_store

    return build_store(tmp_path / "turns.db")


@pytest.fixture(scope="module", params=["with timeline", "without timeline"])
def ds(request, tmp_path_factory):
    from api_helpers import build_timeline_db, build_turns_db, datasette

    folder = tmp_path_factory.mktemp("scenarios")
    paths = [build_turns_db(folder / "turns.db")]
    if request.param == "with timeline":
        paths.append(build_timeline_db(folder / "timeline.db"))
    return datasette(paths)
