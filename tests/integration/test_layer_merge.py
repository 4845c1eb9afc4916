"""Merged layer trees in the file system code store: later layers win, whatever the kinds
of the entries, nothing is written through a link, and GC drops a tree with its packages."""

from __future__ import annotations

import os
from pathlib import Path

from strato.codestore.filesystem import FilesystemCodeStore
from tests.conftest import make_zip


def link_zip(path: str, target: str) -> bytes:
    """A zip holding one symbolic link."""
    import io
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(path)
        info.external_attr = (0o120777) << 16
        archive.writestr(info, target)
    return buffer.getvalue()


def test_later_layers_win(tmp_path: Path) -> None:
    store = FilesystemCodeStore(tmp_path / "code")
    first = store.put_zip(make_zip({"python/a.py": "first", "python/b.py": "first",
                                    "lib": "a file"}))
    second = store.put_zip(make_zip({"python/b.py": "second", "lib/x.so": "dir now"}))
    tree = store.merged([first, second])
    assert (tree / "python" / "a.py").read_text() == "first"
    assert (tree / "python" / "b.py").read_text() == "second"
    assert (tree / "lib" / "x.so").read_text() == "dir now"
    assert store.merged([first, second]) == tree  # made once
    assert store.merged([second, first]) != tree
    assert (store.merged([second, first]) / "lib").is_file()
    assert os.stat(tree).st_mode & 0o777 == 0o555


def test_a_later_directory_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    store = FilesystemCodeStore(tmp_path / "code")
    linked = store.put_zip(link_zip("lib", "bin"))
    real = store.put_zip(make_zip({"lib/x.so": "mine", "bin/tool": "tool"}))
    tree = store.merged([linked, real])
    assert not (tree / "lib").is_symlink()
    assert sorted(os.listdir(tree / "bin")) == ["tool"]


def test_garbage_collection_drops_merged_trees_of_dropped_packages(tmp_path: Path) -> None:
    store = FilesystemCodeStore(tmp_path / "code")
    first = store.put_zip(make_zip({"a": "1"}))
    second = store.put_zip(make_zip({"b": "2"}))
    tree = store.merged([first, second])
    store.collect_garbage({first.sha256_hex, second.sha256_hex})
    assert tree.is_dir()
    store.collect_garbage({first.sha256_hex})
    assert not tree.exists()
