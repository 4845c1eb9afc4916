"""validate_zip: what a deployment package must be before strato writes it anywhere."""

from __future__ import annotations

import stat
import zipfile
import zlib

import pytest

from strato.codestore.zipcheck import (
    COULD_NOT_UNZIP,
    UNZIPPED_TOO_LARGE,
    ZIPPED_TOO_LARGE,
    EntryKind,
    validate_zip,
)
from strato.domain.errors import InvalidParameterValueException, RequestEntityTooLargeException
from strato.domain.limits import UNZIPPED_CODE_MAX_BYTES, ZIPPED_CODE_MAX_BYTES
from tests.support.zips import (
    RawMember,
    build_zip,
    deflated_zeros,
    directory,
    file,
    handmade_zip,
    symlink,
    with_crc_corrupted,
    zip_bomb,
)


def test_aws_texts() -> None:
    assert COULD_NOT_UNZIP == (
        "Could not unzip uploaded file. Please check your file, then try to upload again."
    )
    assert ZIPPED_TOO_LARGE == "Zipped size must be smaller than 52428800 bytes"
    assert UNZIPPED_TOO_LARGE == "Unzipped size must be smaller than 262144000 bytes"


def test_a_good_package_yields_its_manifest() -> None:
    data = build_zip(
        directory("lib"),
        file("lib/util.py", b"x = 1\n"),
        file("./app.py", b"def handler(e, c): pass\n"),
        symlink("current", "lib/util.py"),
    )
    manifest = validate_zip(data)
    assert [(e.path, e.kind, e.link_target) for e in manifest.entries] == [
        ("lib", EntryKind.DIRECTORY, None),
        ("lib/util.py", EntryKind.FILE, None),
        ("app.py", EntryKind.FILE, None),
        ("current", EntryKind.SYMLINK, "lib/util.py"),
    ]
    assert manifest.declared_size == 6 + 24 + len("lib/util.py")


def test_an_empty_zip_is_a_package() -> None:
    assert validate_zip(build_zip()).entries == ()


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_modes_keep_the_executable_bit(compression: int) -> None:
    data = build_zip(
        file("bootstrap", b"#!/bin/sh\n", 0o755),
        file("handler.sh", b"echo\n", 0o644),
        file("from-windows.txt", b"hi", None),
        compression=compression,
    )
    entries = {e.path: e for e in validate_zip(data).entries}
    assert (entries["bootstrap"].mode, entries["bootstrap"].executable) == (0o755, True)
    assert (entries["handler.sh"].mode, entries["handler.sh"].executable) == (0o644, False)
    assert (entries["from-windows.txt"].mode, entries["from-windows.txt"].executable) == (
        None,
        False,
    )


def _could_not_unzip(data: bytes) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        validate_zip(data)
    assert caught.value.message == COULD_NOT_UNZIP


@pytest.mark.parametrize("data", [b"", b"hello, world", b"PK\x03\x04" + bytes(40)])
def test_bytes_that_are_no_zip(data: bytes) -> None:
    _could_not_unzip(data)


def test_a_truncated_zip() -> None:
    data = build_zip(file("app.py", b"print('hello')\n" * 100))
    _could_not_unzip(data[: len(data) // 2])


def test_a_zip_cut_inside_its_data() -> None:
    data = build_zip(file("a.bin", bytes(range(256)) * 64, 0o644))
    # Keep the central directory, drop bytes of the entry: offsets now point at garbage.
    _could_not_unzip(data[:40] + data[80:])


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_bad_crc_found_when_reading(compression: int) -> None:
    content = b"hello, world, this is the file content"
    data = build_zip(file("app.py", content), compression=zipfile.ZIP_STORED)
    if compression == zipfile.ZIP_STORED:
        _could_not_unzip(with_crc_corrupted(data, content))
    else:
        compressed = zlib.compress(content)[2:-4]  # raw deflate: no zlib header or trailer
        _could_not_unzip(handmade_zip(RawMember("app.py", compressed, len(content), crc=1)))


def test_a_deflate_stream_cut_short() -> None:
    content = bytes(range(256)) * 100
    compressed = zlib.compress(content)[2:-4]
    _could_not_unzip(
        handmade_zip(RawMember("a", compressed[:-10], len(content), zlib.crc32(content)))
    )


def test_encrypted_and_unsupported_compression_are_refused() -> None:
    content = b"secret"
    crc = zlib.crc32(content)
    _could_not_unzip(handmade_zip(RawMember("a", content, 6, crc, method=0, flags=0x1)))
    _could_not_unzip(handmade_zip(RawMember("a", content, 6, crc, method=zipfile.ZIP_BZIP2)))


def test_more_than_50_mb_zipped_is_too_large() -> None:
    # A valid zip behind 50 MB of padding (zip readers accept leading data): refused for its
    # size, before it is read at all.
    data = bytes(ZIPPED_CODE_MAX_BYTES) + build_zip(file("app.py", b"x"))
    with pytest.raises(RequestEntityTooLargeException) as caught:
        validate_zip(data)
    assert caught.value.message == ZIPPED_TOO_LARGE


def test_padding_below_the_limit_is_fine() -> None:
    assert len(validate_zip(bytes(1000) + build_zip(file("app.py", b"x"))).entries) == 1


def _too_large_unzipped(data: bytes) -> None:
    with pytest.raises(InvalidParameterValueException) as caught:
        validate_zip(data)
    assert caught.value.message == UNZIPPED_TOO_LARGE


def test_declared_sizes_over_250_mb_are_refused_before_reading() -> None:
    _too_large_unzipped(
        handmade_zip(RawMember("big", b"\x03\x00", UNZIPPED_CODE_MAX_BYTES + 1, crc=0))
    )


def test_honest_entries_summing_over_250_mb_are_refused() -> None:
    size = 126 * 1024 * 1024  # two of them are 252 MiB: over 250 MB, each well under
    stream, crc = deflated_zeros(126), zlib.crc32(bytes(size))
    _too_large_unzipped(
        handmade_zip(RawMember("a", stream, size, crc), RawMember("b", stream, size, crc))
    )


def test_a_zip_bomb_that_lies_about_its_size_is_refused_by_its_real_bytes() -> None:
    # Declares 1 KiB, inflates to 300 MiB: only counting real bytes catches it.
    _too_large_unzipped(zip_bomb(real_megabytes=300, declared_size=1024))


def test_a_zip_that_inflates_to_more_than_it_declares_is_corrupt() -> None:
    _could_not_unzip(zip_bomb(real_megabytes=2, declared_size=1024))


def _unsafe(data: bytes, *words: str) -> str:
    with pytest.raises(InvalidParameterValueException) as caught:
        validate_zip(data)
    message = caught.value.message
    assert message != COULD_NOT_UNZIP
    for word in words:
        assert word in message
    return message


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil", "'..'"),
        ("lib/../../evil", "'..'"),
        ("..", "'..'"),
        ("/abs", "absolute"),
        ("/etc/cron.d/evil", "absolute"),
        ("\\windows\\evil", "absolute"),
        ("C:/evil", "drive letter"),
        ("c:\\evil", "drive letter"),
        ("..\\evil", "'..'"),
        ("a\\..\\..\\evil", "'..'"),
    ],
)
def test_entries_that_leave_the_root_are_refused(name: str, why: str) -> None:
    message = _unsafe(build_zip(file("ok.py"), file(name, b"x")), f"'{name}'", why)
    assert "outside" in message or "inside the package's root" in message


def test_a_symlink_to_an_absolute_path_is_refused() -> None:
    _unsafe(build_zip(symlink("passwd", "/etc/passwd")), "'passwd'", "'/etc/passwd'")


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("x", "../../x"),
        ("lib/x", "../../x"),
        ("up", ".."),
        ("lib/deep/x", "../../../etc"),
    ],
)
def test_a_symlink_that_climbs_out_is_refused(name: str, target: str) -> None:
    _unsafe(build_zip(symlink(name, target)), f"'{name}'", f"'{target}'", "outside")


def test_a_symlink_escaping_through_another_symlink_is_refused() -> None:
    # Lexically d/up/.. is d, but d/up is a link to the root, so its '..' leaves the package.
    data = build_zip(symlink("d/up", ".."), symlink("d/escape", "up/.."))
    _unsafe(data, "'d/escape'", "outside")


def test_symlink_loops_are_refused() -> None:
    _unsafe(build_zip(symlink("a", "b"), symlink("b", "a")), "symbolic links")


def test_symlinks_that_stay_inside_are_fine() -> None:
    data = build_zip(
        file("vendor/v1/tool", b"#!/bin/sh\n", 0o755),
        symlink("lib/current", "../vendor/v1"),
        symlink("bin/tool", "../lib/current/tool"),
        symlink("self", "."),
        symlink("dangling", "not/there"),
    )
    targets = {e.path: e.link_target for e in validate_zip(data).entries}
    assert targets["bin/tool"] == "../lib/current/tool"


def test_an_entry_inside_a_symlink_is_refused() -> None:
    data = build_zip(file("vendor/ok", b"x"), symlink("lib", "vendor"), file("lib/evil", b"x"))
    _unsafe(data, "'lib/evil'", "symbolic link 'lib'")


def test_an_entry_below_a_file_is_refused() -> None:
    _unsafe(build_zip(file("a", b"x"), file("a/b", b"y")), "'a/b'")


def test_duplicate_entries_are_refused_but_repeated_directories_are_fine() -> None:
    _unsafe(build_zip(file("app.py", b"1"), file("./app.py", b"2")), "more than once")
    assert len(validate_zip(build_zip(directory("d"), directory("./d"))).entries) == 2


def test_a_device_entry_is_refused() -> None:
    device = RawMember("dev", b"", 0, 0, method=0, mode=stat.S_IFCHR | 0o644)
    _unsafe(handmade_zip(device), "'dev'", "device")
