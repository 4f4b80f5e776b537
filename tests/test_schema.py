"""The Pandera schemas of generations.csv and manifest.csv (archi3d.schema): one test per rule."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archi3d.columns import GENERATIONS_COLUMNS, MANIFEST_REQUIRED, NUMBER_COLUMNS, PATH_COLUMNS, TIMESTAMP_COLUMNS
from archi3d.csvtable import CsvTable, read_csv_table
from archi3d.errors import Problem, TableError
from archi3d.model import GenerationRow, parse_timestamp
from archi3d.schema import (
    GENERATIONS_SCHEMA,
    ID_RULE,
    NUMBER_RULE,
    PATH_RULE,
    STATUS_RULE,
    TIMESTAMP_RULE,
    check_frame,
    validate_generations,
    validate_manifest,
)

MISSING = "required column is missing from the header"
BASE = {"run_id": "r1", "job_id": "j1", "status": "enqueued"}
MANIFEST_BASE = {"job_id": "j1", "product_id": "00123", "variant": "a", "algo": "trellis"}


# --- helpers --------------------------------------------------------------------------------------


def _csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]], newline: str = "\n") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _table(tmp_path: Path, data: bytes, name: str = "generations.csv") -> CsvTable:
    path = tmp_path / name
    path.write_bytes(data)
    return read_csv_table(path)


def _rows_table(tmp_path: Path, rows: Sequence[Mapping[str, str]], name: str = "generations.csv") -> CsvTable:
    header = list(dict.fromkeys(c for r in rows for c in r))
    return _table(tmp_path, _csv_bytes(header, [[r.get(c, "") for c in header] for r in rows]), name)


def _problems(tmp_path: Path, rows: Sequence[Mapping[str, str]], manifest: bool = False) -> list[Problem]:
    name = "manifest.csv" if manifest else "generations.csv"
    table = _rows_table(tmp_path, rows, name)
    try:
        (validate_manifest if manifest else validate_generations)(table)
    except TableError as error:
        return list(error.problems)
    return []


def _one(tmp_path: Path, column: str, value: str, manifest: bool = False) -> list[str]:
    """str(Problem) of every problem in a table of one row with `value` in `column`."""
    row = {**(MANIFEST_BASE if manifest else BASE), column: value}
    return [str(p) for p in _problems(tmp_path, [row], manifest)]


def _batch(tmp_path: Path, column: str, values: Sequence[str], manifest: bool = False) -> list[str]:
    """str(Problem) of every problem in a table with one row per value (row i on CSV line i + 2)."""
    base = MANIFEST_BASE if manifest else BASE
    rows = [{**base, "job_id": f"j{i}", column: value} for i, value in enumerate(values)]
    return [str(p) for p in _problems(tmp_path, rows, manifest)]


def _expected(
    tmp_path: Path, column: str, rule: str, values: Sequence[str], name: str = "generations.csv"
) -> list[str]:
    """One problem per value, on the CSV line of its row."""
    return [_message(tmp_path, i + 2, column, rule, value, name) for i, value in enumerate(values)]


def _message(tmp_path: Path, line: int, column: str, rule: str, value: str, name: str = "generations.csv") -> str:
    return f"{tmp_path / name}:{line}: {column}: {rule}, found {value!r}"


# --- status ---------------------------------------------------------------------------------------


def test_status_rule_text() -> None:
    assert STATUS_RULE == "expected one of enqueued, running, failed, completed"


def test_status_in_the_set_is_accepted(tmp_path: Path) -> None:
    assert _batch(tmp_path, "status", ["enqueued", "running", "failed", "completed"]) == []


BAD_STATUSES = ["bogus", "", "Completed", "done", " completed", "completed "]


def test_status_not_in_the_set_is_rejected(tmp_path: Path) -> None:
    assert _batch(tmp_path, "status", BAD_STATUSES) == _expected(tmp_path, "status", STATUS_RULE, BAD_STATUSES)


def test_status_message_exact(tmp_path: Path) -> None:
    assert _one(tmp_path, "status", "bogus") == [
        f"{tmp_path / 'generations.csv'}:2: status: expected one of enqueued, running, failed, completed, found 'bogus'"
    ]


# --- run_id and job_id ----------------------------------------------------------------------------


def test_id_rule_text() -> None:
    assert ID_RULE == "expected 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"


BAD_IDS = ["../x", "a/b", "", "x" * 129, "a\\b", ".hidden", "-a", "_a", "a b", "..", "é1", "a\n"]
GOOD_IDS = ["x" * 128, "a", "0", "00123", "197260739297", "12e456789012", "run-2026.01_a", "a..b"]


@pytest.mark.parametrize("value", ["../x", "a/b", "", "x" * 129])
@pytest.mark.parametrize("column", ["run_id", "job_id"])
def test_bad_id_is_rejected(tmp_path: Path, column: str, value: str) -> None:
    assert _one(tmp_path, column, value) == [_message(tmp_path, 2, column, ID_RULE, value)]


def test_bad_run_ids_are_rejected(tmp_path: Path) -> None:
    rows = [{**BASE, "run_id": value, "job_id": f"j{i}"} for i, value in enumerate(BAD_IDS)]
    assert [str(p) for p in _problems(tmp_path, rows)] == _expected(tmp_path, "run_id", ID_RULE, BAD_IDS)


def test_bad_job_ids_are_rejected(tmp_path: Path) -> None:
    rows = [{**BASE, "job_id": value} for value in BAD_IDS]
    assert [str(p) for p in _problems(tmp_path, rows)] == _expected(tmp_path, "job_id", ID_RULE, BAD_IDS)


def test_good_ids_are_accepted(tmp_path: Path) -> None:
    rows = [{**BASE, "run_id": value, "job_id": value} for value in GOOD_IDS]
    assert _problems(tmp_path, rows) == []


# --- timestamps -----------------------------------------------------------------------------------


def test_timestamp_rule_text() -> None:
    assert (
        TIMESTAMP_RULE == "expected an ISO 8601 timestamp of years 1900-2999 (e.g. 2026-01-31T12:00:00+00:00) or empty"
    )


GOOD_TIMESTAMPS = [
    "",
    "2026-01-31T12:00:00+00:00",
    "2026-01-31T12:00:00Z",
    "2026-01-31T12:00:00",
    "2026-01-31T12:00:00.123456-05:00",
    "2026-01-31 12:00",
    "2026-01-31T12:00:00+0530",
    "2026-01-31",
    "2024-02-29T00:00:00",
    "2026-01-31T12:00Z",
    "2026-01-31T12:00:00-0000",
]
BAD_TIMESTAMPS = [
    "2026-13-01",
    "2026-02-30",
    "2025-02-29",
    "2026-01-31T24:00:00",
    "2026-01-31T12:60",
    "2026-01-31T12:00:00.1234567",
    "31/01/2026",
    "20260131",
    "yesterday",
    " 2026-01-31",
    "2026-01-31T12:00:00+25:00",
    "2026-01-31T12",
    "2026-01-31+00:00",
]


@pytest.mark.parametrize("column", TIMESTAMP_COLUMNS)
def test_timestamp_iso8601_or_empty_accepted(tmp_path: Path, column: str) -> None:
    assert _batch(tmp_path, column, GOOD_TIMESTAMPS) == []


@pytest.mark.parametrize("column", TIMESTAMP_COLUMNS)
def test_timestamp_not_iso8601_rejected(tmp_path: Path, column: str) -> None:
    assert _batch(tmp_path, column, BAD_TIMESTAMPS) == _expected(tmp_path, column, TIMESTAMP_RULE, BAD_TIMESTAMPS)


def test_timestamp_month_13_message_exact(tmp_path: Path) -> None:
    assert _one(tmp_path, "created_at", "2026-13-01") == [
        f"{tmp_path / 'generations.csv'}:2: created_at: expected an ISO 8601 timestamp of years 1900-2999"
        " (e.g. 2026-01-31T12:00:00+00:00) or empty, found '2026-13-01'"
    ]


def test_mixed_timestamp_forms_in_one_column_are_accepted(tmp_path: Path) -> None:
    values = ["2026-01-31T12:00:00", "2026-01-31T12:00:00Z", "2026-01-31T12:00:00+05:00", "2026-01-31", ""]
    rows = [{**BASE, "job_id": f"j{i}", "created_at": v} for i, v in enumerate(values)]
    assert _problems(tmp_path, rows) == []


def test_one_bad_timestamp_among_good_ones_is_the_only_problem(tmp_path: Path) -> None:
    values = ["2026-01-31T12:00:00Z", "2026-13-01", "2026-01-31T12:00:00+05:00", ""]
    rows = [{**BASE, "job_id": f"j{i}", "generation_end": v} for i, v in enumerate(values)]
    assert [str(p) for p in _problems(tmp_path, rows)] == [
        _message(tmp_path, 3, "generation_end", TIMESTAMP_RULE, "2026-13-01")
    ]


@st.composite
def _timestamp_like(draw: st.DrawFn) -> str:
    """Timestamp-shaped text, components in and out of range."""
    year = draw(st.integers(1900, 2100))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    text = f"{year:04d}-{month:02d}-{day:02d}"
    if draw(st.booleans()):
        hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
        text += draw(st.sampled_from("T ")) + f"{hour:02d}:{minute:02d}"
        if draw(st.booleans()):
            text += f":{second:02d}" + draw(st.sampled_from(["", ".5", ".123456", ".1234567"]))
        text += draw(st.sampled_from(["", "Z", "+00:00", "-05:30", "+0530", "+23:59", "+24:00", "-12:60"]))
    return text


@settings(max_examples=30, deadline=None)
@given(st.lists(_timestamp_like(), min_size=1, max_size=8))
def test_every_timestamp_the_schema_accepts_reads_into_a_row(values: list[str]) -> None:
    """A validated table must never make GenerationRow.from_cells fail (consolidate relies on it)."""
    frame = pd.DataFrame(
        {
            "run_id": pd.Series(["r1"] * len(values), dtype="str"),
            "job_id": pd.Series([f"j{i}" for i in range(len(values))], dtype="str"),
            "status": pd.Series(["enqueued"] * len(values), dtype="str"),
            "created_at": pd.Series(values, dtype="str"),
        }
    )
    try:
        check_frame(frame, GENERATIONS_SCHEMA, "g.csv", list(range(2, 2 + len(values))))
    except TableError as error:
        rejected = {p.line for p in error.problems}
        assert all(p.column == "created_at" for p in error.problems)
    else:
        rejected = set()
    for index, value in enumerate(values):
        if index + 2 in rejected:
            continue
        row = GenerationRow.from_cells({"run_id": "r1", "job_id": "j1", "status": "enqueued", "created_at": value})
        assert row.created_at == parse_timestamp(value)


@pytest.mark.parametrize("value", ["0000-01-01", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_schema_rejects_timestamps_the_model_cannot_read(tmp_path: Path, value: str) -> None:
    assert _one(tmp_path, "created_at", value) != []
    with pytest.raises(ValueError):
        GenerationRow.from_cells({**BASE, "created_at": value})


# --- numbers --------------------------------------------------------------------------------------


def test_number_rule_text() -> None:
    assert NUMBER_RULE == "expected a number or empty"


def test_number_columns() -> None:
    assert set(NUMBER_COLUMNS) == {"generation_duration_s", "unit_price_usd", "source_n_images", "used_n_images"}


GOOD_NUMBERS = ["", "3", "3.0", "60.000", "-1.5", "+2", ".5", "5.", "1e3", "2.5E-3", "007"]
BAD_NUMBERS = ["abc", "1,5", "nan", "inf", " 3", "3 ", "0x10", "1_000", "3s", ".", "-", "1e"]


@pytest.mark.parametrize("column", NUMBER_COLUMNS)
def test_number_or_empty_accepted(tmp_path: Path, column: str) -> None:
    assert _batch(tmp_path, column, GOOD_NUMBERS) == []


@pytest.mark.parametrize("column", NUMBER_COLUMNS)
def test_not_a_number_rejected(tmp_path: Path, column: str) -> None:
    assert _batch(tmp_path, column, BAD_NUMBERS) == _expected(tmp_path, column, NUMBER_RULE, BAD_NUMBERS)


# --- paths ----------------------------------------------------------------------------------------


def test_path_rule_text() -> None:
    assert PATH_RULE == "expected a workspace-relative path (not absolute, no '..') or empty"


UNSAFE_PATHS = [
    "/etc/x",
    "C:\\x",
    "c:/x",
    "\\\\server\\share\\x",
    "\\x",
    "..",
    "../x",
    "..\\x",
    "runs/../../x",
    "runs\\..\\..\\x",
    "a/..",
]
SAFE_PATHS = [
    "",
    "runs/r1/outputs/j1/generated.glb",
    "runs\\r1\\outputs\\j1\\x.glb",
    "a b/c.png",
    "...",
    "a/..b",
    "x..y/z",
]


@pytest.mark.parametrize("column", ["gen_object_path", "preview_1_path", "gt_object_path", "used_image_6_path"])
def test_unsafe_path_rejected(tmp_path: Path, column: str) -> None:
    assert _batch(tmp_path, column, UNSAFE_PATHS) == _expected(tmp_path, column, PATH_RULE, UNSAFE_PATHS)


@pytest.mark.parametrize("value", ["/etc/x", "C:\\x", "../x", "runs/../../x"])
def test_unsafe_path_message_exact(tmp_path: Path, value: str) -> None:
    assert _one(tmp_path, "gen_object_path", value) == [
        f"{tmp_path / 'generations.csv'}:2: gen_object_path: "
        f"expected a workspace-relative path (not absolute, no '..') or empty, found {value!r}"
    ]


@pytest.mark.parametrize("column", ["gen_object_path", "preview_3_path", "source_image_1_path"])
def test_relative_path_accepted_backslashes_included(tmp_path: Path, column: str) -> None:
    assert _batch(tmp_path, column, SAFE_PATHS) == []


def test_every_known_path_column_is_checked(tmp_path: Path) -> None:
    row = {**BASE, **{c: "/abs" for c in PATH_COLUMNS}}
    problems = _problems(tmp_path, [row])
    assert sorted(p.column or "" for p in problems) == sorted(PATH_COLUMNS)
    assert all(p.message == f"{PATH_RULE}, found '/abs'" and p.line == 2 for p in problems)


def test_unknown_path_column_is_checked_too(tmp_path: Path) -> None:
    assert _one(tmp_path, "vf_render_path", "/tmp/x.png") == [
        _message(tmp_path, 2, "vf_render_path", PATH_RULE, "/tmp/x.png")
    ]


# --- required and unknown columns -----------------------------------------------------------------


@pytest.mark.parametrize("column", ["run_id", "job_id", "status"])
def test_required_column_missing(tmp_path: Path, column: str) -> None:
    row = {k: v for k, v in BASE.items() if k != column}
    assert [str(p) for p in _problems(tmp_path, [row])] == [f"{tmp_path / 'generations.csv'}:1: {column}: {MISSING}"]


def test_all_required_columns_missing_reported_together(tmp_path: Path) -> None:
    problems = _problems(tmp_path, [{"product_id": "1", "notes": "x"}])
    assert [(p.line, p.column, p.message) for p in problems] == [
        (1, "job_id", MISSING),
        (1, "run_id", MISSING),
        (1, "status", MISSING),
    ]


def test_header_only_table_is_valid(tmp_path: Path) -> None:
    validate_generations(_table(tmp_path, b"run_id,job_id,status\n"))
    validate_generations(_table(tmp_path, _csv_bytes(GENERATIONS_COLUMNS, [])))


def test_unknown_columns_are_allowed(tmp_path: Path) -> None:
    row = {**BASE, "fscore": "not a number", "vf_status": "whatever", "zzz": "../.."}
    assert _problems(tmp_path, [row]) == []


def test_full_valid_row_of_every_known_column(tmp_path: Path) -> None:
    row = {c: "" for c in GENERATIONS_COLUMNS} | {
        **BASE,
        "status": "completed",
        "product_id": "00123",
        "source_n_images": "6",
        "used_n_images": "3.0",
        "created_at": "2026-01-31T12:00:00Z",
        "generation_start": "2026-01-31T12:00:00",
        "generation_end": "2026-01-31T12:01:00+00:00",
        "generation_duration_s": "60.000",
        "unit_price_usd": "0.02",
        "gen_object_path": "runs/r1/outputs/j1/generated.glb",
        "error_msg": "/etc/passwd is not a path column",
        "notes": "2026-13-01 is not a timestamp column",
    }
    assert _problems(tmp_path, [row]) == []


# --- message shape, line numbers, all problems at once --------------------------------------------


def test_message_shape_is_file_line_column_message(tmp_path: Path) -> None:
    problems = _problems(tmp_path, [{**BASE, "status": "bogus"}])
    assert len(problems) == 1
    problem = problems[0]
    name = str(tmp_path / "generations.csv")
    assert (problem.file, problem.line, problem.column) == (name, 2, "status")
    assert problem.message == f"{STATUS_RULE}, found 'bogus'"
    assert str(problem) == f"{name}:2: status: expected one of enqueued, running, failed, completed, found 'bogus'"


def test_three_bad_cells_are_reported_in_one_error(tmp_path: Path) -> None:
    rows = [
        {**BASE, "job_id": "j1", "created_at": "", "used_n_images": "3"},
        {**BASE, "job_id": "a/b", "created_at": "", "used_n_images": "3"},
        {**BASE, "job_id": "j3", "created_at": "2026-13-01", "used_n_images": "3"},
        {**BASE, "job_id": "j4", "created_at": "", "used_n_images": "three"},
    ]
    table = _rows_table(tmp_path, rows)
    with pytest.raises(TableError) as caught:
        validate_generations(table)
    expected = [
        _message(tmp_path, 3, "job_id", ID_RULE, "a/b"),
        _message(tmp_path, 4, "created_at", TIMESTAMP_RULE, "2026-13-01"),
        _message(tmp_path, 5, "used_n_images", NUMBER_RULE, "three"),
    ]
    assert [str(p) for p in caught.value.problems] == expected
    assert str(caught.value) == "\n".join(expected)
    assert caught.value.exit_code == 2


def test_three_bad_cells_in_one_row_are_all_reported(tmp_path: Path) -> None:
    row = {**BASE, "status": "done", "generation_end": "soon", "preview_2_path": "/x.png"}
    assert sorted(str(p) for p in _problems(tmp_path, [row])) == sorted(
        [
            _message(tmp_path, 2, "status", STATUS_RULE, "done"),
            _message(tmp_path, 2, "generation_end", TIMESTAMP_RULE, "soon"),
            _message(tmp_path, 2, "preview_2_path", PATH_RULE, "/x.png"),
        ]
    )


def test_missing_column_and_bad_cells_reported_together(tmp_path: Path) -> None:
    problems = _problems(tmp_path, [{"run_id": "../r", "job_id": "j1", "created_at": "x"}])
    assert [(p.line, p.column) for p in problems] == [(1, "status"), (2, "created_at"), (2, "run_id")]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_line_numbers_are_csv_lines(tmp_path: Path, newline: str, bom: bool) -> None:
    """Header is line 1; a quoted multi-line cell and a blank line shift the lines after them."""
    nl = newline
    text = (
        f"run_id,job_id,status,notes{nl}"  # 1
        f"r1,j1,bogus,plain{nl}"  # 2
        f'r1,j2,enqueued,"two{nl}lines"{nl}'  # 3-4
        f"r1,a/b,enqueued,x{nl}"  # 5
        f'r1,j4,enqueued,"three{nl}{nl}lines"{nl}'  # 6-8
        f"{nl}"  # 9 (blank)
        f"r1,j5,sleeping,x{nl}"  # 10
    )
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    table = _table(tmp_path, data)
    with pytest.raises(TableError) as caught:
        validate_generations(table)
    assert [(p.line, p.column) for p in caught.value.problems] == [(2, "status"), (5, "job_id"), (10, "status")]
    assert str(caught.value.problems[-1]) == _message(tmp_path, 10, "status", STATUS_RULE, "sleeping")


def test_read_csv_table_with_validator_raises_the_same_problems(tmp_path: Path) -> None:
    path = tmp_path / "generations.csv"
    path.write_bytes(_csv_bytes(["run_id", "job_id", "status"], [["r1", "j1", "x"]]))
    with pytest.raises(TableError) as caught:
        read_csv_table(path, validate_generations)
    assert [str(p) for p in caught.value.problems] == [_message(tmp_path, 2, "status", STATUS_RULE, "x")]


def test_identifiers_are_not_coerced_by_validation(tmp_path: Path) -> None:
    rows = [{**BASE, "job_id": "197260739297"}, {**BASE, "job_id": "12e456789012", "product_id": "00123"}]
    table = _rows_table(tmp_path, rows)
    validate_generations(table)
    assert table.column("job_id") == ["197260739297", "12e456789012"]
    assert table.column("product_id") == ["", "00123"]


# --- manifest -------------------------------------------------------------------------------------


def test_manifest_required_columns() -> None:
    assert MANIFEST_REQUIRED == ("job_id", "product_id", "variant", "algo")


def test_manifest_valid(tmp_path: Path) -> None:
    row = {
        **MANIFEST_BASE,
        "used_n_images": "3",
        "used_image_1_path": "images\\a.png",
        "gt_object_path": "gt/x.glb",
        "image_set_hash": "abc",
        "product_name": "Chair",
        "manufacturer": "ACME",
        "comment": "extra columns allowed",
    }
    assert _problems(tmp_path, [row], manifest=True) == []


@pytest.mark.parametrize("column", MANIFEST_REQUIRED)
def test_manifest_required_column_missing(tmp_path: Path, column: str) -> None:
    row = {k: v for k, v in MANIFEST_BASE.items() if k != column}
    assert [str(p) for p in _problems(tmp_path, [row], manifest=True)] == [
        f"{tmp_path / 'manifest.csv'}:1: {column}: {MISSING}"
    ]


def test_manifest_all_required_columns_missing(tmp_path: Path) -> None:
    problems = _problems(tmp_path, [{"product_name": "x"}], manifest=True)
    assert sorted((p.line, p.column, p.message) for p in problems) == sorted((1, c, MISSING) for c in MANIFEST_REQUIRED)


def test_manifest_job_id_pattern(tmp_path: Path) -> None:
    rows = [{**MANIFEST_BASE, "job_id": value} for value in BAD_IDS]
    assert [str(p) for p in _problems(tmp_path, rows, manifest=True)] == _expected(
        tmp_path, "job_id", ID_RULE, BAD_IDS, "manifest.csv"
    )


def test_manifest_number_and_path_cells(tmp_path: Path) -> None:
    row = {**MANIFEST_BASE, "used_n_images": "three", "used_image_2_path": "/abs.png", "gt_object_path": "../gt.glb"}
    assert sorted(str(p) for p in _problems(tmp_path, [row], manifest=True)) == sorted(
        [
            _message(tmp_path, 2, "used_n_images", NUMBER_RULE, "three", "manifest.csv"),
            _message(tmp_path, 2, "used_image_2_path", PATH_RULE, "/abs.png", "manifest.csv"),
            _message(tmp_path, 2, "gt_object_path", PATH_RULE, "../gt.glb", "manifest.csv"),
        ]
    )


def test_manifest_does_not_need_generations_columns(tmp_path: Path) -> None:
    """No run_id or status in a manifest; a status-like column there is not checked."""
    assert _problems(tmp_path, [{**MANIFEST_BASE, "status": "bogus", "created_at": "never"}], manifest=True) == []


def test_manifest_empty_required_cells_other_than_job_id_are_accepted(tmp_path: Path) -> None:
    assert _problems(tmp_path, [{**MANIFEST_BASE, "product_id": "", "variant": "", "algo": ""}], manifest=True) == []


def test_manifest_line_numbers_and_all_problems(tmp_path: Path) -> None:
    data = (
        b'job_id,product_id,variant,algo,product_name\nj1,1,a,x,"multi\nline"\n../j2,1,a,x,y\nj3,1,a,x,y\nj 4,1,a,x,y\n'
    )
    table = _table(tmp_path, data, "manifest.csv")
    with pytest.raises(TableError) as caught:
        validate_manifest(table)
    assert [(p.line, p.column) for p in caught.value.problems] == [(4, "job_id"), (6, "job_id")]


def test_generation_schema_name_is_not_the_file_name(tmp_path: Path) -> None:
    """Problems name the file that was read, wherever it is."""
    other = tmp_path / "sub"
    other.mkdir()
    path = other / "copy.csv"
    path.write_bytes(_csv_bytes(["run_id", "job_id", "status"], [["r1", "j1", "x"]]))
    with pytest.raises(TableError) as caught:
        validate_generations(read_csv_table(path))
    assert caught.value.problems[0].file == str(path)
