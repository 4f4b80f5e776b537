"""Provenance a user can check (issue 16): object hashes, `archi3d explain`, the change report, and revert."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from archi3d import ConsolidateOptions, ObjectChangedError, StrictConflictError, consolidate, rows_of_run, verify_object
from archi3d.cli import app
from archi3d.csvtable import read_csv_table
from archi3d.demo import build_demo_workspace
from archi3d.revert import revert
from archi3d.upsert import update_csv_atomic
from workspace_builder import (
    GLB,
    NOW,
    RUN,
    TABLE_COLUMNS,
    ago,
    csv_path,
    error_txt,
    gen_row,
    lock_path,
    marker,
    one_row,
    output,
    rel_output,
    snapshot,
    table_bytes,
    write_manifest,
    write_table,
)


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _run(ws: Path, **options: object) -> object:
    return consolidate(ws, ConsolidateOptions(run_id=RUN, **options), now=NOW)  # type: ignore[arg-type]


def _completed_job(ws: Path, job_id: str = "j1") -> Path:
    write_manifest(ws, [job_id])
    write_table(ws, [gen_row(job_id, "enqueued")])
    marker(ws, job_id, "completed", ago(100))
    return output(ws, job_id)


# ----------------------------------------------------------------------------------- hashes


def test_a_completed_object_gets_its_hash_and_size(tmp_path: Path) -> None:
    obj = _completed_job(tmp_path)
    _run(tmp_path)
    row = one_row(tmp_path, "j1")
    assert row["status"] == "completed"
    assert row["gen_object_sha256"] == hashlib.sha256(GLB).hexdigest()
    assert row["gen_object_bytes"] == str(len(GLB)) == str(obj.stat().st_size)
    (typed,) = rows_of_run(tmp_path, RUN)
    assert (typed.gen_object_sha256, typed.gen_object_bytes) == (hashlib.sha256(GLB).hexdigest(), len(GLB))
    assert verify_object(tmp_path, typed) == obj


def test_an_object_larger_than_a_read_is_hashed_whole(tmp_path: Path) -> None:
    obj = _completed_job(tmp_path)
    content = bytes(range(256)) * (10 * 4096 + 1)  # ~10 MiB, not a whole number of reads
    obj.write_bytes(content)
    _run(tmp_path)
    row = one_row(tmp_path, "j1")
    assert row["gen_object_sha256"] == hashlib.sha256(content).hexdigest()
    assert row["gen_object_bytes"] == str(len(content))
    (typed,) = rows_of_run(tmp_path, RUN)
    assert verify_object(tmp_path, typed) == obj


def test_an_object_rewritten_with_the_same_size_is_found_only_by_verify_hashes(tmp_path: Path) -> None:
    obj = _completed_job(tmp_path)
    _run(tmp_path)
    hashed = table_bytes(tmp_path)
    obj.write_bytes(GLB[:-1] + b"\x01")  # same size, other bytes: no rehash without --verify-hashes
    summary = _run(tmp_path)
    assert table_bytes(tmp_path) == hashed and summary.objects_changed == 0  # type: ignore[attr-defined]
    (row,) = rows_of_run(tmp_path, RUN)
    with pytest.raises(ObjectChangedError, match="is not the object recorded"):
        verify_object(tmp_path, row)
    summary = _run(tmp_path, verify_hashes=True)
    assert summary.objects_changed == 1  # type: ignore[attr-defined]
    assert one_row(tmp_path, "j1")["gen_object_sha256"] == hashlib.sha256(obj.read_bytes()).hexdigest()


def test_an_object_whose_size_changed_is_a_conflict_and_fails_strict(tmp_path: Path) -> None:
    obj = _completed_job(tmp_path)
    _run(tmp_path)
    before = one_row(tmp_path, "j1")
    obj.write_bytes(GLB + b"more")
    data = table_bytes(tmp_path)
    with pytest.raises(StrictConflictError):
        _run(tmp_path, strict=True)
    assert table_bytes(tmp_path) == data
    summary = _run(tmp_path)
    assert summary.objects_changed == 1  # type: ignore[attr-defined]
    kinds = [c.kind for c in summary.conflicts]  # type: ignore[attr-defined]
    assert kinds == ["object_changed"]
    after = one_row(tmp_path, "j1")
    assert after["gen_object_bytes"] == str(len(GLB) + 4)
    assert f"object changed: sha256 {before['gen_object_sha256']} -> {after['gen_object_sha256']}" in after["notes"]
    assert _run(tmp_path).objects_changed == 0  # type: ignore[attr-defined]


_OPENED: list[str] = []


def _record_opens(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and str(args[0]).endswith(".glb"):
        _OPENED.append(str(args[0]))


sys.addaudithook(_record_opens)  # the interpreter's own seam: every file opened in this process


def test_a_second_run_hashes_nothing_and_verify_hashes_hashes_every_completed_object(tmp_path: Path) -> None:
    ws = _demo(tmp_path)
    _OPENED.clear()
    consolidate(ws, ConsolidateOptions(run_id="demo-run", workers=1), now=NOW)
    first = set(_OPENED)
    _OPENED.clear()
    summary = consolidate(ws, ConsolidateOptions(run_id="demo-run", workers=1), now=NOW)
    assert summary.upsert_updated == 0 and _OPENED == []
    consolidate(ws, ConsolidateOptions(run_id="demo-run", workers=1, verify_hashes=True), now=NOW)
    hashed = [r for r in rows_of_run(ws, "demo-run") if r.gen_object_sha256]
    assert all(r.status.value == "completed" for r in hashed)
    assert sorted(_OPENED) == sorted(str(ws / r.gen_object_path) for r in hashed)
    # the first run hashed them all, and beside them only objects of rows that said completed and
    # now say failed (the scan hashes before the rules decide)
    failed = {str(ws / r.gen_object_path) for r in rows_of_run(ws, "demo-run") if r.status.value == "failed"}
    assert set(_OPENED) <= first <= set(_OPENED) | failed


def test_verify_object_refuses_a_row_without_a_recorded_hash(tmp_path: Path) -> None:
    write_table(tmp_path, [gen_row("j1", "completed", gen_object_path=rel_output("j1"))])
    output(tmp_path, "j1")
    (row,) = rows_of_run(tmp_path, RUN)
    with pytest.raises(ObjectChangedError, match="no object hash recorded"):
        verify_object(tmp_path, row)


def test_the_demo_holds_an_object_that_changed_after_it_was_recorded(tmp_path: Path) -> None:
    demo = build_demo_workspace(tmp_path / "ws", jobs=60, seed=2)
    summary = consolidate(demo.workspace, ConsolidateOptions(run_id=demo.run_id), now=NOW)
    assert summary.objects_changed >= 1
    assert any(c.kind == "object_changed" for c in summary.conflicts)


# ----------------------------------------------------------------------------------- explain


def test_explain_shows_the_evidence_the_rule_and_the_changes_and_touches_nothing(tmp_path: Path) -> None:
    write_manifest(tmp_path, ["j1", "j2"])
    write_table(tmp_path, [gen_row("j1", "enqueued"), gen_row("j2", "running")])
    marker(tmp_path, "j1", "completed", ago(100))
    output(tmp_path, "j1")
    marker(tmp_path, "j2", "failed", ago(50))
    error_txt(tmp_path, "j2", "CUDA out of memory")
    before = snapshot(tmp_path)
    result = cli("explain", "--workspace", str(tmp_path), "--run-id", RUN, "j1", "j2", "--json")
    assert result.exit_code == 0, result.stderr
    assert snapshot(tmp_path) == before and not lock_path(tmp_path).exists()
    j1, j2 = json.loads(result.stdout)
    assert (j1["status_before"], j1["status_after"]) == ("enqueued", "completed")
    assert j1["rule"].startswith("1: .completed marker")
    assert j1["markers"][0][:1] == ["completed"] and j1["markers"][0][2] == "written inside"
    assert j1["objects"][0]["chosen"] and j1["objects"][0]["sha256"] == hashlib.sha256(GLB).hexdigest()
    changed = {column: after for column, _, after in j1["changes"]}
    assert changed["status"] == "completed" and changed["gen_object_path"] == rel_output("j1")
    assert (j2["status_after"], j2["rule"]) == ("failed", "2: .failed marker")
    assert j2["error_txt"].startswith("Error: CUDA out of memory")
    text = cli("explain", "--workspace", str(tmp_path), "--run-id", RUN, "j1").stdout
    assert text.startswith("job j1: enqueued -> completed\n  rule: 1: .completed marker")
    assert "would change status: 'enqueued' -> 'completed'" in text


def test_explain_shows_what_a_merge_of_duplicate_rows_changes(tmp_path: Path) -> None:
    write_manifest(tmp_path, ["j1"])
    write_table(tmp_path, [gen_row("j1", "enqueued"), gen_row("j1", "running", worker_host="gpu-9")])
    marker(tmp_path, "j1", "inprogress", ago(10))
    result = cli("explain", "--workspace", str(tmp_path), "--run-id", RUN, "j1", "--json")
    assert result.exit_code == 0, result.stderr
    (j1,) = json.loads(result.stdout)
    assert j1["status_before"] == "enqueued" and len(j1["rows"]) == 2
    assert ["worker_host", "", "gpu-9"] in j1["changes"]
    assert any(conflict["kind"] == "duplicate_rows" for conflict in j1["conflicts"]), j1["conflicts"]


@pytest.mark.parametrize(
    ("run", "job", "expected"),
    [
        ("nope", "j1", "unknown run 'nope'"),
        (RUN, "j9", "unknown job j9: no row of run"),
        (RUN, "j2", "generations.csv:3"),
    ],
    ids=["unknown-run", "unknown-job", "bad-cell"],
)
def test_explain_refuses_what_it_cannot_explain_in_one_line(tmp_path: Path, run: str, job: str, expected: str) -> None:
    write_manifest(tmp_path, ["j1"])
    write_table(tmp_path, [gen_row("j1", "enqueued"), gen_row("j2", "finished")])
    marker(tmp_path, "j1", "completed", ago(100))
    result = cli("explain", "--workspace", str(tmp_path), "--run-id", run, job)
    assert result.exit_code == 2 and expected in result.stderr and "Traceback" not in result.output, result.output


# ----------------------------------------------------------------------------------- the report and revert


def _demo(tmp_path: Path, jobs: int = 120) -> Path:
    return build_demo_workspace(tmp_path / "ws", jobs=jobs, seed=4, now=NOW).workspace


def test_the_report_holds_every_change_and_conflict_and_is_written_under_dry_run(tmp_path: Path) -> None:
    ws = _demo(tmp_path)
    original = table_bytes(ws)
    report = tmp_path / "dry.jsonl"
    summary = consolidate(ws, ConsolidateOptions(run_id="demo-run", dry_run=True, report=str(report)), now=NOW)
    assert table_bytes(ws) == original
    records = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    kinds = [r["type"] for r in records]
    assert kinds[0] == "consolidate" and records[0]["dry_run"] is True and records[0]["written"] is False
    assert kinds.count("row_updated") == summary.upsert_updated
    assert kinds.count("row_inserted") == summary.upsert_inserted
    assert kinds.count("row_merged") == summary.duplicate_rows_merged
    assert kinds.count("conflict") == len(summary.conflicts)
    cells = [r for r in records if r["type"] == "cell"]
    assert cells and all(r["before"] != r["after"] and r["rule"] for r in cells)
    assert summary.report == str(report)
    assert (
        f"every change and conflict: {report}"
        in cli(
            "consolidate", "--workspace", str(ws), "--run-id", "demo-run", "--dry-run", "--report", str(report)
        ).stdout
    )


@pytest.mark.parametrize(
    "where",
    [
        "tables/generations.csv",
        "tables/../tables/generations.csv",
        "tables/generations.lock",
        "logs/metrics.log",
        "runs",
    ],
)
def test_a_report_path_that_would_replace_a_workspace_file_or_is_a_folder_is_refused_first(
    tmp_path: Path, where: str
) -> None:
    _completed_job(tmp_path)
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "logs" / "metrics.log").write_text("")
    before = snapshot(tmp_path)
    result = cli("consolidate", "--workspace", str(tmp_path), "--run-id", RUN, "--report", str(tmp_path / where))
    assert result.exit_code == 2 and "--report" in result.stderr and "Nothing was changed" in result.stderr
    assert snapshot(tmp_path) == before


def test_revert_gives_back_the_table_byte_for_byte(tmp_path: Path) -> None:
    ws = _demo(tmp_path)
    original = table_bytes(ws)
    report = tmp_path / "report.jsonl"
    result = cli("consolidate", "--workspace", str(ws), "--run-id", "demo-run", "--report", str(report))
    assert result.exit_code == 0 and table_bytes(ws) != original
    reverted = cli("revert", str(report), "--workspace", str(ws))
    assert reverted.exit_code == 0, reverted.stderr
    assert reverted.stdout.startswith(f"revert {report}: written")
    assert table_bytes(ws) == original
    logged = json.loads((ws / "logs" / "metrics.log").read_text(encoding="utf-8").splitlines()[-1].split(" ", 1)[1])
    assert logged["event"] == "revert" and logged["rows_restored"] > 0
    assert revert(ws, report).written is False  # nothing of the run is left to give back


def test_revert_leaves_alone_what_changed_since_and_lists_it(tmp_path: Path) -> None:
    _completed_job(tmp_path)
    original = table_bytes(tmp_path)
    report = tmp_path / "report.jsonl"
    _run(tmp_path, report=str(report))
    data = table_bytes(tmp_path)
    row = one_row(tmp_path, "j1")
    changed = data.replace(row["gen_object_sha256"].encode(), b"f" * 64)  # a later phase rewrote one cell
    csv_path(tmp_path).write_bytes(changed)
    summary = revert(tmp_path, report)
    assert summary.written and summary.cells_restored > 0
    assert any("gen_object_sha256 changed since" in reason for reason in summary.left_alone)
    after = one_row(tmp_path, "j1")
    assert after["status"] == "enqueued" and after["gen_object_sha256"] == "f" * 64
    assert table_bytes(tmp_path) != original


def test_revert_after_a_later_phase_added_a_column_keeps_every_row_as_wide_as_the_header(tmp_path: Path) -> None:
    ws = _demo(tmp_path)
    original = read_csv_table(csv_path(ws))
    report = tmp_path / "report.jsonl"
    summary = consolidate(ws, ConsolidateOptions(run_id="demo-run", report=str(report)), now=NOW)
    assert summary.duplicate_rows_merged > 0
    scored = next(r for r in rows_of_run(ws, "demo-run") if r.status.value == "completed")
    update_csv_atomic(
        csv_path(ws),
        pd.DataFrame([{"run_id": "demo-run", "job_id": scored.job_id, "chamfer": "0.8125"}]),
        ["run_id", "job_id"],
    )
    undone = revert(ws, report)
    assert undone.rows_put_back == summary.duplicate_rows_merged
    reverted = read_csv_table(csv_path(ws))  # every row as wide as the header, or this raises
    assert reverted.header == (*original.header, "chamfer")
    assert [r for r in reverted.column("chamfer") if r] == ["0.8125"]
    assert len(reverted) == len(original)
    assert cli("validate", str(csv_path(ws))).exit_code == 0


def test_revert_refuses_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"hello": 1}\n')
    result = cli("revert", str(bad), "--workspace", str(tmp_path))
    assert result.exit_code == 2 and "not a record of a change report" in result.stderr


def test_revert_names_the_line_and_field_a_damaged_report_lacks_and_writes_nothing(tmp_path: Path) -> None:
    _completed_job(tmp_path)
    report = tmp_path / "report.jsonl"
    _run(tmp_path, report=str(report))
    lines = report.read_text(encoding="utf-8").splitlines()
    number = next(n for n, line in enumerate(lines, 1) if '"type":"row_updated"' in line)
    damaged = json.loads(lines[number - 1])
    del damaged["after"]
    damaged["line"] = "two"
    lines[number - 1] = json.dumps(damaged)
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = snapshot(tmp_path)
    result = cli("revert", str(report), "--workspace", str(tmp_path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"report.jsonl:{number}: " in result.stderr
    assert 'line: expected number, found "two"; after: expected text, found null' in result.stderr
    assert snapshot(tmp_path) == before


_STATUSES = st.sampled_from(["enqueued", "running", "completed", "failed"])


_HASH_COLUMNS = ("gen_object_sha256", "gen_object_bytes")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    statuses=st.lists(_STATUSES, min_size=1, max_size=6),
    markers=st.lists(st.sampled_from(["completed", "failed", "inprogress", None]), min_size=6, max_size=6),
    objects=st.lists(st.booleans(), min_size=6, max_size=6),
    duplicate=st.sampled_from([None, "other", "identical", "last"]),
    manifest_only=st.booleans(),
    hash_columns=st.booleans(),
    final_newline=st.booleans(),
)
def test_consolidate_then_revert_gives_back_the_original_bytes(
    statuses: list[str],
    markers: list[str | None],
    objects: list[bool],
    duplicate: str | None,
    manifest_only: bool,
    hash_columns: bool,
    final_newline: bool,
) -> None:
    """Any run, on a table with or without the hash columns (they are added), duplicates of any kind,
    with or without a line ending after its last row."""
    with tempfile.TemporaryDirectory() as folder:
        ws = Path(folder)
        jobs = [f"j{i}" for i in range(len(statuses))]
        rows = [gen_row(job, status) for job, status in zip(jobs, statuses)]
        if duplicate == "identical":
            rows.append(dict(rows[0]))
        elif duplicate is not None:
            rows.insert(0 if duplicate == "last" else len(rows), gen_row(jobs[-1], "running", worker_host="gpu-9"))
        write_manifest(ws, [*jobs, *(["extra"] if manifest_only else [])])
        columns = TABLE_COLUMNS if hash_columns else tuple(c for c in TABLE_COLUMNS if c not in _HASH_COLUMNS)
        data = write_table(ws, rows, columns)
        if not final_newline:
            csv_path(ws).write_bytes(data.removesuffix(b"\n"))
        for job, kind, has_object in zip(jobs, markers, objects):
            if kind is not None:
                marker(ws, job, kind, ago(5000))  # type: ignore[arg-type]
            if has_object:
                output(ws, job)
        original = table_bytes(ws)
        report = ws / "report.jsonl"
        _run(ws, report=str(report))
        summary = revert(ws, report)
        assert table_bytes(ws) == original, summary.left_alone
        assert revert(ws, report).written is False  # a second revert finds nothing of the run left
        shutil.rmtree(ws / "runs")
