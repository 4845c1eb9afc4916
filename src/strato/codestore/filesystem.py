"""The code store on a local file system (contract in ``codestore.base``).

Layout under ``root`` (created on first write, so a refused package leaves ``root`` as it
was)::

    blobs/<sha256hex>.zip    the package's bytes, as uploaded (0444)
    trees/<sha256hex>/       its files, unpacked: 0555 directories and executables, 0444 others
    merged/<key>/            several packages merged in order (a version's layers, ``merge``);
                             ``key`` is the sha256 hex of their sha256 hexes, one per line
    merged/<key>.layers      those sha256 hexes (what GC reads)
    blobs/.tmp-*, trees/.tmp-*, merged/.tmp-*   work in progress; removed by GC once an hour old

A blob is written to a temporary file in ``blobs/``, fsynced and renamed into place. A tree is
extracted into ``trees/.tmp-<random>/`` and renamed into place; if another process renamed
its own copy first, ours is discarded. Within one process, a lock per package makes callers
of ``unpacked`` wait for the first one instead of extracting the same package again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from strato.codestore.merge import merge_trees, seal_directories
from strato.codestore.zipcheck import (
    EntryKind,
    UnzippedBudget,
    ZipManifest,
    iter_content,
    read_manifest,
    validate_zip,
)
from strato.domain.errors import LambdaApiError
from strato.domain.models import CodeRef
from strato.errors import CodeStoreError

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 3600.0


class FilesystemCodeStore:
    """Packages under ``root``. Safe to use from several threads and processes at once,
    except that ``collect_garbage`` must not remove a package that is being stored or run:
    the caller's ``keep`` must name every package in use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs"
        self._trees = root / "trees"
        self._merged = root / "merged"
        self._locks_guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def put_zip(self, data: bytes) -> CodeRef:
        """Validate ``data`` (``zipcheck.validate_zip``: it raises the AWS errors) and store
        it. Idempotent: the same bytes give the same ref and are written once."""
        validate_zip(data)
        sha256_hex = hashlib.sha256(data).hexdigest()
        path = self._blobs / f"{sha256_hex}.zip"
        if not (path.is_file() and path.stat().st_size == len(data)):
            self._blobs.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, data)
        return CodeRef(sha256_hex=sha256_hex, size=len(data))

    def zip_path(self, ref: CodeRef) -> Path:
        path = self._blobs / f"{_checked_sha(ref)}.zip"
        if not path.is_file():
            raise CodeStoreError(f"package {ref.sha256_hex} is not in {self._blobs}")
        return path

    def unpacked(self, ref: CodeRef) -> Path:
        """``trees/<sha>``, extracted from the blob on first use. Raises CodeStoreError if the
        blob is missing, does not match its hash, or cannot be unpacked."""
        tree = self._trees / _checked_sha(ref)
        if tree.is_dir():
            return tree
        with self._lock_for(ref.sha256_hex):
            if tree.is_dir():
                return tree
            data = self.zip_path(ref).read_bytes()
            if hashlib.sha256(data).hexdigest() != ref.sha256_hex:
                raise CodeStoreError(f"package {ref.sha256_hex} does not match its hash")
            try:
                manifest = read_manifest(data)
            except LambdaApiError as e:
                raise CodeStoreError(f"package {ref.sha256_hex}: {e.message}") from e
            self._trees.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self._trees))
            try:
                _extract(data, manifest, scratch)
            except BaseException as e:
                _remove_tree(scratch)
                if isinstance(e, LambdaApiError):
                    raise CodeStoreError(f"package {ref.sha256_hex}: {e.message}") from e
                if isinstance(e, OSError):
                    raise CodeStoreError(f"could not unpack {ref.sha256_hex}: {e}") from e
                raise
            try:
                os.rename(scratch, tree)
            except OSError as e:
                _remove_tree(scratch)
                if not tree.is_dir():  # not a lost race: something else is wrong
                    raise CodeStoreError(f"could not move {scratch} to {tree}: {e}") from e
            else:
                _fsync_directory(self._trees)
            return tree

    def unzipped_size(self, ref: CodeRef) -> int:
        try:
            return read_manifest(self.zip_path(ref).read_bytes()).declared_size
        except LambdaApiError as e:
            raise CodeStoreError(f"package {ref.sha256_hex}: {e.message}") from e

    def merged(self, refs: Sequence[CodeRef]) -> Path:
        """``merged/<key>``, built from the packages' trees on first use (see the module
        docstring); safe under concurrent callers like ``unpacked``."""
        shas = [_checked_sha(ref) for ref in refs]
        key = hashlib.sha256("\n".join(shas).encode()).hexdigest()
        tree = self._merged / key
        if tree.is_dir():
            return tree
        sources = [self.unpacked(ref) for ref in refs]
        with self._lock_for(key):
            if tree.is_dir():
                return tree
            self._merged.mkdir(parents=True, exist_ok=True)
            _write_atomically(self._merged / f"{key}.layers", "\n".join(shas).encode())
            scratch = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self._merged))
            try:
                merge_trees(sources, scratch)
                os.rename(scratch, tree)
            except BaseException as e:
                _remove_tree(scratch)
                if isinstance(e, OSError) and tree.is_dir():
                    return tree  # another process renamed its copy first
                if isinstance(e, OSError):
                    raise CodeStoreError(f"could not move {scratch} to {tree}: {e}") from e
                raise
            _fsync_directory(self._merged)
            return tree

    def collect_garbage(self, keep: set[str]) -> int:
        """Remove blobs and trees not in ``keep`` and work in progress older than an hour;
        returns how many packages (distinct hashes) lost a blob or a tree."""
        removed: set[str] = set()
        for directory, suffix in ((self._blobs, ".zip"), (self._trees, "")):
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if path.name.startswith(_TMP_PREFIX):
                    if time.time() - path.lstat().st_mtime > _STALE_TMP_SECONDS:
                        _remove_tree(path)
                    continue
                sha = path.name.removesuffix(suffix)
                if path.name != sha + suffix or not _SHA256_HEX.fullmatch(sha) or sha in keep:
                    continue
                with self._lock_for(sha):
                    _remove_tree(path)
                removed.add(sha)
        self._collect_merged(keep)
        return len(removed)

    def _collect_merged(self, keep: set[str]) -> None:
        """Remove merged trees made of a package not in ``keep`` (and stale work)."""
        if not self._merged.is_dir():
            return
        for path in self._merged.iterdir():
            if path.name.startswith(_TMP_PREFIX):
                if time.time() - path.lstat().st_mtime > _STALE_TMP_SECONDS:
                    _remove_tree(path)
                continue
            if not _SHA256_HEX.fullmatch(path.name):
                continue
            listing = self._merged / f"{path.name}.layers"
            try:
                parts = set(listing.read_text().split())
            except OSError:
                parts = set()
            if parts and parts <= keep:
                continue
            with self._lock_for(path.name):
                _remove_tree(path)
                with contextlib.suppress(FileNotFoundError):
                    listing.unlink()

    def _lock_for(self, sha256_hex: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(sha256_hex, threading.Lock())


def _checked_sha(ref: CodeRef) -> str:
    """``ref.sha256_hex``, once sure it is one (it becomes part of a path)."""
    if not _SHA256_HEX.fullmatch(ref.sha256_hex):
        raise CodeStoreError(f"not a sha256 hex digest: {ref.sha256_hex!r}")
    return ref.sha256_hex


def _extract(data: bytes, manifest: ZipManifest, scratch: Path) -> None:
    """Write the package's files under ``scratch``: directories, then files (counting real
    bytes), then links, so that nothing is ever written through a link; then make it all
    read-only. Every destination's directory is checked to resolve inside ``scratch``."""
    base = os.path.realpath(scratch)
    budget = UnzippedBudget()
    by_kind = {kind: [e for e in manifest.entries if e.kind is kind] for kind in EntryKind}
    for entry in by_kind[EntryKind.DIRECTORY]:
        os.makedirs(_inside(base, entry.path), exist_ok=True)
    for entry in by_kind[EntryKind.FILE]:
        target = _inside(base, entry.path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(target, flags, 0o600), "wb") as out:
            for chunk in iter_content(data, entry):
                budget.consume(len(chunk))
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())  # the tree is renamed into place only once durable
            os.fchmod(out.fileno(), 0o555 if entry.executable else 0o444)
    links = by_kind[EntryKind.SYMLINK]
    for entry in links:
        target = _inside(base, entry.path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(entry.link_target or "", target)
    for entry in links:  # zipcheck proved this; the file system confirms it
        resolved = os.path.realpath(os.path.join(base, *entry.path.split("/")))
        if not _is_within(base, resolved):
            raise CodeStoreError(f"link {entry.path} resolves outside the package: {resolved}")
    seal_directories(base)


def _inside(base: str, relative: str) -> str:
    """``base/relative``, refusing it unless its directory resolves inside ``base``."""
    target = os.path.join(base, *relative.split("/"))
    if not _is_within(base, os.path.realpath(os.path.dirname(target))):
        raise CodeStoreError(f"{relative} would be written outside the package")
    return target


def _is_within(base: str, path: str) -> bool:
    return path == base or path.startswith(base + os.sep)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, scratch = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".zip", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(scratch, 0o444)
        os.replace(scratch, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):  # cleanup; the original error propagates
            os.unlink(scratch)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    """Remove a file or a read-only tree (directories are made writable first)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if not path.is_dir():
        return
    for dirpath, dirnames, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    shutil.rmtree(path)
