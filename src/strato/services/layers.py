"""The layer service: publish, read, list and delete layer versions, their permissions, and
the resolution of a function's ``Layers``.

Runs on the control-plane thread. A layer belongs to the account of the principal that
publishes it (as on Lambda, where a caller publishes into its own account), so principals of
several accounts each have their own layers. A principal may read another account's layer
version only where that version's policy grants its account (or everyone)
``lambda:GetLayerVersion`` (AddLayerVersionPermission); a function may use such a layer
version on the same terms. Everything else on another account's layers is refused. The API
edge has already applied the principal's identity policy.

Deleting a layer version removes it from the API but not from the functions that use it: they
hold its package (``FunctionLayer``), which the code store keeps while any version refers to
it, as Lambda does (https://docs.aws.amazon.com/lambda/latest/dg/chapter-layers.html).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from strato.codestore.base import CodeStore
from strato.domain.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from strato.domain.layers import (
    GET_LAYER_VERSION,
    LayerId,
    LayerVersion,
    check_function_layers,
    check_version_number,
    layer_version_missing,
    parse_layer_name,
    parse_layer_version_arn,
)
from strato.domain.models import FunctionLayer, utcnow
from strato.domain.permissions import PermissionGrant
from strato.domain.policy import Denial, Verdict, context_of, evaluate_resource_policy
from strato.domain.principals import Principal
from strato.errors import NotFoundError, RevisionMismatchError
from strato.store.layer_base import LayerStore

_NOT_FOUND = "The resource you requested does not exist."
_PAGE_MAX = 50

Defer = Callable[[Callable[[], None]], None]


@dataclass(frozen=True)
class LayerContent:
    """What PublishLayerVersion asks for (after the model's own constraints)."""

    zip_file: bytes | None
    description: str = ""
    license_info: str | None = None
    compatible_runtimes: tuple[str, ...] = ()
    compatible_architectures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Caller:
    """Who asks, and in which region (layer ARNs carry the caller's region)."""

    principal: Principal
    region: str

    @property
    def account(self) -> str:
        return self.principal.account_id


class LayerService:
    def __init__(self, store: LayerStore, codestore: CodeStore, defer: Defer,
                 collect_code: Callable[[], None]) -> None:
        """``collect_code`` removes packages nothing uses any more (run deferred after a
        version is deleted)."""
        self._store = store
        self._code = codestore
        self._defer = defer
        self._collect_code = collect_code

    # publishing and reading -------------------------------------------------------------
    def publish(self, layer_name: str, content: LayerContent, caller: Caller) -> LayerVersion:
        """PublishLayerVersion: the package is validated like a function's (the same
        errors) and stored before the version is."""
        layer = self._own(layer_name, caller, "lambda:PublishLayerVersion")
        if content.zip_file is None:
            raise InvalidParameterValueException(
                "strato accepts layer content as Content.ZipFile only."
            )
        code = self._code.put_zip(content.zip_file)
        record = LayerVersion(
            layer=layer, version=0, code=code, unzipped_size=self._code.unzipped_size(code),
            created=utcnow(), description=content.description,
            license_info=content.license_info,
            compatible_runtimes=content.compatible_runtimes,
            compatible_architectures=content.compatible_architectures,
        )
        return self._store.publish(record)

    def get(self, layer_name: str, version: int, caller: Caller) -> LayerVersion:
        """GetLayerVersion. Raises ResourceNotFoundException (AWS's text) for a version that
        does not exist; AccessDeniedException for another account's version not shared with
        the caller."""
        check_version_number(version)
        layer = parse_layer_name(layer_name, caller.account)
        return self._readable(layer, version, caller)

    def get_by_arn(self, arn: str, caller: Caller) -> LayerVersion:
        parsed = parse_layer_version_arn(arn)
        if parsed is None:  # an AWS-owned ``awslayer`` ARN: strato has none
            raise ResourceNotFoundException(_NOT_FOUND)
        check_version_number(parsed.version)
        return self._readable(parsed.layer, parsed.version, caller)

    def list_versions(self, layer_name: str, runtime: str | None, architecture: str | None,
                      marker: str | None, max_items: int | None,
                      caller: Caller) -> tuple[list[LayerVersion], str | None]:
        """ListLayerVersions: newest first, only those compatible with ``runtime`` and
        ``architecture`` when given; the next page's marker is a version number."""
        layer = parse_layer_name(layer_name, caller.account)
        versions = [v for v in self._store.list_versions(layer)
                    if _matches(v, runtime, architecture)]
        if layer.account != caller.account:
            versions = [v for v in versions if self._shared(v, caller)]
        if marker is not None:
            if not marker.isdigit():
                raise InvalidParameterValueException(f"Invalid marker: {marker}")
            versions = [v for v in versions if v.version < int(marker)]
        return _page(versions, max_items, lambda v: str(v.version))

    def list_layers(self, runtime: str | None, architecture: str | None, marker: str | None,
                    max_items: int | None,
                    caller: Caller) -> tuple[list[LayerVersion], str | None]:
        """ListLayers: the caller's layers by name, each as its newest version compatible
        with ``runtime`` and ``architecture`` (layers with none are left out)."""
        latest: list[LayerVersion] = []
        for layer in self._store.list_layers(caller.account):
            if marker is not None and layer.name <= marker:
                continue
            match = next((v for v in self._store.list_versions(layer)
                          if _matches(v, runtime, architecture)), None)
            if match is not None:
                latest.append(match)
        return _page(latest, max_items, lambda v: v.layer.name)

    def delete(self, layer_name: str, version: int, caller: Caller) -> None:
        """DeleteLayerVersion; idempotent (a version that does not exist is no error, as on
        AWS). Functions using the version keep it."""
        check_version_number(version)
        layer = self._own(layer_name, caller, "lambda:DeleteLayerVersion")
        if self._store.delete(layer, version):
            self._defer(self._collect_code)

    # permissions -----------------------------------------------------------------------
    def _existing(self, layer: LayerId, version: int, caller: Caller) -> LayerVersion:
        """The stored version, else the ResourceNotFoundException naming its ARN that the
        permission operations answer."""
        record = self._store.get(layer, version)
        if record is None:
            raise ResourceNotFoundException(
                f"Layer version {layer.version_arn(caller.region, version)} does not exist.")
        return record

    def add_permission(self, layer_name: str, version: int, grant: PermissionGrant,
                       revision_id: str | None, caller: Caller) -> tuple[LayerVersion, str]:
        """AddLayerVersionPermission: the version with its new policy, and the new
        statement's id."""
        check_version_number(version)
        layer = self._own(layer_name, caller, "lambda:AddLayerVersionPermission")
        record = self._existing(layer, version, caller)
        statement = grant.to_statement()
        if record.statement(statement.sid) is not None:
            raise ResourceConflictException(
                f"The statement id ({statement.sid}) provided already exists. Please provide a "
                "new statement id, or remove the existing statement."
            )
        self._check_revision(record, revision_id)
        updated = record.replace(statements=(*record.statements, statement),
                                 policy_revision_id=str(uuid.uuid4()))
        self._put_policy(updated, record.policy_revision_id)
        return updated, statement.sid

    def get_policy(self, layer_name: str, version: int, caller: Caller) -> LayerVersion:
        """GetLayerVersionPolicy: the version, whose policy has at least one statement."""
        check_version_number(version)
        layer = self._own(layer_name, caller, "lambda:GetLayerVersionPolicy")
        record = self._store.get(layer, version)
        if record is None:
            raise ResourceNotFoundException(_NOT_FOUND)
        if not record.statements:
            raise ResourceNotFoundException("No policy is associated with the given resource.")
        return record

    def remove_permission(self, layer_name: str, version: int, statement_id: str,
                          revision_id: str | None, caller: Caller) -> None:
        check_version_number(version)
        layer = self._own(layer_name, caller, "lambda:RemoveLayerVersionPermission")
        record = self._existing(layer, version, caller)
        if record.statement(statement_id) is None:
            raise ResourceNotFoundException(
                f"Statement {statement_id} is not found in resource policy."
            )
        self._check_revision(record, revision_id)
        remaining = tuple(s for s in record.statements if s.sid != statement_id)
        updated = record.replace(statements=remaining,
                                 policy_revision_id=str(uuid.uuid4()) if remaining else None)
        self._put_policy(updated, record.policy_revision_id)

    # functions' layers -------------------------------------------------------------------
    def resolve(self, arns: Sequence[str], caller: Caller) -> tuple[FunctionLayer, ...]:
        """The ``Layers`` of a function as its versions hold them, in order. Raises AWS's
        errors: more than five, two versions of one layer, a version that does not exist
        (InvalidParameterValueException), another account's version not shared with the
        caller (AccessDeniedException for ``lambda:GetLayerVersion``)."""
        resolved: list[FunctionLayer] = []
        for arn in check_function_layers(list(arns)):
            if arn.region != caller.region:
                raise layer_version_missing(str(arn))
            record = self._store.get(arn.layer, arn.version)
            foreign = arn.layer.account != caller.account
            if foreign and (record is None or not self._shared(record, caller)):
                raise self._denied(caller, GET_LAYER_VERSION, str(arn))
            if record is None:
                raise layer_version_missing(str(arn))
            resolved.append(FunctionLayer(str(arn), record.code, record.unzipped_size))
        return tuple(resolved)

    def references(self) -> set[str]:
        """The packages of every existing layer version (for code-store GC)."""
        return self._store.code_references()

    # internals -----------------------------------------------------------------------------
    def _own(self, layer_name: str, caller: Caller, action: str) -> LayerId:
        """The layer ``layer_name`` names, which must be the caller's own."""
        layer = parse_layer_name(layer_name, caller.account)
        if layer.account != caller.account:
            raise self._denied(caller, action, layer.arn(caller.region))
        return layer

    def _readable(self, layer: LayerId, version: int, caller: Caller) -> LayerVersion:
        record = self._store.get(layer, version)
        if layer.account != caller.account and (record is None or not self._shared(record, caller)):
            raise self._denied(caller, GET_LAYER_VERSION, layer.version_arn(caller.region, version))
        if record is None:
            raise ResourceNotFoundException(_NOT_FOUND)
        return record

    @staticmethod
    def _shared(record: LayerVersion, caller: Caller) -> bool:
        """Whether ``record``'s policy lets the caller (of another account) read it."""
        principal = caller.principal
        verdict = evaluate_resource_policy(
            record.statements, principal.arn, principal.account_id, GET_LAYER_VERSION,
            context_of(principal.arn, principal.account_id, None), cross_account=True,
        )
        return verdict is Verdict.ALLOWED

    @staticmethod
    def _denied(caller: Caller, action: str, resource: str) -> AccessDeniedException:
        return AccessDeniedException(
            Denial.NO_RESOURCE_ALLOW.message(caller.principal.arn, action, resource)
        )

    @staticmethod
    def _check_revision(record: LayerVersion, revision_id: str | None) -> None:
        if revision_id is not None and revision_id != record.policy_revision_id:
            raise _policy_revision_mismatch()

    def _put_policy(self, record: LayerVersion, expected: str | None) -> None:
        try:
            self._store.put_policy(record, expected)
        except NotFoundError as exc:
            raise ResourceNotFoundException(_NOT_FOUND) from exc
        except RevisionMismatchError as exc:
            raise _policy_revision_mismatch() from exc


def _policy_revision_mismatch() -> PreconditionFailedException:
    return PreconditionFailedException(
        "The Revision Id provided does not match the latest Revision Id. "
        "Call the GetLayerVersionPolicy API to retrieve the latest Revision Id"
    )


def _matches(record: LayerVersion, runtime: str | None, architecture: str | None) -> bool:
    return ((runtime is None or runtime in record.compatible_runtimes)
            and (architecture is None or architecture in record.compatible_architectures))


def _page(items: list[LayerVersion], max_items: int | None,
          marker_of: Callable[[LayerVersion], str]) -> tuple[list[LayerVersion], str | None]:
    limit = min(max_items or _PAGE_MAX, _PAGE_MAX)
    if len(items) > limit:
        return items[:limit], marker_of(items[limit - 1])
    return items, None

