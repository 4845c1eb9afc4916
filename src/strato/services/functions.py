"""The function service: create, read, update and delete functions, publish versions.

Runs on the control-plane thread (one at a time), never on the event loop. Every change is
written to the store first, then announced through ``on_change(name)`` (the application
reloads the function's entry and relays it to the invoke path's registry and to the
environment pool).

``$LATEST`` is the only mutable version. PublishVersion (or ``Publish`` on CreateFunction and
UpdateFunctionCode) snapshots it as version ``n + 1``; publishing when nothing changed since
the newest version returns that version. A qualifier names ``$LATEST``, a version number or
an alias; reads through an alias show the version it points to under the alias's ARN.

State transitions follow Lambda's: CreateFunction answers ``State: Pending`` and the function
becomes ``Active`` once its code is unpacked and its runtime can start; updates answer
``LastUpdateStatus: InProgress`` and become ``Successful`` the same way. The follow-up step
runs through ``defer`` on the control-plane thread, right after the response is sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from strato.codestore.base import CodeStore
from strato.domain import validation
from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from strato.domain.layers import check_combined_size
from strato.domain.logging_config import LoggingConfig, LoggingConfigChanges, configure
from strato.domain.models import (
    LATEST,
    Alias,
    CodeRef,
    FunctionLayer,
    FunctionState,
    FunctionVersion,
    LastUpdateStatus,
    VpcConfig,
    utcnow,
)
from strato.errors import (
    AlreadyExistsError,
    InterpreterNotFoundError,
    NotFoundError,
    RevisionMismatchError,
    StratoError,
)
from strato.sandbox.launch import Launchers
from strato.services.tags import check_tags
from strato.store.base import AliasStore, FunctionStore

log = logging.getLogger(__name__)

OnChange = Callable[[str], None]
#: Fields of a version that are not its configuration: publishing compares the rest.
_NOT_CONFIGURATION = ("version", "revision_id", "description", "state",
                      "state_reason", "state_reason_code", "last_update_status",
                      "last_update_status_reason", "last_update_status_reason_code")
Defer = Callable[[Callable[[], None]], None]



@dataclass(frozen=True)
class ConfigurationChanges:
    """Settable configuration; None means "leave as it is"."""

    runtime: str | None = None
    handler: str | None = None
    role: str | None = None
    memory_size: int | None = None
    timeout: int | None = None
    description: str | None = None
    environment: Mapping[str, str] | None = None
    ephemeral_storage: int | None = None
    vpc_config: VpcConfig | None = None
    #: ``DeadLetterConfig.TargetArn``; ``""`` removes the dead-letter queue.
    dead_letter_target: str | None = None
    #: The members of ``LoggingConfig`` given (merged into the current configuration).
    logging_config: LoggingConfigChanges | None = None
    #: ``Layers``, resolved (``LayerService.resolve``); ``()`` removes every layer.
    layers: tuple[FunctionLayer, ...] | None = None


@dataclass(frozen=True)
class AccountUsage:
    function_count: int
    total_code_size: int


class FunctionService:
    def __init__(
        self,
        store: FunctionStore,
        codestore: CodeStore,
        launchers: Launchers,
        on_change: OnChange,
        defer: Defer,
        on_delete: Callable[[str, str | None], None] | None = None,
        aliases: AliasStore | None = None,
        other_code: Callable[[], set[str]] | None = None,
    ) -> None:
        self._store = store
        self._aliases = aliases
        self._code = codestore
        self._launchers = launchers
        self._on_change = on_change
        self._defer = defer
        #: Called with (name, None) when a function was deleted and (name, version) when one
        #: of its versions was (resource policies and provisioned concurrency go with them).
        self._on_delete = on_delete
        #: The packages other resources hold (layer versions), which code GC must keep.
        self._other_code = other_code

    # validation -------------------------------------------------------------------------
    def _check(self, changes: ConfigurationChanges) -> None:
        if changes.runtime is not None:
            validation.check_runtime(changes.runtime)
            try:
                self._launchers.require(changes.runtime)
            except InterpreterNotFoundError as exc:
                raise InvalidParameterValueException(str(exc)) from exc
        validation.check_sizes(
            memory=changes.memory_size, timeout=changes.timeout, ephemeral=changes.ephemeral_storage
        )
        if changes.environment is not None:
            validation.check_environment(changes.environment)
        if changes.dead_letter_target:
            validation.check_dead_letter_target(changes.dead_letter_target)

    # operations ---------------------------------------------------------------------------
    def create(
        self, name: str, changes: ConfigurationChanges, zip_file: bytes | None, scope: Scope,
        *, tags: Mapping[str, str] | None = None, publish: bool = False,
    ) -> FunctionVersion:
        """Create a function; with ``publish``, also its version 1 (the returned record is
        then that version's, still Pending like ``$LATEST``)."""
        validation.check_function_name(name)
        if tags is not None:
            check_tags(tags, {})
        if changes.runtime is None or not changes.handler:
            raise InvalidParameterValueException(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages."
            )
        self._check(changes)
        logging_config = configure(LoggingConfig(), changes.logging_config or LoggingConfigChanges())
        if zip_file is None:
            raise InvalidParameterValueException(
                "strato accepts deployment packages as Code.ZipFile only."
            )
        if self._store.get_version(name, LATEST) is not None:
            raise ResourceConflictException(f"Function already exist: {name}")
        code = self._code.put_zip(zip_file)
        self._check_size(code, changes.layers or ())
        record = FunctionVersion(
            name=name,
            runtime=changes.runtime,
            handler=changes.handler,
            role=changes.role or "",
            code=code,
            revision_id=str(uuid.uuid4()),
            last_modified=utcnow(),
            memory_size=changes.memory_size or 128,
            timeout=changes.timeout or 3,
            ephemeral_storage=changes.ephemeral_storage or 512,
            description=changes.description or "",
            environment=dict(changes.environment or {}),
            environment_configured=changes.environment is not None,
            vpc_config=changes.vpc_config or VpcConfig(),
            dead_letter_target=changes.dead_letter_target or None,
            logging_config=logging_config,
            layers=changes.layers or (),
        )
        try:
            self._store.create_function(record)
        except AlreadyExistsError as exc:
            raise ResourceConflictException(f"Function already exist: {name}") from exc
        if tags:
            self._store.put_tags(name, tags)
        result = self._publish_snapshot(record, None) if publish else record
        self._on_change(name)
        if not publish:  # publishing renewed $LATEST's RevisionId and settles that one
            self._defer(lambda: self.settle(name, record.revision_id))
        return result

    def get(self, ref: FunctionRef, scope: Scope) -> FunctionVersion:
        """The version ``ref`` names: ``$LATEST`` when unqualified, a published version, or
        the version an alias points to. Raises ResourceNotFoundException (AWS's message)."""
        record = self._resolve(ref)
        if record is None:
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, ref.qualifier)}"
            )
        return record

    def tags(self, name: str) -> dict[str, str]:
        return self._store.get_tags(name)

    def reserved_concurrency(self, name: str) -> int | None:
        return self._store.get_reserved_concurrency(name)

    def _resolve(self, ref: FunctionRef) -> FunctionVersion | None:
        qualifier = ref.qualifier or LATEST
        if qualifier == LATEST or qualifier.isdigit():
            return self._store.get_version(ref.name, qualifier)
        alias = self._aliases.get_alias(ref.name, qualifier) if self._aliases else None
        return None if alias is None else self._store.get_version(ref.name, alias.function_version)

    def list_functions(self, marker: str | None, max_items: int | None,
             *, every_version: bool = False) -> tuple[list[FunctionVersion], str | None]:
        """A page of functions by name (``$LATEST`` of each, or with ``every_version`` each
        function's versions too; a function is never split across pages then)."""
        limit = min(max_items or 50, 50)
        records = self._store.list_latest(after=marker, limit=limit + 1)
        marker_out = None
        if len(records) > limit:
            records, marker_out = records[:limit], records[limit - 1].name
        if every_version:
            records = [v for r in records for v in self._all_versions(r.name)]
        return records, marker_out

    def _all_versions(self, name: str) -> list[FunctionVersion]:
        found: list[FunctionVersion] = []
        while batch := self._store.list_versions(
                name, after=found[-1].version if found else None, limit=500):
            found += batch
        return found

    def list_versions(self, ref: FunctionRef, marker: str | None, max_items: int | None,
                      scope: Scope) -> tuple[list[FunctionVersion], str | None]:
        """A page of ListVersionsByFunction: ``$LATEST`` first, then versions by number."""
        validation.require_unqualified(ref)
        limit = min(max_items or 50, 50)
        try:
            records = self._store.list_versions(ref.name, after=marker, limit=limit + 1)
        except ValueError as exc:
            raise InvalidParameterValueException(f"Invalid marker: {marker}") from exc
        if not records and marker is None:
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(ref.name)}")
        if len(records) > limit:
            return records[:limit], records[limit - 1].version
        return records, None

    def update_code(
        self, ref: FunctionRef, zip_file: bytes | None, revision_id: str | None, scope: Scope,
        *, publish: bool = False,
    ) -> FunctionVersion:
        """Replace ``$LATEST``'s code; with ``publish``, also publish it (the returned record
        is then the new version's, Pending until the code is ready, as on AWS)."""
        current = self._for_update(ref, revision_id, scope)
        if zip_file is None:
            raise InvalidParameterValueException("strato accepts code as ZipFile only.")
        code = self._code.put_zip(zip_file)
        self._check_size(code, current.layers)
        updated = self._write_update(current, {"code": code}, announce=not publish)
        if not publish:
            return updated
        published = self._publish_snapshot(updated, self._newest_published(ref.name))
        self._on_change(ref.name)
        return published

    def update_configuration(
        self, ref: FunctionRef, changes: ConfigurationChanges, revision_id: str | None, scope: Scope
    ) -> FunctionVersion:
        current = self._for_update(ref, revision_id, scope)
        self._check(changes)
        if changes.layers is not None:
            self._check_size(current.code, changes.layers)
        fields = {k: v for k, v in vars(changes).items() if v is not None}
        if "environment" in fields:
            fields["environment"] = dict(fields["environment"])
            fields["environment_configured"] = True
        if "dead_letter_target" in fields:
            fields["dead_letter_target"] = fields["dead_letter_target"] or None
        if changes.logging_config is not None:
            fields["logging_config"] = configure(current.logging_config, changes.logging_config)
        return self._write_update(current, fields)

    def delete(self, ref: FunctionRef, scope: Scope) -> None:
        """Delete the function (unqualified) or one published version. A version an alias
        routes to cannot go; a version that does not exist is no error (AWS answers 204)."""
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if ref.qualifier is not None:
            self._delete_version(ref, scope)
            return
        if not self._store.delete_function(ref.name):
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, ref.qualifier)}"
            )
        if self._on_delete is not None:
            self._on_delete(ref.name, None)
        self._on_change(ref.name)
        self._defer(self._collect_code)

    def _delete_version(self, ref: FunctionRef, scope: Scope) -> None:
        version = ref.qualifier
        assert version is not None
        if self._store.get_version(ref.name, LATEST) is None:
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(ref.name)}")
        if not version.isdigit():
            raise InvalidParameterValueException(
                "Deletion of aliases is not supported by DeleteFunction; use DeleteAlias."
            )
        users = [a.name for a in self._list_aliases(ref.name) if version in a.versions()]
        if users:
            raise ResourceConflictException(
                "Unable to delete version because the following aliases reference it: "
                f"[{', '.join(users)}]"
            )
        if not self._store.delete_version(ref.name, version):
            return
        if self._on_delete is not None:
            self._on_delete(ref.name, version)
        self._on_change(ref.name)
        self._defer(self._collect_code)

    def _list_aliases(self, name: str) -> list[Alias]:
        return self._aliases.list_aliases(name) if self._aliases is not None else []

    # versions ----------------------------------------------------------------------------
    def publish(self, ref: FunctionRef, code_sha256: str | None, description: str | None,
                revision_id: str | None, scope: Scope) -> FunctionVersion:
        """PublishVersion: snapshot ``$LATEST`` as the next version, or return the newest
        version when neither code nor configuration changed since it was published."""
        validation.require_unqualified(ref)
        latest = self.get(FunctionRef(ref.name), scope)
        if latest.last_update_status is LastUpdateStatus.IN_PROGRESS or not latest.is_ready:
            raise validation.update_in_progress(scope.function_arn(ref.name))
        if code_sha256 is not None and code_sha256 != latest.code.code_sha256:
            raise InvalidParameterValueException(
                f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
                f"({latest.code.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
            )
        if revision_id is not None and revision_id != latest.revision_id:
            raise validation.revision_mismatch()
        newest = self._newest_published(ref.name)
        if newest is not None and _unchanged_since(latest, newest):
            return newest
        published = self._publish_snapshot(latest, newest, description)
        self._on_change(ref.name)
        return published

    def _newest_published(self, name: str) -> FunctionVersion | None:
        number = self._store.last_version_number(name)
        while number > 0:
            record = self._store.get_version(name, str(number))
            if record is not None:
                return record
            number -= 1
        return None

    def _publish_snapshot(self, latest: FunctionVersion, newest: FunctionVersion | None,
                          description: str | None = None) -> FunctionVersion:
        """Store ``latest`` as the next version (its state as it is: a Pending snapshot is
        settled with ``$LATEST``)."""
        number = self._store.last_version_number(latest.name) + 1
        # A version keeps the LastModified of the $LATEST it snapshots: that is how a later
        # publish knows whether $LATEST changed since (see ``_unchanged_since``).
        record = latest.replace(
            version=str(number),
            revision_id=str(uuid.uuid4()),
            description=latest.description if description is None else description,
        )
        if record.last_update_status is LastUpdateStatus.IN_PROGRESS:
            record = record.replace(state=FunctionState.PENDING,
                                    state_reason="The function is being created.",
                                    state_reason_code="Creating",
                                    last_update_status=None,
                                    last_update_status_reason=None,
                                    last_update_status_reason_code=None)
        try:
            self._store.publish_version(record)
        except (AlreadyExistsError, NotFoundError) as exc:
            raise validation.update_in_progress(latest.name) from exc
        if not record.is_ready:
            self._defer(lambda: self.settle(latest.name, record.revision_id, record.version))
        self._renew_latest_revision(latest)
        return record

    def _renew_latest_revision(self, latest: FunctionVersion) -> None:
        """Give ``$LATEST`` a new RevisionId, as publishing a version does on AWS (a RevisionId
        read before the publish no longer updates the function). A ``$LATEST`` still Pending or
        InProgress is settled under its new RevisionId (a settle deferred under the old one
        finds it changed and does nothing)."""
        renewed = latest.replace(revision_id=str(uuid.uuid4()))
        try:
            self._store.put_version(renewed, expected_revision=latest.revision_id)
        except RevisionMismatchError as exc:
            raise validation.revision_mismatch() from exc
        if not renewed.is_ready or renewed.last_update_status is LastUpdateStatus.IN_PROGRESS:
            self._defer(lambda: self.settle(latest.name, renewed.revision_id))

    def account_usage(self) -> AccountUsage:
        """The number of functions and the code they hold: as on AWS, ``$LATEST`` and every
        published version count their package, the same package in two versions twice."""
        count = size = 0
        after: str | None = None
        while batch := self._store.list_latest(after=after, limit=500):
            count += len(batch)
            size += sum(v.code.size for record in batch for v in self._all_versions(record.name))
            after = batch[-1].name
        return AccountUsage(count, size)

    # internals ---------------------------------------------------------------------------
    def _for_update(self, ref: FunctionRef, revision_id: str | None, scope: Scope) -> FunctionVersion:
        if ref.qualifier not in (None, LATEST):
            raise InvalidParameterValueException(
                "Only the $LATEST version of a function can be updated."
            )
        current = self.get(FunctionRef(ref.name), scope)
        if current.last_update_status is LastUpdateStatus.IN_PROGRESS:
            raise validation.update_in_progress(scope.function_arn(ref.name))
        if revision_id is not None and revision_id != current.revision_id:
            raise validation.revision_mismatch()
        return current

    def _check_size(self, code: CodeRef, layers: tuple[FunctionLayer, ...]) -> None:
        """The 250 MB a package and its layers may take unzipped (a refused package stays
        in the code store until the next collection, like any package no version uses)."""
        if layers:
            check_combined_size(self._code.unzipped_size(code), layers)

    def _write_update(self, current: FunctionVersion, fields: dict[str, object],
                      *, announce: bool = True) -> FunctionVersion:
        updated = current.replace(
            **fields,
            revision_id=str(uuid.uuid4()),
            last_modified=utcnow(),
            last_update_status=LastUpdateStatus.IN_PROGRESS,
            last_update_status_reason="The function is being created.",
            last_update_status_reason_code="Creating",
        )
        try:
            self._store.put_version(updated, expected_revision=current.revision_id)
        except RevisionMismatchError as exc:
            raise validation.revision_mismatch() from exc
        if announce:
            self._on_change(current.name)
        self._defer(lambda: self.settle(current.name, updated.revision_id))
        return updated

    def settle(self, name: str, revision_id: str, version: str = LATEST) -> None:
        """Finish a create, update or publish: unpack the code, then mark the version Active /
        Successful (or Failed with the reason) under a new RevisionId, as AWS changes it on
        these transitions. A later change supersedes this one."""
        record = self._store.get_version(name, version)
        if record is None or record.revision_id != revision_id:
            return
        try:
            self._code.unpacked(record.code)
            if record.layers:  # built now so that a cold start finds /opt ready
                self._code.merged([layer.code for layer in record.layers])
            failure = None
        except StratoError as exc:
            log.error("function %s: code could not be prepared: %s", name, exc)
            failure = str(exc)
        if record.last_update_status is LastUpdateStatus.IN_PROGRESS:
            settled = record.replace(
                last_update_status=LastUpdateStatus.FAILED if failure else LastUpdateStatus.SUCCESSFUL,
                last_update_status_reason=failure,
                last_update_status_reason_code="InternalError" if failure else None,
            )
        else:
            settled = record.replace(
                state=FunctionState.FAILED if failure else FunctionState.ACTIVE,
                state_reason=failure,
                state_reason_code="InternalError" if failure else None,
                last_update_status=LastUpdateStatus.FAILED if failure else LastUpdateStatus.SUCCESSFUL,
            )
        settled = settled.replace(revision_id=str(uuid.uuid4()))
        try:
            self._store.put_version(settled, expected_revision=revision_id)
        except (RevisionMismatchError, NotFoundError):
            return
        self._on_change(name)

    def collect_code(self) -> None:
        """Remove packages no version (nor layer version) uses any more."""
        self._collect_code()

    def _collect_code(self) -> None:
        """Remove packages no version uses any more."""
        try:
            keep = self._store.code_references()
            if self._other_code is not None:
                keep |= self._other_code()
            self._code.collect_garbage(keep)
        except StratoError as exc:
            log.warning("code store clean-up failed: %s", exc)


def _unchanged_since(latest: FunctionVersion, published: FunctionVersion) -> bool:
    """True when ``$LATEST`` was not updated since ``published`` was made from it, so that
    publishing again would change nothing (AWS then answers with ``published``). Any update,
    a description alone included, counts; the description given to PublishVersion does not."""
    left, right = vars(latest).copy(), vars(published).copy()
    for name in _NOT_CONFIGURATION:
        left.pop(name, None)
        right.pop(name, None)
    return left == right
