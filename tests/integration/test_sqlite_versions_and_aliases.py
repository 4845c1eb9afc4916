"""Published versions, aliases, tags, reserved and provisioned concurrency in a real SQLite
file: what only a file has beyond the shared contracts (sealed environments on disk, surviving
a reopen, the cascade in SQL, the stored shapes, corrupt rows, and the migration of a file an
older strato wrote)."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from strato.domain.models import LATEST
from strato.errors import SealedSecretError, StoreError
from strato.store.codec import encode_function_version
from strato.store.policy_codec import encode_statements
from strato.store.secretbox import MASTER_KEY_FILE, SecretBox, master_key
from strato.store.sqlite import SqliteFunctionStore
from strato.store.sqlite_aliases import SqliteAliasStore, SqliteProvisionedStore
from strato.store.sqlite_db import MIGRATIONS, SqliteDatabase
from strato.store.sqlite_policies import SqlitePolicyStore
from tests.support.policy_store_contracts import statement
from tests.support.store_contracts import make_alias, make_provisioned, make_version


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "state.db"


@pytest.fixture
def functions(db_path: Path) -> Iterator[SqliteFunctionStore]:
    store = SqliteFunctionStore(db_path)
    yield store
    store.close()


@pytest.fixture
def aliases(db_path: Path) -> Iterator[SqliteAliasStore]:
    store = SqliteAliasStore(db_path)
    yield store
    store.close()


@pytest.fixture
def provisioned(db_path: Path) -> Iterator[SqliteProvisionedStore]:
    store = SqliteProvisionedStore(db_path)
    yield store
    store.close()


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of our own, behind the stores' backs."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _bytes_on_disk(directory: Path) -> bytes:
    """Every file of the directory (database, WAL, shared memory, key), joined."""
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def _rows(path: Path, table: str, name_column: str, name: str) -> int:
    with raw(path) as conn:
        [[count]] = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {name_column} = ?", (name,))
    return int(count)


# sealed environments ----------------------------------------------------------------------


def test_a_published_environment_is_sealed_on_disk_and_reads_back(
    db_path: Path, functions: SqliteFunctionStore
) -> None:
    value = f"s3cr3t-{secrets.token_hex(8)}"
    functions.create_function(make_version("fn"))
    published = make_version("fn", version="1", environment={"DB_PASSWORD": value})
    functions.publish_version(published)
    assert value.encode() not in _bytes_on_disk(db_path.parent)
    assert functions.get_version("fn", "1") == published
    assert functions.list_versions("fn", after=LATEST, limit=5) == [published]
    with raw(db_path) as conn:
        [[text]] = conn.execute("SELECT record FROM function_versions WHERE version = '1'")
    stored = json.loads(text)
    assert stored["format"] == 2 and "environment" not in stored


def test_a_sealed_environment_moved_to_another_version_does_not_open(
    db_path: Path, functions: SqliteFunctionStore
) -> None:
    functions.create_function(make_version("fn", environment={"K": "of $LATEST"}))
    functions.publish_version(make_version("fn", version="1"))
    with raw(db_path) as conn:
        [[latest]] = conn.execute("SELECT record FROM function_versions WHERE version = '$LATEST'")
        [[one]] = conn.execute("SELECT record FROM function_versions WHERE version = '1'")
        moved = json.loads(one)
        moved["environment_sealed"] = json.loads(latest)["environment_sealed"]
        conn.execute("UPDATE function_versions SET record = ? WHERE version = '1'",
                     (json.dumps(moved),))
    with pytest.raises(SealedSecretError):
        functions.get_version("fn", "1")


# the file ---------------------------------------------------------------------------------


def test_everything_survives_close_and_reopen(db_path: Path) -> None:
    functions = SqliteFunctionStore(db_path)
    aliases, provisioned = SqliteAliasStore(db_path), SqliteProvisionedStore(db_path)
    functions.create_function(make_version("fn"))
    one = make_version("fn", version="1", description="v1")
    functions.publish_version(one)
    functions.publish_version(make_version("fn", version="2"))
    functions.delete_version("fn", "2")
    functions.put_tags("fn", {"team": "core"})
    functions.put_reserved_concurrency("fn", 4)
    alias = make_alias("fn", "live", additional_weights={"2": 0.3})
    aliases.create_alias(alias)
    config = make_provisioned("fn", "live", 3)
    provisioned.put_provisioned(config)
    for store in (functions, aliases, provisioned):
        store.close()

    functions = SqliteFunctionStore(db_path)
    aliases, provisioned = SqliteAliasStore(db_path), SqliteProvisionedStore(db_path)
    try:
        assert functions.get_version("fn", "1") == one
        assert functions.last_version_number("fn") == 2
        assert functions.get_tags("fn") == {"team": "core"}
        assert functions.reserved_concurrency() == {"fn": 4}
        assert aliases.list_aliases("fn") == [alias]
        assert provisioned.list_provisioned() == [config]
    finally:
        for store in (functions, aliases, provisioned):
            store.close()


def test_deleting_a_function_leaves_no_row_of_it(
    db_path: Path,
    functions: SqliteFunctionStore,
    aliases: SqliteAliasStore,
    provisioned: SqliteProvisionedStore,
) -> None:
    for name in ("fn", "kept"):
        functions.create_function(make_version(name))
        functions.publish_version(make_version(name, version="1"))
        functions.put_tags(name, {"k": "v"})
        functions.put_reserved_concurrency(name, 2)
        aliases.create_alias(make_alias(name, "live"))
        provisioned.put_provisioned(make_provisioned(name, "live"))
    assert functions.delete_function("fn") is True
    for table in ("function_versions", "functions"):
        assert _rows(db_path, table, "name", "fn") == 0
    for table in ("function_aliases", "provisioned_concurrency"):
        assert _rows(db_path, table, "function_name", "fn") == 0
        assert _rows(db_path, table, "function_name", "kept") == 1
    assert _rows(db_path, "function_versions", "name", "kept") == 2


def test_an_alias_is_stored_as_explicit_json(
    db_path: Path, functions: SqliteFunctionStore, aliases: SqliteAliasStore
) -> None:
    functions.create_function(make_version("fn"))
    alias = make_alias("fn", "live", function_version="1", description="d",
                       additional_weights={"2": 0.25})
    aliases.create_alias(alias)
    with raw(db_path) as conn:
        [[revision, text]] = conn.execute("SELECT revision_id, record FROM function_aliases")
    assert revision == alias.revision_id
    assert json.loads(text) == {
        "format": 1,
        "function_name": "fn",
        "name": "live",
        "function_version": "1",
        "revision_id": alias.revision_id,
        "description": "d",
        "additional_weights": {"2": 0.25},
    }


@pytest.mark.parametrize(
    "record",
    ["not json", "[]", '{"format": 99}', '{"format": 1, "name": "live"}',
     '{"format": 1, "function_name": "fn", "name": "live", "function_version": "1",'
     ' "revision_id": "r", "description": "", "additional_weights": {"2": "half"}}'],
)
def test_a_corrupt_alias_raises_store_error(
    db_path: Path, functions: SqliteFunctionStore, aliases: SqliteAliasStore, record: str
) -> None:
    functions.create_function(make_version("fn"))
    aliases.create_alias(make_alias("fn", "live"))
    with raw(db_path) as conn:
        conn.execute("UPDATE function_aliases SET record = ?", (record,))
    with pytest.raises(StoreError, match="alias"):
        aliases.get_alias("fn", "live")
    with pytest.raises(StoreError):
        aliases.list_aliases("fn")


@pytest.mark.parametrize("tags", ["not json", "[]", '{"k": 1}'])
def test_corrupt_tags_raise_store_error(
    db_path: Path, functions: SqliteFunctionStore, tags: str
) -> None:
    functions.create_function(make_version("fn"))
    with raw(db_path) as conn:
        conn.execute("UPDATE functions SET tags = ?", (tags,))
    with pytest.raises(StoreError, match="corrupt tags"):
        functions.get_tags("fn")


def test_a_corrupt_provisioned_configuration_raises_store_error(
    db_path: Path, functions: SqliteFunctionStore, provisioned: SqliteProvisionedStore
) -> None:
    functions.create_function(make_version("fn"))
    provisioned.put_provisioned(make_provisioned("fn", "1"))
    with raw(db_path) as conn:
        conn.execute("UPDATE provisioned_concurrency SET last_modified = 'yesterday'")
    with pytest.raises(StoreError, match="corrupt provisioned"):
        provisioned.get_provisioned("fn", "1")


def test_a_naive_provisioned_last_modified_is_refused_before_writing(
    functions: SqliteFunctionStore, provisioned: SqliteProvisionedStore
) -> None:
    functions.create_function(make_version("fn"))
    with pytest.raises(ValueError):
        provisioned.put_provisioned(make_provisioned("fn", last_modified=datetime(2024, 1, 1)))
    assert provisioned.list_provisioned() == []


def test_the_schema_refuses_a_negative_reserved_concurrency(
    db_path: Path, functions: SqliteFunctionStore
) -> None:
    functions.create_function(make_version("fn"))
    with raw(db_path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE functions SET reserved_concurrency = -1")


# a file of schema 3 -----------------------------------------------------------------------


def _write_schema_3_file(db_path: Path) -> dict[str, object]:
    """A file as the strato of schema 3 left it: two functions, a policy, and (as no strato
    of schema 3 wrote, but a file may hold) a row of a published version 2. Returns what
    the rows hold."""
    SqliteDatabase(db_path, migrations=MIGRATIONS[:3]).close()
    box = SecretBox(master_key(db_path.parent / MASTER_KEY_FILE))
    latest = make_version("fn", environment={"K": "v"})
    published = make_version("fn", version="2", description="two")
    plain = make_version("plain")
    statements = (statement("s3"),)
    with raw(db_path) as conn:
        conn.execute("INSERT INTO functions (name) VALUES ('fn'), ('plain')")
        for record in (latest, published, plain):
            text = json.dumps(encode_function_version(record, box), sort_keys=True)
            conn.execute(
                "INSERT INTO function_versions (name, version, revision_id, code_sha256, record)"
                " VALUES (?, ?, ?, ?, ?)",
                (record.name, record.version, record.revision_id, record.code.sha256_hex, text),
            )
        conn.execute("INSERT INTO function_policies VALUES ('fn', '', 'rev-1', ?)",
                     (encode_statements(statements),))
    return {"latest": latest, "published": published, "plain": plain, "statements": statements}


def test_a_schema_3_file_keeps_its_data_when_migrated(db_path: Path) -> None:
    before = _write_schema_3_file(db_path)
    functions = SqliteFunctionStore(db_path)
    aliases, policies = SqliteAliasStore(db_path), SqlitePolicyStore(db_path)
    try:
        with raw(db_path) as conn:
            [[schema]] = conn.execute("SELECT MAX(version) FROM schema_version")
        assert schema == len(MIGRATIONS) >= 4
        assert functions.get_version("fn", LATEST) == before["latest"]
        assert functions.get_version("fn", "2") == before["published"]
        assert functions.get_version("plain", LATEST) == before["plain"]
        assert [v.version for v in functions.list_versions("fn", after=None, limit=9)] == [
            LATEST, "2",
        ]
        assert functions.last_version_number("fn") == 2  # never 1 or 2 again
        assert functions.last_version_number("plain") == 0
        assert functions.get_tags("fn") == {}
        assert functions.reserved_concurrency() == {}
        policy = policies.get_policy("fn", None)
        assert policy is not None and policy.statements == before["statements"]
        assert aliases.list_aliases("fn") == []
        functions.publish_version(make_version("fn", version="3"))
        aliases.create_alias(make_alias("fn", "live", function_version="3"))
        assert functions.last_version_number("fn") == 3
    finally:
        for store in (functions, aliases, policies):
            store.close()
