"""Which operation of a REST-style service model an HTTP request is for.

botocore's rest-json and rest-xml clients build the request path from an operation's
``http.requestUri`` template (``/2015-03-31/functions/{FunctionName}/invocations``),
percent-encoding each label value: ``/`` included for plain labels, ``/`` kept for greedy
labels (``{Key+}``). A template may carry a literal query part (``/path?versioning``,
``?List=ALL``) that the client always sends. ``Router`` inverts that: it matches the raw
(still percent-encoded) path against every template of the request's method and returns the
operation and its percent-decoded label values.

When several templates match, the most specific wins: compared segment by segment from the
left, a literal segment beats one mixing literals and labels, which beats a plain label, which
beats a greedy label; then the template requiring more literal query keys wins. So ``GET
.../functions/{FunctionName}/versions`` is ListVersionsByFunction, never GetFunction (labels
never match ``/`` anyway), and ``GET /2018-10-31/layers?find=LayerVersion`` is
GetLayerVersionByArn, not ListLayers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from botocore.model import (  # type: ignore[import-untyped, unused-ignore]
    OperationModel,
    ServiceModel,
)

_LABEL = re.compile(r"\{([^}]+)\}")

# Segment scores: the higher, the more specific.
_LITERAL, _MIXED, _PLAIN_LABEL, _GREEDY = 3, 2, 1, 0


@dataclass(frozen=True)
class RouteMatch:
    """An operation and the percent-decoded values of its URI labels (keyed by label name)."""

    operation: OperationModel
    uri_params: dict[str, str]


@dataclass(frozen=True)
class _Route:
    operation: OperationModel
    regex: re.Pattern[str]
    #: Label name of each regex group, in group order (groups are named ``g0``, ``g1``...).
    labels: tuple[str, ...]
    #: Literal query keys the template requires, with the value required (None: any value).
    query: tuple[tuple[str, str | None], ...]
    specificity: tuple[tuple[int, ...], int]

    def match(self, raw_path: str, query: Mapping[str, Sequence[str]]) -> dict[str, str] | None:
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        for key, required in self.query:
            values = query.get(key)
            if values is None or (required is not None and required not in values):
                return None
        return {label: unquote(found[f"g{i}"]) for i, label in enumerate(self.labels)}


class Router:
    """Routes requests to the operations of one REST-style ``ServiceModel``.

    Built once per service at start-up (the regexes are compiled then); ``match`` is pure and
    safe to call from any thread.
    """

    def __init__(self, service_model: ServiceModel) -> None:
        routes: dict[str, list[_Route]] = {}
        for name in service_model.operation_names:
            operation = service_model.operation_model(name)
            method = str(operation.http.get("method", "POST")).upper()
            routes.setdefault(method, []).append(_compile(operation))
        for candidates in routes.values():
            candidates.sort(key=lambda route: route.specificity, reverse=True)
        self._routes = routes

    def match(
        self,
        method: str,
        raw_path: str,
        query: Mapping[str, Sequence[str]] | None = None,
    ) -> RouteMatch | None:
        """The operation for ``method`` on ``raw_path``, or None when no template matches.

        ``raw_path`` is the path as received: percent-encoded, without the query string.
        ``query`` is the decoded query string (``urllib.parse.parse_qs(qs,
        keep_blank_values=True)``); None is the same as an empty query, so templates that
        require a literal query key (``?List=ALL``) do not match without it. A trailing ``/``
        that the template lacks is tolerated.
        """
        query = query or {}
        routes = self._routes.get(method.upper(), ())
        paths = [raw_path]
        if len(raw_path) > 1 and raw_path.endswith("/"):
            paths.append(raw_path[:-1])
        for path in paths:
            for route in routes:
                params = route.match(path, query)
                if params is not None:
                    return RouteMatch(operation=route.operation, uri_params=params)
        return None


def template_query(request_uri: str) -> tuple[tuple[str, str | None], ...]:
    """The literal query part of a ``requestUri`` template: ``?List=ALL`` → ``(("List", "ALL"),)``.

    A bare key (``?versioning``) requires the key with any value.
    """
    _, _, query = request_uri.partition("?")
    return tuple(
        (key, value if "=" in part else None)
        for part in query.split("&")
        if part
        for key, value in parse_qsl(part, keep_blank_values=True)
    )


def _compile(operation: OperationModel) -> _Route:
    request_uri = str(operation.http.get("requestUri", "/"))
    path = request_uri.partition("?")[0]
    pattern: list[str] = []
    labels: list[str] = []
    scores: list[int] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        pattern.append("/")
        position = 0
        greedy = has_label = False
        for found in _LABEL.finditer(segment):
            pattern.append(re.escape(segment[position : found.start()]))
            label = found[1]
            group = f"g{len(labels)}"
            if label.endswith("+"):
                greedy = True
                labels.append(label[:-1])
                pattern.append(f"(?P<{group}>.+)")
            else:
                labels.append(label)
                pattern.append(f"(?P<{group}>[^/]+)")
            has_label = True
            position = found.end()
        pattern.append(re.escape(segment[position:]))
        if greedy:
            scores.append(_GREEDY)
        elif not has_label:
            scores.append(_LITERAL)
        else:
            scores.append(_PLAIN_LABEL if _LABEL.fullmatch(segment) else _MIXED)
    query = template_query(request_uri)
    return _Route(
        operation=operation,
        regex=re.compile("".join(pattern) or "/"),
        labels=tuple(labels),
        query=query,
        specificity=(tuple(scores), len(query)),
    )
