"""The small files evidence is made of, read boundedly and without blocking: markers, error.txt, file heads."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from pathlib import Path

from archi3d.formats import PNG_SIGNATURE, UTC
from archi3d.model import parse_timestamp

__all__ = [
    "ERROR_LIMIT",
    "TRUNCATED",
    "file_time",
    "is_png",
    "marker_reading",
    "marker_time",
    "read_error_text",
    "read_head",
    "sha256_of",
]

ERROR_LIMIT = 2000
TRUNCATED = " (truncated; see error.txt)"
NOT_JSON = (ValueError, RecursionError)
"""What json.loads raises on text that is not usable JSON."""
_HASH_PIECE = 1 << 20
"""Bytes read at a time when hashing (hashlib.file_digest would zero a buffer of its own for every file)."""
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = dt.datetime(3000, 1, 1, tzinfo=UTC)


def file_time(timestamp: float) -> dt.datetime | None:
    """A file time as UTC, or None when it lies outside the years the table accepts (1900-2999)."""
    try:
        moment = dt.datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if _EARLIEST <= moment < _LATEST else None


def read_head(path: str | Path, limit: int) -> tuple[bytes, int] | None:
    """The first `limit` bytes and the size of a regular file; None if it cannot be read."""
    # O_NONBLOCK: opening a FIFO (or a device) left where a file should be must not hang the scan.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks: list[bytes] = []
        remaining = min(limit, st.st_size) if st.st_size else limit  # 0: size unknown (e.g. /proc)
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks), st.st_size
    except OSError:
        return None
    finally:
        os.close(fd)


def marker_time(path: str | Path) -> dt.datetime | None:
    """The timestamp written inside a marker (reference text or JSON); its mtime when it has none."""
    return marker_reading(path)[0]


def marker_reading(path: str | Path) -> tuple[dt.datetime | None, str]:
    """A marker's time and where it comes from: "written inside", "file time" (none inside), or "unreadable"."""
    head = read_head(path, 4096)
    if head is None:
        return None, "unreadable"
    text = head[0].decode("utf-8", errors="replace").strip()
    stamp = ""
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except NOT_JSON:
            value = None
        stamp = str(value.get("timestamp", "")) if isinstance(value, dict) else ""
    else:
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key.strip().lower() == "timestamp":
                stamp = rest.strip()
                break
    try:
        moment = parse_timestamp(stamp)
    except ValueError:
        moment = None
    if moment is not None:
        return moment, "written inside"
    try:
        return file_time(os.stat(path).st_mtime), "file time"
    except OSError:
        return None, "unreadable"


def read_error_text(path: str | Path) -> str | None:
    """The first ERROR_LIMIT characters of error.txt (bounded read), marked when longer."""
    head = read_head(path, ERROR_LIMIT * 4 + 4)
    if head is None:
        return None
    data, size = head
    text = data.decode("utf-8", errors="replace")
    if len(text) > ERROR_LIMIT or size > len(data):
        return text[:ERROR_LIMIT] + TRUNCATED
    return text


def sha256_of(path: str | Path) -> str | None:
    """The SHA-256 of a regular file, read in pieces (never whole into memory); None if it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.sha256()
        while piece := os.read(fd, _HASH_PIECE):
            digest.update(piece)
        return digest.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def is_png(path: str | Path) -> bool:
    """Whether the file begins with the PNG signature."""
    head = read_head(path, len(PNG_SIGNATURE))
    return head is not None and head[0] == PNG_SIGNATURE
