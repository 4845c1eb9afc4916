"""Validation of a deployment package (a zip, given as bytes) before anything is written.

``validate_zip`` refuses what AWS refuses, with AWS's texts where AWS has one ("Lambda
quotas", "Deployment packages" in the Lambda developer guide):

- more than 52,428,800 bytes zipped: RequestEntityTooLargeException;
- not a zip, corrupt (truncated, bad CRC, inconsistent sizes), encrypted, or compressed with
  anything but stored/deflate: InvalidParameterValueException "Could not unzip ...";
- more than 262,144,000 bytes unzipped, by the sizes the zip declares *and* by the bytes its
  entries really inflate to (a zip bomb declares small sizes);
- entries that could land outside the package root: absolute paths, drive letters, ``..``,
  symbolic links to absolute paths or out of the root (following links through links),
  entries inside a symbolic link, duplicates, devices. AWS documents no text for these.

Every entry's content is read through ``iter_content``, which inflates the raw deflate stream
itself: it counts what the stream really produces, where ``zipfile`` would stop at the
declared size. The unpacker (``codestore.filesystem``) reads through the same function.
"""

from __future__ import annotations

import io
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum

from strato.domain.errors import InvalidParameterValueException, RequestEntityTooLargeException
from strato.domain.limits import UNZIPPED_CODE_MAX_BYTES, ZIPPED_CODE_MAX_BYTES

COULD_NOT_UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
ZIPPED_TOO_LARGE = f"Zipped size must be smaller than {ZIPPED_CODE_MAX_BYTES} bytes"
UNZIPPED_TOO_LARGE = f"Unzipped size must be smaller than {UNZIPPED_CODE_MAX_BYTES} bytes"

_CHUNK = 256 * 1024
_LINK_TARGET_MAX = 4095  # PATH_MAX - 1
_NAME_MAX = 255  # bytes of one path component on Linux file systems
_LINK_HOPS_MAX = 40  # Linux's limit on symbolic links followed in one lookup
_DRIVE = re.compile(r"^[A-Za-z]:")
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length


class EntryKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"


@dataclass(frozen=True)
class _Member:
    """Where an entry's bytes are in the zip, as its central directory says."""

    header_offset: int
    method: int
    compressed_size: int
    crc: int


@dataclass(frozen=True)
class ZipEntry:
    """One entry of a validated package.

    ``path`` is relative, ``/``-separated, without ``.`` or empty components. ``mode`` holds
    the Unix permission bits of the entry, or None when the zip carries no Unix attributes
    (the unpacker decides what such files get).
    """

    name: str  # as written in the zip, for messages
    path: str
    kind: EntryKind
    mode: int | None
    size: int  # as declared
    member: _Member = field(repr=False, compare=False)
    link_target: str | None = None

    @property
    def executable(self) -> bool:
        return self.mode is not None and bool(self.mode & 0o111)


@dataclass(frozen=True)
class ZipManifest:
    entries: tuple[ZipEntry, ...]
    declared_size: int


class UnzippedBudget:
    """Counts real unzipped bytes; raises the AWS error once they pass ``limit``."""

    def __init__(self, limit: int = UNZIPPED_CODE_MAX_BYTES) -> None:
        self.limit = limit
        self.used = 0

    def consume(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise InvalidParameterValueException(UNZIPPED_TOO_LARGE)


def validate_zip(data: bytes) -> ZipManifest:
    """Check ``data`` completely, reading every entry; the package's manifest if it is fit.

    Pure: touches nothing but ``data``. Raises InvalidParameterValueException or
    RequestEntityTooLargeException as described in the module docstring.
    """
    if len(data) > ZIPPED_CODE_MAX_BYTES:
        raise RequestEntityTooLargeException(ZIPPED_TOO_LARGE)
    manifest = read_manifest(data)
    budget = UnzippedBudget()
    for entry in manifest.entries:
        for chunk in iter_content(data, entry):
            budget.consume(len(chunk))
    return manifest


def read_manifest(data: bytes) -> ZipManifest:
    """Every check but inflating the files: the zip's structure, names, declared sizes and
    symbolic links (whose targets it reads). ``validate_zip`` adds the real byte count."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise InvalidParameterValueException(COULD_NOT_UNZIP) from e
    declared = sum(info.file_size for info in infos)
    if declared > UNZIPPED_CODE_MAX_BYTES:
        raise InvalidParameterValueException(UNZIPPED_TOO_LARGE)
    entries = [entry for entry in map(_entry, infos) if entry is not None]
    _check_layout(entries)
    links = {entry.path: entry for entry in entries if entry.kind is EntryKind.SYMLINK}
    targets = {path: _read_link(data, entry) for path, entry in links.items()}
    for path, target in targets.items():
        _check_link(links[path].name, path, target, targets)
    entries = [replace(e, link_target=targets.get(e.path)) for e in entries]
    return ZipManifest(entries=tuple(entries), declared_size=declared)


def iter_content(data: bytes, entry: ZipEntry) -> Iterator[bytes]:
    """The real bytes of a file or link entry, in chunks; nothing for a directory.

    Raises InvalidParameterValueException "Could not unzip ..." when the stream is corrupt or
    does not match the declared size and CRC; that is found at the end, so a caller that
    writes the chunks somewhere must discard them if this raises.
    """
    if entry.kind is EntryKind.DIRECTORY:
        return
    member = entry.member
    header = data[member.header_offset : member.header_offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size:
        raise InvalidParameterValueException(COULD_NOT_UNZIP)
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    begin = member.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    end = begin + member.compressed_size
    if signature != b"PK\x03\x04" or end > len(data):
        raise InvalidParameterValueException(COULD_NOT_UNZIP)
    raw = memoryview(data)[begin:end]
    crc = total = 0
    try:
        for chunk in _inflate(raw) if member.method == zipfile.ZIP_DEFLATED else _stored(raw):
            crc = zlib.crc32(chunk, crc)
            total += len(chunk)
            yield chunk
    except zlib.error as e:
        raise InvalidParameterValueException(COULD_NOT_UNZIP) from e
    if total != entry.size or crc != member.crc:
        raise InvalidParameterValueException(COULD_NOT_UNZIP)


def _stored(raw: memoryview) -> Iterator[bytes]:
    for start in range(0, len(raw), _CHUNK):
        yield bytes(raw[start : start + _CHUNK])


def _inflate(raw: memoryview) -> Iterator[bytes]:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    for start in range(0, len(raw), _CHUNK):
        pending: bytes | memoryview = raw[start : start + _CHUNK]
        while not inflater.eof:
            # max_length bounds memory: a bomb is inflated a chunk at a time, and output
            # still inside zlib is drained by calling again until nothing comes out.
            out = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            if out:
                yield out
            elif not pending:
                break
            else:  # neither output nor progress: zlib would loop forever on this input
                raise InvalidParameterValueException(COULD_NOT_UNZIP)
        if inflater.eof:
            return
    if not inflater.eof:
        raise InvalidParameterValueException(COULD_NOT_UNZIP)  # the stream was cut short


def _unsafe(name: str, why: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(
        f"Invalid deployment package: the entry '{name}' {why}. Every file of a package must "
        "stay inside the package's root directory."
    )


def _entry(info: zipfile.ZipInfo) -> ZipEntry | None:
    """The entry for ``info``, or None for an entry naming the root directory itself."""
    name = info.filename
    if "\x00" in name:
        raise _unsafe(name, "has a NUL character in its name")
    if name.startswith(("/", "\\")):
        raise _unsafe(name, "has an absolute path")
    if _DRIVE.match(name):
        raise _unsafe(name, "has a drive letter in its path")
    if ".." in re.split(r"[/\\]", name):
        raise _unsafe(name, "has a '..' component in its path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(len(part.encode()) > _NAME_MAX for part in parts):
        raise _unsafe(name, f"has a path component longer than {_NAME_MAX} bytes")
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED,
                                                          zipfile.ZIP_DEFLATED):
        raise InvalidParameterValueException(COULD_NOT_UNZIP)  # encrypted, or bzip2/lzma/...
    unix = info.external_attr >> 16
    if info.is_dir() or stat.S_ISDIR(unix):
        kind = EntryKind.DIRECTORY
    elif stat.S_ISLNK(unix):
        kind = EntryKind.SYMLINK
    elif stat.S_IFMT(unix) in (0, stat.S_IFREG):
        kind = EntryKind.FILE
    else:
        raise _unsafe(name, "is a device, FIFO or socket, not a file, directory or link")
    if not parts:
        if kind is EntryKind.DIRECTORY:
            return None
        raise _unsafe(name, "has an empty path")
    member = _Member(info.header_offset, info.compress_type, info.compress_size, info.CRC)
    return ZipEntry(name, "/".join(parts), kind, stat.S_IMODE(unix) or None, info.file_size,
                    member)


def _check_layout(entries: list[ZipEntry]) -> None:
    """No two entries for one path (directories excepted), no entry below a file or link."""
    kinds: dict[str, EntryKind] = {}
    for entry in entries:
        seen = kinds.get(entry.path)
        both_directories = seen is EntryKind.DIRECTORY and entry.kind is EntryKind.DIRECTORY
        if seen is not None and not both_directories:
            raise _unsafe(entry.name, "appears more than once in the package")
        kinds[entry.path] = entry.kind
    for entry in entries:
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            kind = kinds.get(parent)
            if kind is EntryKind.SYMLINK:
                raise _unsafe(entry.name, f"is inside the symbolic link '{parent}'")
            if kind is EntryKind.FILE:
                raise _unsafe(entry.name, f"is inside '{parent}', which is a file")


def _read_link(data: bytes, entry: ZipEntry) -> str:
    content = bytearray()
    for chunk in iter_content(data, entry):
        content += chunk
        if len(content) > _LINK_TARGET_MAX:
            raise _unsafe(entry.name, "is a symbolic link with a target that is too long")
    try:
        target = content.decode()
    except UnicodeDecodeError as e:
        raise _unsafe(entry.name, "is a symbolic link whose target is not UTF-8") from e
    if not target or "\x00" in target:
        raise _unsafe(entry.name, "is a symbolic link with an empty or invalid target")
    return target


def _check_link(name: str, path: str, target: str, targets: dict[str, str]) -> None:
    """Resolve ``target`` as the kernel would, from the link's directory, following the
    package's other links; refuse it if it is absolute or climbs above the package root."""
    if target.startswith(("/", "\\")) or _DRIVE.match(target):
        raise _unsafe(name, f"is a symbolic link to the absolute path '{target}'")
    here = path.split("/")[:-1]
    pending = target.split("/")
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not here:
                raise _unsafe(name, f"is a symbolic link to '{target}', outside the package")
            here.pop()
            continue
        here.append(part)
        inner = targets.get("/".join(here))
        if inner is None:
            continue
        hops += 1
        if hops > _LINK_HOPS_MAX:
            raise _unsafe(name, "is a loop of symbolic links (or a chain of more than 40)")
        if inner.startswith(("/", "\\")) or _DRIVE.match(inner):
            raise _unsafe(name, f"is a symbolic link to '{target}', outside the package")
        here.pop()
        pending[:0] = inner.split("/")
