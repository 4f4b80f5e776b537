"""update_csv_atomic: lossless, text-only, keyed upserts (archi3d.upsert)."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archi3d.columns import GENERATIONS_COLUMNS
from archi3d.csvtable import BOM, CsvTable, read_csv_table
from archi3d.errors import InputError, TableError
from archi3d.paths import PathResolver
from archi3d.upsert import update_csv_atomic

KEYS = ["run", "id"]


def _csv_bytes(records: Sequence[Sequence[str]], newline: str, bom: bool, quote_all: bool = False) -> bytes:
    """The file csv.writer makes of `records`, with the given BOM and line ending.

    The writer runs with "\\r\\n" (so it quotes any cell holding "\\r" or "\\n") and each record's
    terminator is then swapped for `newline`.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    text = ""
    for record in records:
        out.seek(0)
        out.truncate()
        writer.writerow(record)
        text += out.getvalue()[:-2] + newline
    return (BOM if bom else b"") + text.encode("utf-8")


def _frame(rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame([[row[c] for c in columns] for row in rows], columns=list(columns), dtype="str")


def _cells(table: CsvTable) -> list[dict[str, str]]:
    return table.rows(list(range(len(table))))


def _temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if "archi3d-tmp" in p.name]


# --- hypothesis round trip ----------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=10)
_SPECIAL = st.sampled_from(
    [
        *["", '"', '""', ",", "a,b", "\n", "\r\n", "\r", "a\rb", "x\r\ny", 'say "hi"\n', " "],
        *["00123", "197260739297", "12e456789012", "NaN", "1e5"],
    ]
)
_CELL = st.one_of(_SPECIAL, _TEXT)
_ID = st.one_of(
    st.sampled_from(["00123", "0123", "197260739297", "12e456789012", "1.0", "-1", "nan"]), _TEXT.filter(bool)
)
_EXTRA_NAMES = ["notes", "a,b", 'q"uote', "multi\nline", "émoji 🙂", "00123", " "]


class Scenario(NamedTuple):
    header: list[str]
    initial: list[dict[str, str]]
    updates: list[dict[str, str]]
    columns: list[str]
    added: list[str]


@st.composite
def _scenario(draw: st.DrawFn) -> Scenario:
    extra = draw(st.lists(st.sampled_from(_EXTRA_NAMES), min_size=1, max_size=4, unique=True))
    header = draw(st.permutations([*KEYS, *extra]))
    keys = draw(st.lists(st.tuples(_ID, _ID), min_size=0, max_size=8, unique=True))
    repeated = draw(st.lists(st.sampled_from(keys), max_size=3)) if keys else []  # a key held by several rows
    order = draw(st.permutations([*keys, *repeated]))
    initial = [{**{c: draw(_CELL) for c in header}, "run": run, "id": job} for run, job in order]
    new_keys = draw(st.lists(st.tuples(_ID, _ID).filter(lambda k: k not in keys), min_size=0, max_size=5, unique=True))
    touched = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))) if keys else []
    if not new_keys and not touched:
        new_keys = [("fresh-run", "fresh-id")] if ("fresh-run", "fresh-id") not in keys else [("fresh2", "x")]
    set_cols = draw(st.lists(st.sampled_from(extra), unique=True, max_size=len(extra)))
    added = draw(st.lists(st.sampled_from(["added", "multi\nline new", "zz"]), unique=True, max_size=2))
    columns = [*KEYS, *set_cols, *added]
    updates = [{**{c: draw(_CELL) for c in columns}, "run": run, "id": job} for run, job in [*touched, *new_keys]]
    updates = draw(st.permutations(updates))
    return Scenario(header, initial, updates, columns, added)


@pytest.mark.parametrize("bom", [False, True], ids=["nobom", "bom"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scenario=_scenario(), quote_all=st.booleans())
def test_upsert_round_trip_keeps_untouched_rows(bom: bool, newline: str, scenario: Scenario, quote_all: bool) -> None:
    header, initial, updates, columns, added = scenario
    nl = newline.encode()

    data = _csv_bytes([header, *[[row[c] for c in header] for row in initial]], newline, bom, quote_all)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        path.write_bytes(data)
        before = read_csv_table(path)
        assert _cells(before) == initial  # the fixture itself is sound

        inserted, updated = update_csv_atomic(path, _frame(updates, columns), KEYS, lock_timeout=5)

        after = read_csv_table(path)
        assert _temps(Path(folder)) == []
    raw_after = after.data

    # Expected cells, by a model of the upsert.
    by_key = {(u["run"], u["id"]): u for u in updates}
    new_keys = [k for k in by_key if k not in {(r["run"], r["id"]) for r in initial}]
    changed = {
        index
        for index, row in enumerate(initial)
        if any(v != row.get(c, "") for c, v in by_key.get((row["run"], row["id"]), {}).items())
    }
    if not new_keys and not changed:
        added = []  # nothing to write, not even new columns that would only hold empty cells
    full_header = [*header, *added]
    expected = [{c: row.get(c, "") for c in full_header} for row in initial]
    for row in expected:
        row.update((c, v) for c, v in by_key.get((row["run"], row["id"]), {}).items() if c in row)
    expected += [{c: by_key[k].get(c, "") for c in full_header} for k in new_keys]
    assert (inserted, updated) == (len(new_keys), len(changed))
    assert list(after.header) == full_header
    assert _cells(after) == expected
    assert after.bom is bom and raw_after.startswith(BOM) is bom
    assert after.newline == nl
    if not added:
        assert raw_after[: after.header_end] == data[: before.header_end]
    for index in range(len(initial)):
        if index in changed:
            continue
        old = before.raw(index)
        if added:  # the row gains empty cells at the tail, nothing else
            assert after.raw(index) == old[: -len(nl)] + b"," * len(added) + nl
        else:
            assert after.raw(index) == old
    for index in range(len(after)):
        assert after.raw(index).endswith(nl)
    if not new_keys and not changed:
        assert raw_after == data


# --- duplicates, counts, no-op, new columns -------------------------------------------------------------


def test_every_row_of_a_key_the_table_holds_twice_gets_the_new_cells(tmp_path: Path) -> None:
    """Issue 13, 1: the upsert used to collapse them, losing `completed`, `gpu-01` and `A100`."""
    path = tmp_path / "tables" / "generations.csv"
    path.parent.mkdir()
    path.write_bytes(b"run_id,job_id,status,worker_host,worker_gpu\nr1,j1,enqueued,,\nr1,j1,completed,gpu-01,A100\n")
    frame = pd.DataFrame([{"run_id": "r1", "job_id": "j1", "fscore": "0.7"}])
    assert update_csv_atomic(str(path), frame, ["run_id", "job_id"]) == (0, 2)
    assert path.read_bytes() == (
        b"run_id,job_id,status,worker_host,worker_gpu,fscore\nr1,j1,enqueued,,,0.7\nr1,j1,completed,gpu-01,A100,0.7\n"
    )


def test_rows_of_a_key_between_other_rows_are_each_updated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"run,id,v,w\nr,a,1,x\nr,b,2,y\nr,a,3,z\nr,c,4,w\nr,a,9,q\n")
    assert update_csv_atomic(path, _frame([{"run": "r", "id": "a", "v": "9"}], ["run", "id", "v"]), KEYS) == (0, 2)
    assert path.read_bytes() == b"run,id,v,w\nr,a,9,x\nr,b,2,y\nr,a,9,z\nr,c,4,w\nr,a,9,q\n"


def test_several_rows_of_one_key_in_the_frame_apply_in_turn(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"run,id,v,w\nr,a,1,x\n")
    frame = pd.DataFrame(
        [{"run": "r", "id": "a", "v": "2", "w": "y"}, {"run": "r", "id": "a", "v": "3", "w": None}], dtype=object
    )
    assert update_csv_atomic(path, frame, KEYS) == (0, 1)
    assert path.read_bytes() == b"run,id,v,w\nr,a,3,y\n"


def test_updated_counts_only_rows_whose_text_changed(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"run,id,v,w\nr,a,1,x\nr,b,2,y\nr,c,3,z\n")
    rows = [
        {"run": "r", "id": "a", "v": "1"},  # same text
        {"run": "r", "id": "b", "v": "2.0"},  # same number, other text: a change
        {"run": "r", "id": "c", "v": "3"},  # same text
        {"run": "r", "id": "d", "v": "4"},
        {"run": "r", "id": "e", "v": "5"},
    ]
    assert update_csv_atomic(path, _frame(rows, ["run", "id", "v"]), KEYS) == (2, 1)
    assert path.read_bytes() == b"run,id,v,w\nr,a,1,x\nr,b,2.0,y\nr,c,3,z\nr,d,4,\nr,e,5,\n"


@pytest.mark.parametrize("bom", [False, True])
def test_upserting_identical_values_changes_nothing(tmp_path: Path, bom: bool) -> None:
    path = tmp_path / "t.csv"
    data = (BOM if bom else b"") + b'run,id,v,w\r\n"r","a","1",x\r\n\r\nr,b,"2,5",y\r\nr,c,3,"z\r\nz"'
    path.write_bytes(data)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    stat = path.stat()
    rows = [{"run": "r", "id": "a", "v": "1"}, {"run": "r", "id": "b", "v": "2,5"}, {"run": "r", "id": "c", "v": "3"}]
    assert update_csv_atomic(path, _frame(rows, ["run", "id", "v"]), KEYS) == (0, 0)
    assert update_csv_atomic(path, _frame([{"run": "r", "id": "c", "w": "z\r\nz"}], ["run", "id", "w"]), KEYS) == (0, 0)
    assert path.read_bytes() == data
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert _temps(tmp_path) == []


def test_only_the_given_columns_are_set_for_an_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'run,id,v,w,x\nr,a,1,"keep, me",00123\nr,b,2,"y",007\n')
    assert update_csv_atomic(path, _frame([{"run": "r", "id": "a", "v": "10"}], ["run", "id", "v"]), KEYS) == (0, 1)
    table = read_csv_table(path)
    assert _cells(table)[0] == {"run": "r", "id": "a", "v": "10", "w": "keep, me", "x": "00123"}
    assert table.raw(1) == b'r,b,2,"y",007\n'


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_new_columns_go_at_the_tail(tmp_path: Path, newline: bytes) -> None:
    path = tmp_path / "t.csv"
    lines = [b"run,id,v", b'r,a,"1"', b"r,b,2", b'r,c,"x' + newline + b'y"']
    path.write_bytes(newline.join(lines) + newline)
    rows = [{"run": "r", "id": "b", "fscore": "0.5", "note": "n"}, {"run": "r", "id": "d", "fscore": "0.7", "note": ""}]
    assert update_csv_atomic(path, _frame(rows, ["run", "id", "fscore", "note"]), KEYS) == (1, 1)
    table = read_csv_table(path)
    assert table.header == ("run", "id", "v", "fscore", "note")
    assert table.raw(0) == b'r,a,"1",,' + newline
    assert table.raw(2) == b'r,c,"x' + newline + b'y",,' + newline
    assert _cells(table) == [
        {"run": "r", "id": "a", "v": "1", "fscore": "", "note": ""},
        {"run": "r", "id": "b", "v": "2", "fscore": "0.5", "note": "n"},
        {"run": "r", "id": "c", "v": "x" + newline.decode() + "y", "fscore": "", "note": ""},
        {"run": "r", "id": "d", "v": "", "fscore": "0.7", "note": ""},
    ]


def test_insert_after_a_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"run,id,v\r\nr,a,1")
    assert update_csv_atomic(path, _frame([{"run": "r", "id": "b", "v": "2"}], ["run", "id", "v"]), KEYS) == (1, 0)
    assert path.read_bytes() == b"run,id,v\r\nr,a,1\r\nr,b,2\r\n"


def test_new_plain_file_takes_the_frame_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    assert update_csv_atomic(path, _frame([{"run": "r", "id": "00123", "v": "1"}], ["run", "id", "v"]), KEYS) == (1, 0)
    assert path.read_bytes() == BOM + b"run,id,v\nr,00123,1\n"


def test_missing_key_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    data = b"run,id,v\nr,a,1\n"
    path.write_bytes(data)
    with pytest.raises(InputError):
        update_csv_atomic(path, _frame([{"v": "2"}], ["v"]), ["job"])
    assert path.read_bytes() == data


# --- generations.csv is schema-validated ------------------------------------------------------------


def _gen_row(job_id: str, status: str = "enqueued", **cells: str) -> dict[str, str]:
    return {"run_id": "run-1", "job_id": job_id, "status": status, **cells}


def test_generations_csv_created_with_bom_and_known_columns(tmp_path: Path) -> None:
    resolver = PathResolver(tmp_path)
    resolver.ensure_mutable_tree()
    path = resolver.generations_csv_path()
    rows = [_gen_row("197260739297", product_id="00123"), _gen_row("12e456789012", product_id="0")]
    columns = ["run_id", "job_id", "status", "product_id"]
    assert update_csv_atomic(path, _frame(rows, columns), ["run_id", "job_id"]) == (2, 0)
    table = read_csv_table(path)
    assert table.bom
    assert table.header == GENERATIONS_COLUMNS
    more = [_gen_row("j3", "completed", product_id="1")]
    assert update_csv_atomic(path, _frame(more, columns), ["run_id", "job_id"]) == (1, 0)
    table = read_csv_table(path)
    assert table.column("job_id") == ["197260739297", "12e456789012", "j3"]
    assert table.column("product_id") == ["00123", "0", "1"]
    assert table.column("status") == ["enqueued", "enqueued", "completed"]
    assert not (tmp_path / "tables" / "generations.csv.lock").exists()
    assert resolver.generations_lock_path().exists()  # the worker's lock file is the one taken


@pytest.mark.parametrize(
    "bad",
    [
        _gen_row("j1", "done"),
        _gen_row("../x"),
        _gen_row("j1", generation_start="yesterday"),
        _gen_row("j1", gen_object_path="/abs/x.glb"),
        _gen_row("j1", generation_duration_s="fast"),
    ],
)
def test_generations_csv_refuses_invalid_rows(tmp_path: Path, bad: dict[str, str]) -> None:
    path = tmp_path / "tables" / "generations.csv"
    path.parent.mkdir()
    cols = ["run_id", "job_id", "status"]
    update_csv_atomic(path, _frame([_gen_row("j1"), _gen_row("j2")], cols), ["run_id", "job_id"])
    data = path.read_bytes()
    with pytest.raises(InputError):  # a key that is not an id is refused before the lock, a bad cell by the schema
        update_csv_atomic(path, _frame([bad], list(bad)), ["run_id", "job_id"])
    assert path.read_bytes() == data
    assert _temps(path.parent) == []


def test_only_the_rows_written_are_validated(tmp_path: Path) -> None:
    """Rows nobody touches were validated when they were written: they keep their bytes, unchecked."""
    path = tmp_path / "generations.csv"
    data = BOM + b"run_id,job_id,status\nrun-1,j1,enqueued\nrun-1,j2,bogus\n"
    path.write_bytes(data)
    update_csv_atomic(path, _frame([_gen_row("j3")], ["run_id", "job_id", "status"]), ["run_id", "job_id"])
    assert path.read_bytes() == data + b"run-1,j3,enqueued\n"
    touched = pd.DataFrame([{"run_id": "run-1", "job_id": "j2", "fscore": "0.5"}])
    with pytest.raises(TableError) as caught:
        update_csv_atomic(path, touched, ["run_id", "job_id"])
    assert [(p.line, p.column) for p in caught.value.problems] == [(3, "status")]
    assert path.read_bytes() == data + b"run-1,j3,enqueued\n"


def test_other_csv_names_are_not_schema_validated(tmp_path: Path) -> None:
    path = tmp_path / "manifest_extra.csv"
    update_csv_atomic(path, _frame([_gen_row("../x", "done")], ["run_id", "job_id", "status"]), ["run_id", "job_id"])
    assert read_csv_table(path).column("status") == ["done"]


def test_missing_values_in_a_mixed_frame_leave_existing_cells_alone(tmp_path: Path) -> None:
    path = tmp_path / "generations.csv"
    first = pd.DataFrame([{"run_id": "r", "job_id": "a", "status": "completed", "fscore": "0.1"}])
    update_csv_atomic(path, first, ["run_id", "job_id"])
    mixed = pd.DataFrame(
        [
            {"run_id": "r", "job_id": "a", "fscore": "0.2"},
            {"run_id": "r", "job_id": "b", "status": "enqueued", "fscore": "0.3"},
        ]
    )
    assert update_csv_atomic(path, mixed, ["run_id", "job_id"]) == (1, 1)
    table = read_csv_table(path)
    rows = {cells["job_id"]: cells for cells in table.rows(range(len(table)))}
    assert rows["a"]["status"] == "completed" and rows["a"]["fscore"] == "0.2"
    assert rows["b"]["status"] == "enqueued"
    cleared = pd.DataFrame([{"run_id": "r", "job_id": "a", "fscore": ""}])
    assert update_csv_atomic(path, cleared, ["run_id", "job_id"]) == (0, 1)
    assert read_csv_table(path).rows([0])[0]["fscore"] == ""
