"""Pandera schemas of generations.csv and manifest.csv, applied on read and on write."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow
import pyarrow.compute as pc

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandera.pandas as pa

from archi3d.columns import MANIFEST_REQUIRED, NUMBER_COLUMNS, TIMESTAMP_COLUMNS
from archi3d.csvtable import CsvTable
from archi3d.errors import Problem, TableError
from archi3d.formats import COUNT, ID, NUMBER, SHA256, TIMESTAMP
from archi3d.model import Status

__all__ = ["GENERATIONS_SCHEMA", "MANIFEST_SCHEMA", "check_frame", "validate_generations", "validate_manifest"]

_UNSAFE_PATH = r"^(?:[/\\]|[A-Za-z]:)|(?:^|[/\\])\.\.(?:[/\\]|$)|\x00"

ID_RULE = "expected 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
STATUS_RULE = "expected one of " + ", ".join(s.value for s in Status)
TIMESTAMP_RULE = "expected an ISO 8601 timestamp of years 1900-2999 (e.g. 2026-01-31T12:00:00+00:00) or empty"
NUMBER_RULE = "expected a number or empty"
SHA256_RULE = "expected a SHA-256 digest (64 lowercase hex digits) or empty"
COUNT_RULE = "expected a size in bytes (digits) or empty"
PATH_RULE = "expected a workspace-relative path (not absolute, no '..') or empty"


_Cells = pyarrow.Array | pyarrow.ChunkedArray


def _arrow(series: pd.Series) -> _Cells:
    """The cells as a pyarrow array (no copy for pandas' pyarrow-backed strings)."""
    return pyarrow.array(series.array)


def _data_holds(cells: _Cells, needles: Sequence[bytes]) -> bool:
    """Whether the bytes behind the cells hold any needle (possibly across two cells: a cheap over-estimate)."""
    for chunk in cells.chunks if isinstance(cells, pyarrow.ChunkedArray) else [cells]:
        data = chunk.buffers()[2]
        if data is not None:
            raw = data.to_pybytes()
            if any(needle in raw for needle in needles):
                return True
    return False


def _all_bytes_in(cells: _Cells, allowed: npt.NDArray[np.bool_]) -> bool:
    for chunk in cells.chunks if isinstance(cells, pyarrow.ChunkedArray) else [cells]:
        data = chunk.buffers()[2]
        if data is not None and not allowed[np.frombuffer(memoryview(data), dtype=np.uint8)].all():
            return False
    return True


Quick = Callable[[_Cells], bool]


def _full(pattern: str, rule: str, allow_empty: bool, quick: Quick | None = None) -> pa.Check:
    """Every cell matches `pattern` (or is empty); `quick` may vouch for a whole column at once."""
    anchored = f"^(?:{pattern})$"

    def check(series: pd.Series) -> pd.Series:
        cells = _arrow(series)
        if quick is not None and quick(cells):
            return pd.Series(True, index=series.index)
        matched = pc.match_substring_regex(cells, anchored)
        if allow_empty:
            matched = pc.or_(matched, pc.equal(cells, ""))
        return pd.Series(matched.to_numpy(zero_copy_only=False), index=series.index, dtype=bool)

    return pa.Check(check, error=rule)


_ID_BYTES = np.zeros(256, dtype=np.bool_)
_ID_BYTES[list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")] = True


def _plain_ids(cells: _Cells) -> bool:
    """Every cell 1-128 id characters, none starting with '.', '_' or '-'."""
    if not len(cells):
        return True
    lengths = pc.binary_length(cells)
    leading = pc.or_(pc.or_(pc.starts_with(cells, "."), pc.starts_with(cells, "_")), pc.starts_with(cells, "-"))
    return bool(
        pc.min(lengths).as_py() >= 1
        and pc.max(lengths).as_py() <= 128
        and not pc.any(leading).as_py()
        and _all_bytes_in(cells, _ID_BYTES)
    )


def _safe_path(series: pd.Series) -> pd.Series:
    cells = _arrow(series)
    rooted = pc.any(pc.or_(pc.starts_with(cells, "/"), pc.starts_with(cells, "\\"))).as_py()
    # No cell starts at a root and no ':', '..' or NUL anywhere: no cell can fail (the usual case).
    if not rooted and not _data_holds(cells, (b":", b"..", b"\x00")):
        return pd.Series(True, index=series.index)
    return ~series.str.contains(_UNSAFE_PATH, regex=True)


def _real_timestamp(series: pd.Series) -> pd.Series:
    # The pattern already bounds month, day and time: only days 29-31 can name a date that does not exist.
    late = series.str.slice(8, 10) >= "29"
    real = pd.Series(True, index=series.index)
    if late.any():
        real[late] = pd.to_datetime(series[late], format="ISO8601", errors="coerce", utc=True).notna()
    return real


def _columns(required: Sequence[str], ids: Sequence[str]) -> dict[str, pa.Column]:
    columns: dict[str, pa.Column] = {}
    for name in ids:
        check = _full(ID, ID_RULE, allow_empty=False, quick=_plain_ids)
        columns[name] = pa.Column(checks=check, required=name in required)
    for name in required:
        columns.setdefault(name, pa.Column(required=True))
    for name in NUMBER_COLUMNS:
        columns[name] = pa.Column(checks=_full(NUMBER, NUMBER_RULE, allow_empty=True), required=False)
    columns[r".*_path$"] = pa.Column(checks=pa.Check(_safe_path, error=PATH_RULE), regex=True, required=False)
    return columns


def _generations_schema() -> pa.DataFrameSchema:
    columns = _columns(("run_id", "job_id", "status"), ("run_id", "job_id"))
    columns["status"] = pa.Column(checks=pa.Check.isin([s.value for s in Status], error=STATUS_RULE))
    for name in TIMESTAMP_COLUMNS:
        columns[name] = pa.Column(
            checks=[
                _full(TIMESTAMP, TIMESTAMP_RULE, allow_empty=True),
                pa.Check(_real_timestamp, error=TIMESTAMP_RULE),
            ],
            required=False,
        )
    columns["gen_object_sha256"] = pa.Column(checks=_full(SHA256, SHA256_RULE, allow_empty=True), required=False)
    columns["gen_object_bytes"] = pa.Column(checks=_full(COUNT, COUNT_RULE, allow_empty=True), required=False)
    return pa.DataFrameSchema(columns, strict=False, coerce=False, name="generations.csv")


GENERATIONS_SCHEMA = _generations_schema()
MANIFEST_SCHEMA = pa.DataFrameSchema(
    _columns(MANIFEST_REQUIRED, ("job_id",)), strict=False, coerce=False, name="manifest.csv"
)
# Pandera imports its pandas backends on the first validation (a quarter of a second): do it with
# this module, not in the middle of the first table read.
GENERATIONS_SCHEMA.validate(pd.DataFrame({name: pd.Series([], dtype="str") for name in ("run_id", "job_id", "status")}))


def check_frame(frame: pd.DataFrame, schema: pa.DataFrameSchema, file: str, lines: Sequence[int]) -> None:
    """Validate every cell; raise TableError listing each failing cell with its CSV line."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        raise TableError(_problems(errors.failure_cases, file, lines, list(frame.columns))) from None


def _problems(cases: pd.DataFrame, file: str, lines: Sequence[int], header: Sequence[str]) -> list[Problem]:
    fields = {name: at for at, name in enumerate(header, 1)}
    problems: list[Problem] = []
    seen: set[tuple[int | None, str | None, str]] = set()
    for case in cases.to_dict("records"):
        check = str(case.get("check") or "")
        index = case.get("index")
        column = case.get("column")
        value = case.get("failure_case")
        if check == "column_in_dataframe" or index is None or pd.isna(index):
            missing = str(value)
            key: tuple[int | None, str | None, str] = (None, missing, "missing")
            if key not in seen:
                seen.add(key)
                problems.append(Problem(file, 1, missing, "required column is missing from the header"))
            continue
        line = lines[int(index)]
        key = (line, str(column), check)  # one problem per cell and rule
        if key in seen:
            continue
        seen.add(key)
        problems.append(Problem(file, line, str(column), f"{check}, found {str(value)!r}", fields.get(str(column))))
    problems.sort(key=lambda p: (p.line or 0, p.column or ""))
    return problems


def validate_generations(table: CsvTable) -> None:
    check_frame(table.frame, GENERATIONS_SCHEMA, table.name, table.lines)


def validate_manifest(table: CsvTable) -> None:
    check_frame(table.frame, MANIFEST_SCHEMA, table.name, table.lines)
