"""DESIGN.md "Phase-0 table API": the rules of update_csv_atomic and the typed API, one test (at least) each.

Issue 13's reproductions are named after their item: each failed before the fix.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from archi3d import (
    Archi3dError,
    InputError,
    LockTimeoutError,
    ReplaceRefusedError,
    Status,
    TableError,
    WriteFailedError,
    object_file,
    rows_of_run,
    update_csv_atomic,
    write_text_atomic,
)
from archi3d.csvtable import BOM, read_csv_table
from archi3d.model import GenerationRow
from workspace_builder import GLB, RUN, gen_row, output, rel_output, write_table

KEYS = ["run_id", "job_id"]


def _table(tmp_path: Path, data: bytes, name: str = "generations.csv") -> Path:
    path = tmp_path / "tables" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _cells(path: Path) -> list[dict[str, str]]:
    table = read_csv_table(path)
    return table.rows(range(len(table)))


# ----------------------------------------------------------------------------------- paths and new files


def test_a_str_path_is_accepted(tmp_path: Path) -> None:
    """Issue 13, 9: a str path raised AttributeError."""
    path = tmp_path / "tables" / "generations.csv"
    assert update_csv_atomic(str(path), pd.DataFrame([gen_row("j1")]), KEYS) == (1, 0)
    assert [r["job_id"] for r in _cells(path)] == ["j1"]


@pytest.mark.parametrize("name", ["generations.csv", "fscore.csv"])
def test_a_new_table_gets_a_bom_and_its_parent_folders(tmp_path: Path, name: str) -> None:
    """Issue 13, 10: a new CSV other than generations.csv got no BOM."""
    path = tmp_path / "a" / "b" / name
    update_csv_atomic(path, pd.DataFrame([gen_row("j1")]), KEYS)
    data = path.read_bytes()
    assert data.startswith(BOM) and not data.startswith(BOM + BOM)
    assert read_csv_table(path).header[:2] == (
        ("product_id", "variant") if name == "generations.csv" else ("run_id", "job_id")
    )


@pytest.mark.parametrize("bom", [b"", BOM])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_an_existing_table_keeps_its_bom_or_lack_of_one_and_its_line_endings(
    tmp_path: Path, bom: bytes, newline: bytes
) -> None:
    path = _table(tmp_path, bom + newline.join([b"run_id,job_id,status", b"r,j1,enqueued", b""]))
    update_csv_atomic(path, pd.DataFrame([{"run_id": "r", "job_id": "j2", "status": "running"}]), KEYS)
    assert path.read_bytes() == bom + newline.join([b"run_id,job_id,status", b"r,j1,enqueued", b"r,j2,running", b""])


def test_write_text_atomic_creates_missing_folders(tmp_path: Path) -> None:
    """Issue 13, 10: it raised FileNotFoundError."""
    path = tmp_path / "new" / "folder" / "notes.txt"
    write_text_atomic(str(path), "hello\r\n")
    assert path.read_bytes() == b"hello\r\n"


# ----------------------------------------------------------------------------------- keys


def test_a_key_column_missing_from_the_frame_is_refused(tmp_path: Path) -> None:
    """Issue 13, 5: a frame without job_id inserted a row with an empty key (`1,,9`)."""
    path = _table(tmp_path, b"run_id,job_id,v\nr,j1,1\n", "t.csv")
    with pytest.raises(InputError, match=r"key column.*job_id.*not in the frame"):
        update_csv_atomic(path, pd.DataFrame([{"run_id": "1", "v": "9"}]), KEYS)
    assert path.read_bytes() == b"run_id,job_id,v\nr,j1,1\n"


@pytest.mark.parametrize("empty", ["", None, float("nan"), pd.NA])
def test_an_empty_key_cell_is_refused(tmp_path: Path, empty: object) -> None:
    path = _table(tmp_path, b"run_id,job_id,v\nr,j1,1\n", "t.csv")
    frame = pd.DataFrame({"run_id": ["r", "r"], "job_id": pd.Series(["j2", empty], dtype=object), "v": ["1", "2"]})
    with pytest.raises(InputError, match="key column job_id is empty in frame rows 1"):
        update_csv_atomic(path, frame, KEYS)
    assert path.read_bytes() == b"run_id,job_id,v\nr,j1,1\n"


def test_a_float_key_column_from_dtype_inference_is_refused(tmp_path: Path) -> None:
    """Issue 13, 5: `pd.read_csv` defaults made phantom rows `197260739297.0` and `inf`."""
    data = BOM + b"run_id,job_id,status\nr1,197260739297,completed\nr1,inf,completed\nr1,12e456789012,enqueued\n"
    path = _table(tmp_path, data)
    inferred = pd.read_csv(path, encoding="utf-8-sig")
    assert inferred["job_id"].dtype.kind == "f"  # what a caller gets by default
    inferred["fscore"] = 0.5
    with pytest.raises(InputError) as caught:
        update_csv_atomic(path, inferred, KEYS)
    assert "key column job_id holds floats" in str(caught.value) and "197260739297.0" in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert path.read_bytes() == data
    as_text = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    as_text["fscore"] = "0.5"
    assert update_csv_atomic(path, as_text, KEYS) == (0, 3)
    assert [r["job_id"] for r in _cells(path)] == ["197260739297", "inf", "12e456789012"]


def test_float_values_in_an_object_key_column_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with pytest.raises(InputError, match="holds floats"):
        update_csv_atomic(path, pd.DataFrame({"run_id": ["r"], "job_id": pd.Series([1.0], dtype=object)}), KEYS)
    assert not path.exists()


def test_keys_that_are_not_ids_are_refused_for_generations_csv_only(tmp_path: Path) -> None:
    frame = pd.DataFrame([{"run_id": "r", "job_id": "../escape", "status": "enqueued"}])
    with pytest.raises(InputError, match=r"key column job_id holds values that are not valid ids \('../escape'\)"):
        update_csv_atomic(tmp_path / "generations.csv", frame, KEYS)
    assert not (tmp_path / "generations.csv").exists()
    update_csv_atomic(tmp_path / "other.csv", frame, KEYS)
    assert _cells(tmp_path / "other.csv")[0]["job_id"] == "../escape"


# ----------------------------------------------------------------------------------- values


def test_an_int_column_with_a_gap_is_written_without_dot_zero(tmp_path: Path) -> None:
    """Issue 13, 5: an int column holding a NaN was written `4.0`."""
    path = tmp_path / "t.csv"
    frame = pd.DataFrame({"run_id": ["r", "r"], "job_id": ["a", "b"], "n": [4, None]})
    assert frame["n"].dtype == np.float64
    update_csv_atomic(path, frame, KEYS)
    assert [r["n"] for r in _cells(path)] == ["4", ""]


def test_float32_is_written_as_its_shortest_text(tmp_path: Path) -> None:
    """Issue 13, 5: float32 0.1 became `0.10000000149011612`."""
    path = tmp_path / "t.csv"
    frame = pd.DataFrame({"run_id": ["r", "r"], "job_id": ["a", "b"], "f": np.array([0.1, 2.5], dtype=np.float32)})
    update_csv_atomic(path, frame, KEYS)
    assert [r["f"] for r in _cells(path)] == ["0.1", "2.5"]


def test_a_float_column_with_a_fraction_keeps_dot_zero_on_its_integral_values(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    frame = pd.DataFrame({"run_id": ["r"] * 3, "job_id": ["a", "b", "c"], "f": [1.0, 0.25, 1e20]})
    update_csv_atomic(path, frame, KEYS)
    assert [r["f"] for r in _cells(path)] == ["1.0", "0.25", "1e+20"]


def test_strings_are_written_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    values = ["00123", " padded ", "1.50", "NaN", "", "a,b", 'q"uote', "two\nlines", "é"]
    frame = pd.DataFrame({"run_id": "r", "job_id": [f"j{i}" for i in range(len(values))], "s": values})
    update_csv_atomic(path, frame, KEYS)
    assert [r["s"] for r in _cells(path)] == values


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, pd.NaT])
def test_a_missing_value_leaves_the_cell_as_it_is(tmp_path: Path, missing: object) -> None:
    path = _table(tmp_path, b"run_id,job_id,a,b\nr,j1,keep,old\n", "t.csv")
    frame = pd.DataFrame({"run_id": ["r"], "job_id": ["j1"], "a": pd.Series([missing], dtype=object), "b": ["new"]})
    assert update_csv_atomic(path, frame, KEYS) == (0, 1)
    assert path.read_bytes() == b"run_id,job_id,a,b\nr,j1,keep,new\n"


_FLOAT32 = st.floats(width=32, allow_nan=False)
_FLOAT64 = st.floats(allow_nan=False)


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    """Frames of text, ints, floats with gaps (an int column with a gap is a float column) and float32."""
    rows = draw(st.integers(1, 6))
    text = draw(st.lists(st.text(max_size=8), min_size=rows, max_size=rows))
    ints = draw(st.lists(st.integers(-(2**53), 2**53), min_size=rows, max_size=rows))
    gaps = draw(st.lists(st.one_of(st.none(), st.integers(-(2**53), 2**53), _FLOAT64), min_size=rows, max_size=rows))
    f32 = draw(st.lists(st.one_of(st.none(), _FLOAT32), min_size=rows, max_size=rows))
    return pd.DataFrame(
        {
            "run_id": "r",
            "job_id": [f"j{i}" for i in range(rows)],
            "text": text,
            "ints": ints,
            "gaps": pd.Series(gaps, dtype=np.float64),
            "f32": pd.Series(f32, dtype=np.float32),
        }
    )


def _reads_back(written: str, value: object) -> bool:
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return written == ""
    if isinstance(value, np.float32):
        return bool(np.float32(written) == value)
    if isinstance(value, float | np.floating):
        return float(written) == float(value)
    if isinstance(value, int | np.integer):
        return int(written) == int(value)
    return written == value


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames())
def test_what_is_written_reads_back_equal_in_its_own_type(frame: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        update_csv_atomic(path, frame, KEYS)
        rows = _cells(path)
    for column in ("text", "ints", "gaps", "f32"):
        values = frame[column].to_numpy()
        for row, value in zip(rows, values):
            assert _reads_back(row[column], value), (column, row[column], value)
        if column == "f32":
            for row, value in zip(rows, values):
                if not math.isnan(value):  # no digit more than float32 needs
                    assert row[column] in (str(value), str(value).removesuffix(".0"))
        if column == "gaps" and all(float(v).is_integer() for v in values if not math.isnan(v)):
            assert not any(row[column].endswith(".0") for row in rows)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=hpd.data_frames([hpd.column("v", dtype=float), hpd.column("w", dtype=np.float32)]))
def test_hypothesis_frames_of_floats_read_back_equal(frame: pd.DataFrame) -> None:
    frame = frame.assign(run_id="r", job_id=[f"j{i}" for i in range(len(frame))])
    if frame.empty:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        update_csv_atomic(path, frame, KEYS)
        rows = _cells(path)
    for row, v, w in zip(rows, frame["v"], frame["w"]):
        assert row["v"] == "" if math.isnan(v) else float(row["v"]) == v
        assert row["w"] == "" if math.isnan(w) else np.float32(row["w"]) == w


# ----------------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (BOM + BOM + b"run_id,job_id,status\nr,j1,enqueued\n", "doubled BOM"),  # issue 13, 6: a doubled BOM
        (b"run_id,,job_id,status\nr,x,j1,enqueued\n", "empty column name"),
        (b"run_id,job_id,status,job_id\nr,j1,enqueued,j1\n", "more than once"),
    ],
    ids=["doubled-bom", "empty-name", "duplicated-name"],
)
def test_a_header_that_is_not_usable_is_a_schema_error_never_a_new_column(
    tmp_path: Path, data: bytes, found: str
) -> None:
    path = _table(tmp_path, data)
    with pytest.raises(TableError, match=found):
        update_csv_atomic(path, pd.DataFrame([{"run_id": "r", "job_id": "j1", "fscore": "1"}]), KEYS)
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    "columns", [["run_id", "job_id", ""], ["run_id", "job_id", "\ufefffscore"], ["run_id", "job_id", "v", "v"]]
)
def test_a_frame_with_a_column_name_that_is_not_usable_is_refused(tmp_path: Path, columns: list[str]) -> None:
    frame = pd.DataFrame([["r", "j1", *["x"] * (len(columns) - 2)]], columns=columns)
    with pytest.raises(InputError, match="header is not usable"):
        update_csv_atomic(tmp_path / "t.csv", frame, KEYS)
    assert not (tmp_path / "t.csv").exists()


# ----------------------------------------------------------------------------------- errors


def test_error_classes_are_also_the_standard_exceptions() -> None:
    assert issubclass(InputError, ValueError) and issubclass(TableError, ValueError)
    assert issubclass(LockTimeoutError, TimeoutError) and issubclass(ReplaceRefusedError, TimeoutError)
    assert issubclass(WriteFailedError, OSError)
    for error in (InputError, TableError, LockTimeoutError, ReplaceRefusedError, WriteFailedError):
        assert issubclass(error, Archi3dError)
    assert (InputError.exit_code, LockTimeoutError.exit_code, WriteFailedError.exit_code) == (2, 3, 3)


def test_a_write_that_fails_names_the_file_and_keeps_its_oserror(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.write_text("a file where the folder should be")
    with pytest.raises(WriteFailedError) as caught:
        update_csv_atomic(folder / "t.csv", pd.DataFrame([gen_row("j1")]), KEYS)
    assert str(folder) in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError) and caught.value.errno == caught.value.__cause__.errno


# ----------------------------------------------------------------------------------- links


def test_a_linked_table_stays_a_link_and_its_target_is_replaced(tmp_path: Path) -> None:
    """Issue 13, 3: the link was replaced by a regular file and the shared target never updated."""
    shared = tmp_path / "shared" / "generations.csv"
    shared.parent.mkdir()
    shared.write_bytes(BOM + b"run_id,job_id,status\nr,j1,enqueued\n")
    link = tmp_path / "ws" / "tables" / "generations.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(shared)
    update_csv_atomic(link, pd.DataFrame([{"run_id": "r", "job_id": "j1", "fscore": "0.5"}]), KEYS)
    assert link.is_symlink() and os.readlink(link) == str(shared)
    assert shared.read_bytes() == BOM + b"run_id,job_id,status,fscore\nr,j1,enqueued,0.5\n"
    assert sorted(p.name for p in link.parent.iterdir()) == ["generations.csv", "generations.lock"]
    assert sorted(p.name for p in shared.parent.iterdir()) == ["generations.csv"]  # no temp left beside the target


# ----------------------------------------------------------------------------------- the typed read API


def test_rows_of_run_takes_statuses_as_members_or_text(tmp_path: Path) -> None:
    """Issue 13, 9: statuses=["completed"] raised AttributeError."""
    write_table(tmp_path, [gen_row("j1", "completed"), gen_row("j2", "failed"), gen_row("j3", "enqueued")])
    assert [r.job_id for r in rows_of_run(tmp_path, RUN, statuses=["completed"])] == ["j1"]
    assert [r.job_id for r in rows_of_run(tmp_path, RUN, statuses=[Status.FAILED, "enqueued"])] == ["j2", "j3"]
    with pytest.raises(InputError, match=r"expected enqueued, running, failed, completed.*found 'done'"):
        rows_of_run(tmp_path, RUN, statuses=["done"])


def test_rows_of_run_in_a_workspace_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    """Issue 13, 10: it returned []."""
    with pytest.raises(InputError, match="not found"):
        rows_of_run(tmp_path / "nowhere", RUN)
    tmp_path.joinpath("empty").mkdir()
    assert rows_of_run(tmp_path / "empty", RUN) == []  # a workspace without a table has no rows


def test_a_row_is_immutable_down_to_its_extra_cells() -> None:
    """Issue 13, 10: row.extra was a mutable dict on an immutable row."""
    row = GenerationRow.from_cells({"run_id": "r", "job_id": "j", "status": "completed", "fscore": "0.5"})
    with pytest.raises(TypeError):
        row.extra["fscore"] = "0.9"  # type: ignore[index]
    assert row.extra == {"fscore": "0.5"}


def test_object_file_follows_a_linked_outputs_folder(tmp_path: Path) -> None:
    write_table(tmp_path, [gen_row("j1", "completed", gen_object_path=rel_output("j1"))])
    output(tmp_path, "j1")
    outputs = tmp_path / "runs" / RUN / "outputs"
    elsewhere = tmp_path.parent / f"{tmp_path.name}-disk2"
    outputs.rename(elsewhere)
    outputs.symlink_to(elsewhere)
    (row,) = rows_of_run(tmp_path, RUN)
    assert object_file(tmp_path, row) == tmp_path / rel_output("j1")
    (elsewhere / "j1" / "generated.glb").unlink()
    (elsewhere / "j1" / "generated.glb").symlink_to(tmp_path / "stray.glb")
    (tmp_path / "stray.glb").write_bytes(GLB)
    assert object_file(tmp_path, row) is None  # a link in the job's folder must stay in that folder


def test_every_public_name_resolves() -> None:
    import archi3d

    for name in archi3d.__all__:
        assert getattr(archi3d, name).__name__ == name
    with pytest.raises(AttributeError):
        archi3d.no_such_name  # noqa: B018


def test_an_upsert_without_key_columns_is_refused(tmp_path: Path) -> None:
    path = _table(tmp_path, b"run_id,job_id\nr,j1\n", "t.csv")
    with pytest.raises(InputError, match="no key column"):
        update_csv_atomic(path, pd.DataFrame([{"run_id": "r", "job_id": "j2"}]), [])
    assert path.read_bytes() == b"run_id,job_id\nr,j1\n"


def test_a_row_only_a_lenient_parser_reads_is_refused_when_an_upsert_touches_it(tmp_path: Path) -> None:
    data = b'run_id,job_id,v\nr,j1,"x"y\nr,j2,1\n'
    path = _table(tmp_path, data, "t.csv")
    update_csv_atomic(path, pd.DataFrame([{"run_id": "r", "job_id": "j2", "v": "2"}]), KEYS)
    with pytest.raises(TableError, match=r"t\.csv:2: malformed CSV record"):
        update_csv_atomic(path, pd.DataFrame([{"run_id": "r", "job_id": "j1", "v": "2"}]), KEYS)
    assert path.read_bytes() == b'run_id,job_id,v\nr,j1,"x"y\nr,j2,2\n'
