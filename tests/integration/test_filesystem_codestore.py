"""FilesystemCodeStore on a real directory: blobs, unpacked trees, refusals, races, GC."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from strato.codestore.filesystem import FilesystemCodeStore
from strato.domain.errors import LambdaApiError
from strato.domain.limits import ZIPPED_CODE_MAX_BYTES
from strato.domain.models import CodeRef
from strato.errors import CodeStoreError
from tests.support.store_contracts import run_threads
from tests.support.zips import (
    build_zip,
    directory,
    file,
    symlink,
    with_crc_corrupted,
    zip_bomb,
)

PACKAGE = build_zip(
    file("bootstrap", b"#!/bin/sh\necho hi\n", 0o755),
    file("app.py", b"def handler(event, context):\n    return 1\n", 0o644),
    directory("lib"),
    file("lib/util.py", b"X = 1\n", 0o664),
    file("lib/from-dos.txt", b"no unix attributes", None),
    symlink("current", "lib/util.py"),
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "code"


@pytest.fixture
def store(root: Path) -> FilesystemCodeStore:
    return FilesystemCodeStore(root)


def everything_under(path: Path) -> list[Path]:
    return sorted(path.rglob("*")) if path.exists() else []


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_nothing_is_created_until_a_package_is_stored(root: Path) -> None:
    FilesystemCodeStore(root)
    assert not root.exists()


def test_put_stores_the_bytes_under_their_hash(store: FilesystemCodeStore, root: Path) -> None:
    ref = store.put_zip(PACKAGE)
    assert ref == CodeRef(sha256_hex=hashlib.sha256(PACKAGE).hexdigest(), size=len(PACKAGE))
    assert store.zip_path(ref) == root / "blobs" / f"{ref.sha256_hex}.zip"
    assert store.zip_path(ref).read_bytes() == PACKAGE
    assert [p.name for p in (root / "blobs").iterdir()] == [f"{ref.sha256_hex}.zip"]


def test_put_is_idempotent(store: FilesystemCodeStore) -> None:
    first = store.put_zip(PACKAGE)
    inode = store.zip_path(first).stat().st_ino
    assert store.put_zip(PACKAGE) == first
    assert store.zip_path(first).stat().st_ino == inode  # not written again


BAD_PACKAGES = {
    "not a zip": b"this is not a zip file",
    "truncated": PACKAGE[: len(PACKAGE) // 2],
    "bad crc": with_crc_corrupted(
        build_zip(file("a.txt", b"content of a stored file"), compression=0),
        b"content of a stored file",
    ),
    "dot-dot": build_zip(file("../evil", b"x")),
    "absolute": build_zip(file("/abs", b"x")),
    "link to /etc/passwd": build_zip(symlink("passwd", "/etc/passwd")),
    "link climbing out": build_zip(symlink("x", "../../x")),
    "zip bomb": zip_bomb(real_megabytes=300, declared_size=1024),
    "over 50 MB": bytes(ZIPPED_CODE_MAX_BYTES) + PACKAGE,
}


@pytest.mark.parametrize("data", list(BAD_PACKAGES.values()), ids=list(BAD_PACKAGES))
@pytest.mark.parametrize("root_exists", [True, False], ids=["root-exists", "no-root"])
def test_a_refused_package_leaves_no_trace(root: Path, data: bytes, root_exists: bool) -> None:
    if root_exists:
        root.mkdir()
    with pytest.raises(LambdaApiError):
        FilesystemCodeStore(root).put_zip(data)
    assert root.exists() is root_exists
    assert everything_under(root) == []


def test_unpacked_tree_has_the_files_links_and_modes(store: FilesystemCodeStore) -> None:
    tree = store.unpacked(store.put_zip(PACKAGE))
    assert tree.name == hashlib.sha256(PACKAGE).hexdigest()
    assert (tree / "bootstrap").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (tree / "lib" / "util.py").read_bytes() == b"X = 1\n"
    assert mode_of(tree / "bootstrap") == 0o555  # executable stays executable
    assert os.access(tree / "bootstrap", os.X_OK)
    assert mode_of(tree / "app.py") == 0o444
    assert mode_of(tree / "lib" / "util.py") == 0o444
    assert mode_of(tree / "lib" / "from-dos.txt") == 0o444  # no Unix attributes: not exec
    assert mode_of(tree / "lib") == 0o555
    assert mode_of(tree) == 0o555
    assert os.readlink(tree / "current") == "lib/util.py"
    assert (tree / "current").read_bytes() == b"X = 1\n"
    assert sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*")) == [
        "app.py", "bootstrap", "current", "lib", "lib/from-dos.txt", "lib/util.py",
    ]


def test_a_symlinked_directory_inside_the_package_is_recreated(
    store: FilesystemCodeStore,
) -> None:
    data = build_zip(
        file("vendor/v1/tool", b"#!/bin/sh\n", 0o755),
        symlink("lib/current", "../vendor/v1"),
        symlink("bin/tool", "../lib/current/tool"),
    )
    tree = store.unpacked(store.put_zip(data))
    assert (tree / "bin" / "tool").read_bytes() == b"#!/bin/sh\n"
    assert (tree / "lib" / "current").is_symlink()


def test_unpacked_is_idempotent(store: FilesystemCodeStore) -> None:
    ref = store.put_zip(PACKAGE)
    tree = store.unpacked(ref)
    inode = (tree / "app.py").stat().st_ino
    assert store.unpacked(ref) == tree
    assert (tree / "app.py").stat().st_ino == inode


def test_an_empty_package_unpacks_to_an_empty_tree(store: FilesystemCodeStore) -> None:
    tree = store.unpacked(store.put_zip(build_zip()))
    assert tree.is_dir() and list(tree.iterdir()) == []


def _assert_one_tree(root: Path, ref: CodeRef) -> None:
    assert [p.name for p in (root / "trees").iterdir()] == [ref.sha256_hex]


def test_concurrent_unpacked_gives_one_tree(store: FilesystemCodeStore, root: Path) -> None:
    ref = store.put_zip(PACKAGE)
    trees: list[Path] = []
    run_threads(8, lambda _: trees.append(store.unpacked(ref)))
    assert set(trees) == {root / "trees" / ref.sha256_hex}
    _assert_one_tree(root, ref)


def test_racing_stores_on_one_root_give_one_tree(root: Path) -> None:
    # Separate instances share no lock, as separate processes would not: the rename decides.
    ref = FilesystemCodeStore(root).put_zip(PACKAGE)
    stores = [FilesystemCodeStore(root) for _ in range(6)]
    trees: list[Path] = []
    lock = threading.Lock()

    def unpack(index: int) -> None:
        tree = stores[index].unpacked(ref)
        with lock:
            trees.append(tree)

    run_threads(len(stores), unpack)
    assert set(trees) == {root / "trees" / ref.sha256_hex}
    _assert_one_tree(root, ref)
    assert (trees[0] / "app.py").read_bytes().startswith(b"def handler")


def test_a_missing_blob_raises_code_store_error(store: FilesystemCodeStore) -> None:
    ghost = CodeRef(sha256_hex="0" * 64, size=1)
    with pytest.raises(CodeStoreError):
        store.zip_path(ghost)
    with pytest.raises(CodeStoreError):
        store.unpacked(ghost)


@pytest.mark.parametrize("sha", ["../../etc/passwd", "A" * 64, "0" * 63, ""])
def test_a_ref_that_is_no_sha256_is_refused(store: FilesystemCodeStore, sha: str) -> None:
    with pytest.raises(CodeStoreError):
        store.zip_path(CodeRef(sha256_hex=sha, size=1))
    with pytest.raises(CodeStoreError):
        store.unpacked(CodeRef(sha256_hex=sha, size=1))


def test_a_tampered_blob_is_not_unpacked(store: FilesystemCodeStore, root: Path) -> None:
    ref = store.put_zip(PACKAGE)
    blob = store.zip_path(ref)
    blob.chmod(0o644)
    blob.write_bytes(build_zip(file("../evil", b"x")))
    with pytest.raises(CodeStoreError):
        store.unpacked(ref)
    assert not (root / "trees").exists() or list((root / "trees").iterdir()) == []


def test_garbage_collection_keeps_only_what_it_is_told(
    store: FilesystemCodeStore, root: Path
) -> None:
    kept = store.put_zip(PACKAGE)
    unpacked_garbage = store.put_zip(build_zip(file("a.py", b"a")))
    blob_garbage = store.put_zip(build_zip(file("b.py", b"b")))
    store.unpacked(kept)
    store.unpacked(unpacked_garbage)
    stale = root / "trees" / ".tmp-crashed"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub").chmod(0o555)
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = root / "blobs" / ".tmp-in-progress.zip"
    fresh.write_bytes(b"partial")

    assert store.collect_garbage({kept.sha256_hex}) == 2

    assert sorted(p.name for p in (root / "blobs").iterdir()) == sorted(
        [f"{kept.sha256_hex}.zip", fresh.name]
    )
    assert [p.name for p in (root / "trees").iterdir()] == [kept.sha256_hex]
    with pytest.raises(CodeStoreError):
        store.zip_path(blob_garbage)
    assert store.unpacked(kept).joinpath("app.py").is_file()
    assert store.collect_garbage({kept.sha256_hex}) == 0


def test_garbage_collection_of_a_fresh_root_is_a_no_op(root: Path) -> None:
    assert FilesystemCodeStore(root).collect_garbage(set()) == 0
    assert not root.exists()


def test_a_collected_package_can_be_stored_and_unpacked_again(
    store: FilesystemCodeStore,
) -> None:
    ref = store.put_zip(PACKAGE)
    store.unpacked(ref)
    assert store.collect_garbage(set()) == 1
    assert store.put_zip(PACKAGE) == ref
    assert (store.unpacked(ref) / "bootstrap").is_file()
