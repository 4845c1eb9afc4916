"""The Authorizer decides ``lambda:InvokeFunctionUrl`` with the request's
``lambda:FunctionUrlAuthType``, as the statement AddPermission writes for
``FunctionUrlAuthType`` requires (``StringEquals``)."""

from __future__ import annotations

import pytest

from strato.domain.errors import AccessDeniedException
from strato.domain.permissions import PermissionGrant, ResourcePolicy
from strato.domain.principals import Principal
from strato.services.authorization import Authorizer, ResourcePolicyCache

ACCOUNT = "000000000000"
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"
NOTHING: dict[str, object] = {"Version": "2012-10-17", "Statement": []}
URLS_ONLY: dict[str, object] = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl", "Resource": "*"}]}
#: Another account's caller: its own policy must allow the action too (cross-account).
STRANGER = Principal("AKSTRANGER", "111122223333", "arn:aws:iam::111122223333:user/s", URLS_ONLY)
LOCAL = Principal("AKLOCAL", ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/l", NOTHING)


def authorizer_with(*grants: PermissionGrant) -> Authorizer:
    policy = ResourcePolicy("f", None, tuple(g.to_statement() for g in grants), "r1")
    return Authorizer(ACCOUNT, ResourcePolicyCache([policy]))


@pytest.mark.parametrize("who", [STRANGER, LOCAL])
def test_a_public_url_grant_allows_only_requests_of_its_auth_type(who: Principal) -> None:
    authorize = authorizer_with(PermissionGrant("url", "lambda:InvokeFunctionUrl", "*",
                                                function_url_auth_type="NONE"))
    authorize(who, "lambda:InvokeFunctionUrl", FN, {"lambda:FunctionUrlAuthType": "NONE"})
    for context in ({"lambda:FunctionUrlAuthType": "AWS_IAM"}, None):
        with pytest.raises(AccessDeniedException):
            authorize(who, "lambda:InvokeFunctionUrl", FN, context)
    with pytest.raises(AccessDeniedException):  # the grant is for the URL, not for Invoke
        authorize(who, "lambda:InvokeFunction", FN, {"lambda:FunctionUrlAuthType": "NONE"})


def test_without_a_grant_another_account_may_not_call_the_url() -> None:
    authorize = authorizer_with()
    with pytest.raises(AccessDeniedException):
        authorize(STRANGER, "lambda:InvokeFunctionUrl", FN,
                  {"lambda:FunctionUrlAuthType": "AWS_IAM"})
