"""The domain model (archi3d.model): Status precedence, text <-> typed rows, jobs, cell formats."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archi3d.columns import GENERATIONS_COLUMNS, MANIFEST_COLUMNS, NUMBER_COLUMNS, TIMESTAMP_COLUMNS
from archi3d.model import (
    GenerationRow,
    Job,
    Status,
    format_number,
    format_timestamp,
    parse_number,
    parse_timestamp,
    text_converter,
)

UTC = dt.UTC
ORDER = (Status.ENQUEUED, Status.RUNNING, Status.FAILED, Status.COMPLETED)
TEXT_COLUMNS = tuple(
    c for c in GENERATIONS_COLUMNS if c not in NUMBER_COLUMNS and c not in TIMESTAMP_COLUMNS and c != "status"
)
KNOWN = frozenset(GENERATIONS_COLUMNS)

statuses = st.sampled_from(Status)


# --- strategies -----------------------------------------------------------------------------------

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
cell_text = st.text(max_size=12)


@st.composite
def timestamp_texts(draw: st.DrawFn) -> str:
    """ISO 8601 text as workers and people write it: date only, minutes, seconds, fractions,
    `T` or space, no offset, `Z`, `+HH:MM` or `+HHMM`."""
    moment = draw(st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2100, 12, 30)))
    shape = draw(st.sampled_from(["date", "minutes", "seconds", "fraction"]))
    date = moment.strftime("%Y-%m-%d")
    if shape == "date":
        return date
    sep = draw(st.sampled_from(["T", " "]))
    clock = moment.strftime("%H:%M")
    if shape in ("seconds", "fraction"):
        clock += moment.strftime(":%S")
    if shape == "fraction":
        clock += "." + f"{moment.microsecond:06d}"[: draw(st.integers(1, 6))]
    offset = draw(st.sampled_from(["", "Z", "+00:00", "-00:00", "+0000", "+05:30", "-0800", "+23:59", "-11:00"]))
    return f"{date}{sep}{clock}{offset}"


number_texts = st.one_of(
    st.sampled_from(["3", "3.0", "60.000", "0", "-0", "+1", ".5", "5.", "1e3", "1E-3", "007", "2.50", "1e999"]),
    st.from_regex(r"[+-]?(?:\d{1,7}(?:\.\d{0,6})?|\.\d{1,6})(?:[eE][+-]?\d{1,3})?", fullmatch=True),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)

extra_names = st.one_of(
    st.sampled_from(["fscore", "fscore_status", "vf_status", "vfscore_overall", "extra", "source", "line", "key"]),
    st.text(min_size=1, max_size=10),
).filter(lambda name: name not in KNOWN)


@st.composite
def valid_cells(draw: st.DrawFn) -> dict[str, str]:
    """Cells of a valid generations.csv row: a random subset of the known columns, plus extra ones."""
    cells: dict[str, str] = {
        "run_id": draw(ids),
        "job_id": draw(ids),
        "status": draw(statuses).value,
    }
    present = draw(st.sets(st.sampled_from([c for c in GENERATIONS_COLUMNS if c not in cells])))
    for column in GENERATIONS_COLUMNS:
        if column not in present:
            continue
        if column in TIMESTAMP_COLUMNS:
            cells[column] = draw(st.one_of(st.just(""), timestamp_texts()))
        elif column in NUMBER_COLUMNS:
            cells[column] = draw(st.one_of(st.just(""), number_texts))
        elif column.endswith("_path"):
            cells[column] = draw(st.sampled_from(["", "runs/r/outputs/j/generated.glb", "runs\\x\\y.glb", "a b/c.png"]))
        elif column == "gen_object_bytes":
            cells[column] = draw(st.sampled_from(["", "0", "464", "007", "123456789012"]))
        elif column == "gen_object_sha256":
            cells[column] = draw(st.sampled_from(["", "0" * 64, "9f" * 32]))
        else:
            cells[column] = draw(cell_text)
    for name, value in draw(st.dictionaries(extra_names, cell_text, max_size=4)).items():
        cells[name] = value
    # shuffle the column order: a CSV can put the known columns anywhere
    order = draw(st.permutations(list(cells)))
    return {name: cells[name] for name in order}


aware_datetimes = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes))),
    st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2100, 12, 30)),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
)


def new_value_strategy(column: str) -> st.SearchStrategy[Any]:
    """Typed values a reconciler may set in `column`, each written without loss."""
    if column == "status":
        return statuses
    if column in TIMESTAMP_COLUMNS:
        return st.one_of(st.none(), aware_datetimes)
    if column == "generation_duration_s":
        # consolidate writes durations with three decimals: values in milliseconds are exact
        return st.one_of(st.none(), st.integers(0, 10**9).map(lambda ms: ms / 1000))
    if column in NUMBER_COLUMNS:
        return st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
    if column == "gen_object_bytes":
        return st.one_of(st.none(), st.integers(0, 2**63))
    return cell_text


# --- Status ---------------------------------------------------------------------------------------


def test_status_values_and_str() -> None:
    assert [s.value for s in ORDER] == ["enqueued", "running", "failed", "completed"]
    assert [str(s) for s in ORDER] == ["enqueued", "running", "failed", "completed"]
    assert set(Status) == set(ORDER)


def test_status_precedence_is_completed_failed_running_enqueued() -> None:
    assert sorted(Status, key=lambda s: s.precedence) == list(ORDER)
    assert Status.COMPLETED.precedence > Status.FAILED.precedence > Status.RUNNING.precedence
    assert Status.RUNNING.precedence > Status.ENQUEUED.precedence


@given(statuses, statuses)
def test_status_precedence_is_a_total_order(a: Status, b: Status) -> None:
    # total and antisymmetric: exactly one of <, ==, > holds, and == only for the same status
    relations = [a.precedence < b.precedence, a.precedence == b.precedence, a.precedence > b.precedence]
    assert relations.count(True) == 1
    assert (a.precedence == b.precedence) == (a is b)
    assert (a.precedence < b.precedence) == (ORDER.index(a) < ORDER.index(b))


@given(statuses, statuses, statuses)
def test_status_precedence_is_transitive(a: Status, b: Status, c: Status) -> None:
    if a.precedence <= b.precedence and b.precedence <= c.precedence:
        assert a.precedence <= c.precedence


@given(statuses, statuses)
def test_combine_is_commutative(a: Status, b: Status) -> None:
    assert a.combine(b) is b.combine(a)


@given(statuses, statuses, statuses)
def test_combine_is_associative(a: Status, b: Status, c: Status) -> None:
    assert a.combine(b).combine(c) is a.combine(b.combine(c))


@given(statuses)
def test_combine_is_idempotent(a: Status) -> None:
    assert a.combine(a) is a


@given(statuses, statuses)
def test_combine_never_lowers_status_and_picks_the_higher(a: Status, b: Status) -> None:
    combined = a.combine(b)
    assert combined in (a, b)
    assert combined.precedence >= a.precedence
    assert combined.precedence >= b.precedence
    assert combined.precedence == max(a.precedence, b.precedence)


def test_combine_exhaustive_table() -> None:
    for a, b in itertools.product(ORDER, repeat=2):
        assert a.combine(b) is ORDER[max(ORDER.index(a), ORDER.index(b))]
    assert Status.ENQUEUED.combine(Status.COMPLETED) is Status.COMPLETED
    assert Status.FAILED.combine(Status.RUNNING) is Status.FAILED
    assert Status.COMPLETED.combine(Status.FAILED) is Status.COMPLETED


# --- text -> row -> text --------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(valid_cells())
def test_text_row_text_is_identity(cells: dict[str, str]) -> None:
    row = GenerationRow.from_cells(cells, line=7)
    out = row.to_cells()
    for column, text in cells.items():
        assert out[column] == text, column
        assert row.cell(column) == text, column
    # known columns the row did not have are written empty; nothing else appears
    for column in GENERATIONS_COLUMNS:
        if column not in cells:
            assert out[column] == ""
    assert set(out) == KNOWN | set(cells)
    assert list(out)[: len(GENERATIONS_COLUMNS)] == list(GENERATIONS_COLUMNS)
    assert row.line == 7
    assert dict(row.extra) == {k: v for k, v in cells.items() if k not in KNOWN}
    # and reading the written text again gives the same row and the same text
    again = GenerationRow.from_cells(out)
    assert again == row
    assert again.to_cells() == row.to_cells()


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("created_at", "2026-01-31T12:00:00Z"),
        ("created_at", "2026-01-31T12:00:00"),
        ("generation_start", "2026-01-31 12:00"),
        ("generation_end", "2026-01-31T13:00:00+05:00"),
        ("generation_end", "2026-01-31T13:00:00.5-0800"),
        ("generation_end", "2026-01-31"),
        ("generation_duration_s", "60.000"),
        ("generation_duration_s", "3"),
        ("unit_price_usd", "3.0"),
        ("unit_price_usd", "0.10"),
        ("source_n_images", "3"),
        ("used_n_images", "3.0"),
        ("used_n_images", "1e0"),
        ("product_id", "00123"),
        ("job_id", "197260739297"),
        ("job_id", "12e456789012"),
        ("gt_object_path", "runs\\x\\y.glb"),
        ("fscore", "0.50"),
    ],
)
def test_text_kept_exactly(column: str, text: str) -> None:
    cells = {"run_id": "r1", "job_id": "j1", "status": "completed", column: text}
    row = GenerationRow.from_cells(cells)
    assert row.cell(column) == text
    assert row.to_cells()[column] == text


def test_typed_values_of_a_row() -> None:
    row = GenerationRow.from_cells(
        {
            "run_id": "r1",
            "job_id": "00123",
            "status": "failed",
            "created_at": "2026-01-31T12:00:00",
            "generation_end": "2026-01-31T13:00:00+05:00",
            "generation_duration_s": "60.000",
            "used_n_images": "3",
            "fscore": "0.5",
        },
        line=4,
    )
    assert row.status is Status.FAILED
    assert row.job_id == "00123"
    assert row.created_at == dt.datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert row.created_at is not None and row.created_at.utcoffset() == dt.timedelta(0)
    assert row.generation_end == dt.datetime(2026, 1, 31, 8, tzinfo=UTC)
    assert row.generation_start is None
    assert row.generation_duration_s == 60.0
    assert row.used_n_images == 3.0
    assert row.unit_price_usd is None
    assert row.extra == {"fscore": "0.5"}
    assert row.key == ("r1", "00123")
    assert row.line == 4


def test_equal_values_from_different_texts_are_equal_rows() -> None:
    """source and line are not part of equality: `3` and `3.0` are the same value."""
    a = GenerationRow.from_cells({"run_id": "r", "job_id": "j", "status": "enqueued", "used_n_images": "3"}, 2)
    b = GenerationRow.from_cells({"run_id": "r", "job_id": "j", "status": "enqueued", "used_n_images": "3.0"}, 9)
    assert a == b
    assert a.cell("used_n_images") == "3"
    assert b.cell("used_n_images") == "3.0"


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("status", "bogus"),
        ("status", ""),
        ("status", "Completed"),
        ("created_at", "2026-13-01"),
        ("created_at", "yesterday"),
        ("generation_end", "2026-02-30T00:00:00"),
        ("generation_duration_s", "abc"),
        ("unit_price_usd", "1,5"),
        ("used_n_images", "nan"),
        ("source_n_images", "inf"),
    ],
)
def test_from_cells_rejects_a_cell_of_the_wrong_shape(column: str, text: str) -> None:
    cells = {"run_id": "r1", "job_id": "j1", "status": "enqueued", column: text}
    with pytest.raises(ValueError):
        GenerationRow.from_cells(cells)


# --- evolve changes one column --------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(valid_cells(), st.sampled_from(GENERATIONS_COLUMNS), st.data())
def test_evolve_one_field_changes_only_that_column(cells: dict[str, str], column: str, data: st.DataObject) -> None:
    row = GenerationRow.from_cells(cells)
    old = getattr(row, column)
    new = data.draw(new_value_strategy(column).filter(lambda v: v != old), label="new")
    evolved = attrs.evolve(row, **{column: new})
    before, after = row.to_cells(), evolved.to_cells()
    assert set(after) == set(before)
    changed = {c for c in before if before[c] != after[c]}
    assert changed == {column}
    assert evolved.cell(column) == after[column]
    # the new text reads back as the new value
    assert getattr(GenerationRow.from_cells(after), column) == new
    # and the row stays readable as a whole
    assert GenerationRow.from_cells(after) == evolved


@settings(max_examples=100, deadline=None)
@given(valid_cells(), st.sets(st.sampled_from(GENERATIONS_COLUMNS), max_size=5), st.data())
def test_changed_cells_over_the_source_are_the_evolved_rows_cells(
    cells: dict[str, str], columns: set[str], data: st.DataObject
) -> None:
    row = GenerationRow.from_cells(cells)
    evolved = attrs.evolve(row, **{column: data.draw(new_value_strategy(column), label=column) for column in columns})
    changed = evolved.changed_cells(row)
    assert set(changed) <= columns
    merged = {**row.source, **changed}
    assert {c: merged.get(c, "") for c in evolved.to_cells()} == evolved.to_cells()


def test_evolve_examples() -> None:
    cells = {
        "run_id": "r1",
        "job_id": "j1",
        "status": "running",
        "generation_start": "2026-01-31T12:00:00Z",
        "generation_duration_s": "60.000",
        "used_n_images": "3.0",
        "fscore": "x",
    }
    row = GenerationRow.from_cells(cells)
    base = row.to_cells()

    done = attrs.evolve(row, status=Status.COMPLETED).to_cells()
    assert done["status"] == "completed"
    assert {c for c in base if base[c] != done[c]} == {"status"}

    end = attrs.evolve(row, generation_end=dt.datetime(2026, 1, 31, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert end.cell("generation_end") == "2026-01-31T12:30:00+00:00"
    assert end.cell("generation_start") == "2026-01-31T12:00:00Z"

    duration = attrs.evolve(row, generation_duration_s=61.5)
    assert duration.cell("generation_duration_s") == "61.500"
    assert duration.cell("used_n_images") == "3.0"

    images = attrs.evolve(row, used_n_images=4.0)
    assert images.cell("used_n_images") == "4"
    cleared = attrs.evolve(row, used_n_images=None)
    assert cleared.cell("used_n_images") == ""

    # an equal value keeps its original text
    same = attrs.evolve(row, used_n_images=3.0, generation_start=dt.datetime(2026, 1, 31, 12, tzinfo=UTC))
    assert same.to_cells() == base


# --- Job ------------------------------------------------------------------------------------------


def test_job_from_cells_keeps_text_and_ignores_unknown_columns() -> None:
    cells = {
        "job_id": "12e456789012",
        "product_id": "00123",
        "variant": "a",
        "algo": "trellis",
        "used_n_images": "3",
        "used_image_1_path": "images\\1.png",
        "gt_object_path": "gt/x.glb",
        "product_name": "Chair",
        "manufacturer": "ACME",
        "comment": "ignored",
    }
    job = Job.from_cells(cells)
    assert job.job_id == "12e456789012"
    assert job.product_id == "00123"
    assert job.used_n_images == "3"
    assert job.used_image_2_path == ""
    row_cells = job.row_cells()
    assert list(row_cells) == list(MANIFEST_COLUMNS)
    assert {k: v for k, v in row_cells.items() if v} == {k: v for k, v in cells.items() if k != "comment"}


@given(st.dictionaries(st.sampled_from(MANIFEST_COLUMNS), cell_text), ids)
def test_job_from_cells_round_trips(cells: dict[str, str], job_id: str) -> None:
    cells = {**cells, "job_id": job_id}
    row_cells = Job.from_cells(cells).row_cells()
    assert row_cells == {name: cells.get(name, "") for name in MANIFEST_COLUMNS}


def test_job_from_cells_requires_job_id() -> None:
    with pytest.raises(Exception):
        Job.from_cells({"product_id": "1", "variant": "a", "algo": "x"})


# --- timestamps and numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T12:00:00Z", dt.datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00", dt.datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00+00:00", dt.datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T14:00:00+02:00", dt.datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T07:00:00-0500", dt.datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31 12:00", dt.datetime(2026, 1, 31, 12, tzinfo=UTC)),
        ("2026-01-31T12:00:00.250", dt.datetime(2026, 1, 31, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-31", dt.datetime(2026, 1, 31, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: dt.datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is not None and parsed.utcoffset() == dt.timedelta(0)


def test_parse_timestamp_empty_is_none() -> None:
    assert parse_timestamp("") is None
    assert format_timestamp(None) == ""


@pytest.mark.parametrize(
    "text", ["2026-13-01", "2026-02-30", "31/01/2026", "2026-01-31T25:00", "now", " 2026-01-31", "20260131"]
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_format_timestamp_writes_utc_isoformat() -> None:
    assert format_timestamp(dt.datetime(2026, 1, 31, 12, tzinfo=UTC)) == "2026-01-31T12:00:00+00:00"
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert (
        format_timestamp(dt.datetime(2026, 1, 31, 14, 0, 0, 5, tzinfo=plus_two)) == "2026-01-31T12:00:00.000005+00:00"
    )


@given(aware_datetimes)
def test_format_then_parse_timestamp_is_identity(moment: dt.datetime) -> None:
    text = format_timestamp(moment)
    assert text.endswith("+00:00")
    assert parse_timestamp(text) == moment


@given(timestamp_texts())
def test_parse_timestamp_accepts_written_forms(text: str) -> None:
    parsed = parse_timestamp(text)
    assert parsed is not None and parsed.utcoffset() == dt.timedelta(0)
    assert parse_timestamp(format_timestamp(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", 3.0), ("3.0", 3.0), ("60.000", 60.0), ("-1.5", -1.5), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0), ("", None)],
)
def test_parse_number(text: str, expected: float | None) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", ["abc", "1,5", "nan", "inf", "-inf", " 3", "3 ", "0x10", "1_000", "e3", "."])
def test_parse_number_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize(
    ("value", "text"), [(None, ""), (3.0, "3"), (0.0, "0"), (-2.0, "-2"), (0.1, "0.1"), (2.5, "2.5"), (1e20, "1e+20")]
)
def test_format_number(value: float | None, text: str) -> None:
    assert format_number(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_then_parse_number_is_identity(value: float) -> None:
    assert parse_number(format_number(value)) == value


@given(number_texts)
def test_parse_number_accepts_written_forms(text: str) -> None:
    assert parse_number(text) == float(text)


# --- the cattrs converter -------------------------------------------------------------------------


OPTIONAL_DATETIME: Any = dt.datetime | None
OPTIONAL_FLOAT: Any = float | None


def test_text_converter_hooks() -> None:
    assert text_converter.structure("completed", Status) is Status.COMPLETED
    assert text_converter.structure("", OPTIONAL_DATETIME) is None
    assert text_converter.structure("2026-01-31T12:00:00Z", OPTIONAL_DATETIME) == dt.datetime(
        2026, 1, 31, 12, tzinfo=UTC
    )
    assert text_converter.structure("3.0", OPTIONAL_FLOAT) == 3.0
    assert text_converter.structure("", OPTIONAL_FLOAT) is None
    assert text_converter.unstructure(Status.FAILED) == "failed"
    assert text_converter.unstructure(dt.datetime(2026, 1, 31, 12, tzinfo=UTC)) == "2026-01-31T12:00:00+00:00"
    with pytest.raises(ValueError):
        text_converter.structure("bogus", Status)
