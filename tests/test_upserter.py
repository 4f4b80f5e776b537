"""table_upserter: a long metric phase's rows written in batches, each one atomic upsert."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from archi3d import InputError, LockTimeoutError, table_upserter
from archi3d.csvtable import read_csv_table
from archi3d.schema import validate_generations
from reliability_support import clean_env
from workspace_builder import lock_held_by_another_process

KEYS = ["run_id", "job_id"]


def _jobs(path: Path) -> list[str]:
    return read_csv_table(path).column("job_id") if path.exists() else []


def _row(i: int, **cells: object) -> dict[str, object]:
    return {"run_id": "run-1", "job_id": f"j{i:03d}", "status": "completed", **cells}


def test_rows_are_written_every_n_and_the_rest_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "tables" / "generations.csv"
    with table_upserter(path, KEYS, every=3, seconds=None) as upserter:
        for i in range(7):
            upserter.add(_row(i, fscore=i / 4))
            assert len(_jobs(path)) == (i + 1) // 3 * 3
        assert upserter.rows_written == 6
    assert _jobs(path) == [f"j{i:03d}" for i in range(7)]
    assert read_csv_table(path).column("fscore") == ["0", "0.25", "0.5", "0.75", "1", "1.25", "1.5"]
    assert (upserter.inserted, upserter.updated, upserter.rows_written) == (7, 0, 7)


def test_a_waiting_row_is_written_after_seconds_without_another_add(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with table_upserter(path, KEYS, every=1000, seconds=0.2) as upserter:
        upserter.add(_row(1))
        assert _jobs(path) == []
        deadline = time.monotonic() + 10
        while not _jobs(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _jobs(path) == ["j001"]
        assert upserter.rows_written == 1


def test_the_rest_is_written_when_the_block_raises(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with (
        pytest.raises(RuntimeError, match="metric crashed"),
        table_upserter(path, KEYS, every=100, seconds=None) as upserter,
    ):
        upserter.add(_row(1))
        upserter.add(pd.DataFrame([_row(2), _row(3)]))
        raise RuntimeError("metric crashed")
    assert _jobs(path) == ["j001", "j002", "j003"]


def test_values_keep_their_own_type(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with table_upserter(path, KEYS, seconds=None) as upserter:
        upserter.add(_row(1, f32=np.float32(0.1), n=4, gap=None))
        upserter.add(_row(1, gap=2.0))  # the same key again: applied in turn
    assert read_csv_table(path).rows([0]) == [
        {"run_id": "run-1", "job_id": "j001", "status": "completed", "f32": "0.1", "n": "4", "gap": "2"}
    ]


def test_a_row_with_a_bad_key_is_refused_when_added(tmp_path: Path) -> None:
    path = tmp_path / "generations.csv"
    with table_upserter(path, KEYS, seconds=None) as upserter:
        upserter.add(_row(1))
        with pytest.raises(InputError, match="not valid ids"):
            upserter.add({"run_id": "run-1", "job_id": "../x", "status": "completed"})
        with pytest.raises(InputError, match="not in the frame"):
            upserter.add({"run_id": "run-1", "status": "completed"})
    assert _jobs(path) == ["j001"]
    read_csv_table(path, validate_generations)


def test_a_batch_that_cannot_be_written_stays_queued(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    upserter = table_upserter(path, KEYS, every=2, seconds=None, lock_timeout=0.2)
    with lock_held_by_another_process(path.with_suffix(".lock")) as holder:
        upserter.add(_row(1))
        with pytest.raises(LockTimeoutError):
            upserter.add(_row(2))
        assert holder.stdin is not None
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert holder.stdout is not None and holder.stdout.readline().strip() == "released"
    upserter.add(_row(3))
    upserter.close()
    assert _jobs(path) == ["j001", "j002", "j003"]


def test_a_timer_write_that_fails_is_raised_by_the_next_call(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    upserter = table_upserter(path, KEYS, every=1000, seconds=0.05, lock_timeout=0.2)
    with lock_held_by_another_process(path.with_suffix(".lock")):
        upserter.add(_row(1))
        time.sleep(1.0)  # the timer tried, and timed out on the lock
        with pytest.raises(LockTimeoutError):
            upserter.add(_row(2))
    upserter.close()
    assert sorted(_jobs(path)) == ["j001", "j002"]


_PHASE = """
import sys
from archi3d import table_upserter

with table_upserter(sys.argv[1], ["run_id", "job_id"], every=10, seconds=None) as upserter:
    for i in range(100000):
        upserter.add({"run_id": "run-1", "job_id": f"j{i:06d}", "status": "completed", "fscore": i / 7})
        print(upserter.rows_written, flush=True)
"""


def test_a_writer_killed_mid_phase_loses_at_most_the_batch_it_was_collecting(tmp_path: Path) -> None:
    path = tmp_path / "tables" / "generations.csv"
    proc = subprocess.Popen(
        [sys.executable, "-c", _PHASE, str(path)], stdout=subprocess.PIPE, text=True, env=clean_env()
    )
    assert proc.stdout is not None
    written = 0
    for line in proc.stdout:
        written = int(line)
        if written >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    jobs = read_csv_table(path, validate_generations).column("job_id")  # whole and valid
    assert jobs[:written] == [f"j{i:06d}" for i in range(written)]  # every batch written before the kill
    assert len(jobs) % 10 == 0  # whole batches only
