"""Environment variables at rest: the master key file, and a SQLite file that never holds a
variable in plaintext (new records, records an older strato wrote, and their leftovers)."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from strato.domain.models import LATEST
from strato.errors import ConfigError, SealedSecretError, StoreError
from strato.store.codec import PLAINTEXT_FORMAT, encode_function_version
from strato.store.secretbox import KEY_BYTES, MASTER_KEY_FILE, SecretBox, master_key
from strato.store.sqlite import SqliteFunctionStore
from strato.store.sqlite_db import SqliteDatabase
from tests.support.store_contracts import make_version, run_threads

# the master key file ----------------------------------------------------------------------


def test_the_key_is_created_once_with_mode_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / MASTER_KEY_FILE
    previous = os.umask(0)
    try:
        key = master_key(path)
    finally:
        os.umask(previous)
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert len(key) == KEY_BYTES and path.read_bytes() == key
    assert master_key(path) == key
    assert [p.name for p in tmp_path.iterdir()] == [MASTER_KEY_FILE]  # no temporary left


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    run_threads(8, lambda _: keys.append(master_key(tmp_path / MASTER_KEY_FILE)))
    assert len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [MASTER_KEY_FILE]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o602, 0o700 | 0o004])
def test_a_key_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / MASTER_KEY_FILE
    master_key(path)
    path.chmod(mode)
    with pytest.raises(ConfigError, match=f"mode {mode:04o}.*must be 0600"):
        master_key(path)


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_a_key_of_the_wrong_length_is_refused(tmp_path: Path, length: int) -> None:
    path = tmp_path / MASTER_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"k" * length)
    os.close(fd)
    with pytest.raises(ConfigError, match=f"{length} bytes, not 32"):
        master_key(path)
    assert path.read_bytes() == b"k" * length  # never replaced


def test_a_key_that_is_a_symlink_or_a_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.key"
    master_key(real)
    (tmp_path / MASTER_KEY_FILE).symlink_to(real)
    with pytest.raises(ConfigError, match="cannot read"):
        master_key(tmp_path / MASTER_KEY_FILE)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / MASTER_KEY_FILE).mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a regular file"):
        master_key(tmp_path / "dir" / MASTER_KEY_FILE)


def test_a_key_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot create"):
        master_key(tmp_path / "missing-dir" / MASTER_KEY_FILE)


# the SQLite file --------------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "state.db"


def _bytes_on_disk(directory: Path) -> bytes:
    """Every file of the directory (database, WAL, shared memory, anything else), joined."""
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def test_a_stored_variable_is_nowhere_in_the_files_and_reads_back(db_path: Path) -> None:
    value = f"s3cr3t-{secrets.token_hex(8)}"
    record = make_version("fn", environment={"DB_PASSWORD": value})
    store = SqliteFunctionStore(db_path)
    try:
        store.create_function(record)
        assert value.encode() not in _bytes_on_disk(db_path.parent)  # database and WAL, open
        assert store.get_version("fn", LATEST) == record
        changed = record.replace(environment={"DB_PASSWORD": value + "-2"}, revision_id="r2")
        store.put_version(changed, expected_revision=record.revision_id)
        assert value.encode() not in _bytes_on_disk(db_path.parent)
    finally:
        store.close()
    assert value.encode() not in _bytes_on_disk(db_path.parent)  # after the last checkpoint
    reopened = SqliteFunctionStore(db_path)
    try:
        assert reopened.get_version("fn", LATEST) == changed
        assert reopened.list_latest(after=None, limit=10) == [changed]
    finally:
        reopened.close()
    assert stat.S_IMODE((db_path.parent / MASTER_KEY_FILE).stat().st_mode) == 0o600


def test_a_store_given_a_box_uses_it_and_no_key_file(db_path: Path) -> None:
    box = SecretBox(secrets.token_bytes(KEY_BYTES))
    record = make_version("fn", environment={"K": "v"})
    store = SqliteFunctionStore(db_path, box=box)
    store.create_function(record)
    store.close()
    assert not (db_path.parent / MASTER_KEY_FILE).exists()
    reopened = SqliteFunctionStore(db_path, box=box)
    try:
        assert reopened.get_version("fn", LATEST) == record
    finally:
        reopened.close()


def test_another_master_key_cannot_read_the_variables(db_path: Path) -> None:
    store = SqliteFunctionStore(db_path)
    store.create_function(make_version("fn", environment={"K": "v"}))
    store.close()
    stranger = SqliteFunctionStore(db_path, box=SecretBox(secrets.token_bytes(KEY_BYTES)))
    try:
        with pytest.raises(SealedSecretError, match="fn:\\$LATEST does not open"):
            stranger.get_version("fn", LATEST)
    finally:
        stranger.close()


def test_a_ciphertext_copied_between_functions_is_refused(db_path: Path) -> None:
    store = SqliteFunctionStore(db_path)
    try:
        store.create_function(make_version("a", environment={"K": "secret of a"}))
        store.create_function(make_version("b"))
        with raw(db_path) as conn:
            [[text_a]] = conn.execute("SELECT record FROM function_versions WHERE name = 'a'")
            [[text_b]] = conn.execute("SELECT record FROM function_versions WHERE name = 'b'")
            record_b = json.loads(text_b)
            record_b["environment_sealed"] = json.loads(text_a)["environment_sealed"]
            conn.execute("UPDATE function_versions SET record = ? WHERE name = 'b'",
                         (json.dumps(record_b),))
        with pytest.raises(SealedSecretError):
            store.get_version("b", LATEST)
        with pytest.raises(SealedSecretError):
            store.list_latest(after=None, limit=10)
    finally:
        store.close()


# records an older strato wrote in plaintext -------------------------------------------------


def _plaintext_record(record_json: dict[str, object], environment: dict[str, str]) -> str:
    """The record as format 1 wrote it: the variables as a plain object."""
    legacy = {k: v for k, v in record_json.items() if k != "environment_sealed"}
    legacy.update(format=PLAINTEXT_FORMAT, environment=environment)
    return json.dumps(legacy, separators=(",", ":"), sort_keys=True)


def _write_like_an_older_strato(db_path: Path, names_and_values: dict[str, list[str]],
                                delete: tuple[str, ...] = ()) -> dict[str, str]:
    """Rows of format 1; each function's variable takes each value in turn (an update), then
    the functions in ``delete`` are deleted. ``secure_delete`` is off, as in many builds of
    SQLite, so the file also holds plaintext in free space. Returns the final value of each
    function that is left."""
    box = SecretBox(secrets.token_bytes(KEY_BYTES))  # only to build the other fields
    SqliteDatabase(db_path).close()
    final = {}
    with raw(db_path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA secure_delete = OFF")
        for name, values in names_and_values.items():
            record = make_version(name)
            fields = encode_function_version(record, box)
            conn.execute("INSERT INTO functions (name) VALUES (?)", (name,))
            conn.execute(
                "INSERT INTO function_versions (name, version, revision_id, code_sha256, record)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, LATEST, record.revision_id, record.code.sha256_hex,
                 _plaintext_record(fields, {"SECRET": values[0]})),
            )
            for value in values[1:]:
                conn.execute("UPDATE function_versions SET record = ? WHERE name = ?",
                             (_plaintext_record(fields, {"SECRET": value}), name))
            final[name] = values[-1]
        for name in delete:
            conn.execute("DELETE FROM function_versions WHERE name = ?", (name,))
            conn.execute("DELETE FROM functions WHERE name = ?", (name,))
            del final[name]
    return final


def test_opening_seals_plaintext_records_and_scrubs_their_leftovers(db_path: Path) -> None:
    big = "B" * 9000  # longer than a page: the record spills into overflow pages
    values = {
        "small": [f"old-small-{secrets.token_hex(6)}", f"new-small-{secrets.token_hex(6)}"],
        "large": [f"old-large-{secrets.token_hex(6)}{big}", f"new-large-{secrets.token_hex(6)}{big}"],
        "plain": [f"only-{secrets.token_hex(6)}"],
        "deleted": [f"gone-{secrets.token_hex(6)}|" * 3000],  # more freed pages than are reused
    }
    final = _write_like_an_older_strato(db_path, values, delete=("deleted",))
    everything = [v.encode()[:30] for vs in values.values() for v in vs]
    before = _bytes_on_disk(db_path.parent)
    assert all(v.encode()[:30] in before for v in final.values())
    assert any(v.encode()[:30] in before for v in values["deleted"])  # leftovers to scrub

    store = SqliteFunctionStore(db_path)
    try:
        on_disk = _bytes_on_disk(db_path.parent)
        assert [v for v in everything if v in on_disk] == []
        for name, value in final.items():
            got = store.get_version(name, LATEST)
            assert got is not None and dict(got.environment) == {"SECRET": value}
        with raw(db_path) as conn:
            formats = {row[0] for row in conn.execute(
                "SELECT json_extract(record, '$.format') FROM function_versions")}
        assert formats == {2}
    finally:
        store.close()
    assert [v for v in everything if v in _bytes_on_disk(db_path.parent)] == []


def test_sealing_on_open_is_idempotent(db_path: Path) -> None:
    final = _write_like_an_older_strato(db_path, {"fn": ["v1"]})
    for _ in range(3):
        store = SqliteFunctionStore(db_path)
        try:
            got = store.get_version("fn", LATEST)
            assert got is not None and dict(got.environment) == {"SECRET": final["fn"]}
        finally:
            store.close()


def test_a_corrupt_plaintext_record_stops_the_store_and_seals_nothing(db_path: Path) -> None:
    _write_like_an_older_strato(db_path, {"good": ["kept-plain"]})
    with raw(db_path) as conn:
        conn.execute("INSERT INTO functions (name) VALUES ('bad')")
        conn.execute("INSERT INTO function_versions VALUES ('bad', ?, 'r', 'x', ?)",
                     (LATEST, json.dumps({"format": PLAINTEXT_FORMAT})))
    with pytest.raises(StoreError, match="corrupt function record"):
        SqliteFunctionStore(db_path)
    with raw(db_path) as conn:
        formats = {row[0] for row in conn.execute(
            "SELECT json_extract(record, '$.format') FROM function_versions")}
    assert formats == {PLAINTEXT_FORMAT}
