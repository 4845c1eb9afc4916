"""The function service: create, read, update and delete functions (``$LATEST``).

Runs on the control-plane thread (one at a time), never on the event loop. Every change is
written to the store first, then announced through ``on_change`` (which the application
relays to the invoke path's registry and to the environment pool).

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
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from strato.domain.models import (
    LATEST,
    FunctionState,
    FunctionVersion,
    LastUpdateStatus,
    VpcConfig,
    utcnow,
)
from strato.domain.runtimes import python_version
from strato.errors import (
    AlreadyExistsError,
    InterpreterNotFoundError,
    NotFoundError,
    RevisionMismatchError,
    StratoError,
)
from strato.sandbox.interpreters import InterpreterRegistry
from strato.store.base import FunctionStore

log = logging.getLogger(__name__)

OnChange = Callable[[str, FunctionVersion | None], None]
Defer = Callable[[Callable[[], None]], None]

_REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


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


@dataclass(frozen=True)
class AccountUsage:
    function_count: int
    total_code_size: int


class FunctionService:
    def __init__(
        self,
        store: FunctionStore,
        codestore: CodeStore,
        interpreters: InterpreterRegistry,
        on_change: OnChange,
        defer: Defer,
        on_delete: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._code = codestore
        self._interpreters = interpreters
        self._on_change = on_change
        self._defer = defer
        #: Called with the name of a function just deleted (its resource policies go with it).
        self._on_delete = on_delete

    # validation -------------------------------------------------------------------------
    def _check(self, changes: ConfigurationChanges) -> None:
        if changes.runtime is not None:
            validation.check_runtime(changes.runtime)
            version = python_version(changes.runtime)
            if version is not None:
                try:
                    self._interpreters.require(version)
                except InterpreterNotFoundError as exc:
                    raise InvalidParameterValueException(str(exc)) from exc
        validation.check_sizes(
            memory=changes.memory_size, timeout=changes.timeout, ephemeral=changes.ephemeral_storage
        )
        if changes.environment is not None:
            validation.check_environment(changes.environment)

    # operations ---------------------------------------------------------------------------
    def create(
        self, name: str, changes: ConfigurationChanges, zip_file: bytes | None, scope: Scope
    ) -> FunctionVersion:
        validation.check_function_name(name)
        if changes.runtime is None or not changes.handler:
            raise InvalidParameterValueException(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages."
            )
        self._check(changes)
        if zip_file is None:
            raise InvalidParameterValueException(
                "strato accepts deployment packages as Code.ZipFile only."
            )
        if self._store.get_version(name, LATEST) is not None:
            raise ResourceConflictException(f"Function already exist: {name}")
        code = self._code.put_zip(zip_file)
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
            vpc_config=changes.vpc_config or VpcConfig(),
        )
        try:
            self._store.create_function(record)
        except AlreadyExistsError as exc:
            raise ResourceConflictException(f"Function already exist: {name}") from exc
        self._on_change(name, record)
        self._defer(lambda: self.settle(name, record.revision_id))
        return record

    def get(self, ref: FunctionRef, scope: Scope) -> FunctionVersion:
        """``$LATEST`` of a function (qualifiers other than ``$LATEST`` name versions, which
        do not exist yet)."""
        qualifier = ref.qualifier or LATEST
        record = self._store.get_version(ref.name, qualifier) if qualifier == LATEST else None
        if record is None:
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, ref.qualifier)}"
            )
        return record

    def list(self, marker: str | None, max_items: int | None) -> tuple[list[FunctionVersion], str | None]:
        limit = min(max_items or 50, 50)
        records = self._store.list_latest(after=marker, limit=limit + 1)
        if len(records) > limit:
            return records[:limit], records[limit - 1].name
        return records, None

    def update_code(
        self, ref: FunctionRef, zip_file: bytes | None, revision_id: str | None, scope: Scope
    ) -> FunctionVersion:
        current = self._for_update(ref, revision_id, scope)
        if zip_file is None:
            raise InvalidParameterValueException("strato accepts code as ZipFile only.")
        code = self._code.put_zip(zip_file)
        return self._write_update(current, {"code": code})

    def update_configuration(
        self, ref: FunctionRef, changes: ConfigurationChanges, revision_id: str | None, scope: Scope
    ) -> FunctionVersion:
        current = self._for_update(ref, revision_id, scope)
        self._check(changes)
        fields = {k: v for k, v in vars(changes).items() if v is not None}
        if "environment" in fields:
            fields["environment"] = dict(fields["environment"])
        return self._write_update(current, fields)

    def delete(self, ref: FunctionRef, scope: Scope) -> None:
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if ref.qualifier is not None or not self._store.delete_function(ref.name):
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, ref.qualifier)}"
            )
        if self._on_delete is not None:
            self._on_delete(ref.name)
        self._on_change(ref.name, None)
        self._defer(self._collect_code)

    def account_usage(self) -> AccountUsage:
        count = size = 0
        after: str | None = None
        while batch := self._store.list_latest(after=after, limit=500):
            count += len(batch)
            size += sum(record.code.size for record in batch)
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
            raise ResourceConflictException(
                "The operation cannot be performed at this time. An update is in progress for "
                f"resource: {scope.function_arn(ref.name)}"
            )
        if revision_id is not None and revision_id != current.revision_id:
            raise PreconditionFailedException(_REVISION_MISMATCH)
        return current

    def _write_update(self, current: FunctionVersion, fields: dict[str, object]) -> FunctionVersion:
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
            raise PreconditionFailedException(_REVISION_MISMATCH) from exc
        self._on_change(current.name, updated)
        self._defer(lambda: self.settle(current.name, updated.revision_id))
        return updated

    def settle(self, name: str, revision_id: str) -> None:
        """Finish a create or update: unpack the code, then mark the version Active /
        Successful (or Failed with the reason). A later change supersedes this one."""
        record = self._store.get_version(name, LATEST)
        if record is None or record.revision_id != revision_id:
            return
        try:
            self._code.unpacked(record.code)
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
        try:
            self._store.put_version(settled, expected_revision=revision_id)
        except (RevisionMismatchError, NotFoundError):
            return
        self._on_change(name, settled)

    def _collect_code(self) -> None:
        try:
            self._code.collect_garbage(self._store.code_references())
        except StratoError as exc:
            log.warning("code store clean-up failed: %s", exc)
