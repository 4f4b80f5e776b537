"""Unit tests of the lossless CSV reader/renderer (archi3d.csvtable and its csvrecords, csvcells, csvrender)."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archi3d.csvcells import cells_with_csv_module, cells_with_pyarrow
from archi3d.csvrecords import split_records
from archi3d.csvtable import BOM, CsvTable, encode_row, read_csv_table, render_table
from archi3d.errors import TableError


def _write(tmp_path: Path, data: bytes, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _cells(table: CsvTable) -> list[list[str]]:
    return [[str(v) for v in row] for row in table.frame[list(table.header)].itertuples(index=False, name=None)]


def _problem_lines(error: TableError) -> list[int | None]:
    return [p.line for p in error.problems]


# --- encoding, BOM, line endings ----------------------------------------------------------------------


@pytest.mark.parametrize("bom", [True, False])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_bom_and_newline_are_detected_and_kept(tmp_path: Path, bom: bool, newline: bytes) -> None:
    body = b"id,name" + newline + b"00123,caf\xc3\xa9" + newline + b"12e456789012,x" + newline
    data = (BOM if bom else b"") + body
    table = read_csv_table(_write(tmp_path, data))
    assert table.bom is bom
    assert table.newline == newline
    assert table.header == ("id", "name")  # no BOM character glued to the first name
    assert _cells(table) == [["00123", "café"], ["12e456789012", "x"]]
    assert table.raw(0) == b"00123,caf\xc3\xa9" + newline
    assert table.raw(1) == b"12e456789012,x" + newline
    assert table.data == data
    assert render_table(table, {}) == data


def test_identifiers_stay_text(tmp_path: Path) -> None:
    data = b"job_id,product_id,n\n197260739297,00123,1.50\n12e456789012,007,NaN\nnan,NULL,\n"
    table = read_csv_table(_write(tmp_path, data))
    assert table.column("job_id") == ["197260739297", "12e456789012", "nan"]
    assert table.column("product_id") == ["00123", "007", "NULL"]
    assert table.column("n") == ["1.50", "NaN", ""]
    assert table.column("missing") == ["", "", ""]


# --- quoting, blank lines, last line ----------------------------------------------------------------


def test_quoted_newlines_and_quotes(tmp_path: Path) -> None:
    data = b'a,b\n"x\ny","he said ""hi"", then left"\n"p\r\nq",",\n"\nlast,row\n'
    table = read_csv_table(_write(tmp_path, data))
    assert _cells(table) == [["x\ny", 'he said "hi", then left'], ["p\r\nq", ",\n"], ["last", "row"]]
    assert list(table.lines) == [2, 4, 7]
    assert table.raw(0) == b'"x\ny","he said ""hi"", then left"\n'
    assert table.raw(1) == b'"p\r\nq",",\n"\n'
    assert table.rows([1, 0]) == [{"a": "p\r\nq", "b": ",\n"}, {"a": "x\ny", "b": 'he said "hi", then left'}]


def test_blank_lines_are_not_rows_and_are_kept(tmp_path: Path) -> None:
    data = b"a,b\n\n1,2\n\r\n\n3,4\n\n"
    table = read_csv_table(_write(tmp_path, data))
    assert _cells(table) == [["1", "2"], ["3", "4"]]
    assert list(table.lines) == [3, 6]
    assert render_table(table, {}) == data
    assert render_table(table, {1: b"5,6\n"}) == b"a,b\n\n1,2\n\r\n\n5,6\n\n"


def test_blank_line_inside_quotes_is_a_cell(tmp_path: Path) -> None:
    table = read_csv_table(_write(tmp_path, b'a,b\n"1\n\n2",x\n'))
    assert _cells(table) == [["1\n\n2", "x"]]


def test_last_line_without_newline(tmp_path: Path) -> None:
    data = b"a,b\n1,2\n3,4"
    table = read_csv_table(_write(tmp_path, data))
    assert _cells(table) == [["1", "2"], ["3", "4"]]
    assert table.raw(1) == b"3,4"
    assert render_table(table, {}) == data
    assert render_table(table, {}, [b"5,6\n"]) == b"a,b\n1,2\n3,4\n5,6\n"


def test_last_line_without_newline_crlf(tmp_path: Path) -> None:
    data = b'a,b\r\n1,"x\r\ny"'
    table = read_csv_table(_write(tmp_path, data))
    assert _cells(table) == [["1", "x\r\ny"]]
    assert render_table(table, {}, [b"5,6\r\n"]) == data + b"\r\n5,6\r\n"


# --- malformed files --------------------------------------------------------------------------------


@pytest.mark.parametrize("row, found", [(b"3", 1), (b"3,4,5", 3), (b'"a\nb",c,d', 3)])
def test_ragged_row_names_its_line(tmp_path: Path, row: bytes, found: int) -> None:
    data = b'a,b\n1,2\n"multi\nline",x\n' + row + b"\n7,8\n"
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, data))
    assert _problem_lines(caught.value) == [5]
    assert f"found {found}" in str(caught.value)
    assert "t.csv:5" in str(caught.value)


def test_every_ragged_row_is_reported(tmp_path: Path) -> None:
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, b"a,b\n1\n2,3\n4,5,6\n"))
    assert _problem_lines(caught.value) == [2, 4]


def test_unbalanced_quote(tmp_path: Path) -> None:
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, b'a,b\n1,2\n3,"4\n5,6\n7,8\n'))
    assert _problem_lines(caught.value) == [3]
    assert "quote" in str(caught.value)


@pytest.mark.parametrize("data", [b"", BOM, b"\n\n", b"\r\n", BOM + b"\n"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, data))
    assert _problem_lines(caught.value) == [1]
    assert "empty" in str(caught.value)


@pytest.mark.parametrize("data", [b"a,b,c\n", b"a,b,c", BOM + b"a,b,c\r\n", b"a,b,c\n\n\n"])
def test_header_only(tmp_path: Path, data: bytes) -> None:
    table = read_csv_table(_write(tmp_path, data))
    assert table.header == ("a", "b", "c")
    assert len(table) == 0
    assert list(table.frame.columns) == ["a", "b", "c"]
    assert len(table.frame) == 0
    assert table.column("a") == []
    assert table.rows([]) == []
    assert render_table(table, {}) == data


def test_duplicated_header_name(tmp_path: Path) -> None:
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, b"a,b,a\n1,2,3\n"))
    assert [(p.line, p.column) for p in caught.value.problems] == [(1, "a")]


@pytest.mark.parametrize("header", [b'a,"b"x', b"a,b\rc"])
def test_malformed_header_is_a_table_error(tmp_path: Path, header: bytes) -> None:
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, header + b"\n1,2\n"))
    assert _problem_lines(caught.value) == [1]
    assert "malformed CSV header" in str(caught.value)


@pytest.mark.parametrize("data", [b'"a"" ,b\n1,2\n', b'a,"b\n', BOM + b'\n\n"a'])
def test_unbalanced_quote_in_the_header_is_not_an_empty_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, data))
    assert "quote" in str(caught.value)
    assert "empty" not in str(caught.value)
    assert _problem_lines(caught.value) == [data.count(b"\n", 0, data.index(b'"')) + 1]


def test_malformed_record_names_its_line(tmp_path: Path) -> None:
    # A bare "\r" outside quotes: the python parser refuses it, the fast path sees two rows.
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, b"a,b\n1,2\n3,x\ry\n"))
    assert _problem_lines(caught.value) == [3]
    assert "malformed" in str(caught.value)


def test_non_utf8_row_names_its_line(tmp_path: Path) -> None:
    data = b'a,b\n1,2\n"x\ny",z\n3,caf\xe9\n4,5\n'
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, data))
    assert _problem_lines(caught.value) == [5]
    assert "UTF-8" in str(caught.value)
    assert "t.csv:5" in str(caught.value)


def test_non_utf8_inside_a_multiline_cell_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, b'a,b\n1,"x\n\xff"\n'))
    assert _problem_lines(caught.value) == [3]


def test_non_utf8_header(tmp_path: Path) -> None:
    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, b"a,\xff\xfe\n1,2\n"))
    assert _problem_lines(caught.value) == [1]


def test_validator_gets_the_table_and_its_error_propagates(tmp_path: Path) -> None:
    seen: list[CsvTable] = []

    def validate(table: CsvTable) -> None:
        seen.append(table)
        raise TableError.single(table.name, table.lines[0], "a", "bad")

    with pytest.raises(TableError) as caught:
        read_csv_table(_write(tmp_path, b"a\n1\n"), validate)
    assert len(seen) == 1 and seen[0].header == ("a",)
    assert _problem_lines(caught.value) == [2]


# --- render_table / encode_row ------------------------------------------------------------------------


def test_encode_row_quotes_minimally() -> None:
    assert encode_row(["a", "b c", ""], b"\n") == b"a,b c,\n"
    assert encode_row(["x,y", 'q"q', "00123"], b"\r\n") == b'"x,y","q""q",00123\r\n'
    assert encode_row([""], b"\n") == b'""\n'  # a lone empty cell is not a blank line
    assert encode_row(["é"], b"\n") == "é\n".encode()


_CELL = st.text(alphabet=st.sampled_from(["a", " ", ",", '"', "\r", "\n", "é", "0"]), max_size=6)


@given(st.lists(_CELL, min_size=1, max_size=5))
def test_encode_row_writes_what_the_csv_module_writes(cells: list[str]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    assert encode_row(cells, b"\n") == out.getvalue()[:-2].encode() + b"\n"


def _split_line_by_line(data: bytes, offset: int) -> tuple[list[int], list[int], list[int], int | None]:
    """The obvious record splitter (one line at a time, counting quotes) that the vectorized one must equal."""
    starts: list[int] = []
    ends: list[int] = []
    lines: list[int] = []
    pos, line, open_start, open_line, quotes = offset, 1, -1, 0, 0
    pieces = data[offset:].split(b"\n")
    for number, piece in enumerate(pieces):
        length = len(piece) + (0 if number == len(pieces) - 1 else 1)
        if open_start < 0:
            if not piece.strip(b"\r"):
                pos, line = pos + length, line + 1
                continue
            open_start, open_line, quotes = pos, line, piece.count(b'"')
        else:
            quotes += piece.count(b'"')
        pos, line = pos + length, line + 1
        if quotes % 2 == 0:
            starts.append(open_start)
            ends.append(pos)
            lines.append(open_line)
            open_start = -1
    return starts, ends, lines, (open_line if open_start >= 0 else None)


@given(st.lists(st.sampled_from([b"a", b'"', b"\n", b"\r", b",", b'""', b"\r\n"]), max_size=40), st.integers(0, 3))
def test_record_splitting_equals_the_line_by_line_reading(parts: list[bytes], offset: int) -> None:
    data = b"".join(parts)
    offset = min(offset, len(data))
    starts, ends, lines, unterminated = split_records(data, offset)
    assert (list(starts), list(ends), list(lines), unterminated) == _split_line_by_line(data, offset)


def test_record_splitting_spans_chunks() -> None:
    data = b'h\n"a\nb",c\n\r\n"x""y"\nlast'
    starts, ends, lines, unterminated = split_records(data, 0, chunk=3)
    assert (list(starts), list(ends), list(lines), unterminated) == _split_line_by_line(data, 0)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b""])
def test_encode_row_quotes_any_line_break(newline: bytes) -> None:
    assert encode_row(["a\rb", "c\nd", "e\r\nf"], newline) == b'"a\rb","c\nd","e\r\nf"' + newline


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_encoded_rows_read_back(tmp_path: Path, newline: bytes) -> None:
    rows = [["k", "v"], ["1", "a\rb"], ["2", "\r"], ["3", "x\n"], ["4", ""]]
    data = b"".join(encode_row(r, newline) for r in rows)
    table = read_csv_table(_write(tmp_path, data))
    assert _cells(table) == rows[1:]


def test_render_replaces_removes_appends_and_widens(tmp_path: Path) -> None:
    data = BOM + b'a,b\r\n1,2\r\n\r\n"3\r\nx",4\r\n5,6\r\n'
    table = read_csv_table(_write(tmp_path, data))
    assert render_table(table, {0: b"9,9\r\n", 2: b""}) == BOM + b'a,b\r\n9,9\r\n\r\n"3\r\nx",4\r\n'
    assert render_table(table, {}, [b"7,8\r\n"]) == data + b"7,8\r\n"
    widened = render_table(table, {1: b"p,q,r,s\r\n"}, [b"7,8,9,10\r\n"], ["c", "d e,f"])
    assert widened == BOM + b'a,b,c,"d e,f"\r\n1,2,,\r\n\r\np,q,r,s\r\n5,6,,\r\n7,8,9,10\r\n'
    again = read_csv_table(_write(tmp_path, widened, "w.csv"))
    assert again.header == ("a", "b", "c", "d e,f")
    assert _cells(again) == [["1", "2", "", ""], ["p", "q", "r", "s"], ["5", "6", "", ""], ["7", "8", "9", "10"]]


def test_render_widens_last_row_without_newline(tmp_path: Path) -> None:
    table = read_csv_table(_write(tmp_path, b'a\n"x\n"'))
    assert render_table(table, {}, (), ["b"]) == b'a,b\n"x\n",'


# --- pyarrow fast path versus the python fallback ---------------------------------------------------

_CELL = st.one_of(
    st.sampled_from(
        ["", '"', ",", "\n", "\r\n", "\r", '""', " ", "00123", "197260739297", "12e456789012", "NaN", "null"]
    ),
    st.text(st.characters(codec="utf-8"), max_size=12),
)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    width = draw(st.integers(1, 5))
    header = [f"c{i}" for i in range(width)]
    rows = draw(st.lists(st.lists(_CELL, min_size=width, max_size=width), min_size=1, max_size=12))
    return header, rows


def _csv_bytes(header: list[str], rows: list[list[str]], newline: str, bom: bool, quote_all: bool) -> bytes:
    out = io.StringIO()
    # "\r\n" makes the writer quote any cell holding "\r" or "\n"; the terminator is swapped afterwards.
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    text = ""
    for record in [header, *rows]:
        out.seek(0)
        out.truncate()
        writer.writerow(record)
        text += out.getvalue()[:-2] + newline
    return (BOM if bom else b"") + text.encode("utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables(), st.sampled_from(["\n", "\r\n"]), st.booleans(), st.booleans())
def test_pyarrow_and_python_fallback_agree(
    table: tuple[list[str], list[list[str]]], newline: str, bom: bool, quote_all: bool
) -> None:
    header, rows = table
    data = _csv_bytes(header, rows, newline, bom, quote_all)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_bytes(data)
        read = read_csv_table(path)
    assert read.header == tuple(header)
    assert len(read) == len(rows)
    assert _cells(read) == rows
    assert render_table(read, {}) == data
    # Both parsers, on the record layout the reader found: every column, then every other one.
    for wanted in (header, header[::2]):
        at = [header.index(name) for name in wanted]
        expected = [[row[i] for i in at] for row in rows]
        fast = cells_with_pyarrow(data, read.header_end, header, wanted)
        slow = cells_with_csv_module(data, read.starts, read.ends, read.lines, header, wanted, read.name)
        assert fast is not None and len(fast) == len(rows)
        assert fast.column_names == slow.column_names == wanted
        assert [list(r.values()) for r in fast.to_pylist()] == expected
        assert [list(r.values()) for r in slow.to_pylist()] == expected
