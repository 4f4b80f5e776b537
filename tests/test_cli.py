"""End-to-end tests of the `archi3d` command line: exit statuses, --json, validate."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from archi3d.cli import app
from archi3d.consolidation import MAX_WORKERS
from workspace_builder import (
    OTHER_RUN,
    RUN,
    ago,
    csv_path,
    gen_row,
    lock_held_by_another_process,
    lock_path,
    marker,
    metrics_records,
    one_row,
    rel_output,
    small_run,
    snapshot,
    table_bytes,
    table_rows,
    write_manifest,
    write_table,
)

ARCHI3D = Path(sys.executable).with_name("archi3d")
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<column>[^:]+): (?P<message>.+)$")


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def consolidate_args(ws: Path, *extra: str) -> list[str]:
    return ["consolidate", "--workspace", str(ws), "--run-id", RUN, *extra]


def record_of(result: Result) -> dict[str, Any]:
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    return value


def small_workspace(ws: Path) -> bytes:
    """See workspace_builder.small_run."""
    return small_run(ws)


# ----------------------------------------------------------------------------------- exit 0


def test_consolidate_prints_a_plain_summary_and_exits_0(tmp_path: Path) -> None:
    small_workspace(tmp_path)
    result = cli(*consolidate_args(tmp_path))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"consolidate run {RUN}: written\n")
    assert "considered 3 (" in out and "inserted 0, updated 3, unchanged 0, duplicate rows merged 0" in out
    assert "downgraded (missing output) 1" in out
    assert "status before: completed 1, enqueued 1, running 1" in out
    assert "status after:  completed 1, failed 2" in out
    assert "\x1b[" not in out  # no Rich / colours
    assert one_row(tmp_path, "j1")["status"] == "completed"
    assert one_row(tmp_path, "j2")["status"] == "failed"
    assert one_row(tmp_path, "j3")["status"] == "failed"
    assert one_row(tmp_path, "o1", OTHER_RUN)["notes"] == 'a "quoted", note'
    again = cli(*consolidate_args(tmp_path))
    assert again.exit_code == 0
    assert f"consolidate run {RUN}: nothing to change" in again.stdout
    assert "updated 0, unchanged 3" in again.stdout


def test_json_prints_the_log_record(tmp_path: Path) -> None:
    small_workspace(tmp_path)
    result = cli(*consolidate_args(tmp_path, "--json"))
    assert result.exit_code == 0, result.stderr
    record = record_of(result)
    assert record == metrics_records(tmp_path)[-1] | {
        "timestamp": record["timestamp"],
        "elapsed_s": record["elapsed_s"],
    }
    expected_keys = {
        "event", "timestamp", "run_id", "dry_run", "strict", "considered", "upsert_inserted", "upsert_updated",
        "unchanged", "duplicate_rows_merged", "conflicts_resolved", "marker_mismatches_fixed",
        "downgraded_missing_output", "missing_outputs", "invalid_previews", "not_in_manifest", "orphans",
        "status_histogram_before", "status_histogram_after", "conflicts", "conflicts_truncated", "elapsed_s",
    }  # fmt: skip
    assert expected_keys <= set(record)
    assert record["event"] == "consolidate" and record["run_id"] == RUN
    assert record["dry_run"] is False and record["strict"] is False
    assert (record["considered"], record["upsert_updated"], record["downgraded_missing_output"]) == (3, 3, 1)
    assert record["status_histogram_after"] == {"completed": 1, "failed": 2}


def test_dry_run_json(tmp_path: Path) -> None:
    original = small_workspace(tmp_path)
    before = snapshot(tmp_path)
    result = cli(*consolidate_args(tmp_path, "--dry-run", "--json"))
    assert result.exit_code == 0, result.stderr
    record = record_of(result)
    assert record["dry_run"] is True and record["upsert_updated"] == 3
    assert table_bytes(tmp_path) == original
    assert set(snapshot(tmp_path)) - set(before) == {"logs", "logs/metrics.log"}
    plain = cli(*consolidate_args(tmp_path, "--dry-run"))
    assert f"consolidate run {RUN}: dry run, nothing written" in plain.stdout


def test_no_fix_status(tmp_path: Path) -> None:
    small_workspace(tmp_path)
    result = cli(*consolidate_args(tmp_path, "--no-fix-status", "--json"))
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in table_rows(tmp_path)] == ["enqueued", "completed", "running", "completed"]
    record = record_of(result)
    not_fixed = {c["job_id"]: c["detail"] for c in record["conflicts"] if c["kind"] == "status_not_fixed"}
    assert set(not_fixed) == {"j1", "j2", "j3"}
    assert not_fixed["j1"].startswith("would set completed")
    assert not_fixed["j2"].startswith("would set failed")
    assert record["conflicts_resolved"] == 0
    assert record["status_histogram_after"] == record["status_histogram_before"]
    fixed = cli(*consolidate_args(tmp_path, "--fix-status", "--json"))
    assert [r["status"] for r in table_rows(tmp_path)] == ["completed", "failed", "failed", "completed"]
    assert record_of(fixed)["marker_mismatches_fixed"] == 2


def test_options_reach_the_service(tmp_path: Path) -> None:
    write_manifest(tmp_path, ["a", "b", "c"])
    write_table(tmp_path, [gen_row("a", "running"), gen_row("b", "running"), gen_row("c", "completed")])
    marker(tmp_path, "a", "inprogress", ago(120))
    marker(tmp_path, "b", "inprogress", ago(120))
    args = (
        "--only-status",
        "running, enqueued",
        "--max-rows",
        "1",
        "--heartbeat-timeout",
        "60",
        "--stale-policy",
        "fail",
    )
    result = cli(*consolidate_args(tmp_path, *args, "--json"))
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in table_rows(tmp_path)] == ["failed", "running", "completed"]
    assert record_of(result)["considered"] == 1
    assert "stale heartbeat" in one_row(tmp_path, "a")["error_msg"]


def test_workspace_from_the_environment(tmp_path: Path) -> None:
    small_workspace(tmp_path)
    result = cli("consolidate", "--run-id", RUN, "--json", env={"ARCHI3D_WORKSPACE": str(tmp_path)})
    assert result.exit_code == 0, result.stderr
    assert record_of(result)["upsert_updated"] == 3


# ----------------------------------------------------------------------------------- exit 1


def test_strict_with_conflicts_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    original = small_workspace(tmp_path)
    marker(tmp_path, "j1", "failed", ago(50))  # .completed and .failed: a conflict
    result = cli(*consolidate_args(tmp_path, "--strict", "--json"))
    assert result.exit_code == 1
    assert "--strict" in result.stderr
    record = record_of(result)
    assert record["strict"] is True and record["written"] is False
    assert "completed_and_failed_markers" in [c["kind"] for c in record["conflicts"]]
    assert table_bytes(tmp_path) == original
    assert metrics_records(tmp_path)[-1]["strict"] is True
    plain = cli(*consolidate_args(tmp_path, "--strict"))
    assert plain.exit_code == 1
    assert "conflict j1: completed_and_failed_markers" in plain.stdout


# ----------------------------------------------------------------------------------- exit 2


@pytest.mark.parametrize("run_id", ["../x", "a b", ""])
def test_invalid_run_id_exits_2(tmp_path: Path, run_id: str) -> None:
    small_workspace(tmp_path)
    before = snapshot(tmp_path)
    result = cli("consolidate", "--workspace", str(tmp_path), "--run-id", run_id)
    assert result.exit_code == 2
    assert "invalid run_id" in result.stderr
    assert snapshot(tmp_path) == before


def test_unknown_run_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    small_workspace(tmp_path)
    before = snapshot(tmp_path)
    result = cli("consolidate", "--workspace", str(tmp_path), "--run-id", "no-such-run")
    assert result.exit_code == 2
    assert "unknown run" in result.stderr
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "runs" / "no-such-run").exists()


def test_run_folder_missing_while_the_csv_has_rows_exits_2(tmp_path: Path) -> None:
    original = write_table(tmp_path, [gen_row("j1", "completed", gen_object_path=rel_output("j1"))])
    before = snapshot(tmp_path)
    result = cli(*consolidate_args(tmp_path))
    assert result.exit_code == 2
    assert "folder missing" in result.stderr
    assert table_bytes(tmp_path) == original
    assert snapshot(tmp_path) == before


def test_bad_table_exits_2_naming_file_line_and_column(tmp_path: Path) -> None:
    small_workspace(tmp_path)
    write_table(tmp_path, [gen_row("j1", "enqueued"), gen_row("j2", "finished")])
    result = cli(*consolidate_args(tmp_path))
    assert result.exit_code == 2
    assert f"{csv_path(tmp_path)}:3: status:" in result.stderr


def test_bad_manifest_exits_2_naming_file_line_and_column(tmp_path: Path) -> None:
    original = small_workspace(tmp_path)
    manifest = tmp_path / "runs" / RUN / "manifest.csv"
    manifest.write_text("job_id,product_id,variant,algo\nj1,1,a,b\nj2,2,a,b\n,3,a,b\n", encoding="utf-8")
    result = cli(*consolidate_args(tmp_path))
    assert result.exit_code == 2
    assert f"{manifest}:4: job_id:" in result.stderr
    assert table_bytes(tmp_path) == original


@pytest.mark.parametrize(
    "args",
    [("--only-status", "done"), ("--only-status", ","), ("--stale-policy", "drop"), ("--max-rows", "-1")],
)
def test_bad_options_exit_2(tmp_path: Path, args: Sequence[str]) -> None:
    original = small_workspace(tmp_path)
    result = cli(*consolidate_args(tmp_path, *args))
    assert result.exit_code == 2
    assert table_bytes(tmp_path) == original


# ----------------------------------------------------------------------------------- exit 3


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another real process holding tables/generations.lock, the way the reference worker takes it."""
    with lock_held_by_another_process(lock_path(tmp_path)) as holder:
        yield holder


def test_lock_held_by_another_process_exits_3(tmp_path: Path, held_lock: subprocess.Popen[str]) -> None:
    original = small_workspace(tmp_path)
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("ARCHI3D_WORKSPACE", None)
    proc = subprocess.run(
        [str(ARCHI3D), *consolidate_args(tmp_path, "--lock-timeout", "0.5")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 3, proc.stderr
    assert "generations.lock" in proc.stderr
    assert table_bytes(tmp_path) == original
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("logs")} == before
    assert not [p for p in (tmp_path / "tables").iterdir() if p.name not in ("generations.csv", "generations.lock")]

    dry = cli(*consolidate_args(tmp_path, "--dry-run", "--lock-timeout", "0.5", "--json"))  # reads need no lock
    assert dry.exit_code == 0, dry.stderr
    assert record_of(dry)["upsert_updated"] == 3

    assert held_lock.stdin is not None
    held_lock.stdin.write("release\n")
    held_lock.stdin.flush()
    assert held_lock.stdout is not None and held_lock.stdout.readline().strip() == "released"
    after = cli(*consolidate_args(tmp_path, "--lock-timeout", "5", "--json"))
    assert after.exit_code == 0, after.stderr
    assert record_of(after)["written"] is True
    assert one_row(tmp_path, "j1")["status"] == "completed"


def test_replace_refused_by_another_program_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync client keeps generations.csv from being replaced: retried until --lock-timeout, then exit 3."""
    original = small_workspace(tmp_path)
    real_replace = os.replace
    refused: list[str] = []

    def replace(src: Any, dst: Any) -> None:
        if str(dst) == str(csv_path(tmp_path)):
            refused.append(str(src))
            raise PermissionError(13, "Permission denied", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    result = cli(*consolidate_args(tmp_path, "--lock-timeout", "0.3"))
    assert result.exit_code == 3
    assert "could not be replaced for 0.3 s" in result.stderr
    assert len(refused) > 1  # retried
    assert table_bytes(tmp_path) == original
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["generations.csv", "generations.lock"]


# ----------------------------------------------------------------------------------- validate


def test_validate_a_good_workspace_exits_0(tmp_path: Path) -> None:
    small_workspace(tmp_path)
    result = cli("validate", "--workspace", str(tmp_path), "--run-id", RUN)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("valid: ")
    assert str(csv_path(tmp_path)) in result.stdout


def test_validate_a_bad_workspace_lists_every_problem(tmp_path: Path) -> None:
    write_manifest(tmp_path, ["j1"])
    write_table(
        tmp_path,
        [
            gen_row("j1", "enqueued"),
            gen_row("j2", "finished"),
            gen_row("j 3", "failed", generation_end="yesterday", gen_object_path="/abs/x.glb"),
            gen_row("j4", "running", used_n_images="three", preview_1_path="../outside.png"),
        ],
    )
    result = cli("validate", "--workspace", str(tmp_path))
    assert result.exit_code == 2
    lines = result.stdout.strip().splitlines()
    parsed = [PROBLEM_LINE.match(line) for line in lines]
    assert all(parsed), lines
    found = {(m["file"], int(m["line"]), m["column"]) for m in parsed if m}
    path = str(csv_path(tmp_path))
    assert found == {
        (path, 3, "status"),
        (path, 4, "job_id"),
        (path, 4, "generation_end"),
        (path, 4, "gen_object_path"),
        (path, 5, "used_n_images"),
        (path, 5, "preview_1_path"),
    }
    assert f"{len(found)} problem(s) found" in result.stderr


def test_validate_a_bad_manifest(tmp_path: Path) -> None:
    small_workspace(tmp_path)
    manifest = tmp_path / "runs" / RUN / "manifest.csv"
    manifest.write_text("job_id,product_id,variant,algo\nok,1,a,b\n../bad,2,a,b\n", encoding="utf-8")
    result = cli("validate", "--workspace", str(tmp_path), "--run-id", RUN)
    assert result.exit_code == 2
    assert f"{manifest}:3: job_id: " in result.stdout


def test_validate_a_missing_table_exits_2(tmp_path: Path) -> None:
    result = cli("validate", "--workspace", str(tmp_path))
    assert result.exit_code == 2
    assert f"{csv_path(tmp_path)}: missing" in result.stdout


def test_validate_a_workspace_that_does_not_exist_says_so(tmp_path: Path) -> None:
    result = cli("validate", "--workspace", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert result.stderr == f"error: workspace {tmp_path / 'nowhere'}: not found\n"


@pytest.mark.parametrize("workers", ["1", "2", "3", str(MAX_WORKERS)])
def test_workers_option_decides_the_same(tmp_path: Path, workers: str) -> None:
    small_workspace(tmp_path / "one")
    small_workspace(tmp_path / "ws")
    expected = cli(*consolidate_args(tmp_path / "one", "--json"))
    result = cli(*consolidate_args(tmp_path / "ws", "--json", "--workers", workers))
    assert result.exit_code == 0, result.output
    assert table_bytes(tmp_path / "ws") == table_bytes(tmp_path / "one")
    assert {k: v for k, v in record_of(result).items() if k not in ("elapsed_s", "timestamp")} == {
        k: v for k, v in record_of(expected).items() if k not in ("elapsed_s", "timestamp")
    }


def test_workers_beyond_the_most_is_a_usage_error(tmp_path: Path) -> None:
    before = small_workspace(tmp_path)
    result = cli(*consolidate_args(tmp_path, "--workers", str(MAX_WORKERS + 1)))
    assert result.exit_code == 2
    assert table_bytes(tmp_path) == before
