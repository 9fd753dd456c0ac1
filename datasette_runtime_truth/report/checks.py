"""The cutover report: every playbook check on one turns.db, as pass / fail / info.

Pure over an open SQLite connection, so the ``/-/runtime-truth`` page (through ``execute_fn``) and
``datasette runtime-truth check`` (on a read-only connection of its own) run the same code. Nothing
here writes. A check *fails* only when something a migration would fix is not done; what no
migration can recover (rows whose metadata never named a runtime) is information.
"""

from dataclasses import asdict, dataclass, field, replace
import os
import sqlite3
from typing import Any, Optional

from .. import config, times
from . import figures
from ..upstream import backfill, schema

PASS, FAIL, INFO = "pass", "fail", "info"
PASSES, FAILS, EMPTY = "passes", "fails", "no turns database"
NO_TURNS, NOT_TURNS = "no turns table yet", "not a turns.db"
FORMAT_VERSION = 1  # of the report JSON; datasette_runtime_truth/contract/runtime-truth.schema.json
EXPECTED_DEFINITION = "TEXT NOT NULL DEFAULT ''"
LISTED = 20  # conversations named under a check; the canned query shows them all

# Expected (column, descending) pairs of the two runtime indexes, from the upstream DDL.
EXPECTED_INDEX_COLUMNS = {
    index.name: [
        (part.split()[0], part.upper().endswith(" DESC"))
        for part in (piece.strip() for piece in index.columns.split(","))
    ]
    for index in schema.INDEXES
    if index.name in schema.RUNTIME_INDEXES
}


@dataclass
class Check:
    id: str
    title: str
    status: str
    figure: str
    value: Optional[int] = None
    query: Optional[str] = None  # the canned query that shows this check's rows
    items: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)  # the figure's numbers, by name


@dataclass
class DatabaseReport:
    database: str
    path: Optional[str]
    rules: str
    turns: int
    checks: list
    coverage: list  # one dict per UTC day, named as backfill_coverage names its columns
    timeline: Optional[str] = None  # the timeline store compared against, if any
    computed_at_ms: Optional[int] = None  # when the figures were computed (epoch milliseconds)
    problem: Optional[str] = None  # why there is nothing to check (schema.turns_problem), if so
    outdated: bool = False  # the store has committed since: a recomputation is due or running
    migrated: bool = False  # both runtime columns are there (schema.is_migrated)

    @property
    def status(self) -> str:
        if self.problem:
            return NO_TURNS if self.problem == schema.NO_TURNS_TABLE else NOT_TURNS
        return FAILS if any(check.status == FAIL for check in self.checks) else PASSES

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.status == FAIL]

    def check(self, check_id: str) -> Check:
        return next(check for check in self.checks if check.id == check_id)

    def as_dict(self) -> dict[str, Any]:
        """The report JSON's fields: ``computed_at`` as ISO 8601 UTC."""
        data = {("computed_at" if key == "computed_at_ms" else key): value
                for key, value in asdict(self).items() if key != "migrated"}
        data["computed_at"] = times.iso(self.computed_at_ms)
        data["status"] = self.status
        return data


def overall_status(reports: list["DatabaseReport"]) -> str:
    """Fails when one database fails; passes when one passes and none fails; else no turns
    database (none attached, or none holds a turns table yet)."""
    statuses = {report.status for report in reports}
    if FAILS in statuses:
        return FAILS
    return PASSES if PASSES in statuses else EMPTY


def build(conn: sqlite3.Connection, database: str, path: Optional[str] = None, rules: str = config.DEFAULT_RULES,
          opened: str = "mutable", pointers: Optional[dict[str, str]] = None,
          timeline: Optional[str] = None) -> "DatabaseReport":
    """Read the figures of the turns.db behind ``conn`` and judge them: a DatabaseReport.

    ``opened`` says how the caller opened the file (``mutable``, ``immutable`` or ``read-only``);
    ``pointers`` maps conv_id to the timeline store's ``runtime_key``, or is None when there is no
    timeline store.
    """
    backfill.check_rules(rules)
    path = None if path is None else os.fspath(path)
    problem = schema.read_turns_problem(conn)
    if problem:
        return DatabaseReport(database=database, path=path, rules=rules, turns=0, checks=[],
                              coverage=[], timeline=timeline, problem=problem)
    return judge(figures.read(conn, rules, path, pointers), database, path, rules, opened, timeline)


def judge(found: figures.Figures, database: str, path: Optional[str] = None, rules: str = config.DEFAULT_RULES,
          opened: str = "mutable", timeline: Optional[str] = None) -> "DatabaseReport":
    """The checks over ``found`` (a figures.Figures): pure, no I/O."""
    checks = [
        _columns_check(found.shape.columns),
        _indexes_check(found.shape.indexes),
        *_backfill_checks(found.backfill, found.turns, rules, path),
        _switches_check(found.switched, found.conversations),
        _pointer_check(found.pointers, found.has_timeline_store, timeline),
        _journal_check(found.journal_mode, found.wal_has_content, opened),
    ]
    return DatabaseReport(
        database=database, path=path, rules=rules, turns=found.turns, checks=checks,
        coverage=found.coverage, timeline=timeline, migrated=schema.is_migrated(found.shape.columns),
    )


def _columns_check(columns: dict[str, str]) -> Check:
    title = "runtime_key and inference_id columns"
    missing = [name for name in schema.RUNTIME_COLUMNS if name not in columns]
    wrong = [f"{name} is {columns[name]}" for name in schema.RUNTIME_COLUMNS
             if name in columns and columns[name] != EXPECTED_DEFINITION]
    present = len(schema.RUNTIME_COLUMNS) - len(missing)
    if missing or wrong:
        problems = ([f"missing: {', '.join(missing)}"] if missing else []) + wrong
        figure = "; ".join(problems) + f" (expected {EXPECTED_DEFINITION})"
        return Check("columns", title, FAIL, figure, present, "turns_schema")
    return Check("columns", title, PASS, f"both {EXPECTED_DEFINITION}", present, "turns_schema")


def _indexes_check(indexes: dict[str, list[tuple[str, bool]]]) -> Check:
    title = "Runtime indexes"
    problems, good = [], 0
    for name, expected in EXPECTED_INDEX_COLUMNS.items():
        found = indexes.get(name)
        if found is None:
            problems.append(f"{name} missing")
        elif found != expected:
            problems.append(f"{name} is on ({_index_text(found)}), expected ({_index_text(expected)})")
        else:
            good += 1
    if problems:
        return Check("indexes", title, FAIL, "; ".join(problems), good, "turns_runtime_indexes")
    figure = "; ".join(f"{name} ({_index_text(cols)})" for name, cols in EXPECTED_INDEX_COLUMNS.items())
    return Check("indexes", title, PASS, figure, good, "turns_runtime_indexes")


def _index_text(columns: list[tuple[str, bool]]) -> str:
    return ", ".join(f"{column} DESC" if desc else column for column, desc in columns)


def _backfill_checks(found: backfill.Tally, turns: int, rules: str, path: Optional[str]) -> list[Check]:
    fill_rows, fill_runtime, fill_inference = found.rows_written, found.runtime_key_filled, found.inference_id_filled
    missing_runtime, missing_inference, bad = found.missing_runtime_key, found.missing_inference_id, found.skipped_bad_metadata
    if fill_rows:
        command = f"datasette runtime-truth migrate {path or 'turns.db'}"
        if rules != config.DEFAULT_RULES:
            command += f" --rules {rules}"
        fill = Check(
            "would_fill", "Rows a migrate run would still fill", FAIL,
            f"{fill_rows:,} row{'' if fill_rows == 1 else 's'} ({fill_runtime:,} runtime_key, "
            f"{fill_inference:,} inference_id, {rules} rules): run `{command}`",
            fill_rows, "missing_backfill_rows",
        )
    else:
        fill = Check("would_fill", "Rows a migrate run would still fill", PASS,
                     f"none: every recoverable value is filled ({rules} rules)", 0,
                     "missing_backfill_rows")
    fill.counts = {"rows": fill_rows, "runtime_key": fill_runtime, "inference_id": fill_inference}
    return [
        _missing_check("missing_runtime_key", "Rows without runtime_key", missing_runtime,
                       fill_runtime, turns, rules),
        _missing_check("missing_inference_id", "Rows without inference_id", missing_inference,
                       fill_inference, turns, rules),
        Check("bad_metadata", "Rows with invalid or non-object metadata", INFO,
              f"{bad:,} of {turns:,} rows ({percent(bad, turns)}): still missing a value, and the "
              "backfill skips them, so they stay empty", bad,
              "missing_backfill_rows"),
        fill,
    ]


def _missing_check(check_id: str, title: str, missing: int, recoverable: int, turns: int,
                   rules: str = config.DEFAULT_RULES) -> Check:
    figure = f"{missing:,} of {turns:,} rows ({percent(missing, turns)})"
    if recoverable:
        figure += f": {recoverable:,} recoverable by a migrate run, {missing - recoverable:,} not"
    elif missing:
        figure += f": none recoverable by a migrate run with the {rules} rules, so they stay empty"
    return Check(check_id, title, INFO, figure, missing, "missing_backfill_count",
                 counts={"missing": missing, "recoverable": recoverable})


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` as every page shows a share: whole percents, a decimal only below
    10% where it is not whole (``57%``, ``0.4%``, ``50%``)."""
    if not whole:
        return "0%"
    share = 100 * part / whole
    return f"{share:.0f}%" if share == int(share) or share >= 10 else f"{share:.1f}%"


def _switches_check(switched: Optional[list[tuple[str, int]]], conversations: int) -> Check:
    title = "Conversations that switched runtime"
    if switched is None:
        return Check("runtime_switches", title, INFO, "no runtime_key column yet", 0, "runtime_switches")
    total = sum(switches for _, switches in switched)
    figure = (f"{len(switched):,} of {conversations:,} conversations "
              f"({total:,} switch{'es' if total != 1 else ''})")
    items = [{"conv_id": conv_id, "switches": n} for conv_id, n in switched[:LISTED]]
    return Check("runtime_switches", title, INFO, figure, len(switched), "runtime_switches", items)


POINTER_TITLE = "Conversation pointer vs newest turn"


def without_pointers(db_report: "DatabaseReport") -> "DatabaseReport":
    """A copy of the report as for an actor who may not view the timeline store: no pointer figures."""
    checks = [Check("pointer", POINTER_TITLE, INFO, "no timeline store to compare with", None)
              if check.id == "pointer" else check for check in db_report.checks]
    return replace(db_report, checks=checks, timeline=None)


def _pointer_check(pointers: Optional[figures.PointerFigures], compared_with_a_store: bool,
                   timeline: Optional[str]) -> Check:
    title = POINTER_TITLE
    if not compared_with_a_store and timeline:
        return Check("pointer", title, INFO, f"timeline_database {timeline!r} is not attached, or has no "
                                                 "timeline_conversations table", None)
    if not compared_with_a_store:
        return Check("pointer", title, INFO, "no timeline store to compare with", None)
    if pointers is None:
        return Check("pointer", title, INFO, "no runtime_key column yet", None)
    differ, compared, unknown = pointers.differ, pointers.compared, pointers.unknown
    figure = (f"{len(differ):,} of the {compared:,} conversations whose newest turn has a runtime_key "
              f"have another pointer in {timeline or 'the timeline store'}")
    if unknown:
        figure += f" ({unknown:,} conversations' newest turn has none, so nothing to compare)"
    figure += "; information only: the pointer is never turn history, and history is never rewritten"
    return Check("pointer", title, INFO, figure, len(differ), None, differ[:LISTED])


def _journal_check(mode: str, wal_has_content: bool, opened: str) -> Check:
    title = "Journal mode and how it is opened"
    figure = f"{mode}, opened {opened}"
    if mode == "wal" and opened == "immutable":
        if wal_has_content:
            return Check("journal", title, FAIL,
                         figure + ": the -wal file holds changes an immutable open ignores, so "
                         "every figure here may be stale; serve turns.db mutable (without -i)")
        return Check("journal", title, INFO,
                     figure + ": correct only while the -wal file is empty; serve a live turns.db "
                     "mutable (without -i)")
    return Check("journal", title, INFO, figure)
