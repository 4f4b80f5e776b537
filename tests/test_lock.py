"""Integration: the table lock in a shared workspace, with real processes; its lock file may be deleted or
replaced while held (a clean-up script, a sync client) and mutual exclusion must hold all the same."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archi3d import LockTimeoutError, table_lock
from archi3d.csvtable import read_csv_table
from reliability_support import clean_env
from workspace_builder import lock_held_by_another_process

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock on the table's folder is POSIX")

_HOLDER = """
import sys
from archi3d.lock import table_lock

with table_lock(sys.argv[1], timeout=10):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture
def held_by_archi3d(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """tables/generations.csv's lock held by another archi3d process until it reads a line."""
    table = tmp_path / "tables" / "generations.csv"
    table.parent.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(table)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield table, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_held_lock_stays_exclusive_when_its_file_is_deleted_or_replaced(
    held_by_archi3d: tuple[Path, subprocess.Popen[str]], how: str
) -> None:
    """Issue 13, 2: deleting the lock file once let another writer take the lock and write."""
    table, holder = held_by_archi3d
    lock_file = table.with_suffix(".lock")
    lock_file.unlink()
    if how == "replaced":
        lock_file.write_bytes(b"")
    with pytest.raises(LockTimeoutError), table_lock(table, timeout=0.5):
        pass
    assert holder.stdin is not None
    holder.stdin.write("release\n")
    holder.stdin.flush()
    assert holder.stdout is not None and holder.stdout.readline().strip() == "released"
    with table_lock(table, timeout=5):  # free again once the holder lets go
        pass


def test_the_reference_workers_lock_is_still_honoured(tmp_path: Path) -> None:
    table = tmp_path / "tables" / "generations.csv"
    with (
        lock_held_by_another_process(table.with_suffix(".lock")),  # filelock only, as the worker takes it
        pytest.raises(LockTimeoutError, match=r"generations\.lock: lock held by another process"),
        table_lock(table, timeout=0.3),
    ):
        pass


def test_the_lock_file_is_never_deleted(tmp_path: Path) -> None:
    table = tmp_path / "generations.csv"
    with table_lock(table, timeout=1):
        pass
    inode = table.with_suffix(".lock").stat().st_ino
    with table_lock(table, timeout=1):
        pass
    assert table.with_suffix(".lock").stat().st_ino == inode


_UPSERTER = """
import sys
import pandas as pd
from archi3d.upsert import update_csv_atomic

table, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
for i in range(count):
    row = {"run_id": "run-1", "job_id": f"w{writer}-{i:03d}", "status": "enqueued"}
    update_csv_atomic(table, pd.DataFrame([row]), ["run_id", "job_id"], lock_timeout=120)
print("done", flush=True)
"""


def test_no_insert_is_lost_while_the_lock_file_is_deleted_in_a_loop(tmp_path: Path) -> None:
    """Issue 13, 2: with `rm -f tables/generations.lock` in a loop, 3 upserting processes lost 100 of 180 inserts."""
    table = tmp_path / "tables" / "generations.csv"
    table.parent.mkdir()
    writers, per_writer = 3, 40
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _UPSERTER, str(table), str(w), str(per_writer)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        for w in range(writers)
    ]
    stop = threading.Event()
    deletions = [0]

    def delete_the_lock_file() -> None:
        while not stop.is_set():
            try:
                table.with_suffix(".lock").unlink()
                deletions[0] += 1
            except FileNotFoundError:
                pass
            time.sleep(0.001)

    deleter = threading.Thread(target=delete_the_lock_file, daemon=True)
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deleter.start()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outcomes = [proc.communicate(timeout=300) for proc in procs]
    finally:
        stop.set()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, outcomes):
        assert proc.returncode == 0, err
        assert out.strip() == "done"
    jobs = read_csv_table(table).column("job_id")
    assert sorted(jobs) == sorted(f"w{w}-{i:03d}" for w in range(writers) for i in range(per_writer))
    assert deletions[0] > 10  # the lock file really was deleted while they ran
