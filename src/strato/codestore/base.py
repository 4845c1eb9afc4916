"""The code store: deployment packages (zips) by content, and their unpacked trees.

Contracts:

- ``put_zip`` validates a package completely before anything is written; a package that is
  refused leaves no trace. Storing the same bytes twice is a no-op returning the same ref.
- An unpacked tree is created atomically (built aside, then renamed into place) and never
  changed afterwards; several execution environments may read it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from strato.domain.models import CodeRef


class CodeStore(Protocol):
    def put_zip(self, data: bytes) -> CodeRef:
        """Validate and store a zip. Raises the AWS errors AWS gives for a bad package
        (InvalidParameterValueException "Could not unzip uploaded file. ...",
        "Unzipped size must be smaller than 262144000 bytes", RequestEntityTooLargeException
        "Zipped size must be smaller than 52428800 bytes", unsafe entries)."""

    def zip_path(self, ref: CodeRef) -> Path:
        """Where the zip's bytes are (for download through ``Code.Location``).

        Raises CodeStoreError if the blob is missing."""

    def unpacked(self, ref: CodeRef) -> Path:
        """The directory holding the package's files, unpacking it on first use (idempotent,
        safe under concurrent callers)."""

    def unzipped_size(self, ref: CodeRef) -> int:
        """The package's size once unpacked (the sizes its entries declare, which
        ``put_zip`` proved true). Raises CodeStoreError if the blob is missing."""

    def merged(self, refs: Sequence[CodeRef]) -> Path:
        """One directory holding the files of every package in ``refs``, unpacked one over
        the other in order (a later package's entry replaces an earlier one's at the same
        path): a function version's layers as /opt shows them. Made once per sequence
        (atomically, like ``unpacked``) and never changed afterwards. Raises
        CodeStoreError like ``unpacked``."""

    def collect_garbage(self, keep: set[str]) -> int:
        """Delete blobs and trees whose sha256 hex is not in ``keep``, and merged trees
        made of any such package; returns how many packages lost a blob or a tree."""
