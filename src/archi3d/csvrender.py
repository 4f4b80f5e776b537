"""CSV output: one row encoded as the csv module writes it, and a table's bytes with rows replaced or added."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archi3d.csvtable import CsvTable

__all__ = ["Chunk", "encode_row", "line_ended", "render_chunks", "render_table", "rendered_header"]

_NEEDS_QUOTES = re.compile(r'[",\r\n]')
_QUOTE_OR_BREAK = re.compile(r'["\r\n]')


def encode_row(cells: Sequence[str], newline: bytes) -> bytes:
    """One CSV record, quoted only where needed (as the csv module's writer does), ending with `newline`."""
    if len(cells) == 1 and not cells[0]:
        return b'""' + newline  # a lone empty field must be quoted, or the record would be a blank line
    text = ",".join(cells)
    # More commas than separators, or any quote or line break: some cell needs quotes.
    if text.count(",") >= len(cells) or _QUOTE_OR_BREAK.search(text) is not None:
        # A cell holding "\r" or "\n" is quoted whatever `newline` the file uses (a bare "\r" left
        # unquoted in an LF file would make a record that no longer parses).
        text = ",".join('"' + c.replace('"', '""') + '"' if _NEEDS_QUOTES.search(c) else c for c in cells)
    return text.encode("utf-8") + newline


def _widen(record: bytes, extra: bytes) -> bytes:
    """Add empty cells before the record's line ending."""
    body = record.rstrip(b"\r\n")
    return body + extra + record[len(body) :]


Chunk = bytes | memoryview


def line_ended(record: bytes, newline: bytes) -> bytes:
    """The record as it is if it ends a line, else with `newline` added (a file's last row may have none)."""
    return record if record.endswith(b"\n") else record + newline


def render_chunks(
    table: CsvTable,
    replaced: Mapping[int, bytes],
    appended: Iterable[bytes] = (),
    added_columns: Sequence[str] = (),
    header: bytes | None = None,
) -> list[Chunk]:
    """render_table's bytes as a list of pieces, the unchanged ones views of the file's bytes (no copy).

    `header`: other bytes for the header (BOM included), when the columns change otherwise.
    """
    data = memoryview(table.data)
    if header is None:
        header = rendered_header(table, added_columns) if added_columns else None
    parts: list[Chunk] = [data[: table.header_end] if header is None else header]
    cursor = table.header_end
    last_row = len(table) - 1

    def replacement(index: int) -> bytes:
        """The row's new text, given a line ending if it has none and another row follows it."""
        text = replaced[index]
        return text if index == last_row or not text else line_ended(text, table.newline)

    if added_columns:
        pad = b"," * len(added_columns)
        for index, (start, end) in enumerate(zip(table.starts, table.ends)):
            parts.append(data[cursor:start])
            parts.append(replacement(index) if index in replaced else _widen(bytes(data[start:end]), pad))
            cursor = end
    else:
        for index in sorted(replaced):
            parts.append(data[cursor : table.starts[index]])
            parts.append(replacement(index))
            cursor = table.ends[index]
    parts.append(data[cursor:])
    tail = [row for row in appended if row]
    if tail:
        last = next((bytes(part[-1:]) for part in reversed(parts) if len(part)), b"\n")
        if last != b"\n":
            parts.append(table.newline)
        parts.extend(tail)
    return parts


def rendered_header(table: CsvTable, added_columns: Sequence[str]) -> bytes:
    """The header's bytes (BOM included) with `added_columns` at its tail."""
    return _widen(table.data[: table.header_end], encode_row(["", *added_columns], b""))


def render_table(
    table: CsvTable,
    replaced: Mapping[int, bytes],
    appended: Iterable[bytes] = (),
    added_columns: Sequence[str] = (),
) -> bytes:
    """The file's bytes with rows replaced (b'' removes one), rows appended and columns added at the tail.

    Everything else, gaps and line endings included, is copied byte for byte.
    """
    return b"".join(render_chunks(table, replaced, appended, added_columns))
