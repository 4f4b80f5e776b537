"""The cells of CSV records as a text-only arrow table, parsed by pyarrow or, record by record, by the csv module."""

from __future__ import annotations

import csv
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as pacsv

from archi3d.errors import Problem, TableError

__all__ = [
    "cells_from_rows",
    "cells_with_csv_module",
    "cells_with_pyarrow",
    "decode_record",
    "parse_record",
    "record_cells",
    "release_unused_memory",
]


def release_unused_memory() -> None:
    """Hand back to the system what arrow's allocator keeps of freed tables (it would stay in the process)."""
    pa.default_memory_pool().release_unused()


def decode_record(raw: bytes, file: str, line: int, problems: list[Problem]) -> str | None:
    """The record's text; None, with a problem naming line and field, when its bytes are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        field = before.count(b",") + 1
        row_line = line + before.count(b"\n")
        found = f"bytes that are not UTF-8 at byte {error.start}"
        problems.append(Problem(file, row_line, f"field {field}", found, field))
        return None


def parse_record(text: str) -> list[str]:
    """The cells of one record's text (without its line ending), by the csv module in strict mode."""
    return next(csv.reader([text], strict=True), [])


def record_cells(text: str) -> list[str]:
    """The cells of one record's text, with or without its line ending, by the csv module in strict mode."""
    return parse_record(text.rstrip("\r\n") if text.endswith("\n") else text)


def cells_from_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> pa.Table:
    """A table of string columns named `header`, holding `rows`."""
    columns = list(zip(*rows)) if rows else [() for _ in header]
    return pa.table([pa.array(list(values), type=pa.string()) for values in columns], names=list(header))


def cells_with_pyarrow(data: bytes, header_end: int, header: Sequence[str], wanted: Sequence[str]) -> pa.Table | None:
    """The `wanted` columns of the records after `header_end`, parsed by pyarrow; None when pyarrow refuses them.

    pyarrow may also split records differently from the csv module (a bare "\\r" ends a row for it):
    the caller compares the row count with its own record layout.
    """
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)[header_end:]),
            read_options=pacsv.ReadOptions(column_names=list(header), block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in wanted},
                include_columns=list(wanted),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        return None
    # One chunk per column (taking rows from many chunks would concatenate them on every take),
    # merged column by column, each replacing its chunks, so the file's cells are never held twice over.
    columns: list[pa.ChunkedArray | pa.Array] = list(table.columns)
    del table
    for at, column in enumerate(columns):
        if isinstance(column, pa.ChunkedArray):  # every one: table.columns are chunked
            columns[at] = column.combine_chunks()
        del column
    release_unused_memory()
    return pa.table(columns, names=list(wanted))


def cells_with_csv_module(
    data: bytes,
    starts: Sequence[int],
    ends: Sequence[int],
    lines: Sequence[int],
    header: Sequence[str],
    wanted: Sequence[str],
    name: str,
) -> pa.Table:
    """The `wanted` columns of the records data[starts[i]:ends[i]], parsed one by one by the csv module.

    Raises TableError naming the line of every record that is not UTF-8, not well-formed, or not as
    wide as the header.
    """
    rows = _parse_records(data, starts, ends, lines, header, name)
    if list(wanted) != list(header):
        at = [header.index(c) for c in wanted]
        rows = [[row[i] for i in at] for row in rows]
    return cells_from_rows(wanted, rows)


def _parse_records(
    data: bytes, starts: Sequence[int], ends: Sequence[int], lines: Sequence[int], header: Sequence[str], name: str
) -> list[list[str]]:
    """Every record's cells, by the csv module; TableError naming the line of every bad record."""
    problems: list[Problem] = []
    rows: list[list[str]] = []
    for start, end, line in zip(starts, ends, lines):
        text = decode_record(data[start:end], name, line, problems)
        if text is None:
            continue
        try:
            cells = record_cells(text)
        except csv.Error as error:
            problems.append(Problem(name, line, None, f"malformed CSV record ({error})"))
            continue
        if len(cells) != len(header):
            problems.append(
                Problem(name, line, None, f"expected {len(header)} fields as in the header, found {len(cells)}")
            )
            continue
        rows.append(cells)
    if problems:
        raise TableError(problems)
    return rows
