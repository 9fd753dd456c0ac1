"""The upstream's protojson for its timeline snapshot, reproduced exactly (protobuf-go v1.36).

The upstream read each ``entity_json`` with ``protojson.UnmarshalOptions{DiscardUnknown: true}``
into a ``TimelineEntityV2`` and wrote the snapshot back with ``protojson.Marshal``, so an entity
is re-encoded, never passed through:

* :func:`parse` reads JSON as protobuf-go's own decoder does (no duplicate names, no lone
  surrogate escapes, no ``NaN``; numbers kept as their text);
* :func:`entity` decodes one entity (``TimelineEntityV2``: unknown fields dropped, proto or JSON
  names, int64 from numbers or strings, ``props`` as a ``google.protobuf.Struct`` whose numbers
  are float64, ``typed`` as a ``google.protobuf.Any`` of a type the upstream knew) and encodes it;
* :func:`encode_string` and :func:`format_double` write strings and numbers as protojson does.

Every refusal is :class:`Invalid`: the upstream failed the whole answer on it. Pure functions,
iterative where the data sets the depth (props thousands of levels deep decode as upstream did).
"""

from collections import OrderedDict
from dataclasses import dataclass
import json
import json.scanner
import math
import re
import threading
from typing import Any, NoReturn, Optional

from . import golang

RECURSION_LIMIT = 10000  # protowire.DefaultRecursionLimit: nested messages one decode may open
INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)
INT32 = (-(2**31), 2**31 - 1)
UINT32 = (0, 2**32 - 1)


Node = Any  # a JSON value as parse reads it: Pairs, list, str, bool, Num or None
Decoded = Any  # a field's value as _message decodes it: a scalar, a dict, Struct, AnyValue, Wrapper, ...


class Invalid(ValueError):
    """What protojson refuses to decode or encode."""


class Num:
    """A JSON number, kept as its text: what it means depends on the field it lands in."""

    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw


class Pairs(list):
    """A JSON object: its ``(name, value)`` pairs in order, duplicates included."""


# --- reading JSON -------------------------------------------------------------------------------

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_SPACE = " \t\n\r"


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"invalid value {name}")


_SCAN = json.scanner.make_scanner(json.JSONDecoder(  # type: ignore[arg-type]  # typeshed types it as a class
    object_pairs_hook=Pairs, parse_int=Num, parse_float=Num, parse_constant=_no_constant,
))


def parse(data: bytes) -> Node:
    """The JSON value of ``data`` (bytes) as protobuf-go's decoder reads it: objects as Pairs,
    numbers as Num, Invalid when it refuses the text. Python's C scanner reads it when it agrees
    with Go (it accepts a subset of what Go accepts, once lone surrogates and constants are out);
    an iterative port of Go's decoder decides everything else."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("invalid UTF-8") from None
    if _SURROGATE_ESCAPE.search(text) is None:
        start = len(text) - len(text.lstrip(_JSON_SPACE))
        try:
            value, end = _SCAN(text, start)
        except (ValueError, RecursionError, StopIteration):
            pass
        else:
            if not text[end:].strip(_JSON_SPACE):
                return value
    return _Reader(text).parse()


_NOT_DELIM = frozenset("-+._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


class _Reader(golang.JSONReader):
    """protobuf-go's ``internal/encoding/json`` Decoder: golang.JSONReader's grammar with objects
    as Pairs, numbers as Num tokens (Go's own tokenizer), a literal or number that must end at a
    delimiter, lone surrogate escapes refused, and no depth limit of its own."""

    error = Invalid
    max_depth = math.inf

    def container(self, char: str) -> list[Any]:
        return Pairs() if char == "{" else []

    def is_object(self, container: Any) -> bool:
        return isinstance(container, Pairs)

    def put(self, container: Any, key: Optional[str], value: Node) -> None:
        container.append((key, value) if isinstance(container, Pairs) else value)

    def scalar(self, char: str) -> Node:
        start = self.pos - 1
        for word, value in (("null", None), ("true", True), ("false", False)):
            end = start + len(word)
            if self.text.startswith(word, start) and not (end < len(self.text) and self.text[end] in _NOT_DELIM):
                self.pos = end
                return value
        size = _number_size(self.text, start)
        if size is None:
            self.fail("invalid value")
        self.pos = start + size
        return Num(self.text[start:self.pos])

    def unicode_escape(self) -> str:
        code = self.hex4()
        if not 0xD800 <= code <= 0xDFFF:
            return chr(code)
        if not (code <= 0xDBFF and self.text.startswith("\\u", self.pos)):
            self.fail("invalid escape code in string")
        self.pos += 2
        low = self.hex4()
        if not 0xDC00 <= low <= 0xDFFF:
            self.fail("invalid escape code in string")
        return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))


def _number_size(text: str, start: int) -> Optional[int]:
    """Go's ``parseNumber``: the length of the number token at ``start``, None when there is none.
    Like Go it takes an exponent with no digits (``1e`` before a delimiter) as part of the token."""
    pos, end = start, len(text)
    if pos < end and text[pos] == "-":
        pos += 1
    if pos >= end:
        return None
    if text[pos] == "0":
        pos += 1
    elif "1" <= text[pos] <= "9":
        pos += 1
        while pos < end and "0" <= text[pos] <= "9":
            pos += 1
    else:
        return None
    if pos + 1 < end and text[pos] == "." and "0" <= text[pos + 1] <= "9":
        pos += 2
        while pos < end and "0" <= text[pos] <= "9":
            pos += 1
    if pos + 1 < end and text[pos] in "eE":
        pos += 1
        if text[pos] in "+-":
            pos += 1
            if pos >= end:
                return None
        while pos < end and "0" <= text[pos] <= "9":
            pos += 1
    if pos < end and text[pos] in _NOT_DELIM:
        return None
    return pos - start


# --- numbers as protojson reads them ------------------------------------------------------------

_NUMBER_PARTS = re.compile(r"(-?)(?:0|([1-9][0-9]*))(?:\.([0-9]+))?(?:[eE]([-+]?[0-9]*))?")


def _int_text(raw: str) -> Optional[str]:
    """Go's ``Token.getIntStr``: the integer a number token spells, exponent and fraction applied,
    as decimal text; None when it is not whole (or its exponent is out of range)."""
    match = _NUMBER_PARTS.fullmatch(raw)
    if match is None:
        return None
    sign, whole, fraction, exponent = match.groups()
    whole, fraction = whole or "", (fraction or "").rstrip("0")
    if not whole and not fraction:
        return "0"
    shift = 0
    if exponent:
        try:
            shift = int(exponent)
        except ValueError:
            return None
        if not -(2**31) <= shift < 2**31:
            return None
    if shift >= 0:
        if len(fraction) > shift or len(whole) + shift > 20:
            return None
        digits = whole + fraction + "0" * (shift - len(fraction))
    else:
        index = len(whole) + shift
        if fraction or index < 0 or whole[index:].strip("0"):
            return None
        digits = whole[:index]
    return sign + digits


def _int_in(raw: str, bounds: tuple[int, int]) -> Optional[int]:
    text = _int_text(raw)
    if text is None:
        return None
    value = int(text)
    return value if bounds[0] <= value <= bounds[1] else None


def _number_token(text: str) -> Optional[str]:
    """The first token of ``text`` when it is a number (how protojson reads a number given as a
    JSON string), else None."""
    size = _number_size(text, 0) if text[:1] in "-0123456789" and text else None
    return None if size is None else text[:size]


def _float(raw: str) -> Optional[float]:
    """``strconv.ParseFloat(raw, 64)`` of a number token; None where Go reports an error."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return None if math.isinf(value) else value


def _scalar(value: Node, kind: str) -> Decoded:
    """A JSON value read into a scalar field of ``kind``; Invalid when protojson refuses it."""
    result: Decoded = None
    if kind == "string":
        result = value if type(value) is str else None
    elif kind == "bool":
        result = value if type(value) is bool else None
    elif kind in _INT_BOUNDS:
        raw = value.raw if isinstance(value, Num) else _quoted_number(value)
        result = None if raw is None else _int_in(raw, _INT_BOUNDS[kind])
    elif kind == "double":
        result = _double(value)
    if result is None:
        raise Invalid(f"invalid value for {kind} field")
    return result


_INT_BOUNDS = {"int32": INT32, "int64": INT64, "uint32": UINT32, "uint64": UINT64}
_FLOAT_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _quoted_number(value: Node) -> Optional[str]:
    if type(value) is not str or golang.trim_space(value) != value:
        return None
    return _number_token(value)


def _double(value: Node) -> Optional[float]:
    if isinstance(value, Num):
        return _float(value.raw)
    if type(value) is str:
        if value in _FLOAT_NAMES:
            return _FLOAT_NAMES[value]
        raw = _quoted_number(value)
        return None if raw is None else _float(raw)
    return None


# --- the messages the upstream knew -------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One field of a message: ``kind`` is a scalar kind or a message's full name; ``map`` marks a
    ``map<string, kind>``; ``present`` a proto3 ``optional`` (written even when zero)."""

    name: str
    kind: str
    repeated: bool = False
    map: bool = False
    present: bool = False

    @property
    def json_name(self) -> str:
        return _json_name(self.name)


def _json_name(name: str) -> str:
    """protobuf-go's ``strs.JSONCamelCase``: ``tool_call_id`` is ``toolCallId``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


STRUCT, VALUE, LIST_VALUE, ANY, EMPTY = (
    "google.protobuf." + name for name in ("Struct", "Value", "ListValue", "Any", "Empty"))
WRAPPERS = {
    "google.protobuf.DoubleValue": "double", "google.protobuf.Int64Value": "int64",
    "google.protobuf.UInt64Value": "uint64", "google.protobuf.Int32Value": "int32",
    "google.protobuf.UInt32Value": "uint32", "google.protobuf.BoolValue": "bool",
    "google.protobuf.StringValue": "string",
}

_S, _I32, _U32, _I64, _D, _B = "string", "int32", "uint32", "int64", "double", "bool"
# The messages of pinocchio's proto/ at 2d3c25a5 (the types its web-chat server registered), in
# declaration order, which is the order protojson writes their fields in.
MESSAGES = {
    "sem.timeline.TimelineEntityV2": (
        Field("id", _S), Field("kind", _S), Field("created_at_ms", _I64),
        Field("updated_at_ms", _I64), Field("props", STRUCT), Field("typed", ANY),
        Field("meta", _S, map=True)),
    "sem.timeline.TimelineUpsertV2": (
        Field("conv_id", _S), Field("version", "uint64"), Field("entity", "sem.timeline.TimelineEntityV2")),
    "sem.timeline.TimelineSnapshotV2": (
        Field("conv_id", _S), Field("version", "uint64"), Field("server_time_ms", _I64),
        Field("entities", "sem.timeline.TimelineEntityV2", repeated=True)),
    "sem.timeline.MessageSnapshotV1": (
        Field("schema_version", _U32), Field("role", _S), Field("content", _S), Field("streaming", _B),
        Field("metadata", _S, map=True)),
    "sem.timeline.StatusSnapshotV1": (Field("schema_version", _U32), Field("text", _S), Field("type", _S)),
    "sem.timeline.ToolCallSnapshotV1": (
        Field("schema_version", _U32), Field("name", _S), Field("input", STRUCT), Field("status", _S),
        Field("progress", _D), Field("done", _B)),
    "sem.timeline.ToolResultSnapshotV1": (
        Field("schema_version", _U32), Field("tool_call_id", _S), Field("result", STRUCT),
        Field("error", _S), Field("result_raw", _S), Field("custom_kind", _S), Field("name", _S)),
    "sem.timeline.TeamAnalysisSnapshotV1": (
        Field("schema_version", _U32), Field("status", _S), Field("team_size", _I32), Field("depth", _S),
        Field("progress", _D), Field("current_pair", _S), Field("insights", _S, repeated=True),
        Field("visualization_data", "sem.domain.team_analysis.TeamAnalysisResult.VisualizationData")),
    "sem.domain.team_analysis.TeamAnalysisStart": (
        Field("analysis_id", _S), Field("team_size", _I32), Field("depth", _S)),
    "sem.domain.team_analysis.TeamAnalysisProgress": (
        Field("analysis_id", _S), Field("analyzing", _S), Field("progress", _D), Field("processed", _I32),
        Field("total", _I32)),
    "sem.domain.team_analysis.TeamAnalysisResult": (
        Field("analysis_id", _S), Field("network_score", _D), Field("insights", _S, repeated=True),
        Field("visualization_data", "sem.domain.team_analysis.TeamAnalysisResult.VisualizationData")),
    "sem.domain.team_analysis.TeamAnalysisResult.Node": (Field("id", _S), Field("label", _S)),
    "sem.domain.team_analysis.TeamAnalysisResult.Edge": (
        Field("source", _S), Field("target", _S), Field("strength", _D), Field("sentiment", _S)),
    "sem.domain.team_analysis.TeamAnalysisResult.VisualizationData": (
        Field("nodes", "sem.domain.team_analysis.TeamAnalysisResult.Node", repeated=True),
        Field("edges", "sem.domain.team_analysis.TeamAnalysisResult.Edge", repeated=True)),
    "sem.team.team_selection.TeamMemberPayload": (
        Field("name", _S), Field("person_id", _S), Field("email", _S), Field("role", _S),
        Field("role_text", _S), Field("score", _D)),
    "sem.team.team_selection.TeamMemberAdded": (
        Field("item_id", _S), Field("data", "sem.team.team_selection.TeamMemberPayload")),
    "sem.base.agent.AgentModeV1": (Field("id", _S), Field("title", _S), Field("data", STRUCT)),
    "sem.base.debugger.DebuggerPauseV1": (
        Field("id", _S), Field("pause_id", _S), Field("phase", _S), Field("summary", _S),
        Field("deadline_ms", _I64), Field("extra", STRUCT)),
    "sem.base.llm.LlmStart": (Field("id", _S), Field("role", _S)),
    "sem.base.llm.LlmDelta": (Field("id", _S), Field("delta", _S), Field("cumulative", _S)),
    "sem.base.llm.LlmFinal": (Field("id", _S), Field("text", _S)),
    "sem.base.llm.LlmDone": (Field("id", _S),),
    "sem.base.log.LogV1": (Field("id", _S), Field("level", _S), Field("message", _S), Field("fields", STRUCT)),
    "sem.base.meta.UsageV1": (
        Field("input_tokens", _I32), Field("output_tokens", _I32), Field("cached_tokens", _I32),
        Field("cache_creation_input_tokens", _I32), Field("cache_read_input_tokens", _I32)),
    "sem.base.meta.LlmInferenceMetadataV1": (
        Field("model", _S), Field("temperature", _D, present=True), Field("top_p", _D, present=True),
        Field("max_tokens", _I32, present=True), Field("stop_reason", _S, present=True),
        Field("usage", "sem.base.meta.UsageV1"), Field("duration_ms", _I64, present=True)),
    "sem.base.tool.ToolStart": (Field("id", _S), Field("name", _S), Field("input", STRUCT)),
    "sem.base.tool.ToolDelta": (Field("id", _S), Field("patch", STRUCT)),
    "sem.base.tool.ToolResult": (
        Field("id", _S), Field("result", _S), Field("custom_kind", _S), Field("name", _S)),
    "sem.base.tool.ToolDone": (Field("id", _S),),
    "sem.base.ws.WsHelloV1": (Field("conv_id", _S), Field("runtime_key", _S), Field("server_time", _I64)),
    "sem.base.ws.WsPongV1": (Field("conv_id", _S), Field("server_time", _I64)),
}
_WELL_KNOWN = {STRUCT, VALUE, LIST_VALUE, EMPTY, *WRAPPERS}
_BY_NAME = {
    message: {**{field.name: field for field in fields}, **{field.json_name: field for field in fields}}
    for message, fields in MESSAGES.items()
}


_LABELS = {message: [(field, f'"{field.json_name}":') for field in fields]
           for message, fields in MESSAGES.items()}


def resolvable(type_url: str) -> Optional[str]:
    """The message an Any's ``@type`` names (what follows its last ``/``), None when unknown."""
    name = type_url[type_url.rfind("/") + 1:]
    return name if name in MESSAGES or name in _WELL_KNOWN else None


# --- decoding a message -------------------------------------------------------------------------

def _message(node: Node, name: str, budget: int, skip_type_url: bool = False) -> Decoded:
    """``{field name: value}`` of message ``name`` read from ``node``, as ``unmarshalMessage``
    does it with DiscardUnknown; ``budget`` counts the nested messages still allowed."""
    budget -= 1
    if budget < 0:
        raise Invalid("exceeded max recursion depth")
    if name in _WELL_KNOWN or name == ANY:
        return _well_known(node, name, budget)
    if not isinstance(node, Pairs):
        raise Invalid(f"{name}: expected an object")
    fields = _BY_NAME[name]
    seen: set[str] = set()
    out: dict[str, Decoded] = {}
    for key, value in node:
        if skip_type_url and key == "@type":
            continue
        field = fields.get(key)
        if field is None:
            _skip(value, budget)
            continue
        if field.name in seen:
            raise Invalid(f"duplicate field {key}")
        seen.add(field.name)
        if value is None and field.kind != VALUE:
            continue
        out[field.name] = _field_value(value, field, budget)
    return out


def _field_value(value: Node, field: Field, budget: int) -> Decoded:
    if field.map:
        if not isinstance(value, Pairs):
            raise Invalid(f"{field.name}: expected an object")
        entries: dict[str, Decoded] = {}
        for key, item in value:
            if key in entries:
                raise Invalid(f"duplicate map key {key}")
            entries[key] = _single(item, field.kind, budget)
        return entries
    if field.repeated:
        if not isinstance(value, list) or isinstance(value, Pairs):
            raise Invalid(f"{field.name}: expected an array")
        return [_single(item, field.kind, budget) for item in value]
    return _single(value, field.kind, budget)


def _single(value: Node, kind: str, budget: int) -> Decoded:
    if kind in MESSAGES or kind in _WELL_KNOWN or kind == ANY:
        return _message(value, kind, budget)
    return _scalar(value, kind)


def _skip(value: Node, budget: int) -> None:
    """``skipJSONValue``: an unknown field's value is dropped unless nested deeper than allowed."""
    if _depth(value) > budget:
        raise Invalid("exceeded max recursion depth")


def _depth(value: Node) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child[1] if isinstance(item, Pairs) else child, depth + 1) for child in item)
    return deepest


class Struct(dict):
    """A decoded ``google.protobuf.Struct``: its keys and their Values."""


class ListValue(list):
    """A decoded ``google.protobuf.ListValue``."""


@dataclass(frozen=True)
class AnyValue:
    """A decoded ``google.protobuf.Any``: its type URL and message name (both None for an empty
    Any) and its message."""

    type_url: Optional[str]
    name: Optional[str] = None
    value: Decoded = None


@dataclass(frozen=True)
class Wrapper:
    """A decoded wrapper (``google.protobuf.Int64Value`` ...) or ``Empty`` (kind None)."""

    kind: Optional[str]
    value: Decoded = None


def _well_known(node: Node, name: str, budget: int) -> Decoded:
    if name in (STRUCT, VALUE, LIST_VALUE):
        return _struct_value(node, name, budget)
    if name == ANY:
        return _any(node, budget)
    if name == EMPTY:
        if not isinstance(node, Pairs):
            raise Invalid("google.protobuf.Empty: expected an object")
        for _, value in node:
            _skip(value, budget)
        return Wrapper(None)
    return Wrapper(WRAPPERS[name], _scalar(node, WRAPPERS[name]))


def _struct_value(node: Node, name: str, budget: int) -> Decoded:
    """A Struct, Value or ListValue whose own level is paid for, iteratively: each Value inside
    costs one level of budget (a Struct or ListValue held by a Value costs none, as in
    protobuf-go). Each stack entry is (JSON node, message name, budget, where to put the result:
    a container and its key)."""
    root: list[Decoded] = [None]
    stack: list[tuple[Node, str, int, Any, Any]] = [(node, name, budget, root, 0)]
    charged = False
    while stack:
        node, name, budget, container, key = stack.pop()
        if name == VALUE:
            if charged:
                budget -= 1
                if budget < 0:
                    raise Invalid("exceeded max recursion depth")
            if isinstance(node, Pairs):
                name = STRUCT
            elif isinstance(node, list):
                name = LIST_VALUE
            else:
                container[key] = _struct_number(node.raw) if isinstance(node, Num) else node
                continue
        charged = True
        if name == STRUCT:
            if not isinstance(node, Pairs):
                raise Invalid("google.protobuf.Struct: expected an object")
            struct = container[key] = Struct()
            for field, value in node:
                if field in struct:
                    raise Invalid(f"duplicate map key {field}")
                struct[field] = None
                stack.append((value, VALUE, budget, struct, field))
        else:
            if not isinstance(node, list) or isinstance(node, Pairs):
                raise Invalid("google.protobuf.ListValue: expected an array")
            items = container[key] = ListValue([None] * len(node))
            stack.extend((value, VALUE, budget, items, index) for index, value in enumerate(node))
    return root[0]


class GoFloat(float):
    """A Struct number that Python's JSON encoder would not print as protojson does."""


_EXACT = 2.0**53


def _struct_number(raw: str) -> float:
    """A Value's number: an int where it is a whole float64 below 2^53 (printed alike by
    both), a float where ``repr`` is protojson's text, else a GoFloat."""
    number = _float(raw)
    if number is None:
        raise Invalid("invalid google.protobuf.Value")
    if number.is_integer() and abs(number) < _EXACT and not (number == 0 and math.copysign(1.0, number) < 0):
        return int(number)
    if not number.is_integer() and 1e-4 <= abs(number) < 1e16:
        return number
    return GoFloat(number)


def _any(node: Node, budget: int) -> AnyValue:
    if not isinstance(node, Pairs):
        raise Invalid("google.protobuf.Any: expected an object")
    if not node:
        return AnyValue(None)
    type_url = None
    for key, value in node:
        if key != "@type":
            _skip(value, budget)
            continue
        if type_url is not None:
            raise Invalid('duplicate "@type" field')
        if type(value) is not str or not value:
            raise Invalid("@type must be a non-empty string")
        type_url = value
    if type_url is None:
        _skip(node, budget)
        return AnyValue(None)
    name = resolvable(type_url)
    if name is None:
        raise Invalid(f"unable to resolve {type_url!r}")
    if name not in _WELL_KNOWN:
        return AnyValue(type_url, name, _message(node, name, budget, skip_type_url=True))
    found = False
    value = None
    for key, item in node:
        if key == "value":
            if found:
                raise Invalid('duplicate "value" field')
            value, found = _well_known(item, name, budget), True
        elif key != "@type":
            _skip(item, budget)
    if not found:
        if name != EMPTY:
            raise Invalid('missing "value" field')
        value = Wrapper(None)
    return AnyValue(type_url, name, value)


# --- writing ------------------------------------------------------------------------------------

def encode_string(text: str) -> str:
    """A string as protojson writes it: UTF-8 as is (no HTML escaping), ``"`` ``\\`` and control
    characters escaped, the named ones short (``\\n``), the rest as ``\\u00XX``."""
    return _encode_basestring(text)


_encode_basestring = json.encoder.encode_basestring  # the C escaper of json.dumps(ensure_ascii=False)


def format_double(number: float) -> str:
    """A float64 as protojson writes it: the shortest decimal that reads back, in fixed notation
    between 1e-6 and 1e21, else ``1e+21`` / ``1e-7``; NaN and infinities as strings."""
    if number != number:
        return '"NaN"'
    if math.isinf(number):
        return '"Infinity"' if number > 0 else '"-Infinity"'
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    sign = "-" if number < 0 else ""
    digits, point = golang.shortest_digits(abs(number))
    if abs(number) < 1e-6 or abs(number) >= 1e21:
        exponent = point - 1
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{head}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}".replace("e-0", "e-")
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _scalar_json(value: Decoded, kind: str) -> str:
    if kind == "string":
        return encode_string(value)
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("int64", "uint64"):
        return f'"{value}"'
    if kind == "double":
        return format_double(value)
    return str(value)


def _populated(value: Decoded, field: Field) -> bool:
    if field.map or field.repeated:
        return bool(value)
    if field.present or field.kind in MESSAGES or field.kind in _WELL_KNOWN or field.kind == ANY:
        return True
    if field.kind == "double":
        return value != 0 or math.copysign(1.0, value) < 0
    return bool(value)


def encode_message(values: Decoded, name: str, type_url: Optional[str] = None) -> str:
    """A decoded message as protojson writes it: populated fields in declaration order, JSON names."""
    if name in _WELL_KNOWN or name == ANY:
        return _encode_well_known(values, name)
    parts = [] if type_url is None else ['"@type":' + encode_string(type_url)]
    for field, label in _LABELS[name]:
        if field.name in values and _populated(values[field.name], field):
            parts.append(label + _encode_field(values[field.name], field))
    return "{" + ",".join(parts) + "}"


def _encode_field(value: Decoded, field: Field) -> str:
    if field.map:
        return "{" + ",".join(encode_string(key) + ":" + _encode_single(value[key], field.kind)
                              for key in sorted(value)) + "}"
    if field.repeated:
        return "[" + ",".join(_encode_single(item, field.kind) for item in value) + "]"
    return _encode_single(value, field.kind)


def _encode_single(value: Decoded, kind: str) -> str:
    if kind in MESSAGES or kind in _WELL_KNOWN or kind == ANY:
        return encode_message(value, kind)
    return _scalar_json(value, kind)


def _encode_well_known(value: Decoded, name: str) -> str:
    if isinstance(value, AnyValue):
        if value.type_url is None or value.name is None:
            return "{}"
        if value.name in _WELL_KNOWN:
            return ('{"@type":' + encode_string(value.type_url) + ',"value":'
                    + _encode_well_known(value.value, value.name) + "}")
        return encode_message(value.value, value.name, value.type_url)
    if isinstance(value, Wrapper):
        return "{}" if value.kind is None else _scalar_json(value.value, value.kind)
    return encode_struct_value(value)


_C_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                             check_circular=False, allow_nan=False).encode


def encode_struct_value(value: Decoded) -> str:
    """A Struct, ListValue or Value's content as JSON: keys in byte order, numbers as float64.
    Python's C encoder writes it when every number is one it prints as Go does (no GoFloat) and
    the nesting suits it; an iterative writer does the rest."""
    if not _has_go_float(value):
        try:
            return _C_ENCODE(value)
        except RecursionError:
            pass
    return _encode_iteratively(value)


def _has_go_float(value: Decoded) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif type(item) is GoFloat:
            return True
    return False


def _encode_iteratively(value: Decoded) -> str:
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Literal):
            out.append(item.text)
        elif isinstance(item, dict):
            parts = [_OPEN_OBJECT]
            for index, key in enumerate(sorted(item)):
                parts += [_Literal(("," if index else "") + encode_string(key) + ":"), item[key]]
            stack.extend(reversed(parts + [_CLOSE_OBJECT]))
        elif isinstance(item, list):
            parts = [_OPEN_ARRAY]
            for index, element in enumerate(item):
                parts += [_COMMA, element] if index else [element]
            stack.extend(reversed(parts + [_CLOSE_ARRAY]))
        else:
            out.append(_leaf(item))
    return "".join(out)


class _Literal:
    """JSON text to write as is, told apart from a string value."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_OPEN_OBJECT, _CLOSE_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY, _COMMA = map(_Literal, "{}[],")


def _leaf(value: Decoded) -> str:
    literal = golang.json_literal(value)
    if literal is not None:
        return literal
    if isinstance(value, (int, float)):
        return format_double(float(value))
    return encode_string(value)


# --- the entity ---------------------------------------------------------------------------------

ENTITY = "sem.timeline.TimelineEntityV2"


def entity(data: bytes) -> bytes:
    """One ``entity_json`` (bytes) re-encoded as the upstream's snapshot wrote it, as UTF-8
    bytes; Invalid where the upstream failed. A pure function of the text, so answers are
    remembered (see Memo)."""
    found = _MEMO.get(data)
    if found is None:
        found = encode_message(_message(parse(data), ENTITY, RECURSION_LIMIT), ENTITY).encode("utf-8")
        _MEMO.put(data, found)
    return found


class Memo:
    """A memo of re-encoded entities, bounded by the bytes it holds (the oldest go first): the
    debug UI asks for the same conversation again and again, and re-encoding is most of an
    answer's cost. Texts longer than ``largest`` are not kept. Reads take no lock (a dict read is
    atomic); writes do."""

    def __init__(self, budget: int = 32_000_000, largest: int = 64_000) -> None:
        self.budget, self.largest, self.size = budget, largest, 0
        self.entries: OrderedDict[bytes, bytes] = OrderedDict()
        self.get = self.entries.get
        self.lock = threading.Lock()

    def put(self, key: bytes, value: bytes) -> None:
        cost = len(key) + len(value)
        if cost > self.largest:
            return
        with self.lock:
            if key in self.entries:
                return
            self.entries[key] = value
            self.size += cost
            while self.size > self.budget:
                old_key, old_value = self.entries.popitem(last=False)
                self.size -= len(old_key) + len(old_value)


_MEMO = Memo()


def snapshot(conv_id: bytes, version: int, server_time_ms: int, entities: list[bytes]) -> bytes:
    """The ``TimelineSnapshotV2`` body (bytes) from re-encoded ``entities`` (bytes each);
    ``conv_id`` is bytes, and Invalid (the upstream's marshal failure) when it is not UTF-8."""
    try:
        conv = conv_id.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("string field contains invalid UTF-8") from None
    head = '{"convId":' + encode_string(conv)
    if version:
        head += f',"version":"{version}"'
    head += f',"serverTimeMs":"{server_time_ms}"'
    if not entities:
        return (head + "}").encode("utf-8")
    return (head + ',"entities":[').encode("utf-8") + b",".join(entities) + b"]}"
