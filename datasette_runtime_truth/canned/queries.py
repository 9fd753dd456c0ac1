"""The canned queries: the playbook's SQL checks and the ones an operator reaches for next.

This module is the one source of truth. The plugin registers these queries on every turns database
(the ``canned_queries`` hook on Datasette 0.65, ``datasette.add_query`` on 1.0), and
``bundle.py`` generates the top-level ``metadata.yml`` / ``datasette.yaml`` and the query-page
templates from it, so the bundle also works with no plugin installed.

Every value travels as a bound parameter. Datasette passes a missing parameter as ``''``; each query
answers that with an empty result (or, for paging parameters, the first page).
"""

import copy
from dataclasses import dataclass
import re
from typing import TYPE_CHECKING, Any, Iterable, Optional

from .. import config
from ..web import permissions

if TYPE_CHECKING:
    from datasette.app import Datasette

SOURCE = config.PLUGIN  # marks the canned queries the plugin stores
MIGRATED_COLUMNS = ("runtime_key", "inference_id")

# The one definition of a runtime switch: a turn with a non-empty runtime_key whose last known
# (non-empty) runtime_key before it, in history order (updated_at_ms, then turn_id), differs.
# ``known`` holds each such turn with that previous key; runtime_history and runtime_switches
# build on it, the report counts runtime_switches' rows, and switch_positions below is the same
# rule over a list (a test holds them equal on the sample data).
SWITCH_RULE = """known AS (
  SELECT conv_id, session_id, turn_id, runtime_key, updated_at_ms,
         lag(runtime_key) OVER (PARTITION BY conv_id ORDER BY updated_at_ms, turn_id)
           AS previous_runtime_key
  FROM turns
  WHERE runtime_key <> ''{conversation}
)"""


def switch_positions(runtime_keys: Iterable[str]) -> list[int]:
    """SWITCH_RULE over one conversation's runtime_keys in history order: the indexes of the
    turns whose runtime_key differs from the last known one before them ('' is passed over)."""
    positions, previous = [], None
    for index, key in enumerate(runtime_keys):
        if not key:
            continue
        if previous is not None and key != previous:
            positions.append(index)
        previous = key
    return positions


def plain(text: str) -> str:
    """Text with its `code` spans unmarked, for places that show text as it is (the database
    page's list of queries)."""
    return re.sub(r"`([^`]+)`", r"\1", text)


@dataclass(frozen=True)
class Query:
    name: str
    title: str
    sql: str
    meaning: str
    good_answer: str
    params: tuple = ()
    keyset: tuple = ()  # (parameter, column) pairs: the next page starts after the last row's columns
    tables: tuple = ("turns",)  # what the SQL reads: the actor must be allowed to view each
    needs: tuple = MIGRATED_COLUMNS  # columns the SQL reads that only a migrated store has

    def __post_init__(self) -> None:
        object.__setattr__(self, "sql", self.sql.strip() + "\n")

    @property
    def description(self) -> str:
        """As the database page shows it: plain text, so no `code` marks."""
        return plain(f"{self.meaning} A good answer: {self.good_answer}")

    def runs_on(self, columns: Iterable[str]) -> bool:
        """Whether the SQL can run on a turns table with these columns."""
        return all(column in columns for column in self.needs)

    def as_config(self) -> dict[str, Any]:
        """The query as an entry under ``queries:`` in metadata.yml (0.65) or datasette.yaml (1.0)."""
        entry: dict[str, Any] = {"title": self.title, "description": self.description, "sql": self.sql,
                 "hide_sql": True}
        if self.params:
            entry["params"] = list(self.params)
        return entry


# The switched conversations, unpaged: the report counts them and its list pages through them.
RUNTIME_SWITCHES_COLUMNS = ("conv_id", "runtime_keys", "switches", "runtime_order", "first_switch_turn_id",
                            "first_switch_at_ms")
RUNTIME_SWITCHES_SQL = f"""WITH {SWITCH_RULE.format(conversation="")},
changes AS (
  SELECT conv_id, turn_id, runtime_key, updated_at_ms,
         row_number() OVER history AS step,
         group_concat(runtime_key, ' -> ') OVER (
           history ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
         ) AS runtime_order
  FROM known
  WHERE previous_runtime_key IS NULL OR previous_runtime_key <> runtime_key
  WINDOW history AS (PARTITION BY conv_id ORDER BY updated_at_ms, turn_id)
)
SELECT conv_id,
       COUNT(DISTINCT runtime_key) AS runtime_keys,
       COUNT(*) - 1 AS switches,
       max(runtime_order) AS runtime_order,
       max(CASE WHEN step = 2 THEN turn_id END) AS first_switch_turn_id,
       max(CASE WHEN step = 2 THEN updated_at_ms END) AS first_switch_at_ms
FROM changes
GROUP BY conv_id
HAVING COUNT(DISTINCT runtime_key) > 1
ORDER BY first_switch_at_ms DESC, conv_id
"""

PAGE_LIMIT = f"""LIMIT CASE WHEN CAST(:limit AS INTEGER) > 0
           THEN min(CAST(:limit AS INTEGER), {config.MAX_PAGE})
           ELSE {config.DEFAULT_PAGE} END"""

QUERIES = (
    Query(
        name="turns_schema",
        title="turns: schema columns",
        sql="""
SELECT cid, name, type, "notnull", dflt_value, pk
FROM pragma_table_info('turns')
ORDER BY cid
""",
        needs=(),
        meaning="The playbook's `PRAGMA table_info(turns)`: the columns of the turns table.",
        good_answer="`runtime_key TEXT NOT NULL DEFAULT ''` and `inference_id TEXT NOT NULL "
                    "DEFAULT ''` are both listed (after `updated_at_ms` on a migrated store, "
                    "before it on a fresh one; both are correct).",
    ),
    Query(
        name="turns_runtime_indexes",
        title="turns: runtime indexes",
        sql="""
SELECT name, sql
FROM sqlite_master
WHERE type = 'index'
  AND tbl_name = 'turns'
  AND name IN ('turns_by_conv_runtime_updated', 'turns_by_conv_inference_updated')
ORDER BY name
""",
        needs=(),
        meaning="The playbook's index check: the two indexes that make per-turn runtime and "
                "inference lookups fast.",
        good_answer="two rows, `turns_by_conv_inference_updated` on "
                    "`(conv_id, inference_id, updated_at_ms DESC)` and "
                    "`turns_by_conv_runtime_updated` on `(conv_id, runtime_key, updated_at_ms DESC)`.",
    ),
    Query(
        name="runtime_history",
        title="Runtime history of one conversation",
        sql=f"""
WITH {SWITCH_RULE.format(conversation=" AND conv_id = :conv_id")}
SELECT turns.turn_id, turns.runtime_key, turns.inference_id, turns.updated_at_ms,
       turns.session_id,
       CASE WHEN known.previous_runtime_key <> known.runtime_key
            THEN known.previous_runtime_key ELSE '' END AS switched_from
FROM turns
LEFT JOIN known ON known.conv_id = turns.conv_id AND known.session_id = turns.session_id
                AND known.turn_id = turns.turn_id
WHERE turns.conv_id = :conv_id
ORDER BY turns.updated_at_ms ASC, turns.turn_id ASC
""",
        params=("conv_id",),
        meaning="The playbook's runtime history: each turn of the conversation with the runtime "
                "that produced it and its inference id, oldest first (`session_id` is added, "
                "for the link to each turn's debug JSON, and `switched_from`: the previous known "
                "runtime when this turn switched, else empty).",
        good_answer="turns the server wrote after the cutover carry a `runtime_key` and an "
                    "`inference_id`; a runtime switch shows as a change between turns; an empty "
                    "`runtime_key` is an unknown, pre-cutover turn and stays empty (never filled "
                    "in from the conversation's current runtime).",
    ),
    Query(
        name="missing_backfill_count",
        title="Turns still missing runtime_key or inference_id",
        sql="""
SELECT COUNT(*) AS missing_runtime_or_inference
FROM turns
WHERE COALESCE(runtime_key, '') = ''
   OR COALESCE(inference_id, '') = ''
""",
        meaning="The playbook's backfill check: how many turns still have an empty `runtime_key` "
                "or `inference_id`.",
        good_answer="after a migrate run, only turns whose metadata gives the configured rules "
                    "nothing to recover (or is not valid JSON) are counted, so a non-zero count is "
                    "expected on a store with pre-cutover history, and it must not grow with new "
                    "turns. Before the migration every such turn is counted, recoverable or not: "
                    "the report's migration preview shows what a run would write.",
    ),
    Query(
        name="missing_backfill_rows",
        title="Turns still missing runtime_key or inference_id: their metadata",
        sql=f"""
SELECT conv_id, session_id, turn_id, turn_metadata_json
FROM turns
WHERE (COALESCE(runtime_key, '') = '' OR COALESCE(inference_id, '') = '')
  AND (conv_id, session_id, turn_id) > (:after_conv, :after_session, :after_turn)
ORDER BY conv_id, session_id, turn_id
{PAGE_LIMIT}
""",
        params=("after_conv", "after_session", "after_turn", "limit"),
        keyset=(("after_conv", "conv_id"), ("after_session", "session_id"), ("after_turn", "turn_id")),
        meaning="The playbook's candidate rows for manual recovery, in primary-key order, "
                f"{config.DEFAULT_PAGE} at a time (`limit` up to {config.MAX_PAGE}); the page links to the next "
                "(the last row's ids as `after_conv`, `after_session`, `after_turn`).",
        good_answer="after a migrate run, every row listed here is one the run left as it was: "
                    "its metadata gives the configured rules nothing to recover, or is not valid "
                    "JSON. Keep the empty value rather than make up history from the "
                    "conversation's latest pointer. Before the migration every row without a value "
                    "is listed; the report's migration preview shows what a run would write.",
    ),
    Query(
        name="runtime_switches",
        title="Conversations that switched runtime",
        sql=f"""
SELECT *
FROM (
{RUNTIME_SWITCHES_SQL})
WHERE :after_conv = ''
   OR first_switch_at_ms < CAST(:after_at_ms AS INTEGER)
   OR (first_switch_at_ms = CAST(:after_at_ms AS INTEGER) AND conv_id > :after_conv)
ORDER BY first_switch_at_ms DESC, conv_id
{PAGE_LIMIT}""",
        params=("after_at_ms", "after_conv", "limit"),
        keyset=(("after_at_ms", "first_switch_at_ms"), ("after_conv", "conv_id")),
        meaning="Conversations whose turns carry more than one non-empty `runtime_key`: how many "
                "runtimes, how many switches, in what order, and the turn and time of the first "
                "switch (turns with an unknown runtime are left out; newest first switch first), "
                f"{config.DEFAULT_PAGE} at a time (`limit` up to {config.MAX_PAGE}); the page links to the next.",
        good_answer="each switch shows in the conversation's runtime history as turns under "
                    "different runtimes; the conversation's current pointer "
                    "(`resolved_runtime_key`) is only the last runtime of `runtime_order`.",
    ),
    Query(
        name="inference_lookup",
        title="Turns carrying an inference id",
        sql="""
WITH RECURSIVE conversations(conv_id) AS (
  SELECT min(conv_id) FROM turns WHERE :inference_id <> ''
  UNION ALL
  SELECT (SELECT min(conv_id) FROM turns WHERE conv_id > conversations.conv_id)
  FROM conversations
  WHERE conversations.conv_id IS NOT NULL
)
SELECT turns.conv_id, turns.session_id, turns.turn_id, turns.runtime_key, turns.inference_id,
       turns.updated_at_ms
FROM conversations
CROSS JOIN turns
  ON turns.conv_id = conversations.conv_id AND turns.inference_id = :inference_id
ORDER BY turns.updated_at_ms, turns.conv_id, turns.session_id, turns.turn_id
""",
        params=("inference_id",),
        meaning="The turn that carries an inference id (the id is looked up per conversation "
                "through `turns_by_conv_inference_updated`).",
        good_answer="exactly one turn; more than one means the same inference was recorded on "
                    "several turns, none means the id never reached turns.db.",
    ),
    Query(
        name="backfill_coverage",
        title="Backfill coverage per day",
        sql="""
SELECT date(updated_at_ms / 1000, 'unixepoch') AS day,
       COUNT(*) AS turns,
       SUM(runtime_key <> '') AS with_runtime_key,
       SUM(inference_id <> '') AS with_inference_id,
       SUM(runtime_key = '' AND inference_id = '') AS with_neither
FROM turns
GROUP BY day
ORDER BY day
""",
        meaning="Per UTC day of `updated_at_ms`: how many turns, how many carry a `runtime_key`, "
                "an `inference_id`, and neither.",
        good_answer="days after the cutover, turns the new server wrote carry a `runtime_key` "
                    "and an `inference_id`; days before it, and every day of a store migrated from "
                    "pre-cutover history, show only what the backfill recovered from each turn's "
                    "metadata, so `with_neither` is expected there and marks history that stays "
                    "unknown.",
    ),
)

BY_NAME = {query.name: query for query in QUERIES}


def as_config() -> dict[str, dict[str, Any]]:
    """All queries as the ``queries:`` mapping of a database in metadata.yml / datasette.yaml."""
    return {query.name: query.as_config() for query in QUERIES}


async def canned_queries(datasette: "Datasette", database: str, actor: permissions.Actor
                         ) -> dict[str, dict[str, Any]]:
    """The 0.65 ``canned_queries`` hook: every query, on a turns database.

    Datasette 0.65 lets a hook's entry replace the operator's, so a query the operator configured
    under the same name comes back as theirs, with only the keys they left out filled in. Where the
    plugin's SQL runs, an actor who may not view a table it reads gets ``allow: false``."""
    if not await config.is_turns_database(datasette, database):
        return {}
    configured = datasette.metadata("queries", database=database, fallback=False) or {}
    entries = {}
    for query in QUERIES:
        theirs = _as_entry(configured.get(query.name))
        entry = merge(query, theirs)
        if "sql" not in theirs and await permissions.forbidden_tables(
                datasette, actor, database, query.tables):
            entry["allow"] = False
        entries[query.name] = entry
    return entries


def merge(query: Query, theirs: dict[str, Any]) -> dict[str, Any]:
    """The operator's entry for ``query``'s name, with the plugin's title and description where they
    gave none; with the plugin's SQL (and its parameters) only when they gave no SQL."""
    ours = query.as_config()
    if "sql" in theirs:
        ours.pop("params", None)
        ours.pop("hide_sql", None)
    return {**ours, **copy.deepcopy(theirs)}


def _as_entry(configured: Any) -> dict[str, Any]:
    if configured is None:
        return {}
    return dict(configured) if isinstance(configured, dict) else {"sql": configured}


async def register(datasette: "Datasette") -> None:
    """On Datasette 1.0 (which has no ``canned_queries`` hook) add every query to every turns
    database with ``add_query``. Trusted, so they run where arbitrary SQL is not allowed.

    A query the operator configured under the same name keeps their SQL and everything else;
    only a title or description they left out is filled in."""
    if not hasattr(datasette, "add_query"):
        return
    for db in await config.turns_databases(datasette):
        if not await config.holds_turns(db):
            continue
        for query in QUERIES:
            existing = await datasette.get_query(db.name, query.name)
            if existing is not None and existing.source != SOURCE:
                await _fill_in(datasette, existing, query)
                continue
            await datasette.add_query(
                db.name, query.name, query.sql, title=query.title,
                description=query.description, parameters=list(query.params), hide_sql=True,
                is_trusted=True, source=SOURCE, replace=True,
            )


async def _fill_in(datasette: "Datasette", existing: Any, query: Query) -> None:
    missing = {"title": query.title, "description": query.description}
    missing = {key: value for key, value in missing.items() if getattr(existing, key) is None}
    if missing:
        await datasette.update_query(existing.database, existing.name, **missing)


async def plugin_queries(datasette: "Datasette") -> dict[tuple[str, str], Query]:
    """{(database, query name): Query} for each query whose SQL is the plugin's (1.0)."""
    found = {}
    for db in await config.turns_databases(datasette):
        for query in QUERIES:
            stored = await datasette.get_query(db.name, query.name)
            if stored is not None and stored.source == SOURCE:
                found[(db.name, query.name)] = query
    return found


async def denied_query_rules(datasette: "Datasette", actor: permissions.Actor, action: str) -> Optional[Any]:
    """The 1.0 ``permission_resources_sql`` hook: for ``view-query``, a deny rule for each
    plugin query that reads a table the actor may not view (0.65 does this in canned_queries)."""
    if action != "view-query":
        return None
    from datasette.permissions import PermissionSQL

    selects, params = [], {}
    for i, ((database, name), query) in enumerate((await plugin_queries(datasette)).items()):
        hidden = await permissions.forbidden_tables(datasette, actor, database, query.tables)
        if hidden:
            selects.append(f"SELECT :rt_db_{i} AS parent, :rt_query_{i} AS child, 0 AS allow, "
                           f":rt_reason_{i} AS reason")
            params.update({f"rt_db_{i}": database, f"rt_query_{i}": name,
                           f"rt_reason_{i}": f"{SOURCE}: reads {', '.join(hidden)}, which the actor may not view"})
    if not selects:
        return None
    return PermissionSQL(sql=" UNION ALL ".join(selects), params=params)
