"""The text formats cells and evidence share: ids, ISO 8601 timestamps, numbers, UTC, the PNG signature."""

from __future__ import annotations

import datetime as dt
import re

__all__ = [
    "COUNT",
    "COUNT_PATTERN",
    "ID",
    "ID_PATTERN",
    "NUMBER",
    "NUMBER_PATTERN",
    "PNG_SIGNATURE",
    "SHA256",
    "TIMESTAMP",
    "TIMESTAMP_PATTERN",
    "UTC",
]

UTC = dt.UTC

ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
"""A run_id or job_id: it becomes a path component."""
TIMESTAMP = (
    r"(?:19|2\d)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?)?"
)
"""ISO 8601, years 1900-2999 (what the table accepts; evidence outside counts as no time)."""
NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
COUNT = r"\d+"
"""A size in bytes."""
SHA256 = r"[0-9a-f]{64}"
"""A SHA-256 digest, in lowercase hex as hashlib's hexdigest() writes it."""

ID_PATTERN = re.compile(ID)
TIMESTAMP_PATTERN = re.compile(TIMESTAMP)
NUMBER_PATTERN = re.compile(NUMBER)
COUNT_PATTERN = re.compile(COUNT)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
