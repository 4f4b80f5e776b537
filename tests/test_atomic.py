"""Atomic writes, the table lock and the append-only logs (archi3d.atomic)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from archi3d.atomic import append_log_record, write_bytes_atomic
from archi3d.errors import LockTimeoutError, ReplaceRefusedError, WriteRefusedError
from archi3d.lock import table_lock
from archi3d.upsert import update_csv_atomic

TAG = ".archi3d-tmp-"


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TAG in p.name)


def _python(script: str, *args: str) -> str:
    """Run `script` in a fresh interpreter; its standard output."""
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True).stdout


def _dead_pid() -> int:
    return int(_python("import os; print(os.getpid())"))


# --- write_bytes_atomic ---------------------------------------------------------------------------------


def test_write_creates_and_replaces_without_leaving_temps(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_bytes_atomic(path, b"a\r\nb")
    assert path.read_bytes() == b"a\r\nb"
    write_bytes_atomic(path, b"")
    assert path.read_bytes() == b""
    write_bytes_atomic(path, b"x" * 100_000)
    assert path.read_bytes() == b"x" * 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
@pytest.mark.parametrize("mode", [0o640, 0o664, 0o444])
def test_a_replaced_file_keeps_its_permissions(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"old\n")
    path.chmod(mode)
    write_bytes_atomic(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    assert path.stat().st_mode & 0o7777 == mode


def test_stale_temp_of_a_dead_writer_is_removed_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"old")
    dead = _dead_pid()
    stale = tmp_path / f".t.csv{TAG}{dead}-deadbeef"
    stale.write_bytes(b"half a fil")
    live = tmp_path / f".t.csv{TAG}{os.getpid()}-cafe0001"  # a writer still running: not ours to remove
    live.write_bytes(b"in progress")
    other_table = tmp_path / f".u.csv{TAG}{dead}-deadbeef"  # another file's temp: left to its own writes
    other_table.write_bytes(b"x")
    unrelated = tmp_path / ".t.csv.bak"
    unrelated.write_bytes(b"keep")

    write_bytes_atomic(path, b"new")

    assert path.read_bytes() == b"new"
    assert not stale.exists()
    assert live.read_bytes() == b"in progress"
    assert other_table.exists()
    assert unrelated.read_bytes() == b"keep"


@pytest.fixture
def refuse_replace(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """os.replace refused as a sync client or virus scanner holding the file would refuse it."""
    calls: list[tuple[str, str]] = []

    def refuse(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append((str(src), str(dst)))
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    yield calls


def test_replace_refused_raises_after_the_timeout_and_leaves_the_file(
    tmp_path: Path, refuse_replace: list[tuple[str, str]]
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"original")
    started = time.monotonic()
    with pytest.raises(ReplaceRefusedError) as caught:
        write_bytes_atomic(path, b"new content", replace_timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 5
    assert len(refuse_replace) >= 2  # retried, not given up at once
    assert all(dst == str(path) for _, dst in refuse_replace)
    assert path.read_bytes() == b"original"
    assert _temps(tmp_path) == []
    assert isinstance(caught.value, WriteRefusedError)
    assert caught.value.exit_code == 3


def test_replace_refused_for_a_while_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace = os.replace
    refusals = [0]

    def flaky(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if refusals[0] < 2:
            refusals[0] += 1
            raise PermissionError(13, "Permission denied", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    path = tmp_path / "t.csv"
    path.write_bytes(b"original")
    write_bytes_atomic(path, b"new", replace_timeout=5)
    assert refusals[0] == 2
    assert path.read_bytes() == b"new"
    assert _temps(tmp_path) == []


# --- table_lock -------------------------------------------------------------------------------------

_HOLD_LOCK = """
import sys, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.readline()
lock.release()
"""

_TRY_LOCK = """
import sys, filelock
try:
    filelock.FileLock(sys.argv[1], timeout=0.2).acquire()
except filelock.Timeout:
    print("timeout")
else:
    print("acquired")
"""


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[Path]:
    """tables/generations.csv whose lock another process holds (as the archi3D worker takes it)."""
    path = tmp_path / "tables" / "generations.csv"
    path.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path.with_suffix(".lock"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield path
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        try:
            holder.wait(10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()


def test_table_lock_times_out_when_another_process_holds_it(held_lock: Path) -> None:
    started = time.monotonic()
    with pytest.raises(LockTimeoutError) as caught, table_lock(held_lock, timeout=0.3):
        pytest.fail("the lock was taken while another process held it")
    assert time.monotonic() - started >= 0.3
    assert "generations.lock" in str(caught.value)
    assert caught.value.exit_code == 3


def test_upsert_times_out_on_a_held_lock_and_writes_nothing(held_lock: Path) -> None:
    data = b"\xef\xbb\xbfrun_id,job_id,status\nr,j1,enqueued\n"
    held_lock.write_bytes(data)
    frame = pd.DataFrame([["r", "j2", "enqueued"]], columns=["run_id", "job_id", "status"], dtype="str")
    with pytest.raises(LockTimeoutError):
        update_csv_atomic(held_lock, frame, ["run_id", "job_id"], lock_timeout=0.3)
    assert held_lock.read_bytes() == data
    assert _temps(held_lock.parent) == []


def test_table_lock_is_free_again_after_the_holder_releases(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with table_lock(path, timeout=1):
        pass
    with table_lock(path, timeout=1):  # released on exit, even in this process
        pass


def test_table_lock_excludes_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "generations.csv"
    lock_file = str(path.with_suffix(".lock"))
    with table_lock(path, timeout=1):
        inside = _python(_TRY_LOCK, lock_file)
    outside = _python(_TRY_LOCK, lock_file)
    assert inside.strip() == "timeout"
    assert outside.strip() == "acquired"


def test_table_lock_released_when_the_body_raises(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with pytest.raises(RuntimeError), table_lock(path, timeout=1):
        raise RuntimeError("boom")
    assert _python(_TRY_LOCK, str(path.with_suffix(".lock"))).strip() == "acquired"


# --- append_log_record ------------------------------------------------------------------------------


def _parse(line: str) -> tuple[dt.datetime, object]:
    stamp, sep, body = line.partition(" ")
    assert sep == " "
    return dt.datetime.fromisoformat(stamp), json.loads(body)


def test_append_log_record_writes_one_line_per_record(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "metrics.log"  # the folder is created on demand
    records: list[dict[str, object]] = [
        {"event": "consolidate", "run_id": "r1", "n": 3},
        {"event": "multi", "message": "line one\nline two\r\n", "quote": 'say "hi"', "text": "café 🙂"},
        {"event": "path", "where": Path("runs/r1"), "nested": {"a": [1, 2]}},
        {},
    ]
    before = dt.datetime.now(dt.UTC)
    for record in records:
        append_log_record(log, record)
    after = dt.datetime.now(dt.UTC)

    data = log.read_bytes()
    assert data.endswith(b"\n")
    lines = data.decode("utf-8").split("\n")[:-1]
    assert len(lines) == len(records)
    parsed = [_parse(line) for line in lines]
    for (stamp, body), record in zip(parsed, records):
        assert stamp.utcoffset() == dt.timedelta(0)
        assert before <= stamp <= after
        assert body == json.loads(json.dumps(record, default=str))
    assert parsed[1][1] == records[1]


def test_append_log_record_appends_and_stamps_in_utc(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text('2020-01-01T00:00:00+00:00 {"event":"old"}\n')
    moment = dt.datetime(2026, 1, 31, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    append_log_record(log, {"event": "job_completed", "duration_s": 1.5}, moment)
    lines = log.read_text().splitlines()
    assert lines[0] == '2020-01-01T00:00:00+00:00 {"event":"old"}'
    stamp, body = _parse(lines[1])
    assert lines[1].startswith("2026-01-31T12:00:00+00:00 ")
    assert stamp == moment
    assert body == {"event": "job_completed", "duration_s": 1.5}
    assert len(lines) == 2
