"""Control-plane operations of the Lambda API: typed parameters in, output dicts out.

Each operation is a function ``(params, context) -> output`` run on the control-plane thread;
``params`` were parsed and validated against botocore's model by the edge, and the output is
serialised by it. Only translation between the wire's members and the services lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from strato.api.render import (
    alias_configuration,
    compact_json,
    function_configuration,
    policy_document,
    policy_statement,
)
from strato.domain import limits
from strato.domain.arns import FunctionRef, Scope, resolve_function_name
from strato.domain.errors import InvalidParameterValueException, ValidationException
from strato.domain.logging_config import LogFormat, LoggingConfigChanges
from strato.domain.models import FunctionVersion, VpcConfig, format_last_modified
from strato.domain.permissions import PermissionGrant, policy_qualifier
from strato.domain.principals import Principal, anonymous_admin
from strato.domain.validation import require_unqualified
from strato.services.aliases import AliasService
from strato.services.concurrency import ConcurrencyService, ProvisionedView
from strato.services.functions import ConfigurationChanges, FunctionService
from strato.services.layers import Caller, LayerService
from strato.services.permissions import PermissionService
from strato.services.tags import TagService

Params = Mapping[str, Any]


@dataclass(frozen=True)
class CallContext:
    """What an operation may know about its request besides the parameters."""

    scope: Scope
    #: ``http://host:port`` as the caller reached strato (for URLs strato hands out).
    base_url: str
    #: Who is calling (None: the platform account's administrator, as without auth).
    principal: Principal | None = None

    def caller(self) -> Caller:
        """The caller as the layer service knows it."""
        principal = self.principal or anonymous_admin(self.scope.account)
        return Caller(principal, self.scope.region)


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
        aliases: AliasService,
        concurrency: ConcurrencyService,
        tags: TagService,
        layers: LayerService | None = None,
    ) -> None:
        self._functions = functions
        self._permissions = permissions
        self._aliases = aliases
        self._concurrency = concurrency
        self._tags = tags
        self._layers = layers
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
            "PublishVersion": self.publish_version,
            "ListVersionsByFunction": self.list_versions_by_function,
            "CreateAlias": self.create_alias,
            "GetAlias": self.get_alias,
            "ListAliases": self.list_aliases,
            "UpdateAlias": self.update_alias,
            "DeleteAlias": self.delete_alias,
            "PutFunctionConcurrency": self.put_function_concurrency,
            "GetFunctionConcurrency": self.get_function_concurrency,
            "DeleteFunctionConcurrency": self.delete_function_concurrency,
            "PutProvisionedConcurrencyConfig": self.put_provisioned_concurrency_config,
            "GetProvisionedConcurrencyConfig": self.get_provisioned_concurrency_config,
            "DeleteProvisionedConcurrencyConfig": self.delete_provisioned_concurrency_config,
            "ListProvisionedConcurrencyConfigs": self.list_provisioned_concurrency_configs,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTags": self.list_tags,
        }

    @staticmethod
    def _ref(params: Params, ctx: CallContext) -> FunctionRef:
        return resolve_function_name(params["FunctionName"], ctx.scope, params.get("Qualifier"))

    @staticmethod
    def _changes(params: Params) -> ConfigurationChanges:
        environment = params.get("Environment")
        ephemeral = params.get("EphemeralStorage")
        vpc = params.get("VpcConfig")
        dead_letter = params.get("DeadLetterConfig")
        logging = params.get("LoggingConfig")
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
            # DeadLetterConfig={} or an empty TargetArn removes the dead-letter queue.
            dead_letter_target=None if dead_letter is None else dead_letter.get("TargetArn") or "",
            logging_config=None if logging is None else LoggingConfigChanges(
                log_format=LogFormat(logging["LogFormat"]) if "LogFormat" in logging else None,
                application_log_level=logging.get("ApplicationLogLevel"),
                system_log_level=logging.get("SystemLogLevel"),
                log_group=logging.get("LogGroup"),
            ),
        )

    def _with_layers(self, changes: ConfigurationChanges, params: Params,
                     ctx: CallContext) -> ConfigurationChanges:
        """``changes`` with the request's ``Layers`` resolved (AWS's errors if they cannot be)."""
        arns = params.get("Layers")
        if arns is None:
            return changes
        if self._layers is None:
            raise InvalidParameterValueException("strato was started without layers.")
        return replace(changes, layers=self._layers.resolve(arns, ctx.caller()))

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
        # With Publish, AWS answers with version 1's configuration under the function's ARN.
        record = self._functions.create(
            ref.name, self._with_layers(self._changes(params), params, ctx), code.get("ZipFile"),
            ctx.scope,
            tags=params.get("Tags"), publish=bool(params.get("Publish")),
        )
        return function_configuration(record, ctx.scope)

    def get_function(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        ref = self._ref(params, ctx)
        record = self._functions.get(ref, ctx.scope)
        output: dict[str, Any] = {
            "Configuration": function_configuration(record, ctx.scope, arn_qualifier=ref.qualifier),
            "Code": {"RepositoryType": "S3", "Location": self._code_url(record, ctx.base_url)},
        }
        if ref.qualifier is None:
            tags = self._functions.tags(ref.name)
            if tags:
                output["Tags"] = tags
            reserved = self._functions.reserved_concurrency(ref.name)
            if reserved is not None:
                output["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
        return output

    def get_function_configuration(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        ref = self._ref(params, ctx)
        return function_configuration(self._functions.get(ref, ctx.scope), ctx.scope,
                                      arn_qualifier=ref.qualifier)

    def list_functions(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        every_version = params.get("FunctionVersion") == "ALL"
        records, marker = self._functions.list_functions(params.get("Marker"), params.get("MaxItems"),
                                               every_version=every_version)
        output: dict[str, Any] = {
            "Functions": [
                function_configuration(r, ctx.scope, qualified_arn=every_version, listing=True)
                for r in records
            ]
        }
        if marker:
            output["NextMarker"] = marker
        return output

    def update_function_code(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        publish = bool(params.get("Publish"))
        record = self._functions.update_code(
            self._ref(params, ctx), params.get("ZipFile"), params.get("RevisionId"), ctx.scope,
            publish=publish,
        )
        return function_configuration(record, ctx.scope, qualified_arn=publish)

    def update_function_configuration(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        record = self._functions.update_configuration(
            self._ref(params, ctx), self._with_layers(self._changes(params), params, ctx),
            params.get("RevisionId"), ctx.scope,
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
                "UnreservedConcurrentExecutions": self._concurrency.unreserved(),
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

    # versions ------------------------------------------------------------------------------
    def publish_version(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        record = self._functions.publish(
            self._ref(params, ctx), params.get("CodeSha256"), params.get("Description"),
            params.get("RevisionId"), ctx.scope,
        )
        return function_configuration(record, ctx.scope, qualified_arn=True)

    def list_versions_by_function(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        records, marker = self._functions.list_versions(
            self._ref(params, ctx), params.get("Marker"), params.get("MaxItems"), ctx.scope
        )
        output: dict[str, Any] = {
            "Versions": [function_configuration(r, ctx.scope, qualified_arn=True, listing=True)
                         for r in records]
        }
        if marker:
            output["NextMarker"] = marker
        return output

    # aliases -------------------------------------------------------------------------------
    @staticmethod
    def _weights(params: Params) -> dict[str, float] | None:
        routing = params.get("RoutingConfig")
        if routing is None:
            return None
        return dict(routing.get("AdditionalVersionWeights") or {})

    def _function(self, params: Params, ctx: CallContext) -> FunctionRef:
        """The function of an alias operation (which names no qualifier of its own)."""
        ref = self._ref(params, ctx)
        require_unqualified(ref)
        return ref

    def create_alias(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        alias = self._aliases.create(
            self._function(params, ctx), params["Name"], params["FunctionVersion"],
            params.get("Description"), self._weights(params), ctx.scope,
        )
        return alias_configuration(alias, ctx.scope)

    def get_alias(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        alias = self._aliases.get(self._function(params, ctx), params["Name"], ctx.scope)
        return alias_configuration(alias, ctx.scope)

    def list_aliases(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        aliases, marker = self._aliases.list_aliases(
            self._function(params, ctx), params.get("FunctionVersion"), params.get("Marker"),
            params.get("MaxItems"), ctx.scope,
        )
        output: dict[str, Any] = {"Aliases": [alias_configuration(a, ctx.scope) for a in aliases]}
        if marker:
            output["NextMarker"] = marker
        return output

    def update_alias(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        alias = self._aliases.update(
            self._function(params, ctx), params["Name"], params.get("FunctionVersion"),
            params.get("Description"), self._weights(params), params.get("RevisionId"), ctx.scope,
        )
        return alias_configuration(alias, ctx.scope)

    def delete_alias(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._aliases.delete(self._function(params, ctx), params["Name"])
        return {}

    # concurrency ---------------------------------------------------------------------------
    def put_function_concurrency(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        value = self._concurrency.put_reserved(
            self._ref(params, ctx), params["ReservedConcurrentExecutions"], ctx.scope
        )
        return {"ReservedConcurrentExecutions": value}

    def get_function_concurrency(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        value = self._concurrency.get_reserved(self._ref(params, ctx), ctx.scope)
        return {} if value is None else {"ReservedConcurrentExecutions": value}

    def delete_function_concurrency(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._concurrency.delete_reserved(self._ref(params, ctx), ctx.scope)
        return {}

    @staticmethod
    def _provisioned(view: ProvisionedView) -> dict[str, Any]:
        output: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": view.config.requested,
            "AvailableProvisionedConcurrentExecutions": view.state.available,
            "AllocatedProvisionedConcurrentExecutions": view.state.allocated,
            "Status": view.state.status,
            "LastModified": format_last_modified(view.config.last_modified),
        }
        if view.state.reason:
            output["StatusReason"] = view.state.reason
        return output

    def put_provisioned_concurrency_config(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        view = self._concurrency.put_provisioned(
            self._ref(params, ctx), params["ProvisionedConcurrentExecutions"], ctx.scope
        )
        return self._provisioned(view)

    def get_provisioned_concurrency_config(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        return self._provisioned(self._concurrency.get_provisioned(self._ref(params, ctx), ctx.scope))

    def delete_provisioned_concurrency_config(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._concurrency.delete_provisioned(self._ref(params, ctx), ctx.scope)
        return {}

    def list_provisioned_concurrency_configs(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        views, marker = self._concurrency.list_provisioned(
            self._ref(params, ctx), params.get("Marker"), params.get("MaxItems"), ctx.scope
        )
        configs = []
        for view in views:
            item = {"FunctionArn": ctx.scope.function_arn(view.config.function_name,
                                                          view.config.qualifier)}
            item.update(self._provisioned(view))
            configs.append(item)
        output: dict[str, Any] = {"ProvisionedConcurrencyConfigs": configs}
        if marker:
            output["NextMarker"] = marker
        return output

    # tags ----------------------------------------------------------------------------------
    def _resource(self, params: Params, ctx: CallContext) -> FunctionRef:
        return resolve_function_name(params["Resource"], ctx.scope)

    def tag_resource(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._tags.tag(self._resource(params, ctx), params["Tags"], ctx.scope)
        return {}

    def untag_resource(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._tags.untag(self._resource(params, ctx), params["TagKeys"], ctx.scope)
        return {}

    def list_tags(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        return {"Tags": self._tags.list(self._resource(params, ctx), ctx.scope)}
