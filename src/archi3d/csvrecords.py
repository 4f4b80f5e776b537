"""Where the records of CSV bytes start and end, and where a quoted field that never closes opens."""

from __future__ import annotations

import csv
import io
from array import array
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from archi3d.errors import Problem

__all__ = ["DEFAULT_CHUNK", "split_records", "unclosed_quote"]

DEFAULT_CHUNK = 1 << 23
"""Bytes scanned at a time when looking for newlines and quotes."""


def _positions(view: npt.NDArray[np.uint8], byte: int, chunk: int) -> npt.NDArray[np.int64]:
    """Offsets of every `byte` in `view`, found chunk by chunk so no file-sized mask is ever held."""
    found = [np.flatnonzero(view[at : at + chunk] == byte) + at for at in range(0, len(view), chunk)]
    return np.concatenate(found).astype(np.int64) if found else np.zeros(0, dtype=np.int64)


def split_records(
    data: bytes, offset: int, *, chunk: int = DEFAULT_CHUNK
) -> tuple[array[int], array[int], array[int], int | None]:
    """Start/end offsets and first line of every record from `offset` on; blank lines between records are not records.

    A record ends at a newline outside quotes: quotes are balanced when their count is even.
    Returns (starts, ends, lines, line of an unterminated quoted field or None); lines count from
    `offset`. `chunk`: bytes scanned at a time (memory use, not the result, depends on it).
    """
    view = np.frombuffer(data, dtype=np.uint8)[offset:]
    if not len(view):
        return array("q"), array("q"), array("q"), None
    newlines = _positions(view, ord("\n"), chunk)
    piece_start = np.concatenate(([0], newlines + 1))
    piece_end = np.concatenate((newlines + 1, [len(view)]))
    # Quotes before each piece's end; an even count there means the piece ends outside any quoted field.
    closed = np.searchsorted(_positions(view, ord('"'), chunk), piece_end) % 2 == 0
    at_start = np.concatenate(([True], closed[:-1]))
    length = piece_end - piece_start - np.concatenate((np.ones(len(newlines), dtype=np.int64), [0]))
    blank = at_start & (length == 0)
    for k in np.flatnonzero(at_start & (length > 0) & (view[np.minimum(piece_start, len(view) - 1)] == ord("\r"))):
        blank[k] = not data[offset + piece_start[k] : offset + piece_start[k] + length[k]].strip(b"\r")
    first = np.flatnonzero(at_start & ~blank)
    last = np.flatnonzero(closed & ~blank)
    unterminated = int(first[-1]) + 1 if len(first) > len(last) else None
    first = first[: len(last)]
    return _offsets(piece_start[first] + offset), _offsets(piece_end[last] + offset), _offsets(first + 1), unterminated


def _offsets(values: npt.NDArray[np.int64]) -> array[int]:
    # Machine integers: a list would hold one Python int object per record and column of offsets.
    return array("q", values.astype(np.int64).tobytes())


def unclosed_quote(data: bytes, offset: int, name: str) -> Problem:
    """Where the quoted field that never closes opens: the first record that does not parse strictly.

    Quotes pair up across the rest of the file once one is missing, so the record left open at the
    end of the file is not where the mistake is; a strict reader stops at the first record that a
    stray quote spoils (or that it stretched over several lines with the wrong number of fields).
    """
    text = data[offset:].decode("utf-8", errors="replace")
    physical = io.StringIO(text, newline="").readlines()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] = []
    ended = 0  # the physical line the last good record ended on
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error:
            return _open_field(physical, ended, header, name)
        if not header:
            header = record
        elif reader.line_num - ended > 1 and len(record) != len(header):
            return _open_field(physical, ended, header, name)
        ended = reader.line_num
    return Problem(name, ended + 1, None, "quoted field never closed (unbalanced '\"')")


def _open_field(physical: Sequence[str], before: int, header: Sequence[str], name: str) -> Problem:
    """The field of line `before + 1` whose quote is still open at the end of that line."""
    line = physical[before] if before < len(physical) else ""
    field, opened, inside = 1, 1, False
    for char in line.rstrip("\r\n"):
        if char == '"':
            inside = not inside
            opened = field if inside else opened
        elif char == "," and not inside:
            field += 1
    column = header[opened - 1] if 0 < opened <= len(header) and before else f"field {opened}"
    return Problem(name, before + 1, column, "quoted field opens here and is never closed (unbalanced '\"')", opened)
