"""The botocore service models the edges speak (``lambda``, ``logs``, ``sqs``), one copy each.

``service_model(name)`` is the model of the installed botocore (its own data directory only:
neither ``AWS_DATA_PATH`` nor ``~/.aws/models`` changes strato's wire), parsed on first use
and shared by every caller in the process: the models are read-only data, so one copy serves
every server and thread. Callers on a rarely used path (CloudWatch Logs, SQS) ask for their
model when a request arrives, so a process that never serves them never holds it.

What is kept differs from ``botocore.session`` in two ways that change no shape, operation
or error code: the human documentation strings (``documentation``, ``documentationUrl``)
are dropped while parsing, and objects are plain dicts instead of ``OrderedDict`` (dicts keep
insertion order). Together they halve a model's memory (Lambda's: about 2 MB to 1 MB).
Importing this module does not import ``botocore.session`` (and with it botocore's client,
credential and documentation machinery, which the server never uses).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from botocore.loaders import JSONFileLoader, Loader  # type: ignore[import-untyped, unused-ignore]
from botocore.model import ServiceModel  # type: ignore[import-untyped, unused-ignore]

#: Keys whose string values are prose for people, never read by strato or by botocore's
#: parsing, validation or serialisation.
_PROSE = frozenset({"documentation", "documentationUrl"})


def _without_prose(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A member that happens to be called "documentation" maps to a shape (a dict), never a
    # string, so it is kept.
    return {key: value for key, value in pairs if not (key in _PROSE and isinstance(value, str))}


class _LeanJsonLoader(JSONFileLoader):  # type: ignore[misc]
    """botocore's JSON file loader, parsing into plain dicts without prose."""

    def _load_file(self, full_path: str, open_method: Any) -> Any:
        # The parent's contract: None when there is no such file.
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as file:
            payload = file.read().decode("utf-8")
        return json.loads(payload, object_pairs_hook=_without_prose)


@functools.cache
def _loader() -> Loader:
    return Loader(extra_search_paths=[Loader.BUILTIN_DATA_PATH], file_loader=_LeanJsonLoader(),
                  include_default_search_paths=False)


@functools.cache
def service_model(name: str) -> ServiceModel:
    """The latest API version of service ``name`` (``"lambda"``, ``"logs"``, ``"sqs"``) as
    installed with botocore. Parsed once per process, then shared; thread-safe (a race on
    the first call parses twice and keeps one). Raises botocore's ``UnknownServiceError``
    for a name botocore does not know."""
    return ServiceModel(_loader().load_service_model(name, "service-2"), service_name=name)
