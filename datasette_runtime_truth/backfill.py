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
from decimal import Decimal
import json

RULES = ("canonical", "legacy")

RUNTIME_MAP_KEY = "geppetto.runtime@v1"
INFERENCE_KEYS = ("geppetto.inference_id@v1", "inference_id")
LEGACY_RUNTIME_KEYS = (RUNTIME_MAP_KEY, "runtime", "runtime_key")
LEGACY_PROBE_MEMBERS = ("runtime_key", "key", "slug", "profile", "profile_key", "inference_id")


class InvalidMetadata(ValueError):
    """turn_metadata_json is not valid JSON, or its top level is not an object."""


@dataclass(frozen=True)
class Recovered:
    runtime_key: str
    inference_id: str


def parse_metadata(text):
    """Parse ``turn_metadata_json`` into a dict; ``''`` and NULL count as ``{}``.

    Raises InvalidMetadata for text that is not strict JSON (``NaN`` and ``Infinity`` included)
    or whose top level is not an object.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidMetadata(str(error)) from None
    if not isinstance(text, str):
        raise InvalidMetadata(f"not text: {type(text).__name__}")
    if text.startswith("\ufeff"):
        raise InvalidMetadata("Unexpected UTF-8 BOM")
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError) as error:
        raise InvalidMetadata(str(error) or "nested too deeply") from None
    if not isinstance(value, dict):
        raise InvalidMetadata(f"top level is {type(value).__name__}, not an object")
    return value


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


# One decoder for every row: json.loads(text, parse_constant=...) builds a new one per call, which
# costs as much as parsing a turn's metadata.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def value_to_string(value):
    """A JSON scalar as the text upstream stores: trimmed strings, decimal numbers, true/false.

    ``null``, objects, arrays and anything empty after trimming give ``''``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _decimal_text(value)
    return ""


def _decimal_text(number):
    """Shortest round-trip decimal text without an exponent: 1.5 -> '1.5', 42.0 -> '42'."""
    text = format(Decimal(repr(number)).normalize(), "f")
    return "0" if text == "-0" else text


def first_string(metadata, keys, probe=False):
    """The first key in ``keys`` whose value converts to a non-empty string.

    With ``probe``, an object value is searched for LEGACY_PROBE_MEMBERS, depth first, in order.
    """
    for key in keys:
        if key in metadata:
            text = _probe(metadata[key]) if probe else value_to_string(metadata[key])
            if text:
                return text
    return ""


def _probe(value):
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


def canonical_runtime_key(metadata):
    attribution = metadata.get(RUNTIME_MAP_KEY)
    if not isinstance(attribution, dict):
        return ""
    return value_to_string(attribution.get("runtime_key"))


def canonical_inference_id(metadata):
    return first_string(metadata, INFERENCE_KEYS)


def legacy_runtime_key(metadata):
    return first_string(metadata, LEGACY_RUNTIME_KEYS, probe=True)


def legacy_inference_id(metadata):
    return first_string(metadata, INFERENCE_KEYS, probe=True)


_RULE_FUNCTIONS = {
    "canonical": (canonical_runtime_key, canonical_inference_id),
    "legacy": (legacy_runtime_key, legacy_inference_id),
}


def recover(metadata_json, rules="canonical"):
    """Recover (runtime_key, inference_id) from one row's ``turn_metadata_json``.

    Raises InvalidMetadata when the row must be skipped.
    """
    try:
        runtime_rule, inference_rule = _RULE_FUNCTIONS[rules]
    except KeyError:
        raise ValueError(f"unknown rules {rules!r}: expected one of {', '.join(RULES)}") from None
    metadata = parse_metadata(metadata_json)
    return Recovered(runtime_rule(metadata), inference_rule(metadata))
