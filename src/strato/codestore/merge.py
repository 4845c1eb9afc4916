"""Merging unpacked packages into one tree: a function version's layers, as /opt shows them.

Lambda extracts a function's layers into /opt in the order the function lists them, so a later
layer's entry replaces an earlier one's at the same path
(https://docs.aws.amazon.com/lambda/latest/dg/adding-layers.html). ``merge_trees`` builds that
tree from the layers' unpacked trees without copying file contents: files are hard links to
the (read-only, never changed) unpacked files, links are recreated, directories are new.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from strato.errors import CodeStoreError


def merge_trees(sources: Sequence[Path], target: Path) -> None:
    """Merge ``sources`` (unpacked trees) into the empty directory ``target``, later ones
    winning, then make ``target`` read-only (0555 directories). Nothing is ever written
    through a link: an entry whose place holds a link or an entry of another kind replaces
    it. Raises CodeStoreError when the file system refuses, or when a link of the result
    resolves outside ``target``."""
    try:
        for source in sources:
            _merge_directory(str(source), str(target))
        _check_links(os.path.realpath(target))
        seal_directories(str(target))
    except OSError as e:
        raise CodeStoreError(f"could not merge layers into {target}: {e}") from e


def _merge_directory(source: str, target: str) -> None:
    with os.scandir(source) as entries:
        for entry in entries:
            destination = os.path.join(target, entry.name)
            if entry.is_symlink():
                _clear(destination)
                os.symlink(os.readlink(entry.path), destination)
            elif entry.is_dir(follow_symlinks=False):
                if not (os.path.isdir(destination) and not os.path.islink(destination)):
                    _clear(destination)
                    os.mkdir(destination, 0o755)
                _merge_directory(entry.path, destination)
            else:
                _clear(destination)
                try:
                    os.link(entry.path, destination, follow_symlinks=False)
                except OSError:  # another file system, or links refused: copy it then
                    shutil.copy2(entry.path, destination, follow_symlinks=False)


def _clear(path: str) -> None:
    """Remove whatever an earlier layer put at ``path`` (a directory of ours is writable)."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def _check_links(base: str) -> None:
    for dirpath, dirnames, filenames in os.walk(base):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                resolved = os.path.realpath(path)
                if resolved != base and not resolved.startswith(base + os.sep):
                    raise CodeStoreError(f"link {path} resolves outside the layers: {resolved}")


def seal_directories(base: str) -> None:
    """Make ``base`` and every directory below it (not what links point to) read-only and
    traversable by everyone (0555): an unpacked tree is never written again, and the
    environments' uids read it."""
    for dirpath, dirnames, _ in os.walk(base, topdown=False):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o555)
    os.chmod(base, 0o555)
