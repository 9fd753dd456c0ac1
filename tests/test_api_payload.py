"""The payload builder and its yaml.v3-style YAML, without a server."""

import pytest
import yaml

from datasette_runtime_truth.upstream import yamlv3
from datasette_runtime_truth.upstream.api_shapes import PayloadBuilder, parse_json


def turn_payload(*args):
    """One turn's payload, built as a debug read builds it."""
    return PayloadBuilder().turn_payload(*args)


def test_turn_payload_sorts_keys_and_leaves_out_empty_optionals():
    blocks = [
        ("b1", "user", "user", '{"text": "hi", "a": 1}', "{}"),
        ("b2", "tool_call", "", "", '{"z": true, "call": {"y": 2, "x": 1}}'),
    ]
    result = turn_payload("turn-1", blocks, '{"k": "v"}', "{}")
    assert result == {
        "blocks": [
            {"id": "b1", "kind": "user", "payload": {"a": 1, "text": "hi"}, "role": "user"},
            {"id": "b2", "kind": "tool_call", "metadata": {"call": {"x": 1, "y": 2}, "z": True}},
        ],
        "id": "turn-1",
        "metadata": {"k": "v"},
    }
    assert list(result) == ["blocks", "id", "metadata"]
    assert list(result["blocks"][1]["metadata"]["call"]) == ["x", "y"]


def test_turn_payload_with_data_and_no_blocks():
    assert turn_payload("t", [], "", '{"geppetto.turn_data@v1": {"n": 1}}') == {
        "blocks": [], "data": {"geppetto.turn_data@v1": {"n": 1}}, "id": "t",
    }


@pytest.mark.parametrize("text, expected", [
    (None, None),
    ("", None),
    ("  ", None),
    ("{}", {}),
    ('{"a": [1, 2.5, null, true]}', {"a": [1, 2.5, None, True]}),
    ('["planner"]', ["planner"]),
    ("42", 42),
    ('{"a": ', '{"a": '),
    ('{"a": NaN}', '{"a": NaN}'),
    ("[" * 65 + "]" * 65, "[" * 65 + "]" * 65),
    ("[" * 64 + "1" + "]" * 64, "[" * 64 + "1" + "]" * 64),  # the 1 is the 65th level
    (b'{"a": 1}', {"a": 1}),
])
def test_parse_json(text, expected):
    assert parse_json(text) == expected


def test_sixty_four_levels_with_the_value_itself_are_decoded():
    value = parse_json("[" * 63 + "1" + "]" * 63)
    for _ in range(63):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == 1.0


def test_nesting_deeper_than_the_limit_stays_text():
    deep = "[" * 5000 + "]" * 5000
    assert parse_json(deep) == deep
    assert isinstance(parse_json("[" * 64 + "]" * 64), list)


def test_yaml_matches_yaml_v3_marshal_style():
    value = turn_payload(
        "turn-1",
        [("b1", "user", "user", '{"text": "line one\\nline two", "n": [1, [2, 3], {"ok": "true"}]}', "")],
        '{"geppetto.runtime@v1": {"runtime_key": "inventory@v1"}, "count": "123", "empty": "", '
        '"colon": "a: b", "yes": "yes", "none": null, "pi": 3.5, "word": "ünï"}',
        "",
    )
    assert yamlv3.dump(value) == (
        "blocks:\n"
        "    - id: b1\n"
        "      kind: user\n"
        "      payload:\n"
        "        \"n\":\n"
        "            - 1\n"
        "            - - 2\n"
        "              - 3\n"
        "            - ok: \"true\"\n"
        "        text: |-\n"
        "            line one\n"
        "            line two\n"
        "      role: user\n"
        "id: turn-1\n"
        "metadata:\n"
        "    colon: 'a: b'\n"
        "    count: \"123\"\n"
        "    empty: \"\"\n"
        "    geppetto.runtime@v1:\n"
        "        runtime_key: inventory@v1\n"
        "    none: null\n"
        "    pi: 3.5\n"
        "    word: ünï\n"
        "    \"yes\": \"yes\"\n"
    )
    assert yaml.safe_load(yamlv3.dump(value)) == value


def test_long_strings_are_not_wrapped():
    text = "word " * 40 + "end"
    assert yamlv3.dump({"id": text}) == f"id: {text}\n"


def test_parse_json_decodes_as_go_does():
    assert type(parse_json("1000000")) is float
    assert parse_json('{"a": 1, "a": 2}') == {"a": 2.0}
    assert parse_json('"\\ud800"') == "\ufffd"
    assert yamlv3.dump({"n": parse_json("1000000")}) == '"n": 1e+06\n'


def test_blank_role_is_left_out_and_padded_role_kept():
    blocks = [("b1", "user", "  ", "", ""), ("b2", "user", " user ", "", "")]
    assert turn_payload("t", blocks, "", "")["blocks"] == [
        {"id": "b1", "kind": "user"}, {"id": "b2", "kind": "user", "role": " user "},
    ]
