"""A small migrated turns.db with known runtime history, and Datasette instances serving it with
the plugin or with the generated no-plugin bundle."""

import contextlib
from pathlib import Path

import yaml
from datasette.plugins import pm
from datasette_test import Datasette

from builders import create_store, insert_turn
from conftest import ON_065, line_config

DAY = 86_400_000
CUTOVER = 1_773_964_800_000  # 2026-03-20T00:00:00Z
BEFORE = CUTOVER - DAY  # 2026-03-19
ROOT = Path(__file__).resolve().parents[1]
MODES = ("plugin", "bundle")

# (conv_id, session_id, turn_id, updated_at_ms, runtime_key, inference_id)
TURNS = (
    ("conv-1", "s-1", "t1", BEFORE + 1000, "inventory@v1", "inf-1"),
    ("conv-1", "s-1", "t2", BEFORE + 2000, "", ""),
    ("conv-1", "s-1", "t3", CUTOVER + 3000, "planner@v1", "inf-3"),
    ("conv-1", "s-2", "t4", CUTOVER + 4000, "inventory@v1", "inf-4"),
    ("conv-2", "s-3", "t1", BEFORE + 500, "", "inf-5"),
    ("conv-2", "s-3", "t2", CUTOVER + 500, "default", "inf-6"),
    ("conv/3 & co", "s/4", "t 1", CUTOVER + 6000, "default", "inf-7"),
    ("conv/3 & co", "s/4", "t 2", CUTOVER + 7000, "planner", "inf-7"),
)


def build_store(path, shape="migrated"):
    conn = create_store(path, shape)
    for conv_id, session_id, turn_id, updated, runtime_key, inference_id in TURNS:
        insert_turn(conn, conv_id, session_id, turn_id, metadata={"turn": turn_id},
                    created=updated - 10, updated=updated, runtime_key=runtime_key,
                    inference_id=inference_id)
    conn.close()
    return path


@contextlib.contextmanager
def without_plugin():
    """The plugin unregistered, as when it is not installed."""
    plugin = pm.unregister(name="runtime_truth")
    try:
        yield
    finally:
        pm.register(plugin, name="runtime_truth")


def bundle_options():
    """Datasette() arguments for the generated bundle: metadata.yml on 0.65, datasette.yaml on 1.0."""
    settings = yaml.safe_load((ROOT / "bundle" / ("metadata.yml" if ON_065 else "datasette.yaml")).read_text())
    return {**line_config(settings), "template_dir": str(ROOT / "bundle" / "templates")}


@contextlib.asynccontextmanager
async def serving(path, mode, **kwargs):
    """A started Datasette on ``path``: ``plugin`` (installed) or ``bundle`` (no plugin)."""
    if mode == "plugin":
        ds = Datasette([str(path)], **kwargs)
        await ds.invoke_startup()
        yield ds
        return
    with without_plugin():
        ds = Datasette([str(path)], **bundle_options(), **kwargs)
        await ds.invoke_startup()
        yield ds
