"""Function URL configurations: Create, Get, Update, Delete and List, per function or alias.

Runs on the control-plane thread. Every committed change is copied into the
``UrlDirectoryCache`` the URL edge reads, so serving a URL touches no database. A URL belongs
to the unqualified function (``$LATEST``) or to an alias, never to a version (the model's
pattern refuses numbers and ``$LATEST`` as a ``Qualifier``); it keeps its URL id across
updates and goes with its function or alias
(https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html). Messages are AWS's,
as recorded from the real service: 404s of a missing function say ``Function does not
exist`` on Create and List, ``The resource you requested does not exist.`` elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import ResourceConflictException, ResourceNotFoundException
from strato.domain.function_urls import AuthType, Cors, FunctionUrlConfig, InvokeMode, new_url_id
from strato.domain.models import LATEST
from strato.errors import AlreadyExistsError, NotFoundError
from strato.services.url_directory import UrlDirectoryCache
from strato.store.base import AliasStore, FunctionStore
from strato.store.url_base import FunctionUrlConfigStore

_NO_FUNCTION = "Function does not exist"
_NO_RESOURCE = "The resource you requested does not exist."
#: Configurations on one page of ListFunctionUrlConfigs when MaxItems does not say (and at
#: most, as the model's MaxItems allows).
PAGE_SIZE = 50
#: The list marker of the unqualified function's URL (no alias can be named so).
_UNQUALIFIED_MARKER = LATEST


def format_url_time(moment: datetime) -> str:
    """``CreationTime`` and ``LastModifiedTime``: ISO 8601 in UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class FunctionUrlChanges:
    """Settings of an UpdateFunctionUrlConfig; None means "not given" (kept as it is). A
    given ``cors`` replaces the whole CORS configuration."""

    auth_type: AuthType | None = None
    cors: Cors | None = None
    invoke_mode: InvokeMode | None = None


class FunctionUrlService:
    def __init__(self, store: FunctionUrlConfigStore, functions: FunctionStore,
                 aliases: AliasStore, directory: UrlDirectoryCache) -> None:
        self._store = store
        self._functions = functions
        self._aliases = aliases
        self._directory = directory

    # operations ---------------------------------------------------------------------------
    def create(self, ref: FunctionRef, auth_type: AuthType, cors: Cors | None,
               invoke_mode: InvokeMode | None, scope: Scope) -> FunctionUrlConfig:
        """CreateFunctionUrlConfig: a new URL for the function or alias ``ref`` names.
        Raises ResourceNotFoundException when either does not exist and
        ResourceConflictException when it has a URL already; writes nothing then."""
        if not self._exists(ref):
            raise ResourceNotFoundException(_NO_FUNCTION)
        now = format_url_time(datetime.now(UTC))
        config = FunctionUrlConfig(
            url_id=new_url_id(), function_name=ref.name, qualifier=ref.qualifier,
            auth_type=auth_type, invoke_mode=invoke_mode or InvokeMode.BUFFERED, cors=cors,
            creation_time=now, last_modified_time=now)
        try:
            self._store.create_config(config)
        except AlreadyExistsError as exc:
            raise ResourceConflictException(
                "Failed to create function url config for [functionArn = "
                f"{scope.function_arn(ref.name, ref.qualifier)}]. Error message:  "
                "FunctionUrlConfig exists for this Lambda function") from exc
        self._directory.put(config)
        return config

    def get(self, ref: FunctionRef) -> FunctionUrlConfig:
        """GetFunctionUrlConfig. Raises ResourceNotFoundException when the function, the
        alias or its URL does not exist."""
        config = self._store.get_config(ref.name, ref.qualifier)
        if config is None or not self._exists(ref):
            raise ResourceNotFoundException(_NO_RESOURCE)
        return config

    def update(self, ref: FunctionRef, changes: FunctionUrlChanges) -> FunctionUrlConfig:
        """UpdateFunctionUrlConfig: the given settings replace the current ones; the URL and
        its id stay. Raises ResourceNotFoundException when there is no URL."""
        current = self.get(ref)
        config = replace(
            current,
            auth_type=changes.auth_type or current.auth_type,
            invoke_mode=changes.invoke_mode or current.invoke_mode,
            cors=current.cors if changes.cors is None else changes.cors,
            last_modified_time=format_url_time(datetime.now(UTC)),
        )
        try:
            self._store.update_config(config)
        except NotFoundError as exc:  # deleted since it was read
            raise ResourceNotFoundException(_NO_RESOURCE) from exc
        self._directory.put(config)
        return config

    def delete(self, ref: FunctionRef) -> None:
        """DeleteFunctionUrlConfig: the URL stops answering at once; its id is never given
        again. Raises ResourceNotFoundException when there is no URL."""
        if not self._exists(ref) or not self._store.delete_config(ref.name, ref.qualifier):
            raise ResourceNotFoundException(_NO_RESOURCE)
        self._directory.remove(ref.name, ref.qualifier)

    def list_configs(self, ref: FunctionRef, marker: str | None,
                     max_items: int | None) -> tuple[list[FunctionUrlConfig], str | None]:
        """ListFunctionUrlConfigs: a page of the function's URLs (the unqualified one first,
        then by alias name) after ``marker``, and the marker of the next page or None."""
        if self._functions.get_version(ref.name, LATEST) is None:
            raise ResourceNotFoundException(_NO_FUNCTION)
        after = None if marker is None else "" if marker == _UNQUALIFIED_MARKER else marker
        configs = [c for c in self._store.list_configs(ref.name)
                   if after is None or (c.qualifier or "") > after]
        limit = min(max_items or PAGE_SIZE, PAGE_SIZE)
        if len(configs) > limit:
            return configs[:limit], configs[limit - 1].qualifier or _UNQUALIFIED_MARKER
        return configs, None

    # lifecycle of what URLs belong to ------------------------------------------------------
    def qualifier_deleted(self, function_name: str, qualifier: str) -> None:
        """An alias (or version, which has no URL) was deleted: its URL goes with it."""
        if self._store.delete_config(function_name, qualifier):
            self._directory.remove(function_name, qualifier)

    def function_deleted(self, function_name: str) -> None:
        self._store.delete_configs(function_name)
        self._directory.remove_function(function_name)

    def recover(self) -> None:
        """At start, before serving: delete the URLs of functions and aliases that are gone
        (a stop between deleting them and their URLs, which live in another file) and put
        every remaining configuration into the directory."""
        for config in self._store.list_configs():
            if self._exists(FunctionRef(config.function_name, config.qualifier)):
                self._directory.put(config)
            else:
                self._store.delete_config(config.function_name, config.qualifier)

    # rules --------------------------------------------------------------------------------
    def _exists(self, ref: FunctionRef) -> bool:
        if self._functions.get_version(ref.name, LATEST) is None:
            return False
        return ref.qualifier is None or self._aliases.get_alias(ref.name, ref.qualifier) is not None
