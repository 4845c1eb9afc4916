"""The function URL operations of the Lambda API (Create, Get, Update, Delete and
ListFunctionUrlConfig(s)): typed parameters in, output dicts out, run on the control-plane
thread like ``lambda_api``'s (whose table they join). ``FunctionUrl`` is written by the
server's ``UrlScheme``."""

from __future__ import annotations

from typing import Any

from strato.api.lambda_api import CallContext, Operation, Params
from strato.domain.arns import FunctionRef, resolve_function_name
from strato.domain.function_urls import AuthType, Cors, FunctionUrlConfig, InvokeMode, UrlScheme
from strato.services.function_urls import FunctionUrlChanges, FunctionUrlService

#: Members of ``Cors`` on the wire, and the domain's names for them.
_CORS_LISTS = (("AllowHeaders", "allow_headers"), ("AllowMethods", "allow_methods"),
               ("AllowOrigins", "allow_origins"), ("ExposeHeaders", "expose_headers"))


def _cors(params: Params) -> Cors | None:
    given = params.get("Cors")
    if given is None:
        return None
    return Cors(allow_credentials=given.get("AllowCredentials"), max_age=given.get("MaxAge"),
                **{name: tuple(given.get(member, ())) for member, name in _CORS_LISTS})


def _cors_output(cors: Cors) -> dict[str, Any]:
    """``Cors`` as AWS shows it: only the members that were set."""
    output: dict[str, Any] = {member: list(getattr(cors, name)) for member, name in _CORS_LISTS
                              if getattr(cors, name)}
    if cors.allow_credentials is not None:
        output["AllowCredentials"] = cors.allow_credentials
    if cors.max_age is not None:
        output["MaxAge"] = cors.max_age
    return output


class FunctionUrlOperations:
    def __init__(self, service: FunctionUrlService, scheme: UrlScheme) -> None:
        self._service = service
        self._scheme = scheme
        self.table: dict[str, Operation] = {
            "CreateFunctionUrlConfig": self.create,
            "GetFunctionUrlConfig": self.get,
            "UpdateFunctionUrlConfig": self.update,
            "DeleteFunctionUrlConfig": self.delete,
            "ListFunctionUrlConfigs": self.list_configs,
        }

    def config_output(self, config: FunctionUrlConfig, ctx: CallContext, *,
                      modified: bool = True, invoke_mode: bool = True) -> dict[str, Any]:
        """A ``FunctionUrlConfig`` as AWS answers it. Create's answer has no
        ``LastModifiedTime``; Create and Update show ``InvokeMode`` only when the request set
        it (as recorded from AWS)."""
        output: dict[str, Any] = {
            "FunctionUrl": self._scheme.url_of(config.url_id),
            "FunctionArn": ctx.scope.function_arn(config.function_name, config.qualifier),
            "AuthType": config.auth_type.value,
            "CreationTime": config.creation_time,
        }
        if config.cors is not None:
            output["Cors"] = _cors_output(config.cors)
        if modified:
            output["LastModifiedTime"] = config.last_modified_time
        if invoke_mode:
            output["InvokeMode"] = config.invoke_mode.value
        return output

    @staticmethod
    def _ref(params: Params, ctx: CallContext) -> FunctionRef:
        return resolve_function_name(params["FunctionName"], ctx.scope, params.get("Qualifier"))

    def create(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        mode = params.get("InvokeMode")
        config = self._service.create(
            self._ref(params, ctx), AuthType(params["AuthType"]), _cors(params),
            None if mode is None else InvokeMode(mode), ctx.scope)
        return self.config_output(config, ctx, modified=False, invoke_mode=mode is not None)

    def get(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        return self.config_output(self._service.get(self._ref(params, ctx)), ctx)

    def update(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        auth, mode = params.get("AuthType"), params.get("InvokeMode")
        config = self._service.update(self._ref(params, ctx), FunctionUrlChanges(
            auth_type=None if auth is None else AuthType(auth), cors=_cors(params),
            invoke_mode=None if mode is None else InvokeMode(mode)))
        return self.config_output(config, ctx, invoke_mode=mode is not None)

    def delete(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._service.delete(self._ref(params, ctx))
        return {}

    def list_configs(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        ref = resolve_function_name(params["FunctionName"], ctx.scope)
        configs, marker = self._service.list_configs(
            FunctionRef(ref.name), params.get("Marker"), params.get("MaxItems"))
        output: dict[str, Any] = {
            "FunctionUrlConfigs": [self.config_output(c, ctx) for c in configs]}
        if marker:
            output["NextMarker"] = marker
        return output
