"""Issue 7: the table is held by someone else, a replace is refused, a write is killed half-way.

Every test runs consolidate as a real process (the installed `archi3d`, or the patching wrapper of
reliability_support) against a real lock holder, and checks that nothing is lost: the table is the
old one or the new one, whole, no temp file stays behind once the next write has run, and the lock
is free again afterwards.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archi3d.cli import app
from archi3d.csvtable import read_csv_table
from archi3d.schema import validate_generations
from reliability_support import (
    HANG_REPLACE_ENV,
    REFUSE_COUNT_ENV,
    REFUSE_ENV,
    WRAPPER,
    clean_env,
    parse_rows,
    run_archi3d,
    temp_files,
)
from workspace_builder import (
    RUN,
    csv_path,
    lock_held_by_another_process,
    lock_path,
    small_run,
    snapshot,
    table_bytes,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and locks")


def build(ws: Path) -> bytes:
    """A run with work to do (see workspace_builder.small_run); j4 is manifest-only."""
    return small_run(ws, ["j1", "j2", "j3", "j4"])


def args(ws: Path, *extra: str) -> list[str]:
    return ["consolidate", "--workspace", str(ws), "--run-id", RUN, *extra]


def in_process(arguments: list[str]) -> tuple[int, str, str]:
    """The CLI in this process (quicker than a new one) for the runs that only observe."""
    result = CliRunner().invoke(app, arguments)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def expected_after(tmp_path: Path, ws: Path) -> bytes:
    """The table a completed consolidate makes of `ws`, computed on a copy (nothing here depends on the clock)."""
    copy = tmp_path / "reference"
    shutil.copytree(ws, copy, symlinks=True)
    code, _, err = in_process(args(copy))
    assert code == 0, err
    after = table_bytes(copy)
    assert after != table_bytes(ws)
    return after


def outside_logs(ws: Path) -> dict[str, bytes | None]:
    return {k: v for k, v in snapshot(ws).items() if k != "logs" and not k.startswith("logs/")}


def assert_nothing_left_behind(ws: Path) -> None:
    assert temp_files(ws / "tables") == []
    assert sorted(p.name for p in (ws / "tables").iterdir()) == ["generations.csv", "generations.lock"]


# ----------------------------------------------------------------------------------- the lock


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another real process holding tables/generations.lock of tmp_path/ws until told to let go."""
    with lock_held_by_another_process(lock_path(tmp_path / "ws"), clean_env()) as proc:
        yield proc


def tell(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def test_lock_held_longer_than_the_timeout_exits_3_and_changes_nothing(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    ws = tmp_path / "ws"
    original = build(ws)
    after = expected_after(tmp_path, ws)
    before = outside_logs(ws)
    started = time.monotonic()
    proc = run_archi3d(args(ws, "--lock-timeout", "1.5"))
    elapsed = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    message = proc.stderr
    assert str(lock_path(ws)) in message and "1.5 s" in message, message  # which lock, how long
    assert re.search(r"nothing (was )?(written|changed)", message, re.IGNORECASE), message
    assert elapsed >= 1.5, f"gave up after {elapsed:.2f} s, before --lock-timeout"
    assert table_bytes(ws) == original
    assert outside_logs(ws) == before
    assert temp_files(ws / "tables") == []

    # The holder is still there; reads need no lock, so a dry run still works meanwhile.
    code, out, err = in_process(args(ws, "--dry-run", "--json", "--lock-timeout", "0.2"))
    assert code == 0, err
    assert json.loads(out)["upsert_updated"] == 3
    assert table_bytes(ws) == original

    tell(holder, "release")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "released"
    code, out, err = in_process(args(ws, "--lock-timeout", "5", "--json"))
    assert code == 0, err
    assert json.loads(out)["written"] is True
    assert table_bytes(ws) == after
    _, rows = parse_rows(table_bytes(ws))
    assert [(r["job_id"], r["status"]) for r in rows] == [
        ("j1", "completed"),
        ("j2", "failed"),
        ("j3", "failed"),
        ("o1", "completed"),
        ("j4", "enqueued"),
    ]
    assert_nothing_left_behind(ws)


def test_a_lock_released_within_the_timeout_is_waited_for(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    ws = tmp_path / "ws"
    build(ws)
    after = expected_after(tmp_path, ws)
    tell(holder, "hold 1.5")  # let go 1.5 s from now
    started = time.monotonic()
    code, _, err = in_process(args(ws, "--lock-timeout", "30"))
    elapsed = time.monotonic() - started
    assert code == 0, err
    assert elapsed >= 1.2, f"{elapsed:.2f} s: did it wait for the lock at all?"
    assert table_bytes(ws) == after
    assert_nothing_left_behind(ws)


def test_a_holder_killed_while_holding_the_lock_does_not_block_the_next_run(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    ws = tmp_path / "ws"
    build(ws)
    after = expected_after(tmp_path, ws)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert lock_path(ws).exists()  # the lock file stays; the lock itself died with its process
    started = time.monotonic()
    code, _, err = in_process(args(ws, "--lock-timeout", "5"))
    assert code == 0, err
    assert time.monotonic() - started < 5
    assert table_bytes(ws) == after


# ----------------------------------------------------------------------------------- a refused replace


def refused_count(stderr: str) -> int:
    found = re.search(r"REFUSED_REPLACES (\d+)", stderr)
    assert found, stderr
    return int(found.group(1))


def test_replace_refused_by_another_program_is_retried_then_exits_3(tmp_path: Path) -> None:
    """A sync client holds generations.csv: os.replace keeps raising PermissionError."""
    ws = tmp_path / "ws"
    original = build(ws)
    before = outside_logs(ws)
    env = {REFUSE_ENV: str(csv_path(ws))}
    started = time.monotonic()
    proc = run_archi3d(args(ws, "--lock-timeout", "1.5"), env=env, wrapped=True)
    elapsed = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(csv_path(ws)) in proc.stderr and "replaced" in proc.stderr, proc.stderr
    assert refused_count(proc.stderr) >= 3, "the replace was not retried"
    assert elapsed >= 1.5, f"gave up after {elapsed:.2f} s"
    assert table_bytes(ws) == original
    assert {k: v for k, v in outside_logs(ws).items() if k != "tables/generations.lock"} == before
    assert temp_files(ws / "tables") == []  # the temp file of the refused write is gone

    # The lock was released on the way out: the next run takes it at once.
    code, _, err = in_process(args(ws, "--lock-timeout", "0.5"))
    assert code == 0, err
    assert table_bytes(ws) != original
    assert_nothing_left_behind(ws)


def test_replace_refused_a_few_times_then_allowed_succeeds(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    build(ws)
    after = expected_after(tmp_path, ws)
    env = {REFUSE_ENV: str(csv_path(ws)), REFUSE_COUNT_ENV: "3"}
    proc = run_archi3d(args(ws, "--json", "--lock-timeout", "10"), env=env, wrapped=True)
    assert proc.returncode == 0, proc.stderr
    assert refused_count(proc.stderr) == 3
    assert json.loads(proc.stdout)["written"] is True
    assert table_bytes(ws) == after
    assert_nothing_left_behind(ws)


def test_dry_run_never_replaces_anything(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    original = build(ws)
    env = {REFUSE_ENV: str(csv_path(ws))}
    proc = run_archi3d(args(ws, "--dry-run", "--lock-timeout", "1"), env=env, wrapped=True)
    assert proc.returncode == 0, proc.stderr
    assert refused_count(proc.stderr) == 0
    assert table_bytes(ws) == original
    assert not lock_path(ws).exists()


# ----------------------------------------------------------------------------------- killed in the middle of the write


def test_killed_between_temp_file_and_replace(tmp_path: Path) -> None:
    """SIGKILL once the new table is written and fsynced but not yet in place: the old table stays whole,
    the temp file is recognisably ours, the lock dies with the process, and the next write cleans up."""
    ws = tmp_path / "ws"
    original = build(ws)
    after = expected_after(tmp_path, ws)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, *args(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env({HANG_REPLACE_ENV: str(csv_path(ws))}),
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        deadline = time.monotonic() + 60
        while not line.startswith("HANGING") and time.monotonic() < deadline and line:
            line = proc.stderr.readline()
        assert line.startswith("HANGING"), line
        temp = Path(line.split(" ", 1)[1].strip())
        assert temp.parent == ws / "tables" and temp.read_bytes() == after  # whole, and ours by name
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    assert table_bytes(ws) == original
    assert read_csv_table(csv_path(ws), validate_generations) is not None
    assert temp_files(ws / "tables") == [temp.name]

    started = time.monotonic()
    code, _, err = in_process(args(ws, "--lock-timeout", "5"))
    assert code == 0, err
    assert time.monotonic() - started < 5  # the killed process's lock did not outlive it
    assert table_bytes(ws) == after
    assert_nothing_left_behind(ws)
