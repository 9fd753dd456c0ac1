"""The three pieces of Go the upstream store runs on metadata, reproduced exactly.

* :func:`decode`: ``encoding/json`` unmarshalling into ``any``: every number a float64, duplicate
  keys keep the last value, lone surrogate escapes become U+FFFD, ``NaN`` / ``Infinity`` and
  numbers beyond float64 are errors, nesting deeper than 10,000 levels is an error.
* :func:`sprint`: ``fmt.Sprint`` of such a value (``1e+06``, ``map[a:1 b:x]``, ``[x <nil>]``).
* :func:`trim_space`: ``strings.TrimSpace`` (Unicode White_Space, not Python's ``str.strip()``).
* :func:`parse_query`, :func:`sscanf_int`, :func:`sscanf_uint`: how an ``net/http`` handler reads
  its query string (``req.URL.Query()``) and a number in it (``fmt.Sscanf(s, "%d", &v)``).

Python's own ``json`` module does the parsing whenever its answer is Go's; a small iterative
parser takes the rare texts where it is not (surrogate escapes, nesting too deep for Python).
Pure functions, no I/O.
"""

import json
import json.scanner
import math
import re
from typing import Any, NoReturn, Optional

JSON = Any  # a decoded JSON value: dict, list, str, float, bool or None

MAX_DEPTH = 10000

# unicode.IsSpace: the Latin-1 spaces plus the rest of Unicode's White_Space property.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


class InvalidJSON(ValueError):
    """Text that Go's ``json.Unmarshal`` refuses."""


def scan_string(value: Any) -> str:
    """A column's value as database/sql scans it into a Go string: NULL as ``''``, a BLOB as
    its UTF-8 text (U+FFFD where it is not UTF-8), a number as its decimal text."""
    if type(value) is str:  # nearly always: the migration asks this several times a row
        return value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def trim_space(text: str) -> str:
    """Go's ``strings.TrimSpace``."""
    return text.strip(GO_SPACE)


def trim_space_bytes(data: bytes) -> bytes:
    """Go's ``strings.TrimSpace`` of a byte string that need not be UTF-8."""
    return trim_space(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


# net/url refuses a query of more than this many parameters (GODEBUG urlmaxqueryparams, Go 1.24+).
MAX_QUERY_PARAMS = 10000
_HEX = frozenset(b"0123456789abcdefABCDEF")


def parse_query(raw: bytes) -> dict[bytes, list[bytes]]:
    """``url.ParseQuery`` of the raw query bytes, errors dropped as ``URL.Query()`` drops them:
    {key: [values]} as bytes. A pair holding ``;`` or a bad ``%`` escape is left out; a query of
    more parameters than Go allows reads as empty."""
    values: dict[bytes, list[bytes]] = {}
    if raw.count(b"&") + 1 > MAX_QUERY_PARAMS:
        return values
    for pair in raw.split(b"&"):
        if b";" in pair or not pair:
            continue
        key, _, value = pair.partition(b"=")
        name, text = query_unescape(key), query_unescape(value)
        if name is not None and text is not None:
            values.setdefault(name, []).append(text)
    return values


def query_get(values: dict[bytes, list[bytes]], key: bytes) -> bytes:
    """``url.Values.Get``: the first value of ``key``, else empty."""
    return values.get(key, [b""])[0]


def query_unescape(data: bytes) -> Optional[bytes]:
    """``url.QueryUnescape``: ``%XX`` escapes and ``+`` as a space; None for a malformed escape."""
    if b"%" not in data:
        return data.replace(b"+", b" ")
    out = bytearray()
    index = 0
    while index < len(data):
        byte = data[index]
        if byte == 0x25:
            pair = data[index + 1:index + 3]
            if len(pair) < 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                return None
            out.append(int(pair, 16))
            index += 3
            continue
        out.append(0x20 if byte == 0x2B else byte)
        index += 1
    return bytes(out)


_LEADING_DIGITS = re.compile(rb"[0-9]+")


def sscanf_int(text: bytes, bits: int = 64) -> int:
    """``fmt.Sscanf(text, "%d", &v)`` into a signed integer of ``bits`` bits: after leading white
    space, an optional sign and the leading digits; 0 (v untouched) when there are none, when they
    overflow, or at a newline."""
    text = _skip_space(text)
    sign = -1 if text[:1] == b"-" else 1
    value = _scanned_digits(text[1:] if text[:1] in (b"+", b"-") else text)
    if value is None:
        return 0
    value *= sign
    return value if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1) else 0


def sscanf_uint(text: bytes, bits: int = 64) -> int:
    """``fmt.Sscanf(text, "%d", &v)`` into an unsigned integer: the leading digits after white
    space, no sign; 0 when there are none, when they overflow, or at a newline."""
    value = _scanned_digits(_skip_space(text))
    return value if value is not None and value < 2 ** bits else 0


def _skip_space(text: bytes) -> bytes:
    """The text after fmt's SkipSpace; a newline (never space to Fscanf) leaves nothing to read."""
    decoded = text.decode("utf-8", "surrogateescape")
    rest = decoded.lstrip(GO_SPACE)
    if "\n" in decoded[:len(decoded) - len(rest)]:
        return b""
    return rest.encode("utf-8", "surrogateescape")


def _scanned_digits(text: bytes) -> Optional[int]:
    match = _LEADING_DIGITS.match(text)
    if match is None:
        return None
    digits = match.group().lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= 20 else 2 ** 64


def _checked_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise InvalidJSON(f"number {text[:40]} overflows a float64")
    return number


def _reject_constant(name: str) -> NoReturn:
    raise InvalidJSON(f"invalid character {name[0]!r} looking for beginning of value")


def _int_as_float(text: str) -> float:
    return float(text) if len(text) < 300 else _checked_float(text)


# Python's own C scanner, called directly: the Python layer of JSONDecoder.decode costs as much
# as a small document's parse.
_SCAN = json.scanner.make_scanner(json.JSONDecoder(  # type: ignore[arg-type]  # typeshed types it as a class
    parse_float=_checked_float, parse_int=_int_as_float, parse_constant=_reject_constant,
))
_JSON_SPACE = " \t\n\r"
# Where Python's parser and Go's part ways on valid JSON: Python keeps a lone surrogate escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def decode(text: str) -> JSON:
    """``text`` decoded as Go's ``json.Unmarshal(..., &v)`` with ``v any``; InvalidJSON if refused."""
    if "\\u" not in text or _SURROGATE_ESCAPE.search(text) is None:
        start = 0
        if text[:1] in _JSON_SPACE:
            start = len(text) - len(text.lstrip(_JSON_SPACE))
        try:
            value, end = _SCAN(text, start)
        except StopIteration:
            raise InvalidJSON("invalid character looking for beginning of value") from None
        except RecursionError:
            return JSONReader(text).parse()
        except ValueError as error:
            raise InvalidJSON(str(error)) from None
        if end != len(text) and text[end:].strip(_JSON_SPACE):
            raise InvalidJSON(f"invalid character {text[end]!r} after top-level value")
        return value
    return JSONReader(text).parse()


_WS = " \t\n\r"
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")


class JSONReader:
    """An iterative JSON reader with Go's ``encoding/json`` rules, for the texts Python's parser
    gets wrong. Its hooks (containers, scalars, surrogate escapes, the error raised) let
    protojson.py read the same grammar as protobuf-go's decoder does."""

    error: type[ValueError] = InvalidJSON

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> NoReturn:
        raise self.error(f"{what} at offset {self.pos}")

    def skip_ws(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _WS:
            pos += 1
        self.pos = pos

    def parse(self) -> JSON:
        stack: list[list[Any]] = []  # the open containers, each as [container, key of the value being read]
        while True:
            self.skip_ws()
            value = self.value_or_open(stack)
            if value is _OPEN:
                self.skip_ws()
                container = stack[-1][0]
                if self.text.startswith(self.closer(container), self.pos):
                    self.pos += 1
                    value = stack.pop()[0]
                else:
                    if self.is_object(container):
                        stack[-1][1] = self.key()
                    continue
            while True:
                if not stack:
                    self.skip_ws()
                    if self.pos != len(self.text):
                        self.fail("invalid character after top-level value")
                    return value
                container, key = stack[-1]
                self.put(container, key, value)
                self.skip_ws()
                char = self.next_char()
                if char == ",":
                    if self.is_object(container):
                        self.skip_ws()
                        stack[-1][1] = self.key()
                    break
                if char != self.closer(container):
                    self.fail("expected , or a closing bracket")
                value = stack.pop()[0]

    def next_char(self) -> str:
        if self.pos >= len(self.text):
            self.fail("unexpected end of JSON input")
        char = self.text[self.pos]
        self.pos += 1
        return char

    def key(self) -> str:
        if self.next_char() != '"':
            self.fail("expected a string key")
        key = self.string()
        self.skip_ws()
        if self.next_char() != ":":
            self.fail("expected :")
        return key

    def value_or_open(self, stack: list[list[Any]]) -> JSON:
        """A scalar, or _OPEN after pushing a new container."""
        char = self.next_char()
        if char in "[{":
            if len(stack) >= self.max_depth:
                self.fail("exceeded max depth")
            stack.append([self.container(char), None])
            return _OPEN
        if char == '"':
            return self.string()
        return self.scalar(char)

    # --- the hooks ---

    max_depth: float = MAX_DEPTH

    def container(self, char: str) -> Any:
        return [] if char == "[" else {}

    def is_object(self, container: Any) -> bool:
        return isinstance(container, dict)

    def closer(self, container: Any) -> str:
        return "}" if self.is_object(container) else "]"

    def put(self, container: Any, key: Optional[str], value: JSON) -> None:
        if self.is_object(container):
            container[key] = value
        else:
            container.append(value)

    def scalar(self, char: str) -> JSON:
        """A literal or a number starting at ``char`` (already read)."""
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos - 1):
                self.pos += len(word) - 1
                return value
        match = _NUMBER.match(self.text, self.pos - 1)
        if match is None:
            self.fail(f"invalid character {char!r} looking for beginning of value")
        self.pos = match.end()
        return _checked_float(match.group())

    def string(self) -> str:
        text, parts = self.text, []
        while True:
            match = _PLAIN.match(text, self.pos)
            assert match is not None  # _PLAIN matches the empty string too
            parts.append(match.group())
            self.pos = match.end()
            char = self.next_char()
            if char == '"':
                return "".join(parts)
            if char != "\\":
                self.fail("invalid control character in string")
            char = self.next_char()
            if char in _ESCAPES:
                parts.append(_ESCAPES[char])
            elif char == "u":
                parts.append(self.unicode_escape())
            else:
                self.fail("invalid escape in string")

    def hex4(self) -> int:
        if _HEX4.fullmatch(self.text, self.pos, self.pos + 4) is None:
            self.fail("invalid \\u escape")
        self.pos += 4
        return int(self.text[self.pos - 4:self.pos], 16)

    def unicode_escape(self) -> str:
        code = self.hex4()
        if not 0xD800 <= code <= 0xDFFF:
            return chr(code)
        # Go's rule: a high surrogate followed by a low one is one character; any other
        # surrogate is U+FFFD, and what follows it is read on its own.
        if code <= 0xDBFF and self.text.startswith("\\u", self.pos):
            saved = self.pos
            self.pos += 2
            low = self.hex4()
            if 0xDC00 <= low <= 0xDFFF:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
            self.pos = saved
        return "\ufffd"


_OPEN = object()


def format_float(number: float) -> str:
    """A float64 as Go's ``strconv.FormatFloat(f, 'g', -1, 64)`` (and so ``fmt.Sprint``) writes it."""
    if number != number:
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    if number == 0:
        return sign + "0"
    return sign + _go_g(*shortest_digits(abs(number)))


def shortest_digits(number: float) -> tuple[str, int]:
    """``(digits, point)`` of a positive finite float: the shortest decimal digits that read back
    as it (as Go's and Python's shortest formatting both choose them), the decimal point after
    ``point`` of them."""
    mantissa, _, exponent = repr(number).partition("e")
    whole, _, fraction = mantissa.partition(".")
    significant = (whole + fraction).lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(whole) + len(fraction) - len(significant))
    return significant.rstrip("0"), point


def _go_g(digits: str, point: int) -> str:
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{head}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def json_literal(value: JSON) -> Optional[str]:
    """``null``, ``true`` or ``false`` for JSON's three literals (by identity: ``1`` is no
    ``true``), else None: what every encoder here writes for them."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    return None


def sprint(value: JSON) -> str:
    """Go's ``fmt.Sprint`` of a decoded JSON value; iterative, so any depth is fine."""
    out: list[str] = []
    stack: list[JSON] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif item is None:
            out.append("<nil>")
        elif isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (int, float)):
            out.append(format_float(float(item)))
        elif isinstance(item, dict):
            parts = ["map["]
            for index, key in enumerate(sorted(item)):
                parts += [(" " if index else "") + key + ":", item[key]]
            stack.extend(reversed(parts + ["]"]))
        elif isinstance(item, list):
            parts = ["["]
            for index, element in enumerate(item):
                parts += [" ", element] if index else [element]
            stack.extend(reversed(parts + ["]"]))
        else:
            raise TypeError(f"not a decoded JSON value: {type(item).__name__}")
    return "".join(out)
