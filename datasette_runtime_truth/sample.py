"""Build realistic sample turns.db and timeline.db files with the upstream DDL.

Conversations have several sessions and switch runtime mid-way; each turn has two to four phase
snapshots of content-addressed blocks; turn metadata comes in every form the upstream ever wrote
(and some it should not have). Everything is drawn from one seeded ``random.Random``, so a seed
always gives the same rows.

The timeline store also holds each conversation's timeline as the upstream's projection wrote it
(``timeline_entities`` / ``timeline_versions``): the user's message, tool calls and results, and
the assistant's answer re-upserted as it streamed, each version a stream id (milliseconds times
a million plus a sequence). Those are drawn from a second generator seeded by the conversation's
id, so the turns and conversations of a seed stay what they were.
"""

from dataclasses import dataclass
import hashlib
import json
import os
import random
import sqlite3
from typing import Any, Optional

from .storage import sqlitefile
from .upstream import schema

Row = tuple[Any, ...]  # one row to insert, its values in the table's column order
BlockRef = tuple[str, str]  # (block_id, content_hash)

DAY_MS = 86_400_000
START_MS = 1_770_681_600_000  # 2026-02-10T00:00:00Z
LEGACY_FROM_MS = 1_771_891_200_000  # 2026-02-24: upstream starts writing runtime metadata
CANONICAL_FROM_MS = 1_773_705_600_000  # 2026-03-17: canonical runtime attribution map
CUTOVER_MS = 1_773_964_800_000  # 2026-03-20: the new server writes runtime_key / inference_id
SPAN_MS = 60 * DAY_MS

RUNTIMES = ("default", "inventory", "planner", "agent", "inventory@v1", "planner@v1")
MODELS = (("anthropic", "claude-sonnet-4"), ("openai", "gpt-4.1"), ("openai", "gpt-4.1-mini"))
SHAPES = ("pre-cutover", "partial")

# Metadata forms by era, with weights. See _metadata() for what each looks like.
FORMS = {
    "early": {"missing": 40, "top_level": 25, "bare_inference": 20, "legacy_string": 5,
              "invalid_json": 3, "non_object": 3, "empty": 2, "null": 2},
    "legacy": {"legacy_string": 45, "legacy_object": 15, "canonical": 15, "top_level": 8,
               "bare_inference": 5, "number": 4, "null": 3, "invalid_json": 2, "non_object": 2,
               "missing": 1},
    "canonical": {"canonical": 88, "number": 4, "null": 3, "missing": 1, "legacy_string": 1,
                  "invalid_json": 1, "non_object": 1, "empty": 1},
}
NON_OBJECT_JSON = ('["planner"]', '"planner"', "null", "42", "true")


@dataclass(frozen=True)
class SampleSummary:
    turns_path: str
    timeline_path: str
    conversations: int
    sessions: int
    turns: int
    snapshots: int
    blocks: int


SUMMARY_SQL = {
    "sessions": "SELECT count(DISTINCT session_id) FROM turns",
    "turns": "SELECT count(*) FROM turns",
    "snapshots": """SELECT count(*) FROM (
        SELECT DISTINCT conv_id, session_id, turn_id, phase, snapshot_created_at_ms
        FROM turn_block_membership)""",
    "blocks": "SELECT count(*) FROM blocks",
}


def summarize(directory: str) -> SampleSummary:
    """The SampleSummary of a sample already in ``directory``, counted from its files, as
    :func:`build` returns it."""
    turns_path, timeline_path = (os.path.join(directory, name) for name in ("turns.db", "timeline.db"))
    turns = sqlite3.connect(sqlitefile.read_only_uri(turns_path), uri=True)
    timeline = sqlite3.connect(sqlitefile.read_only_uri(timeline_path), uri=True)
    try:
        counts = {name: turns.execute(sql).fetchone()[0] for name, sql in SUMMARY_SQL.items()}
        conversations = timeline.execute("SELECT count(*) FROM timeline_conversations").fetchone()[0]
        return SampleSummary(turns_path, timeline_path, conversations=conversations, **counts)
    finally:
        turns.close()
        timeline.close()


class SampleExists(Exception):
    pass


def uuid4(rng: random.Random) -> str:
    """A UUID v4 string drawn from ``rng`` (deterministic, unlike uuid.uuid4())."""
    n = rng.getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (0x4000 << 64)
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def build(directory: str, turns: int = 2000, seed: int = 1, shape: str = "pre-cutover",
          force: bool = False) -> SampleSummary:
    """Write ``turns.db`` and ``timeline.db`` into ``directory`` and return a SampleSummary."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: expected one of {', '.join(SHAPES)}")
    if turns < 1:
        raise ValueError("turns must be at least 1")
    os.makedirs(directory, exist_ok=True)
    turns_path = os.path.join(directory, "turns.db")
    timeline_path = os.path.join(directory, "timeline.db")
    for path in (turns_path, timeline_path):
        if os.path.exists(path) and not force:
            raise SampleExists(f"{path} already exists (use --force to replace it)")
    builder = _Builder(random.Random(seed), shape)
    summary = builder.write(turns_path, timeline_path, turns)
    return summary


class _Builder:
    def __init__(self, rng: random.Random, shape: str) -> None:
        self.rng = rng
        self.shape = shape
        self._block_count = 0
        self._written_by_new_server: list[Row] = []
        self._exchanges: list[Exchange] = []  # the current conversation's turns, as its timeline shows them
        self._entity_rows: list[Row] = []
        self._version_rows: list[Row] = []

    def write(self, turns_path: str, timeline_path: str, turn_count: int) -> SampleSummary:
        tmp_turns, tmp_timeline = turns_path + ".tmp", timeline_path + ".tmp"
        for path in (tmp_turns, tmp_timeline):
            _remove(path)
        turns_db = _fast_connection(tmp_turns)
        turns_db.executescript(schema.PRE_CUTOVER_TURNS_DDL + schema.BLOCKS_TABLES_DDL)
        timeline_db = _fast_connection(tmp_timeline)
        timeline_db.executescript(schema.TIMELINE_DDL + schema.TIMELINE_ENTITY_DDL)
        counts = {"conversations": 0, "sessions": 0, "turns": 0, "snapshots": 0, "blocks": 0}
        turn_rows: list[Row] = []
        block_rows: list[Row] = []
        member_rows: list[Row] = []
        conversation_rows: list[Row] = []
        while counts["turns"] < turn_count:
            size = min(turn_count - counts["turns"], 1 + int(self.rng.expovariate(1 / 7)))
            conversation = self._conversation(size, turn_rows, block_rows, member_rows, counts)
            conversation_rows.append(conversation)
            if len(member_rows) > 50_000:
                self._flush(turns_db, turn_rows, block_rows, member_rows)
                self._flush_timeline(timeline_db)
        self._flush(turns_db, turn_rows, block_rows, member_rows)
        self._flush_timeline(timeline_db)
        timeline_db.executemany(
            "INSERT INTO timeline_conversations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", conversation_rows
        )
        turns_db.executescript(schema.PRE_CUTOVER_TURNS_INDEXES_DDL + schema.BLOCKS_INDEXES_DDL)
        if self.shape == "partial":
            self._carry_values(turns_db)
        for conn, tmp, final in ((turns_db, tmp_turns, turns_path), (timeline_db, tmp_timeline, timeline_path)):
            conn.commit()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.close()
            _remove(final + "-wal")
            _remove(final + "-shm")
            os.replace(tmp, final)
        return SampleSummary(turns_path, timeline_path, **counts)

    def _conversation(self, size: int, turn_rows: list[Row], block_rows: list[Row], member_rows: list[Row],
                      counts: dict[str, int]) -> Row:
        rng = self.rng
        conv_id = uuid4(rng)
        sessions = [uuid4(rng) for _ in range(1 + (rng.random() < 0.4) + (rng.random() < 0.15))]
        runtime = rng.choice(RUNTIMES)
        switches = set(rng.sample(range(1, size), k=min(size - 1, rng.choice((0, 0, 1, 1, 2)))))
        provider, model = rng.choice(MODELS)
        now = START_MS + rng.randrange(SPAN_MS)
        created = now
        session = sessions[0]
        used = {session}
        for index in range(size):
            if index in switches:
                runtime = rng.choice([r for r in RUNTIMES if r != runtime])
            if index and rng.random() < 0.15:
                session = rng.choice(sessions)
                used.add(session)
            now += rng.randrange(20_000, 600_000)
            now = self._turn(conv_id, session, runtime, provider, model, now, turn_rows, block_rows,
                             member_rows, counts)
        counts["conversations"] += 1
        counts["sessions"] += len(used)  # the sessions that hold a turn
        last_seen_version = rng.randrange(0, 60)
        has_timeline = 0 if rng.random() < 0.1 else 1
        if has_timeline:
            entities = timeline_entities(conv_id, self._exchanges)
            self._entity_rows += entities
            self._version_rows.append((conv_id, max(row[5] for row in entities)))
        self._exchanges = []
        status = "active" if rng.random() < 0.7 else "closed"
        return (conv_id, session, runtime, created, now, last_seen_version, has_timeline, status, "")

    def _turn(self, conv_id: str, session: str, runtime: str, provider: str, model: str, now: int,
              turn_rows: list[Row], block_rows: list[Row], member_rows: list[Row], counts: dict[str, int]) -> int:
        rng = self.rng
        turn_id = uuid4(rng)
        inference_id = uuid4(rng)
        question = _sentence(rng)
        user = self._block(block_rows, now, "user", "user", {"text": question})
        phases = [("pre_inference", [user])]
        tool: Optional[dict[str, Any]] = None
        if rng.random() < 0.3:
            call_id = uuid4(rng)
            tool = {"id": call_id, "name": rng.choice(("search", "lookup_sku", "calendar")),
                    "args": {"q": _word(rng)}}
            call = self._block(block_rows, now, "tool_call", "assistant", dict(tool))
            tool["result"] = _sentence(rng)
            result = self._block(block_rows, now, "tool_use", "tool", {"id": call_id, "result": tool["result"]})
            phases.append(("post_tools", [user, call, result]))
            history = [user, call, result]
        else:
            history = [user]
        reply = _sentence(rng)
        answer = self._block(block_rows, now, "llm_text", "assistant", {"text": reply})
        phases.append(("post_inference", history + [answer]))
        if rng.random() < 0.9:
            phases.append(("final", history + [answer]))
        created = now
        for phase, blocks in phases:
            for ordinal, (block_id, content_hash) in enumerate(blocks):
                member_rows.append((conv_id, session, turn_id, phase, now, ordinal, block_id, content_hash))
            counts["snapshots"] += 1
            now += rng.randrange(200, 8_000)
        updated = now - 1
        self._exchanges.append(Exchange(turn_id, inference_id, created, updated, question, tool, reply))
        metadata = self._metadata(updated, runtime, inference_id, session, provider, model)
        data = json.dumps({"geppetto.turn_data@v1": {"tool_config": {"enabled": len(phases) > 3}}})
        turn_rows.append((conv_id, session, turn_id, created, metadata, data, updated))
        if self.shape == "partial" and updated >= CUTOVER_MS:
            self._written_by_new_server.append((runtime, inference_id, conv_id, session, turn_id))
        counts["turns"] += 1
        counts["blocks"] = self._block_count
        return now

    def _block(self, block_rows: list[Row], now: int, kind: str, role: str, payload: dict[str, Any]) -> BlockRef:
        block_id = uuid4(self.rng)
        payload_json = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        content_hash = hashlib.sha256(payload_json.encode()).hexdigest()
        block_rows.append((block_id, content_hash, "sha256-canonical-json-v1", kind, role, payload_json, "{}", now))
        self._block_count += 1
        return block_id, content_hash

    def _metadata(self, updated: int, runtime: str, inference_id: str, session: str, provider: str,
                  model: str) -> str:
        rng = self.rng
        era = "early" if updated < LEGACY_FROM_MS else "legacy" if updated < CANONICAL_FROM_MS else "canonical"
        forms = FORMS[era]
        form = rng.choices(list(forms), weights=list(forms.values()))[0]
        if form == "invalid_json":
            return '{"geppetto.runtime@v1": {"runtime_key": "' + runtime + '"'
        if form == "non_object":
            return rng.choice(NON_OBJECT_JSON)
        if form == "empty":
            return ""
        meta: dict[str, Any] = {
            "geppetto.provider@v1": provider,
            "geppetto.model@v1": model,
            "geppetto.session_id@v1": session,
            "geppetto.usage@v1": {"input_tokens": rng.randrange(50, 4000), "output_tokens": rng.randrange(5, 900)},
            "geppetto.stop_reason@v1": rng.choice(("end_turn", "end_turn", "tool_use", "max_tokens")),
            "geppetto.trace_id@v1": uuid4(rng),
        }
        slug, _, version = runtime.partition("@v")
        attribution = {
            "runtime_key": runtime,
            "runtime_fingerprint": hashlib.sha256(runtime.encode()).hexdigest()[:16],
            "profile.slug": slug,
            "profile.version": int(version or 1),
        }
        if form == "canonical":
            meta["geppetto.runtime@v1"] = attribution
            meta["geppetto.inference_id@v1"] = inference_id
        elif form == "legacy_string":
            meta["geppetto.runtime@v1"] = runtime
            meta["geppetto.inference_id@v1"] = inference_id
        elif form == "legacy_object":
            meta["geppetto.runtime@v1"] = {"slug": runtime}
            meta["geppetto.inference_id@v1"] = {"inference_id": inference_id}
        elif form == "top_level":
            meta["runtime"] = runtime
            meta["inference_id"] = inference_id
        elif form == "bare_inference":
            meta["inference_id"] = inference_id
        elif form == "null":
            meta["geppetto.runtime@v1"] = None
            meta["geppetto.inference_id@v1"] = None
        elif form == "number":
            meta["geppetto.runtime@v1"] = {**attribution, "runtime_key": rng.randrange(1, 9)}
            meta["geppetto.inference_id@v1"] = rng.randrange(10**6, 10**9)
        return json.dumps(meta)

    def _flush(self, conn: sqlite3.Connection, turn_rows: list[Row], block_rows: list[Row],
               member_rows: list[Row]) -> None:
        conn.executemany("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?)", turn_rows)
        conn.executemany("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", block_rows)
        conn.executemany("INSERT INTO turn_block_membership VALUES (?, ?, ?, ?, ?, ?, ?, ?)", member_rows)
        turn_rows.clear()
        block_rows.clear()
        member_rows.clear()

    def _flush_timeline(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT INTO timeline_entities VALUES (?, ?, ?, ?, ?, ?, ?)", self._entity_rows)
        conn.executemany("INSERT INTO timeline_versions VALUES (?, ?)", self._version_rows)
        self._entity_rows.clear()
        self._version_rows.clear()

    def _carry_values(self, conn: sqlite3.Connection) -> None:
        """Shape ``partial``: the columns exist and turns saved after the cutover carry values."""
        for column in schema.COLUMNS[4:]:
            conn.execute(f"ALTER TABLE turns ADD COLUMN {column.name} {column.definition}")
        conn.executemany(
            "UPDATE turns SET runtime_key = ?, inference_id = ? WHERE conv_id = ? AND session_id = ? AND turn_id = ?",
            self._written_by_new_server,
        )
        # An operator's hand-set values on some old rows: a migration must never overwrite them.
        conn.execute(
            """UPDATE turns SET runtime_key = 'ops-restored'
               WHERE rowid IN (SELECT rowid FROM turns WHERE updated_at_ms < ? ORDER BY rowid LIMIT ?)""",
            (LEGACY_FROM_MS, max(1, len(self._written_by_new_server) // 50)),
        )


@dataclass(frozen=True)
class Exchange:
    """One turn as the timeline shows it: the question, an optional tool call (``id``, ``name``,
    ``args``, ``result``) and the streamed reply, between ``started`` and ``finished``."""

    turn_id: str
    inference_id: str
    started: int
    finished: int
    question: str
    tool: Optional[dict[str, Any]]
    reply: str


def timeline_entities(conv_id: str, exchanges: list[Exchange]) -> list[Row]:
    """``timeline_entities`` rows of one conversation, as the upstream's projection upserted them:
    ``(conv_id, entity_id, kind, created_at_ms, updated_at_ms, version, entity_json)``."""
    rng = random.Random(f"timeline:{conv_id}")
    rows: list[Row] = []

    def upsert(entity_id: str, kind: str, created: int, updated: int, props: dict[str, Any]) -> None:
        version = updated * 1_000_000 + rng.randrange(0, 8)
        rows.append((conv_id, entity_id, kind, created, updated, version, entity_json(
            entity_id, kind, created, updated, props)))

    for turn in exchanges:
        upsert(f"user-{turn.turn_id}", "message", turn.started, turn.started + rng.randrange(2, 40),
               {"content": turn.question, "role": "user", "streaming": False})
        at = turn.started + rng.randrange(300, 2_000)
        if turn.tool:
            call_id = turn.tool["id"]
            done = at + rng.randrange(100, 3_000)
            upsert(call_id, "tool_call", at, done,
                   {"done": True, "input": turn.tool["args"], "name": turn.tool["name"], "status": "completed"})
            upsert(f"{call_id}:result", "tool_result", done, done + rng.randrange(1, 30),
                   {"result": turn.tool["result"], "toolCallId": call_id})
            at = done + rng.randrange(200, 1_500)
        # The reply is upserted again with every streamed chunk; the row holds the last upsert.
        finished = max(turn.finished, at + rng.randrange(50, 400))
        upsert(f"msg-{turn.inference_id}", "message", at, finished,
               {"content": turn.reply, "role": "assistant", "streaming": False})
    return rows


def entity_json(entity_id: str, kind: str, created: int, updated: int, props: dict[str, Any]) -> str:
    """A TimelineEntityV2 as the upstream store wrote it: protojson, its fields in order, props'
    keys sorted, with the space after each comma protojson sometimes writes."""
    return json.dumps({"id": entity_id, "kind": kind, "createdAtMs": str(created), "updatedAtMs": str(updated),
                       "props": dict(sorted(props.items()))}, separators=(", ", ":"), ensure_ascii=False)


def _fast_connection(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    return conn


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


_WORDS = ("restock", "shelf", "invoice", "plan", "route", "sprint", "pallet", "order", "audit",
          "ticket", "refund", "supplier", "calendar", "meeting", "forecast", "budget")


def _word(rng: random.Random) -> str:
    return rng.choice(_WORDS)


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(3, 12))).capitalize() + "."
