"""The Authorizer over its in-memory policy cache: decisions, messages, and the cache kept current."""

from __future__ import annotations

from typing import Any

import pytest

from strato.domain.errors import AccessDeniedException
from strato.domain.permissions import PermissionGrant, ResourcePolicy
from strato.domain.principals import ADMIN_POLICY, Principal, anonymous_admin
from strato.services.authorization import Authorizer, ResourcePolicyCache

ACCOUNT = "000000000000"
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"
BOB = "arn:aws:iam::111122223333:user/bob"

INVOKE_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"},
]}
READ_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*"], "Resource": "*"},
]}
NO_DELETE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Effect": "Deny", "Action": "lambda:DeleteFunction", "Resource": "*"},
]}


def principal(account: str, name: str, policy: Any = ADMIN_POLICY) -> Principal:
    return Principal(f"AK{name.upper()}", account, f"arn:aws:iam::{account}:user/{name}", policy)


def policy(name: str, qualifier: str | None, *grants: PermissionGrant, revision: str = "r1") -> ResourcePolicy:
    return ResourcePolicy(name, qualifier, tuple(g.to_statement() for g in grants), revision)


def invoke_grant(principal_: str, sid: str = "s", **members: Any) -> PermissionGrant:
    return PermissionGrant(sid, "lambda:InvokeFunction", principal_, **members)


@pytest.fixture
def cache() -> ResourcePolicyCache:
    return ResourcePolicyCache()


@pytest.fixture
def authorizer(cache: ResourcePolicyCache) -> Authorizer:
    return Authorizer(ACCOUNT, cache)


def denied(authorizer: Authorizer, who: Principal, action: str, resource: str, **context: str) -> str:
    with pytest.raises(AccessDeniedException) as caught:
        authorizer(who, action, resource, context or None)
    assert caught.value.status == 403 and caught.value.message_key == "Message"
    return caught.value.message


def test_an_admin_of_the_account_may_do_anything(authorizer: Authorizer) -> None:
    for who in (anonymous_admin(ACCOUNT), principal(ACCOUNT, "admin")):
        authorizer(who, "lambda:DeleteFunction", FN)
        authorizer(who, "lambda:ListFunctions", "*")
        authorizer(who, "logs:GetLogEvents", "*")


def test_an_equivalent_admin_policy_object_is_also_allowed(authorizer: Authorizer) -> None:
    copy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    authorizer(principal(ACCOUNT, "admin2", copy), "lambda:DeleteFunction", FN)


def test_a_same_account_identity_policy_limits_its_principal(authorizer: Authorizer) -> None:
    reader = principal(ACCOUNT, "reader", READ_ONLY)
    authorizer(reader, "lambda:GetFunction", FN)
    authorizer(reader, "lambda:ListFunctions", "*")
    assert denied(authorizer, reader, "lambda:DeleteFunction", FN) == (
        f"User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: lambda:DeleteFunction "
        f"on resource: {FN} because no identity-based policy allows the lambda:DeleteFunction action"
    )


def test_an_explicit_deny_names_the_identity_policy(authorizer: Authorizer) -> None:
    careful = principal(ACCOUNT, "careful", NO_DELETE)
    authorizer(careful, "lambda:GetFunction", FN)
    assert denied(authorizer, careful, "lambda:DeleteFunction", FN).endswith(
        "with an explicit deny in an identity-based policy"
    )


def test_a_same_account_principal_named_by_the_resource_policy_may_invoke(
    authorizer: Authorizer, cache: ResourcePolicyCache
) -> None:
    nobody = principal(ACCOUNT, "nobody", {"Statement": []})
    denied(authorizer, nobody, "lambda:InvokeFunction", FN)
    cache.put(policy("f", None, invoke_grant(nobody.arn)))
    authorizer(nobody, "lambda:InvokeFunction", FN)
    denied(authorizer, nobody, "lambda:GetFunction", FN)


def test_cross_account_needs_the_resource_policy(authorizer: Authorizer, cache: ResourcePolicyCache) -> None:
    bob = principal("111122223333", "bob", INVOKE_ONLY)
    assert denied(authorizer, bob, "lambda:InvokeFunction", FN) == (
        f"User: {BOB} is not authorized to perform: lambda:InvokeFunction on resource: {FN} "
        "because no resource-based policy allows the lambda:InvokeFunction action"
    )
    cache.put(policy("f", None, invoke_grant("111122223333")))
    authorizer(bob, "lambda:InvokeFunction", FN)
    # an admin of another account is still bound by the resource policy
    other_admin = principal("111122223333", "admin")
    authorizer(other_admin, "lambda:InvokeFunction", FN)
    assert "no resource-based policy allows the lambda:GetFunction" in denied(
        authorizer, other_admin, "lambda:GetFunction", FN)


def test_cross_account_also_needs_the_identity_policy(authorizer: Authorizer, cache: ResourcePolicyCache) -> None:
    cache.put(policy("f", None, invoke_grant(BOB)))
    bob_read_only = principal("111122223333", "bob", READ_ONLY)
    assert denied(authorizer, bob_read_only, "lambda:InvokeFunction", FN).endswith(
        "because no identity-based policy allows the lambda:InvokeFunction action"
    )


def test_a_resource_policy_for_another_principal_of_the_account_does_not_help(
    authorizer: Authorizer, cache: ResourcePolicyCache
) -> None:
    cache.put(policy("f", None, invoke_grant("arn:aws:iam::111122223333:user/alice")))
    denied(authorizer, principal("111122223333", "bob", INVOKE_ONLY), "lambda:InvokeFunction", FN)


def test_each_qualifier_has_its_own_policy_and_latest_is_the_functions(
    authorizer: Authorizer, cache: ResourcePolicyCache
) -> None:
    bob = principal("111122223333", "bob", INVOKE_ONLY)
    cache.put(policy("f", "1", invoke_grant("111122223333")))
    authorizer(bob, "lambda:InvokeFunction", FN + ":1")
    denied(authorizer, bob, "lambda:InvokeFunction", FN)
    denied(authorizer, bob, "lambda:InvokeFunction", FN + ":2")
    cache.put(policy("f", None, invoke_grant("111122223333")))
    authorizer(bob, "lambda:InvokeFunction", FN)
    authorizer(bob, "lambda:InvokeFunction", FN + ":$LATEST")


def test_conditions_are_checked_against_the_request_context(
    authorizer: Authorizer, cache: ResourcePolicyCache
) -> None:
    bob = principal("111122223333", "bob", INVOKE_ONLY)
    cache.put(policy("f", None, invoke_grant("*", source_account="111122223333")))
    denied(authorizer, bob, "lambda:InvokeFunction", FN)
    authorizer(bob, "lambda:InvokeFunction", FN, {"AWS:SourceAccount": "111122223333"})
    denied(authorizer, bob, "lambda:InvokeFunction", FN, **{"AWS:SourceAccount": "999999999999"})


def test_the_cache_follows_changes_and_deletes(authorizer: Authorizer, cache: ResourcePolicyCache) -> None:
    bob = principal("111122223333", "bob", INVOKE_ONLY)
    cache.put(policy("f", None, invoke_grant("111122223333")))
    cache.put(policy("f", "prod", invoke_grant("111122223333")))
    authorizer(bob, "lambda:InvokeFunction", FN)
    cache.put(policy("f", None, invoke_grant("arn:aws:iam::111122223333:user/alice"), revision="r2"))
    denied(authorizer, bob, "lambda:InvokeFunction", FN)
    authorizer(bob, "lambda:InvokeFunction", FN + ":prod")
    cache.remove("f", "prod")
    cache.remove("f", "prod")  # idempotent
    denied(authorizer, bob, "lambda:InvokeFunction", FN + ":prod")
    assert cache.get("f", None) is not None
    cache.drop_function("f")
    assert cache.get("f", None) is None and cache.statements("f", None) == ()


def test_the_cache_loads_what_the_store_lists() -> None:
    stored = [policy("f", None, invoke_grant("*")), policy("f", "1", invoke_grant("*")), policy("g", None)]
    cache = ResourcePolicyCache(stored)
    assert [cache.get("f", None), cache.get("f", "1"), cache.get("g", None)] == stored
    assert cache.get("h", None) is None


def test_account_level_actions_of_another_account_are_denied(authorizer: Authorizer) -> None:
    other_admin = principal("111122223333", "admin")
    assert denied(authorizer, other_admin, "lambda:ListEventSourceMappings", "*").endswith(
        "on resource: * because no resource-based policy allows the lambda:ListEventSourceMappings action"
    )


def test_listing_functions_is_on_the_callers_own_account(authorizer: Authorizer) -> None:
    """ListFunctions lists the caller's own account's functions (as on AWS): its identity
    policy alone decides, whatever account the server hosts."""
    authorizer(principal("111122223333", "admin"), "lambda:ListFunctions", "*")
    bob = principal("111122223333", "bob", INVOKE_ONLY)
    assert denied(authorizer, bob, "lambda:ListFunctions", "*").endswith(
        "because no identity-based policy allows the lambda:ListFunctions action"
    )


def test_a_function_arn_of_another_account_has_no_policy_here(
    authorizer: Authorizer, cache: ResourcePolicyCache
) -> None:
    cache.put(policy("f", None, invoke_grant("*")))
    bob = principal("111122223333", "bob", INVOKE_ONLY)
    authorizer(bob, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:111122223333:function:f")
    denied(authorizer, bob, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:444455556666:function:f")


def test_an_identity_policy_strato_cannot_read_allows_nothing(authorizer: Authorizer) -> None:
    broken = principal(ACCOUNT, "broken", {"Statement": [{"Effect": "Allow", "Action": "*"}]})
    denied(authorizer, broken, "lambda:GetFunction", FN)


def test_verdicts_follow_the_principal_not_a_stale_memo(authorizer: Authorizer) -> None:
    reader, careful = principal(ACCOUNT, "reader", READ_ONLY), principal(ACCOUNT, "careful", NO_DELETE)
    for _ in range(3):
        authorizer(reader, "lambda:GetFunction", FN)
        denied(authorizer, reader, "lambda:DeleteFunction", FN)
        authorizer(careful, "lambda:UpdateFunctionCode", FN)
        denied(authorizer, careful, "lambda:DeleteFunction", FN)
