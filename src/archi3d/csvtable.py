"""Lossless CSV tables: every cell is text, and rows nobody changes keep their exact bytes."""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from archi3d.errors import InputError, Problem, TableError

__all__ = [
    "BOM",
    "Chunk",
    "CsvTable",
    "encode_row",
    "read_csv_table",
    "release_unused_memory",
    "render_chunks",
    "render_table",
]

BOM = b"\xef\xbb\xbf"
_TEXT = {pa.string(): pd.ArrowDtype(pa.string())}
Validator = Callable[["CsvTable"], None]


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


_CHUNK = 1 << 23


def _positions(view: npt.NDArray[np.uint8], byte: int) -> npt.NDArray[np.int64]:
    """Offsets of every `byte` in `view`, found chunk by chunk so no file-sized mask is ever held."""
    found = [np.flatnonzero(view[at : at + _CHUNK] == byte) + at for at in range(0, len(view), _CHUNK)]
    return np.concatenate(found).astype(np.int64) if found else np.zeros(0, dtype=np.int64)


def _split_records(data: bytes, offset: int) -> tuple[array[int], array[int], array[int], int | None]:
    """Start/end offsets and first line of every record; blank lines between records are not records.

    A record ends at a newline outside quotes: quotes are balanced when their count is even.
    Returns (starts, ends, lines, line of an unterminated quoted field or None).
    """
    view = np.frombuffer(data, dtype=np.uint8)[offset:]
    if not len(view):
        return array("q"), array("q"), array("q"), None
    newlines = _positions(view, ord("\n"))
    piece_start = np.concatenate(([0], newlines + 1))
    piece_end = np.concatenate((newlines + 1, [len(view)]))
    # Quotes before each piece's end; an even count there means the piece ends outside any quoted field.
    closed = np.searchsorted(_positions(view, ord('"')), piece_end) % 2 == 0
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


def _decode(raw: bytes, file: str, line: int, problems: list[Problem]) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        field = before.count(b",") + 1
        row_line = line + before.count(b"\n")
        problems.append(Problem(file, row_line, f"field {field}", f"bytes that are not UTF-8 at byte {error.start}"))
        return None


def _parse_record(text: str) -> list[str]:
    return next(csv.reader([text], strict=True), [])


@attrs.frozen(eq=False)
class CsvTable:
    """A parsed CSV file: its bytes, its layout, and its cells as a text-only DataFrame.

    Row i of `frame` is the record data[starts[i]:ends[i]], which begins on line lines[i].
    """

    path: Path
    data: bytes
    bom: bool
    newline: bytes
    header: tuple[str, ...]
    header_end: int
    starts: Sequence[int]
    ends: Sequence[int]
    lines: Sequence[int]
    cells: pa.Table
    """The cells as text, one contiguous arrow column per column, named as in the header (fast to
    take rows from); only the columns asked for when the table was read for some of them."""
    frame: pd.DataFrame = attrs.field(init=False)
    """The same cells as a DataFrame (sharing the arrow memory), for the schema."""

    def __attrs_post_init__(self) -> None:
        frame = self.cells.to_pandas(types_mapper=_TEXT.get)  # pandas' own str dtype would copy to large_string
        object.__setattr__(self, "frame", frame)

    @property
    def name(self) -> str:
        return str(self.path)

    def __len__(self) -> int:
        return len(self.starts)

    def raw(self, index: int) -> bytes:
        return self.data[self.starts[index] : self.ends[index]]

    def column(self, name: str) -> list[str]:
        return self._cells_of(name).to_pylist() if name in self.header else [""] * len(self)

    def record(self, index: int) -> dict[str, str]:
        """Every cell of one row, parsed from its bytes (whichever columns were read)."""
        text = self.raw(index).decode("utf-8")
        return dict(zip(self.header, _parse_record(text.rstrip("\r\n") if text.endswith("\n") else text)))

    def rows(self, indices: Sequence[int]) -> list[dict[str, str]]:
        """Cells of the given rows, as {column: text}."""
        if not indices:
            return []
        columns = self.columns(indices, self.header)
        return [dict(zip(self.header, values)) for values in zip(*columns.values())]

    def rows_where(self, name: str, value: str) -> list[int]:
        """Indices of the rows whose `name` cell is `value`."""
        if name not in self.header:
            return []
        hits: list[int] = pc.indices_nonzero(pc.equal(self._cells_of(name), value)).to_pylist()
        return hits

    def columns(self, indices: Sequence[int], names: Sequence[str]) -> dict[str, list[str]]:
        """Text of the given columns in the given rows; "" throughout for a column the table lacks."""
        part = self._take(indices, names)
        present = set(part.column_names)
        columns = {name: part.column(name).to_pylist() if name in present else [""] * len(indices) for name in names}
        del part
        release_unused_memory()
        return columns

    def folders_under(self, indices: Sequence[int], names: Sequence[str], prefix: str) -> set[str]:
        """The first component after `prefix` of every path in the given cells (backslashes read as slashes)."""
        folders: set[str] = set()
        taken = pa.array(indices, type=pa.int64())
        for name in names:
            if name in self.header:
                paths = pc.replace_substring(self._cells_of(name).take(taken), "\\", "/")
                rest = pc.utf8_slice_codeunits(pc.filter(paths, pc.starts_with(paths, prefix)), len(prefix))
                folders.update(pc.unique(pc.list_element(pc.split_pattern(rest, "/", max_splits=1), 0)).to_pylist())
        release_unused_memory()
        return folders

    def _cells_of(self, name: str) -> pa.ChunkedArray:
        return self.cells.column(name)

    def _take(self, indices: Sequence[int], names: Sequence[str]) -> pa.Table:
        # Through arrow: several times faster than pandas' take + tolist on text columns.
        header = set(self.header)
        return self.cells.select([name for name in names if name in header]).take(pa.array(indices, type=pa.int64()))

    def without_cells(self) -> CsvTable:
        """This table's bytes and record layout only, enough to render it; the parsed cells are let go."""
        return attrs.evolve(self, cells=_cells_from_rows(self.header, []))

    @classmethod
    def empty(cls, path: Path, header: Sequence[str], newline: bytes = b"\n", bom: bool = True) -> CsvTable:
        head = encode_row(list(header), newline)
        data = (BOM if bom else b"") + head
        return cls(path, data, bom, newline, tuple(header), len(data), [], [], [], _cells_from_rows(header, []))


def release_unused_memory() -> None:
    """Hand back to the system what arrow's allocator keeps of freed tables (it would stay in the process)."""
    pa.default_memory_pool().release_unused()


def _cells_from_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> pa.Table:
    columns = list(zip(*rows)) if rows else [() for _ in header]
    return pa.table([pa.array(list(values), type=pa.string()) for values in columns], names=list(header))


def _cells_with_pyarrow(data: bytes, header_end: int, header: Sequence[str], wanted: Sequence[str]) -> pa.Table | None:
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
    columns: list[pa.ChunkedArray | pa.Array] = table.columns
    del table
    for at, column in enumerate(columns):
        columns[at] = column.combine_chunks()
        del column
    release_unused_memory()
    return pa.table(columns, names=list(wanted))


def read_csv_table(
    path: str | os.PathLike[str], validate: Validator | None = None, columns: Sequence[str] | None = None
) -> CsvTable:
    """Parse `path` without inferring any type; raise TableError naming line and field of every problem.

    `columns`: parse only these columns' cells (the others are still checked to be well-formed
    records; `record` gives every cell of a row).
    """
    path = Path(path)
    name = str(path)
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise InputError(f"{name}: is {kind}, expected a CSV file")
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{name}: cannot be read ({error.strerror or error})") from error
    bom = data.startswith(BOM)
    offset = len(BOM) if bom else 0
    starts, ends, lines, unterminated = _split_records(data, offset)
    if unterminated is not None:
        raise TableError([_unclosed_quote(data, offset, name)])
    if not starts:
        raise TableError.single(name, 1, None, "empty file: expected a header line")
    problems: list[Problem] = []
    header_raw = data[starts[0] : ends[0]]
    header_text = _decode(header_raw, name, lines[0], problems)
    if header_text is None:
        raise TableError(problems)
    try:
        header = tuple(_parse_record(header_text.rstrip("\r\n")))
    except csv.Error as error:
        raise TableError.single(name, lines[0], None, f"malformed CSV header ({error})") from None
    problems = _header_problems(header, name, lines[0])
    if problems:
        raise TableError(problems)
    newline = b"\r\n" if header_raw.endswith(b"\r\n") else b"\n"
    header_end = ends[0]
    starts, ends, lines = starts[1:], ends[1:], lines[1:]
    chosen = set(header if columns is None else columns)
    wanted = [c for c in header if c in chosen]

    cells = _cells_with_pyarrow(data, header_end, header, wanted) if starts else None
    if cells is None or len(cells) != len(starts):
        rows = _parse_records(data, starts, ends, lines, header, name)
        at = [header.index(c) for c in wanted] if columns is not None else None
        cells = _cells_from_rows(wanted, rows if at is None else [[row[i] for i in at] for row in rows])
    table = CsvTable(path, data, bom, newline, header, header_end, starts, ends, lines, cells)
    if validate is not None:
        validate(table)
    return table


def _header_problems(header: Sequence[str], name: str, line: int) -> list[Problem]:
    """Column names that cannot be told apart or would be taken for new columns."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, title in enumerate(header, 1):
        if not title:
            problems.append(Problem(name, line, f"field {number}", "empty column name in the header"))
        elif title.startswith("\ufeff"):
            problems.append(
                Problem(name, line, repr(title), "column name starts with U+FEFF: the file begins with a doubled BOM")
            )
        elif title in seen:
            problems.append(Problem(name, line, title, "column name appears more than once in the header"))
        seen.add(title)
    return problems


def _parse_records(
    data: bytes, starts: Sequence[int], ends: Sequence[int], lines: Sequence[int], header: Sequence[str], name: str
) -> list[list[str]]:
    """Every record's cells, by the csv module; TableError naming the line of every bad record."""
    problems: list[Problem] = []
    rows: list[list[str]] = []
    for start, end, line in zip(starts, ends, lines):
        text = _decode(data[start:end], name, line, problems)
        if text is None:
            continue
        try:
            cells = _parse_record(text.rstrip("\r\n") if text.endswith("\n") else text)
        except csv.Error as error:
            problems.append(Problem(name, line, None, f"malformed CSV record ({error})"))
            continue
        if len(cells) != len(header):
            problems.append(Problem(name, line, None, f"expected {len(header)} fields as in the header, found {len(cells)}"))
            continue
        rows.append(cells)
    if problems:
        raise TableError(problems)
    return rows


def _unclosed_quote(data: bytes, offset: int, name: str) -> Problem:
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
    return Problem(name, before + 1, column, "quoted field opens here and is never closed (unbalanced '\"')")


def _widen(record: bytes, extra: bytes) -> bytes:
    """Add empty cells before the record's line ending."""
    body = record.rstrip(b"\r\n")
    return body + extra + record[len(body) :]


Chunk = bytes | memoryview


def render_chunks(
    table: CsvTable,
    replaced: Mapping[int, bytes],
    appended: Iterable[bytes] = (),
    added_columns: Sequence[str] = (),
) -> list[Chunk]:
    """render_table's bytes as a list of pieces, the unchanged ones views of the file's bytes (no copy)."""
    data = memoryview(table.data)
    header: Chunk = data[: table.header_end]
    if added_columns:
        header = _widen(bytes(header), encode_row(["", *added_columns], b""))
    parts = [header]
    cursor = table.header_end
    if added_columns:
        pad = b"," * len(added_columns)
        for index, (start, end) in enumerate(zip(table.starts, table.ends)):
            parts.append(data[cursor:start])
            parts.append(replaced[index] if index in replaced else _widen(bytes(data[start:end]), pad))
            cursor = end
    else:
        for index in sorted(replaced):
            parts.append(data[cursor : table.starts[index]])
            parts.append(replaced[index])
            cursor = table.ends[index]
    parts.append(data[cursor:])
    tail = [row for row in appended if row]
    if tail:
        last = next((bytes(part[-1:]) for part in reversed(parts) if len(part)), b"\n")
        if last != b"\n":
            parts.append(table.newline)
        parts.extend(tail)
    return parts


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
