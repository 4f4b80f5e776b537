"""End-to-end: the conventions a user expects of a command line (issue 15), in real processes where a
terminal or the interpreter matters."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from archi3d.cli import app
from reliability_support import ARCHI3D, clean_env
from workspace_builder import BOM, RUN, csv_path, gen_row, output, small_run, table_bytes, write_manifest, write_table


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=clean_env(env))


# ----------------------------------------------------------------------------------- the command itself


def test_version() -> None:
    result = run(str(ARCHI3D), "--version")
    assert (result.returncode, result.stdout) == (0, f"archi3d {version('archi3d')}\n")


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_short_and_long_help(flag: str) -> None:
    result = cli(flag)
    assert result.exit_code == 0
    assert "consolidate" in result.stdout and "validate" in result.stdout and "demo" in result.stdout
    assert "-h, --help" in cli("consolidate", flag).stdout


def test_no_arguments_print_the_help_and_succeed() -> None:
    result = run(str(ARCHI3D))
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: archi3d") and "Commands" in result.stdout


def test_python_dash_m_runs_the_command_line() -> None:
    result = run(sys.executable, "-m", "archi3d", "--version")
    assert (result.returncode, result.stdout) == (0, f"archi3d {version('archi3d')}\n")


def test_shell_completion_is_offered() -> None:
    assert "--install-completion" in cli("--help").stdout


# ----------------------------------------------------------------------------------- demo


def test_demo_takes_the_workspace_from_the_environment(tmp_path: Path) -> None:
    target = tmp_path / "from-env"
    result = cli("demo", "--jobs", "40", env={"ARCHI3D_WORKSPACE": str(target)})
    assert result.exit_code == 0, result.stderr
    assert (target / "tables" / "generations.csv").is_file()
    assert f"--workspace {target}" in result.stdout


def test_demo_below_the_least_jobs_says_the_least(tmp_path: Path) -> None:
    result = cli("demo", "--workspace", str(tmp_path / "d"), "--jobs", "10")
    assert result.exit_code == 2
    assert "40" in result.stderr
    assert not (tmp_path / "d").exists()


# ----------------------------------------------------------------------------------- the summary's wording


def test_strict_says_what_would_change_and_that_nothing_was_written(tmp_path: Path) -> None:
    small_run(tmp_path)
    output(tmp_path, "stray")  # an orphan: a conflict --strict fails on
    before = table_bytes(tmp_path)
    result = cli("consolidate", "--workspace", str(tmp_path), "--run-id", RUN, "--strict")
    assert result.exit_code == 1
    first = result.stdout.splitlines()[:2]
    assert first[0] == f"consolidate run {RUN}: --strict found conflicts: nothing written"
    assert "would insert 0, update 3" in first[1]
    assert table_bytes(tmp_path) == before


def test_a_run_that_changes_nothing_says_so(tmp_path: Path) -> None:
    small_run(tmp_path)
    assert cli("consolidate", "--workspace", str(tmp_path), "--run-id", RUN).exit_code == 0
    again = cli("consolidate", "--workspace", str(tmp_path), "--run-id", RUN).stdout.splitlines()
    assert again[0] == f"consolidate run {RUN}: nothing to change"
    assert "inserted 0, updated 0" in again[1]
    assert again[2].startswith("  conflicts: ") and "settled by the rules" in again[2]


# ----------------------------------------------------------------------------------- validate as a CI gate


def _bad_table(ws: Path) -> Path:
    write_manifest(ws, ["j1", "j2"])
    write_table(ws, [gen_row("j1", "done"), gen_row("j2", generation_end="yesterday")])
    return csv_path(ws)


def test_validate_text_lists_each_problem(tmp_path: Path) -> None:
    table = _bad_table(tmp_path)
    result = cli("validate", "--workspace", str(tmp_path))
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"{table}:2: status: expected one of enqueued, running, failed, completed, found 'done'",
        f"{table}:3: generation_end: expected an ISO 8601 timestamp of years 1900-2999"
        " (e.g. 2026-01-31T12:00:00+00:00) or empty, found 'yesterday'",
    ]


def test_validate_json_is_a_list_of_problems(tmp_path: Path) -> None:
    table = _bad_table(tmp_path)
    result = cli("validate", str(table), "--format", "json")
    assert result.exit_code == 2
    problems = json.loads(result.stdout)
    assert [(p["line"], p["column"]) for p in problems] == [(2, "status"), (3, "generation_end")]
    assert all(p["file"] in (os.path.relpath(table), str(table)) for p in problems)
    assert problems[0]["field"] == _header(table).index("status") + 1
    good = tmp_path / "good" / "generations.csv"
    good.parent.mkdir()
    good.write_bytes(BOM + b"run_id,job_id,status\nr,j,enqueued\n")
    result = cli("validate", str(good), "--format", "json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])


def _header(table: Path) -> list[str]:
    return table.read_text(encoding="utf-8-sig").splitlines()[0].split(",")


def test_validate_github_prints_annotations(tmp_path: Path) -> None:
    table = _bad_table(tmp_path)
    result = cli("validate", str(table), "--format", "github")
    assert result.exit_code == 2
    status_column = _header(table).index("status") + 1
    lines = result.stdout.splitlines()
    shown = os.path.relpath(table)
    shown = str(table) if shown.startswith("..") else shown
    assert lines[0].startswith(f"::error file={shown},line=2,col={status_column},title=")
    assert lines[0].endswith("::expected one of enqueued, running, failed, completed, found 'done'")
    assert len(lines) == 2


def test_validate_files_by_name_and_refuses_unknown_names(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ["ok", "../bad"])
    result = cli("validate", str(manifest))
    assert result.exit_code == 2
    assert f"{manifest}:3: job_id: " in result.stdout
    other = tmp_path / "scores.csv"
    other.write_text("a\n1\n")
    result = cli("validate", str(other))
    assert result.exit_code == 2
    assert "expected tables named generations.csv or manifest.csv" in result.stderr


# ----------------------------------------------------------------------------------- progress on a terminal


def _on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal: exit status, stdout and what the terminal showed."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=secondary, text=True, env=clean_env())
    os.close(secondary)
    shown = b""
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        shown += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(main)
    return proc.returncode, out, shown.decode("utf-8", errors="replace")


def test_consolidate_shows_its_phases_and_counts_what_the_summary_counts(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert cli("demo", "--workspace", str(ws), "--jobs", "200").exit_code == 0
    code, out, shown = _on_a_terminal(str(ARCHI3D), "consolidate", "--workspace", str(ws), "--run-id", "demo-run")
    assert code == 0, shown
    assert "reading the table" in shown and "writing the table" in shown
    considered = int(out.split("considered ")[1].split(" ")[0])
    assert f"deciding jobs: {considered:,}/{considered:,} (" in shown and "/s" in shown
    code, out, shown = _on_a_terminal(
        str(ARCHI3D), "consolidate", "--workspace", str(ws), "--run-id", "demo-run", "--json"
    )
    assert code == 0 and "deciding jobs" not in shown  # never under --json
    assert json.loads(out)["considered"] == considered - 4  # the duplicate rows are merged by now


def test_demo_shows_its_progress_on_a_terminal_only(tmp_path: Path) -> None:
    code, _, shown = _on_a_terminal(str(ARCHI3D), "demo", "--workspace", str(tmp_path / "a"), "--jobs", "600")
    assert code == 0
    assert "writing demo jobs: 1,200/1,200" in shown
    piped = run(str(ARCHI3D), "demo", "--workspace", str(tmp_path / "b"), "--jobs", "600")
    assert piped.returncode == 0 and "writing demo jobs" not in piped.stderr
