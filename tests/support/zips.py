"""Deployment packages for tests: well-formed ones built with zipfile, and hand-made liars."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One member of a test zip. ``mode`` None writes no Unix attributes (as DOS tools do)."""

    name: str
    data: bytes = b""
    mode: int | None = 0o644
    kind: int = stat.S_IFREG


def file(name: str, data: bytes = b"", mode: int | None = 0o644) -> Entry:
    return Entry(name, data, mode)


def directory(name: str) -> Entry:
    return Entry(name.rstrip("/") + "/", b"", 0o755, stat.S_IFDIR)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, target.encode(), 0o777, stat.S_IFLNK)


def build_zip(*entries: Entry, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            if entry.mode is None:
                info.create_system = 0
                info.external_attr = 0
            else:
                info.create_system = 3
                info.external_attr = (entry.kind | entry.mode) << 16
            archive.writestr(info, entry.data)
            if entry.mode is None:  # writestr gives attribute-less entries 0600; undo that
                info.external_attr = 0
    return buffer.getvalue()


@dataclass(frozen=True)
class RawMember:
    """An entry of a hand-made zip: its headers say exactly this, true or not."""

    name: str
    payload: bytes
    file_size: int
    crc: int
    method: int = zipfile.ZIP_DEFLATED
    flags: int = 0
    mode: int = stat.S_IFREG | 0o644


def handmade_zip(*members: RawMember) -> bytes:
    """A zip written byte by byte (zipfile would refuse to write a lie)."""
    body, central = b"", b""
    for m in members:
        name = m.name.encode()
        offset = len(body)
        body += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, m.flags, m.method, 0, 0x21, m.crc,
            len(m.payload), m.file_size, len(name), 0,
        ) + name + m.payload
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", (3 << 8) | 20, 20, m.flags, m.method, 0, 0x21,
            m.crc, len(m.payload), m.file_size, len(name), 0, 0, 0, 0, m.mode << 16, offset,
        ) + name
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body),
        0,
    )
    return body + central + end


def deflated_zeros(megabytes: int) -> bytes:
    """A raw deflate stream of ``megabytes`` MiB of zeros, made in microseconds: after a full
    flush the compressor starts afresh, so every MiB compresses to the same block."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * megabytes + compressor.flush()


def zip_bomb(real_megabytes: int, declared_size: int) -> bytes:
    """A zip whose one entry declares ``declared_size`` bytes but inflates to far more."""
    return handmade_zip(
        RawMember(
            "payload.bin",
            deflated_zeros(real_megabytes),
            file_size=declared_size,
            crc=zlib.crc32(bytes(declared_size)),
        )
    )


def with_crc_corrupted(data: bytes, content: bytes) -> bytes:
    """``data`` (a zip with a STORED entry holding ``content``) with that content altered."""
    assert data.count(content) == 1
    return data.replace(content, bytes([content[0] ^ 0xFF]) + content[1:])
