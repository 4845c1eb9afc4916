"""The ``PolicyStore`` contract of ``strato.store.base``, written once and run against every
backend.

A backend's test module subclasses ``PolicyStoreContract`` in a ``Test...`` class and overrides
the ``policy_store`` fixture, and ``create_function`` where the backend needs the function to
exist before a policy of it is written (SQLite's rows reference ``functions``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

import pytest

from strato.domain.permissions import (
    Condition,
    Effect,
    PermissionStatement,
    PrincipalKind,
    ResourcePolicy,
    StatementPrincipal,
)
from strato.errors import RevisionMismatchError
from strato.store.base import PolicyStore
from tests.support.store_contracts import run_threads

CreateFunction = Callable[[str], None]

S3 = StatementPrincipal(PrincipalKind.SERVICE, "s3.amazonaws.com")
ROOT = StatementPrincipal(PrincipalKind.AWS, "arn:aws:iam::111122223333:root")
ANYONE = StatementPrincipal(PrincipalKind.ANY, "*")


def statement(sid: str = "s3", **changes: object) -> PermissionStatement:
    base = PermissionStatement(
        sid=sid,
        action="lambda:InvokeFunction",
        principal=S3,
        conditions=(Condition("ArnLike", "AWS:SourceArn", ("arn:aws:s3:::bucket",)),),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def policy(
    name: str = "fn", qualifier: str | None = None, *statements: PermissionStatement
) -> ResourcePolicy:
    return ResourcePolicy(name, qualifier, statements or (statement(),), str(uuid.uuid4()))


class PolicyStoreContract:
    @pytest.fixture
    def policy_store(self) -> PolicyStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    @pytest.fixture
    def create_function(self) -> CreateFunction:
        """Make a function exist for the backend (nothing to do where it does not care)."""
        return lambda name: None

    def test_a_policy_round_trips_with_every_field(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        create_function("fn")
        everything = policy(
            "fn", None,
            statement("s3"),
            statement("acct", principal=ROOT, conditions=()),
            statement(
                "url", principal=ANYONE, action="lambda:InvokeFunctionUrl", effect=Effect.DENY,
                conditions=(
                    Condition("StringEquals", "AWS:SourceAccount", ("111122223333",)),
                    Condition("StringEquals", "lambda:FunctionUrlAuthType", ("NONE",)),
                    Condition("StringLike", "aws:PrincipalArn", ("a*", "b?")),
                    Condition("Bool", "lambda:InvokedViaFunctionUrl", ("true",)),
                ),
            ),
        )
        policy_store.put_policy(everything, expected_revision=None)
        assert policy_store.get_policy("fn", None) == everything

    def test_get_of_an_unknown_policy_is_none(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        create_function("fn")
        policy_store.put_policy(policy("fn"), expected_revision=None)
        assert policy_store.get_policy("other", None) is None
        assert policy_store.get_policy("fn", "1") is None

    def test_each_qualifier_has_its_own_policy(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        create_function("fn")
        unqualified = policy("fn", None, statement("a"))
        version = policy("fn", "1", statement("b"))
        alias = policy("fn", "prod", statement("c"))
        for p in (unqualified, version, alias):
            policy_store.put_policy(p, expected_revision=None)
        assert policy_store.get_policy("fn", None) == unqualified
        assert policy_store.get_policy("fn", "1") == version
        assert policy_store.get_policy("fn", "prod") == alias

    def test_put_with_the_stored_revision_replaces_the_policy(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        create_function("fn")
        first = policy("fn", None, statement("a"))
        policy_store.put_policy(first, expected_revision=None)
        second = policy("fn", None, statement("a"), statement("b"))
        policy_store.put_policy(second, expected_revision=first.revision_id)
        assert policy_store.get_policy("fn", None) == second

    def test_put_with_a_stale_or_absent_revision_raises_and_changes_nothing(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        create_function("fn")
        with pytest.raises(RevisionMismatchError):
            policy_store.put_policy(policy("fn"), expected_revision="never-stored")
        assert policy_store.get_policy("fn", None) is None
        first = policy("fn")
        policy_store.put_policy(first, expected_revision=None)
        with pytest.raises(RevisionMismatchError):
            policy_store.put_policy(policy("fn", None, statement("x")), expected_revision=None)
        with pytest.raises(RevisionMismatchError):
            policy_store.put_policy(policy("fn", None, statement("x")), expected_revision="stale")
        assert policy_store.get_policy("fn", None) == first

    def test_a_policy_without_statements_is_refused(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        create_function("fn")
        with pytest.raises(ValueError):
            policy_store.put_policy(ResourcePolicy("fn", None, (), "r"), expected_revision=None)
        assert policy_store.get_policy("fn", None) is None

    def test_delete_policy_is_a_compare_and_swap(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        create_function("fn")
        stored = policy("fn", "1")
        policy_store.put_policy(stored, expected_revision=None)
        with pytest.raises(RevisionMismatchError):
            policy_store.delete_policy("fn", "1", expected_revision="stale")
        assert policy_store.get_policy("fn", "1") == stored
        policy_store.delete_policy("fn", "1", expected_revision=stored.revision_id)
        assert policy_store.get_policy("fn", "1") is None
        with pytest.raises(RevisionMismatchError):
            policy_store.delete_policy("fn", "1", expected_revision=stored.revision_id)

    def test_delete_policies_drops_every_qualifier_of_one_function(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        create_function("fn")
        create_function("kept")
        for p in (policy("fn"), policy("fn", "1"), policy("fn", "prod"), policy("kept")):
            policy_store.put_policy(p, expected_revision=None)
        policy_store.delete_policies("fn")
        policy_store.delete_policies("fn")  # idempotent
        policy_store.delete_policies("never-existed")
        assert [(p.function_name, p.qualifier) for p in policy_store.list_policies()] == [("kept", None)]

    def test_list_policies_orders_by_function_then_qualifier(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        assert policy_store.list_policies() == []
        for name in ("b", "a"):
            create_function(name)
        stored = [policy("b", "2"), policy("a", "prod"), policy("b"), policy("a", "1"), policy("a")]
        for p in stored:
            policy_store.put_policy(p, expected_revision=None)
        listed = policy_store.list_policies()
        assert [(p.function_name, p.qualifier) for p in listed] == [
            ("a", None), ("a", "1"), ("a", "prod"), ("b", None), ("b", "2"),
        ]
        assert set(listed) == set(stored)

    def test_concurrent_adds_lose_no_statement(
        self, policy_store: PolicyStore, create_function: CreateFunction
    ) -> None:
        create_function("fn")
        threads, adds = 6, 10

        def add(index: int) -> None:
            done = 0
            while done < adds:
                current = policy_store.get_policy("fn", None)
                statements = (*(current.statements if current else ()), statement(f"s{index}-{done}"))
                try:
                    policy_store.put_policy(
                        ResourcePolicy("fn", None, statements, str(uuid.uuid4())),
                        expected_revision=current.revision_id if current else None,
                    )
                except RevisionMismatchError:
                    continue
                done += 1

        run_threads(threads, add)
        final = policy_store.get_policy("fn", None)
        assert final is not None
        assert sorted(s.sid for s in final.statements) == sorted(
            f"s{i}-{d}" for i in range(threads) for d in range(adds)
        )
