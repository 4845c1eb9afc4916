"""Policy evaluation (strato.domain.policy) and the statements AddPermission builds
(strato.domain.permissions): pure functions, every rule in a table."""

from __future__ import annotations

from typing import Any

import pytest

from strato.domain.errors import InvalidParameterValueException
from strato.domain.permissions import (
    Condition,
    Effect,
    PermissionGrant,
    PermissionStatement,
    PrincipalKind,
    StatementPrincipal,
    policy_qualifier,
)
from strato.domain.policy import (
    Denial,
    IdentityPolicy,
    PolicyDocumentError,
    PrincipalMatch,
    Verdict,
    action_matches,
    arn_matches,
    condition_holds,
    context_of,
    decide,
    evaluate_resource_policy,
    principal_match,
)

FN = "arn:aws:lambda:us-east-1:000000000000:function:my-fn"
BOB = "arn:aws:iam::111122223333:user/bob"
ALICE = "arn:aws:iam::111122223333:user/alice"
OTHER_ROOT = "arn:aws:iam::111122223333:root"


def identity(*statements: dict[str, Any]) -> IdentityPolicy:
    return IdentityPolicy.parse({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# actions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("*", "lambda:InvokeFunction", True),
        ("*", "logs:GetLogEvents", True),
        ("lambda:*", "lambda:InvokeFunction", True),
        ("lambda:*", "logs:GetLogEvents", False),
        ("lambda:Get*", "lambda:GetFunction", True),
        ("lambda:Get*", "lambda:GetFunctionConfiguration", True),
        ("lambda:Get*", "lambda:ListFunctions", False),
        ("lambda:InvokeFunction", "lambda:InvokeFunction", True),
        ("lambda:InvokeFunction", "lambda:InvokeFunctionUrl", False),
        ("LAMBDA:invokefunction", "lambda:InvokeFunction", True),
        ("lambda:?etFunction", "lambda:GetFunction", True),
        ("lambda:?etFunction", "lambda:SetXFunction", False),
        ("lambda:*Function*", "lambda:UpdateFunctionCode", True),
        ("lambda:Invoke.Function", "lambda:InvokeXFunction", False),  # '.' is no wildcard
        ("", "lambda:GetFunction", False),
    ],
)
def test_action_matching(pattern: str, action: str, matches: bool) -> None:
    assert action_matches(pattern, action) is matches


# resources ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "arn", "matches"),
    [
        ("*", FN, True),
        (FN, FN, True),
        (FN, FN + ":1", False),  # an unqualified ARN does not cover versions (IAM)
        (FN + ":*", FN + ":1", True),
        (FN + ":*", FN, False),
        ("arn:aws:lambda:*:*:function:my-*", FN, True),
        ("arn:aws:lambda:*:*:function:my-*", FN + ":prod", True),  # the last part spans colons
        ("arn:aws:lambda:*:*:function:other-*", FN, False),
        ("arn:aws:lambda:us-east-1:000000000000:function:*", FN, True),
        ("arn:aws:lambda:us-west-2:000000000000:function:*", FN, False),
        ("arn:aws:lambda:us-east-?:000000000000:function:my-fn", FN, True),
        ("arn:aws:lambda:us-east-1:000000000000:function:MY-FN", FN, False),  # case-sensitive
        ("arn:aws:lambda:*:function:my-fn", FN, False),  # a * stays inside its component
        ("arn:aws:lambda:*", FN, True),  # not an ARN pattern of six parts: one glob
        ("arn:aws:logs:*:*:*", FN, False),
    ],
)
def test_arn_matching(pattern: str, arn: str, matches: bool) -> None:
    assert arn_matches(pattern, arn) is matches


# conditions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "context", "holds"),
    [
        ("StringEquals", ("111122223333",), {"aws:sourceaccount": "111122223333"}, True),
        ("StringEquals", ("111122223333",), {"aws:sourceaccount": "999999999999"}, False),
        ("StringEquals", ("111122223333",), {}, False),
        ("StringEquals", ("a", "111122223333"), {"aws:sourceaccount": "111122223333"}, True),
        ("StringEqualsIfExists", ("111122223333",), {}, True),
        ("StringEqualsIfExists", ("111122223333",), {"aws:sourceaccount": "x"}, False),
        ("StringNotEquals", ("111122223333",), {"aws:sourceaccount": "999999999999"}, True),
        ("StringNotEquals", ("111122223333",), {"aws:sourceaccount": "111122223333"}, False),
        ("StringNotEquals", ("111122223333",), {}, True),  # negated: an absent key holds
        ("StringEqualsIgnoreCase", ("ABC",), {"aws:sourceaccount": "abc"}, True),
        ("StringNotEqualsIgnoreCase", ("ABC",), {"aws:sourceaccount": "abc"}, False),
        ("StringLike", ("1111*",), {"aws:sourceaccount": "111122223333"}, True),
        ("StringLike", ("2222*",), {"aws:sourceaccount": "111122223333"}, False),
        ("StringNotLike", ("2222*",), {"aws:sourceaccount": "111122223333"}, True),
        ("Null", ("true",), {}, True),
        ("Null", ("true",), {"aws:sourceaccount": "1"}, False),
        ("Null", ("false",), {"aws:sourceaccount": "1"}, True),
    ],
)
def test_condition_operators(
    operator: str, values: tuple[str, ...], context: dict[str, str], holds: bool
) -> None:
    assert condition_holds(Condition(operator, "AWS:SourceAccount", values), context) is holds


@pytest.mark.parametrize(
    ("operator", "pattern", "arn", "holds"),
    [
        ("ArnLike", "arn:aws:s3:::bucket", "arn:aws:s3:::bucket", True),
        ("ArnLike", "arn:aws:s3:::buck*", "arn:aws:s3:::bucket", True),
        ("ArnLike", "arn:aws:s3:::other", "arn:aws:s3:::bucket", False),
        ("ArnEquals", "arn:aws:sns:us-east-1:111122223333:topic", "arn:aws:sns:us-east-1:111122223333:topic", True),
        ("ArnNotLike", "arn:aws:s3:::other", "arn:aws:s3:::bucket", True),
        ("ArnNotEquals", "arn:aws:s3:::bucket", "arn:aws:s3:::bucket", False),
    ],
)
def test_arn_conditions(operator: str, pattern: str, arn: str, holds: bool) -> None:
    condition = Condition(operator, "AWS:SourceArn", (pattern,))
    assert condition_holds(condition, {"aws:sourcearn": arn}) is holds


def test_bool_condition_compares_case_insensitively() -> None:
    condition = Condition("Bool", "lambda:InvokedViaFunctionUrl", ("true",))
    assert condition_holds(condition, {"lambda:invokedviafunctionurl": "True"})
    assert not condition_holds(condition, {"lambda:invokedviafunctionurl": "false"})
    assert not condition_holds(condition, {})


def test_context_keys_are_case_insensitive_and_carry_the_principal() -> None:
    context = context_of(BOB, "111122223333", {"AWS:SourceArn": "arn:aws:s3:::b"})
    assert context == {
        "aws:sourcearn": "arn:aws:s3:::b",
        "aws:principalarn": BOB,
        "aws:principalaccount": "111122223333",
    }
    assert condition_holds(Condition("StringEquals", "AWS:PrincipalAccount", ("111122223333",)), context)


# identity-based policies -------------------------------------------------------------------


def test_default_deny_and_explicit_allow() -> None:
    policy = identity(allow("lambda:GetFunction", FN))
    assert policy.evaluate("lambda:GetFunction", FN, {}) is Verdict.ALLOWED
    assert policy.evaluate("lambda:DeleteFunction", FN, {}) is Verdict.NOT_ALLOWED
    assert policy.evaluate("lambda:GetFunction", FN + ":1", {}) is Verdict.NOT_ALLOWED
    assert identity().evaluate("lambda:GetFunction", FN, {}) is Verdict.NOT_ALLOWED


def test_explicit_deny_wins_over_any_allow_in_any_order() -> None:
    for statements in ([allow(), deny("lambda:DeleteFunction")], [deny("lambda:DeleteFunction"), allow()]):
        policy = identity(*statements)
        assert policy.evaluate("lambda:DeleteFunction", FN, {}) is Verdict.EXPLICIT_DENY
        assert policy.evaluate("lambda:GetFunction", FN, {}) is Verdict.ALLOWED


def test_action_and_resource_as_lists() -> None:
    policy = identity(allow(["lambda:GetFunction", "lambda:List*"], [FN, "*"]))
    assert policy.evaluate("lambda:ListFunctions", "*", {}) is Verdict.ALLOWED
    assert policy.evaluate("lambda:GetFunction", FN, {}) is Verdict.ALLOWED
    assert policy.evaluate("lambda:InvokeFunction", FN, {}) is Verdict.NOT_ALLOWED


def test_not_action_allows_everything_but_the_listed_actions() -> None:
    policy = IdentityPolicy.parse({"Statement": {"Effect": "Allow", "NotAction": "lambda:Delete*", "Resource": "*"}})
    assert policy.evaluate("lambda:GetFunction", FN, {}) is Verdict.ALLOWED
    assert policy.evaluate("lambda:DeleteFunction", FN, {}) is Verdict.NOT_ALLOWED


def test_not_resource_and_deny_with_not_action() -> None:
    policy = identity(
        {"Effect": "Allow", "Action": "lambda:*", "NotResource": "arn:aws:lambda:*:*:function:secret-*"},
        {"Effect": "Deny", "NotAction": ["lambda:Get*", "lambda:List*"], "Resource": "*"},
    )
    assert policy.evaluate("lambda:GetFunction", FN, {}) is Verdict.ALLOWED
    assert policy.evaluate("lambda:GetFunction", FN.replace("my-fn", "secret-x"), {}) is Verdict.NOT_ALLOWED
    assert policy.evaluate("lambda:InvokeFunction", FN, {}) is Verdict.EXPLICIT_DENY


def test_wildcard_resource_arns_in_identity_policies() -> None:
    policy = identity(allow("lambda:InvokeFunction", "arn:aws:lambda:*:*:function:my-*"))
    assert policy.evaluate("lambda:InvokeFunction", FN, {}) is Verdict.ALLOWED
    assert policy.evaluate("lambda:InvokeFunction", FN.replace("my-fn", "your-fn"), {}) is Verdict.NOT_ALLOWED


def test_a_statement_whose_condition_fails_does_not_apply() -> None:
    policy = identity(
        allow(),
        deny(Condition={"StringNotEquals": {"aws:PrincipalAccount": "111122223333"}}),
    )
    mine = context_of(BOB, "111122223333")
    theirs = context_of("arn:aws:iam::444455556666:user/eve", "444455556666")
    assert policy.evaluate("lambda:GetFunction", FN, mine) is Verdict.ALLOWED
    assert policy.evaluate("lambda:GetFunction", FN, theirs) is Verdict.EXPLICIT_DENY
    assert not policy.unconditional


def test_allows_everything_only_for_an_unconditional_allow_star_without_deny() -> None:
    assert identity(allow()).allows_everything
    assert IdentityPolicy.parse({"Statement": [allow(["lambda:GetFunction", "*"], ["*"])]}).allows_everything
    assert not identity(allow("lambda:*")).allows_everything
    assert not identity(allow(), deny("lambda:DeleteFunction")).allows_everything
    assert not identity(allow(Condition={"Bool": {"aws:SecureTransport": True}})).allows_everything
    assert not identity({"Effect": "Allow", "NotAction": "lambda:X", "Resource": "*"}).allows_everything


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "JSON object"),
        ({}, "Statement"),
        ({"Statement": "x"}, "Statement"),
        ({"Statement": ["x"]}, "not an object"),
        ({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}, "Effect"),
        ({"Statement": [{"Action": "*", "Resource": "*"}]}, "Effect"),
        ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "Action"),
        ({"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "x", "Resource": "*"}]}, "Action"),
        ({"Statement": [{"Effect": "Allow", "Action": "*"}]}, "Resource"),
        ({"Statement": [allow(action=[])]}, "non-empty"),
        ({"Statement": [allow(action=[1])]}, "strings"),
        ({"Statement": [allow(Principal="*")]}, "Principal"),
        ({"Statement": [allow(Condition={"ForAnyValue:StringEquals": {"k": "v"}})]}, "cannot evaluate"),
        ({"Statement": [allow(Condition={"DateGreaterThan": {"k": "v"}})]}, "cannot evaluate"),
        ({"Statement": [allow(Condition={"StringEquals": "v"})]}, "map keys"),
        ({"Statement": [allow(Condition={"StringEquals": {"k": []}})]}, "no values"),
        ({"Statement": [allow(Condition={"StringEquals": {"k": {"x": 1}}})]}, "condition value"),
        ({"Statement": [allow(Condition="x")]}, "object of operators"),
    ],
)
def test_documents_strato_cannot_evaluate_are_refused(document: Any, problem: str) -> None:
    with pytest.raises(PolicyDocumentError, match=problem):
        IdentityPolicy.parse(document)


def test_condition_values_of_json_types_become_strings() -> None:
    policy = identity(allow(Condition={"Bool": {"aws:SecureTransport": True}, "StringEquals": {"n": 5}}))
    assert policy.evaluate("lambda:GetFunction", FN, {"aws:securetransport": "true", "n": "5"}) is Verdict.ALLOWED
    assert policy.evaluate("lambda:GetFunction", FN, {"aws:securetransport": "false", "n": "5"}) is Verdict.NOT_ALLOWED


# resource-based policies -------------------------------------------------------------------


def grant(principal: str, action: str = "lambda:InvokeFunction", **members: Any) -> PermissionStatement:
    return PermissionGrant(statement_id="sid", action=action, principal=principal, **members).to_statement()


@pytest.mark.parametrize(
    ("named", "match"),
    [
        (StatementPrincipal(PrincipalKind.ANY, "*"), PrincipalMatch.DIRECT),
        (StatementPrincipal(PrincipalKind.AWS, "*"), PrincipalMatch.DIRECT),
        (StatementPrincipal(PrincipalKind.AWS, BOB), PrincipalMatch.DIRECT),
        (StatementPrincipal(PrincipalKind.AWS, ALICE), PrincipalMatch.NONE),
        (StatementPrincipal(PrincipalKind.AWS, OTHER_ROOT), PrincipalMatch.ACCOUNT),
        (StatementPrincipal(PrincipalKind.AWS, "111122223333"), PrincipalMatch.ACCOUNT),
        (StatementPrincipal(PrincipalKind.AWS, "arn:aws:iam::444455556666:root"), PrincipalMatch.NONE),
        (StatementPrincipal(PrincipalKind.SERVICE, "s3.amazonaws.com"), PrincipalMatch.NONE),
    ],
)
def test_principal_matching(named: StatementPrincipal, match: PrincipalMatch) -> None:
    assert principal_match(named, BOB, "111122223333") is match


def test_the_account_root_itself_is_named_directly() -> None:
    named = StatementPrincipal(PrincipalKind.AWS, OTHER_ROOT)
    assert principal_match(named, OTHER_ROOT, "111122223333") is PrincipalMatch.DIRECT


def resource_verdict(statements: list[PermissionStatement], *, cross_account: bool = True,
                     action: str = "lambda:InvokeFunction", extra: dict[str, str] | None = None,
                     principal: str = BOB) -> Verdict:
    return evaluate_resource_policy(
        statements, principal, "111122223333", action, context_of(principal, "111122223333", extra),
        cross_account=cross_account,
    )


def test_a_grant_to_the_account_allows_its_principals_across_accounts_only() -> None:
    statements = [grant("111122223333")]
    assert resource_verdict(statements) is Verdict.ALLOWED
    assert resource_verdict(statements, cross_account=False) is Verdict.NOT_ALLOWED
    assert resource_verdict(statements, cross_account=False, principal=OTHER_ROOT) is Verdict.ALLOWED


def test_a_grant_to_the_principal_or_to_everyone_allows_in_any_account() -> None:
    for principal in (BOB, "*"):
        for cross_account in (True, False):
            assert resource_verdict([grant(principal)], cross_account=cross_account) is Verdict.ALLOWED
    assert resource_verdict([grant(ALICE)]) is Verdict.NOT_ALLOWED
    assert resource_verdict([]) is Verdict.NOT_ALLOWED


def test_the_statement_action_must_cover_the_request() -> None:
    assert resource_verdict([grant(BOB, "lambda:InvokeFunction")], action="lambda:GetFunction") is Verdict.NOT_ALLOWED
    assert resource_verdict([grant(BOB, "lambda:*")], action="lambda:GetFunction") is Verdict.ALLOWED
    assert resource_verdict([grant(BOB, "*")], action="lambda:GetFunction") is Verdict.ALLOWED


def test_a_statement_applies_only_when_the_request_context_satisfies_its_conditions() -> None:
    by_account = [grant("*", source_account="111122223333")]
    assert resource_verdict(by_account) is Verdict.NOT_ALLOWED  # no AWS:SourceAccount given
    assert resource_verdict(by_account, extra={"AWS:SourceAccount": "111122223333"}) is Verdict.ALLOWED
    assert resource_verdict(by_account, extra={"aws:sourceaccount": "999999999999"}) is Verdict.NOT_ALLOWED
    by_arn = [grant("*", source_arn="arn:aws:s3:::bucket-*")]
    assert resource_verdict(by_arn, extra={"AWS:SourceArn": "arn:aws:s3:::bucket-1"}) is Verdict.ALLOWED
    assert resource_verdict(by_arn, extra={"AWS:SourceArn": "arn:aws:s3:::other"}) is Verdict.NOT_ALLOWED
    by_url = [grant("*", "lambda:InvokeFunctionUrl", function_url_auth_type="NONE")]
    url = {"lambda:FunctionUrlAuthType": "NONE"}
    assert resource_verdict(by_url, action="lambda:InvokeFunctionUrl", extra=url) is Verdict.ALLOWED
    assert resource_verdict(by_url, action="lambda:InvokeFunctionUrl", extra={
        "lambda:FunctionUrlAuthType": "AWS_IAM"}) is Verdict.NOT_ALLOWED


def test_one_applicable_statement_among_others_is_enough_and_a_deny_wins() -> None:
    statements = [grant(ALICE), grant("*", source_account="999999999999"), grant(BOB)]
    assert resource_verdict(statements) is Verdict.ALLOWED
    denying = PermissionStatement("no", "lambda:*", StatementPrincipal(PrincipalKind.ANY, "*"), effect=Effect.DENY)
    assert resource_verdict([grant(BOB), denying]) is Verdict.EXPLICIT_DENY


# the decision ------------------------------------------------------------------------------

A, D, N = Verdict.ALLOWED, Verdict.EXPLICIT_DENY, Verdict.NOT_ALLOWED


@pytest.mark.parametrize(
    ("identity_verdict", "resource_verdict_", "cross_account", "denial"),
    [
        # same account: either policy allows
        (A, N, False, None),
        (N, A, False, None),
        (A, A, False, None),
        (N, N, False, Denial.NO_IDENTITY_ALLOW),
        (D, A, False, Denial.IDENTITY_EXPLICIT_DENY),
        (A, D, False, Denial.RESOURCE_EXPLICIT_DENY),
        (D, D, False, Denial.IDENTITY_EXPLICIT_DENY),
        # another account: both must allow
        (A, A, True, None),
        (A, N, True, Denial.NO_RESOURCE_ALLOW),
        (N, N, True, Denial.NO_RESOURCE_ALLOW),
        (N, A, True, Denial.NO_IDENTITY_ALLOW),
        (D, A, True, Denial.IDENTITY_EXPLICIT_DENY),
        (A, D, True, Denial.RESOURCE_EXPLICIT_DENY),
    ],
)
def test_decide(identity_verdict: Verdict, resource_verdict_: Verdict, cross_account: bool,
                denial: Denial | None) -> None:
    assert decide(identity_verdict, resource_verdict_, cross_account=cross_account) is denial


def test_denial_messages_are_aws_words() -> None:
    assert Denial.NO_RESOURCE_ALLOW.message(BOB, "lambda:InvokeFunction", FN) == (
        "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: lambda:InvokeFunction "
        "on resource: arn:aws:lambda:us-east-1:000000000000:function:my-fn because no resource-based "
        "policy allows the lambda:InvokeFunction action"
    )
    assert Denial.NO_IDENTITY_ALLOW.message(BOB, "lambda:ListFunctions", "*") == (
        "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: lambda:ListFunctions "
        "on resource: * because no identity-based policy allows the lambda:ListFunctions action"
    )
    assert Denial.IDENTITY_EXPLICIT_DENY.message(BOB, "lambda:GetFunction", FN).endswith(
        f"on resource: {FN} with an explicit deny in an identity-based policy"
    )


# statements of AddPermission ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "kind", "value"),
    [
        ("*", PrincipalKind.ANY, "*"),
        ("111122223333", PrincipalKind.AWS, "arn:aws:iam::111122223333:root"),
        (BOB, PrincipalKind.AWS, BOB),
        ("arn:aws:iam::111122223333:role/service-role/x", PrincipalKind.AWS, "arn:aws:iam::111122223333:role/service-role/x"),
        ("arn:aws:sts::111122223333:assumed-role/r/s", PrincipalKind.AWS, "arn:aws:sts::111122223333:assumed-role/r/s"),
        ("s3.amazonaws.com", PrincipalKind.SERVICE, "s3.amazonaws.com"),
        ("lambda.amazonaws.com", PrincipalKind.SERVICE, "lambda.amazonaws.com"),
        ("alexa-appkit.amazon.com", PrincipalKind.SERVICE, "alexa-appkit.amazon.com"),
    ],
)
def test_principals_are_normalised_as_aws_stores_them(principal: str, kind: PrincipalKind, value: str) -> None:
    assert StatementPrincipal.parse(principal) == StatementPrincipal(kind, value)


@pytest.mark.parametrize(
    "principal",
    ["invalid.nonaws.com", "12345", "1111222233334", "arn:aws:s3:::bucket", "arn:aws:iam::123:root", "user/bob", "**"],
)
def test_invalid_principals_get_aws_message(principal: str) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        StatementPrincipal.parse(principal)
    assert caught.value.message == "The provided principal was invalid. Please check the principal and try again."


def test_optional_members_become_conditions_in_aws_form() -> None:
    statement = PermissionGrant(
        statement_id="url", action="lambda:InvokeFunctionUrl", principal="*",
        source_arn="arn:aws:s3:::b", source_account="111122223333", principal_org_id="o-1234567890",
        function_url_auth_type="NONE", event_source_token="tok", invoked_via_function_url=True,
    ).to_statement()
    assert statement.conditions == (
        Condition("ArnLike", "AWS:SourceArn", ("arn:aws:s3:::b",)),
        Condition("StringEquals", "AWS:SourceAccount", ("111122223333",)),
        Condition("StringEquals", "aws:PrincipalOrgID", ("o-1234567890",)),
        Condition("StringEquals", "lambda:FunctionUrlAuthType", ("NONE",)),
        Condition("StringEquals", "lambda:EventSourceToken", ("tok",)),
        Condition("Bool", "lambda:InvokedViaFunctionUrl", ("true",)),
    )
    assert statement.effect is Effect.ALLOW
    plain = PermissionGrant("s", "lambda:InvokeFunction", "*", invoked_via_function_url=False).to_statement()
    assert plain.conditions == ()


def test_latest_and_no_qualifier_share_the_functions_policy() -> None:
    assert policy_qualifier(None) is None
    assert policy_qualifier("$LATEST") is None
    assert policy_qualifier("1") == "1"
    assert policy_qualifier("prod") == "prod"
