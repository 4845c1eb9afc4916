"""The filter pattern matcher against the examples of Lambda's event filtering documentation
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html) and the edges
of the syntax."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strato.domain.event_filter import FilterPatternError, matches_any, parse

# An SQS record as filters see it (body parsed), after the documentation's example.
RECORD: dict[str, Any] = {
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "body": {
        "RecordNumber": 1234,
        "TimeStamp": "2024-01-15T10:30:00",
        "RequestCode": "BBBB",
        "Location": "Seattle",
        "Weather": "Sunny",
        "Price": 100.5,
        "Enabled": True,
        "Nothing": None,
        "Empty": "",
        "Tags": ["red", "blue"],
        "Address": {"City": "Seattle", "Zip": "98101"},
        "Orders": [{"Sku": "a-1"}, {"Sku": "b-2"}],
    },
    "messageAttributes": {"Author": {"stringValue": "John", "dataType": "String"}},
    "eventSource": "aws:sqs",
}


def matches(pattern: dict[str, Any], record: dict[str, Any] = RECORD) -> bool:
    return parse(json.dumps(pattern)).matches(record)


@pytest.mark.parametrize(("pattern", "expected"), [
    # Equals (strings, numbers, booleans, null, the empty string)
    ({"body": {"RequestCode": ["BBBB"]}}, True),
    ({"body": {"RequestCode": ["AAAA"]}}, False),
    ({"body": {"RecordNumber": [1234]}}, True),
    ({"body": {"RecordNumber": ["1234"]}}, False),
    ({"body": {"Price": [100.5]}}, True),
    ({"body": {"Enabled": [True]}}, True),
    ({"body": {"Enabled": [1]}}, False),
    ({"body": {"Nothing": [None]}}, True),
    ({"body": {"Location": [None]}}, False),
    ({"body": {"Empty": [""]}}, True),
    ({"body": {"Location": [""]}}, False),
    # Or: several values of one key
    ({"body": {"RequestCode": ["AAAA", "BBBB"]}}, True),
    # And: several keys
    ({"body": {"RequestCode": ["BBBB"], "Location": ["Seattle"]}}, True),
    ({"body": {"RequestCode": ["BBBB"], "Location": ["Boston"]}}, False),
    # Not (anything-but)
    ({"body": {"Weather": [{"anything-but": ["Raining"]}]}}, True),
    ({"body": {"Weather": [{"anything-but": ["Raining", "Sunny"]}]}}, False),
    ({"body": {"Weather": [{"anything-but": "Sunny"}]}}, False),
    ({"body": {"RecordNumber": [{"anything-but": [1, 2]}]}}, True),
    ({"body": {"Missing": [{"anything-but": ["x"]}]}}, False),
    ({"body": {"Weather": [{"anything-but": {"prefix": "Sun"}}]}}, False),
    ({"body": {"Weather": [{"anything-but": {"suffix": "ain"}}]}}, True),
    ({"body": {"Weather": [{"anything-but": {"equals-ignore-case": ["SUNNY"]}}]}}, False),
    # Numeric equals and ranges
    ({"body": {"Price": [{"numeric": ["=", 100.5]}]}}, True),
    ({"body": {"Price": [{"numeric": [">", 0, "<=", 100.5]}]}}, True),
    ({"body": {"Price": [{"numeric": [">", 0, "<", 100.5]}]}}, False),
    ({"body": {"Price": [{"numeric": [">=", 101]}]}}, False),
    ({"body": {"Price": [{"numeric": ["<", 200]}]}}, True),
    ({"body": {"RequestCode": [{"numeric": [">", 0]}]}}, False),
    ({"body": {"Enabled": [{"numeric": [">", 0]}]}}, False),
    # Exists / does not exist
    ({"body": {"Location": [{"exists": True}]}}, True),
    ({"body": {"Missing": [{"exists": True}]}}, False),
    ({"body": {"Missing": [{"exists": False}]}}, True),
    ({"body": {"Location": [{"exists": False}]}}, False),
    ({"body": {"Address": [{"exists": True}]}}, False),  # an object is not a leaf
    ({"body": {"Nope": {"Deeper": [{"exists": False}]}}}, True),
    # Begins with, ends with, equals ignoring case
    ({"body": {"Location": [{"prefix": "Sea"}]}}, True),
    ({"body": {"Location": [{"prefix": "sea"}]}}, False),
    ({"body": {"Location": [{"prefix": {"equals-ignore-case": "sea"}}]}}, True),
    ({"body": {"Location": [{"suffix": "tle"}]}}, True),
    ({"body": {"Location": [{"suffix": {"equals-ignore-case": "TLE"}}]}}, True),
    ({"body": {"Location": [{"suffix": "ttl"}]}}, False),
    ({"body": {"Location": [{"equals-ignore-case": "SEATTLE"}]}}, True),
    ({"body": {"Location": [{"equals-ignore-case": "Boston"}]}}, False),
    ({"body": {"RecordNumber": [{"prefix": "12"}]}}, False),
    # Nested keys, arrays in the record
    ({"body": {"Address": {"City": ["Seattle"]}}}, True),
    ({"body": {"Address": {"Zip": [{"prefix": "981"}], "City": ["Seattle"]}}}, True),
    ({"body": {"Address": {"City": ["Boston"]}}}, False),
    ({"body": {"Tags": ["blue"]}}, True),
    ({"body": {"Tags": ["green"]}}, False),
    ({"body": {"Orders": {"Sku": [{"prefix": "b-"}]}}}, True),
    ({"body": {"Orders": {"Sku": ["c-3"]}}}, False),
    # $or
    ({"body": {"$or": [{"Location": ["Boston"]}, {"Weather": ["Sunny"]}]}}, True),
    ({"body": {"$or": [{"Location": ["Boston"]}, {"Weather": ["Rain"]}]}}, False),
    # Other record keys (message attributes), a missing key, the empty pattern
    ({"messageAttributes": {"Author": {"stringValue": ["John"]}}}, True),
    ({"body": {"Missing": ["x"]}}, False),
    ({}, True),
])
def test_documented_patterns(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern) is expected


def test_plain_text_bodies_match_string_patterns_only() -> None:
    record = {"body": "hello world"}
    assert matches({"body": ["hello world"]}, record)
    assert matches({"body": [{"prefix": "hello"}]}, record)
    assert not matches({"body": {"key": ["hello world"]}}, record)


@pytest.mark.parametrize("text", [
    '"simple string"',
    "not json",
    "[1, 2]",
    '{"body": "RequestCode"}',
    '{"body": {"RequestCode": []}}',
    '{"body": {"RequestCode": [{"unknown-operator": 1}]}}',
    '{"body": {"RequestCode": [{"prefix": 1}]}}',
    '{"body": {"RequestCode": [{"prefix": "a", "suffix": "b"}]}}',
    '{"body": {"RequestCode": [[1]]}}',
    '{"body": {"Price": [{"numeric": [">", "a"]}]}}',
    '{"body": {"Price": [{"numeric": ["<", 1, ">", 0]}]}}',
    '{"body": {"Price": [{"numeric": ["!", 1]}]}}',
    '{"body": {"Price": [{"numeric": [">", 1, "<"]}]}}',
    '{"body": {"Location": [{"exists": "yes"}]}}',
    '{"body": {"Location": [{"anything-but": []}]}}',
    '{"body": {"Location": [{"anything-but": [true]}]}}',
    '{"body": {"Location": [{"anything-but": {"numeric": [">", 1]}}]}}',
    '{"body": {"Location": [{"equals-ignore-case": 5}]}}',
    '{"$or": [{"a": ["b"]}]}',
])
def test_invalid_patterns_are_refused(text: str) -> None:
    with pytest.raises(FilterPatternError):
        parse(text)


def test_filters_are_ored_and_none_pass_everything() -> None:
    boston = parse('{"body": {"Location": ["Boston"]}}')
    seattle = parse('{"body": {"Location": ["Seattle"]}}')
    assert matches_any([boston, seattle], RECORD)
    assert not matches_any([boston], RECORD)
    assert matches_any([], RECORD)
