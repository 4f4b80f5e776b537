"""Lossless CSV tables: every cell is text, and rows nobody changes keep their exact bytes."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from archi3d.csvcells import (
    cells_from_rows,
    cells_with_csv_module,
    cells_with_pyarrow,
    decode_record,
    parse_record,
    record_cells,
    release_unused_memory,
)
from archi3d.csvrecords import split_records, unclosed_quote
from archi3d.csvrender import Chunk, encode_row, render_chunks, render_table
from archi3d.errors import InputError, Problem, TableError

__all__ = [
    "BOM",
    "NEW_TABLE_NEWLINE",
    "Chunk",
    "CsvTable",
    "encode_row",
    "parse_csv_table",
    "read_csv_table",
    "release_unused_memory",
    "render_chunks",
    "render_table",
]

BOM = b"\xef\xbb\xbf"
NEW_TABLE_NEWLINE = b"\n"
"""The line ending of a table this package creates."""
_TEXT = {pa.string(): pd.ArrowDtype(pa.string())}
Validator = Callable[["CsvTable"], None]


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
        """Every cell of one row, parsed from its bytes (whichever columns were read); strict CSV, or TableError."""
        try:
            cells = record_cells(self.raw(index).decode("utf-8"))
        except csv.Error as error:
            raise TableError.single(self.name, self.lines[index], None, f"malformed CSV record ({error})") from None
        if len(cells) != len(self.header):
            found = f"expected {len(self.header)} fields as in the header, found {len(cells)}"
            raise TableError.single(self.name, self.lines[index], None, found)
        return dict(zip(self.header, cells))

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
        return attrs.evolve(self, cells=cells_from_rows(self.header, []))

    @classmethod
    def empty(cls, path: Path, header: Sequence[str], newline: bytes = NEW_TABLE_NEWLINE, bom: bool = True) -> CsvTable:
        head = encode_row(list(header), newline)
        data = (BOM if bom else b"") + head
        return cls(path, data, bom, newline, tuple(header), len(data), [], [], [], cells_from_rows(header, []))


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
    return parse_csv_table(path, data, validate, columns)


def parse_csv_table(
    path: Path, data: bytes, validate: Validator | None = None, columns: Sequence[str] | None = None
) -> CsvTable:
    """The table whose file `path` holds `data` (read_csv_table without the read)."""
    name = str(path)
    bom = data.startswith(BOM)
    offset = len(BOM) if bom else 0
    starts, ends, lines, unterminated = split_records(data, offset)
    if unterminated is not None:
        raise TableError([unclosed_quote(data, offset, name)])
    if not starts:
        raise TableError.single(name, 1, None, "empty file: expected a header line")
    problems: list[Problem] = []
    header_raw = data[starts[0] : ends[0]]
    header_text = decode_record(header_raw, name, lines[0], problems)
    if header_text is None:
        raise TableError(problems)
    try:
        header = tuple(parse_record(header_text.rstrip("\r\n")))
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

    cells = cells_with_pyarrow(data, header_end, header, wanted) if starts else None
    if cells is None or len(cells) != len(starts):
        cells = cells_with_csv_module(data, starts, ends, lines, header, wanted, name)
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
            problems.append(Problem(name, line, f"field {number}", "empty column name in the header", number))
        elif title.startswith("\ufeff"):
            problems.append(
                Problem(
                    name,
                    line,
                    repr(title),
                    "column name starts with U+FEFF: the file begins with a doubled BOM",
                    number,
                )
            )
        elif title in seen:
            problems.append(Problem(name, line, title, "column name appears more than once in the header", number))
        seen.add(title)
    return problems
