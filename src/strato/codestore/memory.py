"""An in-memory ``CodeStore`` (contract in ``codestore.base``), for fast tests of the services.

Packages are validated exactly as the file system store validates them (``zipcheck``), so a
bad package is refused with AWS's errors; the bytes and the unpacked files stay in dicts.
Nothing is written to disk: the paths ``zip_path`` and ``unpacked`` return name no file (a
test reads the contents with ``zip_bytes`` and ``files``). Calls are atomic under one lock.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

from strato.codestore.zipcheck import EntryKind, iter_content, read_manifest, validate_zip
from strato.domain.errors import LambdaApiError
from strato.domain.models import CodeRef
from strato.errors import CodeStoreError

#: The root of the paths this store names (no such directory exists).
ROOT = Path("/memory-codestore")


class MemoryCodeStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}
        self._trees: dict[str, dict[str, bytes]] = {}
        #: Packages whose ``unpacked`` fails (with CodeStoreError), as a full disk would.
        self.broken: set[str] = set()

    def put_zip(self, data: bytes) -> CodeRef:
        """Validate ``data`` (``zipcheck.validate_zip`` raises the AWS errors) and keep it.
        Idempotent: the same bytes give the same ref."""
        validate_zip(data)
        sha256_hex = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._blobs[sha256_hex] = data
        return CodeRef(sha256_hex=sha256_hex, size=len(data))

    def zip_path(self, ref: CodeRef) -> Path:
        """A name for the package (no file). Raises CodeStoreError if it is not stored."""
        self.zip_bytes(ref)
        return ROOT / "blobs" / f"{ref.sha256_hex}.zip"

    def zip_bytes(self, ref: CodeRef) -> bytes:
        """The package's bytes. Raises CodeStoreError if it is not stored."""
        with self._lock:
            data = self._blobs.get(ref.sha256_hex)
        if data is None:
            raise CodeStoreError(f"package {ref.sha256_hex} is not in the memory code store")
        return data

    def unpacked(self, ref: CodeRef) -> Path:
        """A name for the package's tree, unpacked into ``files`` on first use. Raises
        CodeStoreError if the package is missing, in ``broken``, or cannot be unpacked."""
        if ref.sha256_hex in self.broken:
            raise CodeStoreError(f"could not unpack {ref.sha256_hex}: no space left on device")
        data = self.zip_bytes(ref)
        with self._lock:
            if ref.sha256_hex not in self._trees:
                try:
                    manifest = read_manifest(data)
                    self._trees[ref.sha256_hex] = {
                        entry.path: b"".join(iter_content(data, entry))
                        for entry in manifest.entries if entry.kind is EntryKind.FILE
                    }
                except LambdaApiError as exc:
                    raise CodeStoreError(f"package {ref.sha256_hex}: {exc.message}") from exc
        return ROOT / "trees" / ref.sha256_hex

    def files(self, ref: CodeRef) -> dict[str, bytes]:
        """The unpacked files of a package by path (empty before ``unpacked``)."""
        with self._lock:
            return dict(self._trees.get(ref.sha256_hex, {}))

    def unzipped_size(self, ref: CodeRef) -> int:
        try:
            return read_manifest(self.zip_bytes(ref)).declared_size
        except LambdaApiError as exc:
            raise CodeStoreError(f"package {ref.sha256_hex}: {exc.message}") from exc

    def merged(self, refs: Sequence[CodeRef]) -> Path:
        """A name for the packages merged in order (no directory); their files, later ones
        winning, are in ``merged_files``."""
        for ref in refs:
            self.unpacked(ref)
        key = hashlib.sha256("\n".join(ref.sha256_hex for ref in refs).encode()).hexdigest()
        return ROOT / "merged" / key

    def merged_files(self, refs: Sequence[CodeRef]) -> dict[str, bytes]:
        """The files of ``refs`` merged as ``merged`` does (only files: a later package's
        file replaces an earlier one's at the same path)."""
        files: dict[str, bytes] = {}
        for ref in refs:
            files.update(self.files(ref))
        return files

    def collect_garbage(self, keep: set[str]) -> int:
        with self._lock:
            gone = (set(self._blobs) | set(self._trees)) - keep
            for sha256_hex in gone:
                self._blobs.pop(sha256_hex, None)
                self._trees.pop(sha256_hex, None)
            return len(gone)
