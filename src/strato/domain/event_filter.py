"""Lambda's event filter patterns: parse them once, match records against them.

The syntax is the one "Control which events Lambda sends to your function" documents
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html), EventBridge's
pattern language:

- A pattern is a JSON object. A key whose value is an object descends into the record; a key
  whose value is an array is a *leaf*: the record's value there must satisfy at least one of
  the array's matchers (OR). All keys of an object must match (AND); ``"$or": [p, q, ...]``
  matches when any of its patterns does.
- Matchers: a string, number, ``true``/``false`` or ``null`` (equal, type for type; ``""``
  is the empty string); ``{"prefix": s}``, ``{"suffix": s}`` (either may be
  ``{"equals-ignore-case": s}`` inside); ``{"equals-ignore-case": s}``;
  ``{"anything-but": v | [v, ...] | {"prefix": s} | {"suffix": s} | {"equals-ignore-case":
  s | [s, ...]}}``; ``{"numeric": ["=", n]}`` or ``{"numeric": [">" | ">=", a, "<" | "<=",
  b]}`` (either bound alone too); ``{"exists": true | false}``.
- A record value that is an array matches when any of its elements does. Only
  ``{"exists": false}`` matches a key the record lacks; ``{"exists": true}`` wants a leaf (a
  present value that is not an object).

``parse`` raises ``FilterPatternError`` for anything else, so that a bad pattern is refused
when a mapping is created or updated, never while records flow. ``matches`` is pure.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Matcher = Callable[[Any], bool]
_MISSING = object()
Comparison = Callable[[float, float], bool]
_LOWER_OPS: dict[str, Comparison] = {">": operator.gt, ">=": operator.ge}
_UPPER_OPS: dict[str, Comparison] = {"<": operator.lt, "<=": operator.le}


class FilterPatternError(ValueError):
    """The text is not a filter pattern Lambda accepts."""


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern: leaves (key → matchers), nested patterns and ``$or`` branches."""

    leaves: tuple[tuple[str, tuple[Matcher, ...]], ...]
    children: tuple[tuple[str, Pattern], ...]
    any_of: tuple[tuple[Pattern, ...], ...]
    #: Leaves whose matchers accept a missing key (only ``{"exists": false}`` does).
    absent_ok: frozenset[str]

    def matches(self, record: Mapping[str, Any]) -> bool:
        for key, matchers in self.leaves:
            value = record.get(key, _MISSING)
            if value is _MISSING:
                if key not in self.absent_ok:
                    return False
                continue
            if not _leaf_matches(matchers, value):
                return False
        for key, child in self.children:
            value = record.get(key, _MISSING)
            if not _child_matches(child, value):
                return False
        return all(any(branch.matches(record) for branch in branches) for branches in self.any_of)


def parse(text: str) -> Pattern:
    """Parse one ``Filters[].Pattern``. Raises FilterPatternError."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FilterPatternError(f"not JSON: {exc}") from exc
    return _pattern(document)


def matches_any(patterns: Sequence[Pattern], record: Mapping[str, Any]) -> bool:
    """Whether ``record`` passes ``FilterCriteria``: no patterns pass everything; otherwise
    filters are ORed, as Lambda documents."""
    return not patterns or any(pattern.matches(record) for pattern in patterns)


# ------------------------------------------------------------------------------ matching
def _child_matches(child: Pattern, value: Any) -> bool:
    if isinstance(value, list):
        return any(_child_matches(child, item) for item in value) if value else child.matches({})
    return child.matches(value if isinstance(value, dict) else {})


def _leaf_matches(matchers: tuple[Matcher, ...], value: Any) -> bool:
    candidates = value if isinstance(value, list) else [value]
    return any(matcher(item) for item in candidates for matcher in matchers)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equals(expected: Any) -> Matcher:
    if expected is None:
        return lambda value: value is None
    if isinstance(expected, bool):
        return lambda value: isinstance(value, bool) and value is expected
    if _is_number(expected):
        return lambda value: _is_number(value) and value == expected
    return lambda value: isinstance(value, str) and value == expected


# ------------------------------------------------------------------------------- parsing
def _pattern(document: Any) -> Pattern:
    if not isinstance(document, dict):
        raise FilterPatternError("a pattern is a JSON object")
    leaves: list[tuple[str, tuple[Matcher, ...]]] = []
    children: list[tuple[str, Pattern]] = []
    any_of: list[tuple[Pattern, ...]] = []
    absent_ok: set[str] = set()
    for key, value in document.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise FilterPatternError("$or takes an array of at least two patterns")
            any_of.append(tuple(_pattern(branch) for branch in value))
        elif isinstance(value, dict):
            children.append((key, _pattern(value)))
        elif isinstance(value, list):
            if not value:
                raise FilterPatternError(f"the array of {key!r} is empty")
            matchers = tuple(_matcher(item) for item in value)
            leaves.append((key, matchers))
            if any(isinstance(item, dict) and item.get("exists") is False for item in value):
                absent_ok.add(key)
        else:
            raise FilterPatternError(f"the value of {key!r} must be an object or an array")
    return Pattern(tuple(leaves), tuple(children), tuple(any_of), frozenset(absent_ok))


def _matcher(item: Any) -> Matcher:
    if item is None or isinstance(item, str | bool) or _is_number(item):
        return _equals(item)
    if not isinstance(item, dict) or len(item) != 1:
        raise FilterPatternError(f"not a matcher: {item!r}")
    ((name, operand),) = item.items()
    builder = _OPERATORS.get(name)
    if builder is None:
        raise FilterPatternError(f"unknown operator {name!r}")
    return builder(operand)


def _text_test(operand: Any, test: Callable[[str, str], bool]) -> Matcher:
    """``prefix``/``suffix``: a string, or ``{"equals-ignore-case": s}`` for a caseless one."""
    if isinstance(operand, str):
        return lambda value: isinstance(value, str) and test(value, operand)
    if isinstance(operand, dict) and set(operand) == {"equals-ignore-case"}:
        folded = operand["equals-ignore-case"]
        if isinstance(folded, str):
            return lambda value: isinstance(value, str) and test(value.casefold(), folded.casefold())
    raise FilterPatternError(f"not a string operand: {operand!r}")


def _prefix(operand: Any) -> Matcher:
    return _text_test(operand, str.startswith)


def _suffix(operand: Any) -> Matcher:
    return _text_test(operand, str.endswith)


def _ignore_case(operand: Any) -> Matcher:
    if not isinstance(operand, str):
        raise FilterPatternError("equals-ignore-case takes a string")
    folded = operand.casefold()
    return lambda value: isinstance(value, str) and value.casefold() == folded


def _anything_but(operand: Any) -> Matcher:
    if isinstance(operand, dict):
        if set(operand) == {"equals-ignore-case"}:
            words = operand["equals-ignore-case"]
            words = [words] if isinstance(words, str) else words
            if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
                raise FilterPatternError("anything-but equals-ignore-case takes strings")
            excluded = {w.casefold() for w in words}
            return lambda value: not (isinstance(value, str) and value.casefold() in excluded)
        inner = _matcher(operand)
        if set(operand) not in ({"prefix"}, {"suffix"}):
            raise FilterPatternError("anything-but takes values, prefix, suffix or equals-ignore-case")
        return lambda value: not inner(value)
    values = operand if isinstance(operand, list) else [operand]
    if not values or not all(isinstance(v, str) or _is_number(v) for v in values):
        raise FilterPatternError("anything-but takes strings or numbers")
    equals = [_equals(v) for v in values]
    return lambda value: not any(test(value) for test in equals)


def _numeric(operand: Any) -> Matcher:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise FilterPatternError("numeric takes one or two (operator, number) pairs")
    pairs = [(operand[i], operand[i + 1]) for i in range(0, len(operand), 2)]
    for op, bound in pairs:
        if not isinstance(op, str) or not _is_number(bound) or not math.isfinite(bound):
            raise FilterPatternError(f"not a numeric comparison: {op!r} {bound!r}")
    if len(pairs) == 1 and pairs[0][0] == "=":
        target = pairs[0][1]
        return lambda value: _is_number(value) and value == target
    bounds: list[tuple[Comparison, float]] = []
    for table in (_LOWER_OPS, _UPPER_OPS):
        if pairs and pairs[0][0] in table:
            op, bound = pairs.pop(0)
            bounds.append((table[op], bound))
    if pairs or not bounds:
        raise FilterPatternError("numeric takes a lower bound, then an upper bound")
    return lambda value: _is_number(value) and all(test(value, b) for test, b in bounds)


def _exists(operand: Any) -> Matcher:
    if not isinstance(operand, bool):
        raise FilterPatternError("exists takes true or false")
    # Reached only for a present key (a missing one is decided by Pattern.absent_ok).
    if operand:
        return lambda value: not isinstance(value, dict)
    return lambda value: False


_OPERATORS: dict[str, Callable[[Any], Matcher]] = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _ignore_case,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "exists": _exists,
}
