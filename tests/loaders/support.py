"""Helpers for the loader tests: zips built in memory and a look at what a test left on disk."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path


def corrupt_copy(data: bytes) -> bytes:
    """The zip with one byte inside the first sizeable member's compressed data flipped."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = next(i for i in zf.infolist() if i.compress_size > 100)
    # The local header is 30 bytes plus the name and extra fields; hit the middle of the data after it.
    name_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    at = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}
