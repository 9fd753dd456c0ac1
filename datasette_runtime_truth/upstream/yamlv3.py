"""YAML exactly as gopkg.in/yaml.v3 v3.0.1 ``Marshal`` writes a decoded JSON value (indent 4).

A port of the parts of yaml.v3 that a ``map[string]any`` from ``encoding/json`` reaches:
``encode.go`` (which strings may stay plain), ``resolve.go`` (what a plain scalar would read
back as), ``sorter.go`` (natural key order) and ``emitterc.go`` (scalar styles, indentation,
simple and complex keys). yaml.v3 never wraps lines: its ``best_width`` is unlimited.
Pure functions, no I/O.
"""

from functools import cmp_to_key, lru_cache
import calendar
import math
import re
from typing import Any, Optional

from .golang import JSON, format_float, json_literal

INDENT = 4
SIMPLE_KEY_LIMIT = 128
SAFE_PLAIN_CHECK_LIMIT = 1024  # longer strings go straight to the full analysis

_ROOT, _SEQUENCE, _VALUE, _SIMPLE_KEY, _COMPLEX_KEY = range(5)
_PLAIN, _SINGLE, _DOUBLE, _LITERAL = range(4)

_BREAKS = "\r\n\x85\u2028\u2029"
_BREAK = re.compile(r"[\r\n\x85\u2028\u2029]")
_LITERAL_BREAK = re.compile(r"([\n\u2028\u2029])")
_NOT_PRINTABLE = re.compile(r"[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]")
_BREAK_SPACE = re.compile(r"[\r\n\x85\u2028\u2029] ")
_SPACE_BREAK = re.compile(r" [\r\n\x85\u2028\u2029]")
_BLOCK_INDICATOR = re.compile(r":(?:[ \t]|\Z)|(?<=[ \t\r\n\x85\u2028\u2029\x00])#")
_NEEDS_ESCAPE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]")
_ANY_CHAR = re.compile(r".", re.DOTALL)
_DIGIT = re.compile(r"\d")
_SAFE_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@-]*(?: [A-Za-z0-9_./@-]+)*\Z")

_ESCAPES = {
    "\x00": "\\0", "\x07": "\\a", "\x08": "\\b", "\t": "\\t", "\n": "\\n", "\x0b": "\\v",
    "\x0c": "\\f", "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N",
    "\xa0": "\\_", "\u2028": "\\L", "\u2029": "\\P",
}

_RESOLVE_MAP = {
    "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
    ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
    "-.inf", "-.Inf", "-.INF",
}
_OLD_BOOLS = {
    "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
    "n", "N", "no", "No", "NO", "off", "Off", "OFF",
}
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_DOT_FLOAT = re.compile(r"\.[0-9_]*[0-9][0-9_]*(?:[eE][-+]?[0-9][0-9_]*)?\Z")
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?\Z")
_DIGITS = {
    2: re.compile(r"[01]+\Z"), 8: re.compile(r"[0-7]+\Z"),
    10: re.compile(r"[0-9]+\Z"), 16: re.compile(r"[0-9A-Fa-f]+\Z"),
}
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9][0-9]?)-([0-9][0-9]?)"
    r"(?:([Tt ])([0-9][0-9]?):([0-9][0-9]?):([0-9][0-9]?)(?:[.,][0-9]+)?"
    r"(Z|[-+][0-9]{2}:[0-9]{2})?)?\Z"
)


def dump(value: JSON, memo: Optional["Memo"] = None) -> str:
    """``value`` (a decoded JSON value) as yaml.v3 v3.0.1 ``Marshal`` writes it.

    ``memo``, a Memo shared by several calls, reuses the text written for the mappings and
    sequences it was told recur (``Memo.share``) wherever one is written again in the same
    emitter state."""
    emitter = _Emitter(memo)
    emitter.node(value, _ROOT)
    emitter.write_indent()
    return "".join(emitter.parts)


class Memo:
    """The text written for shared values, known by ``id``: whoever shares a value keeps it alive
    as long as the memo."""

    def __init__(self) -> None:
        self.shared: set[int] = set()
        self.texts: dict[tuple[Any, ...], tuple[str, int, bool, bool]] = {}

    def share(self, value: JSON) -> JSON:
        """Reuse what is written for ``value`` (a mapping or sequence) from now on."""
        if isinstance(value, (dict, list)) and value:
            self.shared.add(id(value))
        return value


class _Emitter:
    """The output state of yaml.v3's emitter: column, indentation, whitespace flags."""

    def __init__(self, memo: Optional[Memo] = None) -> None:
        self.memo = memo
        self.parts: list[str] = []
        self.column = 0
        self.indent = -1
        self.indents: list[int] = []
        self.whitespace = True
        self.indention = True

    def put(self, text: str) -> None:
        self.parts.append(text)
        self.column += len(text)

    def put_break(self) -> None:
        self.parts.append("\n")
        self.column = 0
        self.indention = True

    def write_break(self, char: str) -> None:
        self.parts.append(char)
        self.column = 0
        self.indention = True

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if not self.indention or self.column > indent or (self.column == indent and not self.whitespace):
            self.put_break()
        if self.column < indent:
            self.put(" " * (indent - self.column))
        self.whitespace = True

    def write_indicator(self, text: str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        self.put(text)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention

    def increase_indent(self, flow: bool, context: int) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = INDENT if flow else 0
        elif context == _SEQUENCE:
            self.indent += 2
        else:
            self.indent = INDENT * ((self.indent + INDENT) // INDENT)

    def node(self, value: JSON, context: int) -> None:
        if self.memo is None or id(value) not in self.memo.shared:
            self.write_node(value, context)
            return
        # What a node writes depends only on the value and this state, and it leaves the
        # indentation as it found it.
        key = (id(value), context, self.column, self.indent, self.whitespace, self.indention)
        known = self.memo.texts.get(key)
        if known is None:
            start = len(self.parts)
            self.write_node(value, context)
            self.parts[start:] = ["".join(self.parts[start:])]
            known = self.memo.texts[key] = (self.parts[-1], self.column, self.whitespace, self.indention)
        else:
            self.parts.append(known[0])
        _, self.column, self.whitespace, self.indention = known

    def write_node(self, value: JSON, context: int) -> None:
        if isinstance(value, dict):
            if value:
                self.block_mapping(value, context)
            else:
                self.empty_flow("{", "}")
        elif isinstance(value, list):
            if value:
                self.block_sequence(value, context)
            else:
                self.empty_flow("[", "]")
        elif isinstance(value, str):
            self.string(value, context)
        else:
            self.plain(_non_string(value))

    def empty_flow(self, start: str, end: str) -> None:
        self.write_indicator(start, True, True, False)
        self.write_indicator(end, False, False, False)

    def block_mapping(self, mapping: dict[str, JSON], context: int) -> None:
        self.increase_indent(False, context)
        for key in _sorted_keys(tuple(mapping)):
            self.write_indent()
            if _is_simple_key(key):
                if _key_style(key) == _PLAIN:
                    # string(), then write_indicator(":"), for the usual key: text at the
                    # indentation just written, so no space before it.
                    self.parts.append(key)
                    self.parts.append(":")
                    self.column += len(key) + 1
                    self.whitespace = self.indention = False
                else:
                    self.string(key, _SIMPLE_KEY)
                    self.write_indicator(":", False, False, False)
            else:
                self.write_indicator("?", True, False, True)
                self.string(key, _COMPLEX_KEY)
                self.write_indent()
                self.write_indicator(":", True, False, True)
            self.node(mapping[key], _VALUE)
        self.indent = self.indents.pop()

    def block_sequence(self, items: list[JSON], context: int) -> None:
        self.increase_indent(False, context)
        for item in items:
            self.write_indent()
            self.write_indicator("-", True, False, True)
            self.node(item, _SEQUENCE)
        self.indent = self.indents.pop()

    def plain(self, text: str) -> None:
        if not self.whitespace:
            self.put(" ")
        self.put(text)
        self.whitespace = False
        self.indention = False

    def string(self, text: str, context: int) -> None:
        if len(text) <= SIMPLE_KEY_LIMIT:
            style = _short_string_style(text, context == _SIMPLE_KEY)
        else:
            style = _string_style(text, context == _SIMPLE_KEY)
        if style == _PLAIN:
            self.plain(text)
            return
        self.increase_indent(True, context)
        if style == _DOUBLE:
            self.double_quoted(text)
        elif style == _SINGLE:
            self.single_quoted(text)
        else:
            self.literal(text)
        self.indent = self.indents.pop()

    def double_quoted(self, text: str) -> None:
        self.write_indicator('"', True, False, False)
        pattern = _ANY_CHAR if text.startswith("\ufeff") else _NEEDS_ESCAPE
        self.put(pattern.sub(_escape, text))
        self.write_indicator('"', False, False, False)

    def single_quoted(self, text: str) -> None:
        self.write_indicator("'", True, False, False)
        breaks = False
        for part in _LITERAL_BREAK.split(text.replace("'", "''")):
            if part in ("\n", "\u2028", "\u2029"):
                if not breaks and part == "\n":
                    self.put_break()
                self.write_break(part)
                breaks = True
            elif part:
                if breaks:
                    self.write_indent()
                self.put(part)
                self.indention = False
                breaks = False
        self.write_indicator("'", False, False, False)

    def literal(self, text: str) -> None:
        self.write_indicator("|", True, False, False)
        if text[0] == " " or text[0] in _BREAKS:
            self.write_indicator(str(INDENT), False, False, False)
        chomp = _chomp_indicator(text)
        if chomp:
            self.write_indicator(chomp, False, False, False)
        self.whitespace = True
        if "\u2028" in text or "\u2029" in text:
            self.literal_lines(text)
            return
        pad = " " * max(self.indent, 0)
        source = text if text[0] == "\n" else "\n" + text
        self.parts.append(_empty_line_pad(pad).sub("\n", source.replace("\n", "\n" + pad)) if pad else source)
        last = text[text.rindex("\n") + 1:]
        self.column = len(pad) + len(last) if last else 0
        self.indention = not last

    def literal_lines(self, text: str) -> None:
        """The general case: line separators other than ``\\n`` break lines too."""
        for part in _LITERAL_BREAK.split(text):
            if part in ("\n", "\u2028", "\u2029"):
                self.write_break(part)
            elif part:
                self.write_indent()
                self.put(part)
                self.indention = False


def _non_string(value: JSON) -> str:
    literal = json_literal(value)
    if literal is not None:
        return literal
    if isinstance(value, (int, float)):
        text = format_float(float(value))
        return {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)
    raise TypeError(f"not a decoded JSON value: {type(value).__name__}")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def _chomp_indicator(text: str) -> str:
    if text[-1] not in _BREAKS:
        return "-"
    if len(text) == 1 or text[-2] in _BREAKS:
        return "+"
    return ""


@lru_cache(maxsize=64)
def _empty_line_pad(pad: str) -> re.Pattern[str]:
    """The indentation of a literal block's empty line, which yaml.v3 does not write."""
    return re.compile("\n" + pad + r"(?=\n|\Z)")


@lru_cache(maxsize=4096)
def _is_simple_key(key: str) -> bool:
    return _BREAK.search(key) is None and len(key.encode("utf-8", "surrogatepass")) <= SIMPLE_KEY_LIMIT


@lru_cache(maxsize=4096)
def _sorted_keys(keys: tuple[str, ...]) -> list[str]:
    if not any(_DIGIT.search(key) for key in keys):
        return sorted(keys, key=_digit_free_order)
    return sorted(keys, key=_NATURAL_ORDER)


def _digit_free_order(key: str) -> list[tuple[bool, str]]:
    """sorter.go's order for keys without digits: character by character, letters after the rest."""
    return [(char.isalpha(), char) for char in key]


@lru_cache(maxsize=8192)
def _short_string_style(text: str, simple_key: bool) -> int:
    return _string_style(text, simple_key)


def _key_style(key: str) -> int:
    return _short_string_style(key, True) if len(key) <= SIMPLE_KEY_LIMIT else _string_style(key, True)


def _string_style(text: str, simple_key: bool) -> int:
    """yaml.v3's style for a string: stringv's choice, then yaml_emitter_select_scalar_style."""
    if len(text) < SAFE_PLAIN_CHECK_LIMIT and _SAFE_PLAIN.match(text):
        if text in _RESOLVE_MAP or text in _OLD_BOOLS:
            return _DOUBLE
        return _PLAIN
    if "\n" in text:
        style = _LITERAL
    elif _plain_reads_as_string(text):
        style = _PLAIN
    else:
        style = _DOUBLE
    if style == _DOUBLE:
        return _DOUBLE
    block_plain, single_quoted, block = _analyze(text)
    if style == _PLAIN:
        if block_plain:
            return _PLAIN
        return _SINGLE if single_quoted else _DOUBLE
    return _LITERAL if block and not simple_key else _DOUBLE


def _analyze(text: str) -> tuple[bool, bool, bool]:
    """yaml_emitter_analyze_scalar's (block plain, single quoted, block) allowed, for a
    non-empty string."""
    line_breaks = _BREAK.search(text) is not None
    special = _NOT_PRINTABLE.search(text) is not None
    tabs = "\t" in text
    space_break = _SPACE_BREAK.search(text) is not None
    break_space = _BREAK_SPACE.search(text) is not None
    leading = text[0] == " " or text[0] in _BREAKS
    trailing_space = text[-1] == " "
    trailing = trailing_space or text[-1] in _BREAKS
    block_plain = not (
        leading or trailing or line_breaks or break_space or space_break or tabs or special
        or _has_block_indicator(text)
    )
    single_quoted = not (break_space or space_break or tabs or special)
    block = not (trailing_space or space_break or special)
    return block_plain, single_quoted, block


def _has_block_indicator(text: str) -> bool:
    if text.startswith(("---", "...")):
        return True
    first = text[0]
    if first in "#,[]{}&*!|>'\"%@`":
        return True
    if first in "?:-" and (len(text) == 1 or text[1] in " \t"):
        return True
    return _BLOCK_INDICATOR.search(text, 1) is not None


def _plain_reads_as_string(text: str) -> bool:
    """encode.go stringv's canUsePlain: resolve() gives !!str and it is no YAML 1.1 bool or
    base 60 float."""
    if text in _RESOLVE_MAP or text in _OLD_BOOLS:
        return False
    first = text[0]
    if first == ".":
        return _go_parse_float(text) is None
    if first in "+-0123456789":
        return not (_resolves_to_number(text) or _BASE60_FLOAT.match(text))
    return True


def _resolves_to_number(text: str) -> bool:
    if _is_timestamp(text):
        return True
    plain = text.replace("_", "")
    if _go_parse_int(plain, 0) is not None or _go_parse_uint(plain, 0) is not None:
        return True
    if _YAML_FLOAT.match(plain) and not math.isinf(float(plain)):
        return True
    if plain.startswith("0b"):
        return _go_parse_int(plain[2:], 2) is not None or _go_parse_uint(plain[2:], 2) is not None
    if plain.startswith("-0b"):
        return _go_parse_int("-" + plain[3:], 2) is not None
    if plain.startswith("0o"):
        return _go_parse_int(plain[2:], 8) is not None or _go_parse_uint(plain[2:], 8) is not None
    if plain.startswith("-0o"):
        return _go_parse_int("-" + plain[3:], 8) is not None
    return False


def _go_parse_uint(text: str, base: int) -> Optional[int]:
    """Go's ``strconv.ParseUint(text, base, 64)`` for text without underscores; None on error."""
    if not text:
        return None
    if base == 0:
        base = 10
        if text[0] == "0":
            prefix = text[1:2].lower()
            if len(text) >= 3 and prefix in ("b", "o", "x"):
                base, text = {"b": 2, "o": 8, "x": 16}[prefix], text[2:]
            else:
                base, text = 8, text[1:]
                if not text:
                    return 0
    if not _DIGITS[base].match(text):
        return None
    value = int(text, base)
    return value if value < 1 << 64 else None


def _go_parse_int(text: str, base: int) -> Optional[int]:
    """Go's ``strconv.ParseInt(text, base, 64)``; None on error."""
    negative = text[:1] == "-"
    if text[:1] in ("+", "-"):
        text = text[1:]
    value = _go_parse_uint(text, base)
    if value is None or value > (1 << 63) - (not negative):
        return None
    return -value if negative else value


def _go_parse_float(text: str) -> Optional[float]:
    """Go's ``strconv.ParseFloat(text, 64)`` for text starting with ``.``; None on error."""
    if not _DOT_FLOAT.match(text) or not _underscores_ok(text):
        return None
    value = float(text.replace("_", ""))
    return None if math.isinf(value) else value


def _underscores_ok(text: str) -> bool:
    if "_" not in text:
        return True
    return re.search(r"(?<![0-9])_|_(?![0-9])", text) is None


def _is_timestamp(text: str) -> bool:
    """resolve.go parseTimestamp: one of yaml.v3's four layouts, as Go's time.Parse reads them."""
    match = _TIMESTAMP.match(text)
    if match is None:
        return False
    year, month, day, separator, hour, minute, second, zone = match.groups()
    if separator is not None and (zone is None) != (separator == " "):
        return False
    if not 1 <= int(month) <= 12 or not 1 <= int(day) <= calendar.monthrange(int(year) or 2000, int(month))[1]:
        return False
    if separator is not None and (int(hour) > 23 or int(minute) > 59 or int(second) > 59):
        return False
    if zone not in (None, "Z") and (int(zone[1:3]) > 24 or int(zone[4:6]) > 60):
        return False
    return True


def _key_less(a: str, b: str) -> bool:
    """sorter.go keyList.Less for two string keys: natural order, letters after the rest."""
    digits = False
    for i, (char_a, char_b) in enumerate(zip(a, b)):
        if char_a == char_b:
            digits = char_a.isdecimal()
            continue
        letter_a, letter_b = char_a.isalpha(), char_b.isalpha()
        if letter_a and letter_b:
            return char_a < char_b
        if letter_a or letter_b:
            return letter_a if digits else letter_b
        number_a = number_b = 0
        if char_a == "0" or char_b == "0":
            for j in range(i - 1, -1, -1):
                if not a[j].isdecimal():
                    break
                if a[j] != "0":
                    number_a = number_b = 1
                    break
        number_a, end_a = _leading_number(a, i, number_a)
        number_b, end_b = _leading_number(b, i, number_b)
        if number_a != number_b:
            return number_a < number_b
        if end_a != end_b:
            return end_a < end_b
        return char_a < char_b
    return len(a) < len(b)


def _leading_number(text: str, start: int, number: int) -> tuple[int, int]:
    """The digit run at ``start`` read as Go does: int64 arithmetic that wraps around."""
    end = start
    while end < len(text) and text[end].isdecimal():
        number = number * 10 + ord(text[end]) - 48
        end += 1
    return (number + (1 << 63)) % (1 << 64) - (1 << 63), end


def _natural_compare(a: str, b: str) -> int:
    return -1 if _key_less(a, b) else 1


_NATURAL_ORDER = cmp_to_key(_natural_compare)
