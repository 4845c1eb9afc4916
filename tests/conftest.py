"""Shared test helpers: building deployment packages in memory."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping


def make_zip(files: Mapping[str, str | bytes], *, modes: Mapping[str, int] | None = None) -> bytes:
    """A zip of ``files`` (name → content); ``modes`` sets Unix permission bits per name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = ((modes or {}).get(name, 0o644) | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()
