"""strato's credentials: the model, the file (0600, atomic), the in-memory store, the first admin."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.auth.credential_file import (
    add_credential,
    credentials_path,
    delete_credential,
    read_credentials,
    write_credentials,
)
from strato.auth.credentials import (
    CredentialError,
    generate,
    make_credential,
    new_access_key_id,
    new_secret_access_key,
    parse_key_pair,
)
from strato.auth.store import CredentialStore, ensure_admin
from strato.domain.principals import ADMIN_POLICY

ACCOUNT = "000000000000"
READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "lambda:Get*", "Resource": "*"}],
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return credentials_path(tmp_path)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_generated_keys_have_aws_formats() -> None:
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", new_access_key_id())
    secret = new_secret_access_key()
    assert len(secret) == 40 and re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)
    assert new_secret_access_key() != secret


def test_a_credential_holds_an_iam_user_principal() -> None:
    credential = generate(account_id="123456789012", name="ci", policy=READ_ONLY)
    principal = credential.principal
    assert principal.access_key_id == credential.access_key_id
    assert principal.account_id == "123456789012"
    assert principal.arn == "arn:aws:iam::123456789012:user/ci"
    assert dict(principal.policy) == READ_ONLY and not credential.is_admin


def test_an_admin_principal_holds_the_shared_admin_policy_object() -> None:
    credential = make_credential("k", "s", account_id=ACCOUNT, name="admin",
                                 policy=json.loads(json.dumps(ADMIN_POLICY)))
    assert credential.principal.policy is ADMIN_POLICY and credential.is_admin


@pytest.mark.parametrize("text", ["test:test", "AKIAIOSFODNN7EXAMPLE:secret:with:colons"])
def test_operator_key_pairs_need_not_look_like_aws_keys(text: str) -> None:
    key, _, secret = text.partition(":")
    assert parse_key_pair(text) == (key, secret)


@pytest.mark.parametrize("text", ["no-colon", ":secret", "key:", "a/b:secret", "a b:secret", "a,b:s"])
def test_unusable_key_pairs_are_refused(text: str) -> None:
    with pytest.raises(CredentialError):
        parse_key_pair(text)


@pytest.mark.parametrize("policy", [{"Statement": "everything"}, {"Version": "2012-10-17"}, ["not", "an", "object"]])
def test_a_policy_strato_cannot_evaluate_is_refused(policy: object) -> None:
    with pytest.raises(CredentialError):
        generate(account_id=ACCOUNT, name="x", policy=policy)  # type: ignore[arg-type]


def test_bad_accounts_and_names_are_refused() -> None:
    with pytest.raises(CredentialError):
        generate(account_id="12345", name="x")
    with pytest.raises(CredentialError):
        generate(account_id=ACCOUNT, name="has/slash")


def test_the_file_round_trips_and_is_private_whatever_the_umask(path: Path, open_umask: None) -> None:
    first, second = generate(account_id=ACCOUNT, name="a"), generate(account_id=ACCOUNT, name="b", policy=READ_ONLY)
    write_credentials(path, [first, second])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_credentials(path) == [first, second]
    assert not list(path.parent.glob(".credentials.json.*.tmp"))


def test_a_rewrite_keeps_the_file_private_and_replaces_it_whole(path: Path, open_umask: None) -> None:
    write_credentials(path, [generate(account_id=ACCOUNT, name="a")])
    inode = path.stat().st_ino
    add_credential(path, generate(account_id=ACCOUNT, name="b"))
    assert path.stat().st_ino != inode  # renamed over, never written in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.with_name("credentials.json.lock").stat().st_mode) == 0o600
    assert [c.principal.arn.rsplit("/", 1)[1] for c in read_credentials(path)] == ["a", "b"]


def test_add_refuses_a_taken_key_and_delete_reports_absence(path: Path) -> None:
    credential = generate(account_id=ACCOUNT, name="a")
    add_credential(path, credential)
    with pytest.raises(CredentialError):
        add_credential(path, credential)
    assert delete_credential(path, credential.access_key_id)
    assert not delete_credential(path, credential.access_key_id)
    assert read_credentials(path) == []


def test_an_absent_file_holds_no_credentials_and_a_foreign_one_is_refused(path: Path) -> None:
    assert read_credentials(path) == []
    path.write_text('{"something": "else"}')
    with pytest.raises(CredentialError):
        read_credentials(path)


def test_the_store_picks_up_changes_at_most_once_per_interval(path: Path) -> None:
    clock = FakeClock()
    first = generate(account_id=ACCOUNT, name="a")
    add_credential(path, first)
    store = CredentialStore(path, clock=clock, recheck_s=1.0)
    assert store.lookup(first.access_key_id) == first
    second = generate(account_id=ACCOUNT, name="b")
    add_credential(path, second)
    delete_credential(path, first.access_key_id)
    assert store.lookup(second.access_key_id) is None  # checked less than a second ago
    clock.now += 1.0
    assert store.lookup(second.access_key_id) == second
    assert store.lookup(first.access_key_id) is None


def test_the_store_keeps_its_credentials_when_the_file_goes_bad(path: Path) -> None:
    clock = FakeClock()
    credential = generate(account_id=ACCOUNT, name="a")
    add_credential(path, credential)
    store = CredentialStore(path, clock=clock)
    path.write_text("{ not json")
    clock.now += 5
    assert store.lookup(credential.access_key_id) == credential


def test_a_principal_object_is_shared_between_lookups(path: Path) -> None:
    credential = generate(account_id=ACCOUNT, name="a", policy=READ_ONLY)
    add_credential(path, credential)
    store = CredentialStore(path)
    looked_up = store.lookup(credential.access_key_id)
    assert looked_up is not None and looked_up is store.lookup(credential.access_key_id)


def test_the_first_start_generates_one_admin_and_only_once(path: Path) -> None:
    created = ensure_admin(path, ACCOUNT, None)
    assert created is not None and created.is_admin
    assert created.principal.arn == f"arn:aws:iam::{ACCOUNT}:user/admin"
    assert read_credentials(path) == [created]
    assert ensure_admin(path, ACCOUNT, None) is None
    assert read_credentials(path) == [created]


def test_no_admin_is_generated_when_credentials_exist(path: Path) -> None:
    add_credential(path, generate(account_id=ACCOUNT, name="ci", policy=READ_ONLY))
    assert ensure_admin(path, ACCOUNT, None) is None
    assert len(read_credentials(path)) == 1


def test_a_seeded_admin_has_exactly_the_given_keys(path: Path) -> None:
    assert ensure_admin(path, ACCOUNT, ("test", "test")) is None
    (admin,) = read_credentials(path)
    assert (admin.access_key_id, admin.secret_access_key, admin.is_admin) == ("test", "test", True)
    assert ensure_admin(path, ACCOUNT, ("test", "other")) is None
    (admin,) = read_credentials(path)
    assert admin.secret_access_key == "other"
