"""Tags of functions: TagResource, UntagResource, ListTags, and ``Tags`` on CreateFunction.

Only functions carry tags: a qualified ARN (a version or an alias) is refused, as on AWS.
Limits are AWS's (https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html,
"Tag naming limits and requirements"): 50 tags per resource, keys of 1–128 and values of
0–256 characters, and the ``aws:`` prefix reserved. Runs on the control-plane thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import InvalidParameterValueException, ResourceNotFoundException
from strato.domain.models import LATEST
from strato.errors import NotFoundError
from strato.store.base import FunctionStore

MAX_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256


def check_tags(tags: Mapping[str, str], current: Mapping[str, str]) -> None:
    """Raise AWS's error if adding ``tags`` to ``current`` breaks a tag limit."""
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_KEY or len(value) > MAX_VALUE:
            raise InvalidParameterValueException(
                f"Tag key must be 1 to {MAX_KEY} characters and tag value at most {MAX_VALUE} "
                f"characters: {key[:MAX_KEY + 1]}"
            )
        if key.lower().startswith("aws:"):
            raise InvalidParameterValueException(
                "Tag keys beginning with 'aws:' are reserved for AWS use."
            )
    if len({**current, **tags}) > MAX_TAGS:
        raise InvalidParameterValueException("Number of tags exceeds resource tag limit.")


class TagService:
    def __init__(self, store: FunctionStore) -> None:
        self._store = store

    def tag(self, ref: FunctionRef, tags: Mapping[str, str], scope: Scope) -> None:
        if not tags:
            raise InvalidParameterValueException(
                "An error occurred and the request cannot be processed."
            )
        current = self._current(ref, scope)
        check_tags(tags, current)
        self._put(ref, {**current, **tags}, scope)

    def untag(self, ref: FunctionRef, keys: Sequence[str], scope: Scope) -> None:
        current = self._current(ref, scope)
        remaining = {k: v for k, v in current.items() if k not in set(keys)}
        if remaining != current:
            self._put(ref, remaining, scope)

    def list(self, ref: FunctionRef, scope: Scope) -> dict[str, str]:
        return self._current(ref, scope)

    def _current(self, ref: FunctionRef, scope: Scope) -> dict[str, str]:
        if ref.qualifier is not None:
            raise InvalidParameterValueException(
                "Tags on function aliases and versions are not supported. Please specify a "
                "function ARN."
            )
        if self._store.get_version(ref.name, LATEST) is None:
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(ref.name)}")
        return self._store.get_tags(ref.name)

    def _put(self, ref: FunctionRef, tags: Mapping[str, str], scope: Scope) -> None:
        try:
            self._store.put_tags(ref.name, tags)
        except NotFoundError as exc:
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name)}"
            ) from exc
