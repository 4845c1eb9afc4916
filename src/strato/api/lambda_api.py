"""Control-plane operations of the Lambda API: typed parameters in, output dicts out.

Each operation is a function ``(params, context) -> output`` run on the control-plane thread;
``params`` were parsed and validated against botocore's model by the edge, and the output is
serialised by it. Only translation between the wire's members and the services lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strato.api.render import compact_json, function_configuration, policy_document, policy_statement
from strato.domain import limits
from strato.domain.arns import FunctionRef, Scope, resolve_function_name
from strato.domain.errors import InvalidParameterValueException, ValidationException
from strato.domain.models import FunctionVersion, VpcConfig
from strato.domain.permissions import PermissionGrant, policy_qualifier
from strato.services.functions import ConfigurationChanges, FunctionService
from strato.services.permissions import PermissionService

Params = Mapping[str, Any]


@dataclass(frozen=True)
class CallContext:
    """What an operation may know about its request besides the parameters."""

    scope: Scope
    #: ``http://host:port`` as the caller reached strato (for URLs strato hands out).
    base_url: str


Operation = Callable[[Params, CallContext], dict[str, Any]]


class LambdaOperations:
    """The table of control-plane operations, bound to the services."""

    def __init__(
        self,
        functions: FunctionService,
        code_url: Callable[[FunctionVersion, str], str],
        account_concurrency: int,
        *,
        permissions: PermissionService,
    ) -> None:
        self._functions = functions
        self._permissions = permissions
        self._code_url = code_url
        self._account_concurrency = account_concurrency
        self.table: dict[str, Operation] = {
            "CreateFunction": self.create_function,
            "GetFunction": self.get_function,
            "GetFunctionConfiguration": self.get_function_configuration,
            "ListFunctions": self.list_functions,
            "UpdateFunctionCode": self.update_function_code,
            "UpdateFunctionConfiguration": self.update_function_configuration,
            "DeleteFunction": self.delete_function,
            "GetAccountSettings": self.get_account_settings,
            "AddPermission": self.add_permission,
            "GetPolicy": self.get_policy,
            "RemovePermission": self.remove_permission,
        }

    @staticmethod
    def _ref(params: Params, ctx: CallContext) -> FunctionRef:
        return resolve_function_name(params["FunctionName"], ctx.scope, params.get("Qualifier"))

    @staticmethod
    def _changes(params: Params) -> ConfigurationChanges:
        environment = params.get("Environment")
        ephemeral = params.get("EphemeralStorage")
        vpc = params.get("VpcConfig")
        return ConfigurationChanges(
            runtime=params.get("Runtime"),
            handler=params.get("Handler"),
            role=params.get("Role"),
            memory_size=params.get("MemorySize"),
            timeout=params.get("Timeout"),
            description=params.get("Description"),
            environment=(environment.get("Variables") or {}) if environment is not None else None,
            ephemeral_storage=ephemeral["Size"] if ephemeral else None,
            vpc_config=None if vpc is None else VpcConfig(
                subnet_ids=tuple(vpc.get("SubnetIds") or ()),
                security_group_ids=tuple(vpc.get("SecurityGroupIds") or ()),
                ipv6_allowed_for_dual_stack=bool(vpc.get("Ipv6AllowedForDualStack", False)),
            ),
        )

    def create_function(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        ref = resolve_function_name(params["FunctionName"], ctx.scope)
        if ref.qualifier is not None:
            raise ValidationException.from_items([
                f"Value '{params['FunctionName']}' at 'functionName' failed to satisfy "
                "constraint: Member must not include a qualifier"
            ])
        if params.get("PackageType", "Zip") != "Zip":
            raise InvalidParameterValueException("strato runs functions from .zip packages only.")
        code = params.get("Code") or {}
        record = self._functions.create(ref.name, self._changes(params), code.get("ZipFile"), ctx.scope)
        return function_configuration(record, ctx.scope)

    def get_function(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        record = self._functions.get(self._ref(params, ctx), ctx.scope)
        return {
            "Configuration": function_configuration(record, ctx.scope),
            "Code": {"RepositoryType": "S3", "Location": self._code_url(record, ctx.base_url)},
        }

    def get_function_configuration(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        return function_configuration(self._functions.get(self._ref(params, ctx), ctx.scope), ctx.scope)

    def list_functions(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        every_version = params.get("FunctionVersion") == "ALL"
        records, marker = self._functions.list(params.get("Marker"), params.get("MaxItems"))
        output: dict[str, Any] = {
            "Functions": [
                function_configuration(r, ctx.scope, qualified_arn=every_version) for r in records
            ]
        }
        if marker:
            output["NextMarker"] = marker
        return output

    def update_function_code(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        record = self._functions.update_code(
            self._ref(params, ctx), params.get("ZipFile"), params.get("RevisionId"), ctx.scope
        )
        return function_configuration(record, ctx.scope)

    def update_function_configuration(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        record = self._functions.update_configuration(
            self._ref(params, ctx), self._changes(params), params.get("RevisionId"), ctx.scope
        )
        return function_configuration(record, ctx.scope)

    def delete_function(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._functions.delete(self._ref(params, ctx), ctx.scope)
        return {"StatusCode": 204}

    def get_account_settings(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        usage = self._functions.account_usage()
        return {
            "AccountLimit": {
                "TotalCodeSize": limits.TOTAL_CODE_SIZE_MAX_BYTES,
                "CodeSizeUnzipped": limits.UNZIPPED_CODE_MAX_BYTES,
                "CodeSizeZipped": limits.ZIPPED_CODE_MAX_BYTES,
                "ConcurrentExecutions": self._account_concurrency,
                "UnreservedConcurrentExecutions": self._account_concurrency,
            },
            "AccountUsage": {
                "TotalCodeSize": usage.total_code_size,
                "FunctionCount": usage.function_count,
            },
        }

    # resource-based policy ----------------------------------------------------------------
    def add_permission(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        ref = self._ref(params, ctx)
        grant = PermissionGrant(
            statement_id=params["StatementId"],
            action=params["Action"],
            principal=params["Principal"],
            source_arn=params.get("SourceArn"),
            source_account=params.get("SourceAccount"),
            principal_org_id=params.get("PrincipalOrgID"),
            function_url_auth_type=params.get("FunctionUrlAuthType"),
            event_source_token=params.get("EventSourceToken"),
            invoked_via_function_url=params.get("InvokedViaFunctionUrl"),
        )
        statement = self._permissions.add_permission(ref, grant, params.get("RevisionId"), ctx.scope)
        resource = ctx.scope.function_arn(ref.name, ref.qualifier)
        return {"Statement": compact_json(policy_statement(statement, resource))}

    def get_policy(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        ref = self._ref(params, ctx)
        policy = self._permissions.get_policy(ref)
        resource = ctx.scope.function_arn(ref.name, policy_qualifier(ref.qualifier))
        return {"Policy": compact_json(policy_document(policy, resource)), "RevisionId": policy.revision_id}

    def remove_permission(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._permissions.remove_permission(
            self._ref(params, ctx), params["StatementId"], params.get("RevisionId"), ctx.scope
        )
        return {}
