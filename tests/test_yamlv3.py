"""yamlv3.dump against the upstream's own output (the golden cases) and against a YAML 1.2 parser."""

import json
from pathlib import Path

from hypothesis import given, settings, strategies as st
import pytest
from ruamel.yaml import YAML

from datasette_runtime_truth import payload, yamlv3

GOLDEN = Path("/work/shared/golden/yaml-cases.jsonl")
CASES = [json.loads(line) for line in GOLDEN.read_text().splitlines()] if GOLDEN.exists() else []


def _blocks(case_input):
    return [
        (block["block_id"], block["kind"], block["role"], block["payload_json"], block["block_metadata_json"])
        for block in case_input["blocks"]
    ]


@pytest.mark.skipif(not CASES, reason=f"{GOLDEN} is not available")
@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_golden_case(case):
    case_input = case["input"]
    value = payload.turn_payload(
        case_input["turn_id"], _blocks(case_input), case_input["turn_metadata_json"], case_input["turn_data_json"]
    )
    assert payload.to_yaml(value) == case["yaml"]


@pytest.mark.parametrize("value, expected", [
    ({}, "{}\n"),
    ([], "[]\n"),
    ("a", "a\n"),
    ("a\nb", "|-\n    a\n    b\n"),
    (1e6, "1e+06\n"),
    ([[1.0, {}], {"a": []}], "- - 1\n  - {}\n- a: []\n"),
    ({"x" * 129: 1}, "? " + "x" * 129 + "\n: 1\n"),
    ({"k": {"x" * 129: {"a": 1}}}, "k:\n    ? " + "x" * 129 + "\n    :   a: 1\n"),
    ({"a b": "it's", "c": "'q'"}, "a b: it's\nc: '''q'''\n"),
    ("\ufeffa b", '"\\uFEFF\\x61\\x20\\x62"\n'),
    ({"t": "2001-12-14", "u": "2001-12-14 21:59:43.10 -5", "v": "2001-02-30"},
     't: "2001-12-14"\nu: 2001-12-14 21:59:43.10 -5\nv: 2001-02-30\n'),
    ({"a": "0o-5", "b": "._5", "c": ".5_5", "d": "1e999", "e": "0x" + "F" * 17},
     'a: "0o-5"\nb: ._5\nc: ".5_5"\nd: 1e999\ne: 0x' + "F" * 17 + "\n"),
])
def test_dump_corner_cases(value, expected):
    assert yamlv3.dump(value) == expected


def test_natural_key_order():
    keys = ["item10", "item2", "a01", "a1", "a001", "B", "_", "~", "1", "10", "9", "é", "x9y", "x10y"]
    dumped = yamlv3.dump(dict.fromkeys(keys, 0.0))
    assert [line.split(":")[0].strip('"') for line in dumped.splitlines()] == [
        "_", "~", "1", "9", "10", "B", "a1", "a01", "a001", "item2", "item10", "x9y", "x10y", "é",
    ]


# U+2028 / U+2029 are line breaks to yaml.v3 (as in YAML 1.1) but ordinary characters to a YAML 1.2
# parser, so ruamel reads the indentation yaml.v3 writes after them as content.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\u2028\u2029"))


def _key_is_portable(key):
    # A plain "<<" key is a merge key to ruamel; yaml.v3 itself reads it as a string.
    return key != "<<"


def _text_is_portable(text):
    # yaml.v3 v3.0.1 drops a literal block's leading line break (the golden case
    # "scalar/182-metadata-\nlead" shows it: "\nlead" comes out as "|4-" over "lead"), so
    # such a string does not survive any parser, yaml.v3's own included.
    return not (text.startswith("\n") and yamlv3.dump(text).startswith("|"))


_SCALARS = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT.filter(_text_is_portable)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_TEXT.filter(_key_is_portable).filter(_text_is_portable), children, max_size=4),
    max_leaves=12,
)


def _same(loaded, value):
    if isinstance(value, dict):
        return isinstance(loaded, dict) and loaded.keys() == value.keys() and all(
            _same(loaded[key], value[key]) for key in value
        )
    if isinstance(value, list):
        return isinstance(loaded, list) and len(loaded) == len(value) and all(map(_same, loaded, value))
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return type(loaded) is type(value) and loaded == value
    return isinstance(loaded, (int, float)) and not isinstance(loaded, bool) and loaded == value


@settings(max_examples=500, deadline=None)
@given(_VALUES)
def test_dump_reads_back_as_the_value_in_yaml_1_2(value):
    loaded = YAML(typ="safe", pure=True).load(yamlv3.dump(value))
    assert _same(loaded, value)
