"""The layer operations of the Lambda API: parameters in, output dicts out.

PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayers, ListLayerVersions,
DeleteLayerVersion and the layer version policy operations, run on the control-plane thread
like every operation of ``LambdaOperations`` (the application adds ``table`` to that table).
Only translation between the wire's members and ``LayerService`` lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strato.api.lambda_api import CallContext, Operation, Params
from strato.api.render import compact_json, policy_document, policy_statement
from strato.domain.layers import GET_LAYER_VERSION, LayerVersion, parse_layer_name
from strato.domain.models import CodeRef, format_last_modified
from strato.domain.permissions import PermissionGrant, ResourcePolicy
from strato.services.layers import LayerContent, LayerService

#: ``package_url(code, base_url)``: a URL the caller can download a package from.
PackageUrl = Callable[[CodeRef, str], str]


def layer_version_summary(record: LayerVersion, region: str) -> dict[str, Any]:
    """``LayerVersionsListItem``: a version as ListLayerVersions and ListLayers show it
    (``LicenseInfo`` only when the version has one, as on AWS)."""
    item: dict[str, Any] = {
        "LayerVersionArn": record.layer.version_arn(region, record.version),
        "Version": record.version,
        "Description": record.description,
        "CreatedDate": format_last_modified(record.created),
        "CompatibleRuntimes": list(record.compatible_runtimes),
        "CompatibleArchitectures": list(record.compatible_architectures),
    }
    if record.license_info is not None:
        item["LicenseInfo"] = record.license_info
    return item


def layer_resource(params: Params, region: str, account: str) -> str | None:
    """The resource an identity policy is asked about for a layer operation: the layer
    version (or the layer) the request names, in ``account`` (the caller's) unless it names
    an ARN; None for a request that names no layer."""
    arn = params.get("Arn")
    if isinstance(arn, str):
        return arn
    name = params.get("LayerName")
    if not isinstance(name, str):
        return None
    layer = parse_layer_name(name, account)
    version = params.get("VersionNumber")
    return layer.arn(region) if version is None else layer.version_arn(region, version)


class LayerOperations:
    def __init__(self, layers: LayerService, package_url: PackageUrl) -> None:
        self._layers = layers
        self._package_url = package_url
        self.table: dict[str, Operation] = {
            "PublishLayerVersion": self.publish_layer_version,
            "GetLayerVersion": self.get_layer_version,
            "GetLayerVersionByArn": self.get_layer_version_by_arn,
            "ListLayers": self.list_layers,
            "ListLayerVersions": self.list_layer_versions,
            "DeleteLayerVersion": self.delete_layer_version,
            "AddLayerVersionPermission": self.add_layer_version_permission,
            "GetLayerVersionPolicy": self.get_layer_version_policy,
            "RemoveLayerVersionPermission": self.remove_layer_version_permission,
        }

    def _version(self, record: LayerVersion, ctx: CallContext) -> dict[str, Any]:
        """PublishLayerVersion's and GetLayerVersion's output."""
        output = layer_version_summary(record, ctx.scope.region)
        output["LayerArn"] = record.layer.arn(ctx.scope.region)
        output["Content"] = {
            "Location": self._package_url(record.code, ctx.base_url),
            "CodeSha256": record.code.code_sha256,
            "CodeSize": record.code.size,
        }
        return output

    def publish_layer_version(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        content = params.get("Content") or {}
        record = self._layers.publish(params["LayerName"], LayerContent(
            zip_file=content.get("ZipFile"),
            description=params.get("Description", ""),
            license_info=params.get("LicenseInfo"),
            compatible_runtimes=tuple(params.get("CompatibleRuntimes") or ()),
            compatible_architectures=tuple(params.get("CompatibleArchitectures") or ()),
        ), ctx.caller())
        return self._version(record, ctx)

    def get_layer_version(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        record = self._layers.get(params["LayerName"], params["VersionNumber"], ctx.caller())
        return self._version(record, ctx)

    def get_layer_version_by_arn(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        return self._version(self._layers.get_by_arn(params["Arn"], ctx.caller()), ctx)

    def list_layers(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        records, marker = self._layers.list_layers(
            params.get("CompatibleRuntime"), params.get("CompatibleArchitecture"),
            params.get("Marker"), params.get("MaxItems"), ctx.caller(),
        )
        region = ctx.scope.region
        output: dict[str, Any] = {"Layers": [
            {"LayerName": r.layer.name, "LayerArn": r.layer.arn(region),
             "LatestMatchingVersion": layer_version_summary(r, region)}
            for r in records
        ]}
        if marker:
            output["NextMarker"] = marker
        return output

    def list_layer_versions(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        records, marker = self._layers.list_versions(
            params["LayerName"], params.get("CompatibleRuntime"),
            params.get("CompatibleArchitecture"), params.get("Marker"), params.get("MaxItems"),
            ctx.caller(),
        )
        output: dict[str, Any] = {
            "LayerVersions": [layer_version_summary(r, ctx.scope.region) for r in records]
        }
        if marker:
            output["NextMarker"] = marker
        return output

    def delete_layer_version(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._layers.delete(params["LayerName"], params["VersionNumber"], ctx.caller())
        return {}

    def add_layer_version_permission(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        grant = PermissionGrant(
            statement_id=params["StatementId"],
            action=params.get("Action", GET_LAYER_VERSION),
            principal=params["Principal"],
            principal_org_id=params.get("OrganizationId"),
        )
        record, sid = self._layers.add_permission(
            params["LayerName"], params["VersionNumber"], grant, params.get("RevisionId"),
            ctx.caller(),
        )
        statement = record.statement(sid)
        assert statement is not None  # just added
        resource = record.layer.version_arn(ctx.scope.region, record.version)
        return {"Statement": compact_json(policy_statement(statement, resource)),
                "RevisionId": record.policy_revision_id}

    def get_layer_version_policy(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        record = self._layers.get_policy(params["LayerName"], params["VersionNumber"],
                                         ctx.caller())
        resource = record.layer.version_arn(ctx.scope.region, record.version)
        document = policy_document_of(record, resource)
        return {"Policy": compact_json(document), "RevisionId": record.policy_revision_id}

    def remove_layer_version_permission(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._layers.remove_permission(
            params["LayerName"], params["VersionNumber"], params["StatementId"],
            params.get("RevisionId"), ctx.caller(),
        )
        return {}


def policy_document_of(record: LayerVersion, resource: str) -> dict[str, Any]:
    """The layer version's policy as GetLayerVersionPolicy shows it (the document of a
    function's policy, ``render.policy_document``, with the version's statements)."""
    policy = ResourcePolicy(record.layer.name, str(record.version), record.statements,
                            record.policy_revision_id or "")
    return policy_document(policy, resource)
