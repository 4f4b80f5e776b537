"""Consolidating the demo run through the CLI yields exactly what the demo generator intended, job by job."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from archi3d.cli import app
from archi3d.csvtable import CsvTable, read_csv_table
from archi3d.demo import LATER_PHASE_COLUMNS, DemoWorkspace, Expectation, build_demo_workspace

PLAIN_ENV = {"TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "100"}
ANSI_ESCAPE = "\x1b"
BOX_DRAWING = re.compile("[\u2500-\u259f]")  # box drawing and block elements, as Rich tables and panels use
# (jobs, seed): the demo `make demo` builds, and a small run of another seed.
DEMOS = [(200, 0), (40, 1)]

Key = tuple[str, str]


def row_indices(table: CsvTable) -> dict[Key, list[int]]:
    indices: dict[Key, list[int]] = {}
    for index, (run_id, job_id) in enumerate(zip(table.column("run_id"), table.column("job_id"))):
        indices.setdefault((run_id, job_id), []).append(index)
    return indices


@dataclass(frozen=True)
class Outcome:
    """A demo workspace consolidated twice through the CLI, and what each step left behind."""

    demo: DemoWorkspace
    before: CsvTable
    after: CsvTable
    record: dict[str, Any]
    second_record: dict[str, Any]
    after_second: bytes
    after_rows: list[dict[str, str]]
    after_index: dict[Key, list[int]]

    def expected(self, situation: str) -> list[Expectation]:
        return [e for e in self.demo.expectations if e.situation == situation]

    def rows_of(self, expectation: Expectation) -> list[dict[str, str]]:
        return [self.after_rows[i] for i in self.after_index.get((expectation.run_id, expectation.job_id), [])]

    def only_row(self, expectation: Expectation) -> dict[str, str]:
        rows = self.rows_of(expectation)
        assert len(rows) == 1, f"{expectation}: expected one row, found {len(rows)}"
        return rows[0]


def table_path(workspace: Path) -> Path:
    return workspace / "tables" / "generations.csv"


def consolidate_cli(workspace: Path, *extra: str) -> Result:
    args = ["consolidate", "--workspace", str(workspace), "--run-id", "demo-run", *extra]
    # color=True: the runner strips nothing, so any escape code the command writes is seen.
    return CliRunner().invoke(app, args, env=PLAIN_ENV, color=True)


def json_record(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    return value


@pytest.fixture(scope="module", params=DEMOS, ids=[f"jobs{jobs}-seed{seed}" for jobs, seed in DEMOS])
def outcome(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    jobs, seed = request.param
    assert isinstance(jobs, int) and isinstance(seed, int)
    demo = build_demo_workspace(tmp_path_factory.mktemp("demo") / "ws", jobs=jobs, seed=seed)
    assert demo.run_id == "demo-run" and demo.other_run_id
    path = table_path(demo.workspace)
    before = read_csv_table(path)
    record = json_record(consolidate_cli(demo.workspace, "--json"))
    after = read_csv_table(path)
    second_record = json_record(consolidate_cli(demo.workspace, "--json"))
    rows = after.rows(range(len(after)))
    return Outcome(demo, before, after, record, second_record, path.read_bytes(), rows, row_indices(after))


def test_every_job_of_the_run_ends_with_the_intended_row(outcome: Outcome) -> None:
    wrong: list[str] = []
    in_table = [e for e in outcome.demo.expectations if e.in_table]
    assert in_table
    for expectation in in_table:
        found = outcome.rows_of(expectation)
        if len(found) != 1:
            wrong.append(f"{expectation.situation} {expectation.job_id}: {len(found)} rows")
            continue
        row = found[0]
        got = (row["status"], row["gen_object_path"])
        if got != (expectation.status, expectation.gen_object_path):
            wrong.append(
                f"{expectation.situation} {expectation.job_id}: expected"
                f" {(expectation.status, expectation.gen_object_path)}, found {got}"
            )
    assert not wrong, "\n".join(wrong)


def test_the_run_holds_no_row_the_generator_did_not_intend(outcome: Outcome) -> None:
    intended = {(e.run_id, e.job_id) for e in outcome.demo.expectations if e.in_table}
    rows_of_run = {key for key in outcome.after_index if key[0] == outcome.demo.run_id}
    assert rows_of_run == intended


def test_orphans_stay_out_of_the_table_and_are_listed_as_conflicts(outcome: Outcome) -> None:
    orphans = [e for e in outcome.demo.expectations if not e.in_table]
    assert orphans and all(e.situation == "orphan" and e.status == "" for e in orphans)
    job_ids_in_table = set(outcome.after.column("job_id"))
    conflicts = outcome.record["conflicts"]
    assert outcome.record["conflicts_truncated"] is False
    listed = {c["job_id"] for c in conflicts if c["kind"] == "orphan"}
    for orphan in orphans:
        assert orphan.job_id not in job_ids_in_table, orphan
        assert orphan.job_id in listed, orphan
    assert listed == {e.job_id for e in orphans}
    assert outcome.record["orphans"] == len(orphans)


def test_rows_of_the_other_run_keep_their_exact_bytes(outcome: Outcome) -> None:
    before, after, other = outcome.before, outcome.after, outcome.demo.other_run_id

    def raws(table: CsvTable) -> list[bytes]:
        return [table.raw(i) for i, run_id in enumerate(table.column("run_id")) if run_id == other]

    assert after.header == before.header
    assert after.data[: after.header_end] == before.data[: before.header_end]
    assert raws(before), "the demo holds rows of another run"
    assert raws(after) == raws(before)


def test_later_phase_columns_are_untouched(outcome: Outcome) -> None:
    assert set(LATER_PHASE_COLUMNS) <= set(outcome.after.header)

    def later_cells(table: CsvTable) -> list[tuple[Key, tuple[str, ...]]]:
        keys = list(zip(table.column("run_id"), table.column("job_id")))
        cells = list(zip(*(table.column(name) for name in LATER_PHASE_COLUMNS)))
        return list(zip(keys, cells))

    earlier: dict[Key, set[tuple[str, ...]]] = {}
    for key, cells in later_cells(outcome.before):
        earlier.setdefault(key, set()).add(cells)
    scored = [cells for key, cells in later_cells(outcome.before) if key[0] == outcome.demo.other_run_id]
    assert scored and all(all(cells) for cells in scored), "the other run carries later-phase scores"
    empty = ("",) * len(LATER_PHASE_COLUMNS)
    for key, cells in later_cells(outcome.after):
        assert cells in earlier.get(key, {empty}), key


def test_a_second_consolidate_changes_nothing(outcome: Outcome) -> None:
    first, second = outcome.record, outcome.second_record
    assert second["upsert_updated"] == 0
    assert second["upsert_inserted"] == 0
    assert second["duplicate_rows_merged"] == 0
    assert second["unchanged"] == second["considered"]
    assert second["status_histogram_before"] == second["status_histogram_after"] == first["status_histogram_after"]
    assert outcome.after_second == outcome.after.data


def test_completed_jobs_never_take_a_leftover_error(outcome: Outcome) -> None:
    leftovers = outcome.expected("redo_leftover_error")
    assert leftovers
    for expectation in leftovers:
        error_txt = outcome.demo.workspace / "runs" / expectation.run_id / "state" / f"{expectation.job_id}.error.txt"
        assert error_txt.is_file(), "the situation leaves an old error.txt behind"
        row = outcome.only_row(expectation)
        assert (row["status"], row["error_msg"]) == ("completed", ""), expectation
    for expectation in outcome.demo.expectations:
        if expectation.status == "completed":
            assert outcome.only_row(expectation)["error_msg"] == "", expectation


def test_invalid_previews_are_counted_and_not_recorded(outcome: Outcome) -> None:
    jobs = outcome.expected("invalid_previews")
    assert jobs
    # Each such job holds one valid preview_1.png, an empty preview_2.png and a preview_3.png without the PNG
    # signature; no other situation writes an invalid preview.
    assert outcome.record["invalid_previews"] == 2 * len(jobs)
    assert outcome.second_record["invalid_previews"] == outcome.record["invalid_previews"]
    for expectation in jobs:
        row = outcome.only_row(expectation)
        outputs = f"runs/{expectation.run_id}/outputs/{expectation.job_id}"
        assert (row["preview_1_path"], row["preview_2_path"], row["preview_3_path"]) == (
            f"{outputs}/preview_1.png",
            "",
            "",
        )


def test_counters_add_up_to_the_intended_outcome(outcome: Outcome) -> None:
    record = outcome.record
    intended = Counter(e.status for e in outcome.demo.expectations if e.in_table)
    assert record["status_histogram_after"] == dict(intended)
    assert record["considered"] == (
        record["upsert_inserted"] + record["upsert_updated"] + record["unchanged"] + record["duplicate_rows_merged"]
    )
    manifest_only = {"manifest_only_with_evidence", "manifest_only_no_evidence"}
    assert record["upsert_inserted"] == sum(1 for e in outcome.demo.expectations if e.situation in manifest_only)
    assert record["not_in_manifest"] == len(outcome.expected("not_in_manifest"))
    assert record["written"] is True and record["dry_run"] is False


def test_the_plain_summary_has_no_escape_codes_or_box_drawing(tmp_path: Path) -> None:
    demo = build_demo_workspace(tmp_path / "ws", jobs=40, seed=2)
    result = consolidate_cli(demo.workspace)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert ANSI_ESCAPE not in result.output
    assert BOX_DRAWING.search(result.output) is None
    lines = text.splitlines()
    assert lines[0] == "consolidate run demo-run: written"
    orphan = next(e for e in demo.expectations if not e.in_table)
    assert f"  conflict {orphan.job_id}: orphan: " in text
    assert "invalid previews 2," in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
