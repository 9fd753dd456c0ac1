"""The rules that recover ``runtime_key`` and ``inference_id`` from a turn's own metadata.

Pure functions, no I/O. Two generations of upstream rules exist:

* ``canonical`` (upstream since 2026-03-17): the runtime comes only from the runtime attribution
  map under ``geppetto.runtime@v1``; the inference id from ``geppetto.inference_id@v1`` or
  ``inference_id``.
* ``legacy`` (upstream 2026-02-24 to 2026-03-17): looser keys, and object values are probed for
  well-known members.

Nothing here ever looks at the conversation-level runtime pointer.
"""

from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

from . import golang

RULES = ("canonical", "legacy")

RUNTIME_MAP_KEY = "geppetto.runtime@v1"
INFERENCE_KEYS = ("geppetto.inference_id@v1", "inference_id")
LEGACY_RUNTIME_KEYS = (RUNTIME_MAP_KEY, "runtime", "runtime_key")
LEGACY_PROBE_MEMBERS = ("runtime_key", "key", "slug", "profile", "profile_key", "inference_id")


class InvalidMetadata(ValueError):
    """turn_metadata_json is not JSON Go can decode, or its top level is not an object."""


def parse_metadata(text: Union[str, bytes, None]) -> dict[str, Any]:
    """``turn_metadata_json`` decoded as the upstream decodes it: Go's ``encoding/json`` into a
    ``map[string]any``. Blank text (Go's TrimSpace), NULL and a top-level ``null`` count as ``{}``.

    Raises InvalidMetadata for text Go refuses (``NaN``, a BOM, trailing text, a number beyond
    float64, nesting past 10,000 levels, ...) or whose top level is not an object.
    """
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise InvalidMetadata(f"not text: {type(text).__name__}")
    if not text or (text[0] in golang.GO_SPACE and not golang.trim_space(text)):
        return {}
    try:
        value = golang.decode(text)
    except golang.InvalidJSON as error:
        raise InvalidMetadata(str(error)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMetadata(f"top level is {type(value).__name__}, not an object")
    return value


def value_to_string(value: Any) -> str:
    """A decoded JSON value as upstream's ``stringFromValue``: a string trimmed (Go's TrimSpace),
    anything else ``fmt.Sprint``-ed and trimmed; ``null`` gives ``''``."""
    if type(value) is str:
        return value.strip(golang.GO_SPACE)
    if value is None:
        return ""
    return golang.trim_space(golang.sprint(value))


def first_string(metadata: dict[str, Any], keys: Iterable[str], probe: bool = False) -> str:
    """The first key in ``keys`` whose value converts to a non-empty string.

    With ``probe``, an object value is searched for LEGACY_PROBE_MEMBERS, depth first, in order.
    """
    for key in keys:
        if key in metadata:
            text = _probe(metadata[key]) if probe else value_to_string(metadata[key])
            if text:
                return text
    return ""


def _probe(value: Any) -> str:
    # Depth first with an explicit stack: metadata may nest deeper than Python's recursion limit.
    stack = [iter([value])]
    while stack:
        for item in stack[-1]:
            if isinstance(item, dict):
                stack.append(iter([item[key] for key in LEGACY_PROBE_MEMBERS if key in item]))
                break
            text = value_to_string(item)
            if text:
                return text
        else:
            stack.pop()
    return ""


def canonical_runtime_key(metadata: dict[str, Any]) -> str:
    attribution = metadata.get(RUNTIME_MAP_KEY)
    if not isinstance(attribution, dict):
        return ""
    return value_to_string(attribution.get("runtime_key"))


def canonical_inference_id(metadata: dict[str, Any]) -> str:
    return first_string(metadata, INFERENCE_KEYS)


def legacy_runtime_key(metadata: dict[str, Any]) -> str:
    return first_string(metadata, LEGACY_RUNTIME_KEYS, probe=True)


def legacy_inference_id(metadata: dict[str, Any]) -> str:
    return first_string(metadata, INFERENCE_KEYS, probe=True)


Rule = Callable[[dict[str, Any]], str]

_RULE_FUNCTIONS: dict[str, tuple[Rule, Rule]] = {
    "canonical": (canonical_runtime_key, canonical_inference_id),
    "legacy": (legacy_runtime_key, legacy_inference_id),
}


def check_rules(rules: str) -> str:
    """``rules`` when it names a rule set, else ValueError saying which do."""
    if rules not in _RULE_FUNCTIONS:
        raise ValueError(f"unknown rules {rules!r}: expected one of {', '.join(RULES)}")
    return rules


def _rule_functions(rules: str) -> tuple[Rule, Rule]:
    return _RULE_FUNCTIONS[check_rules(rules)]


def is_empty(value: Any) -> bool:
    """Whether a ``runtime_key`` / ``inference_id`` value is empty as the upstream reads it: NULL
    or ``''``. Go scans an INTEGER ``0`` as the string ``"0"``, a value it keeps. The one
    decision of emptiness: the migration, its preview and the report's figures all ask it.
    (``golang.scan_string(value) == ""``, without building the text.)"""
    return value is None or value == "" or value == b""


FILLED, TRIMMED = "filled", "trimmed"


def change(old: Any, new: str) -> Optional[str]:
    """What writing ``new`` over a column's ``old`` value does: FILLED (a value where there was
    none or only blanks), TRIMMED (anything else that changes the text), or None."""
    old_text = golang.scan_string(old)
    if new == old_text:
        return None
    return FILLED if new and not golang.trim_space(old_text) else TRIMMED


def next_values(metadata_json: Union[str, bytes, None], runtime_key: Optional[str], inference_id: Optional[str],
                rules: str = "canonical") -> Optional[tuple[str, str]]:
    """The (runtime_key, inference_id) upstream's backfill writes to a candidate row, or None when
    it leaves the row as it is.

    Each column keeps its trimmed value, or takes the recovered one when that is empty; the row is
    written, both columns, only when that differs from the trimmed values it has. So a padded
    value is stored trimmed and a blank one refilled, but only in a row that gains something.
    Raises InvalidMetadata when upstream skips the row.
    """
    runtime_rule, inference_rule = _rule_functions(rules)
    metadata = parse_metadata(metadata_json)
    old_runtime = golang.trim_space(golang.scan_string(runtime_key))
    old_inference = golang.trim_space(golang.scan_string(inference_id))
    new_runtime = old_runtime or runtime_rule(metadata)
    new_inference = old_inference or inference_rule(metadata)
    if new_runtime == old_runtime and new_inference == old_inference:
        return None
    return new_runtime, new_inference


WRITES, UNCHANGED, BAD_METADATA = "writes", "unchanged", "skipped: bad metadata"


class Decision(NamedTuple):
    """What the upstream's backfill does to one row: WRITES ``values`` (runtime_key,
    inference_id), leaves it UNCHANGED, or skips it for BAD_METADATA; and what the write counts
    as, per column filled and in all trimmed (see :func:`change`)."""

    action: str
    values: Optional[tuple[str, str]] = None
    runtime_key_filled: int = 0
    inference_id_filled: int = 0
    values_trimmed: int = 0


def decide(metadata_json: Union[str, bytes, None], runtime_key: Any, inference_id: Any,
           rules: str = "canonical") -> Decision:
    """The upstream's backfill on one row, the one decision the migration, its preview and the
    report's figures all take. Only a row missing a value is looked at (the Python half of
    ``TurnsShape.missing_a_value``); its values are :func:`next_values`."""
    if not (is_empty(runtime_key) or is_empty(inference_id)):
        check_rules(rules)
        return _LEAVES
    try:
        values = next_values(metadata_json, runtime_key, inference_id, rules)
    except InvalidMetadata:
        return _SKIPS
    if values is None:
        return _LEAVES
    return writes(runtime_key, inference_id, values)


def writes(runtime_key: Any, inference_id: Any, values: tuple[str, str]) -> Decision:
    """The WRITES decision for a row holding ``runtime_key`` / ``inference_id`` that comes to
    hold ``values``: what the write counts as, per column filled and in all trimmed."""
    changes = (change(runtime_key, values[0]), change(inference_id, values[1]))
    return Decision(WRITES, values, int(changes[0] == FILLED), int(changes[1] == FILLED), changes.count(TRIMMED))


_LEAVES, _SKIPS = Decision(UNCHANGED), Decision(BAD_METADATA)


@dataclass
class Tally:
    """The backfill's decisions over many rows, counted one way: the migration counts what it
    wrote, the report's figures what a migrate run would write."""

    rows_written: int = 0
    runtime_key_filled: int = 0
    inference_id_filled: int = 0
    values_trimmed: int = 0
    missing_runtime_key: int = 0
    missing_inference_id: int = 0
    skipped_bad_metadata: int = 0

    def add(self, decision: Decision) -> None:
        """Count one row's decision (a WRITES decision: as written)."""
        self.skipped_bad_metadata += decision.action == BAD_METADATA
        if decision.action == WRITES:
            self.rows_written += 1
            self.runtime_key_filled += decision.runtime_key_filled
            self.inference_id_filled += decision.inference_id_filled
            self.values_trimmed += decision.values_trimmed

    def add_missing(self, runtime_key: Any, inference_id: Any) -> None:
        """Count a row's empty values: the migration's after its write, the figures' as they are."""
        self.missing_runtime_key += is_empty(runtime_key)
        self.missing_inference_id += is_empty(inference_id)
