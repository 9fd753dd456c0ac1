import json

from hypothesis import given, strategies as st
import pytest

from datasette_runtime_truth.upstream import golang
from datasette_runtime_truth.upstream.backfill import (
    BAD_METADATA,
    UNCHANGED,
    WRITES,
    Decision,
    InvalidMetadata,
    decide,
    is_empty,
    next_values,
    parse_metadata,
    value_to_string,
)

BOTH = ("canonical", "legacy")


def recover(metadata, rules="canonical"):
    """(runtime_key, inference_id) the backfill gives a row that has neither; raises
    InvalidMetadata for a row it skips."""
    return next_values(metadata, "", "", rules) or ("", "")


# The upstream test cases, verbatim.
@pytest.mark.parametrize("rules", BOTH)
def test_upstream_canonical_map_under_both_rules(rules):
    metadata = '{"geppetto.runtime@v1":{"runtime_key":"planner"},"geppetto.inference_id@v1":"inf-42"}'
    assert recover(metadata, rules) == ("planner", "inf-42")


@pytest.mark.parametrize("rules, expected", [
    ("legacy", ("planner", "inf-42")),
    ("canonical", ("", "inf-42")),
])
def test_upstream_plain_string_runtime(rules, expected):
    metadata = '{"geppetto.runtime@v1":"planner","geppetto.inference_id@v1":"inf-42"}'
    assert recover(metadata, rules) == expected


@pytest.mark.parametrize("rules", BOTH)
def test_upstream_empty_object(rules):
    assert decide("{}", "", "", rules) == Decision(UNCHANGED)


@pytest.mark.parametrize("value, expected", [
    ("  planner\t\n", "planner"),
    ("   ", ""),
    ("", ""),
    ("\xa0planner\u3000", "planner"),
    ("\x1cplanner\u200b", "\x1cplanner\u200b"),
    (42.0, "42"),
    (-7.0, "-7"),
    (12345678901234567890.0, "1.2345678901234567e+19"),
    (1.5, "1.5"),
    (1e6, "1e+06"),
    (999999.0, "999999"),
    (1e21, "1e+21"),
    (2.5e-7, "2.5e-07"),
    (0.0001, "0.0001"),
    (-0.0, "-0"),
    (True, "true"),
    (False, "false"),
    (None, ""),
    ({"runtime_key": "planner", "a": [1.0, None]}, "map[a:[1 <nil>] runtime_key:planner]"),
    (["planner", 2.0], "[planner 2]"),
    ({}, "map[]"),
])
def test_value_to_string(value, expected):
    assert value_to_string(value) == expected


@pytest.mark.parametrize("text", ["", "   ", "\xa0\u3000", None, "null", " null "])
def test_empty_metadata_counts_as_empty_object(text):
    assert parse_metadata(text) == {}


@pytest.mark.parametrize("text", [
    '{"geppetto.runtime@v1": {"runtime_key": "planner"}',  # truncated
    "not json",
    '{"inference_id": NaN}',
    '{"inference_id": Infinity}',
    "{'inference_id': 'x'}",
    '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}",
    "\ufeff{}",
    '{"a": 1e400}',
    "\x1c",
])
def test_invalid_json_is_rejected(text):
    with pytest.raises(InvalidMetadata):
        parse_metadata(text)


def test_nesting_up_to_ten_thousand_levels_with_the_outer_object():
    assert parse_metadata('{"a": ' + "[" * 9_999 + "]" * 9_999 + ', "inference_id": "x"}')["inference_id"] == "x"


@pytest.mark.parametrize("text", ['["planner"]', '"planner"', "42", "true"])
@pytest.mark.parametrize("rules", BOTH)
def test_non_object_json_is_rejected(text, rules):
    with pytest.raises(InvalidMetadata):
        recover(text, rules)


@pytest.mark.parametrize("metadata, canonical, legacy", [
    # Canonical reads only the attribution map's runtime_key member.
    ({"runtime": "planner"}, "", "planner"),
    ({"runtime_key": "planner"}, "", "planner"),
    ({"geppetto.runtime@v1": {"slug": "planner"}}, "", "planner"),
    ({"geppetto.runtime@v1": {"runtime_key": 7}}, "7", "7"),
    ({"geppetto.runtime@v1": {"runtime_key": 1000000}}, "1e+06", "1e+06"),
    ({"geppetto.runtime@v1": {"runtime_key": True}}, "true", "true"),
    ({"geppetto.runtime@v1": {"runtime_key": None}}, "", ""),
    ({"geppetto.runtime@v1": {"runtime_key": "  "}}, "", ""),
    ({"geppetto.runtime@v1": {"runtime_key": {"key": "nested"}}}, "map[key:nested]", "nested"),
    ({"geppetto.runtime@v1": None, "runtime": "agent"}, "", "agent"),
    # Legacy takes keys in order and skips one that gives nothing.
    ({"geppetto.runtime@v1": "", "runtime": "agent", "runtime_key": "planner"}, "", "agent"),
    ({"runtime": "agent", "runtime_key": "planner"}, "", "agent"),
    ({"geppetto.runtime@v1": 3}, "", "3"),
    ({"geppetto.runtime@v1": ["planner"]}, "", "[planner]"),
    # Legacy probes members in order: runtime_key, key, slug, profile, profile_key, inference_id.
    ({"runtime": {"profile_key": "pk", "slug": "sl"}}, "", "sl"),
    ({"runtime": {"inference_id": "i", "profile": "p"}}, "", "p"),
    ({"runtime": {"key": "", "slug": {"profile": {"profile_key": "deep"}}}}, "", "deep"),
    ({"runtime": {"other": "x"}}, "", ""),
    ({"geppetto.runtime@v1": {"runtime_key": "planner", "key": "other"}}, "planner", "planner"),
])
def test_runtime_key_rules(metadata, canonical, legacy):
    assert recover(_json(metadata), "canonical")[0] == canonical
    assert recover(_json(metadata), "legacy")[0] == legacy


@pytest.mark.parametrize("metadata, canonical, legacy", [
    ({"geppetto.inference_id@v1": "inf-1", "inference_id": "inf-2"}, "inf-1", "inf-1"),
    ({"geppetto.inference_id@v1": "  ", "inference_id": "inf-2"}, "inf-2", "inf-2"),
    ({"geppetto.inference_id@v1": None, "inference_id": "inf-2"}, "inf-2", "inf-2"),
    ({"inference_id": " inf-3 "}, "inf-3", "inf-3"),
    ({"geppetto.inference_id@v1": 42}, "42", "42"),
    ({"geppetto.inference_id@v1": 1.5}, "1.5", "1.5"),
    ({"geppetto.inference_id@v1": False}, "false", "false"),
    ({"geppetto.inference_id@v1": {"inference_id": "inf-4"}}, "map[inference_id:inf-4]", "inf-4"),
    ({"geppetto.inference_id@v1": {"key": "inf-5"}}, "map[key:inf-5]", "inf-5"),
    ({"geppetto.inference_id@v1": ["inf-6"]}, "[inf-6]", "[inf-6]"),
    ({"geppetto.runtime@v1": {"runtime_key": "x", "inference_id": "inf-7"}}, "", ""),
    ({"inferenceId": "inf-8"}, "", ""),
])
def test_inference_id_rules(metadata, canonical, legacy):
    assert recover(_json(metadata), "canonical")[1] == canonical
    assert recover(_json(metadata), "legacy")[1] == legacy


def test_duplicate_keys_last_one_wins():
    assert recover('{"inference_id": "a", "inference_id": "b"}')[1] == "b"


@pytest.mark.parametrize("existing", [("", ""), ("k", "i")])
def test_unknown_rules(existing):
    with pytest.raises(ValueError, match="unknown rules 'newest'"):
        decide("{}", *existing, "newest")


@pytest.mark.parametrize("existing, expected", [
    (("", ""), ("planner", "inf-42")),
    (("  k  ", ""), ("k", "inf-42")),
    (("   ", ""), ("planner", "inf-42")),
    (("k", ""), ("k", "inf-42")),
])
def test_next_values_trims_and_refills_a_row_it_writes(existing, expected):
    metadata = '{"geppetto.runtime@v1":{"runtime_key":"planner"},"geppetto.inference_id@v1":"inf-42"}'
    assert next_values(metadata, *existing) == expected


@pytest.mark.parametrize("existing", [("  k  ", ""), ("   ", ""), ("", "")])
def test_next_values_leaves_a_row_that_gains_nothing(existing):
    assert next_values("{}", *existing) is None


METADATA = '{"geppetto.runtime@v1":{"runtime_key":"planner"},"geppetto.inference_id@v1":"inf-42"}'


@pytest.mark.parametrize("existing, expected", [
    ((None, ""), Decision(WRITES, ("planner", "inf-42"), 1, 1, 0)),
    (("   ", ""), Decision(WRITES, ("planner", "inf-42"), 1, 1, 0)),
    (("  k  ", ""), Decision(WRITES, ("k", "inf-42"), 0, 1, 1)),
    ((" k", b""), Decision(WRITES, ("k", "inf-42"), 0, 1, 1)),
    ((0, None), Decision(WRITES, ("0", "inf-42"), 0, 1, 0)),
    (("k", "i"), Decision(UNCHANGED)),
    ((" k ", " i "), Decision(UNCHANGED)),
])
def test_decide_says_what_a_row_gets_and_what_it_counts_as(existing, expected):
    assert decide(METADATA, *existing) == expected


@pytest.mark.parametrize("existing, expected", [
    (("", ""), Decision(BAD_METADATA)),
    (("k", "i"), Decision(UNCHANGED)),
])
def test_decide_skips_bad_metadata_only_on_a_row_it_looks_at(existing, expected):
    assert decide("not json", *existing) == expected


def _json(value):
    return json.dumps(value)


SQLITE_VALUES = st.none() | st.integers() | st.floats() | st.text() | st.binary()


@given(SQLITE_VALUES)
def test_empty_is_what_go_scans_as_an_empty_string(value):
    assert is_empty(value) == (golang.scan_string(value) == "")


@pytest.mark.parametrize("value, text", [
    (None, ""), ("", ""), (" a ", " a "), (0, "0"), (1.5, "1.5"), (b"", ""), (b"key", "key"),
    (b"\xff", "\ufffd"),
])
def test_a_column_reads_as_go_scans_it_into_a_string(value, text):
    assert golang.scan_string(value) == text
