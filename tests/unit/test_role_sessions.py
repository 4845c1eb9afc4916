"""Role session credentials: issued, resolved to the role session's principal with the role's
current policy, refused when forged or for another key, expired after their lifetime; and the
pool's decision to retire an environment before what it was given expires."""

from __future__ import annotations

import pytest

from strato.auth.role_sessions import NO_ACCESS, RoleSessions
from strato.domain.iam.errors import ExpiredTokenException
from strato.domain.principals import ADMIN_POLICY
from strato.scheduler.placement import worn_out
from strato.services.roles import RoleDirectory, RoleService
from strato.store.memory_roles import MemoryRoleStore

ACCOUNT = "123456789012"
TRUST = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", ' \
        '"Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
SEND = '{"Statement": {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}}'


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_acts_as_its_role_with_the_role_s_current_policy() -> None:
    directory = RoleDirectory(ACCOUNT)
    roles = RoleService(MemoryRoleStore(), directory)
    role = roles.create_role("worker", TRUST)
    sessions = RoleSessions(ACCOUNT, directory, lifetime_s=60)
    issued = sessions.issue(role.arn(ACCOUNT), "my-function")
    credential = sessions.resolve(issued.access_key_id, issued.session_token)
    assert credential is not None
    assert credential.secret_access_key == issued.secret_access_key
    assert credential.principal.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/worker/my-function"
    assert list(credential.principal.policy["Statement"]) == []
    roles.put_role_policy("worker", "send", SEND)
    again = sessions.resolve(issued.access_key_id, issued.session_token)
    assert again is not None and len(again.principal.policy["Statement"]) == 1


def test_forged_or_borrowed_tokens_are_not_credentials() -> None:
    sessions = RoleSessions(ACCOUNT, RoleDirectory(ACCOUNT), lifetime_s=60)
    issued = sessions.issue(f"arn:aws:iam::{ACCOUNT}:role/x", "f")
    other = sessions.issue(f"arn:aws:iam::{ACCOUNT}:role/x", "f")
    assert sessions.resolve(other.access_key_id, issued.session_token) is None
    assert sessions.resolve(issued.access_key_id, issued.session_token[:-2] + "AA") is None
    assert sessions.resolve(issued.access_key_id, "not a token") is None
    stranger = RoleSessions(ACCOUNT, RoleDirectory(ACCOUNT), lifetime_s=60)  # another run
    assert stranger.resolve(issued.access_key_id, issued.session_token) is None


@pytest.mark.parametrize(("trusted", "policy"), [(False, NO_ACCESS), (True, ADMIN_POLICY)])
def test_an_unknown_role_gets_nothing_unless_trusted(trusted: bool, policy: object) -> None:
    sessions = RoleSessions(ACCOUNT, RoleDirectory(ACCOUNT), lifetime_s=60,
                            trust_unknown_roles=trusted)
    issued = sessions.issue("arn:aws:iam::000000000000:role/x", "f")
    credential = sessions.resolve(issued.access_key_id, issued.session_token)
    assert credential is not None and credential.principal.policy is policy


def test_credentials_expire_after_their_lifetime() -> None:
    clock = Clock()
    sessions = RoleSessions(ACCOUNT, RoleDirectory(ACCOUNT), lifetime_s=10, clock=clock)
    issued = sessions.issue(f"arn:aws:iam::{ACCOUNT}:role/x", "f")
    assert issued.expiration == 1_010.0
    clock.now = 1_009.9
    assert sessions.resolve(issued.access_key_id, issued.session_token) is not None
    clock.now = 1_010.0
    with pytest.raises(ExpiredTokenException, match="expired"):
        sessions.resolve(issued.access_key_id, issued.session_token)


@pytest.mark.parametrize(("now", "timeout", "max_age", "expected"), [
    (0.0, 3.0, None, False),       # no limit
    (100.0, 3.0, 10.0, False),     # started at 100: 3 s + 1 s margin fit in 10 s
    (105.0, 3.0, 10.0, False),
    (106.0, 3.0, 10.0, True),      # could still run at 110
    (100.0, 900.0, 600.0, True),   # a timeout longer than the lifetime never fits
])
def test_worn_out(now: float, timeout: float, max_age: float | None, expected: bool) -> None:
    assert worn_out(100.0, now, timeout, max_age) is expected
