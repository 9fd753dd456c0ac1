"""The Go semantics of the timeline route as pure functions: protojson's reading and writing of a
TimelineEntityV2 (protojson.py) and how the handler read its query (golang.py)."""

import json
import math
from urllib.parse import quote_from_bytes

from hypothesis import given, settings, strategies as st
import pytest

from datasette_runtime_truth.upstream import golang, protojson


def entity(text):
    return protojson.entity(text.encode("utf-8")).decode("utf-8")


# --- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("number, text", [
    (1e21, "1e+21"), (1e20, "100000000000000000000"), (1e-7, "1e-7"), (1e-6, "0.000001"),
    (-0.0, "-0"), (0.0, "0"), (0.1 + 0.2, "0.30000000000000004"), (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"), (1.2345678901234568e20, "123456789012345680000"),
    (9007199254740993.0, "9007199254740992"), (1.5e-10, "1.5e-10"), (-2.5e-8, "-2.5e-8"), (123.456, "123.456"),
    (math.nan, '"NaN"'), (math.inf, '"Infinity"'), (-math.inf, '"-Infinity"'),
])
def test_format_double(number, text):
    assert protojson.format_double(number) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_double_reads_back_and_picks_go_notation(number):
    text = protojson.format_double(number)
    assert float(text) == number and math.copysign(1, float(text)) == math.copysign(1, number)
    exponent = number != 0 and not 1e-6 <= abs(number) < 1e21
    assert ("e" in text) == exponent
    assert "e-0" not in text and "e+0" not in text and not text.endswith(".0")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_props_number_is_written_as_its_float64(number):
    raw = json.dumps(number)
    assert entity('{"props":{"n":%s}}' % raw) == '{"props":{"n":%s}}' % protojson.format_double(number)


@pytest.mark.parametrize("raw, written", [
    ("1", "1"), ("1.0", "1"), ("1e2", "100"), ("-0", "-0"), ("-0.0", "-0"), ("1E+2", "100"),
    ("9007199254740993", "9007199254740992"), ("1e400", None), ("1e-400", "0"), ("0.000010", "0.00001"),
])
def test_props_numbers(raw, written):
    if written is None:
        with pytest.raises(protojson.Invalid):
            entity('{"props":{"n":%s}}' % raw)
    else:
        assert entity('{"props":{"n":%s}}' % raw) == '{"props":{"n":%s}}' % written


@pytest.mark.parametrize("value, written", [
    ("5", '"5"'), ('"5"', '"5"'), ("1e3", '"1000"'), ("1.50e1", '"15"'), ('"5 6"', '"5"'), ("100e-2", '"1"'),
    ("9223372036854775807", '"9223372036854775807"'), ("-9223372036854775808", '"-9223372036854775808"'),
    ("0", None), ('"-0"', None), ("1.5", "invalid"), ('" 5"', "invalid"), ('"5\\u00a0"', "invalid"),
    ("9223372036854775808", "invalid"), ("true", "invalid"), ('"0x5"', "invalid"), ("1e21", "invalid"),
])
def test_int64_fields_as_protojson_reads_them(value, written):
    text = '{"createdAtMs":%s}' % value
    if written == "invalid":
        with pytest.raises(protojson.Invalid):
            entity(text)
    else:
        assert entity(text) == ("{}" if written is None else '{"createdAtMs":%s}' % written)


def test_a_number_may_end_in_a_bare_exponent_before_a_delimiter():
    # Go's tokenizer takes "1e" as a number when a delimiter follows; an int64 field reads it as 1.
    assert entity('{"createdAtMs":1e}') == '{"createdAtMs":"1"}'
    with pytest.raises(protojson.Invalid):
        entity('{"props":{"n":1e}}')


# --- what protojson refuses and what it drops ---------------------------------------------------

@pytest.mark.parametrize("text", [
    '{"id":"a","id":"b"}', '{"id":"a","kind":"k","props":{"x":1,"x":2}}', '{"created_at_ms":1,"createdAtMs":2}',
    '{"props":null,"props":{}}', '{"id":"\\ud800"}', '{"id":"\\udc00\\ud800"}', '{"id":"\\ud83d\\u0041"}',
    '{"props":{"n":NaN}}', '{"props":{"n":Infinity}}', '{"id":"a"} x', '{"id":"a"}{}', "null", "[]", "",
    '{"id":1}', '{"meta":{"a":null}}', '{"meta":{"a":1}}', '{"meta":[]}', '{"props":[]}', '{"id":"a\tb"}',
    '{"typed":{"@type":"x/nope.Missing"}}', '{"typed":{"@type":""}}', '{"typed":{"@type":1}}',
    '{"typed":{"@type":"a/sem.timeline.StatusSnapshotV1","@type":"a/sem.timeline.StatusSnapshotV1"}}',
    '{"typed":{"@type":"a/google.protobuf.Struct"}}', '{"typed":{"@type":"a/sem.timeline.StatusSnapshotV1","text":1}}',
    '{"id":"a",}', '{"id" "a"}', "{'id':'a'}", '{"props":{"n":01}}', '{"props":{"n":1.}}', '{"props":{"n":truex}}',
    '{"typed":[]}', '{"kind":"\\x"}',
])
def test_refused(text):
    with pytest.raises(protojson.Invalid):
        entity(text)


@pytest.mark.parametrize("text, written", [
    ('{"bogus":[1,{"x":[]}],"id":"a"}', '{"id":"a"}'),
    ('{"kind":"k","id":"a"}', '{"id":"a","kind":"k"}'),
    ('{"id":"","kind":"","createdAtMs":"0","meta":{},"props":null,"typed":null}', "{}"),
    ('{"props":{}}', '{"props":{}}'),
    ('{"typed":{}}', '{"typed":{}}'),
    ('{"typed":{"x":1}}', '{"typed":{}}'),
    ('{"meta":{"b":"2","a":"1","":"0"}}', '{"meta":{"":"0","a":"1","b":"2"}}'),
    ('{"id":"<b>&\u2028\u007f\\u0000\\n\\u001f"}', '{"id":"<b>&\u2028\u007f\\u0000\\n\\u001f"}'),
    ('{"id":"\\ud83d\\ude00\\/"}', '{"id":"😀/"}'),
    ('{"typed":{"@type":"t/sem.timeline.StatusSnapshotV1","schema_version":"1","bogus":2,"type":"info"}}',
     '{"typed":{"@type":"t/sem.timeline.StatusSnapshotV1","schemaVersion":1,"type":"info"}}'),
    ('{"typed":{"text":"ok","@type":"sem.timeline.StatusSnapshotV1"}}',
     '{"typed":{"@type":"sem.timeline.StatusSnapshotV1","text":"ok"}}'),
    ('{"typed":{"@type":"x/sem.timeline.ToolResultSnapshotV1","toolCallId":"t","result":{"b":1,"a":[]}}}',
     '{"typed":{"@type":"x/sem.timeline.ToolResultSnapshotV1","toolCallId":"t","result":{"a":[],"b":1}}}'),
    ('{"typed":{"@type":"x/sem.base.meta.LlmInferenceMetadataV1","temperature":0,"maxTokens":0,"model":""}}',
     '{"typed":{"@type":"x/sem.base.meta.LlmInferenceMetadataV1","temperature":0,"maxTokens":0}}'),
    ('{"typed":{"@type":"x/google.protobuf.Struct","value":{"b":1,"a":2}}}',
     '{"typed":{"@type":"x/google.protobuf.Struct","value":{"a":2,"b":1}}}'),
    ('{"typed":{"@type":"x/google.protobuf.Int64Value","value":5}}',
     '{"typed":{"@type":"x/google.protobuf.Int64Value","value":"5"}}'),
    ('{"typed":{"@type":"x/google.protobuf.Empty"}}', '{"typed":{"@type":"x/google.protobuf.Empty","value":{}}}'),
    ('{"typed":{"@type":"x/sem.timeline.ToolCallSnapshotV1","progress":"NaN"}}',
     '{"typed":{"@type":"x/sem.timeline.ToolCallSnapshotV1","progress":"NaN"}}'),
])
def test_re_encoded(text, written):
    assert entity(text) == written


def test_nesting_limits_follow_protobuf_go():
    def props(depth):
        return '{"props":' + '{"d":' * depth + "1" + "}" * (depth + 1)
    assert entity(props(9998)) == props(9998)
    with pytest.raises(protojson.Invalid):
        entity(props(9999))
    unknown = '{"x":' + "[" * 9999 + "]" * 9999 + "}"
    assert entity(unknown) == "{}"
    with pytest.raises(protojson.Invalid):
        entity('{"x":' + "[" * 10000 + "]" * 10000 + "}")


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=5), json_values, max_size=5), st.text(), st.booleans())
def test_re_encoding_is_canonical(props, text, spaced):
    separators = (", ", ": ") if spaced else (",", ":")
    source = json.dumps({"id": text, "props": props}, separators=separators, ensure_ascii=not spaced)
    written = entity(source)
    assert entity(written) == written
    expected = ({"id": text} if text else {}) | {"props": json.loads(json.dumps(props), parse_int=float)}
    assert json.loads(written, parse_int=float) == expected
    assert list(json.loads(written)["props"]) == sorted(props)


# --- the query string ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw, parsed", [
    (b"conv_id=conv-1;limit=1", {}),
    (b"conv_id=a&conv_id=b&x", {b"conv_id": [b"a", b"b"], b"x": [b""]}),
    (b"a=%zz&b=+1%2B&c=%41%4", {b"b": [b" 1+"]}),
    (b"&&=v&k=", {b"": [b"v"], b"k": [b""]}),
    (b"a=1" + b"&" * 9999, {b"a": [b"1"]}),
    (b"a=1" + b"&" * 10000, {}),
])
def test_parse_query(raw, parsed):
    assert golang.parse_query(raw) == parsed


@given(st.binary(), st.binary())
def test_query_unescape_reverses_escaping(key, value):
    raw = quote_from_bytes(key, safe="").encode() + b"=" + quote_from_bytes(value, safe="").replace("%20", "+").encode()
    parsed = golang.parse_query(raw)
    if key:
        assert golang.query_get(parsed, key) == value
    else:
        assert parsed == {b"": [value]}


@given(st.integers(min_value=0, max_value=2**64 + 10), st.sampled_from([b"", b"x", b".5", b" 7", b"-1"]))
def test_sscanf_uint_reads_leading_digits(number, tail):
    assert golang.sscanf_uint(b"%d" % number + tail) == (number if number < 2**64 else 0)
    assert golang.sscanf_uint(b"+%d" % number) == 0


@given(st.integers(min_value=-(2**63) - 5, max_value=2**63 + 5), st.sampled_from([b"", b"x", b"e5", b"x0"]))
def test_sscanf_int_reads_a_signed_prefix(number, tail):
    expected = number if -(2**63) <= number < 2**63 else 0
    assert golang.sscanf_int(b"%d" % number + tail) == expected
    assert golang.sscanf_int(b"+%d" % abs(number)) == (abs(number) if abs(number) < 2**63 else 0)


@pytest.mark.parametrize("text, value", [(b"", 0), (b"abc", 0), (b"- 5", 0), (b" \t5", 5), (b"\n5", 0),
                                         (b"\xc2\xa05", 5), (b"007", 7)])
def test_sscanf_edges(text, value):
    assert golang.sscanf_int(text) == value


@pytest.mark.parametrize("number, raw, value", [
    (5, b"5", 5), (5.0, b"5.0", 5), (1e6, b"1000000.0", 0), (-1, b"-1", -1), (None, b"42", 42),
    (None, b"+42", 42), (None, b" 42", 0), (None, b"abc", 0), (None, None, 0), (None, b"9223372036854775808", 0),
])
def test_go_int64_scan(number, raw, value):
    from datasette_runtime_truth.storage import timeline_store
    assert timeline_store.go_int64(number, raw) == value


FIELD_NAMES = ["id", "kind", "props", "typed", "meta", "createdAtMs", "created_at_ms", "@type", "value", "temperature",
               "maxTokens", "usage", "visualizationData", "nodes", "insights", "metadata", "schemaVersion", "text", "x"]
TYPE_URLS = ["x/sem.timeline.StatusSnapshotV1", "x/google.protobuf.Struct", "x/google.protobuf.Empty",
             "x/google.protobuf.Int64Value", "x/google.protobuf.Value", "x/google.protobuf.ListValue",
             "x/sem.base.meta.LlmInferenceMetadataV1", "x/sem.timeline.TeamAnalysisSnapshotV1",
             "x/sem.timeline.MessageSnapshotV1", "x/google.protobuf.BoolValue", "nope.Missing"]
shaped_values = st.recursive(
    st.sampled_from([None, True, False, 0, -0.0, 1, -5, 1.5, 1e21, 1e-7, 2**63, "5", " 5", "NaN", "", "x", *TYPE_URLS]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500)
@given(shaped_values)
def test_any_entity_is_written_or_refused_never_a_crash(value):
    text = json.dumps({"id": "a", "typed": value} if not isinstance(value, dict) else value)
    try:
        written = entity(text)
    except protojson.Invalid:
        return
    assert isinstance(json.loads(written), dict)
    assert entity(written) == written
