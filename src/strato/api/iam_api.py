"""The IAM API's role subset and STS's GetCallerIdentity (query protocol), on the same
endpoint as Lambda's.

A request is IAM's or STS's when it is a form-encoded ``POST`` signed for ``iam`` or ``sts``
(or, unsigned, naming their API versions). It is authenticated for that service, parsed and
checked with botocore's model (IAM's ValidationError), authorised as ``iam:<Operation>`` on
the role's ARN (``*`` for ListRoles; GetCallerIdentity needs no permission, as on AWS), run
by the ``RoleService`` on the control-plane thread, and answered in XML. Policy documents go
out URL-encoded, as IAM sends them (botocore decodes them into objects).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any
from urllib.parse import quote

from botocore.model import OperationModel  # type: ignore[import-untyped, unused-ignore]

from strato.api import query_codes, query_protocol
from strato.api.service_models import service_model
from strato.api.shapes import WireFormatError
from strato.api.validation import validate
from strato.domain.errors import LambdaApiError, ServiceException, UnsupportedOperationException
from strato.domain.iam.errors import IamError, IamValidationError
from strato.domain.iam.roles import Role, role_arn, stable_role_id
from strato.domain.principals import Principal
from strato.http.request import Request, Responder
from strato.services.roles import RoleDirectory, RoleService

log = logging.getLogger(__name__)

#: ``authorizer(principal, action, resource_arn)`` returns to allow, raises to deny.
Authorize = Callable[[Principal, str, str], None]
#: The API version each service's requests name, for requests that carry no signature.
_VERSIONS = {"2010-05-08": "iam", "2011-06-15": "sts"}
_SIGNED_FOR = {"/iam/aws4_request": "iam", "/sts/aws4_request": "sts"}


def _role_output(role: Role, account_id: str, *, details: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.role_id,
        "Arn": role.arn(account_id),
        "CreateDate": role.created.replace("Z", "+00:00"),
        "AssumeRolePolicyDocument": quote(role.trust_policy, safe=""),
        "Description": role.description,
    }
    if details:  # GetRole's, not CreateRole's
        out["MaxSessionDuration"] = role.max_session_duration
        out["RoleLastUsed"] = {}
    return out


class IamApi:
    def __init__(self, roles: RoleService, directory: RoleDirectory, control: Executor, *,
                 account_id: str, authorizer: Authorize | None = None) -> None:
        self._roles = roles
        self._directory = directory
        self._control = control
        self._account = account_id
        self._authorizer = authorizer
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateRole": self._create_role,
            "GetRole": self._get_role,
            "ListRoles": self._list_roles,
            "DeleteRole": self._delete_role,
            "UpdateAssumeRolePolicy": self._update_assume_role_policy,
            "PutRolePolicy": self._put_role_policy,
            "GetRolePolicy": self._get_role_policy,
            "ListRolePolicies": self._list_role_policies,
            "DeleteRolePolicy": self._delete_role_policy,
        }

    # the edge -----------------------------------------------------------------------
    @staticmethod
    def service_of(request: Request) -> str | None:
        """``iam`` or ``sts`` when ``request`` is for one of them, else None."""
        headers = request.headers
        if request.method != "POST" or not headers.get("content-type", "").startswith(
                query_protocol.FORM_CONTENT_TYPE):
            return None
        authorization = headers.get("authorization", "")
        for suffix, service in _SIGNED_FOR.items():
            if suffix in authorization:
                return service
        if authorization:
            return None
        for version, service in _VERSIONS.items():
            if f"Version={version}".encode() in request.body:
                return service
        return None

    @staticmethod
    def send_error(responder: Responder, error: LambdaApiError, request_id: str) -> None:
        if isinstance(error, IamError):
            response = query_protocol.serialize_error(error, request_id,
                                                      sender_fault=error.sender_fault)
        else:
            response = query_protocol.serialize_error(
                error, request_id, code=query_codes.query_code(error.code),
                sender_fault=error.status < 500)
        responder.send(response.status, [*response.headers, ("x-amzn-RequestId", request_id)],
                       response.body)

    def handle(self, service: str, request: Request, responder: Responder, principal: Principal,
               request_id: str) -> None:
        """Serve one authenticated request of ``service``; legal on the loop's thread."""
        model = service_model(service)
        try:
            form = query_protocol.parse_form(request.body)
            operation = query_protocol.operation_for(model, form)
            if operation is None:
                raise UnsupportedOperationException(
                    f"strato does not offer the {model.metadata['serviceId']} operation "
                    f"{form.get('Action', '')!r}")
            params = query_protocol.parse_request(operation, form)
            errors = validate(operation.input_shape, params) if operation.input_shape else []
            if errors:
                raise IamValidationError.from_items(errors)
            if service == "sts":
                if operation.name != "GetCallerIdentity":
                    raise UnsupportedOperationException(
                        f"strato does not offer the STS operation {operation.name}")
                self._send(model, operation, self._caller_identity(principal), responder,
                           request_id)
                return
            run = self._operations.get(operation.name)
            if run is None:
                raise UnsupportedOperationException(
                    f"strato does not offer the IAM operation {operation.name}")
            self._authorize(principal, operation.name, params)
        except WireFormatError as error:
            self.send_error(responder, IamValidationError(str(error)), request_id)
            return
        except LambdaApiError as error:
            self.send_error(responder, error, request_id)
            return
        future = asyncio.get_running_loop().run_in_executor(self._control, run, params)

        def done(task: asyncio.Future[dict[str, Any]]) -> None:
            try:
                output = task.result()
            except LambdaApiError as error:
                self.send_error(responder, error, request_id)
                return
            except Exception:
                log.exception("error in IAM %s", operation.name)
                self.send_error(responder, ServiceException("Internal error"), request_id)
                return
            self._send(model, operation, output, responder, request_id)

        future.add_done_callback(done)

    @staticmethod
    def _send(model: Any, operation: OperationModel, output: dict[str, Any],
              responder: Responder, request_id: str) -> None:
        response = query_protocol.serialize_response(model, operation, output, request_id)
        responder.send(response.status, [*response.headers, ("x-amzn-RequestId", request_id)],
                       response.body)

    def _authorize(self, principal: Principal, operation: str, params: dict[str, Any]) -> None:
        if self._authorizer is None:
            return
        name = params.get("RoleName")
        resource = "*"
        if isinstance(name, str):
            entry = self._directory.by_name(name)
            resource = entry.arn if entry is not None else role_arn(
                self._account, params.get("Path") or "/", name)
        self._authorizer(principal, f"iam:{operation}", resource)

    def _caller_identity(self, principal: Principal) -> dict[str, Any]:
        """AWS's answer for the caller: a role session's id is ``<role id>:<session>``, a
        user's a stable ``AIDA…`` id, the account root's the account id."""
        arn = principal.arn
        if ":assumed-role/" in arn:
            role_name, _, session = arn.split(":assumed-role/", 1)[1].partition("/")
            entry = self._directory.by_name(role_name)
            role_id = entry.role_id if entry is not None else stable_role_id(
                role_arn(principal.account_id, "/", role_name))
            user_id = f"{role_id}:{session}"
        elif arn.endswith(":root"):
            user_id = principal.account_id
        else:
            user_id = "AIDA" + stable_role_id(arn).removeprefix("AROA")
        return {"UserId": user_id, "Account": principal.account_id, "Arn": arn}

    # operations (on the control-plane thread) -----------------------------------------
    def _create_role(self, p: dict[str, Any]) -> dict[str, Any]:
        role = self._roles.create_role(
            p["RoleName"], p["AssumeRolePolicyDocument"], path=p.get("Path"),
            description=p.get("Description"), max_session_duration=p.get("MaxSessionDuration"))
        return {"Role": _role_output(role, self._account)}

    def _get_role(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"Role": _role_output(self._roles.get_role(p["RoleName"]), self._account,
                                     details=True)}

    def _list_roles(self, p: dict[str, Any]) -> dict[str, Any]:
        roles = self._roles.list_roles(p.get("PathPrefix"))
        return {"Roles": [_role_output(r, self._account) for r in roles], "IsTruncated": False}

    def _delete_role(self, p: dict[str, Any]) -> dict[str, Any]:
        self._roles.delete_role(p["RoleName"])
        return {}

    def _update_assume_role_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        self._roles.update_assume_role_policy(p["RoleName"], p["PolicyDocument"])
        return {}

    def _put_role_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        self._roles.put_role_policy(p["RoleName"], p["PolicyName"], p["PolicyDocument"])
        return {}

    def _get_role_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        policy = self._roles.get_role_policy(p["RoleName"], p["PolicyName"])
        return {"RoleName": policy.role_name, "PolicyName": policy.policy_name,
                "PolicyDocument": quote(policy.document, safe="")}

    def _list_role_policies(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"PolicyNames": self._roles.list_role_policies(p["RoleName"]),
                "IsTruncated": False}

    def _delete_role_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        self._roles.delete_role_policy(p["RoleName"], p["PolicyName"])
        return {}
